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
        assert [p for p in cache_files(cache / "zoo") if not p.endswith(".lock")] == []
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
    assert [p for p in cache_files(cache / "zoo") if not p.endswith(".lock")] == []
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
