"""Detector + classifier as one thing: the detector finds chromosomes, the classifier names them, the joint
labelling weighs the whole cell against a karyotype prior (never forcing pairs).

A :class:`Karyotyper` stands wherever a :class:`karyotf.detect.Detector` does (``karyotf karyogram``,
``karyotf eval``): ``detect(image)`` returns named boxes in pixels with the detector's scores.  The detector's
own classes are ignored (a 24-class detector works; a one-class "chromosome" detector is what it is for).

For one cell (:meth:`Karyotyper.karyotype`): detections scoring at least ``min_score`` go through a
class-agnostic NMS at ``nms_iou``; the kept boxes are classified together and labelled jointly; the removed and
the low-scoring ones are named by the classifier's top-1 (seen beside the kept boxes, measured against
them) and listed, never silently dropped.

When the detector's export carries a score calibration (``karyotf eval --tune-min-score`` fits it on val:
:mod:`karyotf.calibration`), the joint labelling also decides which kept boxes count: each gets its
P(chromosome | score), and a duplicate, a fragment or a stray the karyotype prior finds implausible is left out
(listed as ``left_out`` with its P, flagged when counting it is within the close-call likelihood ratio), while a weak
box that completes a pair is counted.  ``min_score`` then defaults to the calibration's candidate floor, and the
class-agnostic NMS runs at the IoU the calibration was fitted at (its probabilities hold for the boxes that NMS
keeps), not at ``nms_iou``.  The counted boxes are then labelled jointly once more on their own, so every flag's
chromosome numbers are those of the karyogram.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import classes
from ..annotations import Box


@dataclass
class NamedCell:
    """One cell named: ``boxes`` (kept, joint labels, detector scores), ``details`` (one dict a kept box: the
    classifier's top-1 and probabilities, whether the joint step changed it), ``suppressed`` ``(removed, kept,
    IoU)`` and ``below`` (named by top-1), ``flags`` (from the joint labelling), ``joint`` (its result)."""

    boxes: list[Box]
    details: list[dict]
    suppressed: list[tuple[Box, Box, float]] = field(default_factory=list)
    below: list[Box] = field(default_factory=list)
    flags: list = field(default_factory=list)
    joint: object = None
    left_out: list[tuple[Box, float]] = field(default_factory=list)
    """Boxes the joint labelling left out of the count (named by top-1), with their P(chromosome)."""

    @property
    def call(self):
        """The cell's ISCN count call (:func:`karyotf.karyogram.call.count_call` of the counted boxes, with the
        NMS-removed boxes for its flags) and every flag of the naming: what ``karyotf karyogram`` reports, without
        the files."""
        from ..karyogram.call import count_call

        call = count_call(self.boxes, suppressed=self.suppressed)
        call.add_flags(self.flags)
        return call


def _renamed(boxes: Sequence[Box], names: Sequence[str]) -> list[Box]:
    return [b.with_coords(*b.as_tuple(), name=n) for b, n in zip(boxes, names)]


class Karyotyper:
    """``Karyotyper(detector, classifier)``: each an object or a path (an export dir).  ``joint``: label the
    cell jointly (else each box by its top-1); ``choose``: with a calibrated detector, let the joint labelling
    choose which boxes count (else every box above the floor counts)."""

    def __init__(self, detector, classifier, joint: bool = True, choose: bool = True):
        if isinstance(detector, (str, Path)):
            from ..detect import Detector

            detector = Detector(detector)
        if isinstance(classifier, (str, Path)):
            from .export import Classifier

            classifier = Classifier(classifier)
        self.detector, self.classifier, self.joint = detector, classifier, joint
        self.export_dir = getattr(detector, "export_dir", None)
        self.model_name = f"{getattr(detector, 'model_name', 'detector')}+classifier"
        self.kind = getattr(detector, "kind", None)
        self.info = getattr(detector, "info", None) or {}  # the detector's export info (its tuned score floor)
        from ..calibration import of

        self.calibration = of(detector) if joint and choose else None  # P(chromosome | score), fitted on val
        self.last_seconds = None

    @classmethod
    def default(cls, **kw) -> "Karyotyper":
        """The model pair shipped with karyotf (:mod:`karyotf.models`; every file's sha256 checked first)."""
        from ..models import default_pair

        detector, classifier = default_pair()
        return cls(detector, classifier, **kw)

    def name(self, image: np.ndarray, boxes: Sequence[Box]) -> tuple[list[str], list[dict], object]:
        """Joint labels (or top-1 with ``joint=False``), per-box details and the joint result for one cell."""
        labels, details, result, _ = self._name(image, boxes)
        return labels, details, result

    def _name(self, image: np.ndarray, boxes: Sequence[Box], cc=None, probs=None):
        """:meth:`name` plus review flags for boxes the classifier cannot see: one too small to cut out (its crop is
        blank) or one holding no pixel darker than the cell's foreground threshold (no chromosome in it?).  Each
        stays in the count under the name it got, flagged ``unclassifiable``.  ``cc`` / ``probs``: the boxes' crops
        and probabilities when already computed."""
        from ..karyogram.call import Flag
        from .crops import FEATURES, cell_crops
        from .joint import joint_labels

        if cc is None:
            cc = cell_crops(image, boxes, self.classifier.size)
        if probs is None:
            probs = self.classifier.probabilities_of(cc.crops, cc.features)
        top = [classes.NAMES[k] for k in np.argmax(probs, axis=1)] if len(boxes) else []
        result = joint_labels(probs) if self.joint and len(boxes) else None
        labels = list(result.labels) if result is not None else top
        fill = FEATURES.index("fill")
        unseen = {i: "too small to cut out" for i in cc.too_small}
        unseen.update({i: "no pixel darker than the cell's foreground (background only?)" for i in range(len(boxes))
                       if i not in unseen and cc.features[i, fill] <= 0.0})
        details, flags = [], []
        for i, (t, n) in enumerate(zip(top, labels)):
            details.append({"classifier": t, "p_classifier": round(float(probs[i, classes.NAMES.index(t)]), 4),
                            "p_label": round(float(probs[i, classes.NAMES.index(n)]), 4), "changed": t != n})
            if i in unseen:
                b = boxes[i]
                details[-1]["unclassifiable"] = unseen[i]
                flags.append(Flag("unclassifiable", f"chromosome #{i} (box {b.width:.0f} x {b.height:.0f} px at "
                                  f"{b.xmin:.0f},{b.ymin:.0f}): {unseen[i]}; counted as {n}, which the classifier "
                                  "could not see: check it", (n,)))
        return labels, details, result, flags

    def karyotype(self, image, min_score: float | None = None, nms_iou: float | None = None) -> NamedCell:
        """One cell found and named (see the module doc); ``.call`` of the result is its count call.
        ``min_score`` / ``nms_iou`` default to the karyogram's (the calibration's candidate floor, ``NMS_IOU``)."""
        import time

        from ..images import load
        from ..karyogram.build import suppress
        from ..karyogram.defaults import NMS_IOU, min_score_of

        min_score = min_score_of(self) if min_score is None else min_score
        nms_iou = NMS_IOU if nms_iou is None else nms_iou
        arr = load(image)
        t0 = time.perf_counter()
        everything = self.detector.detect(arr, min_score=0.0)
        below = [d for d in everything if d.score is not None and d.score < min_score]
        if self.calibration is not None and self.calibration.nms_iou is not None:
            nms_iou = self.calibration.nms_iou  # the probabilities hold for the boxes that NMS keeps
        kept, removed = suppress([d for d in everything if d.score is None or d.score >= min_score], nms_iou)
        cc = probs = None
        left_out, left_flags, by_kept = [], [], {}
        if self.calibration is not None and kept:
            candidates = kept
            kept, cc, probs, left_out, left_flags = self._choose(arr, kept)
            counted = set(map(id, kept))  # a box the NMS removed under one left out points at the named copy
            by_kept = dict(zip((id(b) for b in candidates if id(b) not in counted), (d for d, _ in left_out)))
        labels, details, result, unseen = self._name(arr, kept, cc, probs)
        named = _renamed(kept, labels)
        others = [d for d, _, _ in removed] + below
        other_names = []
        if others:  # named by the classifier's top-1 beside the kept boxes (measured against them); not counted
            from .crops import cell_crops

            both = list(kept) + others
            cc = cell_crops(arr, both, self.classifier.size, reference=range(len(kept)))
            probs = self.classifier.probabilities_of(cc.crops, cc.features)[len(kept):]
            other_names = [classes.NAMES[k] for k in np.argmax(probs, axis=1)]
        back = dict(zip(map(id, others), _renamed(others, other_names)))
        by_kept.update(zip(map(id, kept), named))
        suppressed = [(back[id(d)], by_kept[id(k)], v) for d, k, v in removed]
        self.last_seconds = time.perf_counter() - t0
        flags = (list(result.flags()) if result is not None else []) + unseen + left_flags
        return NamedCell(boxes=named, details=details, suppressed=suppressed,
                         below=[back[id(d)] for d in below], flags=flags, joint=result, left_out=left_out)

    def _choose(self, arr: np.ndarray, boxes: list[Box]):
        """Which of ``boxes`` count (see the module doc): (counted boxes, their crops and probabilities, the boxes
        left out as ``(box named by top-1, P)``, a flag for those whose counting is within the close-call ratio)."""
        from ..karyogram.call import Flag
        from .crops import CellCrops, cell_crops
        from .joint import joint_labels

        real = self.calibration([b.score if b.score is not None else 1.0 for b in boxes])
        likely = [i for i, r in enumerate(real) if r >= 0.5]  # measured against the likely chromosomes
        cc = cell_crops(arr, boxes, self.classifier.size, reference=likely or None)
        probs = self.classifier.probabilities_of(cc.crops, cc.features)
        first = joint_labels(probs, real=real)
        out = set(first.left_out)
        keep = [i for i in range(len(boxes)) if i not in out]
        left = [(boxes[i].with_coords(*boxes[i].as_tuple(), name=first.top1[i]), float(real[i]))
                for i in first.left_out]
        flags = []
        doubted = [(named, v) for named, i, v in zip(left, first.left_out, first.left_out_log_lr)
                   if i in first.doubted]
        if doubted:
            flags.append(Flag("left_out", f"{len(doubted)} box(es) left out of the count by the joint labelling "
                              f"although counting them is within a likelihood ratio of "
                              f"{math.exp(first.close_log_lr):.0f}: " + ", ".join(
                                  f"{b.name} at {b.xmin:.0f},{b.ymin:.0f} (score {b.score:.2f}, P(chromosome) "
                                  f"{p:.2f}, ratio {math.exp(min(v, 50)):.3g})" for (b, p), v in doubted)
                              + "; a person must decide (see 'not counted')",
                              tuple(sorted({b.name for (b, _), _ in doubted}, key=classes.LABEL_OF.get))))
        position = {i: k for k, i in enumerate(keep)}
        sub = CellCrops(cc.crops[keep], cc.features[keep], [position[i] for i in cc.too_small if i in position])
        return [boxes[i] for i in keep], sub, probs[keep], left, flags

    def detect(self, image, min_score: float = 0.0, find_score: float | None = None,
               nms_iou: float | None = None) -> list[Box]:
        """Named boxes of one cell, best score first: those counted at ``find_score`` (default the karyogram's
        floor: the calibration's candidate floor, the export's tuned one, else ``MIN_SCORE``) labelled jointly, the
        rest (NMS-removed, left out, below the floor) by top-1; only boxes scoring at least ``min_score``."""
        from ..karyogram.defaults import NMS_IOU, min_score_of

        cell = self.karyotype(image, min_score_of(self) if find_score is None else find_score,
                              NMS_IOU if nms_iou is None else nms_iou)
        out = cell.boxes + [d for d, _, _ in cell.suppressed] + [d for d, _ in cell.left_out] + cell.below
        return sorted((b for b in out if b.score is None or b.score >= min_score),
                      key=lambda b: -(b.score if b.score is not None else 1.0))

    def __repr__(self) -> str:
        return f"Karyotyper({self.detector!r}, {self.classifier!r}, joint={self.joint})"
