"""The recipe of the model pair shipped with karyotf (``karyotf/data/models/default``), as one resumable script.

    python tools/cil54816_train.py SNAPSHOT_GIT_DIR /data/cil-train     # the 3,588 CIL:54816 training cells
    .venv/bin/python bench/default_model.py --cil-train /data/cil-train  # or: make default-model CIL_TRAIN=...

Every step is one of karyotf's own commands, run as a child process, and is skipped when its output is already
there (training resumes from its newest checkpoint), so the recipe can run in several sittings; the CPU time of
every sitting is added up in ``WORK/recipe.json``.

1. data: the training cells minus every case of the built-in sample (so the demo shows cells the model never saw),
   as symlinks in ``WORK/data``.  The dataset's official test split is never written by the extraction tool and
   never read here.
2. ``karyotf records`` (split by case, seed 0, 80/10/10): train for training, val for every choice (the score
   calibration, the classifier's best epoch), test for the bench rows.
3. ``karyotf config ssd --agnostic`` + ``karyotf train ssd`` + ``karyotf export``: the finder.
   A later sitting with more ``--steps`` trains on from the newest checkpoint and exports anew.
4. ``karyotf classifier train`` + ``export``: the namer.
5. ``karyotf eval ... --tune-min-score``: P(chromosome | score) fitted on val, stored with the detector's export.
6. ``karyotf second-look train`` + ``export``: P(whole single chromosome) of each candidate box of this detector,
   trained on the train cells' candidates (issue 23); the joint labelling weighs the boxes with it.
7. End-to-end rows on val and on test of the records (the model finds, the second look and the classifier weigh
   and name, the joint labelling counts, as ``karyotf karyogram`` does): ``bench/results/default_model.md`` / ``.json``.
8. ``--pack``: copy the three models into the package with the model card and sha256 manifest
   (:func:`karyotf.models.pack`).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RECIPE = {"model": "ssd", "agnostic": True, "image_size": 512, "batch": 8, "learning_rate": 0.04,
          "augment": "hflip,vflip,rot90", "steps": 3400, "classifier_epochs": 16, "classifier_width": 16,
          "classifier_size": 64, "classifier_input": "separated", "second_look_epochs": 6, "second_look_cells": 0, "seed": 0,
          "split": "0.8,0.1,0.1"}
"""The recipe.  Detector: the class-agnostic SSD MobileNet v2 template at 512 px, batch 8, peak learning rate 0.04
from scratch (measured in ``bench/results/quality.md``: from scratch 0.0002 learns nothing in a CPU budget, and the
agnostic detector + classifier beat the 24-class detector); steps: what one session's CPU allowed beside other
work, in sittings: the first was set to 2,800 and cut to 1,800 at step 700 (``pipelines.update_steps``) when the
machine slowed to 3.4 s a step; a later one resumed from step 1,800 to 3,400 (``--steps 3400``: the cosine schedule
is stretched to the new total, so the learning rate rose from ~0 back to 0.015 at step 1,800, a warm restart, and
decayed again).  The rows of the pair as first shipped (1,800 steps, no second look) are kept in
``default_model.json`` under ``previous`` and printed beside the new ones.  Classifier: the default network (16-128 filters, 64 px crops, cell context;
``bench/results/classifier.md`` row ``w16``), trained on the separated cut-outs the Karyotyper reads
(``classifier train --input separated``), 16 epochs: chosen on val's truth boxes over the first shipped one (6
epochs on box crops) and a 12-epoch run on box crops (``bench/results/classifier_default.md``).  Second look: the default network on the candidates of all the
train cells (``second_look_cells`` 0), trained anew for every detector checkpoint exported, its epoch chosen by
val log loss."""


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def karyotf(*args: str) -> None:
    cmd = [sys.executable, "-m", "karyotf", *map(str, args)]
    print("$ karyotf " + " ".join(map(str, args)), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def sample_cases() -> set[str]:
    from karyotf.paths import SAMPLE_DIR
    from karyotf.records import DEFAULT_CASE_PATTERN, case_of

    return {case_of(p.stem, DEFAULT_CASE_PATTERN) for p in (SAMPLE_DIR / "images").iterdir()}


def data_view(cil_train: Path, out: Path) -> dict:
    """Symlinks to the training cells whose case is not one of the built-in sample's."""
    from karyotf.records import DEFAULT_CASE_PATTERN, case_of

    skip = sample_cases()
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "annotations").mkdir(exist_ok=True)
    kept = dropped = 0
    for img in sorted((cil_train / "images").glob("*.jpg")):
        xml = cil_train / "annotations" / f"{img.stem}.xml"
        if case_of(img.stem, DEFAULT_CASE_PATTERN) in skip or not xml.is_file():
            dropped += 1
            continue
        for src, dst in ((img, out / "images" / img.name), (xml, out / "annotations" / xml.name)):
            if not dst.is_symlink():
                dst.symlink_to(src.resolve())
        kept += 1
    listed = cil_train / "karyotypes.csv"  # the abnormal cells the dataset lists (bench/case.py reads it)
    if listed.is_file() and not (out / listed.name).is_symlink():
        (out / listed.name).symlink_to(listed.resolve())
    return {"cells": kept, "left_out_sample_cases_or_no_xml": dropped}


def exported_step(export: Path) -> int | None:
    """The training step of the checkpoint an export was made from (None: no export)."""
    info = export / "karyotf.json"
    return json.loads(info.read_text()).get("checkpoint_step") if info.is_file() else None


def trained_step(run: Path) -> int | None:
    """The step of a run's newest checkpoint (None: none)."""
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(str(run))
    return int(latest.rsplit("-", 1)[1]) if latest else None


def end_to_end_row(detector: Path, classifier: Path, records: Path, split: str,
                   second_look: Path | None = None) -> dict:
    """The shipped pipeline on one split of the records (as ``karyotf karyogram`` counts and calls; with the
    second look when given)."""
    from quality import end_to_end

    from karyotf.evaluate import evaluate_detections

    from karyotf import calibration, rundir

    # the boxes counted are those the joint labelling kept above the calibration's candidate floor; the detections
    # also hold the boxes below it (for the PR curve), which the thresholded metrics must not count
    floor = calibration.of(rundir.read_info(detector)).floor
    truth, detections, seconds, cells = end_to_end(detector, records, classifier, None, split=split,
                                                   second_look=second_look)
    report = evaluate_detections(truth, detections, score_threshold=floor, model="default", split=split,
                                 source=detector, records_dir=records, seconds_per_image=seconds)
    imgs = report.metrics.found.images
    found, det, tru = (sum(getattr(i, k) for i in imgs) for k in ("found", "detected", "truth"))
    p, r = found / max(1, det), found / max(1, tru)
    return {"split": split, "cells": len(cells), "f1": report.f1, "precision": report.precision,
            "recall": report.recall, "agnostic_precision": p, "agnostic_recall": r,
            "agnostic_f1": 2 * p * r / max(1e-9, p + r), **call_rows(cells), "seconds_per_cell": seconds,
            "per_cell": cells}


def call_rows(cells: list[dict]) -> dict:
    """The call columns of a row from its per-cell rows (``bench/quality.cell_row``: ``review`` holds the review
    codes of the call as ``karyotf karyogram`` reports it, the count call's own and the joint labelling's)."""
    from quality import call_summary

    normal = [c for c in cells if c["normal"]]
    abnormal = [c for c in cells if not c["normal"]]

    def share(sel, what):
        return None if not sel else sum(bool(what(c)) for c in sel) / len(sel)

    return {**call_summary(cells),
            "normal_called_abnormal": share(normal, lambda c: c["call"] not in ("46,XX", "46,XY")
                                            and not c["call"].startswith("no call")),
            "normal_review_flagged": share(normal, lambda c: c["review"]),
            "abnormal_review_flagged": share(abnormal, lambda c: c["review"]),
            "abnormal_right_or_review": share(abnormal, lambda c: c["right"] or c["review"]),
            "wrong_without_review": share(cells, lambda c: not c["right"] and not c["review"]),
            "wrong_calls": sum(not c["right"] for c in cells)}


def resummarise(row: dict) -> dict:
    """A stored row's call columns again from its per-cell rows, the review codes read anew from each cell's
    flag codes by their level (:data:`karyotf.karyogram.call.FLAG_LEVELS`): for a change in how flags are
    summarised or levelled, without running the models again (the earlier pair's rows, ``previous``)."""
    from karyotf.karyogram.call import REVIEW, level_of

    cells = row["per_cell"]
    for c in cells:
        c["review"] = [code for code in c["all_flags"] if level_of(code) == REVIEW]
    return {**row, **call_rows(cells)}


def markdown(state: dict) -> str:
    rows = state.get("rows", {})
    lines = ["# The shipped default model pair: recipe and rows", "",
             "Produced by `bench/default_model.py` on 2 CPU cores (no GPU). Data: the CIL:54816 training cells "
             "(`tools/cil54816_train.py`: the cases with no cell in the dataset's official test split, which is "
             "never read) minus the cases of the built-in sample, split by case 80/10/10 (seed 0). Choices on val; "
             "the test rows are cells of the training cases' held-out split the models never trained on.", "",
             f"Recipe: `{json.dumps(state.get('recipe', {}))}`", "",
             f"Data: {state.get('data', {})}; CPU minutes by step: "
             + ", ".join(f"{k} {v / 60:.1f}" for k, v in state.get("cpu_seconds", {}).items())
             + (f". {state['cpu_note']}" if state.get("cpu_note") else ""), "",
             "Review flags are the flags of level *review* (the call may be wrong); notes are left out of these "
             "columns. Wrong calls without a review flag: share of all cells.", "",
             "| split | cells | F1 (class-aware, IoU 0.5) | class-agnostic P / R / F1 | count exact | call right: all / "
             "normal / abnormal | normal called abnormal | review-flagged: normal / abnormal | abnormal right or "
             "review-flagged | abnormal right or a review flag naming the chromosome in question | wrong calls "
             "without a review flag | s per cell |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    labelled = [(split, rows.get(split)) for split in ("val", "test")]
    for label, old in state.get("previous", {}).items():  # the rows of earlier recipes, on the same cells
        labelled += [(f"{split}, {label}", old.get(split)) for split in ("val", "test")]
    for split, r in labelled:
        if not r:
            continue
        f = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        lines.append(f"| {split} | {r['cells']} ({r['normal_cells']} normal, {r['abnormal_cells']} abnormal) | "
                     f"{f(r['f1'])} | {f(r['agnostic_precision'])} / {f(r['agnostic_recall'])} / "
                     f"{f(r['agnostic_f1'])} | {f(r['count_exact'])} | {f(r['call_right'])} / "
                     f"{f(r['call_right_normal'])} / {f(r['call_right_abnormal'])} | "
                     f"{f(r['normal_called_abnormal'])} | {f(r['normal_review_flagged'])} / "
                     f"{f(r['abnormal_review_flagged'])} | {f(r['abnormal_right_or_review'])} | "
                     f"{f(r.get('abnormal_right_or_named'))} | "
                     f"{f(r['wrong_without_review'])} | {r['seconds_per_cell']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cil-train", type=Path, required=True, help="output of tools/cil54816_train.py")
    p.add_argument("--work", type=Path, default=REPO / "bench" / "work" / "default_model")
    p.add_argument("--steps", type=int, default=RECIPE["steps"])
    p.add_argument("--classifier-epochs", type=int, default=RECIPE["classifier_epochs"])
    p.add_argument("--second-look-epochs", type=int, default=RECIPE["second_look_epochs"])
    p.add_argument("--second-look-cells", type=int, default=RECIPE["second_look_cells"],
                   help="the second look trains on the candidates of the first N train cells (0: all)")
    p.add_argument("--pack", action="store_true", help="copy the pair into karyotf/data/models/default")
    p.add_argument("--models-only", action="store_true",
                   help="train, export and calibrate the models, then stop before the rows (rows and pack later)")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "default_model.md")
    args = p.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    state_path = work / "recipe.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    state["recipe"] = {**RECIPE, "steps": args.steps, "classifier_epochs": args.classifier_epochs,
                       "second_look_epochs": args.second_look_epochs, "second_look_cells": args.second_look_cells}
    cpu = state.setdefault("cpu_seconds", {})

    def step(name, fn, accumulate=True):
        """Run one step, its CPU time added to the step's (a resumed training sitting adds to the earlier ones;
        ``accumulate=False``: a step run anew, e.g. the rows, replaces it)."""
        c0 = cpu_children() + time.process_time()
        try:
            return fn()
        finally:
            cpu[name] = (cpu.get(name, 0.0) if accumulate else 0.0) + cpu_children() + time.process_time() - c0
            state_path.write_text(json.dumps(state, indent=2, default=str) + "\n")

    data, records = work / "data", work / "records"
    run, exp = work / "runs" / "ssd", work / "exported" / "ssd"
    crun, cexp = work / "runs" / "classifier", work / "exported" / "classifier"
    state["data"] = step("data", lambda: data_view(args.cil_train.resolve(), data))
    if not (records / "manifest.json").is_file():
        step("records", lambda: karyotf("records", data, "--out", records, "--seed", RECIPE["seed"],
                                        "--split", RECIPE["split"]))
    if not (run / "pipeline.config").is_file():
        karyotf("config", "ssd", "--records", records, "--out", run, "--agnostic", "--steps", args.steps,
                "--batch", RECIPE["batch"], "--image-size", RECIPE["image_size"],
                "--learning-rate", RECIPE["learning_rate"], "--augment", RECIPE["augment"])
    step("train_detector", lambda: karyotf("train", "ssd", "--model-dir", run, "--steps", args.steps))
    if exported_step(exp) != trained_step(run):  # none yet, or trained on since (a later sitting): export anew,
        step("export_detector", lambda: karyotf("export", "ssd", "--model-dir", run, "--out", exp))  # calibrate anew
    step("train_classifier", lambda: karyotf("classifier", "train", records, "--out", crun,
                                             "--epochs", args.classifier_epochs, "--width",
                                             RECIPE["classifier_width"], "--size", RECIPE["classifier_size"],
                                             "--input", RECIPE["classifier_input"]))
    if not (cexp / "saved_model").is_dir():
        step("export_classifier", lambda: karyotf("classifier", "export", crun, "--out", cexp))
    info = json.loads((exp / "karyotf.json").read_text())
    if not info.get("chromosome_probability"):  # what `karyotf eval --tune-min-score` does first, without its
        from karyotf.scorefloor import tune_min_score  # evaluation pass over val (the rows below hold val)

        step("calibrate", lambda: print(tune_min_score(exp, records, split="val").text(), flush=True))
    # the second look, on the candidates of this detector (its run is tied to the detector's checkpoint: a new
    # checkpoint means new candidates, so a run dir of its own)
    lrun = work / "runs" / f"second_look_{exported_step(exp)}"
    lexp = work / "exported" / "second_look"
    if json.loads((lexp / "karyotf.json").read_text()).get("detector_step") != exported_step(exp) \
            if (lexp / "karyotf.json").is_file() else True:
        step("train_second_look", lambda: karyotf("second-look", "train", "--detector", exp, "--records", records,
                                                  "--out", lrun, "--epochs", args.second_look_epochs,
                                                  *(["--limit", args.second_look_cells] if args.second_look_cells
                                                    else [])))
        step("export_second_look", lambda: karyotf("second-look", "export", lrun, "--out", lexp))
        info = json.loads((lexp / "karyotf.json").read_text())
        info["detector_step"] = exported_step(exp)
        (lexp / "karyotf.json").write_text(json.dumps(info, indent=2) + "\n")
    if args.models_only:
        print(f"models ready in {work / 'exported'}; rerun without --models-only for the rows")
        return
    rows = state.setdefault("rows", {})
    for split in ("val", "test"):
        rows[split] = step(f"rows_{split}", lambda s=split: end_to_end_row(exp, cexp, records, s, lexp),
                           accumulate=False)
        state_path.write_text(json.dumps(state, indent=2, default=str) + "\n")
    for name, prev in state.get("previous", {}).items():  # the earlier pair's rows, its flags levelled as now
        state["previous"][name] = {split: resummarise(row) for split, row in prev.items()}
    from karyotf.io import atomic_write_json, atomic_write_text

    atomic_write_text(args.out, markdown(state))
    atomic_write_json(args.out.with_suffix(".json"), {k: v for k, v in state.items()})
    print(markdown(state))
    if args.pack:
        from karyotf.models import pack

        from model_card import card_text

        numbers = {k: round(rows["val"][k], 3) for k in ("agnostic_f1", "f1", "call_right_normal")
                   if rows.get("val", {}).get(k) is not None}
        pack(exp, cexp, card_text=card_text(state), second_look=lexp,
             meta={"numbers": {f"val {k}": v for k, v in numbers.items()}, "recipe": state["recipe"]})
        print("packed into karyotf/data/models/default")


if __name__ == "__main__":
    main()
