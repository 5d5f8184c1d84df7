"""Does each box hold a chromosome, and only once?  The checks a call and a training set stand on.

A box drawn on bare slide (a stray click in LabelImg, an XML put on the wrong image, a blank image) counts as a
chromosome unless someone looks.  :func:`check_boxes` measures each box's **foreground**: the share of its pixels
darker than the slide, by the cell's own threshold (Otsu's, as the cut-out uses, but at least
:data:`MIN_CONTRAST` grey levels below the slide's level, so that a blank or flat image has no foreground at all).
A G-banded chromosome fills a good part of its box (:data:`~karyotf.defaults.EMPTY_BOX_FOREGROUND` is far below
what real boxes hold); a box under that is **empty**.  A cell where at least :data:`MISMATCH_WEAK_SHARE` of the
boxes (and at least two) hold less than :data:`WEAK_BOX_FOREGROUND` does not match its boxes (a blank image,
another cell's XML): flagged ``image_mismatch``, and the karyogram makes no call of it.
Measured on the 27,583 boxes of CIL:54816 (``bench/boxcheck.py``, ``bench/results/boxcheck.md``).

Two boxes overlapping with IoU at least :data:`~karyotf.defaults.DUPLICATE_IOU` (of the same class or not) are
**duplicates**: one chromosome boxed twice.  Both are listed by index; the karyogram flags them, ``records``
lists them with file and object indices.

Light: numpy only (the caller decodes the image).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from . import images
from .defaults import DUPLICATE_IOU, EMPTY_BOX_FOREGROUND

# Imports inside functions, and why: Pillow (heavy: loaded when an image is decoded or drawn).

MIN_CONTRAST = 40.0
"""Foreground is at least this many grey levels (0..255) darker than the slide."""
SLIDE_PERCENTILE = 90.0
"""The slide's grey level: this percentile of the image's pixels (the slide is most of a metaphase image)."""
WEAK_BOX_FOREGROUND = 0.10
"""A box holding less of its area in foreground than this is weak (2 of CIL:54816's 27,583 true boxes are)."""
MISMATCH_WEAK_SHARE = 0.10
"""A cell with at least this share of weak boxes (and at least 2) does not match its boxes (no CIL:54816 cell has
more than 4.3%; another cell's XML laid on the image reaches it in 94% of the cells)."""


@dataclass
class BoxCheck:
    """What :func:`check_boxes` found in one cell: per-box foreground share, the empty boxes, the duplicate pairs
    ``(i, j, IoU)``, and whether the image matches its boxes."""

    foreground: list[float]
    empty: list[int] = field(default_factory=list)
    duplicates: list[tuple[int, int, float]] = field(default_factory=list)
    mismatch: str | None = None
    """Why the image does not match its boxes (``None`` when it does)."""

    @property
    def clean(self) -> bool:
        return not (self.empty or self.duplicates or self.mismatch)

    def to_dict(self) -> dict:
        return {"foreground": [round(f, 3) for f in self.foreground], "empty": list(self.empty),
                "duplicates": [[i, j, round(v, 3)] for i, j, v in self.duplicates],
                "mismatch": self.mismatch}


def to_gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image.astype(np.float32)
    return image[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def foreground_mask(gray: np.ndarray) -> np.ndarray:
    """Pixels darker than the slide by at least :data:`MIN_CONTRAST` grey levels; the slide's level is the
    :data:`SLIDE_PERCENTILE` th percentile of the image (large dark nuclei do not move it, as they move a median
    or Otsu's threshold, under which pale chromosomes would vanish)."""
    slide = float(np.percentile(gray, SLIDE_PERCENTILE))
    return gray < slide - MIN_CONTRAST


def duplicate_pairs(boxes: Sequence, iou: float = DUPLICATE_IOU) -> list[tuple[int, int, float]]:
    """``(i, j, IoU)`` of every pair of boxes (any classes) overlapping with IoU at least ``iou``."""
    out = []
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            v = boxes[i].iou(boxes[j])
            if v >= iou:
                out.append((i, j, v))
    return out


def check_boxes(image: np.ndarray, boxes: Sequence, scale: float = 1.0, empty_below: float = EMPTY_BOX_FOREGROUND,
                duplicate_iou: float = DUPLICATE_IOU) -> BoxCheck:
    """Measure each box's foreground in ``image`` (RGB or grey) and find empty and duplicate boxes.

    ``scale``: the image's size over the boxes' coordinate frame (a reduced decode: 0.25 for a quarter-size
    image)."""
    boxes = list(boxes)
    gray = to_gray(np.asarray(image))
    fg = foreground_mask(gray)
    h, w = fg.shape
    integral = np.zeros((h + 1, w + 1), np.int64)
    integral[1:, 1:] = fg.cumsum(0).cumsum(1)
    fractions = []
    for b in boxes:
        x0 = int(np.clip(np.floor(b.xmin * scale), 0, w - 1))
        y0 = int(np.clip(np.floor(b.ymin * scale), 0, h - 1))
        x1 = int(np.clip(np.ceil(b.xmax * scale), x0 + 1, w))
        y1 = int(np.clip(np.ceil(b.ymax * scale), y0 + 1, h))
        dark = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
        fractions.append(float(dark) / ((x1 - x0) * (y1 - y0)))
    empty = [i for i, f in enumerate(fractions) if f < empty_below]
    weak = sum(f < max(WEAK_BOX_FOREGROUND, empty_below) for f in fractions)
    mismatch = None
    if weak >= 2 and weak >= MISMATCH_WEAK_SHARE * len(boxes):
        mismatch = (f"{weak} of {len(boxes)} boxes hold (almost) no chromosome pixels"
                    + (" (the image has no dark pixels at all: blank?)" if not fg.any() else
                       " (a blank image, or the XML of another cell?)"))
    return BoxCheck(foreground=fractions, empty=empty, duplicates=duplicate_pairs(boxes, duplicate_iou),
                    mismatch=mismatch)


def check_file(path, boxes: Sequence, width: int, exif_transpose: bool = False) -> BoxCheck:
    """:func:`check_boxes` on an image file, decoded at a quarter of its size where that is cheap (a JPEG read as
    stored: the decoder's own reduction); ``width``: the width the boxes' coordinates refer to."""
    from PIL import Image

    arr = None
    if not exif_transpose:
        with Image.open(path) as im:
            if (im.format or "").upper() == "JPEG" and im.mode in ("L", "RGB", "YCbCr"):
                im.draft("L", (max(1, im.width // 4), max(1, im.height // 4)))
                arr = np.asarray(im.convert("L"))
    if arr is None:
        arr = images.load(path, exif_transpose)
    return check_boxes(arr, boxes, scale=arr.shape[1] / float(width))
