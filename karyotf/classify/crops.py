"""One chromosome's input to the classifier: its box crop on a fixed canvas, and measurements relative to its cell.

The crop is the box (plus a small margin) in grey, padded to a square with the slide's white and resized to
``size`` x ``size``: every chromosome fills the canvas, so a small G-group chromosome keeps its bands.  What the
resizing hides (how big the chromosome is beside the others of its cell) goes in as measurements, each relative to
the cell's median so that magnification and metaphase stage cancel out:

====================  ================================================================================
``log_diag``          log of the box diagonal / the cell's median diagonal
``log_area``          log of the box area / the cell's median area
``log_aspect``        log of the box's long side / short side
``darkness``          mean darkness (1 - grey / 255) of the crop, minus the cell's median
``fill``              share of the box that is darker than the cell's foreground threshold
====================  ================================================================================
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from ..annotations import Box

SIZE = 64
"""Canvas side of a crop, pixels."""
MARGIN = 0.04
"""Room around a box, as a fraction of its longer side (detected boxes can be a little tight)."""
FEATURES = ("log_diag", "log_area", "log_aspect", "darkness", "fill")
MIN_SIDE = 2.0
"""A box with a side shorter than this (pixels) is too small to classify."""


@dataclass
class CellCrops:
    """The classifier's input for the chromosomes of one cell: ``crops`` uint8 (N, size, size), ``features``
    float32 (N, len(FEATURES)); ``too_small`` lists indices of boxes too small to crop (their crop is blank)."""

    crops: np.ndarray
    features: np.ndarray
    too_small: list[int]

    def __len__(self) -> int:
        return int(self.crops.shape[0])


def grey(image: np.ndarray) -> np.ndarray:
    """RGB uint8 -> grey uint8 (ITU-R 601 luma, as the karyogram's cut-out uses)."""
    if image.ndim == 2:
        return image
    return cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)


def _otsu(g: np.ndarray) -> float:
    t, _ = cv2.threshold(g, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return float(t)


def _window(cutout, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """A cut-out's mask over the cell window ``[y0:y1, x0:x1]`` (False where the mask does not reach)."""
    out = np.zeros((y1 - y0, x1 - x0), bool)
    cx0, cy0 = cutout.origin
    h, w = cutout.mask.shape
    sx0, sy0, sx1, sy1 = max(x0, cx0), max(y0, cy0), min(x1, cx0 + w), min(y1, cy0 + h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = cutout.mask[sy0 - cy0:sy1 - cy0, sx0 - cx0:sx1 - cx0]
    return out


def crop_box(g: np.ndarray, box: Box, size: int = SIZE, cutout=None) -> np.ndarray | None:
    """The box of grey image ``g`` on a white square canvas, resized to ``size``; None if the box is too small.
    ``cutout``: a :class:`karyotf.karyogram.cutout.Cutout` of this box: the pixels outside its mask are white (the
    cut-out's background) before cropping."""
    h, w = g.shape[:2]
    bw, bh = box.xmax - box.xmin, box.ymax - box.ymin
    if min(bw, bh) < MIN_SIDE:
        return None
    m = max(1.0, MARGIN * max(bw, bh))
    x0, y0 = int(np.floor(max(0.0, box.xmin - m))), int(np.floor(max(0.0, box.ymin - m)))
    x1, y1 = int(np.ceil(min(float(w), box.xmax + m))), int(np.ceil(min(float(h), box.ymax + m)))
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    patch = g[y0:y1, x0:x1]
    if cutout is not None:
        patch = np.where(_window(cutout, x0, y0, x1, y1), patch, np.uint8(255)).astype(np.uint8)
    side = max(patch.shape)
    canvas = np.full((side, side), 255, np.uint8)
    oy, ox = (side - patch.shape[0]) // 2, (side - patch.shape[1]) // 2
    canvas[oy:oy + patch.shape[0], ox:ox + patch.shape[1]] = patch
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(canvas, (size, size), interpolation=interp)


def cell_crops(image: np.ndarray, boxes: Sequence[Box], size: int = SIZE,
               reference: Sequence[int] | None = None, cutouts: Sequence | None = None) -> CellCrops:
    """Crops and measurements of every box of one cell (``image`` RGB or grey uint8, boxes in pixels).

    ``reference``: indices of the boxes whose medians the measurements are relative to (default: every box that
    could be cropped); a box that is not the cell's chromosome (a duplicate, a low-scoring one) is measured against
    the cell's counted chromosomes, not against its own kind.

    ``cutouts``: one :class:`karyotf.karyogram.cutout.Cutout` a box (``cutouts[i]`` for ``boxes[i]``, e.g. a
    :class:`karyotf.separate.separator.Separation`'s): each crop is then the same box window with every pixel
    outside that chromosome's mask white, as its cut-out fills the background (a neighbour crossing the box is
    gone).  The measurements stay the box's (what the classifier was trained on)."""
    g = grey(image)
    n = len(boxes)
    crops = np.full((n, size, size), 255, np.uint8)
    feats = np.zeros((n, len(FEATURES)), np.float32)
    too_small = []
    if n == 0:
        return CellCrops(crops, feats, too_small)
    thresh = _otsu(g)
    diag = np.array([max(1e-3, float(np.hypot(b.width, b.height))) for b in boxes])
    area = np.array([max(1e-3, b.area) for b in boxes])
    dark = np.zeros(n)
    fill = np.zeros(n)
    if cutouts is not None and len(cutouts) != n:
        raise ValueError(f"cell_crops: {len(cutouts)} cut-outs for {n} boxes (one a box, in the boxes' order)")
    for i, b in enumerate(boxes):
        c = crop_box(g, b, size, None if cutouts is None else cutouts[i])
        if c is None:
            too_small.append(i)
            continue
        crops[i] = c
        x0, y0 = int(max(0, np.floor(b.xmin))), int(max(0, np.floor(b.ymin)))
        x1, y1 = int(max(x0 + 1, np.ceil(b.xmax))), int(max(y0 + 1, np.ceil(b.ymax)))
        region = g[y0:y1, x0:x1]
        if region.size:
            dark[i] = 1.0 - float(region.mean()) / 255.0
            fill[i] = float((region < thresh).mean())
    ok = np.ones(n, bool)
    ok[too_small] = False
    if reference is not None:
        chosen = np.zeros(n, bool)
        chosen[list(reference)] = True
        ok_ref = ok & chosen
        ref = ok_ref if ok_ref.any() else (chosen if chosen.any() else ok)
    else:
        ref = ok
    ref = ref if ref.any() else np.ones(n, bool)
    feats[:, 0] = np.log(diag / np.median(diag[ref]))
    feats[:, 1] = np.log(area / np.median(area[ref]))
    feats[:, 2] = np.log(np.array([max(b.width, b.height) / max(1e-3, min(b.width, b.height)) for b in boxes]))
    feats[:, 3] = dark - np.median(dark[ref])
    feats[:, 4] = fill
    feats[~ok] = 0.0
    return CellCrops(crops, feats, too_small)
