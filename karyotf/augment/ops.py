"""The op registry (:data:`OPS`, :data:`PRESETS`), the op parser (``name:p1:p2``) and :func:`augment_one`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from .. import defaults
from ..annotations import Box
from ..errors import AugmentError
from .geometry import crop, hflip, rot90, rotate, vflip


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


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
