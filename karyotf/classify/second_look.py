"""The second look: is a candidate box one whole, single chromosome?  (issue 23)

A detector's score orders its boxes but is the wrong evidence for "this box is one whole, separate chromosome":
on val of CIL:54816 a class-agnostic SSD's counted boxes held fragments inside a chromosome, second boxes on a
chromosome already found, boxes over two chromosomes and boxes on background, at every score.  The joint
labelling (:func:`karyotf.classify.joint.joint_labels`, ``real=``) needs P(chromosome) near 1 to count a third
copy (a prenatal prior charges a third 18 a factor 100; :meth:`~karyotf.classify.joint.KaryotypePrior.
count_threshold`), so that probability must come from evidence that can be that sure: the box's own pixels, its
place among the other candidates and the detector's score together.

:class:`SecondLook` gives every candidate box of a cell P(kind) over :data:`KINDS`:

==============  ===================================================================================
``chromosome``  matched a truth box at IoU >= 0.5 (greedily, best score first): one whole chromosome
``fragment``    lies inside one truth box (at least :data:`INSIDE` of its area), a piece of it
``two``         covers two or more truth boxes (at least :data:`INSIDE` of each), a tangle or a pair
``duplicate``   IoU >= 0.5 with a truth box an earlier (better scoring) candidate already matched
``background``  anything else: no overlap, or a misplaced box (overlapping a chromosome, neither inside nor
                covering nor matching it)
==============  ===================================================================================

and ``p_whole`` = P(chromosome), which :class:`~karyotf.classify.karyotyper.Karyotyper` hands to the joint
labelling in place of the detector's calibrated score (the score is one of its inputs).

The network is the classifier's (:class:`~karyotf.classify.model.ChromosomeClassifier`: a CNN per crop, its
measurements, a transformer layer over the cell's candidates: a duplicate is seen beside its twin) with five
outputs, and more measurements: the crop's (:data:`karyotf.classify.crops.FEATURES`, relative to the cell's
likely chromosomes) and the box's geometry among the candidates (:data:`GEOMETRY`).

Trained on the detector's own candidates over the *train* cells of the records (the candidates the Karyotyper
will see: above the candidate floor, after the class-agnostic NMS), labelled by their geometry against the truth
boxes (:func:`kinds`); selected on val by the log loss of P(chromosome).  A run dir (``second_look.json``,
``ckpt/``, ``best/``, ``cache/``) resumes where it stopped; :func:`export` writes a SavedModel export that
:class:`SecondLook` loads (as it loads a run dir), with the same outputs.
"""
from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from .. import calibration, images, rundir
from ..annotations import Box
from ..errors import ClassifierError, RecordsError
from ..find import find
from ..io import atomic_write_json, replace_dir
from ..loop import StopFlag
from ..records import read_examples
from .crops import FEATURES as CROP_FEATURES
from .crops import cell_crops
from .data import CellSet, batches, pad_cells
from .export import save_cell_model

# Imports inside functions, and why: TensorFlow / KerasCV / the OD API (heavy: kept off the import path);
# karyotf.odapi (importing it loads TensorFlow and applies the OD API's compatibility shims: only where TensorFlow is
# about to run); karyotf.classify.train (it loads OpenCV at its top); karyotf.classify.model (it loads TensorFlow at
# its top); karyotf.detect.Detector (looked up when a model is loaded, so that a caller may stand another Detector in
# karyotf.detect, as the tests do).

log = logging.getLogger(__name__)

KINDS = ("chromosome", "fragment", "two", "duplicate", "background")
"""What a candidate box is; index 0 (``chromosome``) is P(whole single chromosome)."""
GEOMETRY = ("score", "score_rank", "iou_better", "inside_other", "covers", "log_candidates")
"""The box among the cell's candidates: detector score; rank by score (0 best, 1 worst); largest IoU with a better
scoring candidate; largest share of its area inside another candidate; how many other candidates lie inside it
(at least :data:`INSIDE` of their area, up to 3, over 3); log(candidates / 46)."""
FEATURES = tuple(CROP_FEATURES) + GEOMETRY
MATCH_IOU = 0.5
"""IoU at which a candidate matches a truth box (as the metrics match)."""
INSIDE = 0.7
"""Share of a box's area inside another that makes it "inside" (a fragment; a chromosome under a box over two)."""
RUN_FILE = "second_look.json"
META = rundir.INFO
KIND = "second_look"
CANDIDATE_FLOOR = 0.1
"""Candidate floor when the detector carries no calibration (its candidate floor is used when it does)."""
CANDIDATE_NMS_IOU = 0.5
"""Class-agnostic NMS of the candidates when the detector carries no calibration (its ``nms_iou`` otherwise)."""


# ---------------------------------------------------------------------------------------------- labels, inputs
def _inter(a: Box, b: Box) -> float:
    w = min(a.xmax, b.xmax) - max(a.xmin, b.xmin)
    h = min(a.ymax, b.ymax) - max(a.ymin, b.ymin)
    return max(0.0, w) * max(0.0, h)


def kinds(candidates: Sequence[Box], truth: Sequence[Box], iou: float = MATCH_IOU) -> np.ndarray:
    """The kind (index into :data:`KINDS`) of each candidate, by its geometry against the truth boxes: the
    candidates are matched greedily, best score first (see the module doc)."""
    order = sorted(range(len(candidates)), key=lambda i: -(candidates[i].score if candidates[i].score is not None
                                                          else 1.0))
    taken = set()
    out = np.full(len(candidates), KINDS.index("background"), np.int32)
    for i in order:
        c = candidates[i]
        ious = [c.iou(t) for t in truth]
        free = [(v, j) for j, v in enumerate(ious) if j not in taken and v >= iou]
        if free:
            taken.add(max(free)[1])
            out[i] = 0
            continue
        if any(v >= iou for v in ious):
            out[i] = KINDS.index("duplicate")
            continue
        covered = sum(_inter(c, t) >= INSIDE * max(t.area, 1e-9) for t in truth)
        if covered >= 2:
            out[i] = KINDS.index("two")
        elif any(_inter(c, t) >= INSIDE * max(c.area, 1e-9) for t in truth):
            out[i] = KINDS.index("fragment")
    return out


def geometry(boxes: Sequence[Box]) -> np.ndarray:
    """(N, len(GEOMETRY)) measurements of each box among the cell's candidates (see :data:`GEOMETRY`)."""
    n = len(boxes)
    g = np.zeros((n, len(GEOMETRY)), np.float32)
    if n == 0:
        return g
    score = np.array([b.score if b.score is not None else 1.0 for b in boxes], np.float64)
    rank = np.empty(n)
    rank[np.argsort(-score, kind="stable")] = np.arange(n)
    area = np.array([max(b.area, 1e-9) for b in boxes])
    inter = np.array([[_inter(a, b) if i != j else 0.0 for j, b in enumerate(boxes)] for i, a in enumerate(boxes)])
    union = area[:, None] + area[None, :] - inter
    iou = inter / np.maximum(union, 1e-9)
    better = score[None, :] > score[:, None]
    better |= (score[None, :] == score[:, None]) & (np.arange(n)[None, :] < np.arange(n)[:, None])
    g[:, 0] = score
    g[:, 1] = rank / max(1, n - 1)
    g[:, 2] = np.where(better, iou, 0.0).max(axis=1)
    g[:, 3] = (inter / area[:, None]).max(axis=1)
    g[:, 4] = np.minimum((inter / area[None, :] >= INSIDE).sum(axis=1), 3) / 3.0
    g[:, 5] = math.log(n / 46.0)
    return g


def inputs(image: np.ndarray, boxes: Sequence[Box], size: int):
    """(crops (N, S, S) uint8, features (N, len(FEATURES)) float32) of one cell's candidates: the crop
    measurements are relative to the likely chromosomes (score >= 0.5, else all)."""
    likely = [i for i, b in enumerate(boxes) if b.score is None or b.score >= 0.5]
    cc = cell_crops(image, boxes, size, reference=likely or None)
    return cc.crops, np.concatenate([cc.features, geometry(boxes)], axis=1).astype(np.float32)


def candidates(detector, image: np.ndarray, min_score: float, nms_iou: float) -> list[Box]:
    """The boxes the Karyotyper would weigh: the detector's, at or above ``min_score``, after the class-agnostic
    NMS at ``nms_iou``, best score first."""
    return find(detector, image, min_score, nms_iou).boxes


def candidate_settings(detector) -> tuple[float, float]:
    """(candidate floor, NMS IoU): the detector's calibration's when it has one, else the module's."""
    cal = calibration.of(detector.info)
    if cal is None:
        return CANDIDATE_FLOOR, CANDIDATE_NMS_IOU
    return float(cal.floor), float(cal.nms_iou if cal.nms_iou is not None else CANDIDATE_NMS_IOU)


def candidate_set(detector, records_dir: str | Path, split: str, size: int, min_score: float, nms_iou: float,
                  limit: int | None = None, progress: bool = True) -> CellSet:
    """Every cell of one split: the detector's candidates, their inputs and kinds (``labels``)."""
    crops, feats, labels, sizes, ids = [], [], [], [], []
    it = read_examples(records_dir, split)
    if progress:
        it = tqdm(it, desc=f"second look: candidates {split}", unit="cell", leave=False)
    for k, (data, ann) in enumerate(it):
        if limit is not None and k >= limit:
            break
        arr = images.load(data)
        boxes = candidates(detector, arr, min_score, nms_iou)
        c, f = inputs(arr, boxes, size)
        crops.append(c)
        feats.append(f)
        labels.append(kinds(boxes, ann.boxes))
        sizes.append(len(boxes))
        ids.append(ann.image_id)
    return CellSet(crops=np.concatenate(crops) if crops else np.zeros((0, size, size), np.uint8),
                   features=np.concatenate(feats) if feats else np.zeros((0, len(FEATURES)), np.float32),
                   labels=np.concatenate(labels) if labels else np.zeros((0,), np.int32),
                   offsets=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64), cell_ids=ids)


# ---------------------------------------------------------------------------------------------- training
@dataclass
class SecondLookConfig:
    """Every setting of a second-look run (saved in the run dir; a resume keeps the model's shape)."""

    size: int = 48
    context: bool = True
    width: int = 8
    embed: int = 64
    heads: int = 2
    dropout: float = 0.1
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    warmup: float = 0.03
    augment: bool = True
    seed: int = 0

    SHAPE = ("size", "context", "width", "embed", "heads")

    def model(self):
        from .model import ChromosomeClassifier

        return ChromosomeClassifier(size=self.size, n_features=len(FEATURES), context=self.context, width=self.width,
                                    embed=self.embed, heads=self.heads, dropout=self.dropout,
                                    num_classes=len(KINDS)).build_for()


@dataclass
class SecondLookResult:
    run_dir: Path
    epochs: int = 0
    steps: int = 0
    seconds: float = 0.0
    best_val_loss: float | None = None
    best_epoch: int | None = None
    interrupted: bool = False
    history: list[dict] = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    """Candidates of each kind in train and val."""

    def text(self) -> str:
        best = "-" if self.best_val_loss is None else f"{self.best_val_loss:.4f} (epoch {self.best_epoch})"
        return (f"{self.run_dir}: {self.epochs} epoch(s), {self.steps} steps, {self.seconds / 60:.1f} min"
                + (" (interrupted)" if self.interrupted else "") + f"; best val log loss of P(chromosome) {best}")


def read_run(run_dir: str | Path) -> dict:
    from .train import read_run as read

    return read(run_dir, RUN_FILE, "karyotf second-look train")


def load_model(run_dir: str | Path, which: str = "best"):
    """The model of a run dir with its ``best`` (or ``latest``) weights, and its config and run info."""
    from .train import load_run

    return load_run(run_dir, SecondLookConfig, which, RUN_FILE, "karyotf second-look train")


def _predict(model, cs: CellSet) -> np.ndarray:
    import tensorflow as tf

    out = np.zeros((len(cs), len(KINDS)), np.float32)
    for i in range(cs.cells):
        b = pad_cells(cs, [i])
        sl = cs.cell(i)
        if sl.stop == sl.start:
            continue
        p = tf.nn.softmax(model({"crops": b["crops"], "features": b["features"], "mask": b["mask"]},
                                training=False)).numpy()
        out[sl] = p[0, : sl.stop - sl.start]
    return out


def whole_log_loss(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean log loss of P(chromosome) against "is a chromosome" (the number the joint labelling uses)."""
    if not len(labels):
        return float("nan")
    p = np.clip(probs[:, 0], 1e-6, 1 - 1e-6)
    y = labels == 0
    return float(-np.mean(np.where(y, np.log(p), np.log1p(-p))))


def train(detector, records_dir: str | Path, out_dir: str | Path = "runs/second_look", epochs: int | None = None,
          minutes: float | None = None, config: SecondLookConfig | None = None, limit: int | None = None,
          val_limit: int | None = None, progress: bool = True, on_step=None) -> SecondLookResult:
    """Train (or resume) a second look on ``detector``'s candidates over the records' train cells, selecting the
    epoch with the best val log loss of P(chromosome); ``epochs`` or a wall-time budget ``minutes`` (default 10
    epochs).  ``detector``: an object with ``detect(image, min_score=)`` (and ``info``) or an export dir.
    ``limit`` / ``val_limit``: only the first N cells of train / val.  The candidates of each split are cached in
    the run dir (``cache/``), so a resumed run does not run the detector again.  SIGINT / SIGTERM finish the step,
    save a checkpoint and stop; the next call resumes.  ``on_step(step)``: called after every step."""
    import tensorflow as tf

    from .. import odapi  # noqa: F401  (quiet TF logs)
    from .train import augment, lr_at

    out = Path(out_dir)
    if epochs is not None and minutes is not None:
        raise ClassifierError("give epochs or minutes, not both")
    if epochs is None and minutes is None:
        epochs = 10
    if (epochs is not None and epochs < 1) or (minutes is not None and minutes <= 0):
        raise ClassifierError(f"epochs must be >= 1 and minutes > 0 (got epochs={epochs}, minutes={minutes})")
    if isinstance(detector, (str, Path)):
        from ..detect import Detector

        detector = Detector(detector)
    state = {"epoch": 0, "elapsed": 0.0, "best_val_loss": None, "best_epoch": None, "history": []}
    if (out / RUN_FILE).is_file():
        meta = read_run(out)
        saved = SecondLookConfig(**meta["config"])
        if config is not None and any(getattr(config, k) != getattr(saved, k) for k in SecondLookConfig.SHAPE):
            raise ClassifierError(f"{out} holds a second look of another shape (fix: use another --out, or delete "
                                  "the run dir)")
        config = saved
        state.update(meta.get("state", {}))
        min_score, nms_iou = meta["min_score"], meta["nms_iou"]
    else:
        min_score, nms_iou = candidate_settings(detector)
    config = config or SecondLookConfig()
    out.mkdir(parents=True, exist_ok=True)
    tf.keras.utils.set_random_seed(config.seed)

    def split_set(split, n):
        cache = out / "cache" / f"candidates-{split}-{config.size}-{n if n is not None else 'all'}.npz"
        if cache.is_file():
            return CellSet.load(cache)
        cs = candidate_set(detector, records_dir, split, config.size, min_score, nms_iou, n, progress)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cs.save(cache)
        return cs

    train_cs = split_set("train", limit)
    try:
        val_cs = split_set("val", val_limit)
    except RecordsError:  # no val shards: the last weights are the best there are
        val_cs = None
    if train_cs.cells == 0 or len(train_cs) == 0:
        raise ClassifierError(f"{records_dir}: the detector found no candidates in the train split (fix: a "
                              "detector that finds chromosomes, or a lower candidate floor)")
    counts = {s: {k: int((cs.labels == i).sum()) for i, k in enumerate(KINDS)}
              for s, cs in (("train", train_cs), ("val", val_cs)) if cs is not None}

    model = config.model()
    optimizer = tf.keras.optimizers.AdamW(learning_rate=0.0, weight_decay=config.weight_decay, global_clipnorm=2.0)
    lr = optimizer.learning_rate
    step_var = tf.Variable(0, dtype=tf.int64, trainable=False)
    ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step_var)
    manager = tf.train.CheckpointManager(ckpt, str(out / "ckpt"), max_to_keep=2)
    best_ckpt = tf.train.Checkpoint(model=model)
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint)
        log.info("resuming %s from step %d", out, int(step_var.numpy()))
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")

    @tf.function(reduce_retracing=True)
    def train_step(crops, feats, mask, labels):
        if config.augment:
            crops, _ = augment(tf, crops, feats, mask, [])  # the geometry is exact: no noise on the measurements
        with tf.GradientTape() as tape:
            logits = model({"crops": crops, "features": feats, "mask": mask}, training=True)
            per = loss_fn(tf.maximum(labels, 0), logits)
            w = tf.cast(labels >= 0, tf.float32)
            loss = tf.reduce_sum(per * w) / tf.maximum(tf.reduce_sum(w), 1.0)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        step_var.assign_add(1)
        return loss

    steps_per_epoch = max(1, train_cs.cells)
    total_steps = None if epochs is None else epochs * steps_per_epoch
    budget = None if minutes is None else minutes * 60.0

    def save_state():
        atomic_write_json(out / RUN_FILE, {
            "kind": "karyotf-second-look", "version": 1, "config": asdict(config), "kinds": list(KINDS),
            "features": list(FEATURES), "records": str(Path(records_dir).resolve()),
            "detector": str(detector.export_dir or ""), "min_score": min_score, "nms_iou": nms_iou,
            "epochs": epochs, "minutes": minutes, "limit": limit, "val_limit": val_limit, "counts": counts,
            "state": {**state, "step": int(step_var.numpy())}})

    def validate(losses):
        val = whole_log_loss(_predict(model, val_cs), val_cs.labels) if val_cs is not None and len(val_cs) else \
            float("nan")
        entry = {"epoch": state["epoch"], "step": int(step_var.numpy()), "minutes": round(state["elapsed"] / 60, 2),
                 "train_loss": round(float(np.mean(losses)), 4) if losses else None,
                 "val_whole_log_loss": None if math.isnan(val) else round(val, 5)}
        state["history"].append(entry)
        log.info("second look %s", entry)
        if not math.isnan(val) and (state["best_val_loss"] is None or val < state["best_val_loss"]):
            state["best_val_loss"], state["best_epoch"] = val, state["epoch"]
            best_ckpt.write(str(out / "best" / "weights"))
            (out / "best" / "checkpoint").write_text('model_checkpoint_path: "weights"\n')
        manager.save(checkpoint_number=int(step_var.numpy()))
        save_state()

    def done() -> bool:
        return state["elapsed"] >= budget if budget is not None else state["epoch"] >= epochs

    bar = None
    if progress:
        bar = tqdm(total=total_steps, initial=int(step_var.numpy()), unit="step", desc="second look")
    t_start = time.perf_counter() - state["elapsed"]
    with StopFlag() as stop:
        while not done() and not stop:
            rng = np.random.default_rng(config.seed + 1000 * state["epoch"])
            skip = int(step_var.numpy()) - state["epoch"] * steps_per_epoch
            losses = []
            for k, batch in enumerate(batches(train_cs, 1, rng)):
                if k < skip:
                    continue
                step = int(step_var.numpy())
                lr.assign(lr_at(config, (state["elapsed"] / budget) if budget else step / max(1, total_steps)))
                if batch["mask"].any():
                    losses.append(float(train_step(batch["crops"], batch["features"], batch["mask"],
                                                   batch["labels"])))
                else:
                    step_var.assign_add(1)
                state["elapsed"] = time.perf_counter() - t_start
                if bar:
                    bar.update()
                if on_step is not None:
                    on_step(step + 1)
                if stop or (budget is not None and state["elapsed"] >= budget):
                    break
            state["epoch"] = int(step_var.numpy()) // steps_per_epoch
            if stop:
                break
            validate(losses)
    result = SecondLookResult(run_dir=out, counts=counts)
    if stop:
        manager.save(checkpoint_number=int(step_var.numpy()))
        result.interrupted = True
    if bar:
        bar.close()
    if not (out / "best" / "checkpoint").is_file():
        best_ckpt.write(str(out / "best" / "weights"))
        (out / "best" / "checkpoint").write_text('model_checkpoint_path: "weights"\n')
    save_state()
    result.epochs, result.steps, result.seconds = state["epoch"], int(step_var.numpy()), state["elapsed"]
    result.best_val_loss, result.best_epoch, result.history = state["best_val_loss"], state["best_epoch"], \
        state["history"]
    return result


# ---------------------------------------------------------------------------------------------- export, load
def export(run_dir: str | Path, out_dir: str | Path = "exported/second_look") -> Path:
    """Export the best weights of a second-look run to ``out_dir`` (SavedModel + ``karyotf.json``), atomically."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    model, cfg, meta = load_model(run_dir)
    size, nf = cfg.size, len(FEATURES)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        save_cell_model(model, size, nf, tmp / "saved_model")
        state = meta.get("state", {})
        rundir.write_info(tmp, {
            "version": 1, "size": size, "features": list(FEATURES), "kinds": list(KINDS),
            "config": meta["config"], "min_score": meta["min_score"], "nms_iou": meta["nms_iou"],
            "detector": meta.get("detector"), "records": meta.get("records"), "source_run": str(run_dir.resolve()),
            "epochs_trained": state.get("epoch"), "best_val_whole_log_loss": state.get("best_val_loss"),
            "best_epoch": state.get("best_epoch"), "counts": meta.get("counts"),
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, KIND)
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


class SecondLook:
    """A trained second look: ``SecondLook(dir)`` loads an export (``karyotf second-look export``) or a run dir
    (its best weights).  ``min_score`` / ``nms_iou``: how its candidates were made (the Karyotyper makes them the
    same way)."""

    def __init__(self, path: str | Path):
        import tensorflow as tf

        from .. import odapi  # noqa: F401  (quiet TF logs)

        self.path = Path(path)
        if (self.path / META).is_file() and (self.path / "saved_model").is_dir():
            self.info = rundir.read_info(self.path)
            if self.info.get("kind") != KIND:
                raise ClassifierError(f"{self.path}: karyotf.json says kind {self.info.get('kind')!r}, not a second "
                                      "look (fix: pass the folder written by `karyotf second-look export`)")
            loaded = tf.saved_model.load(str(self.path / "saved_model"))
            fn = loaded.signatures["serving_default"]
            self._keep = loaded
            self._run = lambda c, f: fn(crops=tf.constant(c), features=tf.constant(f))["probabilities"].numpy()
        elif (self.path / RUN_FILE).is_file():
            model, cfg, meta = load_model(self.path)
            self.info = {"kind": KIND, "size": cfg.size, "features": meta.get("features"), "kinds": meta.get("kinds"),
                         "min_score": meta["min_score"], "nms_iou": meta["nms_iou"], "source_run": str(self.path)}
            self._run = lambda c, f: tf.nn.softmax(model({"crops": c[None], "features": f[None],
                                                          "mask": np.ones((1, len(c)), bool)},
                                                         training=False)[0]).numpy()
        else:
            raise ClassifierError(f"{self.path}: neither a second-look export (saved_model/ + {META}) nor a run "
                                  f"({RUN_FILE}) (fix: `karyotf second-look train` / `export`)")
        if list(self.info.get("features") or []) != list(FEATURES) or list(self.info.get("kinds") or []) != list(KINDS):
            raise ClassifierError(f"{self.path}: made with features {self.info.get('features')} and kinds "
                                  f"{self.info.get('kinds')}; this karyotf computes {list(FEATURES)} / {list(KINDS)} "
                                  "(fix: retrain or re-export with this version)")
        self.size = int(self.info["size"])
        self.min_score = float(self.info["min_score"])
        self.nms_iou = float(self.info["nms_iou"])

    def probabilities(self, image: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
        """(N, len(KINDS)) P(kind) of one cell's candidate boxes (all of them: they are each other's context)."""
        if not len(boxes):
            return np.zeros((0, len(KINDS)), np.float32)
        crops, feats = inputs(image, boxes, self.size)
        return np.asarray(self._run(np.ascontiguousarray(crops), np.ascontiguousarray(feats)), np.float32)

    def p_whole(self, image: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
        """(N,) P(one whole, single chromosome) of one cell's candidate boxes."""
        return self.probabilities(image, boxes)[:, 0].astype(np.float64)

    def __repr__(self) -> str:
        return f"SecondLook({str(self.path)!r}, size={self.size}, candidates >= {self.min_score:g} at NMS {self.nms_iou:g})"
