"""A cell and its boxes -> each chromosome's own mask: the U-Net where it is sure, the classical cut-out where not.

For each box the U-Net (:mod:`karyotf.separate.model`) sees the box's window (:mod:`karyotf.separate.inputs`)
and says which pixels are this box's chromosome; a crossing is given to both chromosomes that pass through it,
a neighbour that only enters the box to that neighbour.  The answer is kept to the cell's foreground (the
cut-out's rule) grown by two pixels (the masks hold the chromosome's soft edge), and to the pieces that reach into the box.

**The fallback, and why.**  The classical cut-out (:func:`karyotf.karyogram.cutout.cut_out`: threshold,
component, thin bridges cut, shared pixels to the nearer chromosome) is used

* for every box when no separation model is given (``karyotf karyogram`` without ``--separate``): it needs
  no trained weights, and on isolated chromosomes (most of a cell) it is as good;
* for one box when the U-Net is unsure of it: it is sure (> 0.8) of less than ``min_confidence`` of the
  foreground pixels it claims at all (> 0.2), or its mask is empty (a box with no foreground: then the cut-out's own
  rules apply, down to the whole box).  An unsure network mask is more often wrong by whole arms, the cut-out
  by a stub; and the box is flagged either way.

**Flags** (code ``separation_uncertain``, one a cell, listing the boxes): a box whose mask fell back for low
confidence or had no foreground, and every box of a cluster of three or more chromosomes whose masks touch or
cross (pairs are what the model is trained on; a tangle of three is where a person should look).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import ndimage as ndi

from .. import classes
from ..annotations import Box
from ..karyogram.call import Flag
from ..karyogram.cutout import MARGIN, Cutout, cut_out, foreground, foreground_threshold, masked, to_gray
from ..paths import SEPARATE_DIR
from .inputs import darkness, make_input, paste, window_of
from .synth import background_level

# Imports inside functions, and why: TensorFlow / KerasCV / the OD API (heavy: kept off the import path);
# karyotf.separate.train (it loads OpenCV at its top).

MIN_CONFIDENCE = 0.6
"""A U-Net mask is used when the model is sure (probability > 0.8) of at least this fraction of the foreground
pixels it claims at all (probability > 0.2).  Chosen on synthetic crossings of the **val** split (120 scenes,
seed 1234): below 0.6 the cut-out is the better mask on average; at 0.8 the fallback already costs 0.01 IoU."""
CLUSTER = 3
"""Chromosomes whose masks touch or cross in a group of this many or more are flagged."""
PIECE = 0.2
"""A piece of a U-Net mask is kept when it holds at least this fraction of the mask's largest piece."""
CONTACT = 6
"""Pixels along which two masks (their rims peeled) must touch or cross to count as one cluster."""
FLAG_CODE = "separation_uncertain"
_EIGHT = np.ones((3, 3), bool)


@dataclass
class Separation:
    """The masks of one cell: ``cutouts[i]`` for ``boxes[i]`` (``method``: ``unet``, or the cut-out's own
    ``component`` / ``local`` / ``box`` where it fell back), ``confidence[i]`` (1 for the cut-out when no
    model was given), ``clusters`` (lists of box indices whose masks touch or cross, two or more), ``flags``."""

    cutouts: list[Cutout]
    confidence: list[float]
    clusters: list[list[int]] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)
    uncertain: dict[int, str] = field(default_factory=dict)
    """Box index -> why its separation is uncertain."""
    ms: float = 0.0


def _cell_mask(c: Cutout, shape) -> tuple[slice, slice]:
    x0, y0 = c.origin
    return slice(y0, y0 + c.mask.shape[0]), slice(x0, x0 + c.mask.shape[1])


def _to_cutout(image: np.ndarray, box: Box, index: int, mask_cell: np.ndarray, offset: tuple[int, int],
               method: str) -> Cutout:
    """A :class:`Cutout` holding ``mask_cell`` (given over the sub-image at ``offset``) in a crop of the box plus
    the cut-out's margin, grown to hold the whole mask."""
    h, w = image.shape[:2]
    ox, oy = offset
    ys, xs = np.nonzero(mask_cell)
    m = max(3, int(round(MARGIN * max(box.width, box.height))))
    x0 = min(int(np.floor(box.xmin)) - m, ox + int(xs.min()))
    y0 = min(int(np.floor(box.ymin)) - m, oy + int(ys.min()))
    x1 = max(int(np.ceil(box.xmax)) + m, ox + int(xs.max()) + 1)
    y1 = max(int(np.ceil(box.ymax)) + m, oy + int(ys.max()) + 1)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    mask = np.zeros((y1 - y0, x1 - x0), bool)
    sy0, sx0 = max(y0, oy), max(x0, ox)
    sy1, sx1 = min(y1, oy + mask_cell.shape[0]), min(x1, ox + mask_cell.shape[1])
    mask[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = mask_cell[sy0 - oy:sy1 - oy, sx0 - ox:sx1 - ox]
    return masked(image, box, index, mask, (x0, y0), method)


class Separator:
    """The separation model, loaded once: ``Separator(path)`` from an export (``karyotf separate export``) or a
    run dir; ``separate(image, boxes)`` gives a :class:`Separation`."""

    def __init__(self, path: str | Path | None = None, min_confidence: float = MIN_CONFIDENCE, model=None, cfg=None):
        if model is None:
            from .train import load_model

            model, cfg = load_model(path)
        import tensorflow as tf

        self.path = Path(path) if path is not None else None
        self.model, self.cfg = model, cfg
        self.min_confidence = float(min_confidence)
        self._fn = tf.function(lambda x: tf.sigmoid(self.model(x, training=False)), reduce_retracing=True)

    @classmethod
    def default(cls, min_confidence: float = MIN_CONFIDENCE) -> "Separator":
        """The separation model shipped with karyotf (:data:`karyotf.paths.SEPARATE_DIR`)."""
        return cls(SEPARATE_DIR, min_confidence=min_confidence)

    def __repr__(self) -> str:
        return f"Separator({self.path}, size={self.cfg.size}, min_confidence={self.min_confidence})"

    def probabilities(self, windows: np.ndarray, batch: int = 64) -> np.ndarray:
        out = [self._fn(windows[i:i + batch]).numpy()[..., 0] for i in range(0, len(windows), batch)]
        return np.concatenate(out) if out else np.zeros((0, self.cfg.size, self.cfg.size), np.float32)

    def separate(self, image: np.ndarray, boxes: Sequence[Box]) -> Separation:
        return separate(image, boxes, self)


def _overlapping(boxes: Sequence[Box], i: int, win) -> list[Box]:
    x1, y1 = win.x0 + win.side, win.y0 + win.side
    return [o for j, o in enumerate(boxes) if j != i and o.xmax > win.x0 and o.xmin < x1 and o.ymax > win.y0
            and o.ymin < y1]


def separate(image: np.ndarray, boxes: Sequence[Box], separator: "Separator | None" = None,
             min_confidence: float | None = None, cluster: int = CLUSTER) -> Separation:
    """Each box's mask (see the module doc).  ``separator`` None: the classical cut-out for every box (the
    clusters and their flags are still found).  Never drops a box: ``cutouts[i]`` belongs to ``boxes[i]``."""
    t0 = time.perf_counter()
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    boxes = list(boxes)
    gray = to_gray(image)
    thr = foreground_threshold(gray)
    h, w = gray.shape
    classical = [None] * len(boxes)

    def fallback(i):
        if classical[i] is None:
            b = boxes[i]
            others = [o for j, o in enumerate(boxes) if j != i and o.xmax > b.xmin and o.xmin < b.xmax
                      and o.ymax > b.ymin and o.ymin < b.ymax]
            classical[i] = cut_out(image, b, i, gray=gray, threshold=thr, others=others)
        return classical[i]

    cutouts: list[Cutout] = []
    confidence: list[float] = []
    uncertain: dict[int, str] = {}
    if separator is None or not boxes:
        for i in range(len(boxes)):
            c = fallback(i)
            cutouts.append(c)
            confidence.append(1.0)
            if c.method == "box":
                uncertain[i] = "no foreground in the box"
    else:
        min_conf = separator.min_confidence if min_confidence is None else min_confidence
        fg = foreground(gray, thr, max_hole=16)
        fg1 = ndi.binary_dilation(fg, structure=_EIGHT, iterations=2)
        dark = darkness(gray, background_level(gray, fg))
        size, context = separator.cfg.size, separator.cfg.context
        xs, wins = [], []
        for i, b in enumerate(boxes):
            x, win = make_input(dark, b, _overlapping(boxes, i, window_of(b, size, context)), size, context)
            xs.append(x)
            wins.append(win)
        probs = separator.probabilities(np.stack(xs))
        for i, (b, win, p) in enumerate(zip(boxes, wins, probs)):
            pc, (ox, oy) = paste(p, win, (h, w))
            mask = None
            conf = 0.0
            if pc.size:
                region_fg = fg1[oy:oy + pc.shape[0], ox:ox + pc.shape[1]]
                mask = (pc > 0.5) & region_fg
                mask = _keep_in_box(mask, b, ox, oy)
                if mask.any():  # the core foreground the model claims at all: how much of it is it sure of?
                    core = fg[oy:oy + pc.shape[0], ox:ox + pc.shape[1]] & (pc > 0.2)
                    sure = (pc > 0.8)[core]
                    conf = float(sure.mean()) if sure.size else 0.0
            if mask is not None and mask.any() and conf >= min_conf:
                cutouts.append(_to_cutout(image, b, i, mask, (ox, oy), "unet"))
            else:
                c = fallback(i)
                cutouts.append(c)
                uncertain[i] = ("no foreground in the box" if mask is None or not mask.any() else
                                f"low mask confidence {conf:.2f} (cut-out used)")
            confidence.append(conf)
    clusters = _clusters(cutouts, (h, w))
    alone = dict(uncertain)
    big = [sorted(c) for c in clusters if len(c) >= cluster]
    for comp in big:
        for i in comp:
            uncertain.setdefault(i, f"in a cluster of {len(comp)} touching or crossing chromosomes")
    flags = []
    if uncertain:
        parts = [f"#{i} ({boxes[i].name}) {why}" for i, why in sorted(alone.items())]
        parts += [f"a cluster of {len(c)}: " + ", ".join(f"#{i} ({boxes[i].name})" for i in c) for c in big]
        flags.append(Flag(FLAG_CODE, f"{len(uncertain)} chromosome(s) with an uncertain separation: "
                                     + "; ".join(parts),
                          tuple(sorted({boxes[i].name for i in uncertain}, key=_class_key))))
    return Separation(cutouts=cutouts, confidence=confidence, clusters=clusters, flags=flags, uncertain=uncertain,
                      ms=1000 * (time.perf_counter() - t0))


def _class_key(name: str):
    return classes.NAMES.index(name) if name in classes.NAMES else len(classes.NAMES)


def _keep_in_box(mask: np.ndarray, box: Box, ox: int, oy: int) -> np.ndarray:
    """The pieces of ``mask`` (given at offset ``(ox, oy)``) with a pixel inside ``box`` and at least ``PIECE``
    of the largest such piece's size."""
    if not mask.any():
        return mask
    labels, n = ndi.label(mask, structure=_EIGHT)
    if n == 1:
        inside = labels[max(0, int(box.ymin) - oy):max(0, int(np.ceil(box.ymax)) - oy),
                        max(0, int(box.xmin) - ox):max(0, int(np.ceil(box.xmax)) - ox)]
        return mask if inside.any() else np.zeros_like(mask)
    inside = labels[max(0, int(box.ymin) - oy):max(0, int(np.ceil(box.ymax)) - oy),
                    max(0, int(box.xmin) - ox):max(0, int(np.ceil(box.xmax)) - ox)]
    keep = np.unique(inside[inside > 0])
    if keep.size == 0:
        return np.zeros_like(mask)
    sizes = ndi.sum_labels(mask, labels, keep)
    keep = keep[sizes >= PIECE * sizes.max()]  # specks go; a chromosome split at a pale band keeps its parts
    return np.isin(labels, keep)


def _clusters(cutouts: Sequence[Cutout], shape) -> list[list[int]]:
    """Groups (two or more) of boxes whose masks cross or touch along ``CONTACT`` pixels or more, by union-find.
    The masks' one-pixel rims are peeled first (each mask is grown by a pixel, so chromosomes two pixels apart
    would share it), and a brush at one corner does not count."""
    n = len(cutouts)
    parent = list(range(n))

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    spans = []
    for c in cutouts:
        x0, y0 = c.origin
        spans.append((x0, y0, x0 + c.mask.shape[1], y0 + c.mask.shape[0]))
    for i in range(n):
        ax0, ay0, ax1, ay1 = spans[i]
        for j in range(i + 1, n):
            bx0, by0, bx1, by1 = spans[j]
            x0, y0, x1, y1 = max(ax0, bx0) - 1, max(ay0, by0) - 1, min(ax1, bx1) + 1, min(ay1, by1) + 1
            if x1 <= x0 or y1 <= y0:
                continue
            a = ndi.binary_erosion(_sub(cutouts[i], x0 - 1, y0 - 1, x1 + 1, y1 + 1), structure=_EIGHT)
            b = ndi.binary_erosion(_sub(cutouts[j], x0 - 1, y0 - 1, x1 + 1, y1 + 1), structure=_EIGHT)
            contact = int((ndi.binary_dilation(a, structure=_EIGHT) & b).sum())
            if contact >= CONTACT:
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return [g for g in groups.values() if len(g) >= 2]


def _sub(c: Cutout, x0, y0, x1, y1) -> np.ndarray:
    out = np.zeros((y1 - y0, x1 - x0), bool)
    cx0, cy0 = c.origin
    h, w = c.mask.shape
    sx0, sy0, sx1, sy1 = max(x0, cx0), max(y0, cy0), min(x1, cx0 + w), min(y1, cy0 + h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = c.mask[sy0 - cy0:sy1 - cy0, sx0 - cx0:sx1 - cx0]
    return out


_LOADED: dict[str, Separator] = {}


def load(path: "str | Path | Separator") -> Separator:
    """A :class:`Separator` from an export or run dir (loaded once a process), or the one given."""
    if isinstance(path, Separator):
        return path
    key = str(Path(path).resolve())
    if key not in _LOADED:
        _LOADED[key] = Separator(path)
    return _LOADED[key]


def cutouts(image: np.ndarray, boxes: Sequence[Box], separator: "str | Path | Separator | None" = None) -> list:
    """Each box's cut-out through its separated mask (``cutouts[i]`` for ``boxes[i]``, never a box dropped), with
    ``separator`` (an export dir or a loaded one; None: the shipped model): what a classifier reading separated
    cut-outs is given (:func:`karyotf.classify.crops.cell_crops` ``cutouts=``)."""
    return separate(image, boxes, load(separator or SEPARATE_DIR)).cutouts
