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

Split by job, as torchvision splits ``transforms.py`` / ``presets.py``: :mod:`.masks` (chromosome masks),
:mod:`.geometry` (an image and its boxes: turns, flips, rotation, crop), :mod:`.ops` (the op registry, presets and
parser), :mod:`.dataset` (the dataset writer and its grid picture), :mod:`.steps` (OD API preprocessor steps).
``from karyotf.augment import ...`` reaches every name.
"""
from __future__ import annotations

from .dataset import AugmentResult, augment_dataset, draw_boxes, grid_figure, image_rng, load_image
from .geometry import (background_colour, corner_box, crop, hflip, mask_box, rot90, rotate,
                       rotation_matrix, vflip, warp)
from .masks import box_window, foreground_mask, gray_of
from .ops import DEFAULT_OPS, OPS, PRESETS, Op, OpSpec, augment_one, parse_op, parse_ops
from ..errors import AugmentError
from .steps import odapi_augmentation, validate_odapi_snippets

__all__ = ["AugmentError", "AugmentResult", "DEFAULT_OPS", "OPS", "Op", "OpSpec", "PRESETS", "augment_dataset",
           "augment_one", "background_colour", "corner_box", "crop", "draw_boxes", "foreground_mask", "grid_figure",
           "hflip", "image_rng", "load_image", "mask_box", "odapi_augmentation", "parse_op", "parse_ops", "rot90",
           "rotate", "rotation_matrix", "validate_odapi_snippets", "vflip", "warp", "box_window", "gray_of"]
