"""Thesis Table 5.1 on real G-banded metaphases: train, evaluate and count-call every OD API model.

    .venv/bin/python bench/quality.py                       # the CPU budget: 12 min a row, ~2 h on 2 cores
    .venv/bin/python bench/quality.py --minutes 240 --max-steps 50000     # a GPU budget

For each data variant (``metaphase``: the CIL:54816 cells as photographed; ``karyogram``: the same cells laid
out as karyogram images by ``karyotf karyograms-dataset``, the thesis's own setting) it builds records with one
case-grouped split (seed 0; the karyogram images keep their cell's name, so both variants share the split),
then for each model (ssd, faster_rcnn, rfcn, yolo): ``karyotf config`` -> ``karyotf train`` for a wall-time budget
(a short calibration run measures seconds per step, the rest of the budget sets the step count) ->
``karyotf eval`` on the held-out test split, plus the count call of every test cell from the model's
detections, compared with the call from the cell's annotation and with ``karyotypes.csv``.  Once the calibration
has measured seconds per step, the step count that fits the budget becomes the schedule's length
(``pipelines.update_steps``): the warm-up is 5% of it and the cosine decay reaches 0 at its end.

Every model trains from scratch (no pretrained weights offline), so the defaults are from-scratch settings
(``--lr``, ``--batch``, ``--proposals``).  ``--baseline ssd`` adds, on the first variant, a row per named model
trained with its template exactly as shipped (tag ``template``): the before/after record of a template fix.
A row that fails is recorded with its error and the run goes on.

Writes ``bench/results/quality.md`` and ``quality.json``; work files (records, runs, exports) go to
``bench/work/`` (git-ignored) and are reused: rerunning resumes training where it stopped.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from flags import per_model

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MODELS = ("ssd", "faster_rcnn", "rfcn", "yolo")
VARIANTS = ("metaphase", "karyogram")


def build_variant_records(variant: str, data: Path, work: Path) -> Path:
    from karyotf.records import build_records

    out = work / "records" / variant
    if (out / "manifest.json").is_file():
        return out
    src = data
    if variant == "karyogram":
        from karyotf.karyogram import build_karyograms_dataset

        src = work / "karyograms"
        if not (src / "annotations").is_dir():
            build_karyograms_dataset(data, src)
    print(build_records(src, out, seed=0).text(), flush=True)
    return out


def count_call_agreement(truth, detections, karyotypes: Path, min_score: float) -> dict:
    """The model's count call per test cell against the call from its annotation and against karyotypes.csv."""
    from karyotf.karyogram import count_call
    from karyotf.karyogram.agreement import expectation, read_karyotypes

    listed = read_karyotypes(karyotypes) if karyotypes.is_file() else {}
    same_as_truth = matches_csv = 0
    cells = []
    for ann, dets in zip(truth, detections):
        model_call = count_call([d for d in dets if (d.score or 0) >= min_score])
        truth_call = count_call(ann.boxes)
        kind, expected, ok = expectation(listed.get(ann.image_id))
        same_as_truth += model_call.text == truth_call.text
        matches_csv += bool(ok(model_call))
        cells.append({"image": ann.image_id, "model": model_call.text, "annotation": truth_call.text,
                      "csv_kind": kind, "csv_expected": expected, "csv_agrees": bool(ok(model_call))})
    n = max(1, len(truth))
    return {"cells": len(truth), "same_as_annotation": same_as_truth / n, "agrees_with_csv": matches_csv / n,
            "min_score": min_score, "per_cell": cells}


def end_to_end(model_dir: Path, records: Path, classifier: Path, min_score: float | None, choose: bool = True,
               split: str = "test", second_look: Path | None = None):
    """The model finds, the classifier names (joint labelling), as ``karyotf karyogram --classifier`` does, on
    every cell of ``split`` (test): (truth, detections, seconds per cell, per-cell calls); ``min_score`` None: the
    karyogram's own floor (the calibration's candidate floor).  The detections are the boxes the
    karyogram counts (kept after the class-agnostic NMS, named jointly) plus those scoring below ``min_score``
    (named by top-1; below the metrics' threshold, they only feed the PR curve): NMS duplicates are left out.
    ``second_look``: an exported second look that decides with the classifier which candidates count."""
    from karyotf import images
    from karyotf.classify.evaluate import CELL_FLAGS
    from karyotf.classify.karyotyper import Karyotyper
    from karyotf.detect import Detector
    from karyotf.evaluate import resolve_export
    from karyotf.karyogram import count_call
    from karyotf.karyogram.defaults import NMS_IOU
    from karyotf.records import read_examples

    k = Karyotyper(Detector(resolve_export(model_dir)), classifier, choose=choose, second_look=second_look)
    truth, detections, cells, times = [], [], [], []
    for data, ann in read_examples(records, split):
        image = images.load(data)
        t0 = time.perf_counter()
        cell = k.karyotype(image, min_score, NMS_IOU)
        times.append(time.perf_counter() - t0)
        got = count_call(cell.boxes, suppressed=cell.suppressed)
        want = count_call(ann.boxes)
        flags = got.flag_codes + [f.code for f in cell.flags if f.code in CELL_FLAGS]
        got.add_flags(cell.flags)
        truth.append(ann)
        detections.append(cell.boxes + cell.below)
        cells.append(cell_row(ann.image_id, got, want, flags, len(cell.boxes), len(ann.boxes)))
    return truth, detections, sum(times) / max(1, len(times)), cells


def cell_row(image: str, got, want, flags: list[str], counted: int, truth: int) -> dict:
    """One cell of the end-to-end table: its call against the annotation's, its flags (``flags``: the codes that
    count as flagged, as before issue 23; ``review``: the codes of the review level, issue 23)."""
    return {"image": image, "call": got.text, "annotation": want.text, "normal": want.is_normal,
            "right": got.iscn is not None and got.iscn == want.iscn, "flagged": bool(flags), "flags": flags,
            "review": got.review_codes, "all_flags": got.flag_codes, "called_normal": got.is_normal,
            "counted": counted, "truth": truth,
            "review_classes": sorted({c for f in got.review_flags for c in f.classes}),
            "in_question": in_question(got, want)}


def in_question(got, want) -> list[str]:
    """The chromosomes a wrong count call gets wrong: the classes whose count differs between the call and the
    annotation's (the chromosome in question that a review flag must name, issue 23)."""
    from karyotf import classes

    return [n for n in classes.NAMES if got.counts.get(n, 0) != want.counts.get(n, 0)]


def named(c: dict) -> bool:
    """A cell's review flags name a chromosome its call gets wrong (rows made before this was kept: None)."""
    if "in_question" not in c:
        return None
    return bool(set(c["review_classes"]) & set(c["in_question"]))


def call_summary(cells: list[dict]) -> dict:
    def share(pick, what):
        sel = [c for c in cells if pick(c)]
        return None if not sel else sum(bool(what(c)) for c in sel) / len(sel)

    return {"call_right": share(lambda c: True, lambda c: c["right"]),
            "call_right_normal": share(lambda c: c["normal"], lambda c: c["right"]),
            "call_right_abnormal": share(lambda c: not c["normal"], lambda c: c["right"]),
            "flagged_normal": share(lambda c: c["normal"], lambda c: c["flagged"]),
            "abnormal_right_or_flagged": share(lambda c: not c["normal"], lambda c: c["right"] or c["flagged"]),
            "normal_cells": sum(c["normal"] for c in cells), "abnormal_cells": sum(not c["normal"] for c in cells),
            **({} if not cells or "review" not in cells[0] else {
                "normal_called_abnormal": share(lambda c: c["normal"], lambda c: not c["called_normal"]),
                "review_normal": share(lambda c: c["normal"], lambda c: c["review"]),
                "review_abnormal": share(lambda c: not c["normal"], lambda c: c["review"]),
                "abnormal_right_or_review": share(lambda c: not c["normal"], lambda c: c["right"] or c["review"]),
                **({} if "in_question" not in cells[0] else {
                    "abnormal_right_or_named": share(lambda c: not c["normal"], lambda c: c["right"] or named(c)),
                    "wrong_named": share(lambda c: not c["right"], named)}),
                "wrong_without_review": share(lambda c: True, lambda c: not c["right"] and not c["review"]),
                "flag_rates": flag_rates(cells)}),
            "count_error_mean": sum(abs(c["counted"] - c["truth"]) for c in cells) / max(1, len(cells)),
            "count_exact": share(lambda c: True, lambda c: c["counted"] == c["truth"])}


def flag_rates(cells: list[dict]) -> dict:
    """Each flag code's share of right and of wrong calls (every flag the karyogram shows, review and note)."""
    right = [c for c in cells if c["right"]]
    wrong = [c for c in cells if not c["right"]]
    codes = sorted({f for c in cells for f in c.get("all_flags", c["flags"])})
    rate = lambda sel, f: None if not sel else round(sum(f in c.get("all_flags", c["flags"]) for c in sel) / len(sel), 3)  # noqa: E731
    return {f: {"right": rate(right, f), "wrong": rate(wrong, f)} for f in codes}


def aneuploidy_table(rows: list[tuple[str, dict]]) -> list[str]:
    """The issue-23 rows of end-to-end summaries (``(row name, call_summary)``), each beside the others."""
    lines = ["| row | cells (normal / abnormal) | abnormal called right | normal called right | normal called "
             "abnormal | normal with a review flag | abnormal with a review flag | abnormal right or reviewed | "
             "abnormal right or a review flag naming the chromosome in question | wrong calls without a review flag "
             "|", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, e in rows:
        lines.append(f"| {name} | {e['normal_cells']} / {e['abnormal_cells']} | {_f(e['call_right_abnormal'], 2)} | "
                     f"{_f(e['call_right_normal'], 2)} | {_f(e.get('normal_called_abnormal'), 3)} | "
                     f"{_f(e.get('review_normal'), 2)} | {_f(e.get('review_abnormal'), 2)} | "
                     f"{_f(e.get('abnormal_right_or_review'), 2)} | {_f(e.get('abnormal_right_or_named'), 2)} | "
                     f"{_f(e.get('wrong_without_review'), 3)} |")
    return lines


def run_model(model: str, variant: str, records: Path, work: Path, args) -> dict:
    from karyotf import pipelines, train
    from karyotf.evaluate import detect_split, evaluate_detections

    model_dir = work / "runs" / variant / (model + (f"-{args.tag}" if args.tag else ""))
    overrides = {k: v for k, v in (("image_size", args.image_size.get(model)), ("batch", args.batch.get(model)),
                                   ("learning_rate", args.lr.get(model)), ("proposals", args.proposals.get(model)))
                 if v} if args.tag != "template" else {}
    yolo = model == "yolo"
    if yolo:  # KerasCV YOLOv8 (karyotf.yolo): its own config, the same train / eval calls
        from karyotf.yolo import config as yolo_config

        if args.agnostic:
            raise SystemExit("--agnostic is not available for yolo (its config has no one-class mode)")

        overrides.pop("proposals", None)
        if not (model_dir / "yolo.json").is_file():
            yolo_config.configure(records, model_dir, steps=args.max_steps, augment=args.augment or None,
                                  backbone=args.yolo_backbone, **overrides)
    elif not (model_dir / pipelines.PIPELINE_NAME).is_file():
        pipelines.configure(model, records, model_dir, steps=args.max_steps, augment=args.augment or None,
                            agnostic=args.agnostic, **overrides)
    t0 = time.time()
    cpu0 = time.process_time()
    note = None
    if args.eval_only:  # the model as it stands (an earlier run of this row trained it)
        latest = train.latest_checkpoint(model_dir)
        if latest is None:
            raise SystemExit(f"{model_dir}: --eval-only, but nothing is trained there yet")
        here = (model_dir / "eval").resolve()  # a row's dir may be a symlink to another row's (the same model,
        old = next((r for r in _saved_rows(args)  # counted another way): its training numbers are that row's
                    if r.get("eval_dir") and Path(r["eval_dir"]).resolve() == here and "failed" not in r), {})
        result = argparse.Namespace(final_step=latest[1], losses={"Loss/total_loss": old.get("final_loss")},
                                    peak_rss_mb=old.get("peak_rss_mb") or 0.0)
        sps, first_loss = old.get("seconds_per_step"), old.get("calibration_loss")
        train_minutes, cpu_minutes = old.get("train_minutes", 0.0), old.get("train_cpu_minutes")
        note = old.get("note")
    else:
        result, sps, first_loss, train_minutes, cpu_minutes = _train_for_budget(model_dir, args, t0, cpu0)
    if yolo:
        ycfg = yolo_config.read(model_dir)
        image_size, lr, batch = ycfg["image_size"], ycfg["learning_rate"], ycfg["batch"]
    else:
        cfg = pipelines.read_config(model_dir / pipelines.PIPELINE_NAME)
        image_size, lr, batch = pipelines.image_size(cfg), pipelines.learning_rate(cfg), cfg.train_config.batch_size
    t1 = time.time()
    e2e = None
    if args.classifier:
        floor = args.score_threshold
        tuning = None
        if args.tune_min_score:  # the score floor chosen on val, as `karyotf eval --tune-min-score` does
            from karyotf.scorefloor import tune_min_score

            tuned = tune_min_score(model_dir, records, split="val")
            floor, tuning = tuned.min_score, tuned.to_dict()
            if args.count == "joint" and tuned.calibration is not None:  # the candidates' floor
                floor = tuned.calibration.floor
                tuning["calibration"] = tuned.calibration.to_dict()
            print(tuned.text(), flush=True)
        truth, detections, seconds_per_image, cells = end_to_end(model_dir, records, args.classifier, floor,
                                                                 choose=args.count == "joint")
        e2e = {"classifier": str(args.classifier), "min_score": floor, "min_score_tuning": tuning,
               "count": args.count, **call_summary(cells), "cells": cells}
    else:
        truth, detections, seconds_per_image = detect_split(model_dir, records, "test")
    report = evaluate_detections(truth, detections, score_threshold=e2e["min_score"] if e2e else args.score_threshold,
                                 model=model, split="test",
                                 batch=batch,
                                 steps=result.final_step, source=model_dir, records_dir=records,
                                 seconds_per_image=seconds_per_image, out_dir=model_dir / "eval")
    found = report.metrics.found.summary()
    calls = count_call_agreement(truth, detections, args.data / "karyotypes.csv", args.score_threshold)
    row = {
        "variant": variant, "model": model, "tag": args.tag, "backbone": ycfg["backbone"] if yolo else None,
        "image_size": image_size, "learning_rate": lr,
        "batch": report.batch, "steps": result.final_step,
        "train_minutes": round(train_minutes, 1), "seconds_per_step": sps,
        "calibration_loss": first_loss, "final_loss": result.losses.get("Loss/total_loss"),
        "proposals": None if yolo else _proposals(cfg), "loss_components": loss_components(model_dir),
        "peak_rss_mb": round(result.peak_rss_mb), "load_average": os.getloadavg(),
        "recall": report.recall, "precision": report.precision, "f1": report.f1,
        "map50": report.map50, "map": report.map,
        "found_per_cell": found.get("found_mean"), "correct_per_cell": found.get("correct_mean"),
        "truth_per_cell": found.get("truth_mean"),
        "cells_all_correct": found.get("cells_all_correct"), "count_call": calls,
        "eval_minutes": round((time.time() - t1) / 60, 1), "test_cells": len(truth),
        "eval_dir": str(model_dir / "eval"), "agnostic": bool(args.agnostic),
        "train_cpu_minutes": None if cpu_minutes is None else round(cpu_minutes, 1), "budget": {"minutes": args.minutes, "max_steps": args.max_steps},
        "argv": sys.argv[1:],
    }
    if args.eval_only and note:
        row["note"] = note
    if e2e is not None:
        # class-agnostic: every counted box that lies on a chromosome, whatever its name
        found_total = sum(i.found for i in report.metrics.found.images)
        det_total = sum(i.detected for i in report.metrics.found.images)
        truth_total = sum(i.truth for i in report.metrics.found.images)
        p_, r_ = found_total / max(1, det_total), found_total / max(1, truth_total)
        row["end_to_end"] = {**e2e, "agnostic_precision": p_, "agnostic_recall": r_,
                             "agnostic_f1": 2 * p_ * r_ / max(1e-9, p_ + r_)}
        row["count_call"]["same_as_annotation"] = e2e["call_right"]
    print(json.dumps({k: v for k, v in row.items() if k != "count_call"}, default=str), flush=True)
    return row


def _train_for_budget(model_dir: Path, args, t0: float, cpu0: float):
    """Calibrate seconds per step, then train the steps that fit the budget (see the module doc)."""
    from karyotf import pipelines, train

    calib = train.train(model_dir, steps=args.calibration_steps, progress=False)
    sps = calib.seconds_per_step
    first_loss = calib.losses.get("Loss/total_loss") if calib.steps_run else None
    budget = args.minutes * 60 - (time.time() - t0)
    latest = train.latest_checkpoint(model_dir)
    done = latest[1] if latest else 0
    steps = done if not sps else min(args.max_steps, max(done, done + int(budget / sps)))
    if (model_dir / "yolo.json").is_file():  # karyotf.yolo keeps its steps in yolo.json
        from karyotf.yolo.config import update_steps
    else:
        update_steps = pipelines.update_steps
    update_steps(model_dir, steps)  # the warm-up and the cosine decay fit the steps that fit the budget
    result = train.train(model_dir, steps=steps, progress=True)
    cpu_minutes = (time.process_time() - cpu0) / 60 / (os.cpu_count() or 1)
    return result, sps, first_loss, (time.time() - t0) / 60, cpu_minutes


def _saved_rows(args) -> list[dict]:
    path = args.out.with_suffix(".json")
    return json.loads(path.read_text()).get("rows", []) if path.is_file() else []


def loss_components(model_dir: Path) -> dict:
    """Each logged loss (TensorBoard events of the run): mean of the first and of the last 10% of logged steps.
    TF2 runs log every component each step; the TF1 estimator logs the total only, every 100 steps."""
    import glob

    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    series: dict[str, list] = {}
    for f in sorted(glob.glob(str(model_dir / "**" / "events.out.tfevents*"), recursive=True)):
        for rec in tf.data.TFRecordDataset(f):
            event = event_pb2.Event.FromString(rec.numpy())
            for v in event.summary.value:
                if "loss" not in v.tag.lower():
                    continue
                if v.HasField("simple_value"):
                    x = v.simple_value
                elif v.HasField("tensor"):
                    x = float(tf.make_ndarray(v.tensor))
                else:
                    continue
                series.setdefault(v.tag, []).append((event.step, x))
    out, seen = {}, set()
    for tag, s in sorted(series.items()):
        s.sort()
        if tuple(s) in seen:  # the TF1 estimator writes its loss under two tags (loss_1, loss_2)
            continue
        seen.add(tuple(s))
        k = max(1, len(s) // 10)
        out[tag] = {"logged": len(s), "first": sum(x for _, x in s[:k]) / k, "last": sum(x for _, x in s[-k:]) / k}
    return out


def loss_series(model_dir: Path, tags=("Loss/total_loss", "Loss/box_loss", "Loss/class_loss"),
                running_means: bool = False) -> dict:
    """``{tag: [(step, value), ...]}`` from a run's TensorBoard events (``model_dir/train``).

    ``running_means``: the events hold Keras' running mean over each ``train()`` call (one events file each), as
    the first yolo loop logged them; the step values are recovered as ``k m_k - (k-1) m_(k-1)``."""
    import glob

    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    series: dict[str, list] = {t: [] for t in tags}
    for f in sorted(glob.glob(str(model_dir / "train" / "events.out.tfevents*"))):
        one: dict[str, list] = {t: [] for t in tags}
        for rec in tf.data.TFRecordDataset(f):
            event = event_pb2.Event.FromString(rec.numpy())
            for v in event.summary.value:
                if v.tag in one:
                    x = v.simple_value if v.HasField("simple_value") else float(tf.make_ndarray(v.tensor))
                    one[v.tag].append((event.step, x))
        for t, s in one.items():
            s.sort()
            if running_means:
                s = [(step, k * m - (k - 1) * s[k - 2][1] if k > 1 else m) for k, (step, m) in enumerate(s, 1)]
            series[t] += s
    return {t: sorted(s) for t, s in series.items() if s}


def fix_running_mean_row(row: dict) -> None:
    """A yolo row trained by the first loop (losses logged as running means, ``running_mean_losses``): its
    calibration / final losses and loss components from the per-step values recovered from the events."""
    if not row.get("running_mean_losses") or row.get("losses_recovered"):
        return
    series = loss_series(Path(row["eval_dir"]).parent, running_means=True)
    total = series.get("Loss/total_loss", [])
    calib = [x for step, x in total if step <= 6]
    row["calibration_loss"] = calib[-1] if calib else row.get("calibration_loss")
    row["final_loss"] = total[-1][1] if total else row.get("final_loss")
    comps = {}
    for tag, s in series.items():
        k = max(1, len(s) // 10)
        comps[tag] = {"logged": len(s), "first": sum(x for _, x in s[:k]) / k, "last": sum(x for _, x in s[-k:]) / k}
    row["loss_components"] = comps
    row["losses_recovered"] = True


def plot_loss_curve(row: dict, out: Path) -> Path | None:
    """The yolo row's training loss per step (total, box, class; and a 20-step running mean) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model_dir = Path(row.get("eval_dir", "")).parent
    series = loss_series(model_dir, running_means=bool(row.get("running_mean_losses")))
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for tag, s in series.items():
        steps, values = zip(*s)
        k = 20
        mean = [sum(values[max(0, i - k + 1):i + 1]) / len(values[max(0, i - k + 1):i + 1]) for i in range(len(values))]
        line, = ax.plot(steps, values, alpha=0.25)
        ax.plot(steps, mean, color=line.get_color(), label=f"{tag.split('/')[-1]} (20-step mean)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (KerasCV YOLOv8, weighted)")
    ax.set_yscale("log")
    ax.set_title(f"yolo-{row.get('backbone')} from scratch, {row['variant']}: {row['steps']} steps, "
                 f"{row['image_size']} px, batch {row['batch']}")
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _proposals(cfg):
    from karyotf import pipelines

    return cfg.model.faster_rcnn.first_stage_max_proposals if pipelines.meta_arch(cfg) == "faster_rcnn" else None


def _yolo_curves(rows: list[dict], results: Path) -> None:
    for r in rows:
        if r["model"] == "yolo" and not r.get("failed") and r.get("eval_dir"):
            fix_running_mean_row(r)
            png = plot_loss_curve(r, results / f"yolo_loss_{r['variant']}.png")
            if png is not None:
                r["loss_curve"] = png.name


def failed_row(model: str, variant: str, tag: str, error: BaseException) -> dict:
    return {"variant": variant, "model": model, "tag": tag, "failed": f"{type(error).__name__}: {error}"}


def _name(r: dict) -> str:
    """The model column: yolo with its backbone size (yolo-n), and the tag."""
    return (r["model"] + (f"-{r['backbone']}" if r.get("backbone") else "")
            + (f" ({r['tag']})" if r.get("tag") else ""))


def _g(v):
    return "-" if v is None else f"{v:.3g}"


def _f(v, d=3):
    return "-" if v is None else f"{v:.{d}f}"


def _correct_per_cell(row: dict):
    """Chromosomes found with the right class per cell (rows written before this column: from their eval_dir)."""
    if row.get("correct_per_cell") is not None:
        return row["correct_per_cell"]
    metrics = Path(row.get("eval_dir", "")) / "metrics.json"
    if metrics.is_file():
        return json.loads(metrics.read_text())["found_per_image"]["summary"].get("correct_mean")
    return None


def markdown(rows: list[dict], meta: dict) -> str:
    data = Path(meta["data"])
    lines = [
        "# Thesis Table 5.1, measured on real G-banded metaphases (CIL:54816)", "",
        f"Produced by `bench/quality.py` ({' '.join(meta.get('argv') or []) or 'defaults'})"
        + (f", started {meta['started']}" if meta.get("started") else "")
        + f", on {os.cpu_count()} CPU cores, no GPU. Data: `{data.name}` ({data}), one "
        "case-grouped split (seed 0, 80/10/10 by case); every row is evaluated on the same 60 held-out test cells "
        "(as photographed, or as karyogram images of the same cells). Budget per row: "
        f"{meta['minutes']:g} min of training wall time (steps = what fit), from scratch (no pretrained weights "
        f"offline). Thesis metrics at IoU 0.5 and score >= {meta['score_threshold']:g}; mAP from the OD API's "
        "COCO evaluator. 'found' = located at IoU 0.5 whatever the class; 'classed' = located with the right "
        "class.", "",
        "| data | model | image px | lr | batch | steps | train min | recall | precision | F1 | mAP@0.5 | mAP@[.5:.95] | "
        "found / classed / truth per cell | cells all 46 found + classed | count call = annotation's | count call "
        "agrees with karyotypes.csv |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.get("failed"):
            lines.append(f"| {r['variant']} | {_name(r)} | failed: "
                         f"{r['failed'][:200]} |" + " |" * 13)
            continue
        c = r["count_call"]
        lines.append(
            f"| {r['variant']} | {_name(r)} | "
            f"{r.get('image_size', '-')} | {_g(r.get('learning_rate'))} | {r['batch']} | {r['steps']} | {r['train_minutes']} | "
            f"{_f(r['recall'])} | {_f(r['precision'])} | {_f(r['f1'])} | {_f(r['map50'])} | {_f(r['map'])} | "
            f"{_f(r['found_per_cell'], 1)} / {_f(_correct_per_cell(r), 1)} / {_f(r['truth_per_cell'], 1)} | "
            f"{_f(r['cells_all_correct'], 2)} | "
            f"{_f(c['same_as_annotation'], 2)} | {_f(c['agrees_with_csv'], 2)} |")
    e2e = [r for r in rows if r.get("end_to_end")]
    if e2e:
        lines += [
            "", "End to end: the detector finds, the chromosome classifier names (joint labelling), as `karyotf "
            "karyogram --model ... --classifier ...` does; the boxes the karyogram counts (after its class-agnostic "
            "NMS) are scored. Class-agnostic: counted boxes on a chromosome, whatever their name. Count call: the "
            "cell's ISCN call equal to its annotation's, on normal and on numerically abnormal cells apart (an "
            "always-46 caller must not look good); flagged: any review flag of the call or of the joint labelling. "
            "CPU min: the training processes' CPU time over the cores. Counted: `floor`, every box above the score "
            "floor (chosen on val); `joint`, the joint labelling chooses among the boxes above the candidate floor "
            "which count, from each box's P(chromosome | score) calibrated on val, the classifier and the karyotype "
            "prior (`karyotf.calibration`, `joint_labels(real=)`).", "",
            "| data | model | detector train min (CPU) | classifier | counted | score floor | F1 | class-agnostic P / R / F1 | counted - truth "
            "per cell (mean abs) | count exact | call right: normal / abnormal | call right, all cells | normal "
            "flagged | abnormal right or flagged |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in e2e:
            e = r["end_to_end"]
            lines.append(
                f"| {r['variant']} | {r['model']}{' (' + r['tag'] + ')' if r.get('tag') else ''} | "
                f"{r['train_minutes']} ({_g(r.get('train_cpu_minutes'))}) | `{Path(e['classifier']).name}` | "
                f"{e.get('count', 'floor')} | {_g(e.get('min_score'))}{' (val)' if e.get('min_score_tuning') else ''} | {_f(r['f1'])} | {_f(e['agnostic_precision'])} / {_f(e['agnostic_recall'])} / "
                f"{_f(e['agnostic_f1'])} | {_f(e['count_error_mean'], 2)} | {_f(e['count_exact'], 2)} | "
                f"{_f(e['call_right_normal'], 2)} / {_f(e['call_right_abnormal'], 2)} ({e['normal_cells']} / "
                f"{e['abnormal_cells']} cells) | {_f(e['call_right'], 2)} | {_f(e['flagged_normal'], 2)} | "
                f"{_f(e['abnormal_right_or_flagged'], 2)} |")
        levels = [(f"{r['variant']} {_name(r)}", r["end_to_end"]) for r in e2e if "review_normal" in r["end_to_end"]]
        if levels:
            lines += ["", "Aneuploidy and flag levels (issue 23): review flags say the call may be wrong "
                      "(`karyotf.karyogram.call.FLAG_LEVELS`); the same cells as the table above.", ""]
            lines += aneuploidy_table(levels)
    lines += [
        "", "Thesis (augmented karyograms, GPU, pretrained): YOLOv5 R 0.98 / P 0.83 / F1 0.89; R-FCN ResNet101 "
        "0.68 / 0.72 / 0.69; SSD MobileNet v2 0.60 / 0.69 / 0.64; Faster R-CNN Inception v2 0.66 / 0.59 / 0.62.",
        "", "Training loss (total, OD API) at the end of the calibration steps and at the last step:", "",
        "| data | model | s/step | loss after calibration | final loss | peak RSS MB | load average at the end (1/5/15 min) |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {r['variant']} | {_name(r)} | "
              f"{_f(r.get('seconds_per_step'), 2)} | {_f(r.get('calibration_loss'))} | {_f(r.get('final_loss'))} | "
              f"{r.get('peak_rss_mb') or '-'} | {' / '.join(f'{x:.1f}' for x in r['load_average']) if r.get('load_average') else '-'} |"
              for r in rows if not r.get("failed")]
    lines += ["", "Loss components (mean of the first and of the last 10% of logged steps; the TF1 estimator of "
              "faster_rcnn logs only its total, every 100 steps). An RPN objectness loss near ln 2 = 0.69 means the "
              "first stage cannot yet tell chromosome from background:", "",
              "| data | model | loss | logged steps | first | last |", "|---|---|---|---|---|---|"]
    for r in rows:
        for tag, c in (r.get("loss_components") or {}).items():
            if "regularization" in tag:
                continue
            lines.append(f"| {r['variant']} | {_name(r)} | {tag} | "
                         f"{c['logged']} | {c['first']:.3f} | {c['last']:.3f} |")
    notes = [r for r in rows if r.get("note")]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {r['variant']} {_name(r)}: {r['note']}" for r in notes]
    curves = [r for r in rows if r.get("loss_curve")]
    if curves:
        lines += ["", "yolo's training loss per step (TensorBoard events of the run): "
                  + ", ".join(f"[{r['variant']}]({r['loss_curve']})" for r in curves) + "."]
    lines += [
        "", "Seconds per step, proposals and the per-cell count calls are in `quality.json`; per-class metrics, PR "
        "curves and confusion matrices in each row's `eval_dir`.", ""]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "cil54816")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--minutes", type=float, default=12.0, help="training wall time per model and variant")
    p.add_argument("--max-steps", type=int, default=20000, help="upper bound on steps (the schedule's length)")
    p.add_argument("--calibration-steps", type=int, default=6)
    p.add_argument("--image-size", type=per_model(int), default="yolo=512",
                   help="per model, e.g. ssd=384,rfcn=384 (default: the template's)")
    p.add_argument("--batch", type=per_model(int), default="ssd=8,faster_rcnn=4,rfcn=4,yolo=8",
                   help="per model batch size")
    p.add_argument("--lr", type=per_model(float), default="ssd=0.04,faster_rcnn=0.004,rfcn=0.004,yolo=0.001",
                   help="per model learning rate (the templates' 0.0002 is a fine-tuning rate)")
    p.add_argument("--proposals", type=per_model(int), default="faster_rcnn=100,rfcn=100",
                   help="per two-stage model first-stage proposals (a cell has ~46 chromosomes)")
    p.add_argument("--yolo-backbone", default="n", choices=("n", "s", "m"),
                   help="yolo's backbone size (n: the size whose s/step at 512 px is ssd's on a CPU)")
    p.add_argument("--baseline", default="ssd",
                   help="models also trained, on the first variant, with their template as shipped (tag 'template')")
    p.add_argument("--augment", default="", help="training augmentation ops, e.g. hflip,vflip,rot90")
    p.add_argument("--tag", default="", help="label of this setting (rows are kept per data, model and tag)")
    p.add_argument("--score-threshold", type=float, default=0.3)
    p.add_argument("--agnostic", action="store_true",
                   help="train class-agnostic detectors (one class, `karyotf config --agnostic`); tag 'agnostic'")
    p.add_argument("--tune-min-score", action="store_true",
                   help="with --classifier: choose the karyogram's score floor on val (`karyotf eval "
                        "--tune-min-score`) instead of --score-threshold")
    p.add_argument("--count", choices=("joint", "floor"), default="joint",
                   help="with --classifier: which boxes count: 'joint' (a detector calibrated on val by "
                        "--tune-min-score: the joint labelling chooses among the boxes above the candidate floor) "
                        "or 'floor' (every box above the score floor)")
    p.add_argument("--eval-only", action="store_true",
                   help="evaluate the rows' models as they stand (trained by an earlier run), train nothing")
    p.add_argument("--classifier", type=Path, default=None,
                   help="an exported chromosome classifier (bench/classifier.py): evaluate end to end, the model "
                        "finds and the classifier names (tag '+classifier')")
    p.add_argument("--work", type=Path, default=REPO / "bench" / "work")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "quality.md")
    p.add_argument("--render-only", action="store_true", help="rewrite quality.md from quality.json, train nothing")
    args = p.parse_args()
    json_path = args.out.with_suffix(".json")
    if args.render_only:
        saved = json.loads(json_path.read_text())
        a = saved["args"]
        for r in saved["rows"]:
            if "loss_components" not in r and r.get("eval_dir"):
                r["loss_components"] = loss_components(Path(r["eval_dir"]).parent)
        json_path.write_text(json.dumps(saved, indent=1, default=str))
        meta = saved.get("meta") or {"data": a["data"], "minutes": a["minutes"], "score_threshold": a["score_threshold"]}
        _yolo_curves(saved["rows"], args.out.parent)
        args.out.write_text(markdown(saved["rows"], meta))
        print(args.out.read_text())
        return
    args.augment = [a for a in args.augment.split(",") if a]
    if not args.tag:
        args.tag = "+".join(t for t, on in (("agnostic", args.agnostic), ("classifier", args.classifier)) if on)
    meta = {"argv": sys.argv[1:], "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "data": str(args.data), "minutes": args.minutes, "score_threshold": args.score_threshold}
    saved = json.loads(json_path.read_text()) if json_path.is_file() else {}
    rows = saved.get("rows", [])
    if (args.agnostic or args.classifier) and saved:  # the header describes the detector-only rows; an end-to-end
        a = saved.get("args", {})                       # row carries its own budget
        meta = saved.get("meta") or {"data": a.get("data", str(args.data)), "minutes": a.get("minutes", 12.0),
                                     "score_threshold": a.get("score_threshold", 0.3)}
    variants = [v for v in args.variants.split(",") if v]
    jobs = [(v, m, args.tag) for v in variants for m in args.models.split(",") if m]
    baseline = [(variants[0], m, "template") for m in args.baseline.split(",") if m and variants]
    jobs = jobs[:len(jobs) // max(1, len(variants))] + baseline + jobs[len(jobs) // max(1, len(variants)):]
    records = {}
    for variant, model, tag in jobs:
        if variant not in records:
            records[variant] = build_variant_records(variant, args.data, args.work)
        job_args = argparse.Namespace(**{**vars(args), "tag": tag})
        try:
            row = run_model(model, variant, records[variant], args.work, job_args)
        except Exception as e:  # noqa: BLE001 - one failed row must not lose the others
            import traceback

            traceback.print_exc()
            row = failed_row(model, variant, tag, e)
        key = (variant, model, tag)
        rows = [r for r in rows if (r["variant"], r["model"], r.get("tag", "")) != key] + [row]
        rows.sort(key=lambda r: (VARIANTS.index(r["variant"]), MODELS.index(r["model"]), r.get("tag", "")))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({"meta": meta, "args": {k: (str(v) if isinstance(v, Path) else v)
                                                                for k, v in vars(args).items()}, "rows": rows},
                                        indent=1, default=str))
        _yolo_curves(rows, args.out.parent)
        args.out.write_text(markdown(rows, meta))
    print(args.out.read_text())


if __name__ == "__main__":
    main()
