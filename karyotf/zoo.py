"""Pretrained starting points: the OD API model zoo archive that fits each karyotf model, fetched, cached, verified.

``karyotf config MODEL --fine-tune coco`` (and ``karyotf zoo pull MODEL``) call :func:`pull`, which

1. looks in the cache (``$KARYOTF_CACHE``, default ``$XDG_CACHE_HOME/karyotf`` = ``~/.cache/karyotf``) for the
   archive and the sha256 recorded beside it when it was downloaded (``ARCHIVE.sha256``, ``sha256sum`` format);
   an archive whose bytes no longer match is deleted and fetched again;
2. otherwise downloads it from the model zoo (base address ``$KARYOTF_ZOO_URL``, default
   ``http://download.tensorflow.org/models/object_detection``) into ``ARCHIVE.part`` with a progress bar; a
   dropped connection is resumed with an HTTP ``Range`` request (a few times in one call, and on the next call:
   the ``.part`` file stays), and the file is renamed into place only when complete;
3. unpacks it into a temporary folder beside the cache entry and renames that into place (never a half-unpacked
   folder), after checking the zoo's layout: ``NAME/pipeline.config`` and the checkpoint prefix's ``.index`` and
   ``.data-*`` files (``NAME/checkpoint/ckpt-0`` for the TF2 zoo, ``NAME/model.ckpt`` for the TF1 zoo);
4. returns the checkpoint prefix and the ``fine_tune_checkpoint_type`` that restores the right parts (see
   :data:`ZOO`).

Without network the error says what to download where: ``no network: download ARCHIVE from the OD API model zoo
into CACHE, or pass --fine-tune PATH/ckpt-N``, and no partial file is left behind.

The sha256 is recorded on first download (the zoo publishes none), so it guards the cache against corruption and
truncation, not against a zoo that serves other bytes.  Only the standard library and tqdm are used here; no
TensorFlow is imported.
"""
from __future__ import annotations

import contextlib
import fcntl
import http.client
import logging
import os
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from .errors import ZooError
from .io import atomic_write_text, sha256_of

log = logging.getLogger(__name__)

DEFAULT_URL = "http://download.tensorflow.org/models/object_detection"
URL_ENV = "KARYOTF_ZOO_URL"
CACHE_ENV = "KARYOTF_CACHE"
COCO = "coco"
"""The ``--fine-tune`` value that means "the model zoo's COCO-pretrained checkpoint for this model"."""
ATTEMPTS = 3
"""Download attempts in one call (each resumes the ``.part`` file where the last stopped)."""
CHUNK = 1 << 16


@dataclass(frozen=True)
class ZooModel:
    """One karyotf model's pretrained starting point in the OD API model zoo."""

    model: str  # karyotf model name (pipelines.MODELS)
    path: str  # the archive's path under the zoo's base address
    checkpoint: str  # checkpoint prefix inside the archive's top folder
    fine_tune_type: str  # fine_tune_checkpoint_type that restores what fits
    tf: str  # "tf1" or "tf2": which zoo, and which checkpoint format
    zoo_model: str  # what the archive holds, as the zoo names it
    restores: str  # which parts of the karyotf model start from it

    @property
    def archive(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def name(self) -> str:
        """The archive's top folder (the archive name without ``.tar.gz``)."""
        return self.archive[: -len(".tar.gz")] if self.archive.endswith(".tar.gz") else self.archive

    def url(self, base: str | None = None) -> str:
        return f"{(base or base_url()).rstrip('/')}/{self.path}"

    @property
    def fine_tune_hint(self) -> str:
        return "PATH/model.ckpt-N" if self.tf == "tf1" else "PATH/ckpt-N"


ZOO: dict[str, ZooModel] = {
    "ssd": ZooModel(
        "ssd", "tf2/20200711/ssd_mobilenet_v2_320x320_coco17_tpu-8.tar.gz", "checkpoint/ckpt-0", "detection", "tf2",
        "SSD MobileNet v2 320x320, COCO 2017 (TF2 zoo)",
        "the MobileNet v2 feature extractor with its extra SSD layers (`detection`: the model's `_feature_extractor`);"
        " the box and class prediction heads start fresh (24 classes, not COCO's 90; other anchors)"),
    "faster_rcnn": ZooModel(
        "faster_rcnn", "faster_rcnn_inception_v2_coco_2018_01_28.tar.gz", "model.ckpt", "detection", "tf1",
        "Faster R-CNN Inception v2, COCO (TF1 zoo, 2018-01-28)",
        "the Inception v2 feature extractor, both the first-stage (up to Mixed_4e) and the second-stage (Mixed_5) "
        "parts (`detection` on the TF1 path restores the FirstStageFeatureExtractor and SecondStageFeatureExtractor "
        "scopes); the RPN and the box classifier start fresh"),
    "rfcn": ZooModel(
        "rfcn", "tf2/20200711/faster_rcnn_resnet101_v1_640x640_coco17_tpu-8.tar.gz", "checkpoint/ckpt-0", "detection",
        "tf2", "Faster R-CNN ResNet101 v1 640x640, COCO 2017 (TF2 zoo; the zoo has no TF2 R-FCN)",
        "the whole ResNet101: conv1-conv4 (proposal features) and conv5 (box classifier features), which karyotf's "
        "R-FCN shares with Faster R-CNN (`detection` restores both feature-extractor models); the RPN and the "
        "position-sensitive R-FCN heads start fresh"),
}


def entry(model: str) -> ZooModel:
    try:
        return ZOO[model]
    except KeyError:
        raise ZooError(f"no model zoo checkpoint is registered for {model!r} (choose one of {', '.join(ZOO)}; "
                       "or pass --fine-tune PATH/ckpt-N)") from None


def base_url() -> str:
    return os.environ.get(URL_ENV) or DEFAULT_URL


def cache_dir() -> Path:
    """``$KARYOTF_CACHE``, else ``$XDG_CACHE_HOME/karyotf``, else ``~/.cache/karyotf``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "karyotf"


def zoo_dir(cache: str | Path | None = None) -> Path:
    return Path(cache).expanduser() if cache is not None else cache_dir() / "zoo"


@dataclass
class Pulled:
    """A verified, unpacked zoo archive in the cache."""

    model: str
    checkpoint: Path  # the checkpoint prefix: what fine_tune_checkpoint names
    fine_tune_type: str
    folder: Path
    archive: Path
    sha256: str
    downloaded: bool  # False: served from the cache

    def text(self) -> str:
        how = "downloaded" if self.downloaded else "cached"
        return (f"{self.model}: {self.checkpoint} ({self.fine_tune_type}; {how} {self.archive.name}, "
                f"sha256 {self.sha256[:12]}...)")


# ------------------------------------------------------------------------------------------------ cache helpers

def _sha_path(archive: Path) -> Path:
    return archive.with_name(archive.name + ".sha256")


def _recorded_sha(archive: Path) -> str | None:
    p = _sha_path(archive)
    if not p.is_file():
        return None
    text = p.read_text().split()
    return text[0].lower() if text else None


def _record_sha(archive: Path, digest: str) -> None:
    atomic_write_text(_sha_path(archive), f"{digest}  {archive.name}\n")


def check_layout(folder: Path, z: ZooModel, archive: str | Path | None = None) -> None:
    """Raise ZooError naming the archive and every missing piece unless ``folder`` holds the zoo's layout."""
    missing = []
    if not (folder / "pipeline.config").is_file():
        missing.append(f"{z.name}/pipeline.config")
    prefix = folder / z.checkpoint
    if not Path(str(prefix) + ".index").is_file():
        missing.append(f"{z.name}/{z.checkpoint}.index")
    data = list(prefix.parent.glob(prefix.name + ".data-*")) if prefix.parent.is_dir() else []
    if not data:
        missing.append(f"{z.name}/{z.checkpoint}.data-*")
    if missing:
        raise ZooError(f"{archive or z.archive}: not the model zoo layout karyotf expects for {z.model}: missing "
                       f"{', '.join(missing)} (fix: delete it and run again to download it afresh, or pass "
                       f"--fine-tune {z.fine_tune_hint})")


@contextlib.contextmanager
def _lock(folder: Path):
    """An exclusive lock on the cache folder itself (no lock file): two processes pulling wait for each other."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


# ----------------------------------------------------------------------------------------------------- download

class _Offline(Exception):
    """No connection could be made (no network, no route, refused, name not resolved)."""


class _Dropped(Exception):
    """The connection broke after some bytes arrived: resumable."""


def _fetch_once(url: str, part: Path, progress: bool, desc: str, timeout: float) -> None:
    """One request for the rest of ``part``; returns when the file is complete, raises _Dropped / _Offline."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "karyotf", "Accept-Encoding": "identity"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s) zoo address
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the .part already holds every byte, or is longer than the file
            total = (exc.headers.get("Content-Range") or "").rpartition("/")[2]
            if total.isdigit() and int(total) == offset:
                return
            part.unlink()
            raise _Dropped(f"{part.name} did not fit the file on the server; starting over") from None
        raise ZooError(f"the model zoo answered HTTP {exc.code} ({exc.reason}) for {url} "
                       f"(fix: check {URL_ENV}={base_url()!r}, or download it by hand into {part.parent})") from None
    except (urllib.error.URLError, OSError) as exc:  # refused, unreachable, name not resolved, timed out
        raise _Offline(str(getattr(exc, "reason", exc))) from None
    except http.client.HTTPException as exc:  # something answered, but not HTTP
        raise ZooError(f"{url}: not an HTTP answer ({type(exc).__name__}: {exc}) (fix: check {URL_ENV})") from None
    with response:
        status = response.status
        length = response.headers.get("Content-Length")
        if status == 206:
            start = int((response.headers.get("Content-Range") or "bytes 0-").split()[1].split("-")[0])
            if start != offset:
                part.unlink()
                raise _Dropped(f"the server resumed at byte {start}, not {offset}; starting over")
            mode = "ab"
        else:  # 200: the server ignored the Range (or none was asked): from the start
            offset, mode = 0, "wb"
        total = offset + int(length) if length and length.isdigit() else None

        got = offset
        with open(part, mode) as out, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                           unit_divisor=1024, desc=desc, disable=not progress,
                                           dynamic_ncols=True, leave=False) as bar:
            try:
                while True:
                    block = response.read(CHUNK)
                    if not block:
                        break
                    out.write(block)
                    got += len(block)
                    bar.update(len(block))
            except (OSError, http.client.HTTPException) as exc:  # reset, timeout, IncompleteRead
                raise _Dropped(f"connection dropped after {got} bytes ({exc})") from None
        if total is not None and got < total:
            raise _Dropped(f"connection closed after {got} of {total} bytes")


def download(url: str, dest: Path, *, progress: bool = True, attempts: int = ATTEMPTS, timeout: float = 60.0,
             offline_message: str = "") -> Path:
    """Download ``url`` to ``dest`` through ``dest.part`` (resumed with HTTP Range); rename when complete.

    Raises ZooError: ``offline_message`` when no connection can be made; a resumable message when the
    connection keeps dropping (the ``.part`` file is kept for the next call).
    """
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    last = ""
    for attempt in range(1, attempts + 1):
        try:
            _fetch_once(url, part, progress, dest.name, timeout)
            os.replace(part, dest)
            return dest
        except _Offline as exc:
            if part.exists() and part.stat().st_size == 0:
                part.unlink()
            raise ZooError((offline_message or f"no network: cannot reach {url}") + f" ({exc})") from None
        except _Dropped as exc:
            last = str(exc)
            if attempt < attempts:
                log.warning("%s: %s; resuming (attempt %d of %d)", dest.name, exc, attempt + 1, attempts)
                time.sleep(min(0.5 * attempt, 3.0))
    have = part.stat().st_size if part.exists() else 0
    raise ZooError(f"{url}: download interrupted ({last}); {have} bytes kept in {part} "
                   "(fix: run the same command again: it resumes from there)")


# --------------------------------------------------------------------------------------------------------- pull

def _unpack(archive: Path, z: ZooModel, folder: Path) -> None:
    """Unpack ``archive`` into a temporary folder beside ``folder``, check the layout, rename it into place."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{z.name}.unpack-", dir=folder.parent))
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(tmp, filter="data")
                else:  # pragma: no cover - Python < 3.11.4
                    tar.extractall(tmp)  # noqa: S202
        except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
            raise ZooError(f"{archive}: not a readable .tar.gz ({exc}) (fix: delete it and its .sha256 and run "
                           f"again, or pass --fine-tune {z.fine_tune_hint})") from None
        top = tmp / z.name
        if not top.is_dir():
            found = sorted(p.name for p in tmp.iterdir())
            raise ZooError(f"{archive}: no top folder {z.name}/ inside (found: {', '.join(found) or 'nothing'}) "
                           f"(fix: delete it and run again, or pass --fine-tune {z.fine_tune_hint})")
        check_layout(top, z, archive)
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
            os.replace(folder, old)
            _remove(old)
        os.replace(top, folder)
    finally:
        _remove(tmp)


def cached(model: str, cache: str | Path | None = None) -> Path | None:
    """The cached checkpoint prefix of ``model``'s archive if it is unpacked with the right layout, else None
    (no hashing, no network: for listings)."""
    z = entry(model)
    folder = zoo_dir(cache) / z.name
    try:
        check_layout(folder, z)
    except ZooError:
        return None
    return folder / z.checkpoint


def pull(model: str, *, cache: str | Path | None = None, base: str | None = None, progress: bool = True,
         attempts: int = ATTEMPTS, timeout: float = 60.0) -> Pulled:
    """``model``'s zoo checkpoint, verified and unpacked in the cache; downloaded only when not cached intact."""
    z = entry(model)
    root = zoo_dir(cache)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ZooError(f"cannot create the model zoo cache {root} ({exc.strerror}) (fix: set {CACHE_ENV} to a "
                       "writable folder)") from None
    archive = root / z.archive
    folder = root / z.name
    url = z.url(base)
    offline = (f"no network: download {z.archive} from the OD API model zoo into {root}, or pass "
               f"--fine-tune {z.fine_tune_hint} (the archive is at {url})")
    with _lock(root):
        downloaded = by_hand = False
        digest = None
        if archive.is_file():
            digest = sha256_of(archive)
            recorded = _recorded_sha(archive)
            if recorded is None:  # put there by hand (as the offline message suggests): recorded once it unpacks
                by_hand = True
            elif recorded != digest:
                log.warning("%s: sha256 %s does not match the %s recorded when it was downloaded: the cached "
                            "archive is corrupted; fetching it again", archive, digest[:12], recorded[:12])
                for p in (archive, _sha_path(archive), folder):
                    _remove(p)
                digest = None
        if digest is None:
            download(url, archive, progress=progress, attempts=attempts, timeout=timeout, offline_message=offline)
            digest = sha256_of(archive)
            _record_sha(archive, digest)
            _remove(folder)
            downloaded = True
        try:
            check_layout(folder, z)
        except ZooError:
            try:
                _unpack(archive, z, folder)
            except ZooError:
                if downloaded:  # a fresh download that is no zoo archive: do not keep it as if it were good
                    _remove(archive)
                    _remove(_sha_path(archive))
                raise
        if by_hand:  # a good archive put into the cache by hand: from now on checked like a downloaded one
            log.info("%s: recording its sha256 %s", archive, digest)
            _record_sha(archive, digest)
    return Pulled(model=model, checkpoint=folder / z.checkpoint, fine_tune_type=z.fine_tune_type, folder=folder,
                  archive=archive, sha256=digest, downloaded=downloaded)


def listing(cache: str | Path | None = None) -> list[dict]:
    """One row a registered model: archive, address, checkpoint prefix, restore type, what is restored, cached."""
    rows = []
    for m, z in ZOO.items():
        rows.append({"model": m, "archive": z.archive, "url": z.url(), "checkpoint": z.checkpoint,
                     "fine_tune_type": z.fine_tune_type, "tf": z.tf, "zoo_model": z.zoo_model,
                     "restores": z.restores, "cached": str(cached(m, cache) or "")})
    return rows
