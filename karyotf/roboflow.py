"""Roboflow: pull a dataset version with the ``roboflow`` package, and import Roboflow exports into karyotf.

:func:`pull` downloads ``workspace/project/version`` in ``voc``, ``tfrecord`` or ``coco`` format through
``roboflow.Roboflow(api_key).workspace(W).project(P).version(N).download(format, location)``.  The API key
comes from the argument or ``ROBOFLOW_API_KEY``; a missing key or an unreachable API is a
:class:`~karyotf.errors.RoboflowError` saying what to do.  The API base URL is the ``roboflow`` package's
``API_URL`` setting (environment variable, read when ``roboflow`` is first imported): ``api_url=`` sets it.

:func:`import_export` reads an unpacked Roboflow export:

- VOC: ``train/ valid/ test/`` with ``*.jpg`` and ``*.xml`` side by side;
- COCO JSON: each split folder with its images and ``_annotations.coco.json`` (``bbox`` = x, y, w, h pixels);
- TFRecord: each split folder with ``*.tfrecord`` and ``*_label_map.pbtxt`` (Roboflow's own label ids,
  usually the class names sorted), boxes normalised;

maps every class name (``A1``, ``chr21``, ``21``, ``x``, ...) through :func:`karyotf.classes.canonical` (plus an
optional ``class_map`` for other spellings), restores the original image names Roboflow mangles
(``1054642_jpg.rf.<hash>.jpg`` -> ``1054642.jpg``) and writes karyotf's VOC layout (``images/`` +
``annotations/`` + ``roboflow_import.json``), ready for ``karyotf records`` (or straight to records with
``records_dir=``).
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

from tqdm import tqdm

from . import classes, images, rundir
from .annotations import Annotation, Box, find_image, write_voc
from .errors import RoboflowError
from .io import atomic_path, atomic_write_json
from .records import build_records

# Imports inside functions, and why: requests / roboflow (optional: only the Roboflow commands use them); TensorFlow /
# KerasCV / the OD API (heavy: kept off the import path); roboflow (optional or platform-specific: tried, with a
# fallback).

log = logging.getLogger(__name__)

FORMATS = ("voc", "tfrecord", "coco")
SPLITS = ("train", "valid", "val", "test")
COCO_FILE = "_annotations.coco.json"
_RF_NAME = re.compile(r"^(?P<stem>.+?)_(?P<ext>jpe?g|png|bmp|tiff?)\.rf\.[0-9a-zA-Z]+$", re.IGNORECASE)


# ----------------------------------------------------------------------------------------------- pull


def api_key_from(api_key: str | None = None) -> str:
    """The API key: the argument, else ``ROBOFLOW_API_KEY``; a RoboflowError if neither is set."""
    key = api_key or os.environ.get("ROBOFLOW_API_KEY")
    if not key:
        raise RoboflowError("no Roboflow API key (fix: pass --api-key KEY or set ROBOFLOW_API_KEY; the key is in "
                            "Roboflow under Settings > API Keys)")
    return key


def _import_roboflow(api_url: str | None):
    """Import the ``roboflow`` package with ``API_URL`` set (it reads the URL once, at import)."""
    if api_url:
        api_url = api_url.rstrip("/")
        if "roboflow" in sys.modules:
            from roboflow import config

            if config.API_URL != api_url:
                raise RoboflowError(f"the roboflow package is already loaded with API_URL {config.API_URL}; "
                                    f"cannot switch to {api_url} (fix: set API_URL before starting Python)")
        os.environ["API_URL"] = api_url
    try:
        import roboflow
    except ImportError as exc:  # pragma: no cover - the package is a dependency
        raise RoboflowError(f"the roboflow package is not installed ({exc}) (fix: pip install roboflow)") from None
    return roboflow


def pull(workspace: str, project: str, version: int, fmt: str = "voc", out_dir: str | Path | None = None,
         api_key: str | None = None, overwrite: bool = False, api_url: str | None = None) -> Path:
    """Download a Roboflow dataset version (unpacked) to ``out_dir`` and return it.

    ``out_dir`` defaults to ``roboflow/<project>-<version>-<fmt>``.  The download goes to a temporary folder
    beside it and is renamed into place when complete, so a failed pull leaves nothing half-written.
    """
    if fmt not in FORMATS:
        raise RoboflowError(f"format {fmt!r} is not one karyotf reads (fix: use one of {', '.join(FORMATS)})")
    key = api_key_from(api_key)
    out = Path(out_dir) if out_dir else Path("roboflow") / f"{project}-{version}-{fmt}"
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise RoboflowError(f"{out} exists and is not empty (fix: pass --overwrite or another --out)")
    rf = _import_roboflow(api_url)
    from roboflow import config
    import requests

    where = f"{workspace}/{project}/{version} ({fmt})"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
    try:
        try:
            client = rf.Roboflow(api_key=key)
            ws = client.workspace(workspace)
            ds = ws.project(project).version(int(version))
            ds.download(fmt, location=str(tmp / "data"), overwrite=True)
        except requests.exceptions.RequestException as exc:
            raise RoboflowError(f"cannot reach the Roboflow API at {config.API_URL} to pull {where}: "
                                f"{type(exc).__name__} (fix: check the network connection; Roboflow needs it)") from None
        except RoboflowError:
            raise
        except Exception as exc:  # the roboflow package raises RuntimeError / its own errors with the API's text
            text = str(exc).strip() or type(exc).__name__
            hint = ("check the API key" if "401" in text or "unauthor" in text.lower() or "api key" in text.lower()
                    else "check workspace, project and version names in the Roboflow URL")
            raise RoboflowError(f"Roboflow pull of {where} failed: {text[:500]} (fix: {hint})") from None
        data = tmp / "data"
        if not data.is_dir() or not any(data.iterdir()):
            raise RoboflowError(f"Roboflow pull of {where} gave no files")
        if out.exists():
            shutil.rmtree(out)
        os.replace(data, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# ----------------------------------------------------------------------------------------------- import


@dataclass
class ImportResult:
    """What :func:`import_export` read and wrote."""

    out_dir: Path
    fmt: str
    images: int = 0
    boxes: int = 0
    skipped_images: int = 0
    splits: dict[str, list[str]] = field(default_factory=dict)
    class_names: dict[str, str] = field(default_factory=dict)
    """Roboflow class name -> karyotf class name, for every name used."""
    manifest: Path | None = None
    records: object | None = None

    def text(self) -> str:
        lines = [f"imported a Roboflow {self.fmt} export: {self.images} image(s), {self.boxes} chromosome(s) "
                 f"-> {self.out_dir}"]
        lines.append("  splits: " + ", ".join(f"{k} {len(v)}" for k, v in self.splits.items()))
        if self.skipped_images:
            lines.append(f"  {self.skipped_images} image(s) without chromosome boxes skipped")
        renamed = {k: v for k, v in self.class_names.items() if k != v}
        if renamed:
            lines.append("  classes renamed: " + ", ".join(f"{k}->{v}" for k, v in sorted(renamed.items())))
        if self.records is not None:
            lines.append(self.records.text())
        return "\n".join(lines)


def detect_format(export_dir: str | Path) -> str:
    """``voc``, ``coco`` or ``tfrecord`` from the files of an unpacked export."""
    d = Path(export_dir)
    if not d.is_dir():
        raise RoboflowError(f"{d}: no such folder (fix: unzip the Roboflow export and give its folder)")
    if next(d.rglob(COCO_FILE), None) is not None:
        return "coco"
    if next(d.rglob("*.tfrecord"), None) is not None:
        return "tfrecord"
    if next(d.rglob("*.xml"), None) is not None:
        return "voc"
    raise RoboflowError(f"{d}: not a Roboflow VOC, COCO or TFRecord export (no *.xml, {COCO_FILE} or *.tfrecord) "
                        "(fix: export the version from Roboflow as 'Pascal VOC', 'COCO' or 'TFRecord' and unzip it)")


def _split_dirs(root: Path, pattern: str) -> list[tuple[str, Path]]:
    """(split, folder) pairs: Roboflow's split folders, or the root itself for a flat export."""
    found = [(s, root / s) for s in SPLITS if (root / s).is_dir() and next((root / s).glob(pattern), None)]
    if found:
        return found
    if next(root.glob(pattern), None) is not None:
        return [("train", root)]
    return [(p.name, p) for p in sorted(root.iterdir()) if p.is_dir() and next(p.glob(pattern), None)]


class _Names:
    """Maps Roboflow class names to canonical names, remembering what it mapped."""

    def __init__(self, class_map: Mapping[str, str] | None):
        self.extra = {str(k).strip().lower(): v for k, v in (class_map or {}).items()}
        self.used: dict[str, str] = {}

    def __call__(self, raw: str, where: str, obj: int | None = None) -> str:
        raw = str(raw).strip()
        target = self.extra.get(raw.lower(), raw)
        try:
            name = classes.canonical(target)
        except classes.UnknownClassError as exc:
            at = f"{where}" + (f", object #{obj}" if obj is not None else "")
            raise RoboflowError(f"{at}: {exc} (fix: rename the class in Roboflow, or map it with "
                                f"--class-map '{raw}=<1..22|X|Y>')") from None
        self.used[raw] = name
        return name


def original_stem(name: str) -> str:
    """``1054642_jpg.rf.3f9a...`` -> ``1054642`` (Roboflow's renaming undone); other names unchanged."""
    stem = Path(name).stem if Path(name).suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff") \
        else name
    m = _RF_NAME.match(stem)
    return m.group("stem") if m else stem


@dataclass
class _Item:
    split: str
    source: str
    width: int
    height: int
    boxes: list[Box]
    image_path: Path | None = None
    image_bytes: bytes | None = None


def _read_voc_split(split: str, folder: Path, names: _Names) -> Iterator[_Item]:
    for xml in sorted(folder.glob("*.xml")):
        try:
            root = ET.parse(xml).getroot()
        except ET.ParseError as exc:
            raise RoboflowError(f"{xml}: malformed XML ({exc}) (fix: re-export from Roboflow)") from None
        filename = (root.findtext("filename") or "").strip()
        image = find_image(xml, filename)
        if image is None:
            raise RoboflowError(f"{xml}: image {filename or xml.stem} not found beside it (fix: unzip the whole export)")
        try:
            width = int(float(root.findtext("size/width")))
            height = int(float(root.findtext("size/height")))
        except (TypeError, ValueError):
            info = images.inspect(image)
            width, height = info.width, info.height
        boxes = []
        for i, obj in enumerate(root.findall("object")):
            name = names(obj.findtext("name") or "", str(xml), i)
            bnd = obj.find("bndbox")
            try:
                coords = [float(bnd.findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax")]
            except (AttributeError, TypeError, ValueError):
                raise RoboflowError(f"{xml}, object #{i}: missing or bad <bndbox> (fix: re-export from Roboflow)") \
                    from None
            boxes.append(Box(*coords, name, difficult=(obj.findtext("difficult") or "0").strip() == "1",
                             truncated=(obj.findtext("truncated") or "0").strip() == "1"))
        yield _Item(split, filename or image.name, width, height, boxes, image_path=image)


def _read_coco_split(split: str, folder: Path, names: _Names) -> Iterator[_Item]:
    path = folder / COCO_FILE
    try:
        coco = json.loads(path.read_text())
        cats = {int(c["id"]): c["name"] for c in coco.get("categories", [])}
        images = {int(im["id"]): im for im in coco["images"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise RoboflowError(f"{path}: not a COCO annotation file ({type(exc).__name__}: {exc}) "
                            "(fix: re-export from Roboflow as COCO JSON)") from None
    by_image: dict[int, list[dict]] = {i: [] for i in images}
    for k, a in enumerate(coco.get("annotations", [])):
        if int(a.get("image_id", -1)) not in by_image:
            raise RoboflowError(f"{path}, annotation #{k}: image_id {a.get('image_id')} is not in 'images'")
        by_image[int(a["image_id"])].append(a)
    for image_id, im in images.items():
        file = folder / im["file_name"]
        if not file.is_file():
            raise RoboflowError(f"{path}: image {im['file_name']} not found in {folder} (fix: unzip the whole export)")
        boxes = []
        for a in by_image[image_id]:
            cat = int(a["category_id"])
            if cat not in cats:
                raise RoboflowError(f"{path}, annotation id {a.get('id')}: category_id {cat} not in 'categories'")
            x, y, w, h = (float(v) for v in a["bbox"])
            boxes.append(Box(x, y, x + w, y + h, names(cats[cat], f"{path} ({im['file_name']})", a.get("id"))))
        yield _Item(split, im["file_name"], int(im["width"]), int(im["height"]), boxes, image_path=file)


def _read_tfrecord_split(split: str, folder: Path, names: _Names) -> Iterator[_Item]:
    import tensorflow as tf

    maps = sorted(folder.glob("*label_map.pbtxt")) or sorted(folder.parent.glob("*label_map.pbtxt"))
    try:  # Roboflow writes `name: "21", id: 1,` with commas: a valid text proto
        label_map = rundir.read_label_map(maps[0]) if maps else {}
    except rundir.LabelMapError as exc:
        raise RoboflowError(f"{exc} (fix: re-export from Roboflow)") from None
    for record in sorted(folder.glob("*.tfrecord")):
        for n, raw in enumerate(tf.data.TFRecordDataset(str(record))):
            ex = tf.train.Example.FromString(raw.numpy())
            f = ex.features.feature

            def many(key, kind):
                return list(getattr(f[key], kind).value) if key in f else []

            where = f"{record}, example #{n}"
            try:
                encoded = f["image/encoded"].bytes_list.value[0]
                width = int(f["image/width"].int64_list.value[0])
                height = int(f["image/height"].int64_list.value[0])
            except (KeyError, IndexError):
                raise RoboflowError(f"{where}: no image/encoded, image/width or image/height "
                                    "(fix: re-export from Roboflow as TFRecord)") from None
            filename = (many("image/filename", "bytes_list") or [b""])[0].decode() or f"{record.stem}_{n}.jpg"
            xmin, xmax = many("image/object/bbox/xmin", "float_list"), many("image/object/bbox/xmax", "float_list")
            ymin, ymax = many("image/object/bbox/ymin", "float_list"), many("image/object/bbox/ymax", "float_list")
            labels = many("image/object/class/label", "int64_list")
            texts = [t.decode() for t in many("image/object/class/text", "bytes_list")]
            boxes = []
            for i in range(len(xmin)):
                if i < len(labels) and int(labels[i]) in label_map:
                    raw_name = label_map[int(labels[i])]
                elif i < len(texts):
                    raw_name = texts[i]
                else:
                    raise RoboflowError(f"{where}, object #{i}: label {labels[i] if i < len(labels) else '?'} is not "
                                        f"in the label map {maps[0] if maps else '(none found)'} and has no class "
                                        "text (fix: keep the *_label_map.pbtxt beside the .tfrecord)")
                boxes.append(Box(xmin[i] * width, ymin[i] * height, xmax[i] * width, ymax[i] * height,
                                 names(raw_name, where, i)))
            yield _Item(split, filename, width, height, boxes, image_bytes=encoded)


_READERS = {"voc": ("*.xml", _read_voc_split), "coco": (COCO_FILE, _read_coco_split),
            "tfrecord": ("*.tfrecord", _read_tfrecord_split)}


def _image_suffix(data: bytes, default: str = ".jpg") -> str:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    if data[:3] == b"\xff\xd8\xff":
        return ".jpg"
    return default


def _clip(boxes: list[Box], width: int, height: int, where: str) -> list[Box]:
    out = []
    for i, b in enumerate(boxes):
        x0, y0 = max(0.0, b.xmin), max(0.0, b.ymin)
        x1, y1 = min(float(width), b.xmax), min(float(height), b.ymax)
        if x1 - x0 < 0.5 or y1 - y0 < 0.5:
            log.warning("%s, object #%d (%s): box has no area inside the %dx%d image; dropped", where, i, b.name,
                        width, height)
            continue
        out.append(b.with_coords(x0, y0, x1, y1))
    return out


def import_export(export_dir: str | Path, out_dir: str | Path, fmt: str | None = None,
                  class_map: Mapping[str, str] | None = None, records_dir: str | Path | None = None,
                  keep_names: bool = False, progress: bool = True, **records_kw) -> ImportResult:
    """Read an unpacked Roboflow export (``fmt`` auto-detected) and write karyotf's VOC layout to ``out_dir``.

    ``class_map``: extra Roboflow-name -> karyotf-name spellings (``{"chromosome-21": "21"}``).
    ``keep_names``: keep Roboflow's ``*_jpg.rf.<hash>`` names instead of restoring the originals.
    ``records_dir``: also write TFRecords there with :func:`karyotf.records.build_records` (``records_kw``
    passed on).  Images without a box are skipped (counted).
    """
    export_dir = Path(export_dir)
    fmt = fmt or detect_format(export_dir)
    if fmt not in _READERS:
        raise RoboflowError(f"format {fmt!r} is not one karyotf reads (fix: use one of {', '.join(FORMATS)})")
    pattern, reader = _READERS[fmt]
    splits = _split_dirs(export_dir, pattern)
    if not splits:
        raise RoboflowError(f"{export_dir}: no {pattern} in it or its train/valid/test folders "
                            f"(fix: check --format, or unzip the {fmt} export here)")
    out_dir = Path(out_dir)
    img_dir, ann_dir = out_dir / "images", out_dir / "annotations"
    names = _Names(class_map)
    result = ImportResult(out_dir=out_dir, fmt=fmt)
    taken: Counter = Counter()
    items_meta = []
    iterator = (item for split, folder in splits for item in reader(split, folder, names))
    if progress:
        iterator = tqdm(iterator, desc=f"importing Roboflow {fmt}", unit="image", leave=False)
    for item in iterator:
        boxes = _clip(item.boxes, item.width, item.height, item.source)
        if not boxes:
            result.skipped_images += 1
            continue
        data = item.image_bytes if item.image_bytes is not None else item.image_path.read_bytes()
        suffix = _image_suffix(data, Path(item.source).suffix.lower() or ".jpg")
        stem = Path(item.source).stem if keep_names else original_stem(Path(item.source).name)
        taken[stem] += 1
        original = None
        if taken[stem] > 1:  # Roboflow's own augmentations give several images of one original: its copies
            original, stem = stem, f"{stem}_rf{taken[stem]}"  # name it, so records keep them in one split
        image_path = img_dir / f"{stem}{suffix}"
        with atomic_path(image_path) as tmp:
            tmp.write_bytes(data)
        info = images.inspect(image_path)
        w, h = info.width, info.height
        if (w, h) != (item.width, item.height):
            raise RoboflowError(f"{item.source}: annotation says {item.width}x{item.height} but the image is "
                                f"{w}x{h} (fix: re-export from Roboflow)")
        write_voc(Annotation(image_path=image_path, width=w, height=h, boxes=boxes, original=original),
                  ann_dir / f"{stem}.xml")
        result.images += 1
        result.boxes += len(boxes)
        result.splits.setdefault(item.split, []).append(stem)
        items_meta.append({"image": image_path.name, "source": item.source, "split": item.split,
                           "boxes": len(boxes)})
    if not result.images:
        raise RoboflowError(f"{export_dir}: the export holds no image with chromosome boxes")
    result.class_names = dict(sorted(names.used.items()))
    result.manifest = atomic_write_json(out_dir / "roboflow_import.json", {
        "export_dir": str(export_dir), "format": fmt, "images": result.images, "boxes": result.boxes,
        "skipped_images": result.skipped_images, "class_names": result.class_names,
        "splits": result.splits, "items": items_meta})
    if records_dir is not None:
        result.records = build_records(out_dir, records_dir, progress=progress, **records_kw)
    return result


def parse_class_map(text: str | None) -> dict[str, str]:
    """``'chromosome-21=21,sex-x=X'`` -> dict (for the CLI)."""
    out = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise RoboflowError(f"--class-map entry {part!r}: write ROBOFLOW_NAME=KARYOTF_NAME, e.g. chromo21=21")
        k, v = part.split("=", 1)
        out[k.strip()] = v.strip()
    return out
