"""Every default a user can change, with its meaning: one table (like ultralytics' ``cfg/default.yaml``).

The Python API's keyword defaults and the CLI's option defaults are these constants; ``karyotf CMD --help`` prints
each next to its option (:class:`karyotf.cli.DefaultsHelpFormatter`), and the README's "Defaults" table is
:func:`markdown_table` (``tests/test_defaults.py`` checks that the two agree).  Light on purpose: no numpy, no
TensorFlow, so that the CLI imports it at start-up.

Per-model defaults (image size, batch, steps, learning rate) are the model registry's,
:data:`karyotf.pipelines.MODELS`, and the demo's are :mod:`karyotf.demo`'s.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Default:
    name: str
    value: object
    meaning: str
    options: str
    """Where a user changes it: the CLI options (``karyotf records --seed``) and the Python keyword."""


TABLE: dict[str, Default] = {}


def _d(name: str, value, meaning: str, options: str):
    TABLE[name] = Default(name, value, meaning, options)
    return value


# ---------------------------------------------------------------------------------------------- where data goes
RECORDS_DIR = _d("RECORDS_DIR", Path("records"), "records folder `karyotf records` writes and `config` reads",
                 "`records --out`, `config --records`")
RUNS_DIR = _d("RUNS_DIR", Path("runs"), "parent of the model dirs (`runs/MODEL`)", "`config --out`, `train --model-dir`")
EXPORTED_DIR = _d("EXPORTED_DIR", Path("exported"), "parent of the export dirs (`exported/MODEL`)",
                  "`export --out`, `detect --model`")

# ---------------------------------------------------------------------------------------------- records
SPLIT_SEED = _d("SPLIT_SEED", 0, "seed of the train/val/test split by case", "`records --seed`, `build_records(seed=)`")
SPLIT_FRACTIONS = _d("SPLIT_FRACTIONS", (0.8, 0.1, 0.1), "train, val, test fractions (of cases)",
                     "`records --split`, `build_records(fractions=)`")
CASE_PATTERN = _d("CASE_PATTERN", r"^(\d+)\d$",
                  "regex on the image name whose first group is the case id (CIL names without their last digit)",
                  "`records --case-pattern`, `case --case-pattern`")
IMAGES_PER_SHARD = _d("IMAGES_PER_SHARD", 250, "images per TFRecord shard when no shard count is given",
                      "`records --shards`")

# ---------------------------------------------------------------------------------------------- augment
AUGMENT_DIR = _d("AUGMENT_DIR", Path("augmented"), "output folder of `karyotf augment`", "`augment --out`")
AUGMENT_COPIES = _d("AUGMENT_COPIES", 4, "augmented copies per image", "`augment --copies`")
AUGMENT_SEED = _d("AUGMENT_SEED", 0, "seed of the augmentation", "`augment --seed`")
AUGMENT_OPS = _d("AUGMENT_OPS", "thesis", "augmentation ops or presets", "`augment --ops`")
AUGMENT_P = _d("AUGMENT_P", 0.5, "probability of each op with --chain", "`augment --p`")
GRID_IMAGES = _d("GRID_IMAGES", 3, "originals (rows) in augment_grid.png", "`augment --grid-images`")

# ---------------------------------------------------------------------------------------------- train
CHECKPOINT_EVERY = _d("CHECKPOINT_EVERY", 500, "save a checkpoint every N steps",
                      "`train --checkpoint-every`, `train(checkpoint_every=)`")
KEEP_CHECKPOINTS = _d("KEEP_CHECKPOINTS", 7, "checkpoints kept in the model dir", "`train --keep`, `train(keep=)`")
SUMMARY_EVERY = _d("SUMMARY_EVERY", 100, "image/graph TensorBoard summaries every N steps (losses: every step)",
                   "`train --summary-every`, `train(summary_every=)`")
STRATEGY = _d("STRATEGY", "default", "tf.distribute strategy", "`train --strategy`, `train(strategy=)`")

# ---------------------------------------------------------------------------------------------- eval
EVAL_SPLIT = _d("EVAL_SPLIT", "test", "split a model is evaluated on", "`eval --split`, `evaluate(split=)`")
IOU = _d("IOU", 0.5, "IoU at which a detection matches a ground-truth box", "`eval --iou`, `evaluate(iou=)`")
SCORE_THRESHOLD = _d("SCORE_THRESHOLD", 0.5,
                     "detections scored below this are ignored by the thesis metrics (the PR curve and mAP use all)",
                     "`eval --score-threshold`, `evaluate(score_threshold=)`")
USE = _d("USE", "auto", "exported format a Detector runs (auto: the SavedModel if present, else the frozen graph)",
         "`eval --use`, `detect --use`, `karyogram --use`, `Detector(use=)`")

# ---------------------------------------------------------------------------------------------- detect, karyogram
DETECTIONS_DIR = _d("DETECTIONS_DIR", Path("detections"), "output folder of `karyotf detect`", "`detect --out`")
MIN_SCORE = _d("MIN_SCORE", 0.3, "detections scoring below this are dropped (detect, a model's karyogram, the demo)",
               "`detect --min-score`, `karyogram --min-score`, `detect_images(min_score=)`")
KARYOGRAM_DIR = _d("KARYOGRAM_DIR", Path("karyogram"), "output folder of `karyotf karyogram`", "`karyogram --out`")
LONGEST = _d("LONGEST", 160.0, "pixels the cell's longest chromosome is scaled to in the karyogram",
             "`karyogram --longest`, `karyograms-dataset --longest`")
NMS_IOU = _d("NMS_IOU", 0.7, "class-agnostic NMS between detections of different classes", "`karyogram --nms-iou`")
LOW_SCORE = _d("LOW_SCORE", 0.5, "a detection scoring below this is a low-confidence chromosome (flagged)",
               "`karyogram --low-score`")
PRIOR = _d("PRIOR", "prenatal", "karyotype prior of the joint labelling: `prenatal`, `postnatal` or `oncology` (how "
           "common each aneuploidy is among the cells the lab sees; `karyotf/classify/joint.py`)",
           "`karyogram --prior`, `eval --prior`, `classifier eval --prior`, `Karyotyper(prior=)`, `joint_labels(prior=)`")
CLASSIFIER_INPUT = _d("CLASSIFIER_INPUT", "separated",
                      "what the classifier reads of each chromosome a detector finds: `separated` (its box window with "
                      "every pixel outside its separated mask white, `karyotf.separate`) or `box` (the plain box crop "
                      "it was trained on); chosen in bench/results/separate.md",
                      "`karyogram --classifier-input`, `Karyotyper(input=)`")
CLASSIFIER_INPUTS = ("separated", "box")
PRIOR_PRESETS = ("prenatal", "postnatal", "oncology")
"""The names of the shipped priors (:data:`karyotf.classify.joint.PRESETS`), for the CLI's choices."""

# ---------------------------------------------------------------------------------------------- case
CASE_DIR = _d("CASE_DIR", Path("case"), "output folder of `karyotf case`", "`case --out`")
CASE_GAIN_MIN = _d("CASE_GAIN_MIN", 2,
                   "cells that must share a gain (or any line with a gain) for it to be a clone (ISCN: 2)",
                   "`case --gain-min`, `Rules(gain_min=)`")
CASE_LOSS_MIN = _d("CASE_LOSS_MIN", 3, "cells that must share a loss-only line for it to be a clone (ISCN: 3)",
                   "`case --loss-min`, `Rules(loss_min=)`")
CASE_COUNTED = _d("CASE_COUNTED", 20, "cells counted in a case by the standard; fewer is flagged",
                  "`case --counted`, `Rules(counted=)`")
CASE_ANALYSED = _d("CASE_ANALYSED", 5,
                   "cells analysed band by band (chromosomes named by a person: truth boxes or a review) by the "
                   "standard; fewer is flagged", "`case --analysed`, `Rules(analysed=)`")
CASE_EXTEND_TO = _d("CASE_EXTEND_TO", (30, 50),
                    "counts to extend to when mosaicism is suspected (30 cells exclude 10% mosaicism, 50 exclude 6%, "
                    "at 95% confidence)", "`case --extend-to`, `Rules(extend_to=)`")
CASE_UNCOUNTED_FLAGS = _d("CASE_UNCOUNTED_FLAGS", ("no_detections", "no_call", "unclassifiable", "close_call",
                                                   "left_out", "empty_box", "duplicate_box", "image_mismatch"),
                          "cell flags that keep a model's cell out of the case count until it is reviewed (they put "
                          "the count in doubt)",
                          "`case --uncounted-flags`, `Rules(uncounted_flags=)`")

# ---------------------------------------------------------------------------------------------- box checks
EMPTY_BOX_FOREGROUND = _d("EMPTY_BOX_FOREGROUND", 0.05,
                          "a box with less than this share of dark (chromosome) pixels is empty: flagged `empty_box` "
                          "in the karyogram, listed by `records`", "`check_boxes(empty_below=)`")
DUPLICATE_IOU = _d("DUPLICATE_IOU", 0.9,
                   "two boxes (any classes) overlapping at least this much (IoU) are one chromosome boxed twice: "
                   "flagged `duplicate_box` in the karyogram, listed by `records`", "`check_boxes(duplicate_iou=)`")

# ---------------------------------------------------------------------------------------------- review, roboflow
REVIEW_HOST = _d("REVIEW_HOST", "127.0.0.1", "address the review app listens on", "`review --host`")
REVIEW_PORT = _d("REVIEW_PORT", 0, "port of the review app (0: a free port, printed)", "`review --port`")
ROBOFLOW_FORMAT = _d("ROBOFLOW_FORMAT", "voc", "format of a Roboflow download", "`roboflow pull --format`")
ROBOFLOW_DIR = _d("ROBOFLOW_DIR", Path("data/roboflow"), "where `karyotf roboflow import` writes VOC",
                  "`roboflow import --out`")


def _text(value) -> str:
    if isinstance(value, tuple):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return str(value)


def markdown_table() -> str:
    """The README's "Defaults" table: one row a default (value, meaning, where to change it)."""
    rows = ["| default | value | meaning | changed by |", "|---|---|---|---|"]
    for d in TABLE.values():
        rows.append(f"| `{d.name}` | `{_text(d.value)}` | {d.meaning} | {d.options} |")
    return "\n".join(rows) + "\n"
