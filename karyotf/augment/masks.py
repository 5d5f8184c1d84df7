"""Chromosome masks: the dark pixels of a box (grey + Otsu), which a rotation maps to a tight box."""
from __future__ import annotations

import math

import numpy as np

from ..annotations import Box

# Imports inside functions, and why: OpenCV (heavy: loaded when an image is decoded or drawn).


def gray_of(image: np.ndarray) -> np.ndarray:
    """``image`` as one grey channel (an HxW image as it is)."""
    if image.ndim == 2:
        return image
    return (image[..., :3].sum(axis=2, dtype=np.uint16) // image[..., :3].shape[2]).astype(np.uint8)


def box_window(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """Integer pixel window ``(x0, y0, x1, y1)`` covering the box, inside the image."""
    x0 = max(0, int(math.floor(box.xmin)))
    y0 = max(0, int(math.floor(box.ymin)))
    x1 = min(width, int(math.ceil(box.xmax)))
    y1 = min(height, int(math.ceil(box.ymax)))
    return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)


def foreground_mask(image: np.ndarray, box: Box, min_part: float = 0.2, gray: np.ndarray | None = None) -> np.ndarray:
    """The chromosome's pixels inside its box, as a bool array of the box window's shape.

    Chromosomes are dark on a light background: Otsu's threshold inside the box separates them.  Of the
    dark components, the one with the most pixels in the box's central half is the chromosome; other
    components at least ``min_part`` of its size that do not touch the box border (a split chromatid, a
    pale centromere) are kept with it; parts of neighbours poking into the box touch its border and are not.
    Returns an all-False array when the box holds no dark pixels.  ``gray``: the image's grey version, if
    already computed (saves work over many boxes).
    """
    import cv2

    h_img, w_img = image.shape[:2]
    x0, y0, x1, y1 = box_window(box, w_img, h_img)
    patch = (gray_of(image) if gray is None else gray)[y0:y1, x0:x1]
    if patch.size == 0:
        return np.zeros((y1 - y0, x1 - x0), bool)
    if int(patch.max()) == int(patch.min()):
        return np.zeros(patch.shape, bool)
    _, binary = cv2.threshold(np.ascontiguousarray(patch), 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    n, labels = cv2.connectedComponents(binary.astype(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros(patch.shape, bool)
    h, w = patch.shape
    sizes = np.bincount(labels.ravel(), minlength=n)
    centre = labels[h // 4: h - h // 4 or h, w // 4: w - w // 4 or w]
    central = np.bincount(centre.ravel(), minlength=n)
    central[0] = 0
    sizes[0] = 0
    main = int(np.argmax(central)) if central.max() > 0 else int(np.argmax(sizes))
    border = set(np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])).tolist())
    keep = [main] + [k for k in range(1, n)
                     if k != main and k not in border and sizes[k] >= min_part * sizes[main]]
    return np.isin(labels, keep)
