"""Synthetic crossings whose masks are known exactly: the separation model's training and test truth.

CIL:54816 has boxes, not masks.  Isolated chromosomes are plentiful, though: a box whose foreground component
(by the cut-out's own foreground rule, :func:`karyotf.karyogram.cutout.foreground`, with the cell's Otsu
threshold) touches no other box and lies inside its box.  Its mask is that component, holes up to the cut-out's
size filled, grown by one pixel (the cut-out's soft edge, as :func:`~karyotf.karyogram.cutout.cut_out` does).
Its *transmittance* is the grey value over the cell's slide background (1 = slide, 0 = black), 1 outside the
mask.

A scene lays two of them over each other as chromosomes lie on a slide: each rotated by a random angle (and
mirrored with p = 0.5), the second placed so that a random pixel of its mask lands on a random pixel of the
first's (a crossing at a random point) or, with ``touch_p``, then slid away along a random direction until the
two masks just no longer overlap (touching).  Optional extra chromosomes land anywhere on the canvas.  The image
is the slide background times the product of the transmittances (stain absorbs multiplicatively, so the
crossing is darker than either), plus a little Gaussian noise.  Each mask is its chromosome's rotated mask:
exact by construction, since only pixels inside a mask are darkened.  Everything is drawn from one
``numpy.random.Generator``: the same seed gives the same scenes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import cv2
import numpy as np
from scipy import ndimage as ndi
from tqdm import tqdm

from .. import images
from ..annotations import Box
from ..karyogram.cutout import MARGIN, foreground, foreground_threshold, to_gray
from ..records import read_examples

MIN_AREA = 60
"""Smallest isolated chromosome kept (pixels of its mask): smaller components are debris or fragments."""
MAX_HOLE = 0.004
"""Holes up to this fraction of the box's area are filled (the cut-out's rule)."""


@dataclass
class Chromosome:
    """One isolated chromosome: ``trans`` float32 transmittance (1 = slide, 1 outside the mask), ``mask`` bool,
    both tight around the mask (2 px pad); ``name`` its class, ``cell`` its cell id; ``background`` the grey
    level of its cell's slide."""

    trans: np.ndarray
    mask: np.ndarray
    name: str
    cell: str = ""
    background: float = 240.0

    @property
    def area(self) -> int:
        return int(self.mask.sum())


@dataclass
class Scene:
    """A synthetic cell: ``image`` RGB uint8, one exact ``masks[i]`` (bool, image size) and ``boxes[i]`` (the
    tight box of the mask, class name kept) a chromosome; ``pair``: the indices of the two that cross or touch;
    ``touching``: True when they were slid apart to touch rather than cross."""

    image: np.ndarray
    masks: list[np.ndarray]
    boxes: list[Box]
    background: float
    pair: tuple[int, int] = (0, 1)
    touching: bool = False
    sources: list[str] = field(default_factory=list)

    @property
    def overlap(self) -> np.ndarray:
        a, b = self.pair
        return self.masks[a] & self.masks[b]


def background_level(gray: np.ndarray, fg: np.ndarray) -> float:
    """The slide's grey level: the median of the pixels at least 3 px away from the foreground."""
    away = ~ndi.binary_dilation(fg, iterations=3)
    vals = gray[away]
    return float(np.median(vals)) if vals.size else 255.0


def isolated(image: np.ndarray, boxes: Sequence[Box], cell: str = "", min_area: int = MIN_AREA) -> list[Chromosome]:
    """The isolated chromosomes of one cell: for each box, the foreground component with the most pixels in the
    box, kept when it touches no other box, has at most 2% of its pixels outside the box (plus the cut-out's
    margin), no other component of 5% its size lies in the box, and it has ``min_area`` pixels or more."""
    gray = to_gray(image)
    thr = foreground_threshold(gray)
    h, w = gray.shape
    fg = foreground(gray, thr, max_hole=0)  # holes are filled per box below
    labels, n = ndi.label(fg, structure=np.ones((3, 3), bool))
    if n == 0:
        return []
    bg = background_level(gray, fg)
    rects = []
    for b in boxes:
        x0, y0 = int(np.floor(max(0, b.xmin))), int(np.floor(max(0, b.ymin)))
        x1, y1 = int(np.ceil(min(w, b.xmax))), int(np.ceil(min(h, b.ymax)))
        rects.append((x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)))
    objects = ndi.find_objects(labels)
    out = []
    for i, (b, (x0, y0, x1, y1)) in enumerate(zip(boxes, rects)):
        sub = labels[y0:y1, x0:x1]
        ids, counts = np.unique(sub[sub > 0], return_counts=True)
        if ids.size == 0:
            continue
        order = np.argsort(-counts)
        lab, inside = int(ids[order[0]]), int(counts[order[0]])
        if ids.size > 1 and counts[order[1]] >= 0.05 * inside:
            continue  # a second piece in the box: split chromosome, debris or a neighbour: not clean
        sl = objects[lab - 1]
        comp = labels[sl] == lab
        total = int(comp.sum())
        m = max(3, int(round(MARGIN * max(x1 - x0, y1 - y0))))
        cy0, cx0 = sl[0].start, sl[1].start
        if cy0 < y0 - m or cx0 < x0 - m or sl[0].stop > y1 + m or sl[1].stop > x1 + m:
            continue  # reaches well outside its box
        if inside < 0.98 * total or total < min_area:
            continue
        touches = False
        for j, (ox0, oy0, ox1, oy1) in enumerate(rects):
            if j == i or ox1 <= sl[1].start or ox0 >= sl[1].stop or oy1 <= sl[0].start or oy0 >= sl[0].stop:
                continue
            if comp[max(0, oy0 - cy0):max(0, oy1 - cy0), max(0, ox0 - cx0):max(0, ox1 - cx0)].any():
                touches = True
                break
        if touches:
            continue
        # the cut-out's mask: small holes filled, grown by one pixel; in a 3-px padded frame
        pad = 3
        ys0, xs0 = max(0, cy0 - pad), max(0, cx0 - pad)
        ys1, xs1 = min(h, sl[0].stop + pad), min(w, sl[1].stop + pad)
        frame = labels[ys0:ys1, xs0:xs1] == lab
        holes = ndi.binary_fill_holes(frame) & ~frame
        if holes.any():
            hl, hn = ndi.label(holes)
            sizes = ndi.sum_labels(holes, hl, np.arange(1, hn + 1))
            small = np.arange(1, hn + 1)[sizes <= max(4, int(MAX_HOLE * (x1 - x0) * (y1 - y0)))]
            frame |= np.isin(hl, small)
        mask = ndi.binary_dilation(frame, structure=np.ones((3, 3), bool))
        other_fg = (labels[ys0:ys1, xs0:xs1] > 0) & (labels[ys0:ys1, xs0:xs1] != lab)
        if (mask & other_fg).any():
            continue  # another component within a pixel
        g = gray[ys0:ys1, xs0:xs1]
        trans = np.where(mask, np.clip(g / max(bg, 1.0), 0.0, 1.0), 1.0).astype(np.float32)
        out.append(Chromosome(trans=trans, mask=mask, name=b.name, cell=cell, background=bg))
    return out


def isolated_from_records(records_dir, split: str, limit: int | None = None,
                          progress: bool = False) -> list[Chromosome]:
    """The isolated chromosomes of every cell of one split of a records dir (``limit`` cells at most)."""
    out: list[Chromosome] = []
    items: Iterable = read_examples(records_dir, split)
    if progress:
        items = tqdm(items, desc=f"isolated chromosomes ({split})", unit="cell", leave=False)
    for k, (data, ann) in enumerate(items):
        if limit is not None and k >= limit:
            break
        out.extend(isolated(images.load(data), ann.boxes, cell=ann.image_id))
    return out


def rotate(ch: Chromosome, angle: float, flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(transmittance, mask) of a chromosome turned by ``angle`` degrees (mirrored first with ``flip``), on a
    canvas just large enough.  The mask is turned by nearest neighbour; the transmittance by linear
    interpolation and set to 1 outside the turned mask, so only mask pixels are ever darkened."""
    t, m = ch.trans, ch.mask
    if flip:
        t, m = t[:, ::-1], m[:, ::-1]
    h, w = m.shape
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(rot[0, 0]), abs(rot[0, 1])
    nw, nh = int(np.ceil(h * sin + w * cos)) + 2, int(np.ceil(h * cos + w * sin)) + 2
    rot[0, 2] += nw / 2 - w / 2
    rot[1, 2] += nh / 2 - h / 2
    mr = cv2.warpAffine(m.astype(np.uint8), rot, (nw, nh), flags=cv2.INTER_NEAREST, borderValue=0) > 0
    tr = cv2.warpAffine(np.ascontiguousarray(t), rot, (nw, nh), flags=cv2.INTER_LINEAR, borderValue=1.0)
    tr = np.where(mr, np.clip(tr, 0.0, 1.0), 1.0).astype(np.float32)
    return tr, mr


def _place(canvas_t, canvas_m, t, m, y, x):
    h, w = m.shape
    canvas_t[y:y + h, x:x + w] *= t
    canvas_m[y:y + h, x:x + w] |= m


def make_scene(chromosomes: Sequence[Chromosome], rng: np.random.Generator, touch_p: float = 0.25,
               extra: tuple[int, int] = (0, 0), noise: float = 1.5, margin: tuple[int, int] = (8, 24)) -> Scene:
    """One synthetic scene: two chromosomes drawn from ``chromosomes`` crossing (or, with ``touch_p``,
    touching), plus ``rng.integers(extra[0], extra[1] + 1)`` more anywhere on the canvas (see the module doc)."""
    if len(chromosomes) < 2:
        raise ValueError("a crossing needs at least two isolated chromosomes")
    n_extra = int(rng.integers(extra[0], extra[1] + 1))
    idx = rng.choice(len(chromosomes), size=2 + n_extra, replace=len(chromosomes) < 2 + n_extra)
    parts = [rotate(chromosomes[i], float(rng.uniform(0, 360)), bool(rng.random() < 0.5)) for i in idx]
    (ta, ma), (tb, mb) = parts[0], parts[1]
    # B's chosen pixel lands on A's chosen pixel: offsets of B relative to A
    ay, ax = np.argwhere(ma)[rng.integers(ma.sum())]
    by, bx = np.argwhere(mb)[rng.integers(mb.sum())]
    dy, dx = int(ay - by), int(ax - bx)
    touching = bool(rng.random() < touch_p)
    if touching:  # slide B away until the masks no longer overlap
        phi = rng.uniform(0, 2 * np.pi)
        step = np.array([np.sin(phi), np.cos(phi)])
        for k in range(1, 4 * max(ma.shape + mb.shape)):
            ody, odx = int(round(dy + k * step[0])), int(round(dx + k * step[1]))
            if not _overlaps(ma, mb, ody, odx):
                dy, dx = ody, odx
                break
    offsets = [(0, 0), (dy, dx)]
    span_y = max(ma.shape[0], dy + mb.shape[0]) - min(0, dy)
    span_x = max(ma.shape[1], dx + mb.shape[1]) - min(0, dx)
    for t, m in parts[2:]:
        offsets.append((int(rng.integers(min(0, dy) - m.shape[0] // 2, min(0, dy) + span_y - m.shape[0] // 2)),
                        int(rng.integers(min(0, dx) - m.shape[1] // 2, min(0, dx) + span_x - m.shape[1] // 2))))
    y0 = min(o[0] for o in offsets)
    x0 = min(o[1] for o in offsets)
    y1 = max(o[0] + p[1].shape[0] for o, p in zip(offsets, parts))
    x1 = max(o[1] + p[1].shape[1] for o, p in zip(offsets, parts))
    pads = rng.integers(margin[0], margin[1] + 1, size=4)
    H, W = int(y1 - y0 + pads[0] + pads[1]), int(x1 - x0 + pads[2] + pads[3])
    canvas_t = np.ones((H, W), np.float32)
    masks = []
    for (oy, ox), (t, m) in zip(offsets, parts):
        cm = np.zeros((H, W), bool)
        _place(canvas_t, cm, t, m, int(oy - y0 + pads[0]), int(ox - x0 + pads[2]))
        masks.append(cm)
    bg = float(np.mean([chromosomes[i].background for i in idx[:2]]))
    img = bg * canvas_t + rng.normal(0.0, noise, size=(H, W)).astype(np.float32) * (noise > 0)
    img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    boxes = []
    for i, m in zip(idx, masks):
        ys, xs = np.nonzero(m)
        boxes.append(Box(float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1),
                         chromosomes[i].name))
    return Scene(image=np.stack([img] * 3, axis=-1), masks=masks, boxes=boxes, background=bg, pair=(0, 1),
                 touching=touching, sources=[chromosomes[i].cell for i in idx])


def _overlaps(ma: np.ndarray, mb: np.ndarray, dy: int, dx: int) -> bool:
    """Whether mask ``mb`` placed at (dy, dx) relative to ``ma`` overlaps it."""
    y0, x0 = max(0, dy), max(0, dx)
    y1, x1 = min(ma.shape[0], dy + mb.shape[0]), min(ma.shape[1], dx + mb.shape[1])
    if y1 <= y0 or x1 <= x0:
        return False
    return bool((ma[y0:y1, x0:x1] & mb[y0 - dy:y1 - dy, x0 - dx:x1 - dx]).any())


def scenes(chromosomes: Sequence[Chromosome], n: int, seed: int, **kw) -> Iterable[Scene]:
    """``n`` scenes from one seed (reproducible)."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield make_scene(chromosomes, rng, **kw)
