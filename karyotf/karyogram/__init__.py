"""Karyograms and the karyotype count call: a metaphase image and its chromosome boxes in, a karyogram out.

cut out (:mod:`.cutout`) -> orient (:mod:`.orient`) -> lay out beside ISCN ideograms (:mod:`.layout`,
:mod:`.ideogram`) -> count call (:mod:`.call`) -> report (:mod:`.report`).  :mod:`.dataset` turns annotated
metaphases into annotated karyogram images; :mod:`.agreement` checks the call against a dataset's karyotype
list.  Works from VOC annotations (no model) and from a model object (:class:`karyotf.find.ChromosomeFinder`).

Names are imported on first use, so ``import karyotf.karyogram`` (and the CLI) stays light.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "build_karyogram": "build", "from_annotation": "build", "from_detector": "build", "karyograms": "build",
    "make_karyogram": "build", "load_image": "build", "KaryogramResult": "build",
    "count_call": "call", "iscn": "call", "Call": "call", "Flag": "call", "FLAG_CODES": "call",
    "parse_rows": "layout", "ROW_PRESETS": "defaults", "build_karyograms_dataset": "dataset",
    "check_dataset": "agreement",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
