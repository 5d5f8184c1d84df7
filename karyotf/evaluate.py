"""Evaluate a trained model: run it over one split of the records and report on its detections.

``evaluate(model, records_dir, split="test")``: a model dir (``runs/MODEL``) is first exported from its latest
checkpoint (:func:`karyotf.export.resolve_export`); the model object (``finder``: what the caller built, by default
the export's :class:`karyotf.detect.Detector`) runs over one split of the records
(:func:`karyotf.records.read_examples`, :func:`detect_examples`), and :func:`karyotf.evalreport.evaluate_detections`
computes the OD API's COCO metrics and the thesis metrics from the same detections and writes them to ``out_dir``
(default ``MODEL/eval/``, ``eval-SPLIT/`` for other splits than test).  The report's names (:data:`FILES`,
:func:`table_markdown`, :class:`EvalReport`) are the stage's API here too.  Choosing the karyogram's score floor
(``karyotf eval --tune-min-score``) is :mod:`karyotf.scorefloor`'s.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import classes, images, rundir
from . import metrics as M
from .annotations import Annotation, Box
from .errors import EvaluateError
from .evalreport import (FILES, EvalReport, evaluate_detections, table_markdown,  # noqa: F401  (the stage's API)
                         write_report)
from .export import resolve_export
from .find import ChromosomeFinder
from .records import read_examples, split_files
from .rundir import model_info, model_records

# Imports inside functions, and why: karyotf.detect.Detector (looked up when a model is loaded, so that a caller may
# stand another Detector in karyotf.detect, as the tests do).


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
