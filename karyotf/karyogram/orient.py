"""Rotate each cut-out chromosome upright along its long axis, at one scale for the whole cell.

The long axis is the principal axis of the mask (the eigenvector of the pixel coordinates' covariance with
the larger eigenvalue).  The chromosome is rotated so that axis is vertical, at a scale shared by every
chromosome of the cell (relative lengths stay true).  Which end goes up is decided from the width profile:
the centromere is the primary constriction, so the end whose expected centromere position (from the class's
ideogram) is narrower goes on top (p arm up).  The measured centromere is kept when it lies near the expected
one; otherwise the expected position is used for aligning the row.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage as ndi

from . import ideogram
from .cutout import Cutout
from .defaults import LONGEST

CENTROMERE_TOLERANCE = 0.15
"""Measured centromere accepted if within this fraction of the length of the ideogram's centromere."""


@dataclass
class Oriented:
    """An upright chromosome: ``image`` RGB uint8 (white background) and ``mask`` bool, tight around the mask."""

    cutout: Cutout
    image: np.ndarray
    mask: np.ndarray
    angle: float
    """Degrees the long axis made with the vertical before rotation."""
    length: float
    """Length along the long axis in the cell image (pixels, before scaling)."""
    centromere: float
    """Centromere position as a fraction of the height from the top (measured or expected)."""
    centromere_measured: bool
    flipped: bool

    @property
    def name(self) -> str:
        return self.cutout.box.name

    @property
    def height(self) -> int:
        return self.image.shape[0]

    @property
    def width(self) -> int:
        return self.image.shape[1]


def principal_axis(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(centre (x, y), unit direction (vx, vy) of the long axis, length along it) of a mask."""
    ys, xs = np.nonzero(mask)
    if xs.size < 2:
        return np.array([mask.shape[1] / 2, mask.shape[0] / 2]), np.array([0.0, 1.0]), float(max(mask.shape))
    pts = np.stack([xs, ys], axis=1).astype(np.float64)
    centre = pts.mean(axis=0)
    cov = np.cov((pts - centre).T)
    vals, vecs = np.linalg.eigh(cov)
    v = vecs[:, int(np.argmax(vals))]
    if vals.max() - vals.min() < 1e-6 * max(vals.max(), 1):  # round blob: no long axis, keep as is
        v = np.array([0.0, 1.0])
    if v[1] < 0:
        v = -v
    proj = (pts - centre) @ v
    return centre, v, float(proj.max() - proj.min() + 1)


def axis_length(cutout: Cutout) -> float:
    return principal_axis(cutout.mask)[2]


def _width_profile(mask: np.ndarray) -> np.ndarray:
    prof = mask.sum(axis=1).astype(np.float64)
    k = max(3, int(round(len(prof) / 12)) | 1)
    return ndi.uniform_filter1d(prof, k, mode="nearest")


def _centromere(mask: np.ndarray, expected: float) -> tuple[float, bool, bool]:
    """(centromere fraction from the top, measured?, flip?) for an upright mask."""
    prof = _width_profile(mask)
    n = len(prof)
    if n < 12:
        return expected, False, False

    def window_min(f: float) -> tuple[float, int]:
        lo = int(max(0.05, f - CENTROMERE_TOLERANCE) * n)
        hi = int(min(0.95, f + CENTROMERE_TOLERANCE) * n) + 1
        seg = prof[lo:hi]
        i = int(np.argmin(seg))
        return float(seg[i]), lo + i

    top, i_top = window_min(expected)
    bottom, i_bottom = window_min(1 - expected)
    flip = abs(expected - 0.5) > 0.05 and bottom < top * 0.97
    i = (n - 1 - i_bottom) if flip else i_top
    frac = i / max(1, n - 1)
    # a true constriction is narrower than the arms around it
    ok = prof.min() > 0 and (prof[i_bottom if flip else i_top] < 0.9 * np.median(prof))
    return (frac if ok else expected), bool(ok), flip


def orient(cutout: Cutout, scale: float = 1.0, resolution: int = ideogram.DEFAULT_RESOLUTION) -> Oriented:
    """Rotate one cut-out upright (long axis vertical, p arm up) and scale it by ``scale``."""
    centre, v, length = principal_axis(cutout.mask)
    vx, vy = float(v[0]), float(v[1])
    # rotation R with R @ v = (0, 1): [[vy, -vx], [vx, vy]]
    rot = np.array([[vy, -vx], [vx, vy]]) * scale
    ys, xs = np.nonzero(cutout.mask)
    if xs.size == 0:
        ys, xs = np.nonzero(np.ones_like(cutout.mask))
    corners = np.stack([xs, ys], 1).astype(np.float64)
    corners = np.concatenate([corners, corners + [1, 0], corners + [0, 1], corners + [1, 1]])
    moved = corners @ rot.T
    lo = np.floor(moved.min(axis=0)) - 2
    hi = np.ceil(moved.max(axis=0)) + 2
    size = (int(hi[0] - lo[0]), int(hi[1] - lo[1]))
    m = np.concatenate([rot, -lo[:, None]], axis=1)
    img = cv2.warpAffine(cutout.image, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=(255, 255, 255))
    msk = cv2.warpAffine(cutout.mask.astype(np.uint8) * 255, m, size, flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0) >= 128
    if msk.any():
        ys2, xs2 = np.nonzero(msk)
        y0, y1, x0, x1 = ys2.min(), ys2.max() + 1, xs2.min(), xs2.max() + 1
        img, msk = img[y0:y1, x0:x1], msk[y0:y1, x0:x1]
    img = img.copy()
    img[~msk] = 255
    expected = ideogram.centromere_fraction(cutout.box.name, resolution)
    frac, measured, flip = _centromere(msk, expected)
    if flip:
        img, msk = img[::-1, ::-1].copy(), msk[::-1, ::-1].copy()
    angle = math.degrees(math.atan2(vx, vy))
    return Oriented(cutout=cutout, image=img, mask=msk, angle=angle, length=length, centromere=frac,
                    centromere_measured=measured, flipped=flip)


def cell_scale(cutouts: list[Cutout], longest: float) -> float:
    """The one scale of a cell: its longest chromosome becomes ``longest`` pixels long.

    A box far longer than the rest (a false detection over a nucleus or debris) does not set the scale: up to
    three lengths more than 1.3 x the next one are passed over, and the reference is capped at 1.5 x the
    median of the five longest (with ten boxes or more).  Chromosome 1 is only ~1.05 x chromosome 2, so this
    fires on real cells only where a cut-out kept a crossing neighbour and looks longer than it is.
    """
    if not cutouts:
        return 1.0
    lengths = sorted((axis_length(c) for c in cutouts), reverse=True)
    if len(lengths) < 10:  # too few to tell an outlier from a long chromosome
        return longest / max(lengths[0], 1.0)
    i = 0
    while i < min(3, len(lengths) - 1) and lengths[i] > 1.3 * lengths[i + 1]:
        i += 1
    ref = min(lengths[i], 1.5 * float(np.median(lengths[:5])))
    return longest / max(ref, 1.0)


def orient_all(cutouts: list[Cutout], longest: float = LONGEST,
               resolution: int = ideogram.DEFAULT_RESOLUTION) -> tuple[list[Oriented], float]:
    """Orient every cut-out of a cell at one shared scale; returns the oriented chromosomes and that scale."""
    scale = cell_scale(cutouts, longest)
    return [orient(c, scale, resolution) for c in cutouts], scale
