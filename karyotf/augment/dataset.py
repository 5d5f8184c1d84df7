"""The dataset writer (:func:`augment_dataset`: JPEG + VOC copies, ``augment.json``) and its grid picture."""
from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from .. import defaults, images
from ..annotations import Annotation, Box, load_dataset, write_voc
from ..errors import AugmentError
from ..images import draw_boxes
from ..io import atomic_path, atomic_write_bytes, atomic_write_json
from .ops import Op, augment_one, parse_ops

# Imports inside functions, and why: Pillow (heavy: loaded when an image is decoded or drawn).

log = logging.getLogger(__name__)


def image_rng(seed: int, image_id: str) -> np.random.Generator:
    """The random generator of one source image: depends on the seed and the image id only (not the order)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(image_id.encode())])


load_image = images.load
"""An image file as RGB ``uint8`` by karyotf's one decoder (:func:`karyotf.images.load`)."""


def _save_jpeg(image: np.ndarray, path: Path, quality: int = 95) -> None:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="JPEG", quality=quality)


@dataclass
class AugmentResult:
    """What :func:`augment_dataset` wrote."""

    out_dir: Path
    images: int = 0
    written: int = 0
    skipped: int = 0
    boxes_in: int = 0
    boxes_out: int = 0
    dropped_boxes: int = 0
    truncated_boxes: int = 0
    manifest: Path | None = None
    grid: Path | None = None
    items: list[dict] = field(default_factory=list)

    def text(self) -> str:
        lines = [f"augmented {self.images} image(s) -> {self.written} new image(s) in {self.out_dir}",
                 f"  chromosomes: {self.boxes_out} written ({self.truncated_boxes} truncated, "
                 f"{self.dropped_boxes} dropped by crops)"]
        if self.skipped:
            lines.append(f"  {self.skipped} copy(ies) skipped: no chromosome left")
        if self.grid:
            lines.append(f"  grid: {self.grid}")
        return "\n".join(lines)


def augment_dataset(src: str | Path, out_dir: str | Path, copies: int = defaults.AUGMENT_COPIES,
                    seed: int = defaults.AUGMENT_SEED, ops: str | Sequence[str] | Sequence[Op] | None = None,
                    chain: bool = False, p: float = defaults.AUGMENT_P, include_originals: bool = False,
                    grid: bool = True, grid_images: int = defaults.GRID_IMAGES,
                    strict: bool = False, progress: bool = True, exif_transpose: bool = False) -> AugmentResult:
    """Write ``copies`` augmentations of every annotated image of ``src`` to ``out_dir``.

    Copy ``k`` of an image applies one op (``ops[(k + r) % len(ops)]``, ``r`` a per-image random offset) so
    every op is used evenly; ``chain=True`` instead passes each copy through all ops, each with probability
    ``p``.  Output: ``out_dir/images/<id>_aug<k>.jpg`` + ``out_dir/annotations/<id>_aug<k>.xml`` (and the
    originals with ``include_originals``), ``augment.json`` (seed, ops, what each copy got) and
    ``augment_grid.png``.  The same seed gives the same files.  Each copy's XML names its original cell
    (``<source><original>``), so ``karyotf records`` keeps a cell and its copies in one split (and val/test free of
    copies).
    """
    if copies < 0:
        raise AugmentError(f"copies must be >= 0, got {copies}")
    if ops and not isinstance(ops, str) and all(isinstance(o, Op) for o in ops):
        parsed = list(ops)
    else:
        parsed = parse_ops(ops)
    out_dir = Path(out_dir)
    annotations, summary = load_dataset(src, strict=strict, progress=False, exif_transpose=exif_transpose)
    if not annotations:
        raise AugmentError(f"{src}: no usable annotated images ({summary.text()})")
    img_dir, ann_dir = out_dir / "images", out_dir / "annotations"
    result = AugmentResult(out_dir=out_dir, images=len(annotations))
    grid_rows = []
    iterator = annotations
    if progress:
        iterator = tqdm(annotations, desc="augmenting", unit="image", leave=False)
    for ann in iterator:
        image = ann.pixels()
        rng = image_rng(seed, ann.image_id)
        offset = int(rng.integers(len(parsed)))
        result.boxes_in += len(ann.boxes)
        row = [(image, ann.boxes, "original")]
        if include_originals:  # the original image file as it is (no re-encoding) and its XML

            copy = atomic_write_bytes(img_dir / ann.image_path.name, ann.image_path.read_bytes())
            write_voc(Annotation(image_path=copy, width=ann.width, height=ann.height, boxes=list(ann.boxes),
                                 depth=ann.depth, original=ann.original), ann_dir / f"{ann.image_id}.xml")
        for k in range(copies):
            chosen = parsed if chain else [parsed[(k + offset) % len(parsed)]]
            aug, boxes, details = augment_one(image, ann.boxes, chosen, rng, chain=chain, p=p)
            name = f"{ann.image_id}_aug{k}"
            item = {"source": ann.image_id, "original": ann.cell_id, "output": name, "ops": details,
                    "boxes_in": len(ann.boxes), "boxes_out": len(boxes)}
            if not boxes:
                result.skipped += 1
                item["skipped"] = "no chromosome left"
                result.items.append(item)
                continue
            _write_pair(aug, boxes, name, img_dir, ann_dir, write_voc, original=ann.cell_id)
            result.written += 1
            result.boxes_out += len(boxes)
            result.truncated_boxes += sum(b.truncated for b in boxes)
            result.dropped_boxes += max(0, len(ann.boxes) - len(boxes))
            result.items.append(item)
            row.append((aug, boxes, " + ".join(details)))
        if len(grid_rows) < grid_images:
            grid_rows.append(row)
    if grid and grid_rows:
        result.grid = grid_figure(grid_rows, out_dir / "augment_grid.png")
    result.manifest = atomic_write_json(out_dir / "augment.json", {
        "source": str(src), "seed": seed, "copies": copies, "ops": [str(o) for o in parsed],
        "chain": chain, "p": p, "include_originals": include_originals,
        "images": result.images, "written": result.written, "skipped": result.skipped,
        "boxes_in": result.boxes_in, "boxes_out": result.boxes_out,
        "dropped_boxes": result.dropped_boxes, "truncated_boxes": result.truncated_boxes,
        "items": result.items})
    return result


def _write_pair(image: np.ndarray, boxes: Sequence[Box], name: str, img_dir: Path, ann_dir: Path, write_voc,
                original: str | None = None) -> None:
    h, w = image.shape[:2]
    path = img_dir / f"{name}.jpg"
    _save_jpeg(image, path)
    write_voc(Annotation(image_path=path, width=w, height=h, boxes=list(boxes), original=original),
              ann_dir / f"{name}.xml")


def grid_figure(rows: Sequence[Sequence[tuple[np.ndarray, Sequence[Box], str]]], path: str | Path,
                cell: int = 260) -> Path:
    """A grid picture: one row per original, its augmentations beside it, boxes drawn, op names above."""
    from PIL import Image, ImageDraw

    ncols = max(len(r) for r in rows)
    pad, title = 6, 14
    canvas = Image.new("RGB", (ncols * (cell + pad) + pad, len(rows) * (cell + title + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for i, row in enumerate(rows):
        for j, (image, boxes, label) in enumerate(row):
            im = draw_boxes(image, boxes, line=max(2, int(max(image.shape[:2]) / cell)))
            im.thumbnail((cell, cell))
            x = pad + j * (cell + pad)
            y = pad + i * (cell + title + pad)
            draw.text((x, y), label[:44], fill=(0, 0, 0))
            canvas.paste(im, (x + (cell - im.width) // 2, y + title + (cell - im.height) // 2))
    path = Path(path)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return path
