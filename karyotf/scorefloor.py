"""The karyogram's score floor, chosen on a split the model did not train on (``karyotf eval --tune-min-score``).

For each floor in :data:`SCORE_GRID` the boxes a karyogram would count (:func:`karyotf.find.sift`: score >= floor,
then the class-agnostic NMS) are matched to the truth class-agnostically at IoU 0.5; the best F1 wins.  The same
boxes calibrate the detector's score as P(chromosome | score) (:mod:`karyotf.calibration`, beside this module).
Both are stored with the export (``karyotf.json``), where ``karyotf karyogram`` and the Karyotyper find them.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import calibration, images, rundir
from . import metrics as M
from .defaults import NMS_IOU
from .errors import EvaluateError
from .evaluate import check_records
from .export import resolve_export
from .find import sift
from .records import read_examples
from .rundir import model_records

# Imports inside functions, and why: karyotf.detect.Detector (looked up when a model is loaded, so that a caller may
# stand another Detector in karyotf.detect, as the tests do).

log = logging.getLogger(__name__)


SCORE_GRID = tuple(round(0.05 * k, 2) for k in range(1, 20))
"""Score floors :func:`tune_min_score` tries (0.05 .. 0.95)."""


@dataclass
class ScoreFloor:
    """The karyogram's score floor chosen on a split: ``min_score`` and, per floor tried, the class-agnostic
    precision / recall / F1 of the boxes a karyogram would count and their mean |counted - truth| per cell."""

    min_score: float
    split: str
    cells: int
    nms_iou: float
    table: list[dict]
    calibration: object = None
    """P(chromosome | score) on the same boxes (:class:`karyotf.calibration.ChromosomeProbability`), or None."""

    def to_dict(self) -> dict:
        return {"min_score": self.min_score, "split": self.split, "cells": self.cells, "nms_iou": self.nms_iou,
                "criterion": "class-agnostic F1 at IoU 0.5 of the counted boxes; ties: mean |counted - truth|",
                "table": self.table}

    def text(self) -> str:
        best = next(r for r in self.table if r["min_score"] == self.min_score)
        return (f"score floor {self.min_score:g} chosen on {self.cells} {self.split} cells: class-agnostic P "
                f"{best['precision']:.3f} / R {best['recall']:.3f} / F1 {best['f1']:.3f}, counted - truth "
                f"{best['count_error']:.2f} per cell (mean abs)"
                + (f"\n{self.calibration.text()}" if self.calibration is not None else ""))


def tune_min_score(model: str | Path, records_dir: str | Path | None = None, split: str = "val",
                   nms_iou: float | None = None, use: str = "auto", write: bool = True,
                   limit: int | None = None) -> ScoreFloor:
    """Choose the karyogram's score floor on a split the model did not train on (default val).

    For each floor in :data:`SCORE_GRID` the boxes a karyogram would count (score >= floor, then the class-agnostic
    NMS at ``nms_iou``) are matched to the truth class-agnostically at IoU 0.5; the floor with the best F1 wins
    (ties: the smaller mean |counted - truth| per cell, then the higher floor).  Classes play no part, so the
    choice serves a 24-class and a class-agnostic detector alike.  ``write``: store it in the export's
    ``karyotf.json`` (``min_score`` and ``min_score_tuning``), which ``karyotf karyogram`` and the
    :class:`~karyotf.classify.karyotyper.Karyotyper` use when no ``--min-score`` is given.

    The boxes above the lowest floor, after a class-agnostic NMS at
    :data:`karyotf.calibration.CANDIDATE_NMS_IOU`, calibrate the detector's score as P(chromosome | score)
    (:mod:`karyotf.calibration`), stored as ``chromosome_probability``: with it a
    :class:`~karyotf.classify.karyotyper.Karyotyper` lets the joint labelling decide which boxes count.
    """
    from .detect import Detector

    nms_iou = NMS_IOU if nms_iou is None else nms_iou
    export_dir = resolve_export(model)
    if records_dir is None:
        records_dir = check_records(model_records(model), split, f"{Path(model) / rundir.PIPELINE}")
    else:
        check_records(records_dir, split)
    detector = Detector(export_dir, use=use)
    per_floor = {t: {"found": 0, "counted": 0, "truth": 0, "error": 0} for t in SCORE_GRID}
    cells = 0
    scores, matched = [], []   # each candidate of the joint count, and whether it lay on a chromosome
    for data, ann in read_examples(records_dir, split):
        if limit is not None and cells >= limit:
            break
        boxes = detector.detect(images.load(data), min_score=min(SCORE_GRID))
        cells += 1
        for t in SCORE_GRID:
            kept = sift(boxes, t, nms_iou).boxes
            m = M.match_detections(ann.boxes, kept, min_score=-np.inf, class_aware=False)
            c = per_floor[t]
            c["found"] += len(m.tp)
            c["counted"] += len(kept)
            c["truth"] += len(ann.boxes)
            c["error"] += abs(len(kept) - len(ann.boxes))
        # the candidates of the joint count (every box above the lowest floor): NMS at the calibration's own IoU
        cands = sift(boxes, min(SCORE_GRID), calibration.CANDIDATE_NMS_IOU).boxes
        hit = {d for d, _ in M.match_detections(ann.boxes, cands, min_score=-np.inf, class_aware=False).tp}
        scores += [b.score if b.score is not None else 1.0 for b in cands]
        matched += [k in hit for k in range(len(cands))]
    if cells == 0:
        raise EvaluateError(f"{records_dir}: split {split!r} has no images to choose a score floor on (fix: rebuild "
                            "the records with a val fraction above 0, e.g. `karyotf records --split 0.8,0.1,0.1`)")
    table = []
    for t, c in per_floor.items():
        p = c["found"] / c["counted"] if c["counted"] else 0.0
        r = c["found"] / c["truth"] if c["truth"] else 0.0
        table.append({"min_score": t, "precision": round(p, 4), "recall": round(r, 4),
                      "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
                      "count_error": round(c["error"] / cells, 3), "counted_per_cell": round(c["counted"] / cells, 2)})
    best = max(table, key=lambda r: (r["f1"], -r["count_error"], r["min_score"]))
    try:
        cal = calibration.fit(scores, matched, split=split, cells=cells, nms_iou=calibration.CANDIDATE_NMS_IOU)
    except ValueError as exc:
        log.warning("%s: no score calibration: %s", export_dir, exc)
        cal = None
    floor = ScoreFloor(min_score=best["min_score"], split=split, cells=cells, nms_iou=nms_iou, table=table,
                       calibration=cal)
    if write:
        meta = rundir.read_info_or_empty(export_dir)
        meta["min_score"] = floor.min_score
        meta["min_score_tuning"] = floor.to_dict()
        meta.pop(calibration.KEY, None)
        if cal is not None:
            meta[calibration.KEY] = cal.to_dict()
        rundir.write_info(export_dir, meta, "export")
    return floor
