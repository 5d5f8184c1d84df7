"""Geometry of an image and its boxes together: exact turns and flips, rotation by any angle (tight boxes from the
chromosome masks), crops."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..annotations import Box
from ..errors import AugmentError
from .masks import box_window, foreground_mask, gray_of

# Imports inside functions, and why: OpenCV (heavy: loaded when an image is decoded or drawn).


def _clip_box(box: Box, x0: float, y0: float, x1: float, y1: float, width: int, height: int, **kw) -> Box:
    x0, x1 = min(max(0.0, x0), float(width)), min(max(0.0, x1), float(width))
    y0, y1 = min(max(0.0, y0), float(height)), min(max(0.0, y1), float(height))
    return box.with_coords(x0, y0, x1, y1, **kw)


def _outward(lo: float, hi: float) -> tuple[float, float]:
    """Round a span outward to whole pixels (with a hair of slack for float noise)."""
    return float(math.floor(lo + 1e-6)), float(math.ceil(hi - 1e-6))


def rot90(image: np.ndarray, boxes: Sequence[Box], k: int = 1) -> tuple[np.ndarray, list[Box]]:
    """Rotate by ``k`` x 90 degrees counter-clockwise (as :func:`numpy.rot90`); boxes are exact."""
    k %= 4
    h, w = image.shape[:2]
    out = []
    for b in boxes:
        if k == 0:
            out.append(b)
        elif k == 1:    # (x, y) -> (y, W - x)
            out.append(b.with_coords(b.ymin, w - b.xmax, b.ymax, w - b.xmin))
        elif k == 2:    # (x, y) -> (W - x, H - y)
            out.append(b.with_coords(w - b.xmax, h - b.ymax, w - b.xmin, h - b.ymin))
        else:           # (x, y) -> (H - y, x)
            out.append(b.with_coords(h - b.ymax, b.xmin, h - b.ymin, b.xmax))
    return np.ascontiguousarray(np.rot90(image, k)), out


def hflip(image: np.ndarray, boxes: Sequence[Box]) -> tuple[np.ndarray, list[Box]]:
    """Mirror left-right; boxes are exact."""
    w = image.shape[1]
    return (np.ascontiguousarray(image[:, ::-1]),
            [b.with_coords(w - b.xmax, b.ymin, w - b.xmin, b.ymax) for b in boxes])


def vflip(image: np.ndarray, boxes: Sequence[Box]) -> tuple[np.ndarray, list[Box]]:
    """Mirror top-bottom; boxes are exact."""
    h = image.shape[0]
    return (np.ascontiguousarray(image[::-1]),
            [b.with_coords(b.xmin, h - b.ymax, b.xmax, h - b.ymin) for b in boxes])


def background_colour(image: np.ndarray) -> tuple[int, ...]:
    """The background grey/colour: the median of the image's outermost rows and columns."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]]).reshape(-1, image.shape[2])
    return tuple(int(v) for v in np.median(border, axis=0))


def rotation_matrix(angle: float, width: int, height: int, expand: bool = True) -> tuple[np.ndarray, int, int]:
    """The 2x3 affine map of continuous pixel coordinates for a counter-clockwise rotation by ``angle`` degrees
    about the image centre, and the new canvas size (grown to hold the whole image when ``expand``)."""
    t = math.radians(angle)
    c, s = math.cos(t), math.sin(t)
    if expand:
        new_w = int(round(abs(width * c) + abs(height * s)))
        new_h = int(round(abs(width * s) + abs(height * c)))
    else:
        new_w, new_h = width, height
    # y points down, so a counter-clockwise turn on screen is x' = c x + s y, y' = -s x + c y.
    a = np.array([[c, s], [-s, c]])
    centre = np.array([width / 2, height / 2])
    new_centre = np.array([new_w / 2, new_h / 2])
    m = np.hstack([a, (new_centre - a @ centre)[:, None]])
    return m, new_w, new_h


def _transform(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def corner_box(box: Box, m: np.ndarray) -> tuple[float, float, float, float]:
    """The loose box of a box's four rotated corners (not clipped)."""
    pts = np.array([[box.xmin, box.ymin], [box.xmax, box.ymin], [box.xmax, box.ymax], [box.xmin, box.ymax]])
    q = _transform(m, pts)
    return q[:, 0].min(), q[:, 1].min(), q[:, 0].max(), q[:, 1].max()


def mask_box(mask: np.ndarray, window_origin: tuple[int, int], m: np.ndarray) -> tuple[float, float, float, float] | None:
    """The tight box of a rotated mask: every foreground pixel (a unit square) mapped through ``m``."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return None
    x0, y0 = window_origin
    centres = np.stack([cols + x0 + 0.5, rows + y0 + 0.5], axis=1).astype(float)
    q = _transform(m, centres)
    # a rotated unit square reaches (|a11| + |a12|) / 2 from its centre in x, (|a21| + |a22|) / 2 in y
    ex = (abs(m[0, 0]) + abs(m[0, 1])) / 2
    ey = (abs(m[1, 0]) + abs(m[1, 1])) / 2
    return q[:, 0].min() - ex, q[:, 1].min() - ey, q[:, 0].max() + ex, q[:, 1].max() + ey


def warp(image: np.ndarray, m: np.ndarray, width: int, height: int, fill: Sequence[int] | int = 0,
         nearest: bool = False) -> np.ndarray:
    """Warp an image by the affine map ``m`` of continuous pixel coordinates onto a ``width x height`` canvas."""
    import cv2

    # cv2 addresses pixel centres at integer coordinates: shift by half a pixel on both sides.
    shift = m[:, :2] @ np.array([0.5, 0.5]) + m[:, 2] - 0.5
    m_cv = np.hstack([m[:, :2], shift[:, None]])
    border = tuple(int(v) for v in fill) if isinstance(fill, (tuple, list, np.ndarray)) else int(fill)
    out = cv2.warpAffine(image, m_cv, (width, height), flags=cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=border)
    if out.ndim == 2 and image.ndim == 3:
        out = out[..., None]
    return out


def rotate(image: np.ndarray, boxes: Sequence[Box], angle: float, tight: bool = True, expand: bool = True,
           fill: Sequence[int] | None = None, min_visible: float = 0.5) -> tuple[np.ndarray, list[Box]]:
    """Rotate image and boxes by ``angle`` degrees counter-clockwise about the image centre.

    ``tight``: each box becomes the bounding box of the rotated chromosome mask (:func:`foreground_mask`),
    falling back to the rotated-corner box when the mask is empty; otherwise the rotated-corner box.
    ``expand`` grows the canvas so nothing is cut off (corners filled with ``fill``, default the background
    colour); without it boxes are clipped and a chromosome less than ``min_visible`` inside is dropped.
    Boxes are rounded outward to whole pixels.
    """
    h, w = image.shape[:2]
    m, new_w, new_h = rotation_matrix(angle, w, h, expand)
    if fill is None:
        fill = background_colour(image)
    out = warp(image, m, new_w, new_h, fill)
    new_boxes = []
    gray = gray_of(image) if tight else None
    for b in boxes:
        loose = corner_box(b, m)
        coords = loose
        if tight:
            x0, y0, _, _ = box_window(b, w, h)
            found = mask_box(foreground_mask(image, b, gray=gray), (x0, y0), m)
            if found is not None:
                # the chromosome lies inside its box, so its rotation lies inside the rotated box
                coords = (max(found[0], loose[0]), max(found[1], loose[1]),
                          min(found[2], loose[2]), min(found[3], loose[3]))
        xa, xb = _outward(coords[0], coords[2])
        ya, yb = _outward(coords[1], coords[3])
        full = max(1e-9, (xb - xa) * (yb - ya))
        nb = _clip_box(b, xa, ya, xb, yb, new_w, new_h)
        if nb.width <= 0 or nb.height <= 0:
            continue
        visible = nb.area / full
        if visible < 1.0 - 1e-9:
            if visible < min_visible:
                continue
            nb = nb.with_coords(*nb.as_tuple(), truncated=True)
        new_boxes.append(nb)
    return out, new_boxes


def crop(image: np.ndarray, boxes: Sequence[Box], x0: int, y0: int, x1: int, y1: int,
         min_visible: float = 0.5) -> tuple[np.ndarray, list[Box]]:
    """Cut out ``[x0, x1) x [y0, y1)``; a chromosome whose box is at least ``min_visible`` inside stays
    (``truncated`` when cut), the others are dropped."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = max(0, int(x0)), max(0, int(y0)), min(w, int(x1)), min(h, int(y1))
    if x1 <= x0 or y1 <= y0:
        raise AugmentError(f"crop window ({x0},{y0})-({x1},{y1}) is empty")
    out = []
    for b in boxes:
        ix0, iy0 = max(b.xmin, x0), max(b.ymin, y0)
        ix1, iy1 = min(b.xmax, x1), min(b.ymax, y1)
        if ix1 <= ix0 or iy1 <= iy0 or b.area <= 0:
            continue
        visible = (ix1 - ix0) * (iy1 - iy0) / b.area
        if visible < min_visible:
            continue
        out.append(b.with_coords(ix0 - x0, iy0 - y0, ix1 - x0, iy1 - y0,
                                 truncated=b.truncated or visible < 1.0 - 1e-9))
    return np.ascontiguousarray(image[y0:y1, x0:x1]), out
