"""Thesis metrics from detections: precision, recall, F1, confusion matrix, chromosomes found, PR curves.

Pure numpy (no TensorFlow): the OD API's own COCO mAP comes from :func:`karyotf.odapi.coco_metrics`; everything
here is computed from the same detections, so the two can be cross-checked (:attr:`PRCurve.ap` follows COCO's
101-point interpolation and equals COCO's mAP@0.5 per class).

Boxes are :class:`~karyotf.annotations.Box` in pixels.  A detection whose ``score`` is ``None`` (for example
ground truth fed back as detections) counts as score 1.0.  ``difficult`` / ``truncated`` flags are ignored: every
annotated chromosome is a chromosome to find.

Matching (one image at a time; the definition every number here rests on)
--------------------------------------------------------------------------
1. Keep the detections with ``score >= min_score``; visit them in descending score order (ties keep the
   detector's order: a stable sort, as COCO's).
2. Class-aware (:func:`match_detections`, ``class_aware=True``): a detection is matched to the still-unmatched
   ground-truth box **of the same class** with the highest IoU, if that IoU is ``>= iou`` (0.5): a true positive
   (TP).  Otherwise it is a false positive (FP): a wrong class, a poor box, or a **second detection of a
   chromosome already matched** (duplicates are FPs).  Ground-truth boxes left unmatched are false negatives (FN).
3. Class-agnostic (``class_aware=False``): the same greedy matching ignoring classes.  It gives
   (true class, predicted class) pairs for the confusion matrix; unmatched truth goes to the ``missed`` column,
   unmatched detections to the ``spurious`` row.  Its matched count is "chromosomes found".

Because the matching is greedy in score order, a detection's fate depends only on the detections scored above
it, so matching once with every detection and then counting those with ``score >= threshold`` gives exactly the
result of matching at that threshold: the thesis counts and the PR curve come from one matching.

Per class: precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2 TP / (2 TP + FP + FN).  When a ratio has
no denominator it is ``None`` (not applicable: a class neither present nor predicted), except that a class present
but never predicted has precision 0.  ``overall`` is the micro average (every chromosome counts once; the number
in the thesis-style table); ``macro`` averages the classes where the value is defined.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from . import classes
from .annotations import Box
from .defaults import IOU, SCORE_THRESHOLD  # noqa: F401  (karyotf.defaults holds their meaning)

EXPECTED_COUNT = 46
"""Chromosomes in a normal human metaphase."""
MISSED = "missed"
SPURIOUS = "spurious"
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
"""COCO's recall thresholds for interpolated average precision."""
CURVE_SCORES = np.round(np.linspace(0.0, 1.0, 21), 2)
"""Score thresholds at which the micro-averaged PR curve is written to JSON."""

_NAMES = classes.NAMES
_INDEX = {name: i for i, name in enumerate(_NAMES)}


def score_of(box: Box) -> float:
    """A box's score; ``None`` (ground truth) counts as 1.0."""
    return 1.0 if box.score is None else float(box.score)


def boxes_array(boxes: Sequence[Box]) -> np.ndarray:
    """``(N, 4)`` float64 array of ``xmin, ymin, xmax, ymax`` pixels."""
    if not boxes:
        return np.zeros((0, 4), dtype=np.float64)
    return np.array([b.as_tuple() for b in boxes], dtype=np.float64)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N, 4) with every box in ``b`` (M, 4): an (N, M) array (as :meth:`Box.iou`)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def score_order(dets: Sequence[Box]) -> np.ndarray:
    """Indices of ``dets`` by descending score, ties in input order (a stable sort, as COCO's)."""
    scores = np.array([score_of(d) for d in dets], dtype=np.float64)
    return np.argsort(-scores, kind="mergesort")


@dataclass(frozen=True)
class ImageMatch:
    """The matching of one image's detections to its ground truth (indices into the two input lists)."""

    tp: tuple[tuple[int, int], ...]
    """(detection index, truth index) pairs, in the order they were matched (descending score)."""
    fp: tuple[int, ...]
    """Detections at or above the score threshold that matched nothing."""
    fn: tuple[int, ...]
    """Ground-truth boxes no detection matched."""
    ignored: tuple[int, ...] = ()
    """Detections below the score threshold."""

    @property
    def counts(self) -> tuple[int, int, int]:
        return len(self.tp), len(self.fp), len(self.fn)


def match_detections(truth: Sequence[Box], dets: Sequence[Box], iou: float = IOU,
                     min_score: float = SCORE_THRESHOLD, class_aware: bool = True) -> ImageMatch:
    """Greedy score-ordered matching of one image's detections to its ground truth (see the module docstring)."""
    ious = iou_matrix(boxes_array(truth), boxes_array(dets))
    truth_names = np.array([t.name for t in truth], dtype=object)
    matched = np.zeros(len(truth), dtype=bool)
    tp: list[tuple[int, int]] = []
    fp: list[int] = []
    ignored: list[int] = []
    for d in score_order(dets):
        d = int(d)
        if score_of(dets[d]) < min_score:
            ignored.append(d)
            continue
        if len(truth):
            cand = ious[:, d].copy()
            cand[matched] = -1.0
            if class_aware:
                cand[truth_names != dets[d].name] = -1.0
            best = int(np.argmax(cand))
            if cand[best] >= iou:
                matched[best] = True
                tp.append((d, best))
                continue
        fp.append(d)
    fn = tuple(int(i) for i in np.flatnonzero(~matched))
    return ImageMatch(tuple(tp), tuple(fp), fn, tuple(sorted(ignored)))


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


@dataclass
class Counts:
    """TP / FP / FN of one class (or all together) and the ratios made from them."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def truth(self) -> int:
        return self.tp + self.fn

    @property
    def detected(self) -> int:
        return self.tp + self.fp

    @property
    def precision(self) -> float | None:
        if self.detected == 0:
            return 0.0 if self.fn else None
        return self.tp / self.detected

    @property
    def recall(self) -> float | None:
        return _ratio(self.tp, self.truth)

    @property
    def f1(self) -> float | None:
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    def to_dict(self) -> dict:
        r = lambda v: None if v is None else round(v, 6)  # noqa: E731
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "truth": self.truth, "detected": self.detected,
                "precision": r(self.precision), "recall": r(self.recall), "f1": r(self.f1)}


@dataclass
class ThesisMetrics:
    """Precision, recall and F1 per class and overall at one IoU and score threshold."""

    per_class: dict[str, Counts]
    iou: float = IOU
    score_threshold: float = SCORE_THRESHOLD

    @property
    def overall(self) -> Counts:
        """Micro average: the counts of all classes summed."""
        total = Counts()
        for c in self.per_class.values():
            total = total + c
        return total

    @property
    def precision(self) -> float | None:
        return self.overall.precision

    @property
    def recall(self) -> float | None:
        return self.overall.recall

    @property
    def f1(self) -> float | None:
        return self.overall.f1

    @property
    def macro(self) -> dict[str, float | None]:
        """Unweighted means over the classes where each value is defined."""
        cs = self.per_class.values()
        return {"precision": _mean(c.precision for c in cs), "recall": _mean(c.recall for c in cs),
                "f1": _mean(c.f1 for c in cs)}

    def to_dict(self) -> dict:
        return {"iou": self.iou, "score_threshold": self.score_threshold, "overall": self.overall.to_dict(),
                "macro": {k: None if v is None else round(v, 6) for k, v in self.macro.items()},
                "per_class": {name: c.to_dict() for name, c in self.per_class.items()}}


@dataclass
class ConfusionMatrix:
    """Class-agnostic matches as a 25 x 25 count matrix.

    Rows: true class (``NAMES`` order) then ``spurious`` (a detection that matched no chromosome).
    Columns: predicted class then ``missed`` (a chromosome no detection matched).  ``matrix[24, 24]`` is always 0.
    """

    matrix: np.ndarray = field(default_factory=lambda: np.zeros((len(_NAMES) + 1,) * 2, dtype=np.int64))
    iou: float = IOU
    score_threshold: float = SCORE_THRESHOLD

    rows: tuple[str, ...] = _NAMES + (SPURIOUS,)
    cols: tuple[str, ...] = _NAMES + (MISSED,)

    def add(self, truth: Sequence[Box], dets: Sequence[Box]) -> ImageMatch:
        """Match one image class-agnostically and add its pairs; returns the matching."""
        m = match_detections(truth, dets, self.iou, self.score_threshold, class_aware=False)
        missed = len(_NAMES)
        for d, t in m.tp:
            self.matrix[_INDEX[truth[t].name], _INDEX[dets[d].name]] += 1
        for t in m.fn:
            self.matrix[_INDEX[truth[t].name], missed] += 1
        for d in m.fp:
            self.matrix[missed, _INDEX[dets[d].name]] += 1
        return m

    def count(self, true: str, predicted: str) -> int:
        """Cell by names: ``count('21', '22')``, ``count('X', MISSED)``, ``count(SPURIOUS, '1')``."""
        return int(self.matrix[self.rows.index(true), self.cols.index(predicted)])

    @property
    def missed(self) -> dict[str, int]:
        return {n: int(v) for n, v in zip(_NAMES, self.matrix[:-1, -1])}

    @property
    def spurious(self) -> dict[str, int]:
        return {n: int(v) for n, v in zip(_NAMES, self.matrix[-1, :-1])}

    @property
    def correct(self) -> int:
        return int(np.trace(self.matrix[:-1, :-1]))

    @property
    def misclassified(self) -> int:
        core = self.matrix[:-1, :-1]
        return int(core.sum() - np.trace(core))

    @property
    def misclassified_within_group(self) -> int:
        """Wrong-class matches whose predicted class is in the true class's Denver group (e.g. 21 called 22)."""
        return sum(int(self.matrix[i, j]) for i, a in enumerate(_NAMES) for j, b in enumerate(_NAMES)
                   if i != j and classes.GROUP_OF[a] == classes.GROUP_OF[b])

    def top_confusions(self, n: int = 10) -> list[tuple[str, str, int]]:
        """The ``n`` largest off-diagonal (true, predicted) cells."""
        core = self.matrix[:-1, :-1].copy()
        np.fill_diagonal(core, 0)
        flat = np.argsort(-core, axis=None, kind="mergesort")[:n]
        out = []
        for k in flat:
            i, j = np.unravel_index(k, core.shape)
            if core[i, j] > 0:
                out.append((_NAMES[i], _NAMES[j], int(core[i, j])))
        return out

    def to_dict(self) -> dict:
        return {"iou": self.iou, "score_threshold": self.score_threshold, "rows": list(self.rows),
                "cols": list(self.cols), "matrix": self.matrix.tolist(), "correct": self.correct,
                "misclassified": self.misclassified,
                "misclassified_within_group": self.misclassified_within_group, "missed": self.missed, "spurious": self.spurious,
                "top_confusions": [list(c) for c in self.top_confusions()]}


@dataclass(frozen=True)
class ImageCount:
    """Chromosomes in one image: truth, detections kept, found (class-agnostic), correct (class-aware)."""

    image_id: str
    truth: int
    detected: int
    found: int
    correct: int

    @property
    def all_found(self) -> bool:
        return self.found == self.truth

    @property
    def all_correct(self) -> bool:
        """Every chromosome found with its right class and nothing else detected: the cell's count call is right."""
        return self.correct == self.truth and self.detected == self.truth

    def to_dict(self) -> dict:
        return {"image": self.image_id, "truth": self.truth, "detected": self.detected, "found": self.found,
                "correct": self.correct}


@dataclass
class FoundPerImage:
    """Chromosomes detected per image against the truth (and against 46)."""

    images: list[ImageCount] = field(default_factory=list)
    expected: int = EXPECTED_COUNT

    def _share(self, flags) -> float | None:
        flags = list(flags)
        return float(np.mean(flags)) if flags else None

    def summary(self) -> dict:
        ims = self.images
        truth = sum(i.truth for i in ims)
        return {
            "images": len(ims),
            "truth_mean": _mean([i.truth for i in ims]),
            "detected_mean": _mean([i.detected for i in ims]),
            "found_mean": _mean([i.found for i in ims]),
            "correct_mean": _mean([i.correct for i in ims]),
            "found_share": _ratio(sum(i.found for i in ims), truth),
            "correct_share": _ratio(sum(i.correct for i in ims), truth),
            "found_share_of_expected": _ratio(sum(i.found for i in ims), self.expected * len(ims)),
            "cells_all_found": self._share(i.all_found for i in ims),
            "cells_all_correct": self._share(i.all_correct for i in ims),
            "cells_count_right": self._share(i.detected == i.truth for i in ims),
            "cells_detected_expected": self._share(i.detected == self.expected for i in ims),
            "expected": self.expected,
        }

    def to_dict(self) -> dict:
        return {"summary": self.summary(), "images": [i.to_dict() for i in self.images]}


@dataclass
class PRCurve:
    """Precision-recall over every score of one class (or all classes pooled: micro average)."""

    name: str
    scores: np.ndarray
    """Detection scores, descending."""
    tp: np.ndarray
    """Whether each detection (same order) is a true positive."""
    n_truth: int

    @classmethod
    def from_pairs(cls, name: str, scores, tp, n_truth: int) -> "PRCurve":
        scores = np.asarray(scores, dtype=np.float64)
        tp = np.asarray(tp, dtype=bool)
        order = np.argsort(-scores, kind="mergesort")
        return cls(name, scores[order], tp[order], int(n_truth))

    @property
    def precision(self) -> np.ndarray:
        k = np.arange(1, len(self.tp) + 1)
        return np.cumsum(self.tp) / k if len(k) else np.zeros(0)

    @property
    def recall(self) -> np.ndarray:
        if self.n_truth == 0:
            return np.zeros(len(self.tp))
        return np.cumsum(self.tp) / self.n_truth

    def interpolated(self) -> np.ndarray | None:
        """COCO's interpolated precision at :data:`RECALL_POINTS` (``None`` when the class has no truth)."""
        if self.n_truth == 0:
            return None
        q = np.zeros(len(RECALL_POINTS))
        if len(self.tp) == 0:
            return q
        tps = np.cumsum(self.tp).astype(np.float64)
        fps = np.cumsum(~self.tp).astype(np.float64)
        rc = tps / self.n_truth
        pr = tps / (fps + tps + np.spacing(1))
        pr = np.maximum.accumulate(pr[::-1])[::-1]  # precision envelope, as COCO's accumulate()
        inds = np.searchsorted(rc, RECALL_POINTS, side="left")
        ok = inds < len(pr)
        q[ok] = pr[inds[ok]]
        return q

    @property
    def ap(self) -> float | None:
        """Average precision, COCO's 101-point interpolation (``None`` when the class has no truth)."""
        q = self.interpolated()
        return None if q is None else float(q.mean())

    def at(self, threshold: float) -> tuple[float | None, float | None]:
        """(precision, recall) counting detections with ``score >= threshold``."""
        keep = self.scores >= threshold
        tp = int(self.tp[keep].sum())
        n = int(keep.sum())
        return (tp / n if n else None), (tp / self.n_truth if self.n_truth else None)

    def to_dict(self, curve: bool = False) -> dict:
        d = {"ap": None if self.ap is None else round(self.ap, 6), "truth": self.n_truth,
             "detections": int(len(self.tp)), "tp_at_any_score": int(self.tp.sum())}
        if curve:
            pts = [(float(s), *self.at(float(s))) for s in CURVE_SCORES]
            d["curve"] = {"score": [p[0] for p in pts], "precision": [p[1] for p in pts],
                          "recall": [p[2] for p in pts]}
            q = self.interpolated()
            d["interpolated_precision"] = None if q is None else [round(float(v), 6) for v in q]
        return d


@dataclass
class PRCurves:
    """One :class:`PRCurve` per class and the micro-averaged one (``'all'``)."""

    per_class: dict[str, PRCurve]
    micro: PRCurve
    iou: float = IOU

    @property
    def mean_ap(self) -> float | None:
        """Mean of the per-class APs over classes with ground truth (as COCO's mAP@0.5)."""
        return _mean(c.ap for c in self.per_class.values())

    def to_dict(self) -> dict:
        return {"iou": self.iou, "map": None if self.mean_ap is None else round(self.mean_ap, 6),
                "micro": self.micro.to_dict(curve=True),
                "per_class": {n: c.to_dict() for n, c in self.per_class.items()}}


@dataclass
class DetectionMetrics:
    """Everything computed from one set of detections against one set of ground truth."""

    thesis: ThesisMetrics
    confusion: ConfusionMatrix
    found: FoundPerImage
    pr: PRCurves
    iou: float = IOU
    score_threshold: float = SCORE_THRESHOLD

    def to_dict(self) -> dict:
        return {"iou": self.iou, "score_threshold": self.score_threshold, "thesis": self.thesis.to_dict(),
                "found_per_image": self.found.to_dict(), "confusion": self.confusion.to_dict(),
                "pr": self.pr.to_dict()}


def compute_metrics(truth: Sequence[Sequence[Box]], detections: Sequence[Sequence[Box]], iou: float = IOU,
                    score_threshold: float = SCORE_THRESHOLD, image_ids: Sequence[str] | None = None,
                    expected: int = EXPECTED_COUNT) -> DetectionMetrics:
    """All thesis metrics for images ``truth[i]`` (ground-truth boxes) and ``detections[i]`` (scored boxes)."""
    if len(truth) != len(detections):
        raise ValueError(f"{len(truth)} images of ground truth but {len(detections)} of detections")
    if image_ids is None:
        image_ids = [str(i) for i in range(len(truth))]
    per_class = {n: Counts() for n in _NAMES}
    pr_scores: dict[str, list[float]] = {n: [] for n in _NAMES}
    pr_tp: dict[str, list[bool]] = {n: [] for n in _NAMES}
    n_truth = {n: 0 for n in _NAMES}
    confusion = ConfusionMatrix(iou=iou, score_threshold=score_threshold)
    found = FoundPerImage(expected=expected)
    for image_id, gt, dets in zip(image_ids, truth, detections):
        gt, dets = list(gt), list(dets)
        for b in list(gt) + list(dets):
            if b.name not in _INDEX:
                raise ValueError(f"image {image_id}: class {b.name!r} is not a canonical chromosome name")
        # One class-aware matching over all scores: a detection's fate depends only on higher-scored ones.
        m = match_detections(gt, dets, iou, min_score=-np.inf, class_aware=True)
        tp_dets = {d for d, _ in m.tp}
        correct = 0
        for d in score_order(dets):
            d = int(d)
            s, name, is_tp = score_of(dets[d]), dets[d].name, d in tp_dets
            pr_scores[name].append(s)
            pr_tp[name].append(is_tp)
            if s >= score_threshold:
                if is_tp:
                    per_class[name].tp += 1
                    correct += 1
                else:
                    per_class[name].fp += 1
        for t in gt:
            n_truth[t.name] += 1
        agnostic = confusion.add(gt, dets)
        detected = sum(1 for d in dets if score_of(d) >= score_threshold)
        found.images.append(ImageCount(str(image_id), len(gt), detected, len(agnostic.tp), correct))
    for n in _NAMES:
        per_class[n].fn = n_truth[n] - per_class[n].tp
    curves = {n: PRCurve.from_pairs(n, pr_scores[n], pr_tp[n], n_truth[n]) for n in _NAMES}
    micro = PRCurve.from_pairs("all", [s for n in _NAMES for s in pr_scores[n]],
                               [t for n in _NAMES for t in pr_tp[n]], sum(n_truth.values()))
    return DetectionMetrics(ThesisMetrics(per_class, iou, score_threshold), confusion, found,
                            PRCurves(curves, micro, iou), iou, score_threshold)
