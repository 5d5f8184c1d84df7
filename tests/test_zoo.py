"""The model zoo: fetch, cache, verify, unpack, and `--fine-tune coco` restoring what it should; multi-worker training.

Nothing here leaves the machine: a local HTTP server on 127.0.0.1 (``ZooServer``: Range requests, a request log,
an optional connection drop mid-file, a deadline after which it stops by itself) serves archives the tests build
in the zoo's own layout (``NAME/checkpoint/ckpt-0.*`` + ``NAME/pipeline.config`` for the TF2 zoo,
``NAME/model.ckpt.*`` + ``NAME/pipeline.config`` for the TF1 zoo), and ``KARYOTF_ZOO_URL`` points karyotf at it.

The fast tests use a synthetic archive; the slow ones train a tiny zoo-like model for one step (90 COCO classes,
and for rfcn a Faster R-CNN ResNet101, as in the real zoo), pack its checkpoint like the zoo does, and check that
`karyotf config MODEL --fine-tune coco` + training restores the backbone and not the heads.
"""
from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from karyotf import pipelines, zoo
from karyotf.errors import ZooError

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------- the local server

class ZooServer:
    """A model zoo on 127.0.0.1: ``files[path] = bytes``; logs ``(path, Range header)``; ``drop_once`` paths send
    half the body and close the connection on their first GET; stops by itself after ``deadline`` seconds."""

    def __init__(self, deadline: float = 900.0):
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.drop_once: set[str] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                path = self.path.lstrip("/")
                rng = self.headers.get("Range")
                server.requests.append((path, rng))
                data = server.files.get(path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "application/gzip")
                self.end_headers()
                if path in server.drop_once:
                    server.drop_once.discard(path)
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/zoo"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        self.timer = threading.Timer(deadline, self.stop)
        self.timer.daemon = True

    def serve(self, z: zoo.ZooModel, data: bytes) -> None:
        self.files[f"zoo/{z.path}"] = data

    def gets(self, z: zoo.ZooModel) -> list[str | None]:
        """The Range header of every request for ``z``'s archive so far (None: a whole-file request)."""
        return [rng for path, rng in self.requests if path == f"zoo/{z.path}"]

    def start(self) -> "ZooServer":
        self.thread.start()
        self.timer.start()
        return self

    def stop(self) -> None:
        self.timer.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    s = ZooServer(deadline=600).start()
    monkeypatch.setenv(zoo.URL_ENV, s.url)
    yield s
    s.stop()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv(zoo.CACHE_ENV, str(path))
    return path


def pack(z: zoo.ZooModel, checkpoint_prefix: Path, pipeline_config: Path) -> bytes:
    """A .tar.gz in the zoo's layout: ``NAME/<z.checkpoint>.{index,data-*}`` and ``NAME/pipeline.config``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for f in sorted(checkpoint_prefix.parent.glob(checkpoint_prefix.name + ".*")):
            suffix = f.name[len(checkpoint_prefix.name):]
            tar.add(f, arcname=f"{z.name}/{z.checkpoint}{suffix}")
        tar.add(pipeline_config, arcname=f"{z.name}/pipeline.config")
    return buf.getvalue()


def synthetic_archive(z: zoo.ZooModel, root: Path, size: int = 400_000) -> bytes:
    """A zoo-layout archive with random 'checkpoint' bytes (incompressible, so the archive is ``size`` long)."""
    prefix = root / "ckpt" / "prefix"
    prefix.parent.mkdir(parents=True, exist_ok=True)
    Path(str(prefix) + ".index").write_bytes(os.urandom(64))
    Path(str(prefix) + ".data-00000-of-00001").write_bytes(os.urandom(size))
    (root / "pipeline.config").write_text("# zoo config\n")
    return pack(z, prefix, root / "pipeline.config")


def cache_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


# -------------------------------------------------------------------------------------- fetch, cache, verify (fast)

def test_registry_names_real_zoo_archives_and_prefixes():
    assert zoo.DEFAULT_URL == "http://download.tensorflow.org/models/object_detection"
    ssd, frcnn, rfcn = zoo.ZOO["ssd"], zoo.ZOO["faster_rcnn"], zoo.ZOO["rfcn"]
    assert ssd.url(zoo.DEFAULT_URL) == ("http://download.tensorflow.org/models/object_detection/tf2/20200711/"
                                        "ssd_mobilenet_v2_320x320_coco17_tpu-8.tar.gz")
    assert rfcn.archive == "faster_rcnn_resnet101_v1_640x640_coco17_tpu-8.tar.gz"
    assert frcnn.url(zoo.DEFAULT_URL).endswith("/object_detection/faster_rcnn_inception_v2_coco_2018_01_28.tar.gz")
    assert (ssd.checkpoint, rfcn.checkpoint, frcnn.checkpoint) == ("checkpoint/ckpt-0",) * 2 + ("model.ckpt",)
    assert {z.fine_tune_type for z in zoo.ZOO.values()} == {"detection"}
    for m, z in zoo.ZOO.items():  # the archive's checkpoint format is the model's TF path
        assert z.tf == pipelines.MODELS[m].tf
    with pytest.raises(ZooError, match="no model zoo checkpoint"):
        zoo.entry("yolo")


def test_cache_dir_default_and_env(monkeypatch, tmp_path):
    monkeypatch.delenv(zoo.CACHE_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert zoo.cache_dir() == Path.home() / ".cache" / "karyotf"
    monkeypatch.setenv(zoo.CACHE_ENV, str(tmp_path / "c"))
    assert zoo.cache_dir() == tmp_path / "c" and zoo.zoo_dir() == tmp_path / "c" / "zoo"
    (tmp_path / "file").write_text("")
    monkeypatch.setenv(zoo.CACHE_ENV, str(tmp_path / "file"))  # not a folder: a clear error, not a traceback
    with pytest.raises(ZooError, match=f"cannot create the model zoo cache.*{zoo.CACHE_ENV}"):
        zoo.pull("ssd", progress=False)


def test_pull_downloads_verifies_caches_and_refetches_a_corrupted_archive(server, cache, tmp_path):
    z = zoo.ZOO["ssd"]
    data = synthetic_archive(z, tmp_path / "src")
    server.serve(z, data)
    first = zoo.pull("ssd", progress=False)
    assert first.downloaded and server.gets(z) == [None]
    root = cache / "zoo"
    assert first.checkpoint == root / z.name / "checkpoint" / "ckpt-0"
    assert Path(str(first.checkpoint) + ".index").is_file() and first.fine_tune_type == "detection"
    assert (root / z.name / "pipeline.config").is_file()
    sha_line = (root / (z.archive + ".sha256")).read_text()
    assert sha_line == f"{first.sha256}  {z.archive}\n" and first.sha256 == zoo.sha256_of(root / z.archive)
    assert not [p for p in cache_files(root) if p.endswith(".part") or ".unpack-" in p]
    # a second call is served from the cache: no new request
    second = zoo.pull("ssd", progress=False)
    assert not second.downloaded and second.checkpoint == first.checkpoint and len(server.gets(z)) == 1
    assert zoo.cached("ssd") == first.checkpoint
    # a corrupted cached archive (one byte flipped) is detected and fetched again
    archive = root / z.archive
    raw = bytearray(archive.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    archive.write_bytes(bytes(raw))
    third = zoo.pull("ssd", progress=False)
    assert third.downloaded and len(server.gets(z)) == 2
    assert archive.read_bytes() == data and third.sha256 == first.sha256


def test_archive_put_into_the_cache_by_hand_is_used_and_then_checked(server, cache, tmp_path):
    """What the offline message tells a user to do: the archive, downloaded elsewhere, copied into the cache."""
    z = zoo.ZOO["faster_rcnn"]
    root = cache / "zoo"
    root.mkdir(parents=True)
    (root / z.archive).write_bytes(b"not a tar.gz")  # a broken copy: a clear error, no sha256 recorded for it
    with pytest.raises(ZooError, match="not a readable .tar.gz"):
        zoo.pull("faster_rcnn", progress=False)
    assert not (root / (z.archive + ".sha256")).exists()
    data = synthetic_archive(z, tmp_path / "src")
    (root / z.archive).write_bytes(data)
    got = zoo.pull("faster_rcnn", progress=False)
    assert not got.downloaded and server.gets(z) == [] and got.sha256 == zoo.sha256_of(root / z.archive)
    assert (root / (z.archive + ".sha256")).read_text().split()[0] == got.sha256


def test_unpacked_folder_damaged_is_rebuilt_from_the_cached_archive(server, cache, tmp_path):
    z = zoo.ZOO["rfcn"]
    server.serve(z, synthetic_archive(z, tmp_path / "src"))
    got = zoo.pull("rfcn", progress=False)
    Path(str(got.checkpoint) + ".index").unlink()
    assert zoo.cached("rfcn") is None
    again = zoo.pull("rfcn", progress=False)
    assert not again.downloaded and Path(str(again.checkpoint) + ".index").is_file() and len(server.gets(z)) == 1


def test_interrupted_download_resumes_with_range(server, cache, tmp_path):
    z = zoo.ZOO["faster_rcnn"]
    data = synthetic_archive(z, tmp_path / "src")
    server.serve(z, data)
    server.drop_once.add(f"zoo/{z.path}")
    got = zoo.pull("faster_rcnn", progress=False)
    ranges = server.gets(z)
    assert ranges[0] is None and len(ranges) == 2 and ranges[1].startswith("bytes=")
    resumed_at = int(ranges[1][6:].rstrip("-"))
    assert 0 < resumed_at < len(data)  # resumed mid-file, not from the start
    assert (cache / "zoo" / z.archive).read_bytes() == data and got.sha256 == zoo.sha256_of(cache / "zoo" / z.archive)
    assert got.checkpoint.name == "model.ckpt" and Path(str(got.checkpoint) + ".index").is_file()


def test_interrupted_download_resumes_on_the_next_call(server, cache, tmp_path):
    z = zoo.ZOO["ssd"]
    data = synthetic_archive(z, tmp_path / "src")
    server.serve(z, data)
    server.drop_once.add(f"zoo/{z.path}")
    with pytest.raises(ZooError, match=r"interrupted.*run the same command again"):
        zoo.pull("ssd", progress=False, attempts=1)
    part = cache / "zoo" / (z.archive + ".part")
    assert 0 < part.stat().st_size < len(data) and not (cache / "zoo" / z.archive).exists()
    zoo.pull("ssd", progress=False)
    assert server.gets(z)[1] == f"bytes={len(data) // 2}-" and not part.exists()
    assert (cache / "zoo" / z.archive).read_bytes() == data


def test_offline_error_names_archive_and_cache_and_leaves_no_partial_file(cache, monkeypatch, tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(zoo.URL_ENV, f"http://127.0.0.1:{port}/zoo")
    for model in ("ssd", "faster_rcnn"):
        z = zoo.ZOO[model]
        with pytest.raises(ZooError) as err:
            zoo.pull(model, progress=False)
        hint = "PATH/model.ckpt-N" if model == "faster_rcnn" else "PATH/ckpt-N"
        assert str(err.value).startswith(f"no network: download {z.archive} from the OD API model zoo into "
                                         f"{cache / 'zoo'}, or pass --fine-tune {hint}")
        assert cache_files(cache / "zoo") == []
    # through `karyotf config --fine-tune coco`: the same message, exit status 2, no model dir written
    from karyotf.cli import main
    from test_pipelines import _records

    records = _records(tmp_path / "records")
    out = tmp_path / "runs" / "ssd"
    assert main(["config", "ssd", "--records", str(records), "--out", str(out), "--fine-tune", "coco"]) == 2
    assert not out.exists()


def test_layout_check_names_the_archive_and_what_is_missing(server, cache, tmp_path):
    z = zoo.ZOO["ssd"]
    root = tmp_path / "src"
    (root / "ckpt").mkdir(parents=True)
    Path(root / "ckpt" / "prefix.index").write_bytes(b"x")
    (root / "pipeline.config").write_text("")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:  # the index only: no data file, no pipeline.config
        tar.add(root / "ckpt" / "prefix.index", arcname=f"{z.name}/checkpoint/ckpt-0.index")
    server.serve(z, buf.getvalue())
    with pytest.raises(ZooError) as err:
        zoo.pull("ssd", progress=False)
    msg = str(err.value)
    assert msg.startswith(str(cache / "zoo" / z.archive)) and f"{z.name}/pipeline.config" in msg
    assert f"{z.name}/checkpoint/ckpt-0.data-*" in msg and "ckpt-0.index" not in msg.split("missing")[1]
    # nothing half-unpacked, and the bad download is not kept as if it were good
    assert cache_files(cache / "zoo") == []
    server.files.clear()
    with pytest.raises(ZooError, match="HTTP 404"):
        zoo.pull("rfcn", progress=False)


def test_zoo_cli_list_and_pull(server, cache, tmp_path, capsys):
    from karyotf.cli import main

    z = zoo.ZOO["ssd"]
    server.serve(z, synthetic_archive(z, tmp_path / "src"))
    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    assert z.url(server.url) in out and "checkpoint/ckpt-0" in out and "cached       no" in out
    assert main(["zoo", "pull", "ssd", "--no-progress"]) == 0
    assert "downloaded" in capsys.readouterr().out
    assert main(["zoo", "list"]) == 0
    assert str(cache / "zoo" / z.name / "checkpoint" / "ckpt-0") in capsys.readouterr().out
    assert main(["zoo", "pull", "yolo"]) == 2


def test_config_fine_tune_coco_fills_prefix_type_and_thesis_rate(server, cache, tmp_path):
    """Config only (synthetic archives): the prefix, the restore type, V1/V2, the thesis rate unless overridden."""
    from object_detection.protos import train_pb2

    from test_pipelines import _records

    records = _records(tmp_path / "records")
    for model in ("ssd", "faster_rcnn", "rfcn"):
        z = zoo.ZOO[model]
        server.serve(z, synthetic_archive(z, tmp_path / "src" / model, size=1000))
        res = pipelines.configure(model, records, tmp_path / "runs" / model, fine_tune="coco")
        tc = pipelines.read_config(res.pipeline_path).train_config
        assert tc.fine_tune_checkpoint == str((cache / "zoo" / z.name / z.checkpoint).resolve())
        assert tc.fine_tune_checkpoint_type == "detection" == res.info["fine_tune_type"]
        assert tc.fine_tune_checkpoint_version == (train_pb2.CheckpointVersion.V1 if model == "faster_rcnn"
                                                   else train_pb2.CheckpointVersion.V2)
        assert res.info["learning_rate"] == pytest.approx(0.0002) and res.info["fine_tune_zoo"] == z.archive
    explicit = pipelines.configure("ssd", records, tmp_path / "runs" / "lr", fine_tune="coco", learning_rate=0.01,
                                   fine_tune_type="classification")
    assert explicit.info["learning_rate"] == pytest.approx(0.01)
    assert explicit.info["fine_tune_type"] == "classification"
    assert len(server.gets(zoo.ZOO["ssd"])) == 1  # the second ssd config used the cache


# ------------------------------------------------------------------------------------------- multi-worker guards

def _tf_config(ports, index: int) -> str:
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def test_multi_worker_guards_and_device_text(tmp_path, monkeypatch):
    from karyotf.errors import TrainError
    from karyotf.train import cluster_workers, device_text, train

    from test_pipelines import _records

    one_shard = _records(tmp_path / "records")
    pipelines.configure("ssd", one_shard, tmp_path / "ssd", steps=3)
    pipelines.configure("faster_rcnn", one_shard, tmp_path / "frcnn", steps=3)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert cluster_workers() is None
    with pytest.raises(TrainError, match="needs TF_CONFIG"):
        train(tmp_path / "ssd", strategy="multi_worker")
    monkeypatch.setenv("TF_CONFIG", _tf_config([1111, 2222], 1))
    assert cluster_workers() == (1, 2, "worker")
    with pytest.raises(TrainError, match=r"batch 12 does not split evenly across 5 workers.*--batch 10"):
        monkeypatch.setenv("TF_CONFIG", _tf_config([1, 2, 3, 4, 5], 0))
        train(tmp_path / "ssd", strategy="multi_worker")
    monkeypatch.setenv("TF_CONFIG", _tf_config([1111, 2222], 1))
    with pytest.raises(TrainError, match=r"1 training record file\(s\) for 2 workers.*--shards 2"):
        train(tmp_path / "ssd", strategy="multi_worker")
    with pytest.raises(TrainError, match="not available for faster_rcnn"):
        train(tmp_path / "frcnn", strategy="multi_worker")
    text = device_text("multi_worker")
    assert ("CPU" in text or "GPU" in text) and "worker 2 of 2" in text and "chief" not in text
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:1"]},
                                                "task": {"type": "chief", "index": 0}}))
    assert cluster_workers() == (0, 2, "chief") and "chief" in device_text("multi_worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(TrainError, match="TF_CONFIG is not a valid"):
        cluster_workers()


# ---------------------------------------------------------------------- trained zoo-like archives (slow, real TF)

TINY = dict(batch=1, image_size=128, augment=[])


@pytest.fixture(scope="module")
def records(tmp_path_factory, sample_dir) -> Path:
    """4 sample cells, all in train, in 2 shards (a multi-worker run gives each worker its own shard)."""
    from karyotf.records import build_records, split_files

    from conftest import copy_cells

    root = tmp_path_factory.mktemp("zoo")
    src = copy_cells(sample_dir, root / "cells")
    out = root / "records"
    build_records(src, out, fractions=(1.0, 0.0, 0.0), shards=2, progress=False)
    assert len(split_files(out, "train")) == 2
    return out


def _as_zoo_faster_rcnn(cfg) -> None:
    """rfcn's template -> the TF2 zoo's kind of model: Faster R-CNN ResNet101 with a Mask R-CNN box predictor."""
    from google.protobuf import text_format

    f = cfg.model.faster_rcnn
    f.second_stage_box_predictor.Clear()
    text_format.Merge("mask_rcnn_box_predictor { fc_hyperparams { op: FC regularizer { l2_regularizer { weight: 0.0 "
                      "} } initializer { variance_scaling_initializer { factor: 1.0 uniform: true mode: FAN_AVG } } }"
                      " share_box_across_classes: true }", f.second_stage_box_predictor)
    f.initial_crop_size, f.maxpool_kernel_size, f.maxpool_stride = 14, 2, 2


def zoo_like_archive(model: str, records: Path, work: Path) -> bytes:
    """A tiny zoo-like model (COCO's 90 classes; for rfcn a Faster R-CNN ResNet101, as the TF2 zoo has no R-FCN),
    its checkpoint packed as the zoo packs it.

    TF2: built for inference and run once on a blank image, then saved as ``tf.train.Checkpoint(model=...)``
    ``ckpt-0``: what the zoo's ``checkpoint/ckpt-0`` is (``exporter_lib_v2`` writes the model's variables only).
    TF1: trained one step by the estimator (``model.ckpt-1``), packed as ``model.ckpt``.
    """
    two_stage = model != "ssd"
    cfg = pipelines.fill(model, records, steps=1, learning_rate=0.01, proposals=8 if two_stage else None, **TINY)
    getattr(cfg.model, pipelines.meta_arch(cfg)).num_classes = 90
    if model == "rfcn":
        _as_zoo_faster_rcnn(cfg)
    work.mkdir(parents=True)
    pipelines.write_config(cfg, work / "pipeline.config")
    if pipelines.MODELS[model].tf == "tf1":
        from karyotf.train import train

        prefix = train(work, 1, progress=False).checkpoint
    else:
        import tensorflow as tf
        from object_detection.builders import model_builder

        detection_model = model_builder.build(cfg.model, is_training=False)
        image, shapes = detection_model.preprocess(tf.zeros([1, 128, 128, 3]))
        detection_model.postprocess(detection_model.predict(image, shapes), shapes)
        prefix = tf.train.CheckpointManager(tf.train.Checkpoint(model=detection_model), str(work / "export"),
                                            max_to_keep=1).save(checkpoint_number=0)
    return pack(zoo.ZOO[model], Path(prefix), work / "pipeline.config")


def _variables(prefix, must: str, kernels_only: bool = True) -> dict:
    """name -> value of the model variables under ``prefix`` whose name contains ``must`` (no optimizer slots)."""
    import tensorflow as tf

    out = {}
    for name, _ in tf.train.list_variables(str(prefix)):
        if must not in name or "OPTIMIZER_SLOT" in name or "Momentum" in name:
            continue
        if kernels_only and not (name.endswith("kernel/.ATTRIBUTES/VARIABLE_VALUE") or name.endswith("weights")):
            continue
        out[name] = tf.train.load_variable(str(prefix), name)
    return out


def assert_restored(archive_prefix, trained_prefix, backbone: list[str], fresh: list[str]) -> dict:
    """Every kernel of the ``backbone`` parts equals the archive's (one tiny-rate step apart); no kernel of the
    ``fresh`` parts does (re-initialised even where the shape would allow a restore).  Returns counts."""
    import numpy as np

    counts = {}
    for part in backbone:
        mine, theirs = _variables(trained_prefix, part), _variables(archive_prefix, part)
        assert mine and set(mine) <= set(theirs), part
        for name, value in mine.items():
            assert value.shape == theirs[name].shape and np.allclose(value, theirs[name], atol=1e-4), name
        counts[part] = len(mine)
    for part in fresh:
        mine, theirs = _variables(trained_prefix, part), _variables(archive_prefix, part)
        assert mine, part
        same_shape = [n for n in mine if n in theirs and theirs[n].shape == mine[n].shape]
        for name in mine:
            assert name not in theirs or theirs[name].shape != mine[name].shape or \
                not np.allclose(mine[name], theirs[name], atol=1e-3), f"{name} was restored"
        counts[part] = (len(mine), len(same_shape))
    return counts


@pytest.mark.slow
def test_ssd_fine_tune_coco_restores_the_feature_extractor_not_the_heads(records, server, cache, tmp_path, capsys):
    from karyotf.cli import main
    from karyotf.train import latest_checkpoint

    z = zoo.ZOO["ssd"]
    server.serve(z, zoo_like_archive("ssd", records, tmp_path / "zoo-ssd"))
    out = tmp_path / "runs" / "ssd"
    assert main(["config", "ssd", "--records", str(records), "--out", str(out), "--fine-tune", "coco",
                 "--steps", "1", "--batch", "1", "--image-size", "128", "--augment", "none",
                 "--learning-rate", "1e-7"]) == 0
    assert "fine-tune" in capsys.readouterr().out
    tc = pipelines.read_config(out / "pipeline.config").train_config
    archive_prefix = cache / "zoo" / z.name / "checkpoint" / "ckpt-0"
    assert (tc.fine_tune_checkpoint, tc.fine_tune_checkpoint_type) == (str(archive_prefix), "detection")
    assert main(["train", "ssd", "--model-dir", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "device: CPU" in printed or "device: 1 GPU" in printed
    assert latest_checkpoint(out) == (str(out / "ckpt-1"), 1)
    counts = assert_restored(archive_prefix, out / "ckpt-1", backbone=["/_feature_extractor/"],
                             fresh=["class_predictions_with_background", "box_encodings"])
    assert counts["/_feature_extractor/"] > 50
    assert counts["box_encodings"][1] > 0  # same shape as the archive's, yet not restored
    # a second config uses the cache: still one request
    pipelines.configure("ssd", records, tmp_path / "runs" / "ssd2", fine_tune="coco", **TINY)
    assert len(server.gets(z)) == 1


@pytest.mark.slow
def test_rfcn_fine_tune_coco_restores_resnet101_from_a_faster_rcnn_checkpoint(records, server, cache, tmp_path):
    from karyotf.train import train

    z = zoo.ZOO["rfcn"]
    server.serve(z, zoo_like_archive("rfcn", records, tmp_path / "zoo-rfcn"))
    out = tmp_path / "runs" / "rfcn"
    pipelines.configure("rfcn", records, out, fine_tune="coco", steps=1, learning_rate=1e-7, proposals=8, **TINY)
    result = train(out, progress=False)
    assert result.final_step == 1
    counts = assert_restored(cache / "zoo" / z.name / "checkpoint" / "ckpt-0", result.checkpoint,
                             backbone=["_feature_extractor_for_proposal_features",
                                       "_feature_extractor_for_box_classifier_features"],
                             fresh=["_first_stage_box_predictor"])
    assert counts["_feature_extractor_for_proposal_features"] > 50
    assert counts["_first_stage_box_predictor"][1] > 0


@pytest.mark.slow
def test_faster_rcnn_fine_tune_coco_restores_inception_v2_on_the_tf1_path(records, server, cache, tmp_path):
    from karyotf.train import train

    z = zoo.ZOO["faster_rcnn"]
    server.serve(z, zoo_like_archive("faster_rcnn", records, tmp_path / "zoo-frcnn"))
    out = tmp_path / "runs" / "faster_rcnn"
    res = pipelines.configure("faster_rcnn", records, out, fine_tune="coco", steps=1, learning_rate=1e-7,
                              proposals=8, **TINY)
    assert res.info["fine_tune"] == str(cache / "zoo" / z.name / "model.ckpt")
    result = train(out, progress=False)
    assert result.checkpoint == str(out / "model.ckpt-1")
    counts = assert_restored(cache / "zoo" / z.name / "model.ckpt", result.checkpoint,
                             backbone=["FirstStageFeatureExtractor/", "SecondStageFeatureExtractor/"],
                             fresh=["FirstStageBoxPredictor/", "SecondStageBoxPredictor/"])
    assert counts["FirstStageFeatureExtractor/"] > 20
    assert counts["FirstStageBoxPredictor/"][1] > 0


# ------------------------------------------------------------------------------------ two workers, one checkpoint

def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.mark.slow
def test_two_local_workers_train_ssd_together_into_one_checkpoint(records, tmp_path):
    """`karyotf train ssd --strategy multi_worker` in two processes (TF_CONFIG, two 127.0.0.1 ports): they train
    3 steps in lockstep (the same global loss), the chief writes ckpt-3, the other worker leaves nothing."""
    import tensorflow as tf

    from karyotf.train import latest_checkpoint

    model_dir = tmp_path / "mw"
    pipelines.configure("ssd", records, model_dir, steps=3, batch=2, image_size=128, augment=[])
    ports = _free_ports(2)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    procs, logs = [], [tmp_path / f"worker{i}.log" for i in range(2)]
    deadline = time.monotonic() + 300
    try:
        for i in range(2):
            with open(logs[i], "w") as log:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "karyotf", "train", "ssd", "--model-dir", str(model_dir), "--steps", "3",
                     "--strategy", "multi_worker", "--no-progress"],
                    stdout=log, stderr=subprocess.STDOUT, env=dict(env, TF_CONFIG=_tf_config(ports, i))))
        for p in procs:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    texts = [log.read_text() for log in logs]
    assert [p.returncode for p in procs] == [0, 0], "\n\n".join(t[-3000:] for t in texts)
    assert "worker 1 of 2 (chief" in texts[0] and "worker 2 of 2" in texts[1]
    lines = [next(ln for ln in t.splitlines() if "trained steps 0->3 of 3" in ln) for t in texts]
    losses = [ln.split("total loss ")[1].split(";")[0] for ln in lines]
    assert losses[0] == losses[1], lines  # one global loss: the two trained one model together
    assert latest_checkpoint(model_dir) == (str(model_dir / "ckpt-3"), 3)
    assert sorted(p.name for p in model_dir.glob("ckpt-*")) == ["ckpt-3.data-00000-of-00001", "ckpt-3.index"]
    assert not list(model_dir.rglob("temp_worker_*"))  # the non-chief's temporary folders are gone
    assert tf.train.load_variable(str(model_dir / "ckpt-3"), "step/.ATTRIBUTES/VARIABLE_VALUE") == 3
