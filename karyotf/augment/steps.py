"""The same ops as OD API ``data_augmentation_options`` (``preprocessor.proto`` snippets) for training."""
from __future__ import annotations

from typing import Callable, Sequence

from ..errors import AugmentError
from .ops import parse_ops

# Imports inside functions, and why: protobuf (loaded with the OD API's protos when a config is parsed); karyotf.odapi
# (importing it loads TensorFlow and applies the OD API's compatibility shims: only where TensorFlow is about to run).


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

    from .. import odapi

    for s in snippets:
        cfg = odapi.pipeline_proto()
        try:
            text_format.Parse("train_config {\n" + s + "\n}", cfg)
        except text_format.ParseError as exc:
            raise AugmentError(f"OD API rejects augmentation snippet:\n{s}\n({exc})") from None
