"""Cut each chromosome out of its box and separate it from the neighbours that reach into the box.

G-banded chromosomes are darker than the slide.  One Otsu threshold for the whole cell gives the foreground;
inside each box (plus a small margin) the connected component with the most pixels inside the box wins, with
a bonus if it covers the box centre; fragments lying (almost) wholly inside the box join it (a pale band can
split a chromosome in two).  Neighbours reaching in from outside touch the box edge with most of their pixels
outside, so they are dropped; a neighbour that touches the chromosome is cut off at thin bridges (erosion),
and where it overlaps, the pixels this box shares with other boxes go to the nearer chromosome along the
foreground.  Everything not in the mask becomes white.  Chromosomes lying across each other cannot be
separated fully: the crossing stays in both, with short stubs of the other.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
from scipy import ndimage as ndi

from ..annotations import Box

MARGIN = 0.06
"""Extra room around a box, as a fraction of its longer side (at least 3 px): detected boxes can be a bit tight."""
SHARED_TOL = 3.0
"""Pixels the chromosome's share of the shared pixels is grown by (keeps a crossing in both chromosomes)."""
ERODE = 2
"""Erosion (pixels) that breaks the thin bridges where a neighbour touches the chromosome."""
_EIGHT = np.ones((3, 3), bool)


@dataclass
class Cutout:
    """One chromosome cut out of the cell: ``image`` RGB uint8 with a white background, ``mask`` bool, both of
    the crop's size; ``origin`` the crop's top-left corner in the cell image (pixels)."""

    box: Box
    index: int
    image: np.ndarray
    mask: np.ndarray
    origin: tuple[int, int]
    method: str = "component"
    """``component`` (threshold + component), ``local`` (the crop's own threshold) or ``box`` (no foreground
    found: the whole box)."""

    @property
    def area(self) -> int:
        return int(self.mask.sum())


def to_gray(image: np.ndarray) -> np.ndarray:
    """Luminance (float32 0..255) of an RGB or grey uint8 image."""
    if image.ndim == 2:
        return image.astype(np.float32)
    rgb = image[..., :3].astype(np.float32)
    return rgb @ np.array([0.299, 0.587, 0.114], np.float32)


def otsu_threshold(gray: np.ndarray) -> float:
    """Otsu's threshold of a grey image (0..255)."""
    hist, edges = np.histogram(gray.ravel(), bins=256, range=(0, 256))
    hist = hist.astype(np.float64)
    total = hist.sum()
    if total == 0:
        return 128.0
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = total - w0
    m0 = np.cumsum(hist * centers)
    mt = m0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mt * w0 / total - m0) ** 2 / (w0 * w1 / total)
    between[~np.isfinite(between)] = -1
    return float(centers[int(np.argmax(between))])


def foreground_threshold(gray: np.ndarray) -> float:
    """The cell's foreground threshold: Otsu's threshold over all of the cell's pixels (the slide background
    dominates them, but chromosomes and background are well separated, so no pixels are left out first)."""
    return otsu_threshold(gray)


def _select(labels: np.ndarray, n: int, inbox: np.ndarray, centre: tuple[int, int], centre_r: float,
            other: np.ndarray | None = None) -> np.ndarray:
    ids = np.arange(1, n + 1)
    total = ndi.sum_labels(np.ones_like(labels), labels, ids)
    inside = ndi.sum_labels(inbox, labels, ids)
    in_other = ndi.sum_labels(other, labels, ids) if other is not None else np.zeros(n)
    cy, cx = centre
    yy, xx = np.ogrid[:labels.shape[0], :labels.shape[1]]
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= centre_r ** 2
    at_centre = ndi.sum_labels(disc, labels, ids) > 0
    score = inside * np.where(at_centre, 1.5, 1.0)
    best = int(np.argmax(score))
    keep = np.zeros(n, bool)
    keep[best] = True
    frac_inside = inside / np.maximum(total, 1)
    # fragments of the same chromosome (split at a pale band): wholly in this box, not in another box
    keep |= (frac_inside >= 0.9) & (inside >= 0.05 * inside[best]) & (in_other < 0.5 * total)
    return np.isin(labels, ids[keep])


def _resolve_shared(mask: np.ndarray, fg: np.ndarray, inbox: np.ndarray, other: np.ndarray, tol: float) -> np.ndarray:
    """Give the pixels this box shares with other boxes to whichever chromosome they lie nearer, measured
    along the foreground (geodesic: a neighbour's piece touching the chromosome is reached through the
    neighbour, not across the contact).

    ``own``: mask pixels in this box and in no other; ``theirs``: foreground outside this box (in the
    margin), where the neighbours reaching in come from.  Both grow through the foreground until they meet;
    what ``own`` reaches, plus ``tol`` px, stays (so at a crossing the chromosome keeps the crossing).  If the
    chromosome still falls in pieces, the smallest closing that joins them is put back.  Skipped when this
    box has (almost) no pixels of its own (it lies inside other boxes).
    """
    own = mask & inbox & ~other
    shared = mask & other
    if not shared.any() or own.sum() < 0.1 * (mask & inbox).sum():
        return mask
    theirs = fg & ~inbox  # the neighbours reaching in cross the box edge: their pixels in the margin
    if not theirs.any():
        return mask
    a, _b = _compete(mask | theirs, own, theirs & ~own)
    if tol > 0:
        a = cv2.dilate(a.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=int(round(tol))) > 0
    out = mask & (~shared | a)
    labels, n = ndi.label(out, structure=_EIGHT)
    if n > 1:  # drop islands the split left behind, keep the part holding own pixels
        has_own = ndi.sum_labels(own, labels, np.arange(1, n + 1)) > 0
        out = np.isin(labels, np.arange(1, n + 1)[has_own])
        if has_own.sum() > 1:
            out = _bridge(out, mask)
    return out


def _compete(region: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grow seeds ``a`` and ``b`` one pixel a step inside ``region`` until they meet (a geodesic Voronoi split;
    pixels reached by both in the same step go to ``a``).  Pixels neither reaches are left out of both."""
    k = np.ones((3, 3), np.uint8)
    a, b = a & region, b & region & ~a
    free = region & ~a & ~b
    a8, b8 = a.astype(np.uint8), b.astype(np.uint8)
    for _ in range(region.shape[0] + region.shape[1]):
        ga = (cv2.dilate(a8, k) > 0) & free
        gb = (cv2.dilate(b8, k) > 0) & free & ~ga
        if not ga.any() and not gb.any():
            break
        a8[ga] = 1
        b8[gb] = 1
        free &= ~(ga | gb)
    return a8 > 0, b8 > 0


def _bridge(out: np.ndarray, mask: np.ndarray, max_radius: int = 16) -> np.ndarray:
    """Where a neighbour crossed the chromosome, giving the crossing away cuts the chromosome in pieces: put
    back the smallest closing (within the mask) that joins them, i.e. the crossing square but not the
    neighbour's arms."""
    u8 = out.astype(np.uint8)
    for r in (3, 5, 8, 11, max_radius):
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        closed = (cv2.morphologyEx(u8, cv2.MORPH_CLOSE, k, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0)
        joined = (closed & mask) | out
        if ndi.label(joined, structure=_EIGHT)[1] == 1:
            return joined
    return out


def _fill_small_holes(fg: np.ndarray, max_area: int) -> np.ndarray:
    """Fill holes up to ``max_area`` px (pale band centres); larger ones are slide seen through a loop."""
    holes = ndi.binary_fill_holes(fg) & ~fg
    if not holes.any():
        return fg
    labels, n = ndi.label(holes)
    sizes = ndi.sum_labels(holes, labels, np.arange(1, n + 1))
    small = np.arange(1, n + 1)[sizes <= max_area]
    return fg | np.isin(labels, small)


def foreground(gray: np.ndarray, threshold: float, max_hole: int) -> np.ndarray:
    """The cut-out's foreground rule: darker than ``threshold``, closed once (8-connected), holes up to
    ``max_hole`` px filled (pale band centres).  :mod:`karyotf.separate` finds isolated chromosomes by it."""
    fg = ndi.binary_closing(gray < threshold, structure=_EIGHT, iterations=1) | (gray < threshold)
    return _fill_small_holes(fg, max_hole)


def _detach(mask: np.ndarray, inbox: np.ndarray, centre, centre_r: float, erode: int) -> np.ndarray:
    """Cut thin bridges to touching neighbours: erode, keep the component chosen as before, grow it back
    inside the original mask.  Kept only if the core still holds most of the mask's in-box pixels."""
    if erode <= 0:
        return mask
    core = ndi.binary_erosion(mask, structure=_EIGHT, iterations=erode)
    labels, n = ndi.label(core, structure=_EIGHT)
    if n <= 1:
        return mask
    chosen = _select(labels, n, inbox, centre, centre_r)
    grown = ndi.binary_dilation(chosen, structure=_EIGHT, iterations=erode + 1) & mask
    if (grown & inbox).sum() < 0.5 * (mask & inbox).sum():
        return mask
    return grown


def cut_out(image: np.ndarray, box: Box, index: int = 0, gray: np.ndarray | None = None,
            threshold: float | None = None, margin: float = MARGIN, erode: int = ERODE,
            others: Sequence[Box] = (), shared_tol: float = SHARED_TOL) -> Cutout:
    """Cut one box out of the cell image with a clean (white) background.

    ``others``: the cell's other boxes; pixels this box shares with them go to the nearer chromosome.
    """
    if gray is None:
        gray = to_gray(image)
    if threshold is None:
        threshold = foreground_threshold(gray)
    h, w = gray.shape
    bx0, by0 = int(np.floor(max(0, box.xmin))), int(np.floor(max(0, box.ymin)))
    bx1, by1 = int(np.ceil(min(w, box.xmax))), int(np.ceil(min(h, box.ymax)))
    bx1, by1 = max(bx1, bx0 + 1), max(by1, by0 + 1)
    m = max(3, int(round(margin * max(bx1 - bx0, by1 - by0))))
    x0, y0, x1, y1 = max(0, bx0 - m), max(0, by0 - m), min(w, bx1 + m), min(h, by1 + m)
    g = gray[y0:y1, x0:x1]
    inbox = np.zeros(g.shape, bool)
    inbox[by0 - y0:by1 - y0, bx0 - x0:bx1 - x0] = True
    centre = ((by0 + by1) // 2 - y0, (bx0 + bx1) // 2 - x0)
    centre_r = 0.15 * min(bx1 - bx0, by1 - by0) + 1
    max_hole = max(4, int(0.004 * (bx1 - bx0) * (by1 - by0)))
    other = np.zeros(g.shape, bool)
    for o in others:
        ox0, oy0 = int(np.floor(o.xmin)) - x0, int(np.floor(o.ymin)) - y0
        ox1, oy1 = int(np.ceil(o.xmax)) - x0, int(np.ceil(o.ymax)) - y0
        if ox1 > 0 and oy1 > 0 and ox0 < g.shape[1] and oy0 < g.shape[0]:
            other[max(0, oy0):max(0, oy1), max(0, ox0):max(0, ox1)] = True

    method = "component"
    mask = None
    for thr, name in ((threshold, "component"), (None, "local")):
        if thr is None:
            vals = g[inbox]
            if vals.size < 4 or vals.max() - vals.min() < 10:
                break
            thr = otsu_threshold(vals)
        fg = foreground(g, thr, max_hole)
        labels, n = ndi.label(fg, structure=_EIGHT)
        if n and (labels[inbox] > 0).sum() >= 0.02 * inbox.sum():
            mask = _select(labels, n, inbox, centre, centre_r, other & inbox)
            mask = _detach(mask, inbox, centre, centre_r, erode)
            mask = _resolve_shared(mask, fg, inbox, other, tol=shared_tol)
            method = name
            break
    if mask is None:
        mask = inbox.copy()
        method = "box"
    else:
        mask = ndi.binary_dilation(mask, iterations=1)  # the threshold cuts the chromosome's soft edge
    return masked(image, box, index, mask, (x0, y0), method)


def masked(image: np.ndarray, box: Box, index: int, mask: np.ndarray, origin: tuple[int, int],
           method: str) -> Cutout:
    """The :class:`Cutout` of ``mask`` (over the image window at ``origin``): the window's RGB pixels inside the
    mask, white outside."""
    x0, y0 = origin
    crop = image[y0:y0 + mask.shape[0], x0:x0 + mask.shape[1]]
    if crop.ndim == 2:
        crop = np.stack([crop] * 3, axis=-1)
    crop = crop[..., :3]
    out = np.full_like(crop, 255)
    out[mask] = crop[mask]
    return Cutout(box=box, index=index, image=out, mask=mask, origin=(x0, y0), method=method)


def cut_out_all(image: np.ndarray, boxes: list[Box]) -> list[Cutout]:
    """Cut out every box of one cell with one shared foreground threshold."""
    gray = to_gray(image)
    thr = foreground_threshold(gray)
    out = []
    for i, b in enumerate(boxes):
        others = [o for j, o in enumerate(boxes) if j != i and o.xmax > b.xmin and o.xmin < b.xmax
                  and o.ymax > b.ymin and o.ymin < b.ymax]
        out.append(cut_out(image, b, i, gray=gray, threshold=thr, others=others))
    return out
