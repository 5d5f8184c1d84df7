"""Train the chromosome classifier on the records' train split, select on val; resumable.

A run dir holds::

    classifier.json   settings, progress (epoch, step, elapsed seconds), the best val accuracy and its epoch
    ckpt/             the latest checkpoint (model, optimizer, step): a rerun resumes from it
    best/             weights of the epoch with the best val top-1 (what ``export`` and ``evaluate`` use)
    train/            TensorBoard events (loss, learning rate, val top-1)
    cache/            cropped cells of each split (``.npz``), so a resumed run does not decode again

The length is ``epochs`` or a wall-time budget ``minutes`` (the learning rate follows a cosine over the budget's
elapsed fraction, so a budget run ends at a low rate wherever it stops).  SIGINT / SIGTERM finish the batch,
save a checkpoint and stop; the next call resumes.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .. import rundir
from ..errors import ClassifierError
from ..io import atomic_write_json
from ..loop import StopFlag
from .crops import FEATURES, SIZE
from .data import CellSet, batches, check_input, from_records, pad_cells

# Imports inside functions, and why: TensorFlow / KerasCV / the OD API (heavy: kept off the import path);
# karyotf.odapi (importing it loads TensorFlow and applies the OD API's compatibility shims: only where TensorFlow is
# about to run); karyotf.classify.model (it loads TensorFlow at its top).

log = logging.getLogger(__name__)

RUN_FILE = rundir.CLASSIFIER_RUN


@dataclass
class ClassifierConfig:
    """Every setting of a classifier run (saved in the run dir; a resume must keep the model's shape)."""

    size: int = SIZE
    context: bool = True
    width: int = 16
    """Filters of the first conv block (16-32-64-128): a quarter of the cost of 32, so a CPU budget fits about 2.8x
    the epochs, and it names more chromosomes right (bench/results/classifier.md, row ``w16`` against
    ``context_1cell``)."""
    embed: int = 128
    heads: int = 4
    dropout: float = 0.1
    norm: str = "batch"
    cells_per_batch: int = 1
    """One cell a step: more updates in a CPU budget than 4 cells a step (bench/results/classifier.md, rows
    ``context_1cell`` against ``context``)."""
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    warmup: float = 0.03
    label_smoothing: float = 0.05
    augment: bool = True
    rotate: float = 0.0
    """Random rotation, as a fraction of a full turn (0: none); flips and 90-degree turns are always on.  Off by
    default: on a 20-minute CPU budget it slowed learning more than it regularised (row ``context`` used 0.02)."""
    zoom: float = 0.0
    """Random zoom, as a fraction (0: none; row ``context`` used 0.05)."""
    seed: int = 0
    input: str = "box"
    """What it learns from for each truth box (:data:`karyotf.classify.data.INPUTS`): the box crop, or the
    ``separated`` cut-out (the box window, everything outside the chromosome's separated mask white), what the
    Karyotyper reads by default; a run keeps it on resume (runs made before it existed: ``box``)."""

    SHAPE = ("size", "context", "width", "embed", "heads", "norm")

    def model(self):
        from .model import ChromosomeClassifier

        return ChromosomeClassifier(size=self.size, n_features=len(FEATURES), context=self.context,
                                    width=self.width, embed=self.embed, heads=self.heads,
                                    dropout=self.dropout, norm=self.norm).build_for()


@dataclass
class TrainResult:
    run_dir: Path
    epochs: int = 0
    steps: int = 0
    seconds: float = 0.0
    best_val_top1: float | None = None
    best_epoch: int | None = None
    interrupted: bool = False
    history: list[dict] = field(default_factory=list)

    def text(self) -> str:
        best = "-" if self.best_val_top1 is None else f"{self.best_val_top1:.3f} (epoch {self.best_epoch})"
        return (f"{self.run_dir}: {self.epochs} epoch(s), {self.steps} steps, {self.seconds / 60:.1f} min"
                + (" (interrupted)" if self.interrupted else "") + f"; best val top-1 {best}")


def read_run(run_dir: str | Path, run_file: str = RUN_FILE, command: str = "karyotf classifier train") -> dict:
    """The run info of a training run dir (``run_file``; the second look's: its own file and ``command``)."""
    path = Path(run_dir) / run_file
    if not path.is_file():
        raise ClassifierError(f"{run_dir}: no {run_file} (fix: train with `{command} --out {run_dir}`)")
    return json.loads(path.read_text())


def load_run(run_dir: str | Path, config_cls, which: str = "best", run_file: str = RUN_FILE,
             command: str = "karyotf classifier train"):
    """The model of a run dir with its ``best`` (or ``latest``) weights, its config (``config_cls`` built from the
    run info) and the run info: the classifier's and the second look's runs alike."""
    run_dir = Path(run_dir)
    meta = read_run(run_dir, run_file, command)
    cfg = config_cls(**meta["config"])
    model = cfg.model()
    restore(model, run_dir, which)
    return model, cfg, meta


def load_model(run_dir: str | Path, which: str = "best"):
    """The model of a run dir with its ``best`` (or ``latest``) weights, and its config."""
    model, cfg, _ = load_run(run_dir, ClassifierConfig, which)
    return model, cfg


def restore(model, run_dir: Path, which: str = "best") -> None:
    """Restore a cell model's ``best`` weights (else its ``latest``, from ``ckpt/``) from a run dir: the
    classifier's and the second look's runs keep them alike."""
    import tensorflow as tf

    if which == "best" and (run_dir / "best" / "checkpoint").is_file():
        prefix = tf.train.latest_checkpoint(str(run_dir / "best"))
    else:
        prefix = tf.train.latest_checkpoint(str(run_dir / "ckpt"))
    if prefix is None:
        raise ClassifierError(f"{run_dir}: no checkpoint yet (fix: train first)")
    tf.train.Checkpoint(model=model).restore(prefix).expect_partial()


def predict(model, cs: CellSet, cells_per_batch: int = 8) -> np.ndarray:
    """Class probabilities (M, 24) of every chromosome of ``cs``."""
    import tensorflow as tf

    out = np.zeros((len(cs), model.num_classes), np.float32)
    for k in range(0, cs.cells, cells_per_batch):
        idx = list(range(k, min(cs.cells, k + cells_per_batch)))
        b = pad_cells(cs, idx)
        p = tf.nn.softmax(model({"crops": b["crops"], "features": b["features"], "mask": b["mask"]},
                                training=False)).numpy()
        for j, i in enumerate(idx):
            sl = cs.cell(i)
            out[sl] = p[j, : sl.stop - sl.start]
    return out


def top_k(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    ok = labels >= 0
    if not ok.any():
        return float("nan")
    top = np.argsort(-probs[ok], axis=1)[:, :k]
    return float((top == labels[ok, None]).any(axis=1).mean())


def augment(tf, crops, feats, mask, rng_layers):
    """Flips, 90-degree turns, small rotations and zoom, contrast and brightness jitter; feature noise."""
    shape = tf.shape(crops)
    b, n, s = shape[0], shape[1], shape[2]
    x = 1.0 - tf.cast(tf.reshape(crops, [-1, s, s, 1]), tf.float32) / 255.0
    x = tf.image.random_flip_left_right(x)
    x = tf.image.random_flip_up_down(x)
    turn = tf.random.uniform([tf.shape(x)[0], 1, 1, 1]) < 0.5
    x = tf.where(turn, tf.transpose(x, [0, 2, 1, 3]), x)
    for layer in rng_layers:
        x = layer(x, training=True)
    k = tf.shape(x)[0]
    x = x * tf.random.uniform([k, 1, 1, 1], 0.85, 1.15) + tf.random.uniform([k, 1, 1, 1], -0.04, 0.04)
    x = tf.clip_by_value(x, 0.0, 1.0)
    crops = tf.cast(tf.round((1.0 - tf.reshape(x, [b, n, s, s])) * 255.0), tf.uint8)
    feats = feats + tf.random.normal(tf.shape(feats), stddev=0.03) * tf.cast(mask[..., None], tf.float32)
    return crops, feats


def lr_at(cfg: ClassifierConfig, fraction: float) -> float:
    """The learning rate at ``fraction`` (0..1) of the run: linear warm-up, then cosine decay to 0."""
    fraction = min(max(fraction, 0.0), 1.0)
    if fraction < cfg.warmup:
        return cfg.learning_rate * fraction / cfg.warmup
    t = (fraction - cfg.warmup) / max(1e-9, 1.0 - cfg.warmup)
    return cfg.learning_rate * 0.5 * (1.0 + math.cos(math.pi * t))


CLOCKS = ("wall", "cpu")


def _clock(kind: str):
    """Seconds of the budget: wall time, or this process's CPU time over the cores (a budget that others' jobs on
    a shared machine do not eat: 20 CPU minutes on 2 cores is 40 minutes of CPU time)."""
    if kind == "cpu":
        cores = os.cpu_count() or 1
        return lambda: time.process_time() / cores
    return time.perf_counter


def train(records_dir: str | Path = "records", out_dir: str | Path = "runs/classifier", epochs: int | None = None,
          minutes: float | None = None, config: ClassifierConfig | None = None, progress: bool = True,
          on_step=None, limit: int | None = None, clock: str = "wall") -> TrainResult:
    """Train (or resume) a classifier run; see the module doc.  ``epochs`` or ``minutes`` (default 10 epochs).

    ``clock``: what ``minutes`` (and the elapsed time kept in the run) measure: ``wall`` time, or ``cpu`` time of
    this process over the cores (:func:`_clock`).

    ``on_step(step)``: called after every step (tests use it to interrupt).  ``limit``: only the first N cells of
    each split (smoke runs).
    """
    import tensorflow as tf

    from .. import odapi  # noqa: F401  (quiet TF logs)

    out = Path(out_dir)
    if epochs is not None and minutes is not None:
        raise ClassifierError("give --epochs or --minutes, not both")
    if epochs is None and minutes is None:
        epochs = 10
    if clock not in CLOCKS:
        raise ClassifierError(f"clock {clock!r}: choose one of {', '.join(CLOCKS)}")
    if (epochs is not None and epochs < 1) or (minutes is not None and minutes <= 0):
        raise ClassifierError(f"epochs must be >= 1 and minutes > 0 (got epochs={epochs}, minutes={minutes})")
    state = {"epoch": 0, "step": 0, "elapsed": 0.0, "best_val_top1": None, "best_epoch": None, "history": []}
    if (out / RUN_FILE).is_file():
        meta = read_run(out)
        saved = ClassifierConfig(**meta["config"])
        if config is not None and any(getattr(config, k) != getattr(saved, k) for k in ClassifierConfig.SHAPE):
            raise ClassifierError(f"{out} holds a classifier of another shape ({', '.join(f'{k}={getattr(saved, k)}' for k in ClassifierConfig.SHAPE)}) "
                                  "(fix: use another --out, or delete the run dir)")
        if config is not None and config.input != saved.input:
            raise ClassifierError(f"{out} is a run on {saved.input!r} crops, not {config.input!r} (fix: use another "
                                  "--out, or resume it with the input it was started with)")
        config = saved
        state.update(meta.get("state", {}))
    config = config or ClassifierConfig()
    check_input(config.input)
    out.mkdir(parents=True, exist_ok=True)
    tf.keras.utils.set_random_seed(config.seed)
    cache = out / "cache"
    train_cs = from_records(records_dir, "train", config.size, cache, progress, limit, input=config.input)
    val_cs = from_records(records_dir, "val", config.size, cache, progress, limit, input=config.input)
    if train_cs.cells == 0:
        raise ClassifierError(f"{records_dir}: the train split has no cells")

    model = config.model()
    optimizer = tf.keras.optimizers.AdamW(learning_rate=0.0, weight_decay=config.weight_decay, global_clipnorm=2.0)
    lr = optimizer.learning_rate  # the optimizer's own variable (Keras copies a variable passed in)
    step_var = tf.Variable(0, dtype=tf.int64, trainable=False)
    ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step_var)
    manager = tf.train.CheckpointManager(ckpt, str(out / "ckpt"), max_to_keep=2)
    best_ckpt = tf.train.Checkpoint(model=model)
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint)
        log.info("resuming %s from step %d (epoch %d)", out, int(step_var.numpy()), state["epoch"])
    L = tf.keras.layers
    # on a 20-minute CPU budget jitter slows learning more than it regularises: rotation and zoom are off by
    # default (see ClassifierConfig.rotate)
    rng_layers = []
    if config.rotate > 0:
        rng_layers.append(L.RandomRotation(config.rotate, fill_mode="constant", fill_value=0.0, seed=config.seed))
    if config.zoom > 0:
        rng_layers.append(L.RandomZoom(config.zoom, fill_mode="constant", fill_value=0.0, seed=config.seed + 1))
    loss_fn = tf.keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=config.label_smoothing,
                                                      reduction="none")
    num_classes = model.num_classes

    @tf.function(reduce_retracing=True)
    def train_step(crops, feats, mask, labels):
        if config.augment:
            crops, feats = augment(tf, crops, feats, mask, rng_layers)
        with tf.GradientTape() as tape:
            logits = model({"crops": crops, "features": feats, "mask": mask}, training=True)
            onehot = tf.one_hot(tf.maximum(labels, 0), num_classes)
            per = loss_fn(onehot, logits)
            w = tf.cast(labels >= 0, tf.float32)
            loss = tf.reduce_sum(per * w) / tf.maximum(tf.reduce_sum(w), 1.0)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        step_var.assign_add(1)
        return loss

    writer = tf.summary.create_file_writer(str(out / "train"))
    steps_per_epoch = max(1, math.ceil(train_cs.cells / config.cells_per_batch))
    total_steps = None if epochs is None else epochs * steps_per_epoch
    budget = None if minutes is None else minutes * 60.0
    result = TrainResult(run_dir=out, best_val_top1=state["best_val_top1"], best_epoch=state["best_epoch"],
                         history=list(state["history"]))

    def save_state():
        state["step"] = int(step_var.numpy())
        atomic_write_json(out / RUN_FILE, {"kind": "karyotf-classifier", "version": 1, "config": asdict(config),
                                           "records": str(Path(records_dir).resolve()),
                                           "epochs": epochs, "minutes": minutes, "clock": clock,
                                           "state": state})

    def done() -> bool:
        if budget is not None:
            return state["elapsed"] >= budget
        return state["epoch"] >= epochs

    def _validate(losses):
        """Val top-1 at the end of an epoch (or of the budget): keep the best weights, save a checkpoint."""
        val = top_k(predict(model, val_cs), val_cs.labels, 1) if val_cs.cells else float("nan")
        entry = {"epoch": state["epoch"], "step": int(step_var.numpy()), "minutes": round(state["elapsed"] / 60, 2),
                 "train_loss": round(float(np.mean(losses)), 4) if losses else None,
                 "val_top1": None if math.isnan(val) else round(val, 4)}
        state["history"].append(entry)
        log.info("classifier %s", entry)
        with writer.as_default():
            tf.summary.scalar("val_top1", val, step=int(step_var.numpy()))
        if not math.isnan(val) and (state["best_val_top1"] is None or val > state["best_val_top1"]):
            state["best_val_top1"], state["best_epoch"] = val, state["epoch"]
            best_ckpt.write(str(out / "best" / "weights"))
            (out / "best" / "checkpoint").write_text('model_checkpoint_path: "weights"\n')
        manager.save(checkpoint_number=int(step_var.numpy()))
        save_state()

    bar = None
    if progress:
        bar = tqdm(total=total_steps if total_steps else None, initial=int(step_var.numpy()), unit="step",
                   desc="classifier", leave=True)
    now = _clock(clock)
    t_start = now() - state["elapsed"]
    with StopFlag() as stop:
        while not done() and not stop:
            rng = np.random.default_rng(config.seed + 1000 * state["epoch"])
            skip = int(step_var.numpy()) - state["epoch"] * steps_per_epoch  # steps of this epoch already done
            losses = []
            for k, batch in enumerate(batches(train_cs, config.cells_per_batch, rng)):
                if k < skip:
                    continue
                step = int(step_var.numpy())
                fraction = (state["elapsed"] / budget) if budget else step / max(1, total_steps)
                lr.assign(lr_at(config, fraction))
                loss = float(train_step(batch["crops"], batch["features"], batch["mask"], batch["labels"]))
                losses.append(loss)
                state["elapsed"] = now() - t_start
                if bar is not None:
                    bar.update()
                    bar.set_postfix(loss=f"{loss:.3f}", lr=f"{float(lr.numpy()):.2e}")
                if step % 10 == 0:
                    with writer.as_default():
                        tf.summary.scalar("loss", loss, step=step)
                        tf.summary.scalar("learning_rate", float(lr.numpy()), step=step)
                if on_step is not None:
                    on_step(step + 1)
                if stop or (budget is not None and state["elapsed"] >= budget):
                    break
            state["epoch"] = int(step_var.numpy()) // steps_per_epoch
            if stop:
                break  # saved below; validation waits for the resumed run
            _validate(losses)
    if stop:
        manager.save(checkpoint_number=int(step_var.numpy()))
        result.interrupted = True
    if bar is not None:
        bar.close()
    if not (out / "best" / "checkpoint").is_file():  # no val split: the last weights are the best we have
        best_ckpt.write(str(out / "best" / "weights"))
        (out / "best" / "checkpoint").write_text('model_checkpoint_path: "weights"\n')
    save_state()
    writer.flush()
    result.epochs, result.steps, result.seconds = state["epoch"], int(step_var.numpy()), state["elapsed"]
    result.best_val_top1, result.best_epoch, result.history = state["best_val_top1"], state["best_epoch"], state["history"]
    return result
