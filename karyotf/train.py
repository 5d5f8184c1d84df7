"""OD API training for exactly N steps, resumable, with a progress bar and a checkpoint on SIGINT / SIGTERM.

``train(model_dir, steps)`` trains the model configured in ``model_dir/pipeline.config`` (see
:mod:`karyotf.pipelines`) until its global step reaches ``steps`` (a total, not an increment: re-running resumes
from the last checkpoint and stops at ``steps``).

- TF2 (Keras) models: a small loop built from ``model_lib_v2``'s pieces (``inputs.train_input``,
  ``eager_train_step``, ``reduce_dict``, ``tf.train.CheckpointManager``), one step per ``tf.function`` call, so
  the step count is exact (``model_main_tf2`` trains in chunks of 100) and every step can update the bar.
  Checkpoints are ``ckpt-N`` with N = the global step.
- TF1 (slim) models (``faster_rcnn``): ``model_lib.create_estimator_and_inputs`` + ``estimator.train(max_steps=N)``
  in a TF1-mode child process (:func:`karyotf.odapi.run_isolated`), with session hooks for the bar and for
  stopping on a signal; the estimator writes ``model.ckpt-N`` (also at the end, so an interrupt keeps the work).

TensorBoard summaries go to ``model_dir/train`` (TF2; the estimator writes its events in ``model_dir``).
"""
from __future__ import annotations

import glob
import json
import logging
import os
import signal
import time
from pathlib import Path

from tqdm import tqdm

from . import rundir
from .defaults import CHECKPOINT_EVERY, KEEP_CHECKPOINTS, STRATEGY, SUMMARY_EVERY
from .errors import TrainError
from .loop import StopFlag, TrainResult, peak_rss_mb, quiet, save_last, step_done
from .rundir import latest_checkpoint
from .yolo.train import train as train_yolo

# Imports inside functions, and why: TensorFlow / KerasCV / the OD API (heavy: kept off the import path);
# karyotf.odapi (importing it loads TensorFlow and applies the OD API's compatibility shims: only where TensorFlow is
# about to run).

log = logging.getLogger(__name__)

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")

def cluster_workers() -> tuple[int, int, str] | None:
    """``(this task's index among the workers, number of workers, task type)`` from ``TF_CONFIG``, or None.

    The chief (``"chief"`` task, else worker 0) writes checkpoints and summaries; the others write into temporary
    folders that are removed at the end (``model_lib_v2.get_filepath``).
    """
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        conf = json.loads(raw)
        cluster, task = conf["cluster"], conf.get("task", {})
        workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
        kind, index = task.get("type", "worker"), int(task.get("index", 0))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TrainError(f"TF_CONFIG is not a valid cluster spec ({exc}): it must look like "
                         '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", '
                         '"index": 0}}') from None
    position = index + (len(cluster.get("chief", [])) if kind == "worker" else 0)
    return position, workers, kind


def device_text(strategy: str = STRATEGY) -> str:
    """What training runs on, for the user: GPU names (or the CPU), and the task's place in a multi-worker cluster.

    Lists physical devices only (no TF context is created, so a MultiWorkerMirroredStrategy can still be built).
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = []
        for gpu in gpus:
            try:
                detail = tf.config.experimental.get_device_details(gpu).get("device_name", "")
            except Exception:  # noqa: BLE001 - details are a nicety
                detail = ""
            names.append(gpu.name.replace("/physical_device:", "") + (f" ({detail})" if detail else ""))
        text = f"{len(gpus)} GPU{'s' if len(gpus) > 1 else ''}: " + ", ".join(names)
        if strategy == "default" and len(gpus) > 1:
            text += " (one is used; --strategy mirrored uses all)"
    else:
        text = f"CPU ({os.cpu_count()} cores; TensorFlow sees no GPU)"
    if strategy == "multi_worker":
        cluster = cluster_workers()
        if cluster:
            position, workers, kind = cluster
            text += f"; {kind} task, worker {position + 1} of {workers}" + (" (chief: writes checkpoints)"
                                                                          if position == 0 else "")
    return text


def _make_strategy(name: str, tpu: str | None = None):
    """tf.distribute strategies the OD API's TF2 loop supports (as model_main_tf2 builds them)."""
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":  # every local GPU (or the CPU) of this machine, synchronous
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":  # several machines; each reads its role from the TF_CONFIG environment variable
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise TrainError(f"unknown strategy {name!r}: choose one of {', '.join(STRATEGIES)}")


def _train_tf2(model_dir: str, steps: int, strategy: str = STRATEGY, tpu: str | None = None,
               checkpoint_every: int = CHECKPOINT_EVERY, keep: int = KEEP_CHECKPOINTS,
               summary_every: int = SUMMARY_EVERY, progress: bool = True,
               model: str = "", verbose: bool = False, callback=None) -> TrainResult:
    import tensorflow as tf

    quiet(verbose)
    from . import odapi

    od = odapi.train_tf2_parts()
    inputs, model_lib_v2, model_builder = od.inputs, od.model_lib_v2, od.model_builder
    optimizer_builder, config_util, variables_helper = od.optimizer_builder, od.config_util, od.variables_helper

    model_dir = str(model_dir)
    configs = odapi.configs_from_proto(rundir.model_config(model_dir))
    model_config = configs["model"]
    train_config = configs["train_config"]
    train_input_config = configs["train_input_config"]
    unpad = train_config.unpad_groundtruth_tensors
    clip = train_config.gradient_clipping_by_norm or None
    config_util.update_fine_tune_checkpoint_type(train_config)

    dist = _make_strategy(strategy, tpu)
    with dist.scope():
        detection_model = model_builder.build(model_config=model_config, is_training=True, add_summaries=True)

        def dataset_fn(input_context):
            return inputs.train_input(train_config=train_config, train_input_config=train_input_config,
                                      model_config=model_config, model=detection_model,
                                      input_context=input_context).repeat()

        train_input = dist.distribute_datasets_from_function(dataset_fn)
        global_step = tf.Variable(0, trainable=False, dtype=tf.int64, name="global_step",
                                  aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        optimizer, (learning_rate,) = optimizer_builder.build(train_config.optimizer, global_step=global_step)
        lr_fn = learning_rate if callable(learning_rate) else (lambda: learning_rate)

    manager_dir = model_lib_v2.get_filepath(dist, model_dir)
    summary_dir = model_lib_v2.get_filepath(dist, str(Path(model_dir) / "train"))
    writer = tf.summary.create_file_writer(summary_dir)
    step_seconds: list[float] = []
    losses: dict[str, float] = {}
    interrupted = False
    with writer.as_default(), dist.scope(), StopFlag() as stop:
        ckpt = tf.train.Checkpoint(step=global_step, model=detection_model, optimizer=optimizer)
        manager = tf.train.CheckpointManager(ckpt, manager_dir, max_to_keep=keep if dist.extended.should_checkpoint
                                             else 1, step_counter=global_step, checkpoint_name="ckpt")
        latest = latest_checkpoint(model_dir)
        if latest is None and train_config.fine_tune_checkpoint:
            variables_helper.ensure_checkpoint_supported(
                train_config.fine_tune_checkpoint, train_config.fine_tune_checkpoint_type, model_dir)
            model_lib_v2.load_fine_tune_checkpoint(
                detection_model, train_config.fine_tune_checkpoint, train_config.fine_tune_checkpoint_type,
                train_config.fine_tune_checkpoint_version, train_config.run_fine_tune_checkpoint_dummy_computation,
                train_input, unpad)
            log.info("fine-tuning from %s (%s)", train_config.fine_tune_checkpoint,
                     train_config.fine_tune_checkpoint_type)
        status = ckpt.restore(latest[0]) if latest else None

        def train_step_fn(features, labels):
            tf.summary.image("train_input_images", features["image"], step=global_step, max_outputs=3)
            loss_dict = model_lib_v2.eager_train_step(
                detection_model, features, labels, unpad, optimizer, training_step=global_step,
                add_regularization_loss=train_config.add_regularization_loss, clip_gradients_value=clip,
                num_replicas=dist.num_replicas_in_sync)
            global_step.assign_add(1)
            return loss_dict

        @tf.function
        def dist_train_step(iterator):
            features, labels = next(iterator)
            per_replica = dist.run(train_step_fn, args=(features, labels))
            return model_lib_v2.reduce_dict(dist, per_replica, tf.distribute.ReduceOp.SUM)

        def should_stop() -> bool:
            if strategy != "multi_worker":
                return bool(stop)
            # Workers must stop at the same step: one stopping alone would leave the others waiting in the next
            # all-reduce.  So the local flags (SIGINT/SIGTERM on any worker) are summed across workers.
            flag = tf.constant(1 if stop else 0, dtype=tf.int32)
            return int(dist.reduce(tf.distribute.ReduceOp.SUM, dist.run(lambda: tf.identity(flag)), axis=None)) > 0

        iterator = iter(train_input)
        start = int(global_step.numpy())
        bar = tqdm(total=steps, initial=min(start, steps), unit="step", desc=f"train {model or ''}".strip(),
                   disable=not progress, dynamic_ncols=True)
        saved_step = start
        try:
            with tf.summary.record_if(lambda: tf.equal(global_step % summary_every, 0)):
                while int(global_step.numpy()) < steps and not should_stop():
                    t0 = time.perf_counter()
                    try:
                        loss_dict = dist_train_step(iterator)
                    except (ValueError, tf.errors.InvalidArgumentError) as exc:
                        if status is not None and not step_seconds and "shape" in str(exc).lower():
                            raise TrainError(
                                f"{model_dir}: checkpoint {latest[0]} does not fit the model in pipeline.config "
                                f"({str(exc).splitlines()[0][:300]}) (fix: train into a new --model-dir, "
                                f"e.g. with `karyotf config ... --fine-tune {latest[0]}`)") from None
                        raise
                    step_seconds.append(time.perf_counter() - t0)
                    losses = {k: float(v) for k, v in loss_dict.items()}
                    step = int(global_step.numpy())
                    saved_step = step_done(tf, step, losses, float(lr_fn()), step_seconds[-1], bar, callback,
                                           manager, saved_step, checkpoint_every)
        finally:
            bar.close()
            writer.flush()
        step = int(global_step.numpy())
        save_last(manager, step, saved_step, latest)
        interrupted = step < steps  # stopped by a signal (here or, multi-worker, on another worker)
    model_lib_v2.clean_temporary_directories(dist, manager_dir)
    model_lib_v2.clean_temporary_directories(dist, summary_dir)
    if dist.extended.should_checkpoint:
        found = latest_checkpoint(model_dir)
        checkpoint = found[0] if found else None
    else:  # a non-chief worker saved into a temporary folder (now removed); the chief writes this one
        checkpoint = str(Path(model_dir) / f"ckpt-{step}")
    return TrainResult(model_dir=model_dir, model=model, tf="tf2", start_step=start, final_step=step,
                       target_steps=steps, checkpoint=checkpoint, interrupted=interrupted,
                       step_seconds=step_seconds, losses=losses, peak_rss_mb=peak_rss_mb())


def _train_tf1(model_dir: str, steps: int, strategy: str = STRATEGY, tpu: str | None = None,
               checkpoint_every: int = CHECKPOINT_EVERY, keep: int = KEEP_CHECKPOINTS,
               summary_every: int = SUMMARY_EVERY, progress: bool = True,
               model: str = "", verbose: bool = False) -> TrainResult:
    """Estimator training (TF1 graph mode); call only in a process where :func:`karyotf.odapi.enable_tf1` ran."""
    from . import odapi

    if odapi.mode() != "tf1":
        raise TrainError("TF1 training needs a TF1-mode process (use karyotf.train.train, which isolates it)")
    import tensorflow.compat.v1 as tf

    quiet(verbose)
    model_lib = odapi.train_tf1_parts().model_lib

    if strategy == "tpu":
        raise TrainError("--strategy tpu is not available for TF1 models (the OD API needs TPUEstimator, "
                         "model_tpu_main.py, for those); use a TF2 model (ssd, rfcn) on TPUs")
    distribute = None
    if strategy == "mirrored":
        distribute = tf.distribute.MirroredStrategy()
    latest = latest_checkpoint(model_dir)
    start = latest[1] if latest else 0
    # Summaries go to model_dir/train (as on the TF2 path) through _Summaries below, not the estimator's own hook.
    run_config = tf.estimator.RunConfig(
        model_dir=str(model_dir), save_checkpoints_steps=checkpoint_every, keep_checkpoint_max=keep,
        save_summary_steps=None, log_step_count_steps=None, train_distribute=distribute)
    made = model_lib.create_estimator_and_inputs(  # hparams: else fine_tune_checkpoint is ignored (odapi.TF1HParams)
        run_config=run_config, hparams=odapi.TF1HParams(),
        pipeline_config_path=str(Path(model_dir) / rundir.PIPELINE), train_steps=steps)
    estimator, train_input_fn = made["estimator"], made["train_input_fn"]

    state = {"seconds": [], "losses": {}, "stop": None, "step": start}

    class _Hook(tf.train.SessionRunHook):
        """tqdm bar (loss, steps/s) and a clean stop on SIGINT/SIGTERM (the estimator then saves a checkpoint)."""

        def begin(self):
            graph = tf.get_default_graph()
            self._loss = graph.get_tensor_by_name("total_loss:0")
            self._step = tf.train.get_global_step()
            self._bar = tqdm(total=steps, initial=min(start, steps), unit="step",
                             desc=f"train {model}".strip(), disable=not progress, dynamic_ncols=True)

        def before_run(self, run_context):  # noqa: ARG002
            self._t0 = time.perf_counter()
            return tf.train.SessionRunArgs({"loss": self._loss, "step": self._step})

        def after_run(self, run_context, run_values):
            state["seconds"].append(time.perf_counter() - self._t0)
            loss = float(run_values.results["loss"])
            state["losses"] = {"Loss/total_loss": loss}
            state["step"] = int(run_values.results["step"]) + 1
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
            if stop:
                run_context.request_stop()

        def end(self, session):  # noqa: ARG002
            self._bar.close()

    class _Summaries(tf.train.SummarySaverHook):
        """The graph's summaries (losses, learning rate, ...) every ``summary_every`` steps into model_dir/train;
        the summary op is looked up once the estimator has built the graph."""

        def __init__(self):
            super().__init__(save_steps=summary_every, output_dir=str(Path(model_dir) / "train"),
                             scaffold=tf.train.Scaffold())

        def begin(self):
            super().begin()
            self._merged = tf.summary.merge_all()

        def _get_summary_op(self):
            return [self._merged] if self._merged is not None else None

    with StopFlag() as stop:
        try:
            estimator.train(input_fn=train_input_fn, max_steps=steps, hooks=[_Hook(), _Summaries()])
        except (ValueError, tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as exc:
            if latest is not None and ("shape" in str(exc).lower() or "not found in checkpoint" in str(exc)):
                raise TrainError(
                    f"{model_dir}: checkpoint {latest[0]} does not fit the model in pipeline.config "
                    f"({str(exc).splitlines()[0][:300]}) (fix: train into a new --model-dir)") from None
            raise
        interrupted = bool(stop)
    found = latest_checkpoint(model_dir)
    return TrainResult(model_dir=str(model_dir), model=model, tf="tf1", start_step=start,
                       final_step=found[1] if found else start, target_steps=steps,
                       checkpoint=found[0] if found else None, interrupted=interrupted,
                       step_seconds=state["seconds"], losses=state["losses"], peak_rss_mb=peak_rss_mb())


def _check_multi_worker(cfg, tf_mode: str, cfg_path: Path) -> None:
    """What multi-worker training needs before any worker starts waiting for the others."""
    if tf_mode == "tf1":
        raise TrainError(
            "--strategy multi_worker is not available for faster_rcnn: the TF1 path trains with the OD API's "
            "estimator on one machine, which karyotf does not distribute across machines; train a TF2 model "
            "(ssd, rfcn) on several machines")
    cluster = cluster_workers()
    if cluster is None:
        raise TrainError(
            "--strategy multi_worker needs TF_CONFIG on every worker, e.g. TF_CONFIG='{\"cluster\": {\"worker\": "
            "[\"host1:2222\", \"host2:2222\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}' "
            "(index 1 on the second machine; see the README's multi-machine recipe)")
    workers = cluster[1]
    batch = cfg.train_config.batch_size
    if batch % workers:
        raise TrainError(f"{cfg_path}: batch {batch} does not split evenly across {workers} workers (tf.distribute "
                         f"gives each worker batch / workers) (fix: `karyotf config ... --batch "
                         f"{max(workers, batch - batch % workers)}`)")
    shards = sum(len(glob.glob(p)) for p in cfg.train_input_reader.tf_record_input_reader.input_path)
    if shards < workers:
        # the OD API gives each worker its own subset of the record files; a worker with none never gets a batch
        raise TrainError(
            f"{cfg_path}: {shards} training record file(s) for {workers} workers: the OD API shards the input by "
            f"file, one subset a worker (fix: `karyotf records SRC --out RECORDS --shards {workers}` or more, "
            f"then `karyotf config` again)")


def train(model_dir: str | Path, steps: int | None = None, *, strategy: str = STRATEGY, tpu: str | None = None,
          checkpoint_every: int = CHECKPOINT_EVERY, keep: int = KEEP_CHECKPOINTS, summary_every: int = SUMMARY_EVERY,
          progress: bool = True,
          isolate: bool | None = None, verbose: bool = False, callback=None) -> TrainResult:
    """Train the model in ``model_dir`` (made by ``karyotf config``) until its global step is ``steps``.

    ``steps`` defaults to ``train_config.num_steps``; a different value is written back into pipeline.config
    (the cosine schedule ends there).  Re-running resumes from the newest checkpoint; a model already at
    ``steps`` returns at once.  SIGINT / SIGTERM finish the current step, save a checkpoint and return with
    ``interrupted=True``.  TF1 models always train in a TF1 child process; TF2 models train in this process
    unless ``isolate`` (default: only if this process is in TF1 mode).  ``callback(step, losses)`` is called
    after every step of in-process (TF2) training, e.g. for early stopping or notebook plots.
    """
    from . import odapi, pipelines

    model_dir = Path(model_dir)
    if rundir.is_yolo_dir(model_dir):  # KerasCV YOLOv8 (issue 13): its own loop, same contract

        return train_yolo(model_dir, steps, strategy=strategy, checkpoint_every=checkpoint_every, keep=keep,
                          summary_every=summary_every, progress=progress, isolate=isolate, verbose=verbose,
                          callback=callback)
    cfg_path = model_dir / rundir.PIPELINE
    if not cfg_path.is_file():
        raise TrainError(f"{model_dir}: no {rundir.PIPELINE} (fix: run `karyotf config MODEL "
                         f"--records RECORDS --out {model_dir}` first)")
    if strategy not in STRATEGIES:
        raise TrainError(f"unknown strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    cfg = rundir.read_config(cfg_path)
    tf_mode = pipelines.tf_mode(cfg)
    if strategy == "multi_worker":
        _check_multi_worker(cfg, tf_mode, cfg_path)
    if steps is None:
        steps = cfg.train_config.num_steps
        if not steps:
            raise TrainError(f"{cfg_path}: train_config.num_steps is 0 (fix: pass --steps N)")
    if steps < 1:
        raise TrainError(f"steps must be >= 1, not {steps}")
    for path in cfg.train_input_reader.tf_record_input_reader.input_path:
        if not glob.glob(path):
            raise TrainError(f"{cfg_path}: no TFRecord matches {path} (fix: run `karyotf records` again, or "
                             f"`karyotf config` with the right --records)")
    latest = latest_checkpoint(model_dir)
    if latest is None or latest[1] < steps:  # keep num_steps of a finished run when only asking "done?"
        pipelines.update_steps(model_dir, steps)
    info = rundir.read_info(model_dir)
    if latest is not None and latest[1] >= steps:  # nothing to do: answer without building the model
        log.info("%s is at step %d >= %d", model_dir, latest[1], steps)
        return TrainResult(model_dir=str(model_dir), model=info.get("model", ""), tf=tf_mode, start_step=latest[1],
                           final_step=latest[1], target_steps=steps, checkpoint=latest[0])
    kwargs = dict(model_dir=str(model_dir), steps=int(steps), strategy=strategy, tpu=tpu,
                  checkpoint_every=checkpoint_every, keep=keep, summary_every=summary_every, progress=progress,
                  model=info.get("model", ""), verbose=verbose)
    in_process = tf_mode == "tf2" and not (isolate or (isolate is None and odapi.mode() == "tf1"))
    if callback is not None and not in_process:
        raise TrainError("a callback works only for TF2 models trained in this process (isolate=False)")
    if callback is not None:
        kwargs["callback"] = callback
    if tf_mode == "tf1":
        return odapi.run_isolated("tf1", "karyotf.train:_train_tf1", **kwargs)
    if isolate or (isolate is None and odapi.mode() == "tf1"):
        return odapi.run_isolated("tf2", "karyotf.train:_train_tf2", **kwargs)
    return _train_tf2(**kwargs)
