"""Boxes from an image: detect -> score floor -> class-agnostic NMS, and the result as one typed value.

Every caller that turns a model's detections into the chromosomes of one cell goes through here
(:mod:`karyotf.karyogram`, :mod:`karyotf.evaluate`'s floor tuning, :class:`karyotf.classify.karyotyper.Karyotyper`):

1. detect: the model's boxes at every score (``detect(image, min_score=0.0)``), in pixels, best score first;
2. floor (:func:`floor`): a box scoring below ``min_score`` is no candidate: it is kept aside as ``below``;
3. NMS (:func:`suppress`): among the rest, where boxes of any class overlap by more than ``nms_iou`` the best
   scoring one is kept; each removed box is kept aside with the box that removed it and their IoU.

:class:`Found` holds the three outcomes (``boxes`` kept, ``suppressed``, ``below``); nothing is dropped unseen.

One meaning for each threshold:

- ``min_score`` of :func:`find` / :meth:`ChromosomeFinder.find` (``karyotf karyogram --min-score``): the
  **floor**. Boxes below it are listed as ``below``, never counted. None: the model's own floor
  (:attr:`ChromosomeFinder.min_score`: a calibration's candidate floor, else the floor ``karyotf eval
  --tune-min-score`` stored with the export, else :data:`karyotf.defaults.MIN_SCORE`).
- ``min_score`` of ``detect`` (:meth:`ChromosomeFinder.detect`, ``karyotf detect --min-score``): an **output
  filter**. Boxes below it are not returned at all; 0.0 returns every box (what :func:`find` and an evaluation
  ask for).
- ``nms_iou``: the IoU above which two boxes of any class are one chromosome found twice (1 = no NMS).
- Not thresholds of the finder: ``low_score`` (:mod:`karyotf.karyogram.call`: a counted box is flagged as low
  confidence) and ``score_threshold`` (:mod:`karyotf.metrics`: a box counts for precision and recall).

A model is an object the caller builds: :class:`ChromosomeFinder` is what a karyogram or an evaluation needs
from "something that finds and names chromosomes in an image"; :class:`karyotf.detect.Detector` (through
:class:`Finder`) and :class:`karyotf.classify.karyotyper.Karyotyper` are two.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol, Sequence

from .annotations import Box
from .defaults import MIN_SCORE, NMS_IOU


class Removed(NamedTuple):
    """A box the NMS removed, ``by`` the kept box it overlaps, at ``iou`` (unpacks as ``(box, by, iou)``)."""

    box: Box
    by: Box
    iou: float


@dataclass
class Found:
    """One cell's boxes: ``boxes`` (kept: counted, best score first), ``suppressed`` (removed by the NMS, each with
    the box that removed it), ``below`` (under the floor ``min_score``), found at ``min_score`` and ``nms_iou``.

    A finder that also names (a Karyotyper) adds ``details`` (one dict a kept box: the classifier's top-1 and
    probabilities), ``flags`` (its review flags), ``left_out`` (``(box, P(chromosome))`` that the joint labelling
    left out of the count) and ``joint`` (the joint labelling's result)."""

    boxes: list[Box]
    suppressed: list[Removed] = field(default_factory=list)
    below: list[Box] = field(default_factory=list)
    min_score: float | None = None
    nms_iou: float | None = None
    details: list[dict] | None = None
    flags: list = field(default_factory=list)
    left_out: list[tuple[Box, float]] = field(default_factory=list)
    joint: Any = None

    def everything(self) -> list[Box]:
        """Every box, best score first: kept, suppressed, left out and below."""
        out = self.boxes + [r.box for r in self.suppressed] + [b for b, _ in self.left_out] + self.below
        return sorted(out, key=_score_key)


def _score_key(b: Box) -> float:
    return -(b.score if b.score is not None else 1.0)


def floor(boxes: Sequence[Box], min_score: float) -> tuple[list[Box], list[Box]]:
    """``(at or above min_score, below it)``; a box without a score (ground truth) is above any floor."""
    above = [b for b in boxes if b.score is None or b.score >= min_score]
    below = [b for b in boxes if b.score is not None and b.score < min_score]
    return above, below


def suppress(boxes: Sequence[Box], iou: float) -> tuple[list[Box], list[Removed]]:
    """Class-agnostic NMS that says what it removed: (kept boxes, :class:`Removed` ``(removed, the kept box it
    overlaps, IoU)``).

    The best-scoring box is kept where boxes of any class overlap by more than ``iou`` (one chromosome detected as
    two classes counts once).  ``iou >= 1`` keeps everything."""
    ordered = sorted(boxes, key=_score_key)
    if iou >= 1:
        return ordered, []
    kept: list[Box] = []
    removed: list[Removed] = []
    for b in ordered:
        over = max(((b.iou(k), k) for k in kept), key=lambda t: t[0], default=(0.0, None))
        if over[1] is not None and over[0] > iou:
            removed.append(Removed(b, over[1], over[0]))
        else:
            kept.append(b)
    return kept, removed


def class_agnostic_nms(boxes: Sequence[Box], iou: float) -> list[Box]:
    """The boxes :func:`suppress` keeps."""
    return suppress(boxes, iou)[0]


def sift(boxes: Sequence[Box], min_score: float, nms_iou: float) -> Found:
    """Floor, then NMS, of boxes already detected (see the module doc)."""
    above, below = floor(boxes, min_score)
    kept, removed = suppress(above, nms_iou)
    return Found(kept, removed, below, min_score, nms_iou)


def find(detector, image, min_score: float, nms_iou: float) -> Found:
    """Detect -> floor -> NMS: ``detector.detect(image, min_score=0.0)`` (every box), then :func:`sift`."""
    return sift(detector.detect(image, min_score=0.0), min_score, nms_iou)


class ChromosomeFinder(Protocol):
    """Something that finds and names chromosomes in an image: what :func:`karyotf.karyogram.karyograms` and
    :func:`karyotf.evaluate.evaluate` need from a model.  The caller builds it (``Detector(export_dir)``,
    ``Karyotyper(detector, classifier)``) and hands it on."""

    model_name: str
    export_dir: Path | str | None
    """The export dir the boxes come from (None for a model that has none)."""

    @property
    def names(self) -> bool:
        """Whether its boxes carry chromosome names (False: a class-agnostic detector, which finds but does not
        name: it needs a classifier beside it)."""

    @property
    def min_score(self) -> float:
        """The floor :meth:`find` uses when none is given (see the module doc)."""

    def detect(self, image, min_score: float = 0.0) -> list[Box]:
        """Every named box in ``image`` scoring at least ``min_score`` (an output filter), best score first."""

    def find(self, image, min_score: float | None = None, nms_iou: float | None = None) -> Found:
        """One cell found (and named): detect -> floor ``min_score`` -> class-agnostic NMS at ``nms_iou``."""

    def describe(self) -> dict:
        """What a report says about the model: ``from`` (its export dir or name), ``model`` and, for a
        two-stage model, ``classifier``."""


class Finder:
    """The :class:`ChromosomeFinder` parts of a detector, from its ``detect``: a detector class (or a stand-in for
    one) derives from it and sets ``export_dir``, ``model_name``, ``info`` (its export's ``karyotf.json``) and
    ``agnostic``."""

    export_dir: Path | str | None = None
    model_name: str = "detector"
    info: dict = {}
    """The export's ``karyotf.json`` (read only)."""
    agnostic: bool = False
    """A class-agnostic detector: it finds chromosomes, its boxes are named ``classes.AGNOSTIC``."""

    def detect(self, image, min_score: float = 0.0) -> list[Box]:  # pragma: no cover - every detector has its own
        raise NotImplementedError

    @property
    def names(self) -> bool:
        return not self.agnostic

    @property
    def min_score(self) -> float:
        """The floor ``karyotf eval --tune-min-score`` chose on val and stored with the export (``karyotf.json``
        ``min_score``), else :data:`karyotf.defaults.MIN_SCORE`."""
        value = (self.info or {}).get("min_score")
        return MIN_SCORE if value is None else float(value)

    def find(self, image, min_score: float | None = None, nms_iou: float | None = None) -> Found:
        return find(self, image, self.min_score if min_score is None else min_score,
                    NMS_IOU if nms_iou is None else nms_iou)

    def describe(self) -> dict:
        return {"from": str(self.export_dir or self.model_name), "model": self.model_name}
