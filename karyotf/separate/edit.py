"""A person's split line: redraw where a chromosome's mask is cut, or where two chromosomes part.

A *split* is ``{"chromosomes": [i] or [i, j], "line": [[x, y], [x, y], ...]}`` (box indices of one cell, the line
in the cell's pixels; pixel ``(c, r)`` covers ``[c, c + 1) x [r, r + 1)``, its centre is ``(c + 0.5, r + 0.5)``).
The line (a polyline, its first and last segments extended past the mask) cuts the masks' union in two sides, each
pixel going to the side of the segment nearest to its centre:

* one chromosome ``i``: ``i`` keeps the side holding more of its mask inside its box (a neighbour's arm that its
  mask took along is cut off at the line);
* two chromosomes ``i``, ``j``: the union of their masks is shared out along the line, each side to the
  chromosome whose box holds more of it (where they part is redrawn; a crossing is then given to one side only).

:func:`apply_splits` applies a cell's splits in order to its cut-outs (``karyotf.karyogram.build`` rebuilds a
karyogram with them; the review app stores them with the review); a bad split raises :class:`SplitError` naming
the chromosome and the fix.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..annotations import Box
from ..errors import SeparateError
from ..karyogram.cutout import Cutout
from .separator import _sub, _to_cutout

METHOD = "split"
"""``Cutout.method`` of a mask a split line redrew."""
MAX_POINTS = 200


class SplitError(SeparateError):
    """A split line that cannot be applied (its message names the chromosome and the fix)."""


@dataclass(frozen=True)
class Split:
    chromosomes: tuple[int, ...]
    line: tuple[tuple[float, float], ...]

    def to_dict(self) -> dict:
        return {"chromosomes": list(self.chromosomes), "line": [[round(x, 2), round(y, 2)] for x, y in self.line]}


def _who(boxes: Sequence[Box], idx: Sequence[int]) -> str:
    return " and ".join(f"chromosome #{i} ({boxes[i].name})" for i in idx)


def parse_split(item, boxes: Sequence[Box], k: int | None = None) -> Split:
    """A :class:`Split` from its JSON form, checked against the cell's ``boxes``: one or two distinct box indices,
    two or more finite points, a line that is not a point and that crosses the chromosome's box (two chromosomes:
    the box holding both).
    ``k``: the split's position in a list (for the message)."""
    at = f"split #{k}" if k is not None else "split"
    if not isinstance(item, dict):
        raise SplitError(f"{at}: not an object (fix: send {{'chromosomes': [i], 'line': [[x, y], [x, y]]}})")
    idx = item.get("chromosomes")
    if (not isinstance(idx, list) or not 1 <= len(idx) <= 2
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in idx)):
        raise SplitError(f"{at}: 'chromosomes' must be one or two box indices, e.g. [3] or [3, 7]")
    for i in idx:
        if not 0 <= i < len(boxes):
            raise SplitError(f"{at}: chromosome #{i} is not a box of this cell (it has {len(boxes)})")
    if len(idx) == 2 and idx[0] == idx[1]:
        raise SplitError(f"{at}: {_who(boxes, idx[:1])} given twice (fix: one chromosome, or two different ones)")
    who = _who(boxes, idx)
    line = item.get("line")
    if (not isinstance(line, list) or len(line) > MAX_POINTS
            or not all(isinstance(p, (list, tuple)) and len(p) == 2
                       and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                               for v in p) for p in line)):
        raise SplitError(f"{at} of {who}: 'line' must be a list of [x, y] points in pixels (at most {MAX_POINTS})")
    pts = [(float(x), float(y)) for x, y in line]
    if len(pts) < 2:
        raise SplitError(f"{at} of {who}: the line has {len(pts)} point(s), a split needs two or more (fix: drag "
                         "across the chromosome where it should be cut)")
    if max(math.hypot(x - pts[0][0], y - pts[0][1]) for x, y in pts) < 1.0:
        raise SplitError(f"{at} of {who}: the line is a single point (fix: drag across the chromosome where it "
                         "should be cut)")
    b = boxes[idx[0]]  # one chromosome: its box; two: the box holding both (where they part may lie between)
    for i in idx[1:]:
        o = boxes[i]
        b = Box(min(b.xmin, o.xmin), min(b.ymin, o.ymin), max(b.xmax, o.xmax), max(b.ymax, o.ymax), b.name)
    if not _crosses(pts, b):
        raise SplitError(f"{at} of {who}: the line does not cross the box ({b.xmin:.0f},{b.ymin:.0f})-"
                         f"({b.xmax:.0f},{b.ymax:.0f}) (fix: draw it across the chromosome where it should be cut)")
    return Split(tuple(idx), tuple(pts))


def _crosses(pts, b: Box) -> bool:
    """Whether the polyline passes through the box (a point inside it, or a segment crossing one of its sides)."""
    def inside(p):
        return b.xmin <= p[0] <= b.xmax and b.ymin <= p[1] <= b.ymax
    if any(inside(p) for p in pts):
        return True
    corners = [(b.xmin, b.ymin), (b.xmax, b.ymin), (b.xmax, b.ymax), (b.xmin, b.ymax)]
    sides = list(zip(corners, corners[1:] + corners[:1]))
    return any(_segments_cross(p, q, c, d) for p, q in zip(pts, pts[1:]) for c, d in sides)


def _segments_cross(p, q, c, d) -> bool:
    def orient(a, b, e):
        v = (b[0] - a[0]) * (e[1] - a[1]) - (b[1] - a[1]) * (e[0] - a[0])
        return (v > 0) - (v < 0)
    return orient(p, q, c) != orient(p, q, d) and orient(c, d, p) != orient(c, d, q)


def side_of(shape: tuple[int, int], origin: tuple[int, int], line: Sequence[tuple[float, float]]) -> np.ndarray:
    """Bool array of ``shape`` (a window whose top-left pixel is ``origin`` in the cell): True for the pixels whose
    centre lies left of the line (the cross product of the nearest segment and the pixel is positive; the first and
    last segments are extended far past the window)."""
    h, w = shape
    x0, y0 = origin
    ys, xs = np.mgrid[0:h, 0:w]
    px, py = xs + x0 + 0.5, ys + y0 + 0.5
    pts = [np.asarray(p, float) for p in line]
    far = 4.0 * (h + w) + 1e4
    d0 = pts[0] - pts[1]
    d1 = pts[-1] - pts[-2]
    pts = [pts[0] + far * d0 / max(1e-9, np.hypot(*d0))] + pts[1:-1] + [pts[-1] + far * d1 / max(1e-9, np.hypot(*d1))]
    best = np.full(shape, np.inf)
    sign = np.zeros(shape, bool)
    for a, b in zip(pts, pts[1:]):
        ab = b - a
        n2 = float(ab @ ab)
        if n2 < 1e-12:
            continue
        t = np.clip(((px - a[0]) * ab[0] + (py - a[1]) * ab[1]) / n2, 0.0, 1.0)
        dist = np.hypot(px - (a[0] + t * ab[0]), py - (a[1] + t * ab[1]))
        cross = ab[0] * (py - a[1]) - ab[1] * (px - a[0])
        nearer = dist < best
        best = np.where(nearer, dist, best)
        sign = np.where(nearer, cross > 0, sign)
    return sign


def split_mask(mask: np.ndarray, origin: tuple[int, int], line) -> tuple[np.ndarray, np.ndarray]:
    """The two sides of ``mask`` (over the window at ``origin``) cut by ``line``: (left of it, right of it)."""
    left = side_of(mask.shape, origin, line)
    return mask & left, mask & ~left


def _in_box(shape, origin, b: Box) -> np.ndarray:
    h, w = shape
    x0, y0 = origin
    ys, xs = np.mgrid[0:h, 0:w]
    cx, cy = xs + x0 + 0.5, ys + y0 + 0.5
    return (cx >= b.xmin) & (cx <= b.xmax) & (cy >= b.ymin) & (cy <= b.ymax)


def apply_split(image: np.ndarray, boxes: Sequence[Box], cutouts: Sequence[Cutout], split: Split,
                k: int | None = None) -> tuple[list[Cutout], dict]:
    """``cutouts`` with ``split`` applied (a new list; the untouched cut-outs are the same objects), and a record
    of what it did (``areas`` before and after, pixels).  Raises :class:`SplitError` when the line leaves a side
    empty."""
    at = f"split #{k}" if k is not None else "split"
    idx = list(split.chromosomes)
    who = _who(boxes, idx)
    spans = [(c.origin[0], c.origin[1], c.origin[0] + c.mask.shape[1], c.origin[1] + c.mask.shape[0])
             for c in (cutouts[i] for i in idx)]
    x0, y0 = min(s[0] for s in spans), min(s[1] for s in spans)
    x1, y1 = max(s[2] for s in spans), max(s[3] for s in spans)
    masks = [_sub(cutouts[i], x0, y0, x1, y1) for i in idx]
    union = np.logical_or.reduce(masks)
    a, b = split_mask(union, (x0, y0), split.line)
    if not a.any() or not b.any():
        raise SplitError(f"{at} of {who}: the line does not cut {'its mask' if len(idx) == 1 else 'their masks'} in "
                         f"two (all {int(union.sum())} px lie on one side) (fix: draw it right across the "
                         "chromosome, from background to background)")
    shape, origin = union.shape, (x0, y0)
    if len(idx) == 1:
        i = idx[0]
        inbox = _in_box(shape, origin, boxes[i])
        keep = a if (a & inbox).sum() >= (b & inbox).sum() else b
        new = {i: keep}
    else:
        i, j = idx
        bi, bj = _in_box(shape, origin, boxes[i]), _in_box(shape, origin, boxes[j])
        straight = int((a & bi).sum() + (b & bj).sum())
        swapped = int((b & bi).sum() + (a & bj).sum())
        new = {i: a, j: b} if straight >= swapped else {i: b, j: a}
    out = list(cutouts)
    areas = {}
    for i, m in new.items():
        if not m.any():
            raise SplitError(f"{at} of {who}: chromosome #{i} ({boxes[i].name}) would keep no pixel (fix: draw the "
                             "line between the chromosomes)")
        areas[str(i)] = {"before": int(cutouts[i].mask.sum()), "after": int(m.sum())}
        out[i] = _to_cutout(image, boxes[i], i, m, origin, METHOD)
    return out, {**split.to_dict(), "classes": [boxes[i].name for i in idx], "areas": areas}


def apply_splits(image: np.ndarray, boxes: Sequence[Box], cutouts: Sequence[Cutout], splits) -> tuple[list[Cutout],
                                                                                                      list[dict]]:
    """Every split of ``splits`` (dicts or :class:`Split`), in order: (the cut-outs, one record a split)."""
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    out, records = list(cutouts), []
    for k, s in enumerate(splits or ()):
        s = s if isinstance(s, Split) else parse_split(s, boxes, k)
        out, rec = apply_split(image, boxes, out, s, k)
        records.append(rec)
    return out, records
