"""A review folder: the cells ``karyotf karyogram`` wrote, their boxes and count call, and what accepting writes.

A *cell* is a folder under the review root holding ``detections.json`` (the root itself, or sub-folders down to
:data:`MAX_DEPTH`; symlinked folders are not followed).  Accepting a review writes, inside the cell's folder:

- ``<image stem>.xml``: the corrected boxes as LabelImg Pascal VOC beside the image copy, so ``karyotf records``
  takes the cell folder (or the whole review root) as it is;
- ``reviewed/``: the karyogram rebuilt from the corrected boxes (``karyogram.png``, ``detections.json``,
  ``report.html``) and ``report.json`` with a ``review`` section (reviewer, UTC time, comment, resolved and open
  flags, what changed against the model output, the revision).  The rebuild separates the chromosomes as the
  model's karyogram did (the same separation model, straightening) and applies the reviewer's split lines
  (:mod:`karyotf.separate.edit`; listed under ``changes.split``, with the pixels each chromosome had before and
  after).  ``report.json`` is written last: it is the
  commit point and its hash is the cell's version.

The model output (``karyogram.png``, ``detections.json``, ``report.*`` in the cell folder) is never touched.
Every write is atomic (:mod:`karyotf.io`); a per-cell lock and the version the client last saw make a stale
accept fail with :class:`ReviewConflict` instead of overwriting another tab's review.  The lock is a thread lock
and an OS file lock on ``<cell>/.review.lock`` (``flock``), so two ``karyotf review`` processes on one folder
take turns too: the second sees the first's version and gets the conflict, never overwriting it.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import getpass
import hashlib
import json
import math
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import classes, images
from ..annotations import Annotation, Box, read_voc, write_voc
from ..errors import AnnotationError, KaryotfError, ReviewError
from ..io import atomic_path, atomic_write_bytes
from ..karyogram import ideogram
from ..karyogram.call import check_call, count_call
from ..karyogram.defaults import LONGEST, LOW_MEAN_SCORE, LOW_SCORE, OVERLAP_IOU
from ..karyogram.detections import CellDetections

# Imports inside functions, and why: fcntl (optional or platform-specific: tried, with a fallback);
# karyotf.karyogram.layout (it loads OpenCV and Pillow at its top); msvcrt (optional or platform-specific: tried, with
# a fallback); time (optional or platform-specific: tried, with a fallback); karyotf.karyogram.build (it loads OpenCV
# and Pillow at its top); karyotf.separate (OpenCV, and TensorFlow for a separation model); PIL (the mask PNGs).

DETECTIONS = "detections.json"
REVIEWED = "reviewed"
MAX_DEPTH = 3
"""How deep below the review root cells are looked for."""
MAX_COMMENT = 20_000
STATUSES = ("to review", "reviewed", "flagged")
LOCK_FILE = ".review.lock"


def _lock_fd(fd: int) -> None:
    """Block until this process holds an exclusive lock on the open file ``fd`` (released when it is closed)."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt
        import time

        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
                return
            except OSError:
                time.sleep(0.05)
    fcntl.flock(fd, fcntl.LOCK_EX)


class ReviewConflict(ReviewError):
    """The cell was accepted elsewhere since the client loaded it (HTTP 409)."""


class UnknownCell(ReviewError):
    """No cell with this id in the review folder (HTTP 404)."""


def inside(root: Path, path: Path) -> bool:
    """Whether ``path``, with every symlink resolved, lies inside ``root`` (also resolved)."""
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
        return True
    except (ValueError, OSError, RuntimeError):
        return False


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReviewError(f"{path}: missing") from None
    except (OSError, ValueError) as exc:
        raise ReviewError(f"{path}: unreadable ({exc}) (fix: rebuild the cell with karyotf karyogram)") from None
    if not isinstance(data, dict):
        raise ReviewError(f"{path}: not a JSON object (fix: rebuild the cell with karyotf karyogram)")
    return data


@dataclass
class Cell:
    id: str
    folder: Path


def parse_boxes(items, width: int, height: int) -> list[tuple[Box, int | None]]:
    """Boxes from a client's JSON: ``[{"class": "21", "box": [x0, y0, x1, y1], "origin": i | null, "score": s | null},
    ...]`` ->
    ``[(Box, origin)]``.  Raises :class:`ReviewError` naming the box and the fix."""
    if not isinstance(items, list):
        raise ReviewError("'boxes' must be a list of {class, box} objects")
    out = []
    for i, it in enumerate(items):
        if not isinstance(it, dict):
            raise ReviewError(f"box #{i}: not an object (fix: send {{'class': '21', 'box': [x0, y0, x1, y1]}})")
        try:
            name = classes.canonical(str(it.get("class", "")))
        except classes.UnknownClassError:
            raise ReviewError(f"box #{i}: class {it.get('class')!r} is not one of 1..22, X, Y "
                              "(fix: give every box a class before accepting)") from None
        coords = it.get("box")
        if (not isinstance(coords, list) or len(coords) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                           for v in coords)):
            raise ReviewError(f"box #{i} ({name}): 'box' must be four numbers [xmin, ymin, xmax, ymax] in pixels")
        x0, y0, x1, y1 = (float(v) for v in coords)
        x0, x1 = sorted((max(0.0, min(width, x0)), max(0.0, min(width, x1))))
        y0, y1 = sorted((max(0.0, min(height, y0)), max(0.0, min(height, y1))))
        if x1 - x0 < 2 or y1 - y0 < 2:
            raise ReviewError(f"box #{i} ({name}): ({x0:g},{y0:g})-({x1:g},{y1:g}) is smaller than 2 px inside the "
                              f"{width}x{height} image (fix: draw it over the chromosome)")
        origin = it.get("origin")
        if origin is not None and (not isinstance(origin, int) or isinstance(origin, bool) or origin < 0):
            raise ReviewError(f"box #{i} ({name}): 'origin' must be the index of a model box or null")
        score = it.get("score")
        if score is not None and (not isinstance(score, (int, float)) or isinstance(score, bool)
                                  or not 0 <= score <= 1):
            raise ReviewError(f"box #{i} ({name}): 'score' must be a number in [0, 1] or null")
        out.append((Box(x0, y0, x1, y1, name, score=None if score is None else float(score)), origin))
    return out


def ideograms(resolution=None) -> dict:
    """The ISCN ideogram of each class for the page to draw beside its karyogram slot: ``{class: {"length": ISCN
    length relative to chromosome 1, "bands": [[start, stop, grey, stain], ...] as fractions of the length}}``."""
    res = int(resolution) if resolution in ideogram.RESOLUTIONS else ideogram.DEFAULT_RESOLUTION
    table = ideogram.bands(res)
    longest = table["1"][-1].stop
    out = {}
    for name, bands in table.items():
        total = bands[-1].stop
        out[name] = {"length": round(total / longest, 4),
                     "bands": [[round(b.start / total, 4), round(b.stop / total, 4), b.grey, b.stain] for b in bands]}
    return out


def not_counted(det: CellDetections) -> list[dict]:
    """The model's detections that the karyogram did not count (``detections.json``'s ``not_counted``: boxes
    suppressed by NMS, below the minimum score), for the page to offer back: ``[{class, box, score, why}]``.
    Folders written before that key existed have none."""
    return det.not_counted_entries()


def _read_detections(path: Path) -> CellDetections:
    """A cell's ``detections.json`` (:class:`karyotf.karyogram.detections.CellDetections`); ReviewError naming the
    file and the fix."""
    try:
        return CellDetections.from_dict(_read_json(path))
    except ValueError as exc:
        raise ReviewError(f"{path}: unexpected content ({exc}) (fix: rebuild the cell with karyotf karyogram)") from None


class ReviewFolder:
    """The cells under ``root`` and the review operations on them (what the web app's API calls)."""

    def __init__(self, root: str | Path, reviewer: str | None = None):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise ReviewError(f"{root}: no such folder (fix: give the folder karyotf karyogram wrote into)")
        self.reviewer = reviewer or _default_reviewer()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._cells: dict[str, Cell] | None = None
        self._pixel_cache: tuple | None = None

    # ------------------------------------------------------------------------------------------ discovery
    def cells(self, refresh: bool = False) -> dict[str, Cell]:
        if self._cells is None or refresh:
            found: dict[str, Cell] = {}
            for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
                here = Path(dirpath)
                depth = len(here.relative_to(self.root).parts)
                dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != REVIEWED
                                     and not (here / d).is_symlink() and depth < MAX_DEPTH)
                if DETECTIONS in filenames and not (here / DETECTIONS).is_symlink():
                    rel = here.relative_to(self.root).as_posix()
                    cid = self.root.name if rel == "." else rel
                    while cid in found:
                        cid += "_"
                    found[cid] = Cell(cid, here)
            self._cells = dict(sorted(found.items()))
        return self._cells

    def cell(self, cell_id: str) -> Cell:
        cells = self.cells()
        if cell_id not in cells:
            cells = self.cells(refresh=True)
        if cell_id not in cells:
            raise UnknownCell(f"no cell {cell_id!r} in {self.root} (fix: pick one from the list; "
                              f"{len(cells)} cell(s) found)")
        return cells[cell_id]

    def _lock(self, cell_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(cell_id, threading.Lock())

    @contextlib.contextmanager
    def _exclusive(self, cell: Cell):
        """This cell for this thread alone, across threads (a lock) and processes (a file lock on
        ``<cell>/.review.lock``; the file stays, empty)."""
        with self._lock(cell.id):
            path = cell.folder / LOCK_FILE
            if path.is_symlink():
                raise ReviewError(f"{path} is a link (fix: remove it)")
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
            try:
                _lock_fd(fd)
                yield
            finally:
                os.close(fd)  # closing releases the lock

    # ------------------------------------------------------------------------------------------ reading
    def _model(self, cell: Cell) -> dict:
        det = _read_detections(cell.folder / DETECTIONS)
        width, height = det.width, det.height
        try:
            boxes = det.boxes()
        except ValueError as exc:
            raise ReviewError(f"{cell.folder / DETECTIONS}: unexpected content ({exc}) "
                              "(fix: rebuild the cell with karyotf karyogram)") from None
        image = self._image(cell, det)

        params = {"longest": LONGEST, "low_score": LOW_SCORE, "low_mean_score": LOW_MEAN_SCORE,
                  "overlap_iou": OVERLAP_IOU}
        params.update(det.params)
        from ..karyogram.layout import parse_rows

        try:
            rows = [list(r) for r in parse_rows(det.rows)]
        except KaryotfError as exc:
            raise ReviewError(f"{cell.folder / DETECTIONS}: {exc}") from None
        return {"det": det, "width": width, "height": height, "boxes": boxes, "image": image, "params": params,
                "rows": rows}

    def _image(self, cell: Cell, det: CellDetections) -> Path | None:
        names = [det.image_file, Path(det.image).name]
        for name in filter(None, names):
            p = cell.folder / Path(name).name
            if p.is_file() and inside(self.root, p):
                return p
        return None

    def version(self, cell: Cell) -> str:
        """The cell's version: a hash of its reviewed ``report.json`` (``"unreviewed"`` before the first accept)."""
        p = cell.folder / REVIEWED / "report.json"
        try:
            return hashlib.sha256(p.read_bytes()).hexdigest()[:16]
        except FileNotFoundError:
            return "unreviewed"

    def _review(self, cell: Cell) -> dict | None:
        p = cell.folder / REVIEWED / "report.json"
        if not p.is_file():
            return None
        rep = _read_json(p)
        return rep if isinstance(rep.get("review"), dict) else None

    def call(self, boxes: list[Box], params: dict | None = None, image: Path | None = None) -> dict:
        """The count call (:func:`karyotf.karyogram.call.count_call`, the one implementation) as a dict; with the
        cell's ``image``, the box check too (:func:`karyotf.karyogram.call.check_call`: empty and duplicate boxes,
        an image that does not match its boxes), as the karyogram has it."""
        p = params or {}
        kw = {k: p[k] for k in ("low_score", "low_mean_score", "overlap_iou") if k in p}
        c = count_call(boxes, **kw)
        if image is not None and boxes:
            check_call(c, self._pixels(image), boxes)
        return {**c.to_dict(), "low_confidence": c.low_confidence}

    def _pixels(self, image: Path):
        """The decoded image of a cell, kept for the next call on the same cell (one at a time)."""
        key = (str(image), image.stat().st_mtime_ns)
        with self._locks_guard:
            if self._pixel_cache is not None and self._pixel_cache[0] == key:
                return self._pixel_cache[1]
        arr = images.load(image)
        with self._locks_guard:
            self._pixel_cache = (key, arr)
        return arr

    def _separation(self, cell: Cell, m: dict, boxes: list[Box]):
        """(pixels, :class:`karyotf.separate.separator.Separation`) of ``boxes`` on the cell's image, with the model
        the cell's karyogram was separated with (``params.separate``), else the classical cut-out."""
        from ..separate.separator import load, separate

        if m["image"] is None:
            raise ReviewError(f"the image of {cell.id} is not inside its folder (fix: rebuild the cell with "
                              "karyotf karyogram)")
        arr = self._pixels(m["image"])
        model = m["params"].get("separate")
        if model and not Path(model).is_dir():
            raise ReviewError(f"cell {cell.id} was separated with the model {model}, which is gone (fix: put it "
                              "back, or rebuild the cell with karyotf karyogram --separate MODEL)")
        return arr, separate(arr, boxes, load(model) if model else None)

    def _splits(self, cell: Cell, m: dict, boxes: list[Box], splits) -> tuple[list, list[dict], object]:
        """The split lines of a request applied to the masks of ``boxes``: (cut-outs, one record a split, the
        separation before them); a bad line is a :class:`ReviewError` naming the chromosome."""
        from ..separate.edit import SplitError, apply_splits

        if splits is None:
            splits = []
        if not isinstance(splits, list):
            raise ReviewError("'splits' must be a list of {chromosomes: [i] or [i, j], line: [[x, y], ...]}")
        arr, sep = self._separation(cell, m, boxes)
        try:
            cuts, records = apply_splits(arr, boxes, sep.cutouts, splits)
        except SplitError as exc:
            raise ReviewError(f"cell {cell.id}: {exc}") from None
        return cuts, records, sep

    def masks(self, cell_id: str, payload: dict) -> dict:
        """Each chromosome's mask as the karyogram draws it, after the split lines of ``payload`` (``{"boxes",
        "splits", "show"}``: the boxes as the page has them, the splits on their indices, optionally the indices
        to return): ``{"masks": [{index, class, origin, size, method, uncertain, area, mask, cutout}], "splits":
        [records]}``; ``mask`` (the mask, coloured, transparent elsewhere) and ``cutout`` are PNG data URLs of the
        mask's window at ``origin`` in the cell's pixels."""
        if not isinstance(payload, dict):
            raise ReviewError("the request body must be a JSON object {boxes, splits}")
        cell = self.cell(cell_id)
        m = self._model(cell)
        boxes = [b for b, _ in parse_boxes(payload.get("boxes"), m["width"], m["height"])]
        cuts, records, sep = self._splits(cell, m, boxes, payload.get("splits"))
        show = payload.get("show")
        if show is None:
            show = range(len(boxes))
        elif not isinstance(show, list) or not all(isinstance(i, int) and 0 <= i < len(boxes) for i in show):
            raise ReviewError(f"'show' must be a list of box indices (0..{len(boxes) - 1})")
        out = []
        for i in show:
            c = cuts[i]
            out.append({"index": i, "class": boxes[i].name, "origin": list(c.origin),
                        "size": [int(c.mask.shape[1]), int(c.mask.shape[0])], "method": c.method,
                        "uncertain": sep.uncertain.get(i), "area": c.area, "mask": _png_url(_tint(c.mask)),
                        "cutout": _png_url(c.image)})
        return {"masks": out, "splits": records, "separate": m["params"].get("separate")}

    def summary(self, cell: Cell) -> dict:
        """One line of the cell list: id, name, status, call, open flags, reviewer."""
        out = {"id": cell.id, "name": cell.folder.name if cell.folder != self.root else self.root.name}
        try:
            rep = self._review(cell)
            if rep is None:
                det = _read_detections(cell.folder / DETECTIONS)
                rep0 = _read_json(cell.folder / "report.json") if (cell.folder / "report.json").is_file() else {}
                out.update(status="to review", call=det.call, flags=len(rep0.get("flags", [])),
                           review=sum(f.get("level", "review") == "review" for f in rep0.get("flags", [])))
            else:
                r = rep["review"]
                out.update(status="flagged" if r.get("open_flags") else "reviewed", call=rep.get("call"),
                           flags=len(r.get("open_flags") or []), reviewer=r.get("reviewer"),
                           reviewed_at=r.get("reviewed_at"))
        except ReviewError as exc:
            out.update(status="to review", call=None, flags=0, error=str(exc))
        return out

    def list(self) -> list[dict]:
        return [self.summary(c) for c in self.cells(refresh=True).values()]

    def load(self, cell_id: str) -> dict:
        """Everything the page shows of a cell: image, boxes (the reviewed ones once accepted), call, flags, the
        model's original output, the review (if any) and the version to send back on accept."""
        cell = self.cell(cell_id)
        m = self._model(cell)
        rel = cell.folder.relative_to(self.root).as_posix()
        url = "/files/" + ("" if rel == "." else rel + "/")
        det = m["det"]
        original = []
        for i, (b, d) in enumerate(zip(m["boxes"], det.detections)):
            original.append({"class": b.name, "box": list(b.as_tuple()), "score": b.score, "origin": i,
                             "kbox": d.get("karyogram_box")})
        rep = self._review(cell)
        if rep is not None:
            rdet = _read_detections(cell.folder / REVIEWED / DETECTIONS)
            r = rep["review"]
            origins = r.get("origins") or [None] * len(rdet.detections)
            boxes = [{"class": d["class"], "box": d["box"], "score": d.get("score"), "origin": o,
                      "kbox": d.get("karyogram_box")} for d, o in zip(rdet.detections, origins)]
            karyogram = url + REVIEWED + "/karyogram.png"
            current = [Box(*map(float, b["box"]), b["class"], score=b["score"]) for b in boxes]
        else:
            boxes, karyogram, current, r = original, url + "karyogram.png", m["boxes"], None
        return {
            "id": cell.id, "name": cell.folder.name, "width": m["width"], "height": m["height"],
            "not_counted": not_counted(det),
            "image": url + m["image"].name if m["image"] is not None else None,
            "image_error": None if m["image"] is not None else (
                f"the image of {cell.id} is not inside its folder (fix: rebuild it with karyotf karyogram, which "
                "keeps a copy of the image beside the karyogram)"),
            "karyogram": karyogram, "original_karyogram": url + "karyogram.png",
            "rows": m["rows"], "params": m["params"], "source": det.source,
            "boxes": boxes,
            "original": {"boxes": original, "call": self.call(m["boxes"], m["params"], m["image"])},
            "call": self.call(current, m["params"], m["image"]), "review": r, "version": self.version(cell),
            "status": self.summary(cell)["status"], "ideograms": ideograms(m["params"].get("resolution")),
        }

    # ------------------------------------------------------------------------------------------ writing
    def accept(self, cell_id: str, payload: dict, reviewer: str | None = None) -> dict:
        """Write the review of a cell (see the module doc); ``payload``: ``{"version", "boxes", "resolved",
        "comment"}``.  Raises :class:`ReviewConflict` when ``version`` is not the cell's current version."""
        if not isinstance(payload, dict):
            raise ReviewError("the request body must be a JSON object {version, boxes, resolved, comment}")
        cell = self.cell(cell_id)
        comment = payload.get("comment") or ""
        resolved = payload.get("resolved") or []
        if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
            raise ReviewError(f"'comment' must be text of at most {MAX_COMMENT} characters")
        if not isinstance(resolved, list) or not all(isinstance(c, str) for c in resolved):
            raise ReviewError("'resolved' must be a list of flag codes")
        if "version" not in payload:
            raise ReviewError("'version' is missing (fix: send back the version the cell was loaded with)")
        with self._exclusive(cell):
            current = self.version(cell)
            if payload["version"] != current:
                prev = self._review(cell) or {}
                who = (prev.get("review") or {})
                raise ReviewConflict(
                    f"cell {cell.id} was accepted elsewhere since this page loaded it"
                    + (f" (by {who.get('reviewer')} at {who.get('reviewed_at')})" if who else "")
                    + ": your edits were not saved, so as not to overwrite that review "
                      "(fix: reload the cell, check the saved version, and redo your edits on it)")
            m = self._model(cell)
            out = cell.folder / REVIEWED
            if out.is_symlink() or (out.exists() and not inside(self.root, out)):
                raise ReviewError(f"{out} is a link: a review writes only inside {self.root} (fix: remove the link)")
            if m["image"] is None:
                raise ReviewError(f"the image of {cell.id} is not inside its folder (fix: rebuild the cell with "
                                  "karyotf karyogram)")
            parsed = parse_boxes(payload.get("boxes"), m["width"], m["height"])
            if not parsed:
                raise ReviewError("no chromosome boxes: nothing to accept (fix: draw the chromosomes, or leave the "
                                  "cell unreviewed)")
            model = m["boxes"]
            boxes, origins = [], []
            for b, o in parsed:
                if o is not None and o >= len(model):
                    raise ReviewError(f"'origin' {o} is not a model box (the cell has {len(model)})")
                same = o is not None and model[o].name == b.name and model[o].as_tuple() == b.as_tuple()
                # the model's score stays only on untouched boxes; a client's score is never trusted here
                boxes.append(model[o] if same else b.with_coords(*b.as_tuple(), score=None))
                origins.append(o)
            splits = payload.get("splits") or []
            split_records = self._splits(cell, m, boxes, splits)[1] if splits else []
            call = self.call(boxes, m["params"], m["image"])
            codes = [f["code"] for f in call["flags"]]
            resolved = [c for c in codes if c in set(resolved)]
            kept = {o for o in origins if o is not None}
            changes = {
                "relabelled": [{"origin": o, "from": model[o].name, "to": b.name}
                               for b, o in zip(boxes, origins) if o is not None and model[o].name != b.name],
                "moved": [o for b, o in zip(boxes, origins)
                          if o is not None and model[o].as_tuple() != b.as_tuple()],
                "deleted": [i for i in range(len(model)) if i not in kept],
                "added": sum(o is None for o in origins),
                "split": split_records,
            }
            prev = self._review(cell)
            review = {
                "reviewer": reviewer or self.reviewer, "reviewed_at": utc_now(),
                "revision": int(((prev or {}).get("review") or {}).get("revision", 0)) + 1,
                "comment": comment, "resolved_flags": resolved, "open_flags": [c for c in codes if c not in resolved],
                "changes": changes, "origins": origins,
                "model": {"call": m["det"].call, "count": len(model), "source": m["det"].source,
                          "files": {"karyogram": "../karyogram.png", "detections": f"../{DETECTIONS}",
                                    "report_json": "../report.json"}},
                "annotation": f"../{m['image'].stem}.xml",
            }
            ann = Annotation(image_path=m["image"], width=m["width"], height=m["height"], boxes=boxes)
            xml = cell.folder / f"{m['image'].stem}.xml"
            old_xml = xml.read_bytes() if xml.is_file() else None
            write_voc(ann, xml)
            from ..karyogram.build import build_karyogram

            params = m["params"]
            kw = {k: params[k] for k in ("longest", "low_score", "low_mean_score", "overlap_iou", "resolution")
                  if k in params}
            src = {"kind": "review", "image": m["image"].name, "reviewer": review["reviewer"],
                   "from": m["det"].source.get("kind")}
            try:
                build_karyogram(m["image"], boxes, out, rows=m["rows"], source=src,
                                keep_image=False, report_extra={"review": review},
                                separate=params.get("separate") or None,
                                straighten=bool(params.get("straighten")), splits=splits, **kw)
            except Exception as exc:  # a KaryogramError or worse: say which cell, keep the server up
                if old_xml is None:  # the XML must not claim a review that was not written
                    xml.unlink(missing_ok=True)
                else:
                    atomic_write_bytes(xml, old_xml)
                raise ReviewError(f"cell {cell.id}: the karyogram could not be rebuilt ({exc}); nothing was "
                                  "saved") from exc
        return self.load(cell.id)


def _tint(mask, rgba=(230, 0, 150, 120)):
    out = np.zeros(mask.shape + (4,), np.uint8)
    out[mask] = rgba
    return out


def _png_url(arr) -> str:
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _default_reviewer() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment
        return "unknown"


@dataclass
class ExportResult:
    out: Path
    cells: int
    boxes: int
    skipped: list[str]

    def text(self) -> str:
        lines = [f"exported {self.cells} reviewed cell(s), {self.boxes} chromosomes, to {self.out}/images and "
                 f"{self.out}/annotations (karyotf records {self.out})"]
        if self.skipped:
            lines.append(f"  not reviewed yet, left out: {len(self.skipped)} ({', '.join(self.skipped[:8])}"
                         + (" ..." if len(self.skipped) > 8 else "") + ")")
        return "\n".join(lines)


def export_voc(root: str | Path, out: str | Path) -> ExportResult:
    """Gather the reviewed cells of ``root`` into ``out/images`` + ``out/annotations`` (VOC), a dataset for
    ``karyotf records``.  Each XML is read back with :func:`karyotf.annotations.read_voc` before it is copied."""
    folder = ReviewFolder(root)
    out = Path(out)
    picked: dict[str, tuple[Cell, Annotation]] = {}
    skipped = []
    for cell in folder.cells(refresh=True).values():
        rep = folder._review(cell)
        if rep is None:
            skipped.append(cell.id)
            continue
        xml = cell.folder / Path(rep["review"].get("annotation", "")).name
        try:
            ann = read_voc(xml)
        except AnnotationError as exc:
            raise ReviewError(f"cell {cell.id}: its reviewed annotation is unreadable ({exc})") from None
        if not inside(folder.root, ann.image_path):
            raise ReviewError(f"cell {cell.id}: its image {ann.image_path} is outside {folder.root}")
        if ann.filename in picked:
            raise ReviewError(f"cells {picked[ann.filename][0].id} and {cell.id} both hold an image named "
                              f"{ann.filename} (fix: export them separately)")
        picked[ann.filename] = (cell, ann)
    boxes = 0
    for name, (cell, ann) in sorted(picked.items()):
        with atomic_path(out / "images" / name) as tmp:
            shutil.copyfile(ann.image_path, tmp)
        write_voc(Annotation(image_path=out / "images" / name, width=ann.width, height=ann.height,
                             boxes=ann.boxes, depth=ann.depth), out / "annotations" / f"{Path(name).stem}.xml")
        boxes += len(ann.boxes)
    return ExportResult(out=out, cells=len(picked), boxes=boxes, skipped=skipped)
