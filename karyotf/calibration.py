"""How likely a detector's box is to be a chromosome, from its score: a calibration fitted on val.

A detector's score orders its boxes but is not a probability: on val of CIL:54816 a class-agnostic SSD's boxes
scoring 0.5 lay on a chromosome (IoU >= 0.5 with a truth box not already taken by a better box) about a third of
the time, those at 0.8 almost always.  :func:`fit` measures that on a split the detector did not train on
(:func:`karyotf.scorefloor.tune_min_score` calls it on val): the boxes the joint count would consider (kept by
the class-agnostic NMS at :data:`CANDIDATE_NMS_IOU`) are matched to the truth as the metrics do, and
P(chromosome | score) is the isotonic (non-decreasing) regression of "matched" on score, over quantile bins.  The joint labelling
(:func:`karyotf.classify.joint.joint_labels`, ``real=``) uses it to decide which boxes count.

Stored with the export (``karyotf.json`` ``chromosome_probability``); :func:`of` reads it back.  ``floor`` is the
lowest score whose P reaches :data:`CANDIDATE_P`: boxes below it are never counted (listed as below the floor).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

BINS = 30
"""Quantile bins of score the regression is fitted on (enough for a smooth curve from a few thousand boxes)."""
CANDIDATE_NMS_IOU = 0.5
"""The class-agnostic NMS the calibration is fitted at, and that the Karyotyper's candidates then go through (a
second box on one chromosome overlaps it by 0.5-0.7 more often than two chromosomes do: on val of CIL:54816, 39
of 2759 truth boxes overlap another by more than 0.5; the per-class counts of the joint labelling came out exact on
37 of 60 val cells at 0.5 against 35 at the karyogram's 0.7)."""
CANDIDATE_P = 0.05
"""A box whose P(chromosome) is below this is not a candidate for the count (it only feeds the listing)."""
KEY = "chromosome_probability"
"""The key in an export's ``karyotf.json``."""


def isotonic(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least-squares non-decreasing fit of ``y`` (pool adjacent violators)."""
    vals, wts, sizes = [], [], []
    for v, ww in zip(np.asarray(y, float), np.asarray(w, float)):
        vals.append(v)
        wts.append(ww)
        sizes.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            v2, w2, s2 = vals.pop(), wts.pop(), sizes.pop()
            tot = wts[-1] + w2
            vals[-1] = (vals[-1] * wts[-1] + v2 * w2) / tot if tot > 0 else vals[-1]
            wts[-1] = tot
            sizes[-1] += s2
    return np.repeat(vals, sizes)


@dataclass(frozen=True)
class ChromosomeProbability:
    """P(a box is a chromosome | its score), piecewise linear through ``scores`` / ``p`` (non-decreasing)."""

    scores: tuple[float, ...]
    p: tuple[float, ...]
    floor: float
    split: str = "val"
    boxes: int = 0
    cells: int = 0
    nms_iou: float | None = None

    def __call__(self, scores: Sequence[float]) -> np.ndarray:
        s = np.asarray(scores, dtype=float)
        return np.clip(np.interp(s, self.scores, self.p), 0.0, 1.0)

    def to_dict(self) -> dict:
        return {"scores": [round(x, 4) for x in self.scores], "p": [round(x, 4) for x in self.p],
                "floor": self.floor, "candidate_p": CANDIDATE_P, "split": self.split, "boxes": self.boxes,
                "cells": self.cells, "nms_iou": self.nms_iou,
                "criterion": "isotonic regression of 'matched to a truth box at IoU 0.5' on score, over quantile "
                             "bins of the boxes kept by the class-agnostic NMS"}

    @classmethod
    def from_dict(cls, d: dict) -> "ChromosomeProbability":
        scores, p = tuple(float(x) for x in d["scores"]), tuple(float(x) for x in d["p"])
        if len(scores) < 2 or len(scores) != len(p) or any(b < a for a, b in zip(scores, scores[1:])) \
                or any(b < a for a, b in zip(p, p[1:])) or not all(0 <= x <= 1 for x in p):
            raise ValueError(f"{KEY}: scores and p must be equally long (>= 2), non-decreasing, p in [0, 1] "
                             "(fix: rerun `karyotf eval --tune-min-score`)")
        return cls(scores, p, float(d["floor"]), d.get("split", "val"), int(d.get("boxes", 0)),
                   int(d.get("cells", 0)), d.get("nms_iou"))

    def text(self) -> str:
        at = ", ".join(f"{s:g}: {float(self([s])[0]):.2f}" for s in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9))
        return (f"P(chromosome | score) fitted on {self.boxes} boxes of {self.cells} {self.split} cells ({at}); "
                f"candidates from score {self.floor:g}")


def fit(scores: Sequence[float], matched: Sequence[bool], split: str = "val", cells: int = 0,
        nms_iou: float | None = None, bins: int = BINS) -> ChromosomeProbability:
    """Fit P(chromosome | score) from boxes' scores and whether each matched a truth box (see the module doc)."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(matched, dtype=float)
    if s.size < 2 or np.ptp(s) == 0:
        raise ValueError(f"{s.size} box(es) with {'one score' if s.size else 'no score'}: too few to calibrate "
                         "(fix: a val split with cells the detector finds chromosomes in)")
    order = np.argsort(s, kind="stable")
    s, y = s[order], y[order]
    groups = [g for g in np.array_split(np.arange(s.size), min(bins, s.size)) if g.size]
    xs = np.array([s[g].mean() for g in groups])
    ys = np.array([y[g].mean() for g in groups])
    ws = np.array([g.size for g in groups], dtype=float)
    fitted = isotonic(ys, ws)
    xs, keep = np.unique(xs, return_index=True)  # equal bin means (tied scores) would break interpolation
    fitted = fitted[keep]
    if xs.size < 2:
        xs, fitted = np.array([s[0], s[-1]]), np.array([fitted[0], fitted[-1]])
    ok = np.nonzero(fitted >= CANDIDATE_P)[0]
    floor = float(s[0]) if not ok.size else float(xs[ok[0]] if ok[0] > 0 else s[0])
    return ChromosomeProbability(tuple(float(x) for x in xs), tuple(float(x) for x in fitted), round(floor, 4),
                                 split, int(s.size), int(cells), nms_iou)


def of(info: dict) -> ChromosomeProbability | None:
    """The calibration stored with a detector's export (its ``karyotf.json`` ``info``: ``info[KEY]``), or None."""
    d = (info or {}).get(KEY)
    return None if not d else ChromosomeProbability.from_dict(d)
