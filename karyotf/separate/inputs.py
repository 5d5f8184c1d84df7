"""The separation model's view of one box, and the way back to cell pixels.

The window is a square around the box's centre, ``(1 + 2 * CONTEXT)`` times the box's longer side, and at least
``size`` px; it is resampled to ``size x size`` (shrunk only: a small chromosome is seen at its own resolution,
with more of its surroundings).  Three channels:

0. darkness ``1 - grey / background`` (0 = slide, 1 = black; outside the image 0), so the slide's brightness
   does not matter;
1. the box itself (1 inside);
2. the other boxes reaching into the window (1 inside any of them).

The model answers ``P(pixel belongs to this box's chromosome)`` in the window; :func:`paste` turns it back into
cell pixels (linear interpolation of the logits' probabilities) and keeps it to the cell's foreground grown by
one pixel, so the mask's edge is the image's own edge, not the window's coarser one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from ..annotations import Box

SIZE = 80
"""Window side in pixels (the model's input)."""
CONTEXT = 0.15
"""Room around the box on each side, as a fraction of its longer side."""


@dataclass(frozen=True)
class Window:
    """A square window of the cell: top-left ``(x0, y0)`` and ``side`` in whole cell pixels, seen at ``size`` px
    (``side >= size``: the window is only ever shrunk)."""

    x0: int
    y0: int
    side: int
    size: int

    @property
    def scale(self) -> float:
        return self.size / self.side


def window_of(box: Box, size: int = SIZE, context: float = CONTEXT) -> Window:
    side = int(np.ceil(max(float(size), max(box.width, box.height) * (1 + 2 * context))))
    cx, cy = (box.xmin + box.xmax) / 2, (box.ymin + box.ymax) / 2
    return Window(int(np.floor(cx - side / 2)), int(np.floor(cy - side / 2)), side, size)


def darkness(gray: np.ndarray, background: float) -> np.ndarray:
    """``1 - gray / background`` clipped to 0..1 (float32)."""
    return np.clip(1.0 - gray.astype(np.float32) / max(float(background), 1.0), 0.0, 1.0)


def _cut(a: np.ndarray, win: Window) -> np.ndarray:
    """The window of a cell-size array (zero outside the cell), at full resolution."""
    h, w = a.shape[:2]
    crop = np.zeros((win.side, win.side), np.float32)
    sx0, sy0 = max(0, win.x0), max(0, win.y0)
    sx1, sy1 = min(w, win.x0 + win.side), min(h, win.y0 + win.side)
    if sx1 > sx0 and sy1 > sy0:
        crop[sy0 - win.y0:sy1 - win.y0, sx0 - win.x0:sx1 - win.x0] = a[sy0:sy1, sx0:sx1]
    return crop


def _view(a: np.ndarray, win: Window) -> np.ndarray:
    crop = _cut(a, win)
    if win.side == win.size:
        return crop
    return cv2.resize(crop, (win.size, win.size), interpolation=cv2.INTER_AREA)


def _rect(channel: np.ndarray, box: Box, win: Window) -> None:
    s = win.scale
    n = channel.shape[0]
    ix0, ix1 = (int(np.clip(np.floor((box.xmin - win.x0) * s), 0, n)),
                int(np.clip(np.ceil((box.xmax - win.x0) * s), 0, n)))
    iy0, iy1 = (int(np.clip(np.floor((box.ymin - win.y0) * s), 0, n)),
                int(np.clip(np.ceil((box.ymax - win.y0) * s), 0, n)))
    channel[iy0:iy1, ix0:ix1] = 1.0


def make_input(dark: np.ndarray, box: Box, others: Sequence[Box], size: int = SIZE,
               context: float = CONTEXT) -> tuple[np.ndarray, Window]:
    """(``size x size x 3`` float32 input, its window) for one box of a cell given as ``darkness``."""
    win = window_of(box, size, context)
    x = np.zeros((size, size, 3), np.float32)
    x[..., 0] = _view(dark, win)
    _rect(x[..., 1], box, win)
    for o in others:
        _rect(x[..., 2], o, win)
    return x, win


def target_of(mask: np.ndarray, win: Window) -> np.ndarray:
    """A cell-size bool mask seen in the window (``size x size`` float32, area-averaged, 0..1)."""
    return _view(mask.astype(np.float32), win)


def paste(prob: np.ndarray, win: Window, shape: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """The window's probabilities back in cell pixels (linear interpolation): (probabilities over the part of
    the cell the window covers, that part's top-left ``(x0, y0)``)."""
    h, w = shape[:2]
    full = prob.astype(np.float32)
    if win.side != win.size:
        full = cv2.resize(full, (win.side, win.side), interpolation=cv2.INTER_LINEAR)
    sx0, sy0 = max(0, win.x0), max(0, win.y0)
    sx1, sy1 = min(w, win.x0 + win.side), min(h, win.y0 + win.side)
    if sx1 <= sx0 or sy1 <= sy0:
        return np.zeros((0, 0), np.float32), (sx0, sy0)
    return full[sy0 - win.y0:sy1 - win.y0, sx0 - win.x0:sx1 - win.x0], (sx0, sy0)
