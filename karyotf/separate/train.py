"""Train the separation U-Net on synthetic crossings of the records' **train** split, select on **val**; resumable.

A run dir holds::

    separate.json   settings, progress (epoch, elapsed seconds), the best val IoU and its epoch
    ckpt/           the latest checkpoint (model, optimizer, epoch): a rerun resumes from it
    best/           weights of the epoch with the best val mask IoU (what ``export`` and ``Separator`` use)
    cache/          the isolated chromosomes' samples (``.npz``): a resumed run does not build them again

Training windows come from scenes (:mod:`karyotf.separate.synth`) built from the isolated chromosomes of the
train split only, validation windows from the val split's (seeded: the same run dir and seed give the same
data).  The test split is left for ``bench/separate.py``.  SIGINT finishes the batch, saves and stops.
"""
from __future__ import annotations

import json
import logging
import math
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from ..errors import SeparateError
from ..io import atomic_path, atomic_write_json, replace_dir
from .inputs import darkness, make_input, target_of
from .model import SeparateConfig, build_unet

# Imports inside functions, and why: karyotf.separate (it loads heavy libraries at its top); TensorFlow / KerasCV /
# the OD API (heavy: kept off the import path).

log = logging.getLogger(__name__)

RUN_FILE = "separate.json"
WEIGHTS = "model.weights.h5"


def windows(scenes, size: int, context: float, limit: int, targets: str = "all") -> dict[str, np.ndarray]:
    """Model windows from scenes: ``x`` (N, S, S, 3) uint8 (x 255), ``y`` target (N, S, S) uint8, ``other``
    (N, S, S) uint8 (the other chromosomes' masks, for the loss weight).  ``targets``: ``all`` chromosomes of
    a scene or only its ``pair``."""
    xs, ys, os_ = [], [], []
    for s in scenes:
        dark = darkness(s.image[..., 0], s.background)
        ks = range(len(s.boxes)) if targets == "all" else s.pair
        for k in ks:
            others = [b for j, b in enumerate(s.boxes) if j != k]
            x, win = make_input(dark, s.boxes[k], others, size, context)
            other = np.any([m for j, m in enumerate(s.masks) if j != k], axis=0)
            xs.append(np.round(x * 255).astype(np.uint8))
            ys.append(np.round(target_of(s.masks[k], win) * 255).astype(np.uint8))
            os_.append(np.round(target_of(other, win) * 255).astype(np.uint8))
            if len(xs) >= limit:
                return {"x": np.stack(xs), "y": np.stack(ys), "other": np.stack(os_)}
    return {"x": np.stack(xs), "y": np.stack(ys), "other": np.stack(os_)}


def build_data(records_dir: str | Path, split: str, n: int, cfg: SeparateConfig, seed: int,
               cache_dir: Path | None = None, progress: bool = True) -> dict[str, np.ndarray]:
    """``n`` windows from scenes of one split's isolated chromosomes (cached as ``.npz`` in ``cache_dir``)."""
    from . import synth

    records_dir = Path(records_dir)
    cache = None
    if cache_dir is not None:
        key = f"{split}-{n}-{cfg.size}-{cfg.context:g}-{cfg.touch_p:g}-{cfg.extra[0]}{cfg.extra[1]}-{seed}"
        cache = cache_dir / f"windows-{key}.npz"
        if cache.is_file():
            with np.load(cache) as z:
                return {k: z[k] for k in z.files}
    chromosomes = synth.isolated_from_records(records_dir, split, progress=progress)
    if len(chromosomes) < 2:
        raise SeparateError(f"{records_dir}: the {split} split has {len(chromosomes)} isolated chromosome(s); a "
                            "crossing needs two (fix: build the records from more cells)")
    log.info("%s: %d isolated chromosomes", split, len(chromosomes))
    data = windows(synth.scenes(chromosomes, n, seed=seed, touch_p=cfg.touch_p, extra=cfg.extra),
                   cfg.size, cfg.context, n)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **data)
    return data


def _tensors(batch: dict[str, np.ndarray], augment: bool, rng: np.random.Generator | None = None):
    x = batch["x"].astype(np.float32) / 255
    y = batch["y"].astype(np.float32)[..., None] / 255
    o = batch["other"].astype(np.float32)[..., None] / 255
    if augment and rng is not None:  # the 8 symmetries of the square
        k = int(rng.integers(4))
        x, y, o = (np.rot90(a, k, axes=(1, 2)) for a in (x, y, o))
        if rng.random() < 0.5:
            x, y, o = (a[:, :, ::-1] for a in (x, y, o))
    return np.ascontiguousarray(x), np.ascontiguousarray(y), np.ascontiguousarray(o)


def mask_iou(prob: np.ndarray, target: np.ndarray, dark: np.ndarray) -> float:
    """Mean IoU over windows of ``prob > 0.5`` against ``target > 0.5``, both within the dark pixels (the
    foreground: what the separator keeps)."""
    fg = dark > 0.08
    p, t = (prob > 0.5) & fg, (target > 0.5) & fg
    inter = (p & t).sum(axis=(1, 2))
    union = (p | t).sum(axis=(1, 2))
    return float(np.mean(inter / np.maximum(union, 1)))


def read_run(run_dir: str | Path) -> dict:
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise SeparateError(f"{run_dir}: no {RUN_FILE} (fix: train with `karyotf separate train RECORDS --out "
                            f"{run_dir}`, or give an export from `karyotf separate export`)")
    return json.loads(path.read_text())


def train(records_dir: str | Path, run_dir: str | Path, cfg: SeparateConfig | None = None,
          progress: bool = True) -> dict:
    """Train (or resume) a separation run; returns the run's state (``best_iou``, ``best_epoch``, ...)."""
    import tensorflow as tf

    run_dir = Path(run_dir)
    run_file = run_dir / RUN_FILE
    state = {}
    if run_file.is_file():
        state = json.loads(run_file.read_text())
        old = SeparateConfig.from_dict(state["config"])
        if cfg is not None and (cfg.size, cfg.width) != (old.size, old.width):
            raise SeparateError(f"{run_dir}: a run of size {old.size}, width {old.width} is there; this one "
                                f"asks for {cfg.size}, {cfg.width} (fix: another --out, or the same settings)")
        if cfg is not None:  # a resume may extend the length
            old.epochs, old.minutes = cfg.epochs, cfg.minutes
        cfg = old
    cfg = cfg or SeparateConfig()
    run_dir.mkdir(parents=True, exist_ok=True)
    state.setdefault("epoch", 0)
    state.setdefault("elapsed", 0.0)
    state.setdefault("best_iou", -1.0)
    state.setdefault("best_epoch", None)
    state["config"] = cfg.to_dict()
    state["records"] = str(Path(records_dir).resolve())
    train_data = build_data(records_dir, "train", cfg.train_samples, cfg, seed=cfg.seed,
                            cache_dir=run_dir / "cache", progress=progress)
    val_data = build_data(records_dir, "val", cfg.val_samples, cfg, seed=cfg.seed + 1_000_003,
                          cache_dir=run_dir / "cache", progress=progress)
    state["samples"] = {"train": int(len(train_data["x"])), "val": int(len(val_data["x"]))}

    model = build_unet(cfg.size, cfg.width)
    opt = tf.keras.optimizers.Adam(cfg.lr)
    epoch_var = tf.Variable(0, dtype=tf.int64)
    ckpt = tf.train.Checkpoint(model=model, optimizer=opt, epoch=epoch_var)
    manager = tf.train.CheckpointManager(ckpt, str(run_dir / "ckpt"), max_to_keep=1)
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint)
        log.info("resumed %s at epoch %d", run_dir, int(epoch_var.numpy()))
    bce = tf.keras.losses.BinaryCrossentropy(from_logits=True, reduction="none")

    @tf.function(reduce_retracing=True)
    def step(x, y, o):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            w = 1.0 + cfg.overlap_weight * o
            loss_px = bce(y, logits)[..., None] * w
            p = tf.sigmoid(logits)
            inter = tf.reduce_sum(p * y, axis=(1, 2, 3))
            dice = 1 - (2 * inter + 1) / (tf.reduce_sum(p, axis=(1, 2, 3)) + tf.reduce_sum(y, axis=(1, 2, 3)) + 1)
            loss = tf.reduce_mean(loss_px) + 0.5 * tf.reduce_mean(dice)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    stop = {"now": False}

    def on_signal(signum, frame):  # finish the batch, save, stop
        stop["now"] = True

    old_handler = signal.signal(signal.SIGINT, on_signal)
    n = len(train_data["x"])
    steps_per_epoch = max(1, n // cfg.batch)
    rng = np.random.default_rng(cfg.seed + int(epoch_var.numpy()))
    t_start = time.perf_counter() - float(state["elapsed"])
    try:
        while int(epoch_var.numpy()) < cfg.epochs and not stop["now"]:
            if cfg.minutes is not None and time.perf_counter() - t_start > 60 * cfg.minutes:
                break
            epoch = int(epoch_var.numpy())
            frac = epoch / max(cfg.epochs, 1)
            opt.learning_rate.assign(cfg.lr * 0.5 * (1 + math.cos(math.pi * frac)))
            order = rng.permutation(n)
            it = range(steps_per_epoch)
            if progress:
                it = tqdm(it, desc=f"separate epoch {epoch + 1}/{cfg.epochs}", unit="batch", leave=False)
            losses = []
            for s in it:
                idx = np.sort(order[s * cfg.batch:(s + 1) * cfg.batch])
                x, y, o = _tensors({k: v[idx] for k, v in train_data.items()}, True, rng)
                losses.append(float(step(x, y, o)))
                if progress:
                    it.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
                if stop["now"]:
                    break
            if stop["now"] and len(losses) < steps_per_epoch:
                manager.save()
                break
            epoch_var.assign_add(1)
            val_iou = evaluate_windows(model, val_data)
            state.update(epoch=int(epoch_var.numpy()), elapsed=time.perf_counter() - t_start,
                         loss=float(np.mean(losses)), val_iou=val_iou)
            log.info("epoch %d: loss %.4f, val window IoU %.4f", state["epoch"], state["loss"], val_iou)
            if val_iou > state["best_iou"]:
                state.update(best_iou=val_iou, best_epoch=state["epoch"])
                _save_weights(model, run_dir / "best")
            manager.save()
            atomic_write_json(run_file, state)
    finally:
        signal.signal(signal.SIGINT, old_handler)
    state["elapsed"] = time.perf_counter() - t_start
    atomic_write_json(run_file, state)
    return state


def evaluate_windows(model, data: dict[str, np.ndarray], batch: int = 64) -> float:
    probs = []
    for i in range(0, len(data["x"]), batch):
        x, _, _ = _tensors({k: v[i:i + batch] for k, v in data.items()}, False)
        probs.append(1 / (1 + np.exp(-model(x, training=False).numpy()[..., 0])))
    prob = np.concatenate(probs)
    return mask_iou(prob, data["y"].astype(np.float32) / 255, data["x"][..., 0].astype(np.float32) / 255)


def _save_weights(model, folder: Path) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    model.save_weights(str(tmp / WEIGHTS))
    replace_dir(tmp, folder)


def export(run_dir: str | Path, out_dir: str | Path) -> Path:
    """Write the run's best weights and settings to ``out_dir`` (``separate.json`` + ``model.weights.h5``)."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    state = read_run(run_dir)
    best = run_dir / "best" / WEIGHTS
    if not best.is_file():
        raise SeparateError(f"{run_dir}: no best/{WEIGHTS} yet (fix: let `karyotf separate train` finish an epoch)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    shutil.copyfile(best, tmp / WEIGHTS)
    meta = {"kind": "karyotf-separate", "config": state["config"], "best_iou": state.get("best_iou"),
            "best_epoch": state.get("best_epoch"), "records": state.get("records"), "samples": state.get("samples")}
    (tmp / RUN_FILE).write_text(json.dumps(meta, indent=2))
    replace_dir(tmp, out_dir)
    return out_dir


def load_model(path: str | Path):
    """(Keras model, config) from an export (``separate.json`` + weights) or a run dir (its ``best/``)."""
    path = Path(path)
    state = read_run(path)
    cfg = SeparateConfig.from_dict(state["config"])
    weights = path / WEIGHTS if (path / WEIGHTS).is_file() else path / "best" / WEIGHTS
    if not weights.is_file():
        raise SeparateError(f"{path}: no {WEIGHTS} (fix: train until one epoch is done, or export the run)")
    model = build_unet(cfg.size, cfg.width)
    model.load_weights(str(weights))
    return model, cfg
