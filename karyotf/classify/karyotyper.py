"""Detector + classifier as one thing: the detector finds chromosomes, the classifier names them, the joint
labelling weighs the whole cell against a karyotype prior (never forcing pairs).

A :class:`Karyotyper` is a :class:`karyotf.find.ChromosomeFinder`, as a :class:`karyotf.detect.Detector` is: it
stands wherever one does (``karyotf karyogram``, ``karyotf eval``): ``detect(image)`` returns named boxes in
pixels with the detector's scores.  The detector's own classes are ignored (a 24-class detector works; a one-class
"chromosome" detector is what it is for).

For one cell (:meth:`Karyotyper.find`): the detector finds (:func:`karyotf.find.find`: detections scoring at
least ``min_score`` go through a class-agnostic NMS at ``nms_iou``); the kept boxes are classified together and labelled jointly; the removed and
the low-scoring ones are named by the classifier's top-1 (seen beside the kept boxes, measured against
them) and listed, never silently dropped.

Which boxes count, when the Karyotyper is given a second look (:mod:`karyotf.classify.second_look`, a model of
its own that looks at each candidate's crop, its geometry among the others and the cell, ``second_look=``): the
joint labelling weighs each candidate by its P(whole single chromosome) from the second look, over the candidates
the second look was trained on (its candidate floor and NMS), its logit shifted by ``count_shift`` (default
:data:`karyotf.classify.joint.COUNT_LOGIT_SHIFT`, chosen on val: :func:`karyotf.classify.joint.count_evidence`).
Otherwise, when the detector's export carries a score calibration (``karyotf eval --tune-min-score`` fits it on val:
:mod:`karyotf.calibration`), the joint labelling also decides which kept boxes count: each gets its
P(chromosome | score), and a duplicate, a fragment or a stray the karyotype prior finds implausible is left out
(listed as ``left_out`` with its P, flagged when counting it is within the close-call likelihood ratio), while a weak
box that completes a pair is counted.  ``min_score`` then defaults to the calibration's candidate floor, and the
class-agnostic NMS runs at the IoU the calibration was fitted at (its probabilities hold for the boxes that NMS
keeps), not at ``nms_iou``.  The counted boxes are then labelled jointly once more on their own, so every flag's
chromosome numbers are those of the karyogram.

What the classifier reads of each box (``input``, default :data:`karyotf.defaults.CLASSIFIER_INPUT`): ``separated``,
the box window with every pixel outside the chromosome's own mask white (:mod:`karyotf.separate`: a neighbour
crossing or touching the box is gone; the candidates are separated among themselves), or ``box``, the plain box
crop it was trained on.  On the truth boxes of the CIL test cells the separated input is right more often on
crowded chromosomes and as often on the others (``bench/results/separate.md``).  The boxes the count leaves
aside (NMS-removed, below the floor) are named from box crops.
"""
from __future__ import annotations

import logging

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import calibration, classes
from ..annotations import Box
from ..defaults import CLASSIFIER_INPUT, CLASSIFIER_INPUTS, NMS_IOU
from ..errors import KaryogramError
from ..find import Found, Removed, find
from ..images import load
from ..karyogram.call import Flag
from .joint import COUNT_LOGIT_SHIFT, SEX_LOG_LR, count_evidence, joint_labels, prior_of

# Imports inside functions, and why: karyotf.karyogram.build (it loads OpenCV and Pillow at its top);
# karyotf.detect.Detector (looked up when a model is loaded, so that a caller may stand another Detector in
# karyotf.detect, as the tests do); karyotf.classify.crops (it loads OpenCV at its top); karyotf.classify.export (it
# loads OpenCV at its top); karyotf.classify.second_look (it loads OpenCV, through crops, at its top).

log = logging.getLogger(__name__)


def _renamed(boxes: Sequence[Box], names: Sequence[str]) -> list[Box]:
    return [b.with_coords(*b.as_tuple(), name=n) for b, n in zip(boxes, names)]


class Karyotyper:
    """``Karyotyper(detector, classifier)``: each an object or a path (an export dir).  ``joint``: label the
    cell jointly (else each box by its top-1); ``choose``: with a calibrated detector, let the joint labelling
    choose which boxes count (else every box above the floor counts).

    A :class:`karyotf.find.ChromosomeFinder`: the ``detector`` is one too (a :class:`karyotf.detect.Detector`,
    or anything derived from :class:`karyotf.find.Finder`); the ``classifier`` has ``size``,
    ``probabilities_of(crops, features)`` and ``path`` (a :class:`karyotf.classify.export.Classifier`)."""

    names = True
    """Its boxes carry chromosome names (the classifier's)."""

    def __init__(self, detector, classifier, joint: bool = True, choose: bool = True, prior=None,
                 second_look=None, input: str = CLASSIFIER_INPUT, separator=None, count_shift: float | None = None,
                 sex_log_lr: float | None = None):
        if input not in CLASSIFIER_INPUTS:
            raise KaryogramError(f"classifier input {input!r}: one of {', '.join(CLASSIFIER_INPUTS)}")
        if isinstance(detector, (str, Path)):
            from ..detect import Detector

            detector = Detector(detector)
        if isinstance(classifier, (str, Path)):
            from .export import Classifier

            classifier = Classifier(classifier)
        self.detector, self.classifier, self.joint = detector, classifier, joint
        self.export_dir = detector.export_dir
        self.model_name = f"{detector.model_name}+classifier"
        self.info = detector.info  # the detector's export info (its tuned score floor)
        # P(chromosome | score), fitted on val
        self.calibration = calibration.of(detector.info) if joint and choose else None
        self.prior = prior_of(prior)  # the karyotype prior (a preset's name, a KaryotypePrior; None: the default)
        if isinstance(second_look, (str, Path)):
            from .second_look import SecondLook

            second_look = SecondLook(second_look)
        self.second_look = second_look if joint and choose else None  # P(whole chromosome) of each candidate
        self.input = input
        trained_on = getattr(classifier, "trained_on", None)
        if isinstance(trained_on, str) and trained_on != input:
            log.warning("the classifier %s was trained on %s crops and will read %s ones: it names chromosomes less "
                        "well so (bench/results/separate.md); --classifier-input %s reads as it was trained",
                        getattr(classifier, "path", classifier), trained_on, input, trained_on)
        self.separator = separator  # input "separated": a separation model (dir or Separator); None: the shipped one
        # the second look's P(whole chromosome) -> the P the labelling counts a box with (joint.count_evidence)
        self.count_shift = COUNT_LOGIT_SHIFT if count_shift is None else float(count_shift)
        # the uncertain-sex flag's likelihood ratio (joint.SEX_LOG_LR; 0: never)
        self.sex_log_lr = SEX_LOG_LR if sex_log_lr is None else float(sex_log_lr)
        self.last_seconds = None

    def crops(self, arr: np.ndarray, boxes: Sequence[Box], reference=None):
        """The classifier's input for ``boxes`` of one cell (:func:`karyotf.classify.crops.cell_crops`), as
        :attr:`input` says: box crops, or each box's window with everything outside its separated mask white."""
        from .crops import cell_crops

        cutouts = None
        if self.input == "separated" and len(boxes):
            from ..separate.separator import cutouts as cut

            cutouts = cut(arr, boxes, self.separator)
        return cell_crops(arr, boxes, self.classifier.size, reference=reference, cutouts=cutouts)

    @classmethod
    def default(cls, second_look: bool = True, **kw) -> "Karyotyper":
        """The model pair shipped with karyotf (:mod:`karyotf.models`; every file's sha256 checked first), with its
        second look when it ships one (``second_look=False``: the detector's calibrated score decides which boxes
        count instead)."""
        from ..models import CLASSIFIER, DETECTOR, SECOND_LOOK, default_parts

        parts = default_parts()
        return cls(parts[DETECTOR], parts[CLASSIFIER], second_look=parts.get(SECOND_LOOK) if second_look else None,
                   **kw)

    @property
    def chooses(self) -> bool:
        """The joint labelling chooses which candidates count (a second look, or a score calibration)."""
        return self.second_look is not None or self.calibration is not None

    @property
    def min_score(self) -> float:
        """The floor when none is given: the second look's candidate floor, else the calibration's (the joint
        labelling chooses which boxes above it count), else the detector's (:attr:`karyotf.find.Finder.min_score`)."""
        if self.second_look is not None:
            return float(self.second_look.min_score)
        return float(self.calibration.floor) if self.calibration is not None else self.detector.min_score

    @property
    def kind(self) -> str:
        """What its detector loaded (``saved_model`` or ``frozen_graph``)."""
        return self.detector.kind

    @property
    def candidate_nms_iou(self) -> float | None:
        """The class-agnostic NMS the candidates go through when the joint labelling chooses (the one its
        probabilities were fitted at), else None."""
        if self.second_look is not None:
            return float(self.second_look.nms_iou)
        return None if self.calibration is None else self.calibration.nms_iou

    def weigh(self, arr: np.ndarray, boxes: Sequence[Box]):
        """(classifier probabilities (N, 24), P(chromosome) (N,), crops) of one cell's candidate boxes: P from the
        second look when there is one (its logit shifted by ``count_shift``:
        :func:`karyotf.classify.joint.count_evidence`), else from the detector's calibrated score."""
        if self.second_look is not None:
            real = self.second_look.p_whole(arr, boxes)
        else:
            real = self.calibration([b.score if b.score is not None else 1.0 for b in boxes])
        likely = [i for i, r in enumerate(real) if r >= 0.5]  # measured against the likely chromosomes
        cc = self.crops(arr, boxes, reference=likely or None)
        if self.second_look is not None:   # the P the labelling counts a box with (joint.count_evidence)
            real = count_evidence(real, self.count_shift)
        return self.classifier.probabilities_of(cc.crops, cc.features), np.asarray(real, float), cc

    def describe(self) -> dict:
        return {**self.detector.describe(), "model": self.model_name, "classifier": str(self.classifier.path),
                "prior": self.prior.name, "classifier_input": self.input,
                **({"second_look": str(self.second_look.path)} if self.second_look is not None else {})}

    def name(self, image: np.ndarray, boxes: Sequence[Box]) -> tuple[list[str], list[dict], object]:
        """Joint labels (or top-1 with ``joint=False``), per-box details and the joint result for one cell."""
        labels, details, result, _ = self._name(image, boxes)
        return labels, details, result

    def _name(self, image: np.ndarray, boxes: Sequence[Box], cc=None, probs=None):
        """:meth:`name` plus review flags for boxes the classifier cannot see: one too small to cut out (its crop is
        blank) or one holding no pixel darker than the cell's foreground threshold (no chromosome in it?).  Each
        stays in the count under the name it got, flagged ``unclassifiable``.  ``cc`` / ``probs``: the boxes' crops
        and probabilities when already computed."""
        from .crops import FEATURES

        if cc is None:
            cc = self.crops(image, boxes)
        if probs is None:
            probs = self.classifier.probabilities_of(cc.crops, cc.features)
        top = [classes.NAMES[k] for k in np.argmax(probs, axis=1)] if len(boxes) else []
        result = joint_labels(probs, prior=self.prior, sex_log_lr=self.sex_log_lr) if self.joint and len(boxes) \
            else None
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

    def find(self, image, min_score: float | None = None, nms_iou: float | None = None) -> Found:
        """One cell found and named (see the module doc); ``min_score`` None: :attr:`min_score`, ``nms_iou`` None:
        :data:`karyotf.defaults.NMS_IOU`."""
        min_score = self.min_score if min_score is None else min_score
        nms_iou = NMS_IOU if nms_iou is None else nms_iou
        if self.candidate_nms_iou is not None:
            nms_iou = self.candidate_nms_iou  # the probabilities hold for the boxes that NMS keeps
        arr = load(image)
        t0 = time.perf_counter()
        found = find(self.detector, arr, min_score, nms_iou)
        kept, removed, below = found.boxes, found.suppressed, found.below
        cc = probs = None
        left_out, left_flags, by_kept = [], [], {}
        if self.chooses and kept:
            candidates = kept
            kept, cc, probs, left_out, left_flags = self._choose(arr, kept)
            counted = set(map(id, kept))  # a box the NMS removed under one left out points at the named copy
            by_kept = dict(zip((id(b) for b in candidates if id(b) not in counted), (d for d, _ in left_out)))
        labels, details, result, unseen = self._name(arr, kept, cc, probs)
        named = _renamed(kept, labels)
        others = [d for d, _, _ in removed] + below
        other_names = []
        if others:  # named by the classifier's top-1 beside the kept boxes (measured against them); not counted.
            # Box crops, not separated cut-outs: separating 30-50 more boxes a cell would double the separation's
            # time, and these names are shown, never counted (a classifier trained on cut-outs reads box crops
            # less well: bench/results/separate.md)
            from .crops import cell_crops

            both = list(kept) + others
            cc = cell_crops(arr, both, self.classifier.size, reference=range(len(kept)))
            probs = self.classifier.probabilities_of(cc.crops, cc.features)[len(kept):]
            other_names = [classes.NAMES[k] for k in np.argmax(probs, axis=1)]
        back = dict(zip(map(id, others), _renamed(others, other_names)))
        by_kept.update(zip(map(id, kept), named))
        suppressed = [Removed(back[id(d)], by_kept[id(k)], v) for d, k, v in removed]
        self.last_seconds = time.perf_counter() - t0
        flags = (list(result.flags()) if result is not None else []) + unseen + left_flags
        return Found(boxes=named, suppressed=suppressed, below=[back[id(d)] for d in below], min_score=min_score,
                     nms_iou=nms_iou, details=details, flags=flags, left_out=left_out, joint=result)

    karyotype = find
    """The name this method had first (tests and notebooks call it)."""

    def call(self, image):
        """The cell's ISCN count call (:class:`karyotf.karyogram.call.Call`) with every flag, review level first, as
        ``karyotf karyogram`` reports it, without drawing or writing anything
        (:func:`karyotf.karyogram.build.call_of`)."""
        from ..karyogram.build import call_of

        arr = load(image)
        return call_of(arr, self.find(arr))

    def _choose(self, arr: np.ndarray, boxes: list[Box]):
        """Which of ``boxes`` count (see the module doc): (counted boxes, their crops and probabilities, the boxes
        left out as ``(box named by top-1, P)``, the flags of the doubted ones:
        :meth:`karyotf.classify.joint.JointLabels.left_out_flags`)."""
        from .crops import CellCrops

        probs, real, cc = self.weigh(arr, boxes)
        first = joint_labels(probs, real=real, prior=self.prior)
        out = set(first.left_out)
        keep = [i for i in range(len(boxes)) if i not in out]
        left = [(boxes[i].with_coords(*boxes[i].as_tuple(), name=first.top1[i]), float(real[i]))
                for i in first.left_out]
        where = {i: f"box at {boxes[i].xmin:.0f},{boxes[i].ymin:.0f}"
                    + (f", score {boxes[i].score:.2f}" if boxes[i].score is not None else "") for i in first.left_out}
        flags = first.left_out_flags(where)
        position = {i: k for k, i in enumerate(keep)}
        sub = CellCrops(cc.crops[keep], cc.features[keep], [position[i] for i in cc.too_small if i in position])
        return [boxes[i] for i in keep], sub, probs[keep], left, flags

    def detect(self, image, min_score: float = 0.0, find_score: float | None = None,
               nms_iou: float | None = None) -> list[Box]:
        """Named boxes of one cell, best score first: those counted at the floor ``find_score`` (default
        :attr:`min_score`) labelled jointly, the rest (NMS-removed, left out, below the floor) by top-1; only boxes
        scoring at least ``min_score`` (an output filter: see :mod:`karyotf.find`)."""
        return [b for b in self.find(image, find_score, nms_iou).everything()
                if b.score is None or b.score >= min_score]

    def __repr__(self) -> str:
        return (f"Karyotyper({self.detector!r}, {self.classifier!r}, joint={self.joint}, prior={self.prior.name!r}, "
                f"input={self.input!r}"
                + (f", second_look={self.second_look!r}" if self.second_look is not None else "") + ")")


def open_model(model: str | Path | None, use: str = "auto", classifier: str | Path | None = None, prior=None,
               second_look: str | Path | None = None, default: bool = False, input: str | None = None,
               separator=None):
    """The model object of an export dir (``--model`` / ``--classifier``; a :class:`karyotf.find.ChromosomeFinder`):
    its :class:`karyotf.detect.Detector` (``use``: which export it loads), or, with ``classifier`` (an exported
    classifier), a :class:`Karyotyper` whose classifier names what the detector finds; without ``model`` (then
    ``classifier`` is an error), the model pair shipped with karyotf if ``default`` (:meth:`Karyotyper.default`,
    with ``prior``), else None.  ``prior``: the joint labelling's karyotype prior (a preset's name);
    ``second_look``: an exported second look that weighs each candidate box (with ``classifier`` only).  A detector alone must name what it finds
    (:func:`karyotf.karyogram.build.check_names`).  What ``karyotf karyogram``, ``karyotf case`` and ``karyotf
    eval`` build and hand to :func:`karyotf.karyogram.karyograms` / :func:`karyotf.evaluate.evaluate`.
    ``input`` / ``separator``: what the classifier reads (:class:`Karyotyper`; None: the default)."""
    kw = {"input": input} if input is not None else {}
    if separator is not None:
        kw["separator"] = separator
    from ..karyogram.build import check_names

    if model is None:
        if classifier is not None:
            raise KaryogramError("--classifier names what a model finds: give --model EXPORT_DIR with it")
        if second_look is not None:
            raise KaryogramError("--second-look weighs the candidates of a model: give --model EXPORT_DIR and "
                                 "--classifier with it")
        return Karyotyper.default(prior=prior, **kw) if default else None
    from ..detect import Detector

    detector = Detector(model, use=use)
    if classifier is not None:  # the detector finds, the classifier names
        return Karyotyper(detector, classifier, prior=prior, second_look=second_look, **kw)
    if second_look is not None:
        raise KaryogramError("--second-look weighs the candidates a classifier then names: give --classifier with it")
    check_names(detector)
    return detector
