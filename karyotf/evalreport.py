"""The evaluation's core and its report: the OD API's COCO metrics and the thesis metrics from the same detections.

:func:`evaluate_detections` (truth and detections of one split, e.g. from :func:`karyotf.evaluate.evaluate`):

- COCO detection metrics by the OD API's own ``CocoDetectionEvaluator`` (:func:`karyotf.odapi.coco_metrics`):
  mAP@0.5 and mAP@[.5:.95] (all detections, any score);
- the thesis metrics (:mod:`karyotf.metrics`, matching defined there): precision, recall and F1 per class and
  overall at IoU 0.5 and a score threshold (0.5), chromosomes found per image against the truth and against 46,
  a 24 x 24 confusion matrix with missed / spurious, and precision-recall curves with karyotf's own AP@0.5 (a
  cross-check of COCO's: same matching, same 101-point interpolation).

:func:`write_report` writes to ``out_dir`` (:data:`FILES`): ``metrics.json``, ``table.md`` (the thesis's Table 5.1
shape: model, batch, steps, recall, precision, F1, plus mAP@0.5 and mAP@[.5:.95]), ``pr_curve.png``,
``confusion_matrix.png``, ``per_class.png``, ``found_per_image.png``.  ``table_markdown(reports)`` puts several
models in one table.
"""
from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from . import metrics as M, plots as P
from .annotations import Annotation, Box
from .errors import EvaluateError
from .io import atomic_write_json, atomic_write_text

# Imports inside functions, and why: karyotf.odapi (importing it loads TensorFlow and applies the OD API's
# compatibility shims: only where TensorFlow is about to run).

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
