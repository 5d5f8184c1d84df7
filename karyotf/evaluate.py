"""Evaluate a trained model: the OD API's COCO metrics and the thesis metrics from the same detections.

``evaluate(model, records_dir, split="test")`` runs :class:`karyotf.detect.Detector` over one split of the
records (``karyotf.records.read_examples``) and hands the detections to :func:`evaluate_detections`, the core:

- COCO detection metrics by the OD API's own ``CocoDetectionEvaluator`` (:func:`karyotf.odapi.coco_metrics`):
  mAP@0.5 and mAP@[.5:.95] (all detections, any score);
- the thesis metrics (:mod:`karyotf.metrics`, matching defined there): precision, recall and F1 per class and
  overall at IoU 0.5 and a score threshold (0.5), chromosomes found per image against the truth and against 46,
  a 24 x 24 confusion matrix with missed / spurious, and precision-recall curves with karyotf's own AP@0.5 (a
  cross-check of COCO's: same matching, same 101-point interpolation).

Written to ``out_dir`` (default ``MODEL/eval/``, ``eval-SPLIT/`` for other splits than test): ``metrics.json``,
``table.md`` (the thesis's Table 5.1 shape: model, batch, steps, recall, precision, F1, plus mAP@0.5 and
mAP@[.5:.95]), ``pr_curve.png``, ``confusion_matrix.png``, ``per_class.png``, ``found_per_image.png``.
``table_markdown(reports)`` puts several models in one table.
"""
from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from . import classes, images, rundir
from .defaults import NMS_IOU
from . import metrics as M
from .annotations import Annotation, Box
from .errors import EvaluateError
from .export import resolve_export
from .find import ChromosomeFinder, sift
from .io import atomic_write_json, atomic_write_text
from .rundir import model_info, model_records

log = logging.getLogger(__name__)

MAP50_KEY = "DetectionBoxes_Precision/mAP@.50IOU"
MAP_KEY = "DetectionBoxes_Precision/mAP"
FILES = {"metrics": "metrics.json", "table": "table.md", "pr_curve": "pr_curve.png",
         "confusion_matrix": "confusion_matrix.png", "per_class": "per_class.png",
         "found_per_image": "found_per_image.png"}
"""What an evaluation writes, by key."""


@dataclass
class EvalReport:
    """One model evaluated on one split: the metrics and where they were written."""

    model: str
    metrics: M.DetectionMetrics
    coco: dict[str, float] | None = None
    split: str = ""
    images: int = 0
    batch: int | None = None
    steps: int | None = None
    source: str | None = None
    """The model or export directory evaluated."""
    records_dir: str | None = None
    seconds_per_image: float | None = None
    out_dir: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def precision(self) -> float | None:
        return self.metrics.thesis.precision

    @property
    def recall(self) -> float | None:
        return self.metrics.thesis.recall

    @property
    def f1(self) -> float | None:
        return self.metrics.thesis.f1

    @property
    def map50(self) -> float | None:
        """COCO mAP@0.5 from the OD API (``None`` if COCO was not run)."""
        return None if not self.coco else self.coco.get(MAP50_KEY)

    @property
    def map(self) -> float | None:
        """COCO mAP@[.5:.95] from the OD API."""
        return None if not self.coco else self.coco.get(MAP_KEY)

    @property
    def own_map50(self) -> float | None:
        """karyotf's own mAP at the report's IoU (0.5), from :class:`karyotf.metrics.PRCurves`."""
        return self.metrics.pr.mean_ap

    def to_dict(self) -> dict:
        d = {
            "model": self.model, "source": self.source, "records_dir": self.records_dir, "split": self.split,
            "images": self.images, "batch": self.batch, "steps": self.steps,
            "iou": self.metrics.iou, "score_threshold": self.metrics.score_threshold,
            "summary": {"precision": self.precision, "recall": self.recall, "f1": self.f1,
                        "map50": self.map50, "map": self.map, "karyotf_map50": self.own_map50,
                        **{k: v for k, v in self.metrics.found.summary().items()
                           if k in ("cells_all_found", "cells_all_correct", "found_share")}},
            "coco": self.coco,
            "seconds_per_image": self.seconds_per_image,
            **self.metrics.to_dict(),
            "files": {k: str(v) for k, v in self.files.items()},
        }
        return _plain(d)


def _plain(obj):
    """JSON-safe: numpy scalars to Python, NaN to None."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def _fmt(v: float | None, digits: int = 3) -> str:
    return "-" if v is None or (isinstance(v, float) and (not np.isfinite(v) or v < 0)) else f"{v:.{digits}f}"


def table_markdown(reports: Sequence[EvalReport]) -> str:
    """The thesis Table 5.1 shape (model, batch size, steps, recall, precision, F1) plus mAP@0.5 and mAP@[.5:.95].

    Recall, precision and F1 are the overall (micro) values at each report's IoU and score threshold; the mAPs are
    the OD API's COCO numbers.  One row per report, in the order given.
    """
    lines = ["| Model | Batch size | Steps | Recall | Precision | F1 | mAP@0.5 | mAP@[.5:.95] |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in reports:
        lines.append(f"| {r.model} | {r.batch if r.batch is not None else '-'} | "
                     f"{r.steps if r.steps is not None else '-'} | {_fmt(r.recall)} | {_fmt(r.precision)} | "
                     f"{_fmt(r.f1)} | {_fmt(r.map50)} | {_fmt(r.map)} |")
    return "\n".join(lines) + "\n"


def report_markdown(report: EvalReport) -> str:
    """``table.md``: the one-row table, its conditions, and the counts behind it."""
    m = report.metrics
    s = m.found.summary()
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    out = io.StringIO()
    out.write(f"# Evaluation: {report.model}\n\n")
    out.write(table_markdown([report]))
    out.write(f"\n{report.images} images of split `{report.split or '-'}`"
              + (f" from `{report.records_dir}`" if report.records_dir else "")
              + f"; recall, precision and F1 at IoU {m.iou:g} and score >= {m.score_threshold:g} (micro average over"
              f" all chromosomes); mAP from the OD API's COCO evaluator over all detections.\n\n")
    o = m.thesis.overall
    macro = m.thesis.macro
    out.write(f"- true positives {o.tp}, false positives {o.fp}, false negatives {o.fn}; "
              f"macro average over classes: recall {_fmt(macro['recall'])}, precision {_fmt(macro['precision'])}, "
              f"F1 {_fmt(macro['f1'])}\n")
    out.write(f"- karyotf's own mAP@{m.iou:g} (COCO interpolation, cross-check): {_fmt(report.own_map50)}\n")
    out.write(f"- chromosomes per image: truth {_fmt(s['truth_mean'], 1)}, detected {_fmt(s['detected_mean'], 1)}, "
              f"found (any class) {_fmt(s['found_mean'], 1)}, correct class {_fmt(s['correct_mean'], 1)} "
              f"(expected {s['expected']})\n")
    out.write(f"- cells with every chromosome found: {pct(s['cells_all_found'])}; found and correctly classed with "
              f"nothing spurious: {pct(s['cells_all_correct'])}\n")
    cm = m.confusion
    out.write(f"- class-agnostic matches: {cm.correct} right class, {cm.misclassified} wrong class "
              f"({cm.misclassified_within_group} within the Denver group), "
              f"{sum(cm.missed.values())} missed, {sum(cm.spurious.values())} spurious\n")
    tops = cm.top_confusions(5)
    if tops:
        out.write("- most frequent confusions (true -> predicted): "
                  + ", ".join(f"{t} -> {p} ({n})" for t, p, n in tops) + "\n")
    if report.seconds_per_image is not None:
        out.write(f"- detection time: {1000 * report.seconds_per_image:.0f} ms per image (the first, warm-up, left out)\n")
    out.write("\n## Per class\n\n| Class | Truth | TP | FP | FN | Recall | Precision | F1 | AP@0.5 |\n"
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    for name, c in m.thesis.per_class.items():
        out.write(f"| {name} | {c.truth} | {c.tp} | {c.fp} | {c.fn} | {_fmt(c.recall)} | {_fmt(c.precision)} | "
                  f"{_fmt(c.f1)} | {_fmt(m.pr.per_class[name].ap)} |\n")
    return out.getvalue()


def write_report(report: EvalReport, out_dir: str | Path, plots: bool = True) -> dict[str, Path]:
    """Write ``metrics.json``, ``table.md`` and (``plots``) the four PNGs to ``out_dir``; return the paths."""
    from . import plots as P

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    m = report.metrics
    files = {k: out_dir / v for k, v in FILES.items()}
    if plots:
        title = f"{report.model}: "
        P.pr_curve(m.pr, files["pr_curve"], score_threshold=m.score_threshold,
                   title=title + f"precision-recall at IoU {m.iou:g}")
        P.confusion_matrix(m.confusion, files["confusion_matrix"],
                           title=title + f"confusion (IoU {m.iou:g}, score >= {m.score_threshold:g})")
        P.per_class(m.thesis, files["per_class"],
                    title=title + f"per-class P / R / F1 (IoU {m.iou:g}, score >= {m.score_threshold:g})")
        P.found_per_image(m.found, files["found_per_image"])
    else:
        for k in ("pr_curve", "confusion_matrix", "per_class", "found_per_image"):
            files.pop(k)
    report.out_dir = out_dir
    report.files = files
    atomic_write_text(files["table"], report_markdown(report))
    atomic_write_json(files["metrics"], report.to_dict())
    return files


def coco_of(truth: Sequence[Sequence[Box]], detections: Sequence[Sequence[Box]]) -> dict[str, float]:
    """The OD API's COCO metrics for karyotf boxes (every detection, whatever its score)."""
    from . import odapi

    gt = [(M.boxes_array(t), [b.label for b in t]) for t in truth]
    dt = [(M.boxes_array(d), [b.label for b in d], [M.score_of(b) for b in d]) for d in detections]
    return odapi.coco_metrics(gt, dt)


def evaluate_detections(truth: Sequence[Annotation], detections: Sequence[Sequence[Box]], *,
                        score_threshold: float = M.SCORE_THRESHOLD, iou: float = M.IOU, coco: bool = True,
                        model: str = "detections", split: str = "", batch: int | None = None,
                        steps: int | None = None, source: str | Path | None = None,
                        records_dir: str | Path | None = None, seconds_per_image: float | None = None,
                        out_dir: str | Path | None = None, plots: bool = True) -> EvalReport:
    """Evaluate precomputed detections (``detections[i]`` for image ``truth[i]``, pixel boxes with scores).

    ``coco``: also run the OD API's COCO evaluator (imports TensorFlow).  COCO mAP always counts every detection;
    the thesis metrics count those with ``score >= score_threshold``.  With ``out_dir`` the report is written there.
    """
    if len(truth) != len(detections):
        raise EvaluateError(f"{len(truth)} images of ground truth but {len(detections)} lists of detections "
                            "(fix: give one list of detections per image, empty if nothing was detected)")
    if not 0.0 < iou <= 1.0:
        raise EvaluateError(f"iou {iou}: must be in (0, 1] (fix: use 0.5, the thesis's)")
    if not 0.0 <= score_threshold <= 1.0:
        raise EvaluateError(f"score threshold {score_threshold}: must be in [0, 1] (fix: use 0.5, the default)")
    gt = [list(a.boxes) for a in truth]
    dets = [list(d) for d in detections]
    ids = [a.image_id for a in truth]
    metrics = M.compute_metrics(gt, dets, iou=iou, score_threshold=score_threshold, image_ids=ids)
    coco_result = coco_of(gt, dets) if coco else None
    report = EvalReport(model=model, metrics=metrics, coco=coco_result, split=split, images=len(truth),
                        batch=batch, steps=steps, source=None if source is None else str(source),
                        records_dir=None if records_dir is None else str(records_dir),
                        seconds_per_image=seconds_per_image)
    if coco_result is not None and iou == 0.5 and report.own_map50 is not None and report.map50 is not None:
        diff = abs(report.own_map50 - report.map50)
        if diff > 0.01:
            log.warning("karyotf's own mAP@0.5 %.4f differs from COCO's %.4f by %.4f", report.own_map50,
                        report.map50, diff)
    if out_dir is not None:
        write_report(report, out_dir, plots=plots)
    return report


# ---------------------------------------------------------------------------------------------- model path


def _mean_time(times: list[float]) -> float:
    """Mean detection time per image, leaving out the first call (graph tracing / warm-up) when there are more."""
    return float(np.mean(times[1:] if len(times) > 1 else times))


def _split_count(records_dir: str | Path, split: str) -> int | None:
    """Images in one split according to the records' manifest.json (``None`` when unknown)."""
    try:
        count = json.loads((Path(records_dir) / "manifest.json").read_text()).get("counts", {}).get(split)
    except (OSError, ValueError):
        return None
    return count if isinstance(count, int) else None


def check_records(records_dir: str | Path, split: str, origin: str = "") -> Path:
    """``records_dir`` if it holds shards of ``split``, else an :class:`EvaluateError` naming the path and the fix."""
    from .records import split_files

    records_dir = Path(records_dir)
    where = f" (from {origin})" if origin else ""
    if not records_dir.is_dir():
        raise EvaluateError(f"records folder {records_dir}{where} does not exist (fix: build it with `karyotf records "
                            f"SRC --out {records_dir}`, or pass --records DIR)")
    if not split_files(records_dir, split):
        have = [s for s in ("train", "val", "test") if split_files(records_dir, s)]
        raise EvaluateError(f"records folder {records_dir}{where} has no {split}.record-* shards (it has: "
                            f"{', '.join(have) or 'none'}) (fix: pick another --split, or rebuild the records)")
    return records_dir


def detect_examples(detector, examples, limit: int | None = None, total: int | None = None, desc: str = "detect",
                    ) -> tuple[list[Annotation], list[list[Box]], float]:
    """Run ``detector`` (a :class:`karyotf.find.ChromosomeFinder`: only its ``detect(image, min_score=)``) over
    ``examples`` (``(image bytes, Annotation)`` pairs, e.g. :func:`karyotf.records.read_examples`): the truth, the
    detections at every score, and detection seconds per image.  With :func:`evaluate_detections` this is the
    evaluation of a model object, as torchvision's ``engine.evaluate(model, loader)``; ``total`` only sizes the
    progress bar."""
    from tqdm import tqdm

    truth: list[Annotation] = []
    detections: list[list[Box]] = []
    times: list[float] = []
    for image_bytes, ann in tqdm(examples, desc=desc, unit="image", total=total):
        if limit is not None and len(truth) >= limit:
            break
        image = images.load(image_bytes)
        t0 = time.perf_counter()
        boxes = detector.detect(image, min_score=0.0)
        times.append(time.perf_counter() - t0)
        truth.append(ann)
        detections.append(boxes)
    return truth, detections, (_mean_time(times) if times else 0.0)


def _detect_split(model: Path, records_dir: str | Path | None, split: str, use: str = "auto",
                  limit: int | None = None, finder: ChromosomeFinder | None = None):
    """Run the model over one split: (truth, detections, seconds per image, model info, model name).

    ``records_dir`` None: the records the model was configured with.  ``finder``: the model object that finds
    (and names); None: the :class:`karyotf.detect.Detector` of the model's export (``use``)."""
    if not Path(model).is_dir():
        resolve_export(model)  # raises the missing-model error before any records error
    if records_dir is None:
        records_dir = check_records(model_records(model), split, f"{Path(model) / rundir.PIPELINE}")
    else:
        check_records(records_dir, split)
    export_dir = resolve_export(model)
    from .records import read_examples

    info = model_info(export_dir)
    info["records_dir"] = str(records_dir)
    if info["batch"] is None or info["steps"] is None:
        for k, v in model_info(model).items():
            if info.get(k) is None:
                info[k] = v
    if finder is None:
        from .detect import Detector

        finder = Detector(export_dir, use=use)
    if not finder.names:
        raise EvaluateError(f"{export_dir}: a class-agnostic detector (one class, '{classes.AGNOSTIC}') names no "
                            "chromosome, so the thesis metrics (per class) do not apply to it alone (fix: add "
                            "--classifier exported/classifier: the end-to-end metrics, and the class-agnostic "
                            "'found' counts of the model's boxes beside them)")
    total = _split_count(records_dir, split)
    if limit is not None:
        total = limit if total is None else min(limit, total)
    truth, detections, seconds = detect_examples(finder, read_examples(records_dir, split), limit=limit,
                                                 total=total, desc=f"eval {info['model']} on {split}")
    if not truth:
        raise EvaluateError(f"{records_dir}: split {split!r} has no images (fix: pick another --split, or rebuild "
                            "the records with a larger split fraction)")
    return truth, detections, seconds, info, finder.model_name or info["model"]


def detect_split(model: str | Path, records_dir: str | Path | None = None, split: str = "test", use: str = "auto",
                 limit: int | None = None, finder: ChromosomeFinder | None = None,
                 ) -> tuple[list[Annotation], list[list[Box]], float]:
    """The ground truth and the model's detections (all scores) on one split, and detection seconds per image
    (``finder``: as :func:`evaluate`)."""
    truth, detections, seconds, _, _ = _detect_split(Path(model), records_dir, split, use=use, limit=limit,
                                                     finder=finder)
    return truth, detections, seconds


def evaluate(model: str | Path, records_dir: str | Path | None = None, split: str = "test",
             score_threshold: float = M.SCORE_THRESHOLD, iou: float = M.IOU, out_dir: str | Path | None = None,
             use: str = "auto", limit: int | None = None, plots: bool = True,
             finder: ChromosomeFinder | None = None) -> EvalReport:
    """Evaluate a model dir (``runs/MODEL``) or an export dir on one split of the records; see the module docstring.

    ``records_dir`` None: the records the model was configured with (its pipeline.config).
    ``finder``: the model object that finds and names (a :class:`karyotf.find.ChromosomeFinder` the caller built,
    e.g. :func:`karyotf.classify.karyotyper.open_model` with a classifier: end-to-end metrics); None: the
    :class:`karyotf.detect.Detector` of the model's export.
    ``use``: the Detector's format (``saved_model`` | ``frozen_graph`` | ``auto``); ``limit``: the first N images only.
    ``out_dir`` defaults to ``MODEL/eval`` (``MODEL/eval-SPLIT`` for splits other than test).
    """
    model = Path(model)
    truth, detections, seconds_per_image, info, name = _detect_split(model, records_dir, split, use=use, limit=limit,
                                                                     finder=finder)
    if out_dir is None:
        out_dir = model / ("eval" if split == "test" else f"eval-{split}")
    return evaluate_detections(truth, detections, score_threshold=score_threshold, iou=iou, model=name,
                               split=split, batch=info["batch"], steps=info["steps"], source=model,
                               records_dir=info["records_dir"], seconds_per_image=seconds_per_image, out_dir=out_dir,
                               plots=plots)


# ------------------------------------------------------------------------------------ the karyogram's score floor

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
    from . import calibration
    from .detect import Detector
    from .records import read_examples

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
