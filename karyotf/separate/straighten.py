"""Lay a bent chromosome straight along its medial axis, for display (``karyotf karyogram --straighten``).

The medial axis is traced by geodesic level sets: the two ends are the mask's geodesic extremes (the pixel
farthest, inside the mask, from any pixel, then the one farthest from that); the centroids of the pixels at
each whole geodesic distance from the top end are the axis' points, smoothed and resampled every pixel of arc
length.  Row ``k`` of the straight picture is the image sampled along the axis' normal at arc length ``k``, as
wide as the chromosome (twice its largest half-width plus a margin), each row kept to the run of mask pixels
through the axis (a tight bend's other arm is not pulled in).  So the bands stay in their order, the length
is the axis' arc length, and the width is the chromosome's own.

Only bent chromosomes are resampled: the axis must leave the straight line between its ends by more than
``BEND`` of its length; a straight one is left exactly as it was.
"""
from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
from scipy import ndimage as ndi

BEND = 0.08
"""Straighten when the medial axis leaves the chord between its ends by more than this fraction of its length."""
_EIGHT = np.ones((3, 3), np.uint8)


def geodesic(mask: np.ndarray, seed: tuple[int, int]) -> np.ndarray:
    """Geodesic distance (8-neighbour steps) from ``seed`` (y, x) inside ``mask``; -1 where not reached."""
    dist = np.full(mask.shape, -1, np.int32)
    front = np.zeros(mask.shape, np.uint8)
    front[seed] = 1
    m8 = mask.astype(np.uint8)
    reached = front.copy()
    d = 0
    while front.any():
        dist[front > 0] = d
        grown = cv2.dilate(reached, _EIGHT) & m8
        front = grown & (1 - reached)
        reached = grown | reached
        d += 1
    return dist


def medial_axis(mask: np.ndarray, top_first: bool = True) -> np.ndarray:
    """Points (N, 2) as (x, y), one a pixel of arc length, along the mask's medial axis from end to end (the
    end nearer the top first with ``top_first``).  Empty for an empty mask."""
    labels, n = ndi.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return np.zeros((0, 2))
    if n > 1:  # the largest piece carries the axis
        sizes = ndi.sum_labels(mask, labels, np.arange(1, n + 1))
        mask = labels == (1 + int(np.argmax(sizes)))
    ys, xs = np.nonzero(mask)
    d0 = geodesic(mask, (int(ys[0]), int(xs[0])))
    a = np.unravel_index(int(np.argmax(d0)), mask.shape)
    da = geodesic(mask, a)
    b = np.unravel_index(int(np.argmax(da)), mask.shape)
    if top_first and b[0] < a[0]:
        a, b = b, a
        da = geodesic(mask, a)
    levels = da[mask]
    pts = np.stack([xs, ys], 1).astype(np.float64)
    dv = da[ys, xs]
    count = np.bincount(dv, minlength=levels.max() + 1).astype(np.float64)
    cx = np.bincount(dv, weights=pts[:, 0], minlength=levels.max() + 1)
    cy = np.bincount(dv, weights=pts[:, 1], minlength=levels.max() + 1)
    ok = count > 0
    cent = np.stack([cx[ok] / count[ok], cy[ok] / count[ok]], 1)
    # the ends themselves (the level-set centroids stop short of the tips by half a width)
    cent = np.concatenate([[[a[1], a[0]]], cent, [[b[1], b[0]]]])
    if len(cent) >= 7:
        k = max(3, len(cent) // 12) | 1
        pad = k // 2
        sm = np.stack([np.convolve(np.pad(cent[:, j], pad, mode="edge"), np.ones(k) / k, mode="valid")
                       for j in range(2)], 1)
        sm[0], sm[-1] = cent[0], cent[-1]
        cent = sm
    seg = np.linalg.norm(np.diff(cent, axis=0), axis=1)
    keep = np.concatenate([[True], seg > 1e-6])
    cent = cent[keep]
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(cent, axis=0), axis=1))])
    if s[-1] < 1:
        return cent[:1]
    t = np.arange(0.0, s[-1] + 1e-9, 1.0)
    return np.stack([np.interp(t, s, cent[:, 0]), np.interp(t, s, cent[:, 1])], 1)


def bend(axis: np.ndarray) -> float:
    """Largest distance of the axis from the chord between its ends, over its length (0 = straight)."""
    if len(axis) < 3:
        return 0.0
    p, q = axis[0], axis[-1]
    chord = q - p
    n = np.linalg.norm(chord)
    length = len(axis) - 1
    if n < 1e-6:
        return float(np.max(np.linalg.norm(axis - p, axis=1)) / max(length, 1))
    off = np.abs(np.cross(chord / n, axis - p))
    return float(off.max() / max(length, 1))


def straighten(image: np.ndarray, mask: np.ndarray, min_bend: float = BEND
               ) -> tuple[np.ndarray, np.ndarray, bool]:
    """(image, mask, straightened?) of one upright chromosome (RGB uint8, white background; bool mask).  A
    chromosome bent less than ``min_bend`` comes back unchanged."""
    axis = medial_axis(mask)
    if len(axis) < 5 or bend(axis) <= min_bend:
        return image, mask, False
    half = float(ndi.distance_transform_edt(mask).max()) + 2.0
    width = int(np.ceil(2 * half)) + 1
    tang = np.gradient(axis, axis=0)
    tang /= np.maximum(np.linalg.norm(tang, axis=1, keepdims=True), 1e-9)
    normal = np.stack([-tang[:, 1], tang[:, 0]], 1)  # tangent turned +90 degrees: x to the right when going down
    offs = np.arange(width, dtype=np.float64) - (width - 1) / 2
    mx = (axis[:, None, 0] + offs[None, :] * normal[:, None, 0]).astype(np.float32)
    my = (axis[:, None, 1] + offs[None, :] * normal[:, None, 1]).astype(np.float32)
    img = cv2.remap(image, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                    borderValue=(255, 255, 255))
    msk = cv2.remap(mask.astype(np.uint8), mx, my, interpolation=cv2.INTER_NEAREST,
                    borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0
    c = (width - 1) // 2
    for k in range(msk.shape[0]):  # keep each row's run through the axis
        row = msk[k]
        if not row[c]:
            near = np.nonzero(row)[0]
            if near.size == 0:
                continue
            j = int(near[np.argmin(np.abs(near - c))])
        else:
            j = c
        lo = j
        while lo > 0 and row[lo - 1]:
            lo -= 1
        hi = j
        while hi < width - 1 and row[hi + 1]:
            hi += 1
        row[:lo] = False
        row[hi + 1:] = False
    img = img.copy()
    img[~msk] = 255
    return img, msk, True


def straighten_oriented(o, min_bend: float = BEND):
    """An :class:`karyotf.karyogram.orient.Oriented` laid straight (the same object when it is not bent)."""
    img, msk, done = straighten(o.image, o.mask, min_bend)
    if not done:
        return o
    return replace(o, image=img, mask=msk)


def straighten_all(oriented, min_bend: float = BEND) -> list:
    return [straighten_oriented(o, min_bend) for o in oriented]
