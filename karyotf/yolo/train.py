"""Train the yolo model for exactly N steps: resumable, progress bar, TensorBoard, checkpoint on SIGINT / SIGTERM.

The same contract as :func:`karyotf.train.train` (which hands yolo model dirs to :func:`train`): ``steps`` is a
total; checkpoints are ``ckpt-N`` (N = the step) in the model dir, holding the step, the model and the optimizer;
re-running resumes from the newest; summaries (losses every step, learning rate, input images) go to
``model_dir/train``.  One step is one call of a ``tf.function`` around KerasCV's ``train_step``.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from tqdm import tqdm

from . import MODEL, config
from ..errors import TrainError
from ..loop import StopFlag, TrainResult, peak_rss_mb, quiet, save_last, step_done
from ..rundir import latest_checkpoint
from .data import dataset, shard_files
from .model import build, compile_model

# Imports inside functions, and why: karyotf.odapi (importing it loads TensorFlow and applies the OD API's
# compatibility shims: only where TensorFlow is about to run); TensorFlow / KerasCV / the OD API (heavy: kept off the
# import path).

log = logging.getLogger(__name__)


def train(model_dir: str | Path, steps: int | None = None, *, strategy: str = "default", checkpoint_every: int = 500,
          keep: int = 7, summary_every: int = 100, progress: bool = True, isolate: bool | None = None,
          verbose: bool = False, callback=None, seed: int | None = None, **_ignored) -> TrainResult:
    """Train the yolo model of ``model_dir`` (made by ``karyotf config yolo``) until its step is ``steps``."""
    from .. import odapi

    model_dir = Path(model_dir)
    cfg = config.read(model_dir)
    if strategy != "default":
        raise TrainError(f"--strategy {strategy} is not available for yolo (it trains on one device; the OD API "
                         "models ssd and rfcn take mirrored / multi_worker / tpu)")
    if steps is None:
        steps = cfg["steps"]
    if steps < 1:
        raise TrainError(f"steps must be >= 1, not {steps}")

    shard_files(cfg["records_dir"], "train")  # RecordsError naming the fix
    latest = latest_checkpoint(model_dir)
    if latest is None or latest[1] < steps:
        config.update_steps(model_dir, steps)
    if latest is not None and latest[1] >= steps:
        log.info("%s is at step %d >= %d", model_dir, latest[1], steps)
        return TrainResult(model_dir=str(model_dir), model=MODEL, tf="tf2", start_step=latest[1],
                           final_step=latest[1], target_steps=steps, checkpoint=latest[0])
    kwargs = dict(model_dir=str(model_dir), steps=int(steps), checkpoint_every=checkpoint_every, keep=keep,
                  summary_every=summary_every, progress=progress, verbose=verbose, seed=seed)
    if isolate or (isolate is None and odapi.mode() == "tf1"):
        if callback is not None:
            raise TrainError("a callback works only for training in this process (isolate=False)")
        return odapi.run_isolated("tf2", "karyotf.yolo.train:_train", **kwargs)
    return _train(**kwargs, callback=callback)


def _train(model_dir: str, steps: int, checkpoint_every: int = 500, keep: int = 7, summary_every: int = 100,
           progress: bool = True, verbose: bool = False, seed: int | None = None, callback=None) -> TrainResult:
    import tensorflow as tf

    quiet(verbose)
    cfg = config.read(model_dir)
    latest = latest_checkpoint(model_dir)
    if seed is not None:
        tf.keras.utils.set_random_seed(seed)
    model = build(cfg, load_weights=latest is None)  # resuming: the checkpoint holds every weight
    compile_model(model, cfg, steps)
    model.optimizer.build(model.trainable_variables)  # slots exist before restore: nothing restores lazily
    global_step = tf.Variable(0, trainable=False, dtype=tf.int64, name="global_step")
    ckpt = tf.train.Checkpoint(step=global_step, model=model, optimizer=model.optimizer)
    manager = tf.train.CheckpointManager(ckpt, model_dir, max_to_keep=keep, step_counter=global_step,
                                         checkpoint_name="ckpt")
    if latest is not None:
        try:
            ckpt.restore(latest[0]).assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as exc:
            raise TrainError(f"{model_dir}: checkpoint {latest[0]} does not fit the model in yolo.json "
                             f"({str(exc).splitlines()[0][:300]}) (fix: train into a new model dir)") from None
        log.info("resuming from %s", latest[0])
    start = int(global_step.numpy())
    iterator = iter(dataset(cfg, "train", training=True, seed=seed))
    train_step = tf.function(model.train_step)
    lr_fn = model.optimizer.learning_rate

    writer = tf.summary.create_file_writer(str(Path(model_dir) / "train"))
    step_seconds: list[float] = []
    losses: dict[str, float] = {}
    bar = tqdm(total=steps, initial=min(start, steps), unit="step", desc=f"train {MODEL}", disable=not progress,
               dynamic_ncols=True)
    saved_step = start
    with writer.as_default(), StopFlag() as stop:
        try:
            while int(global_step.numpy()) < steps and not stop:
                t0 = time.perf_counter()
                images, labels = next(iterator)
                model.reset_metrics()  # Keras' loss trackers are running means: reset, so each step logs its own loss
                out = train_step((images, labels))
                global_step.assign_add(1)
                step_seconds.append(time.perf_counter() - t0)
                step = int(global_step.numpy())
                losses = {"Loss/total_loss": float(out["loss"])}
                for key in ("box_loss", "class_loss"):
                    if key in out:
                        losses[f"Loss/{key}"] = float(out[key])
                if step % summary_every == 0 or step == 1:
                    tf.summary.image("train_input_images", tf.cast(images[:3], tf.uint8), step=step, max_outputs=3)
                lr = float(lr_fn(model.optimizer.iterations) if callable(lr_fn) else lr_fn)
                saved_step = step_done(tf, step, losses, lr, step_seconds[-1], bar, callback, manager, saved_step,
                                       checkpoint_every)
        finally:
            bar.close()
            writer.flush()
            step = int(global_step.numpy())
            save_last(manager, step, saved_step, latest)
    found = latest_checkpoint(model_dir)
    return TrainResult(model_dir=str(model_dir), model=MODEL, tf="tf2", start_step=start, final_step=step,
                       target_steps=steps, checkpoint=found[0] if found else None, interrupted=step < steps,
                       step_seconds=step_seconds, losses=losses, peak_rss_mb=peak_rss_mb())
