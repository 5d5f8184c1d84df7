"""Roboflow: import of VOC / COCO / TFRecord exports built here, and pull against a local fake Roboflow API."""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from karyotf import classes
from karyotf.annotations import Annotation, load_dataset, voc_xml
from karyotf.errors import RoboflowError
from karyotf.roboflow import detect_format, import_export, original_stem
from karyotf.rundir import read_label_map as parse_label_map

REPO = Path(__file__).resolve().parents[1]
SPLIT_OF = ["train", "train", "valid", "test"]


def _rf_name(stem: str) -> str:
    return f"{stem}_jpg.rf.{hashlib.md5(stem.encode()).hexdigest()}"


def _source(few_cells):
    anns, _ = load_dataset(few_cells, strict=True, progress=False)
    assert len(anns) == 4
    return anns


def _chromosomes(anns):
    """image stem -> sorted (class, integer box) list: what an import must reproduce."""
    return {a.image_id: sorted((b.name, *(int(round(v)) for v in b.as_tuple())) for b in a.boxes) for a in anns}


def make_voc_export(anns, root: Path) -> Path:
    """Roboflow VOC layout: split folders, mangled names, jpg + xml side by side, Denver names (A1, G21)."""
    for a, split in zip(anns, SPLIT_OF):
        d = root / split
        d.mkdir(parents=True, exist_ok=True)
        name = _rf_name(a.image_id)
        shutil.copy(a.image_path, d / f"{name}.jpg")
        text = voc_xml(Annotation(Path(f"{name}.jpg"), a.width, a.height, a.boxes), folder="")
        for b in set(b.name for b in a.boxes):  # Roboflow keeps the names as labelled: A1, G21, ...
            text = text.replace(f"<name>{b}</name>", f"<name>{classes.GROUP_OF[b]}{b}</name>")
        (d / f"{name}.xml").write_text(text)
    (root / "README.roboflow.txt").write_text("exported from roboflow.com\n")
    return root


def make_coco_export(anns, root: Path) -> Path:
    """Roboflow COCO layout: _annotations.coco.json per split, chrNN names, an unused supercategory 0,
    and one background image without boxes."""
    names = sorted({b.name for a in anns for b in a.boxes})
    cats = [{"id": 0, "name": "chromosomes", "supercategory": "none"}] + [
        {"id": i + 1, "name": f"chr{n}", "supercategory": "chromosomes"} for i, n in enumerate(names)]
    cat_id = {n: i + 1 for i, n in enumerate(names)}
    per_split: dict[str, dict] = {}
    ann_id = 0
    for k, (a, split) in enumerate(zip(anns, SPLIT_OF)):
        d = root / split
        d.mkdir(parents=True, exist_ok=True)
        coco = per_split.setdefault(split, {"info": {}, "images": [], "annotations": [], "categories": cats})
        fname = f"{_rf_name(a.image_id)}.jpg"
        shutil.copy(a.image_path, d / fname)
        coco["images"].append({"id": k, "file_name": fname, "width": a.width, "height": a.height})
        for b in a.boxes:
            coco["annotations"].append({"id": ann_id, "image_id": k, "category_id": cat_id[b.name],
                                        "bbox": [b.xmin, b.ymin, b.width, b.height], "area": b.area,
                                        "iscrowd": 0, "segmentation": []})
            ann_id += 1
    bg = anns[0]
    shutil.copy(bg.image_path, root / "train" / "background_jpg.rf.0.jpg")
    per_split["train"]["images"].append({"id": 99, "file_name": "background_jpg.rf.0.jpg",
                                         "width": bg.width, "height": bg.height})
    for split, coco in per_split.items():
        (root / split / "_annotations.coco.json").write_text(json.dumps(coco))
    return root


def make_tfrecord_export(anns, root: Path) -> Path:
    """Roboflow TFRecord layout: chromosomes.tfrecord + its own label map per split (ids by sorted names,
    so they differ from karyotf's), normalised boxes."""
    import tensorflow as tf

    names = sorted({b.name for a in anns for b in a.boxes})  # '1', '10', '11', ... : Roboflow's sort
    rf_id = {n: i + 1 for i, n in enumerate(names)}
    assert any(rf_id[n] != classes.LABEL_OF[n] for n in names)
    label_map = "".join(f'item {{\n    name: "{n}",\n    id: {rf_id[n]},\n    display_name: "{n}"\n}}\n'
                        for n in names)
    writers = {}
    for a, split in zip(anns, SPLIT_OF):
        d = root / split
        if split not in writers:
            d.mkdir(parents=True, exist_ok=True)
            (d / "chromosomes_label_map.pbtxt").write_text(label_map)
            writers[split] = tf.io.TFRecordWriter(str(d / "chromosomes.tfrecord"))
        w, h = float(a.width), float(a.height)
        f = tf.train.Feature
        feat = {
            "image/encoded": f(bytes_list=tf.train.BytesList(value=[a.image_path.read_bytes()])),
            "image/filename": f(bytes_list=tf.train.BytesList(value=[f"{_rf_name(a.image_id)}.jpg".encode()])),
            "image/format": f(bytes_list=tf.train.BytesList(value=[b"jpg"])),
            "image/width": f(int64_list=tf.train.Int64List(value=[a.width])),
            "image/height": f(int64_list=tf.train.Int64List(value=[a.height])),
            "image/object/bbox/xmin": f(float_list=tf.train.FloatList(value=[b.xmin / w for b in a.boxes])),
            "image/object/bbox/xmax": f(float_list=tf.train.FloatList(value=[b.xmax / w for b in a.boxes])),
            "image/object/bbox/ymin": f(float_list=tf.train.FloatList(value=[b.ymin / h for b in a.boxes])),
            "image/object/bbox/ymax": f(float_list=tf.train.FloatList(value=[b.ymax / h for b in a.boxes])),
            "image/object/class/label": f(int64_list=tf.train.Int64List(value=[rf_id[b.name] for b in a.boxes])),
            "image/object/class/text": f(bytes_list=tf.train.BytesList(value=[b.name.encode() for b in a.boxes])),
        }
        writers[split].write(tf.train.Example(features=tf.train.Features(feature=feat)).SerializeToString())
    for w in writers.values():
        w.close()
    return root


MAKERS = {"voc": make_voc_export, "coco": make_coco_export, "tfrecord": make_tfrecord_export}


@pytest.mark.parametrize("fmt", list(MAKERS))
def test_import_yields_the_source_chromosomes(fmt, few_cells, tmp_path):
    anns = _source(few_cells)
    export = MAKERS[fmt](anns, tmp_path / f"export-{fmt}")
    assert detect_format(export) == fmt
    result = import_export(export, tmp_path / "voc", progress=False)
    assert result.fmt == fmt and result.images == 4
    assert result.boxes == sum(len(a.boxes) for a in anns)
    assert result.skipped_images == (1 if fmt == "coco" else 0)
    assert {k: sorted(v) for k, v in result.splits.items()} == {
        "train": sorted(a.image_id for a, s in zip(anns, SPLIT_OF) if s == "train"),
        "valid": [anns[2].image_id], "test": [anns[3].image_id]}
    imported, summary = load_dataset(tmp_path / "voc", strict=True, progress=False)
    assert summary.used == 4
    assert _chromosomes(imported) == _chromosomes(anns)
    for a in imported:  # image bytes unchanged
        assert a.image_path.read_bytes() == (few_cells / "images" / f"{a.image_id}.jpg").read_bytes()
    manifest = json.loads((tmp_path / "voc" / "roboflow_import.json").read_text())
    assert manifest["format"] == fmt and manifest["images"] == 4
    assert set(manifest["class_names"].values()) <= set(classes.NAMES)


def test_import_to_records(few_cells, tmp_path):
    from karyotf.records import read_examples

    anns = _source(few_cells)
    export = make_tfrecord_export(anns, tmp_path / "export")
    result = import_export(export, tmp_path / "voc", records_dir=tmp_path / "records", progress=False,
                           fractions=(1.0, 0.0, 0.0))
    assert result.records is not None
    got = {a.image_id: sorted((b.name, *(int(round(v)) for v in b.as_tuple())) for b in a.boxes)
           for _, a in read_examples(tmp_path / "records")}
    assert got == _chromosomes(anns)


def test_import_errors_name_file_object_and_fix(few_cells, tmp_path):
    anns = _source(few_cells)[:1]
    export = make_voc_export(anns, tmp_path / "bad")
    xml = next((export / "train").glob("*.xml"))
    xml.write_text(xml.read_text().replace("<name>", "<name>blob", 1))
    with pytest.raises(RoboflowError, match=r"object #0.*class-map"):
        import_export(export, tmp_path / "voc", progress=False)
    # the class map fixes it
    raw = next(n for n in xml.read_text().split("<name>")[1:2]).split("</name>")[0]
    res = import_export(export, tmp_path / "voc2", class_map={raw: anns[0].boxes[0].name}, progress=False)
    assert _chromosomes(load_dataset(tmp_path / "voc2", progress=False)[0]) == _chromosomes(anns)
    with pytest.raises(RoboflowError, match="not a Roboflow"):
        import_export(tmp_path / "voc2" / "images", tmp_path / "x", progress=False)
    assert res.class_names[raw] == anns[0].boxes[0].name


def test_names_and_label_maps(tmp_path):
    assert original_stem("1054642_jpg.rf.3f9ab0c1d2.jpg") == "1054642"
    assert original_stem("cell_7_png.rf.abc.png") == "cell_7"
    assert original_stem("plain.jpg") == "plain"
    p = tmp_path / "m.pbtxt"
    p.write_text('item {\n    name: "21",\n    id: 1,\n    display_name: "21"\n}\nitem { id: 2 name: \'X\' }\n')
    assert parse_label_map(p) == {1: "21", 2: "X"}


def test_cli_import(few_cells, tmp_path):
    from karyotf.cli import main

    export = make_coco_export(_source(few_cells), tmp_path / "export")
    assert main(["roboflow", "import", str(export), "--out", str(tmp_path / "voc")]) == 0
    assert len(list((tmp_path / "voc" / "annotations").glob("*.xml"))) == 4
    assert main(["roboflow", "import", str(tmp_path / "nowhere"), "--out", str(tmp_path / "v")]) == 2


# ---------------------------------------------------------------------------------------------- pull


class FakeRoboflow(BaseHTTPRequestHandler):
    """Answers like api.roboflow.com for one workspace/project/version, and serves export zips."""

    key = "k3y-local"
    zips: dict[str, bytes] = {}
    seen: list[str] = []

    def log_message(self, *a):  # quiet
        pass

    def _json(self, obj, status=200):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorised(self, url) -> bool:
        if parse_qs(url.query).get("api_key") != [self.key]:
            self._json({"error": {"message": "This API key does not exist (or has been revoked)."}}, 401)
            return False
        return True

    def do_POST(self):
        url = urlparse(self.path)
        self.seen.append("POST " + url.path)
        if url.path == "/" and self._authorised(url):
            self._json({"workspace": "karyo-lab"})

    def do_GET(self):
        url = urlparse(self.path)
        self.seen.append("GET " + url.path)
        parts = [p for p in url.path.split("/") if p]
        if parts[:1] == ["download"]:
            data = self.zips[parts[1]]
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if not self._authorised(url):
            return
        ws = {"name": "Karyo Lab", "url": "karyo-lab", "projects": [{"id": "karyo-lab/cells"}]}
        version = {"id": "karyo-lab/cells/1", "augmentation": {}, "created": 1700000000, "images": 4,
                   "preprocessing": {}, "splits": {"train": 2, "valid": 1, "test": 1}, "exports": []}
        if parts == ["karyo-lab"]:
            self._json({"workspace": ws})
        elif parts == ["karyo-lab", "cells"]:
            self._json({"workspace": ws, "versions": [version], "project": {
                "annotation": "chromosomes", "classes": {}, "colors": {}, "created": 1700000000,
                "id": "karyo-lab/cells", "images": 4, "name": "cells", "public": False,
                "splits": {"train": 2, "valid": 1, "test": 1}, "type": "object-detection",
                "unannotated": 0, "updated": 1700000000}})
        elif parts == ["karyo-lab", "cells", "1"]:
            self._json({"version": {**version, "generating": False}})
        elif len(parts) == 4 and parts[:3] == ["karyo-lab", "cells", "1"] and parts[3] in self.zips:
            host, port = self.server.server_address[:2]
            self._json({"export": {"link": f"http://{host}:{port}/download/{parts[3]}"}})
        else:
            self._json({"error": {"message": f"not found: {url.path}"}}, 404)


def _zip_dir(root: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(root).as_posix())
    return buf.getvalue()


@pytest.fixture
def fake_api(few_cells, tmp_path):
    anns = _source(few_cells)
    FakeRoboflow.zips = {fmt: _zip_dir(maker(anns, tmp_path / f"src-{fmt}"))
                         for fmt, maker in MAKERS.items() if fmt != "tfrecord"}
    FakeRoboflow.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeRoboflow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", anns
    server.shutdown()
    server.server_close()


DRIVER = """
import contextlib, io, json, sys
from karyotf.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(argv)
    results.append({"rc": rc, "err": err.getvalue()})
print("RESULTS" + json.dumps(results))
"""


def _env(tmp_path, key="k3y-local"):
    env = {k: v for k, v in os.environ.items()
           if k not in ("ROBOFLOW_API_KEY", "API_URL", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")}
    env.update(HOME=str(tmp_path / "home"), ROBOFLOW_CONFIG_DIR=str(tmp_path / "home" / "rf.json"),
               NO_PROXY="127.0.0.1,localhost", PYTHONPATH=str(REPO), TQDM_DISABLE="1")
    if key:
        env["ROBOFLOW_API_KEY"] = key
    return env


def _run_cli(argvs, tmp_path, timeout=180):
    """Run ``karyotf`` commands in one fresh process (the roboflow package reads API_URL once, at import)."""
    r = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(argvs)], cwd=tmp_path, env=_env(tmp_path),
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0 and "RESULTS" in r.stdout, r.stdout + r.stderr
    return json.loads(r.stdout.split("RESULTS", 1)[1])


def test_pull_from_local_api(fake_api, tmp_path):
    url, anns = fake_api
    out = tmp_path / "pulled"
    common = ["roboflow", "pull", "--workspace", "karyo-lab", "--project", "cells", "--version", "1",
              "--api-url", url]
    coco, again, voc, wrong_key, unknown = _run_cli([
        common + ["--format", "coco", "--out", str(out), "--import-to", str(tmp_path / "voc")],
        common + ["--format", "voc", "--out", str(out)],
        common + ["--format", "voc", "--out", str(out), "--overwrite"],
        common + ["--out", str(tmp_path / "p"), "--api-key", "wrong-key"],
        [a if a != "cells" else "nope" for a in common] + ["--out", str(tmp_path / "p")],
    ], tmp_path)
    assert coco["rc"] == 0, coco["err"]
    assert "GET /download/coco" in FakeRoboflow.seen and "POST /" in FakeRoboflow.seen
    imported, _ = load_dataset(tmp_path / "voc", strict=True, progress=False)
    assert _chromosomes(imported) == _chromosomes(anns)
    # a second pull to the same place needs --overwrite; then the VOC export replaces the COCO one
    assert again["rc"] == 2 and "--overwrite" in again["err"]
    assert voc["rc"] == 0, voc["err"]
    assert detect_format(out) == "voc" and not (out / "train" / "_annotations.coco.json").exists()
    assert not (out / "roboflow.zip").exists()
    assert wrong_key["rc"] == 2 and "API key" in wrong_key["err"]
    assert unknown["rc"] == 2 and "karyo-lab/nope/1" in unknown["err"]
    assert not (tmp_path / "p").exists() and not list(tmp_path.glob(".p.*"))


def test_pull_offline_is_a_clear_error(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = ("from karyotf.roboflow import pull\n"
            f"pull('w', 'p', 1, out_dir={str(tmp_path / 'p')!r}, api_url='http://127.0.0.1:{port}')\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(tmp_path), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode != 0
    assert "RoboflowError: cannot reach the Roboflow API at http://127.0.0.1" in r.stderr
    assert not (tmp_path / "p").exists()


def test_pull_without_key(tmp_path, monkeypatch, capsys):
    from karyotf.cli import main

    monkeypatch.delenv("ROBOFLOW_API_KEY", raising=False)
    assert main(["roboflow", "pull", "--workspace", "w", "--project", "p", "--version", "1",
                 "--out", str(tmp_path / "p")]) == 2
    assert "ROBOFLOW_API_KEY" in capsys.readouterr().err


def test_roboflow_augmented_copies_name_their_original(few_cells, tmp_path):
    """Roboflow's own augmentations of one original (same stem, other hash) stay with it in one split."""
    anns = _source(few_cells)
    export = make_voc_export(anns, tmp_path / "export")
    src, copy = _rf_name(anns[0].image_id), f"{anns[0].image_id}_jpg.rf.0123456789abcdef"
    train = export / "train"
    shutil.copy(train / f"{src}.jpg", train / f"{copy}.jpg")
    (train / f"{copy}.xml").write_text((train / f"{src}.xml").read_text().replace(src, copy))
    import_export(export, tmp_path / "voc", progress=False)
    imported = {a.image_id: a for a in load_dataset(tmp_path / "voc", strict=True, progress=False)[0]}
    copies = [a for a in imported.values() if a.original]
    assert len(imported) == 5 and len(copies) == 1
    assert copies[0].original == anns[0].image_id and copies[0].cell_id == anns[0].image_id
