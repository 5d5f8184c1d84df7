"""The separation model: a small Keras U-Net on one box's window (:mod:`karyotf.separate.inputs`).

Input ``size x size x 3`` (darkness, the box, the other boxes); output one logit a pixel: does it belong to
this box's chromosome?  A crossing belongs to both chromosomes, so each box is asked on its own (no softmax
between boxes).  Four levels (``width``, 2x, 4x, 6x filters), two 3x3 convolutions with batch norm each,
max-pool down, transposed convolution up, skip connections.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .inputs import CONTEXT, SIZE

# Imports inside functions, and why: TensorFlow / KerasCV / the OD API (heavy: kept off the import path).


@dataclass
class SeparateConfig:
    """Every setting of a separation run (saved in the run dir and the export)."""

    size: int = SIZE
    context: float = CONTEXT
    width: int = 16
    """Filters of the first level (16-32-64-96)."""
    train_samples: int = 4000
    val_samples: int = 400
    batch: int = 32
    epochs: int = 12
    minutes: float | None = None
    """A wall-time budget instead of (or as well as) ``epochs``: training stops when either is reached."""
    lr: float = 2e-3
    overlap_weight: float = 4.0
    """Extra loss weight on pixels of the other chromosomes (crossings and touching neighbours)."""
    touch_p: float = 0.3
    extra: tuple[int, int] = (0, 2)
    """Extra chromosomes scattered around each training pair (a real window holds more than two)."""
    seed: int = 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["extra"] = list(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SeparateConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "extra" in known:
            known["extra"] = tuple(known["extra"])
        return cls(**known)


def build_unet(size: int = SIZE, width: int = 16):
    """The U-Net (a ``tf.keras.Model``: (N, size, size, 3) float32 -> (N, size, size, 1) logits)."""
    import tensorflow as tf

    L = tf.keras.layers

    def block(x, f):
        for _ in range(2):
            x = L.Conv2D(f, 3, padding="same", use_bias=False)(x)
            x = L.BatchNormalization()(x)
            x = L.ReLU()(x)
        return x

    inp = tf.keras.Input((size, size, 3), name="window")
    filters = [width, 2 * width, 4 * width]
    skips = []
    x = inp
    for f in filters:
        x = block(x, f)
        skips.append(x)
        x = L.MaxPool2D(2, padding="same")(x)
    x = block(x, 6 * width)
    for f, s in zip(reversed(filters), reversed(skips)):
        x = L.Conv2DTranspose(f, 2, strides=2, padding="same")(x)
        x = L.Cropping2D(((0, x.shape[1] - s.shape[1]), (0, x.shape[2] - s.shape[2])))(x) \
            if x.shape[1] != s.shape[1] else x
        x = L.Concatenate()([x, s])
        x = block(x, f)
    out = L.Conv2D(1, 1, name="logits")(x)
    return tf.keras.Model(inp, out, name="separate_unet")
