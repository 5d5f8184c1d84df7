"""Karyograms and the karyotype count call: a metaphase image and its chromosome boxes in, a karyogram out.

cut out (:mod:`.cutout`) -> orient (:mod:`.orient`) -> lay out beside ISCN ideograms (:mod:`.layout`,
:mod:`.ideogram`) -> count call (:mod:`.call`) -> report (:mod:`.report`).  :mod:`.dataset` turns annotated
metaphases into annotated karyogram images.  Works from VOC annotations (no model) and from a Detector.
"""
from .build import (KaryogramResult, build_karyogram, class_agnostic_nms, from_annotation, from_detector,
                    karyograms, load_image, make_karyogram)
from .call import FLAG_CODES, Call, Flag, count_call, iscn
from .layout import ROW_PRESETS, parse_rows

__all__ = ["build_karyogram", "count_call", "Call", "Flag", "FLAG_CODES", "KaryogramResult", "from_annotation",
           "from_detector", "karyograms", "make_karyogram", "class_agnostic_nms", "load_image", "iscn", "parse_rows",
           "ROW_PRESETS", "build_karyograms_dataset"]


def __getattr__(name):  # the dataset builder is imported on first use
    if name == "build_karyograms_dataset":
        from .dataset import build_karyograms_dataset

        return build_karyograms_dataset
    raise AttributeError(name)
