"""karyotf.rundir: the one reader of run and export dirs (checkpoints, karyotf.json, pipeline.config, label map)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from karyotf import rundir
from karyotf.errors import DetectError


def test_checkpoint_names_steps_and_latest(tmp_path):
    assert rundir.checkpoint_kind("runs/ssd/ckpt-3") == "tf2"
    assert rundir.checkpoint_kind("zoo/model.ckpt") == "tf1" == rundir.checkpoint_kind("r/model.ckpt-40")
    assert rundir.checkpoint_kind("r/ckpt") is None and rundir.checkpoint_kind("r/weights-3") is None
    assert rundir.checkpoint_step("runs/ssd/ckpt-3") == 3 and rundir.checkpoint_step("r/model.ckpt-200") == 200
    assert rundir.checkpoint_step("zoo/model.ckpt") is None
    for name in ("ckpt-2.index", "ckpt-10.index", "ckpt-10.data-00000-of-00001", "model.ckpt-7.index", "x.index"):
        (tmp_path / name).write_bytes(b"")
    assert rundir.latest_checkpoint(tmp_path) == (str(tmp_path / "ckpt-10"), 10)
    assert rundir.latest_checkpoint(tmp_path / "absent") is None


def test_info_schema_and_old_files(tmp_path):
    assert rundir.read_info(tmp_path) == {}
    path = rundir.write_info(tmp_path, {"model": "ssd", "image_size": 512, "kind": "ignored"}, "run")
    info = json.loads(path.read_text())
    assert (info["schema"], info["kind"], info["model"], info["image_size"]) == (rundir.SCHEMA, "run", "ssd", 512)
    old = tmp_path / "old_export"
    old.mkdir()
    (old / "karyotf.json").write_text(json.dumps({"model": "rfcn", "input_size": [640, 640], "checkpoint_step": 5}))
    assert rundir.read_info(old)["image_size"] == 640  # a version-0 export reads in the one schema
    assert rundir.model_name(old) == "rfcn" and rundir.model_name(tmp_path / "nameless") == "nameless"
    (old / "karyotf.json").write_text("{not json")
    with pytest.raises(rundir.InfoError, match="not valid JSON"):
        rundir.read_info(old)
    assert rundir.read_info_or_empty(old) == {}
    with pytest.raises(ValueError):
        rundir.stamp({}, "classifier")


def test_label_map_semantics(tmp_path):
    p = tmp_path / "lm.pbtxt"
    p.write_text('item {\n  name: "21",\n  id: 1,\n}\nitem { id: 2 display_name: "X" }\nitem { id: 1 name: "alias" }\n')
    assert rundir.read_label_map(p) == {1: "21", 2: "X"}  # commas allowed; display_name; the first item names an id
    p.write_text("item { id: 0 name: 'X' }\n")
    with pytest.raises(rundir.LabelMapError, match="reserved for the background"):  # label_map_util's own check
        rundir.read_label_map(p)
    p.write_text("item { id: 1 name: 'X' }\nitem { id: 3 name: 'Y' }\n")
    assert rundir.read_label_map(p) == {1: "X", 3: "Y"}
    with pytest.raises(rundir.LabelMapError, match="1..N"):
        rundir.read_label_map(p, contiguous=True)
    p.write_text("item { id: 1 name: 'chr1' }\nitem { id: 2 name: 'banana' }\n")
    with pytest.raises(DetectError, match=r"item #1: .*banana.*\(fix: do this\)"):
        rundir.read_label_map(p, canonical=True, error=DetectError, fix="do this")
    p.write_text("item { id: 1 name: 'chromosome' }\nitem { id: 1 name: '7' }\n")
    assert rundir.read_label_map(p, canonical=True) == {1: "chromosome"}  # a class-agnostic map
    with pytest.raises(rundir.LabelMapError, match="not a label map"):
        p.write_text("item { id: 1 nme: 'X' }")
        rundir.read_label_map(p)
    with pytest.raises(rundir.LabelMapError, match="label map not found"):
        rundir.read_label_map(tmp_path / "absent.pbtxt")


def test_names_to_dirs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert rundir.run_dir("ssd") == Path("runs/ssd") and rundir.export_dir("ssd") == Path("exported/ssd")
    assert rundir.find_model("ssd") == Path("runs/ssd") and rundir.find_export("ssd") == Path("exported/ssd")
    Path("exported/ssd").mkdir(parents=True)
    assert rundir.find_model("ssd") == Path("exported/ssd")
    Path("runs/ssd").mkdir(parents=True)
    assert rundir.find_model("ssd") == Path("runs/ssd")
    assert rundir.eval_export_dir("runs/ssd", 7) == Path("runs/ssd/export-ckpt-7")
    assert not rundir.is_export_dir("exported/ssd")
    (Path("exported/ssd") / "frozen_inference_graph.pb").write_bytes(b"")
    assert rundir.is_export_dir("exported/ssd")
