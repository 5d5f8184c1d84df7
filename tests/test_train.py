"""Training: exact step counts, resume, TensorBoard events, fine-tuning from a local checkpoint, SIGTERM.

Each model trains on 4 sample cells at 128 px (two-stage models: 8 proposals), batch 2.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from karyotf import pipelines
from karyotf.errors import TrainError
from karyotf.train import latest_checkpoint, train

TINY = dict(batch=2, image_size=128)


@pytest.fixture(scope="module")
def records(tmp_path_factory, sample_dir) -> Path:
    from karyotf.records import build_records, split_files

    from conftest import copy_cells

    root = tmp_path_factory.mktemp("train")
    src = copy_cells(sample_dir, root / "cells")
    out = root / "records"
    build_records(src, out, fractions=(1.0, 0.0, 0.0), progress=False)
    assert split_files(out, "train")
    return out


def _event_steps(model_dir: Path, tag: str = "Loss/total_loss") -> list[int]:
    import tensorflow as tf

    steps = []
    for f in sorted((model_dir / "train").glob("events.out.tfevents.*")):
        for e in tf.compat.v1.train.summary_iterator(str(f)):
            steps += [e.step for v in e.summary.value if v.tag == tag]
    return sorted(steps)


@pytest.fixture(scope="module")
def ssd_run(records, tmp_path_factory) -> Path:
    """`karyotf config ssd` + `karyotf train ssd --steps 2` through the CLI."""
    from karyotf.cli import main

    model_dir = tmp_path_factory.mktemp("runs") / "ssd"
    assert main(["config", "ssd", "--records", str(records), "--out", str(model_dir), "--batch", "2",
                 "--image-size", "128", "--steps", "100"]) == 0
    assert main(["train", "ssd", "--model-dir", str(model_dir), "--steps", "2", "--no-progress"]) == 0
    return model_dir


@pytest.mark.slow  # builds and trains a model (the fast lane skips it)
def test_ssd_trains_exactly_n_steps_then_resumes(ssd_run):
    assert latest_checkpoint(ssd_run) == (str(ssd_run / "ckpt-2"), 2)  # 2 steps, not 100
    assert pipelines.read_config(ssd_run / "pipeline.config").train_config.num_steps == 2
    assert _event_steps(ssd_run) == [1, 2]
    result = train(ssd_run, 3, progress=False)
    assert (result.start_step, result.final_step, result.steps_run) == (2, 3, 1)
    assert len(result.step_seconds) == 1 and not result.interrupted
    assert result.checkpoint == str(ssd_run / "ckpt-3") and result.losses["Loss/total_loss"] > 0
    assert pipelines.read_info(ssd_run)["steps"] == 3
    assert _event_steps(ssd_run) == [1, 2, 3]
    # at the target already: returns at once, nothing trained
    t0 = time.perf_counter()
    again = train(ssd_run, 3, progress=False)
    assert again.steps_run == 0 and time.perf_counter() - t0 < 5 and latest_checkpoint(ssd_run)[1] == 3


@pytest.mark.slow  # builds and trains a model (the fast lane skips it)
def test_train_refusals(tmp_path, ssd_run, records):
    from karyotf.cli import main

    with pytest.raises(TrainError, match="karyotf config"):
        train(tmp_path / "nothing", 1)
    with pytest.raises(TrainError, match="strategy"):
        train(ssd_run, 4, strategy="horovod")
    assert main(["train", "rfcn", "--model-dir", str(ssd_run), "--steps", "1"]) == 2
    moved = tmp_path / "m"
    pipelines.configure("ssd", records, moved, steps=1)
    cfg = pipelines.read_config(moved / "pipeline.config")
    cfg.train_input_reader.tf_record_input_reader.input_path[0] = str(tmp_path / "gone.record-*")
    pipelines.write_config(cfg, moved / "pipeline.config")
    with pytest.raises(TrainError, match="no TFRecord"):
        train(moved, 1)


@pytest.mark.slow  # builds and trains a model (the fast lane skips it)
def test_fine_tune_from_local_checkpoint_and_sigterm_saves(ssd_run, records, tmp_path):
    """Fine-tune from the ssd run's checkpoint; a SIGTERM during step 2 ends training after it, with a checkpoint."""
    import numpy as np
    import tensorflow as tf

    src = latest_checkpoint(ssd_run)
    assert src is not None and src[1] >= 2
    new = tmp_path / "tuned"
    res = pipelines.configure("ssd", records, new, fine_tune=src[0], batch=2, image_size=128, steps=10000,
                              learning_rate=1e-6)
    assert res.info["fine_tune_type"] == "detection"
    previous = signal.getsignal(signal.SIGTERM)

    def on_step(step, losses):
        assert losses["Loss/total_loss"] > 0
        if step == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives as the loop would start step 2

    result = train(new, progress=False, checkpoint_every=100000, callback=on_step)
    assert signal.getsignal(signal.SIGTERM) is previous  # handler restored
    assert result.interrupted and result.final_step == 1 and result.target_steps == 10000
    assert latest_checkpoint(new) == (str(new / "ckpt-1"), 1)
    # the fine-tuned backbone started from the source checkpoint, not from a random init
    names = [n for n, _ in tf.train.list_variables(src[0])
             if "_feature_extractor" in n and n.endswith("kernel/.ATTRIBUTES/VARIABLE_VALUE")]
    assert names
    for name in names[:5]:
        a, b = tf.train.load_variable(src[0], name), tf.train.load_variable(str(new / "ckpt-1"), name)
        assert np.allclose(a, b, atol=1e-4), name
    # resuming a fine-tuned run continues from its own checkpoint
    with pytest.raises(TrainError, match="callback"):
        train(new, 2, isolate=True, callback=on_step)


@pytest.mark.slow
def test_cli_train_exit_status_on_sigint(records, tmp_path):
    """The real CLI in a child process: Ctrl-C (SIGINT) during training ends the step, saves a checkpoint and
    exits with status 130."""
    import re
    import subprocess
    import sys
    import threading

    from karyotf.cli import main

    model_dir = tmp_path / "ssd"
    assert main(["config", "ssd", "--records", str(records), "--out", str(model_dir), "--batch", "2",
                 "--image-size", "128", "--steps", "10000"]) == 0
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(Path(__file__).resolve().parent.parent),
                                                                      os.environ.get("PYTHONPATH", "")) if p))
    proc = subprocess.Popen([sys.executable, "-m", "karyotf", "train", "ssd", "--model-dir", str(model_dir),
                             "--checkpoint-every", "100000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    stepped = threading.Event()
    err: list[str] = []

    def read_stderr():  # the progress bar: "train ssd: ... 1/10000 ..." once the first step is done
        buf = ""
        while True:
            chunk = proc.stderr.read1(4096).decode(errors="replace") if hasattr(proc.stderr, "read1") else ""
            if not chunk:
                break
            buf += chunk
            err.append(chunk)
            if re.search(r"\b[1-9]\d*/10000\b", buf):
                stepped.set()
        stepped.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        assert stepped.wait(600) and proc.poll() is None, "".join(err)[-2000:]
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(10)
    assert proc.returncode == 130, "".join(err)[-2000:]
    found = latest_checkpoint(model_dir)
    assert found is not None and found[1] >= 1
    assert b"interrupted at step" in out


def test_stop_flag_sigint_then_a_second_sigint(tmp_path):
    """The handler behind `karyotf train`'s status 130: a first SIGINT sets the flag, a second stops at once."""
    from karyotf.loop import StopFlag

    with StopFlag() as stop:
        assert not stop
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)
        assert stop and stop.signum == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C stops at once
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["faster_rcnn", "rfcn"])
def test_two_stage_models_train(model, records, tmp_path):
    """Both two-stage models train exactly 2 steps; faster_rcnn (the TF1 estimator path, in its own process) also
    resumes to 3 (the TF2 resume path is the one ssd's test covers)."""
    model_dir = tmp_path / model
    pipelines.configure(model, records, model_dir, proposals=8, steps=2, **TINY)
    first = train(model_dir, progress=False)
    assert (first.start_step, first.final_step) == (0, 2)
    assert first.tf == pipelines.MODELS[model].tf
    assert first.losses["Loss/total_loss"] > 0 and first.peak_rss_mb > 100
    prefix = "model.ckpt" if model == "faster_rcnn" else "ckpt"
    assert latest_checkpoint(model_dir) == (str(model_dir / f"{prefix}-2"), 2)
    assert list((model_dir / "train").glob("events.out.tfevents.*"))
    if model == "faster_rcnn":
        second = train(model_dir, 3, progress=False)
        assert (second.start_step, second.final_step) == (2, 3)
        assert latest_checkpoint(model_dir) == (str(model_dir / "model.ckpt-3"), 3)
    assert train(model_dir, 2, progress=False).steps_run == 0
