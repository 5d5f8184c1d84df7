"""The parts every training loop shares: the OD API's (:mod:`karyotf.train`), yolo's (:mod:`karyotf.yolo.train`)
and the classifier's (:mod:`karyotf.classify.train`).

- :class:`StopFlag`: SIGINT / SIGTERM set a flag; the loop finishes its step, saves a checkpoint and returns;
- :func:`step_done`: the bookkeeping after one step (TensorBoard scalars, progress bar, callback, checkpoint
  every N steps); :func:`save_last`: the checkpoint of the step a loop stopped at;
- :func:`peak_rss_mb`: peak memory; :func:`quiet`: TF's loggers kept off the progress bar;
- :class:`TrainResult`: what a detector's training returns.
"""
from __future__ import annotations

import logging
import resource
import signal
import statistics
import threading
import warnings
from dataclasses import dataclass, field

# Imports inside functions, and why: TensorFlow / KerasCV / the OD API (heavy: kept off the import path).

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model_dir: str
    model: str
    tf: str
    start_step: int
    final_step: int
    target_steps: int
    checkpoint: str | None
    interrupted: bool = False
    step_seconds: list[float] = field(default_factory=list)
    """Wall time of each step run (the first includes graph tracing / building)."""
    losses: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    """Peak resident memory of the process that trained (the TF1 child for faster_rcnn)."""

    @property
    def steps_run(self) -> int:
        return self.final_step - self.start_step

    @property
    def seconds_per_step(self) -> float | None:
        """Median step time after the first step of this run (which includes tracing)."""
        later = self.step_seconds[1:]
        return statistics.median(later) if later else None

    def text(self) -> str:
        if self.steps_run == 0 and not self.interrupted:
            return f"{self.model_dir}: already at step {self.final_step} >= {self.target_steps}; nothing to train"
        sps = self.seconds_per_step
        loss = self.losses.get("Loss/total_loss")
        return (f"{self.model_dir}: trained steps {self.start_step}->{self.final_step} of {self.target_steps}"
                + (" (interrupted)" if self.interrupted else "")
                + (f", {sps:.2f} s/step" if sps else "")
                + (f", total loss {loss:.3f}" if loss is not None else "")
                + f"; checkpoint {self.checkpoint}")


class StopFlag:
    """SIGINT / SIGTERM set a flag instead of killing the process; the loop saves a checkpoint and returns."""

    def __init__(self):
        self.signum: int | None = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):  # noqa: ARG002
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now, without saving
        self.signum = signum
        log.warning("signal %d: finishing this step, saving a checkpoint, then stopping", signum)

    def __bool__(self):
        return self.signum is not None

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


def step_done(tf, step: int, losses: dict[str, float], lr: float, seconds: float, bar, callback, manager,
              saved_step: int, checkpoint_every: int) -> int:
    """The bookkeeping after one training step, shared by the OD API loop and yolo's: TensorBoard scalars (each
    loss, the learning rate, steps/s), the progress bar, the caller's callback, and a checkpoint every
    ``checkpoint_every`` steps.  Returns the step of the newest checkpoint."""
    with tf.summary.record_if(True):
        for key, value in losses.items():
            tf.summary.scalar(key, value, step=step)
        tf.summary.scalar("learning_rate", lr, step=step)
        tf.summary.scalar("steps_per_sec", 1.0 / max(seconds, 1e-9), step=step)
    bar.update(1)
    bar.set_postfix(loss=f"{losses.get('Loss/total_loss', float('nan')):.3f}", lr=f"{lr:.2g}", refresh=False)
    if callback is not None:
        callback(step, losses)
    if step - saved_step >= checkpoint_every:
        manager.save(checkpoint_number=step)
        return step
    return saved_step


def save_last(manager, step: int, saved_step: int, resumed_from) -> None:
    """Checkpoint the step a loop stopped at (end, signal or error), unless that step is saved already; a run
    that started from nothing always leaves one checkpoint."""
    if step != saved_step or resumed_from is None:
        manager.save(checkpoint_number=step)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def quiet(verbose: bool) -> None:
    """TF's Python logger (deprecation notes, per-layer INFO lines) and warnings drown the progress bar."""
    if verbose:
        return
    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
