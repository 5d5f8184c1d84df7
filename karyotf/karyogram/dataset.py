"""Thesis-style data: annotated metaphases -> annotated karyogram images.

Each cell's ground-truth boxes are cut out, oriented and laid out as a karyogram; the karyogram image is
written with a VOC XML giving each chromosome's box *in the karyogram* and its class, so the thesis experiment
(detection on karyograms) can be rerun on real chromosomes: ``karyotf records DST`` reads the result as it reads
any VOC dataset (``images/`` + ``annotations/``; file stems are kept, so the case-grouped split still works).

By default the pictures are plain (no class numbers, ideograms, marks or text a detector could read); pass
``labels=True`` / ``ideograms=True`` for the printed look.
"""
from __future__ import annotations

import csv
import io
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from .. import __version__
from ..annotations import Annotation, Box, load_dataset, write_voc
from ..errors import AnnotationError, KaryogramError
from ..io import atomic_path, atomic_write_json, atomic_write_text
from .build import LONGEST, make_karyogram

# Imports inside functions, and why: karyotf.karyogram.layout (it loads OpenCV and Pillow at its top).

log = logging.getLogger(__name__)
FORMATS = ("png", "jpg")


@dataclass
class KaryogramDatasetResult:
    out_dir: Path
    written: int = 0
    skipped: int = 0
    boxes: int = 0
    errors: list[str] = field(default_factory=list)
    calls: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        lines = [f"wrote {self.written} karyogram image(s) with {self.boxes} chromosome boxes to {self.out_dir}/ "
                 f"(images/, annotations/, calls.csv, manifest.json)"]
        if self.skipped:
            lines.append(f"skipped {self.skipped} cell(s): see manifest.json")
        return "\n".join(lines)


def karyogram_annotation(ann: Annotation, rows=None, longest: float = LONGEST, labels: bool = False,
                         ideograms: bool = False, image_name: str | None = None):
    """(PIL karyogram image, Annotation of it, Call) for one annotated cell."""
    call, layout, _t, boxes = make_karyogram(ann.image_path, ann.boxes, rows=rows, longest=longest,
                                             ideograms=ideograms, labels=labels, marks=labels, title=None)
    kb = []
    for p in layout.placements:
        src = boxes[p.index]
        x0, y0, x1, y1 = p.box
        kb.append(Box(float(x0), float(y0), float(x1), float(y1), src.name, difficult=src.difficult))
    w, h = layout.image.size
    name = image_name or f"{ann.image_id}.png"
    kann = Annotation(image_path=Path(name), width=w, height=h, boxes=kb, depth=3)
    return layout.image, kann, call


def build_karyograms_dataset(src: str | Path, out_dir: str | Path, rows=None, longest: float = LONGEST,
                             labels: bool = False, ideograms: bool = False, image_format: str = "png",
                             strict: bool = False, progress: bool = True) -> KaryogramDatasetResult:
    """Turn every annotated metaphase of ``src`` (a VOC folder, either layout) into an annotated karyogram in
    ``out_dir/images`` + ``out_dir/annotations``; also ``calls.csv`` (the count call of each cell) and
    ``manifest.json`` (settings, source, skipped cells).  Files are written atomically."""
    fmt = image_format.lower().lstrip(".").replace("jpeg", "jpg")
    if fmt not in FORMATS:
        raise KaryogramError(f"image format {image_format!r} (fix: use one of {', '.join(FORMATS)})")
    from .layout import parse_rows

    parse_rows(rows)
    out = Path(out_dir)
    src = Path(src)
    if out.resolve() == src.resolve():
        raise KaryogramError(f"{out}: output folder is the source folder (fix: give another --out)")
    anns, summary = load_dataset(src, strict=strict, progress=progress)
    result = KaryogramDatasetResult(out_dir=out, skipped=summary.skipped, errors=[str(e) for e in summary.errors])
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    iterator = anns
    if progress:
        iterator = tqdm(anns, desc="karyograms", unit="cell")
    for ann in iterator:
        name = f"{ann.image_id}.{fmt}"
        try:
            img, kann, call = karyogram_annotation(ann, rows=rows, longest=longest, labels=labels,
                                                   ideograms=ideograms, image_name=name)
        except (KaryogramError, AnnotationError, OSError) as exc:
            if strict:
                raise
            log.warning("skipped %s: %s", ann.image_path, exc)
            result.skipped += 1
            result.errors.append(f"{ann.image_path}: {exc}")
            continue
        buf = io.BytesIO()
        if fmt == "jpg":
            img.save(buf, format="JPEG", quality=95)
        else:
            img.save(buf, format="PNG")
        with atomic_path(out / "images" / name) as tmp:
            tmp.write_bytes(buf.getvalue())
        write_voc(kann, out / "annotations" / f"{ann.image_id}.xml", folder="images")
        result.written += 1
        result.boxes += len(kann.boxes)
        result.calls[ann.image_id] = call.text
    text = io.StringIO()
    wr = csv.writer(text, lineterminator="\n")
    wr.writerow(["image", "call"])
    for k, v in result.calls.items():
        wr.writerow([k, v])
    atomic_write_text(out / "calls.csv", text.getvalue())
    for extra in ("karyotypes.csv", "README.md"):
        f = src / extra
        if f.is_file():
            with atomic_path(out / f"source_{extra}") as tmp:
                shutil.copyfile(f, tmp)
    atomic_write_json(out / "manifest.json", {
        "karyotf": __version__, "kind": "karyograms", "source": str(src), "rows": rows or "standard",
        "longest_px": longest, "labels": labels, "ideograms": ideograms, "format": fmt,
        "written": result.written, "boxes": result.boxes, "skipped": result.skipped, "errors": result.errors})
    return result
