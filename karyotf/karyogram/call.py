"""The karyotype count call: chromosomes per class -> an ISCN numerical karyotype and flags for review.

The call only counts.  It never pairs chromosomes or moves a third copy to another class to make two of each:
whatever classes the boxes carry are counted as they are, so a trisomy stays a trisomy (``47,XY,+21``) and a
lost chromosome a loss (``45,XX,-22``).  Structural changes (translocations, deletions) are invisible to it.

ISCN order: the total count, then the sex chromosomes (all X, then all Y: ``XX``, ``XY``, ``X``, ``XXY``), then
the autosomal gains and losses in chromosome order, one ``+n`` / ``-n`` a copy (``48,XY,+18,+21``;
``45,XY,-21``; ``48,XX,+21,+21``).  Sex-chromosome aneuploidies are written by their complement only
(``45,X``, ``47,XXY``).

No ISCN string is written where it would not be one: a cell with fewer than ``CALL_MIN_TOTAL`` or more than
``CALL_MAX_TOTAL`` chromosomes, or with no X and no Y, reads ``no call: ...`` with its counts and flags
(:mod:`karyotf.karyogram.defaults` documents the bounds).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from .. import classes
from ..annotations import Box
from ..boxcheck import BoxCheck, check_boxes, duplicate_pairs
from ..defaults import DUPLICATE_IOU
from .defaults import CALL_MAX_TOTAL, CALL_MIN_TOTAL, LOW_MEAN_SCORE, LOW_SCORE, OVERLAP_IOU  # noqa: F401

NORMAL_SEX = ("XX", "XY")

REVIEW = "review"
"""Flag level: the call may be wrong; a person should check it before it is reported."""
NOTE = "note"
"""Flag level: worth knowing, but it does not put the call in doubt (or it fires on most right calls too)."""

FLAG_LEVELS = {
    # the count call's own flags (this module): an abnormal, absent or impossible count may be wrong
    "no_detections": REVIEW, "no_call": REVIEW, "total_not_46": REVIEW, "extra_copy": REVIEW,
    "missing_copy": REVIEW, "absent_class": REVIEW, "sex_unknown": REVIEW, "sex_atypical": REVIEW,
    "y_with_two_x": REVIEW, "y_without_x": REVIEW,
    # fire on 90-100% of right calls end to end (bench/results/quality.json, issue 23): notes by construction
    "low_confidence": NOTE, "low_mean_confidence": NOTE, "overlapping_boxes": NOTE, "suppressed_other_class": NOTE,
    # the joint labelling's (karyotf.classify.joint): a close other karyotype, a box whose counting changes the
    # call, counts past the prior are reviews; a relabelled chromosome, an unsure one, a box that could stand in
    # for another without changing the counts are notes
    "close_call": REVIEW, "close_alternative": REVIEW, "left_out": REVIEW, "beyond_prior": REVIEW,
    "sex_uncertain": REVIEW,
    "label_changed": NOTE, "low_top1": NOTE, "left_out_swap": NOTE,
    # the Karyotyper's (karyotf.classify.karyotyper): a counted box the classifier could not see
    "unclassifiable": REVIEW,
    # the box check's (karyotf.boxcheck): a counted box holding no chromosome, one chromosome counted twice, an
    # image that does not match its boxes all change the count
    "empty_box": REVIEW, "duplicate_box": REVIEW, "image_mismatch": REVIEW,
    # the separation's (karyotf.separate): a chromosome whose own mask is uncertain (its cut-out may carry a
    # neighbour's arm or miss its own, and a tangle of three is where a person splits by hand)
    "separation_uncertain": REVIEW,
}
"""The level of every flag code, in one place.  *Review*: the call may be wrong (a possible aneuploidy, an
uncertain sex complement, an uncertain count, a close alternative karyotype).  *Note*: everything else.  A flag
that fires on most right calls is a note by construction: it cannot tell a person which calls to check.  A code
missing here is a review (an unknown reason to doubt is not dismissed)."""


def level_of(code: str) -> str:
    """:data:`REVIEW` or :data:`NOTE` for a flag code (unknown codes: review)."""
    return FLAG_LEVELS.get(code, REVIEW)


@dataclass(frozen=True)
class Flag:
    """A reason for a person to look at the cell: ``code`` is stable (for scripts), ``message`` is for people;
    ``level`` (from :data:`FLAG_LEVELS`) says whether the call may be wrong (review) or not (note)."""

    code: str
    message: str
    classes: tuple[str, ...] = ()

    @property
    def level(self) -> str:
        return level_of(self.code)

    @property
    def review(self) -> bool:
        return self.level == REVIEW

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def to_dict(self) -> dict:
        d = {"code": self.code, "level": self.level, "message": self.message}
        if self.classes:
            d["classes"] = list(self.classes)
        return d


def review_first(flags) -> list:
    """Flags with the review level first, each level in its given order."""
    flags = list(flags)
    return [f for f in flags if f.review] + [f for f in flags if not f.review]


FLAG_CODES = {
    "no_detections": "no chromosome was found: no call",
    "no_call": f"too few or too many chromosomes (a call needs {CALL_MIN_TOTAL}-{CALL_MAX_TOTAL}), or no X and no Y: "
               "no call, the counts are shown",
    "suppressed_other_class": "a confident box of another class was suppressed under a kept box: a chromosome may "
                              "be missing from the count",
    "total_not_46": "the chromosome count is not 46",
    "extra_copy": "a class has three or more copies",
    "missing_copy": "a class has a single copy",
    "absent_class": "a class has no copy at all",
    "sex_unknown": "no X and no Y: the sex chromosomes are unknown",
    "sex_atypical": "the sex chromosomes are neither XX nor XY",
    "y_with_two_x": "a Y together with two or more X",
    "y_without_x": "a Y without any X",
    "low_confidence": "chromosomes detected with a low score",
    "low_mean_confidence": "the mean detection score is low",
    "overlapping_boxes": "boxes overlapping strongly (a chromosome counted twice, or a tangle)",
    "empty_box": "a box with (almost) no chromosome pixels in it, counted as a chromosome",
    "duplicate_box": "two near-identical boxes, both counted: one chromosome counted twice",
    "image_mismatch": "many boxes hold no chromosome: the image does not match its boxes (a blank image, the XML of "
                      "another cell); no call",
    "separation_uncertain": "a chromosome's own mask is uncertain (low mask confidence, no foreground, or a "
                            "cluster of three or more touching or crossing chromosomes): check its cut-out",
}
"""Every flag code the call can raise, with its meaning (the report's legend)."""


@dataclass
class Call:
    """The numerical karyotype of one cell, as counted from its boxes."""

    total: int
    counts: dict[str, int]
    sex: str
    changes: list[str]
    iscn: str | None
    flags: list[Flag] = field(default_factory=list)
    mean_score: float | None = None
    class_scores: dict[str, float] = field(default_factory=dict)
    low_confidence: list[int] = field(default_factory=list)
    """Indices (into the boxes given) of the low-confidence chromosomes."""
    overlaps: list[tuple[int, int, float]] = field(default_factory=list)
    """(i, j, IoU) of the strongly overlapping box pairs."""
    no_call: str | None = None
    """Why there is no ISCN string (``iscn`` is None), e.g. ``12 chromosomes found``."""
    box_check: "object | None" = None
    """What :func:`karyotf.boxcheck.check_boxes` measured in the image (set by the karyogram): each box's
    foreground share, the empty and duplicate boxes."""

    @property
    def text(self) -> str:
        return self.iscn if self.iscn is not None else f"no call: {self.no_call or 'no chromosomes detected'}"

    def counts_text(self) -> str:
        """Per-class counts in one line, ``1:2 2:2 ... X:1 Y:1``."""
        return " ".join(f"{n}:{self.counts.get(n, 0)}" for n in classes.NAMES)

    def __str__(self) -> str:
        return self.text

    @property
    def is_normal(self) -> bool:
        """46 chromosomes, two of each autosome, XX or XY."""
        return self.iscn is not None and self.total == 46 and not self.changes and self.sex in NORMAL_SEX

    @property
    def flag_codes(self) -> list[str]:
        return [f.code for f in self.flags]

    @property
    def review_flags(self) -> list[Flag]:
        """The flags that say the call may be wrong (level review)."""
        return [f for f in self.flags if f.review]

    @property
    def notes(self) -> list[Flag]:
        """The other flags (level note)."""
        return [f for f in self.flags if not f.review]

    @property
    def review_codes(self) -> list[str]:
        return [f.code for f in self.review_flags]

    def add_flags(self, flags) -> None:
        """Add flags (e.g. the joint labelling's), keeping the review level first."""
        self.flags[:] = review_first(list(self.flags) + list(flags))

    def has_flag(self, code: str) -> bool:
        return code in self.flag_codes

    def to_dict(self) -> dict:
        return {
            "call": self.iscn,
            "text": self.text,
            "total": self.total,
            "sex": self.sex,
            "changes": list(self.changes),
            "normal": self.is_normal,
            "no_call": self.no_call,
            "counts": dict(self.counts),
            "mean_score": None if self.mean_score is None else round(self.mean_score, 4),
            "class_scores": {k: round(v, 4) for k, v in self.class_scores.items()},
            "review": self.review_codes,
            "flags": [f.to_dict() for f in self.flags],
            **({"box_check": self.box_check.to_dict()} if self.box_check is not None else {}),
        }


def sex_complement(counts: Counter | dict) -> str:
    """``'X' * nX + 'Y' * nY``, or ``'?'`` when neither is present."""
    s = "X" * counts.get("X", 0) + "Y" * counts.get("Y", 0)
    return s or "?"


def iscn(counts: Counter | dict) -> tuple[str, str, list[str]]:
    """(ISCN string, sex complement, autosomal changes) for per-class counts."""
    total = sum(counts.get(n, 0) for n in classes.NAMES)
    sex = sex_complement(counts)
    changes: list[str] = []
    for n in classes.AUTOSOMES:
        c = counts.get(n, 0)
        if c > 2:
            changes.extend([f"+{n}"] * (c - 2))
        elif c < 2:
            changes.extend([f"-{n}"] * (2 - c))
    return ",".join([str(total), sex, *changes]), sex, changes


def count_call(boxes: Iterable[Box], low_score: float = LOW_SCORE, low_mean_score: float = LOW_MEAN_SCORE,
               overlap_iou: float = OVERLAP_IOU, suppressed: Sequence[tuple[Box, Box, float]] = ()) -> Call:
    """Count the chromosomes per class and write the ISCN numerical call with its review flags.

    ``boxes`` come from an annotation (``score`` None: ground truth, no confidence flags) or a Detector
    (``score`` set).  Nothing is paired or reassigned: each box counts for the class it carries.
    ``suppressed``: ``(dropped box, kept box, IoU)`` of detections removed by a class-agnostic NMS; one scoring at
    least ``low_score`` with a class other than the kept box's is flagged (``suppressed_other_class``).
    """
    boxes = list(boxes)
    for b in boxes:
        if b.name not in classes.LABEL_OF:
            raise ValueError(f"box class {b.name!r} is not canonical; use karyotf.classes.canonical()")
    counts = Counter(b.name for b in boxes)
    full = {n: counts.get(n, 0) for n in classes.NAMES}
    scored = [(i, b.score) for i, b in enumerate(boxes) if b.score is not None]
    mean_score = sum(s for _, s in scored) / len(scored) if scored else None
    class_scores: dict[str, float] = {}
    for n in classes.NAMES:
        s = [b.score for b in boxes if b.name == n and b.score is not None]
        if s:
            class_scores[n] = sum(s) / len(s)
    low = [i for i, s in scored if s < low_score]

    if not boxes:
        return Call(total=0, counts=full, sex="?", changes=[], iscn=None, no_call="no chromosomes detected",
                    flags=[Flag("no_detections", "no chromosomes detected: nothing to count, no call")])

    text, sex, changes = iscn(full)
    total = len(boxes)
    flags: list[Flag] = []
    no_call = None
    if not CALL_MIN_TOTAL <= total <= CALL_MAX_TOTAL:
        no_call = f"{total} chromosome{'s' if total != 1 else ''} found"
    elif sex == "?":
        no_call = f"no X and no Y among {total} chromosomes"
    if no_call:
        text = None
        flags.append(Flag("no_call", f"no call: {no_call} (an ISCN call needs {CALL_MIN_TOTAL}-{CALL_MAX_TOTAL} "
                                     "chromosomes with an X or a Y); counts shown for review"))
    if total != 46:
        flags.append(Flag("total_not_46", f"{total} chromosomes counted, not 46"))
    extra = tuple(n for n in classes.AUTOSOMES if full[n] >= 3)
    if extra:
        flags.append(Flag("extra_copy", "three or more copies of " + ", ".join(f"{n} ({full[n]})" for n in extra),
                          extra))
    single = tuple(n for n in classes.AUTOSOMES if full[n] == 1)
    if single:
        flags.append(Flag("missing_copy", "a single copy of " + ", ".join(single), single))
    absent = tuple(n for n in classes.AUTOSOMES if full[n] == 0)
    if absent:
        flags.append(Flag("absent_class", "no copy of " + ", ".join(absent), absent))
    nx, ny = full["X"], full["Y"]
    if nx == 0 and ny == 0:
        flags.append(Flag("sex_unknown", "no X and no Y found: sex chromosomes unknown", ("X", "Y")))
    elif sex not in NORMAL_SEX:
        flags.append(Flag("sex_atypical", f"sex chromosomes {sex} (neither XX nor XY)", ("X", "Y")))
    if ny >= 1 and nx >= 2:
        flags.append(Flag("y_with_two_x", f"a Y with {nx} X ({sex})", ("X", "Y")))
    if ny >= 1 and nx == 0:
        flags.append(Flag("y_without_x", f"Y without any X ({sex}): an X missed or a mislabelled chromosome",
                          ("X", "Y")))
    if low:
        flags.append(Flag("low_confidence", f"{len(low)} chromosome(s) with a score below {low_score:g}",
                          tuple(sorted({boxes[i].name for i in low}, key=classes.LABEL_OF.get))))
    if mean_score is not None and mean_score < low_mean_score:
        flags.append(Flag("low_mean_confidence", f"mean score {mean_score:.2f} below {low_mean_score:g}"))
    overlaps = duplicate_pairs(boxes, overlap_iou)
    if overlaps:
        names = tuple(sorted({boxes[k].name for i, j, _ in overlaps for k in (i, j)}, key=classes.LABEL_OF.get))
        flags.append(Flag("overlapping_boxes", f"{len(overlaps)} pair(s) of boxes overlap with IoU >= {overlap_iou:g}",
                          names))
    conflicts = [(d, k, v) for d, k, v in suppressed
                 if d.name != k.name and (d.score is None or d.score >= low_score)]
    if conflicts:
        flags.append(Flag("suppressed_other_class", "; ".join(
            f"a {d.name} ({d.score:.2f}) under a kept {k.name} ({k.score:.2f}), IoU {v:.2f}" if d.score is not None
            and k.score is not None else f"a {d.name} under a kept {k.name}, IoU {v:.2f}" for d, k, v in conflicts)
            + " was suppressed: one chromosome may be missing from the count",
            tuple(sorted({b.name for d, k, _ in conflicts for b in (d, k)}, key=classes.LABEL_OF.get))))
    return Call(total=total, counts=full, sex=sex, changes=changes, iscn=text, flags=review_first(flags),
                mean_score=mean_score,
                class_scores=class_scores, low_confidence=low, overlaps=overlaps, no_call=no_call)


def box_check_flags(checked: BoxCheck, names: Sequence[str]) -> list[Flag]:
    """Review flags of a :class:`karyotf.boxcheck.BoxCheck`: ``image_mismatch``, ``empty_box``, ``duplicate_box``;
    ``names``: the boxes' class names (for the messages)."""
    out = []
    if checked.mismatch:
        out.append(Flag("image_mismatch", f"the image does not match its boxes: {checked.mismatch}; the count "
                                          "is not a call of this image"))
    if checked.empty:
        listed = ", ".join(f"#{i} ({names[i]}, {100 * checked.foreground[i]:.0f}% dark)" for i in checked.empty[:12])
        more = f", ... ({len(checked.empty) - 12} more)" if len(checked.empty) > 12 else ""
        out.append(Flag("empty_box", f"{len(checked.empty)} box(es) with (almost) no chromosome pixels, counted "
                                     f"as chromosomes: {listed}{more}",
                        tuple(dict.fromkeys(names[i] for i in checked.empty))))
    if checked.duplicates:
        listed = ", ".join(f"#{i} ({names[i]}) and #{j} ({names[j]}), IoU {v:.2f}" for i, j, v in checked.duplicates)
        out.append(Flag("duplicate_box", f"{len(checked.duplicates)} pair(s) of near-identical boxes (IoU >= "
                                         f"{DUPLICATE_IOU:g}), each counted: one chromosome counted twice? "
                                         f"{listed}",
                        tuple(dict.fromkeys(names[k] for i, j, _ in checked.duplicates for k in (i, j)))))
    return out


def check_call(call: Call, image, boxes: Sequence[Box]) -> BoxCheck:
    """Check ``boxes`` in ``image`` (:func:`karyotf.boxcheck.check_boxes`) and put the result on ``call`` (the
    :class:`Call` of those boxes): its ``box_check``, the flags, and no call when the image does not match its
    boxes.  The karyogram and the review app both call this (one rule)."""
    checked = check_boxes(image, boxes)
    call.box_check = checked
    call.add_flags(box_check_flags(checked, [b.name for b in boxes]))
    if checked.mismatch and call.iscn is not None:
        call.iscn, call.no_call = None, f"the image does not match its boxes ({checked.mismatch})"
    return checked
