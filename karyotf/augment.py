"""Augmentation: named transforms of an image and its chromosome boxes together.

Every op takes ``(image, boxes, rng)`` and returns ``(image, boxes)``: ``image`` an ``HxWx3`` uint8 array,
``boxes`` a list of :class:`~karyotf.annotations.Box` in pixels.  Ops never change a class name; boxes always
stay inside the image they come back with.

========== ======================= =================================================================
op         parameters (defaults)   what it does
========== ======================= =================================================================
rot90      -                       rotate 90 deg counter-clockwise (as ``np.rot90``); boxes exact
rot180     -                       rotate 180 deg; boxes exact
rot270     -                       rotate 90 deg clockwise; boxes exact
hflip      -                       mirror left-right; boxes exact
vflip      -                       mirror top-bottom; boxes exact
rotate     lo:hi (-30:30)          rotate by a uniform angle in degrees, canvas grown to keep every
                                   chromosome, corners filled with the background; each box is the
                                   tight box of the rotated chromosome mask (:func:`foreground_mask`)
brightness delta (0.2)             add a uniform offset in [-delta, delta] x 255
contrast   lo:hi (0.8:1.25)        scale the deviation from the mean grey by a uniform factor
noise      sigma (8)               add Gaussian noise (grey levels, the same on every channel)
crop       scale:visible (0.6:0.5) keep a random window of ``scale..1`` of each side; a chromosome is
                                   kept when at least ``visible`` of its box area is inside (then
                                   ``truncated`` if cut), dropped otherwise
========== ======================= =================================================================

An op is written ``name`` or ``name:p1:p2`` (``rotate:-15:15``, ``crop:0.5:0.7``); a list is comma-separated.
Named policies (:data:`PRESETS`, in the manner of torchvision's detection ``presets.py``) expand to op lists.

:func:`augment_dataset` writes ``copies`` augmented versions of every annotated image as JPEG + VOC XML
(``images/`` + ``annotations/``, readable by ``karyotf records``), reproducibly from ``seed``, plus a grid
picture of a few originals and their augmentations.  :func:`odapi_augmentation` gives the same ops, where the
OD API has them, as ``data_augmentation_options`` for training.
"""
from __future__ import annotations

import logging
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from . import defaults
from .annotations import Annotation, Box
from .errors import AugmentError

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------- masks


def _gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    return (image[..., :3].sum(axis=2, dtype=np.uint16) // image[..., :3].shape[2]).astype(np.uint8)


def _box_window(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
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
    x0, y0, x1, y1 = _box_window(box, w_img, h_img)
    patch = (_gray(image) if gray is None else gray)[y0:y1, x0:x1]
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


# ----------------------------------------------------------------------------------------------- geometry


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
    gray = _gray(image) if tight else None
    for b in boxes:
        loose = corner_box(b, m)
        coords = loose
        if tight:
            x0, y0, _, _ = _box_window(b, w, h)
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


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------- ops


@dataclass(frozen=True)
class OpSpec:
    """A named op: its function ``fn(image, boxes, rng, *params) -> (image, boxes, detail)`` and defaults."""

    name: str
    fn: Callable
    defaults: tuple[float, ...]
    help: str
    exact: bool = False
    """Boxes are exact (a lossless permutation of pixels)."""


def _op_rot90(image, boxes, rng):
    return (*rot90(image, boxes, 1), "rot90")


def _op_rot180(image, boxes, rng):
    return (*rot90(image, boxes, 2), "rot180")


def _op_rot270(image, boxes, rng):
    return (*rot90(image, boxes, 3), "rot270")


def _op_hflip(image, boxes, rng):
    return (*hflip(image, boxes), "hflip")


def _op_vflip(image, boxes, rng):
    return (*vflip(image, boxes), "vflip")


def _op_rotate(image, boxes, rng, lo, hi):
    angle = float(rng.uniform(lo, hi))
    return (*rotate(image, boxes, angle), f"rotate({angle:.1f})")


def _op_brightness(image, boxes, rng, delta):
    d = float(rng.uniform(-delta, delta))
    return _to_uint8(image.astype(np.float32) + 255.0 * d), list(boxes), f"brightness({d:+.2f})"


def _op_contrast(image, boxes, rng, lo, hi):
    f = float(rng.uniform(lo, hi))
    x = image.astype(np.float32)
    mean = float(x.mean())
    return _to_uint8(mean + f * (x - mean)), list(boxes), f"contrast({f:.2f})"


def _op_noise(image, boxes, rng, sigma):
    noise = rng.normal(0.0, sigma, size=image.shape[:2]).astype(np.float32)
    x = image.astype(np.float32) + (noise[..., None] if image.ndim == 3 else noise)
    return _to_uint8(x), list(boxes), f"noise({sigma:g})"


def _op_crop(image, boxes, rng, scale, visible, tries: int = 10):
    h, w = image.shape[:2]
    out = None
    for _ in range(tries):
        cw = max(1, int(round(w * rng.uniform(scale, 1.0))))
        ch = max(1, int(round(h * rng.uniform(scale, 1.0))))
        x0 = int(rng.integers(0, w - cw + 1))
        y0 = int(rng.integers(0, h - ch + 1))
        out = crop(image, boxes, x0, y0, x0 + cw, y0 + ch, visible) + (f"crop({x0},{y0},{cw}x{ch})",)
        if out[1] or not boxes:
            break
    return out


OPS: dict[str, OpSpec] = {s.name: s for s in (
    OpSpec("rot90", _op_rot90, (), "rotate 90 deg counter-clockwise", exact=True),
    OpSpec("rot180", _op_rot180, (), "rotate 180 deg", exact=True),
    OpSpec("rot270", _op_rot270, (), "rotate 90 deg clockwise", exact=True),
    OpSpec("hflip", _op_hflip, (), "mirror left-right", exact=True),
    OpSpec("vflip", _op_vflip, (), "mirror top-bottom", exact=True),
    OpSpec("rotate", _op_rotate, (-30.0, 30.0), "rotate by a random angle in [lo, hi] degrees, tight boxes"),
    OpSpec("brightness", _op_brightness, (0.2,), "add a random offset in [-delta, delta] x 255"),
    OpSpec("contrast", _op_contrast, (0.8, 1.25), "scale contrast by a random factor in [lo, hi]"),
    OpSpec("noise", _op_noise, (8.0,), "add Gaussian noise of sigma grey levels"),
    OpSpec("crop", _op_crop, (0.6, 0.5), "random crop of scale..1 of each side; keep chromosomes >= visible"),
)}

PRESETS: dict[str, tuple[str, ...]] = {
    "flips": ("hflip", "vflip"),
    "dihedral": ("rot90", "rot180", "rot270", "hflip", "vflip"),
    "geometric": ("rot90", "rot180", "hflip", "vflip", "rotate"),
    "photometric": ("brightness", "contrast", "noise"),
    "thesis": ("rot90", "rot180", "hflip", "vflip", "rotate", "brightness", "contrast", "noise", "crop"),
}
"""Named policies: ``thesis`` is every op; ``dihedral`` the exact ones; ``geometric`` / ``photometric``."""

DEFAULT_OPS = defaults.AUGMENT_OPS


@dataclass(frozen=True)
class Op:
    """An op with its parameters, callable as ``op(image, boxes, rng) -> (image, boxes, detail)``."""

    name: str
    params: tuple[float, ...] = ()

    @property
    def spec(self) -> OpSpec:
        return OPS[self.name]

    def __call__(self, image: np.ndarray, boxes: Sequence[Box], rng: np.random.Generator):
        return self.spec.fn(image, list(boxes), rng, *self.params)

    def __str__(self) -> str:
        if self.params == self.spec.defaults:
            return self.name
        return ":".join([self.name] + [f"{p:g}" for p in self.params])


def parse_op(text: str) -> Op:
    """``name`` or ``name:p1[:p2]`` -> :class:`Op` (missing parameters take the defaults)."""
    parts = [p.strip() for p in str(text).strip().split(":")]
    name = parts[0].lower()
    if name not in OPS:
        raise AugmentError(f"unknown augmentation op {name!r}: use one of {', '.join(OPS)} "
                           f"or a preset ({', '.join(PRESETS)})")
    spec = OPS[name]
    raw = [p for p in parts[1:]]
    if len(raw) > len(spec.defaults):
        raise AugmentError(f"op {text!r}: {name} takes {len(spec.defaults)} parameter(s), got {len(raw)}"
                           + (f" (defaults {':'.join(f'{d:g}' for d in spec.defaults)})" if spec.defaults else ""))
    try:
        given = [float(p) for p in raw]
    except ValueError:
        raise AugmentError(f"op {text!r}: parameters must be numbers, e.g. {name}:"
                           + ":".join(f"{d:g}" for d in spec.defaults)) from None
    params = tuple(given) + spec.defaults[len(given):]
    _check_params(name, params, text)
    return Op(name, params)


def _check_params(name: str, p: tuple[float, ...], text: str) -> None:
    bad = None
    if name in ("rotate", "contrast") and p[0] > p[1]:
        bad = "lo must not exceed hi"
    elif name == "contrast" and p[0] < 0:
        bad = "factors must be >= 0"
    elif name == "brightness" and not 0 <= p[0] <= 1:
        bad = "delta must be in [0, 1]"
    elif name == "noise" and p[0] < 0:
        bad = "sigma must be >= 0"
    elif name == "crop" and not (0 < p[0] <= 1 and 0 <= p[1] <= 1):
        bad = "scale must be in (0, 1] and visible in [0, 1]"
    if bad:
        raise AugmentError(f"op {text!r}: {bad}")


def parse_ops(spec: str | Iterable[str] | None) -> list[Op]:
    """A comma-separated string (or list) of ops and presets -> ops, presets expanded, order kept."""
    if spec is None:
        spec = DEFAULT_OPS
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    ops: list[Op] = []
    for item in items:
        item = str(item).strip()
        if not item:
            continue
        if item.lower() in PRESETS:
            ops.extend(parse_op(n) for n in PRESETS[item.lower()])
        else:
            ops.append(parse_op(item))
    if not ops:
        raise AugmentError("no augmentation ops given: use e.g. --ops rot90,hflip,rotate or --ops thesis")
    return ops


def augment_one(image: np.ndarray, boxes: Sequence[Box], ops: Sequence[Op], rng: np.random.Generator,
                chain: bool = False, p: float = 0.5) -> tuple[np.ndarray, list[Box], list[str]]:
    """Apply ``ops`` in order: all of them, or (``chain``) each with probability ``p`` (at least one).

    Returns the image, boxes and the list of applied op details (sampled parameters included).
    """
    if chain:
        chosen = [op for op in ops if rng.random() < p]
        if not chosen:
            chosen = [ops[int(rng.integers(len(ops)))]]
    else:
        chosen = list(ops)
    boxes = list(boxes)
    details = []
    for op in chosen:
        image, boxes, detail = op(image, boxes, rng)
        details.append(detail)
    return image, boxes, details


# ----------------------------------------------------------------------------------------------- dataset


def image_rng(seed: int, image_id: str) -> np.random.Generator:
    """The random generator of one source image: depends on the seed and the image id only (not the order)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(image_id.encode())])


def load_image(path: str | Path) -> np.ndarray:
    """An image file as RGB ``uint8`` by karyotf's one decoder (:func:`karyotf.images.load`)."""
    from . import images

    return images.load(path)


def _save_jpeg(image: np.ndarray, path: Path, quality: int = 95) -> None:
    from PIL import Image

    from .io import atomic_path

    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="JPEG", quality=quality)


@dataclass
class AugmentResult:
    """What :func:`augment_dataset` wrote."""

    out_dir: Path
    images: int = 0
    written: int = 0
    skipped: int = 0
    boxes_in: int = 0
    boxes_out: int = 0
    dropped_boxes: int = 0
    truncated_boxes: int = 0
    manifest: Path | None = None
    grid: Path | None = None
    items: list[dict] = field(default_factory=list)

    def text(self) -> str:
        lines = [f"augmented {self.images} image(s) -> {self.written} new image(s) in {self.out_dir}",
                 f"  chromosomes: {self.boxes_out} written ({self.truncated_boxes} truncated, "
                 f"{self.dropped_boxes} dropped by crops)"]
        if self.skipped:
            lines.append(f"  {self.skipped} copy(ies) skipped: no chromosome left")
        if self.grid:
            lines.append(f"  grid: {self.grid}")
        return "\n".join(lines)


def augment_dataset(src: str | Path, out_dir: str | Path, copies: int = defaults.AUGMENT_COPIES,
                    seed: int = defaults.AUGMENT_SEED, ops: str | Sequence[str] | Sequence[Op] | None = None,
                    chain: bool = False, p: float = defaults.AUGMENT_P, include_originals: bool = False,
                    grid: bool = True, grid_images: int = defaults.GRID_IMAGES,
                    strict: bool = False, progress: bool = True, exif_transpose: bool = False) -> AugmentResult:
    """Write ``copies`` augmentations of every annotated image of ``src`` to ``out_dir``.

    Copy ``k`` of an image applies one op (``ops[(k + r) % len(ops)]``, ``r`` a per-image random offset) so
    every op is used evenly; ``chain=True`` instead passes each copy through all ops, each with probability
    ``p``.  Output: ``out_dir/images/<id>_aug<k>.jpg`` + ``out_dir/annotations/<id>_aug<k>.xml`` (and the
    originals with ``include_originals``), ``augment.json`` (seed, ops, what each copy got) and
    ``augment_grid.png``.  The same seed gives the same files.  Each copy's XML names its original cell
    (``<source><original>``), so ``karyotf records`` keeps a cell and its copies in one split (and val/test free of
    copies).
    """
    from .annotations import load_dataset, write_voc
    from .io import atomic_write_json

    if copies < 0:
        raise AugmentError(f"copies must be >= 0, got {copies}")
    if ops and not isinstance(ops, str) and all(isinstance(o, Op) for o in ops):
        parsed = list(ops)
    else:
        parsed = parse_ops(ops)
    out_dir = Path(out_dir)
    annotations, summary = load_dataset(src, strict=strict, progress=False, exif_transpose=exif_transpose)
    if not annotations:
        raise AugmentError(f"{src}: no usable annotated images ({summary.text()})")
    img_dir, ann_dir = out_dir / "images", out_dir / "annotations"
    result = AugmentResult(out_dir=out_dir, images=len(annotations))
    grid_rows = []
    iterator = annotations
    if progress:
        from tqdm import tqdm

        iterator = tqdm(annotations, desc="augmenting", unit="image", leave=False)
    for ann in iterator:
        image = ann.pixels()
        rng = image_rng(seed, ann.image_id)
        offset = int(rng.integers(len(parsed)))
        result.boxes_in += len(ann.boxes)
        row = [(image, ann.boxes, "original")]
        if include_originals:  # the original image file as it is (no re-encoding) and its XML
            from .io import atomic_write_bytes

            copy = atomic_write_bytes(img_dir / ann.image_path.name, ann.image_path.read_bytes())
            write_voc(Annotation(image_path=copy, width=ann.width, height=ann.height, boxes=list(ann.boxes),
                                 depth=ann.depth, original=ann.original), ann_dir / f"{ann.image_id}.xml")
        for k in range(copies):
            chosen = parsed if chain else [parsed[(k + offset) % len(parsed)]]
            aug, boxes, details = augment_one(image, ann.boxes, chosen, rng, chain=chain, p=p)
            name = f"{ann.image_id}_aug{k}"
            item = {"source": ann.image_id, "original": ann.cell_id, "output": name, "ops": details,
                    "boxes_in": len(ann.boxes), "boxes_out": len(boxes)}
            if not boxes:
                result.skipped += 1
                item["skipped"] = "no chromosome left"
                result.items.append(item)
                continue
            _write_pair(aug, boxes, name, img_dir, ann_dir, write_voc, original=ann.cell_id)
            result.written += 1
            result.boxes_out += len(boxes)
            result.truncated_boxes += sum(b.truncated for b in boxes)
            result.dropped_boxes += max(0, len(ann.boxes) - len(boxes))
            result.items.append(item)
            row.append((aug, boxes, " + ".join(details)))
        if len(grid_rows) < grid_images:
            grid_rows.append(row)
    if grid and grid_rows:
        result.grid = grid_figure(grid_rows, out_dir / "augment_grid.png")
    result.manifest = atomic_write_json(out_dir / "augment.json", {
        "source": str(src), "seed": seed, "copies": copies, "ops": [str(o) for o in parsed],
        "chain": chain, "p": p, "include_originals": include_originals,
        "images": result.images, "written": result.written, "skipped": result.skipped,
        "boxes_in": result.boxes_in, "boxes_out": result.boxes_out,
        "dropped_boxes": result.dropped_boxes, "truncated_boxes": result.truncated_boxes,
        "items": result.items})
    return result


def _write_pair(image: np.ndarray, boxes: Sequence[Box], name: str, img_dir: Path, ann_dir: Path, write_voc,
                original: str | None = None) -> None:
    h, w = image.shape[:2]
    path = img_dir / f"{name}.jpg"
    _save_jpeg(image, path)
    write_voc(Annotation(image_path=path, width=w, height=h, boxes=list(boxes), original=original),
              ann_dir / f"{name}.xml")


# ----------------------------------------------------------------------------------------------- picture


def draw_boxes(image: np.ndarray, boxes: Sequence[Box], width: int = 2):
    """A PIL image with the boxes drawn and labelled (colour by Denver group)."""
    from PIL import Image, ImageDraw

    from .classes import GROUP_OF

    colours = {"A": (230, 25, 75), "B": (245, 130, 48), "C": (60, 180, 75), "D": (0, 130, 200),
               "E": (145, 30, 180), "F": (240, 50, 230), "G": (128, 128, 0)}
    im = Image.fromarray(image).convert("RGB")
    draw = ImageDraw.Draw(im)
    for b in boxes:
        col = colours.get(GROUP_OF.get(b.name, "A"), (255, 0, 0))
        draw.rectangle([b.xmin, b.ymin, b.xmax - 1, b.ymax - 1], outline=col, width=width)
        draw.text((b.xmin + 2, b.ymin + 1), b.name + ("*" if b.truncated else ""), fill=col)
    return im


def grid_figure(rows: Sequence[Sequence[tuple[np.ndarray, Sequence[Box], str]]], path: str | Path,
                cell: int = 260) -> Path:
    """A grid picture: one row per original, its augmentations beside it, boxes drawn, op names above."""
    from PIL import Image, ImageDraw

    from .io import atomic_path

    ncols = max(len(r) for r in rows)
    pad, title = 6, 14
    canvas = Image.new("RGB", (ncols * (cell + pad) + pad, len(rows) * (cell + title + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for i, row in enumerate(rows):
        for j, (image, boxes, label) in enumerate(row):
            im = draw_boxes(image, boxes, width=max(2, int(max(image.shape[:2]) / cell)))
            im.thumbnail((cell, cell))
            x = pad + j * (cell + pad)
            y = pad + i * (cell + title + pad)
            draw.text((x, y), label[:44], fill=(0, 0, 0))
            canvas.paste(im, (x + (cell - im.width) // 2, y + title + (cell - im.height) // 2))
    path = Path(path)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return path


# ----------------------------------------------------------------------------------------------- OD API


_ODAPI_STEPS: dict[str, Callable[[tuple[float, ...]], list[str]] | str] = {
    "hflip": lambda p: ["random_horizontal_flip {\n  }"],
    "vflip": lambda p: ["random_vertical_flip {\n  }"],
    "rot90": lambda p: ["random_rotation90 {\n  }"],
    "rot270": lambda p: ["random_rotation90 {\n  }"],
    "brightness": lambda p: [f"random_adjust_brightness {{\n    max_delta: {p[0]:g}\n  }}"],
    "contrast": lambda p: [f"random_adjust_contrast {{\n    min_delta: {p[0]:g}\n    max_delta: {p[1]:g}\n  }}"],
    "crop": lambda p: [f"random_crop_image {{\n    min_object_covered: 0.0\n    min_area: {p[0] ** 2:g}\n"
                       f"    max_area: 1.0\n    overlap_thresh: {p[1]:g}\n    clip_boxes: true\n"
                       f"    random_coef: 0.0\n  }}"],
    "rot180": "the OD API has no 180-degree rotation step; use hflip,vflip together (their product is rot180), "
              "or pre-augment with `karyotf augment --ops rot180`",
    "rotate": "the OD API has no arbitrary-angle rotation step; pre-augment with `karyotf augment --ops rotate` "
              "and train on the augmented records",
    "noise": "the OD API has no whole-image Gaussian noise step (random_patch_gaussian noises a patch only); "
             "pre-augment with `karyotf augment --ops noise`",
}
"""How each karyotf op maps to the OD API's ``preprocessor.proto`` (TF OD API as installed): a snippet
builder, or the reason it has none.  ``rot90``/``rot270`` both map to ``random_rotation90`` (a 90-degree turn
with probability 0.5; with both flips every dihedral orientation occurs); ``crop`` maps its side ``scale`` to
``min_area = scale**2`` and its ``visible`` threshold to ``overlap_thresh``."""


def odapi_augmentation(names: str | Sequence[str], validate: bool = True) -> list[str]:
    """``data_augmentation_options { ... }`` snippets (OD API ``preprocessor.proto``) for karyotf op names.

    ``names``: ops or presets as for :func:`parse_ops` (``hflip``, ``rot90``, ``brightness:0.1``,
    ``crop:0.5:0.7``, ...).  An op the OD API lacks (``rotate``, ``rot180``, ``noise``) raises
    :class:`AugmentError` saying what to do instead.  Duplicates are emitted once.  With ``validate`` each
    snippet is parsed into a ``TrainEvalPipelineConfig`` (through :mod:`karyotf.odapi`).
    """
    ops = parse_ops(names)
    lacking = [o for o in ops if isinstance(_ODAPI_STEPS[o.name], str)]
    if lacking:
        raise AugmentError("; ".join(f"{o.name}: {_ODAPI_STEPS[o.name]}" for o in lacking))
    out: list[str] = []
    for o in ops:
        for step in _ODAPI_STEPS[o.name](o.params):
            snippet = f"data_augmentation_options {{\n  {step}\n}}"
            if snippet not in out:
                out.append(snippet)
    if validate:
        validate_odapi_snippets(out)
    return out


def validate_odapi_snippets(snippets: Sequence[str]) -> None:
    """Parse snippets as ``train_config`` fields of a ``TrainEvalPipelineConfig``; raise AugmentError if not."""
    from google.protobuf import text_format

    from . import odapi

    for s in snippets:
        cfg = odapi.pipeline_proto()
        try:
            text_format.Parse("train_config {\n" + s + "\n}", cfg)
        except text_format.ParseError as exc:
            raise AugmentError(f"OD API rejects augmentation snippet:\n{s}\n({exc})") from None
