"""The model pair shipped with karyotf: packing, the sha256 check, `karyotf models`, and use with no path given."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from karyotf import classes, models
from karyotf.errors import ModelError


def _fake_export(root: Path, kind: str) -> Path:
    (root / "saved_model" / "variables").mkdir(parents=True)
    (root / "saved_model" / "saved_model.pb").write_bytes(b"graph" * 100)
    (root / "saved_model" / "variables" / "variables.data-00000-of-00001").write_bytes(bytes(range(256)) * 40)
    (root / "frozen_inference_graph.pb").write_bytes(b"frozen" * 50)
    (root / "label_map.pbtxt").write_text("item { id: 1 name: 'chromosome' }\n")
    (root / "karyotf.json").write_text(json.dumps({"kind": kind, "source_run": "/some/machine/runs/ssd",
                                                   "nested": {"records": "/data/records"}, "steps": 3}))
    return root


@pytest.fixture
def packed(tmp_path) -> Path:
    det = _fake_export(tmp_path / "det", "export")
    cls = _fake_export(tmp_path / "cls", "classifier")
    return models.pack(det, cls, tmp_path / "pair", card_text="# card\n", meta={"numbers": {"val f1": 0.5}})


def test_pack_writes_every_file_with_its_sha256_and_cuts_machine_paths(packed):
    manifest = models.verify(packed)
    assert set(manifest["files"]) >= {"detector/frozen_inference_graph.pb", "classifier/saved_model/saved_model.pb",
                                      "classifier/karyotf.json", "detector/label_map.pbtxt", models.CARD}
    assert "detector/saved_model/saved_model.pb" not in manifest["files"]  # the detector ships as its frozen graph
    info = json.loads((packed / "detector" / "karyotf.json").read_text())
    assert info["source_run"] == "ssd" and info["nested"]["records"] == "records" and info["steps"] == 3
    assert models.card(packed) == "# card\n"
    assert not list(packed.parent.glob(".pair.tmp-*"))


def test_pack_with_a_second_look_ships_it_checked_and_found(tmp_path, packed):
    assert models.SECOND_LOOK not in models.default_parts(packed)  # packed without one: not there, no error
    det, cls = tmp_path / "det", tmp_path / "cls"
    look = _fake_export(tmp_path / "look", "second_look")
    three = models.pack(det, cls, tmp_path / "three", card_text="# card\n", second_look=look)
    parts = models.default_parts(three)
    assert parts[models.SECOND_LOOK] == three / "second_look"
    manifest = models.verify(three)
    assert "second_look/saved_model/saved_model.pb" in manifest["files"]
    assert "second_look/frozen_inference_graph.pb" not in manifest["files"]  # only what SHIPPED names
    assert "second look" in models.list_models(exported=tmp_path / "none", default_dir=three)[0].kind
    target = three / "second_look" / "saved_model" / "saved_model.pb"
    target.write_bytes(target.read_bytes()[:-1])
    with pytest.raises(ModelError, match="second_look/saved_model/saved_model.pb"):
        models.default_parts(three)


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_a_damaged_file_is_named_in_the_error(packed, damage):
    target = packed / "classifier" / "saved_model" / "variables" / "variables.data-00000-of-00001"
    if damage == "flip":
        data = bytearray(target.read_bytes())
        data[100] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:-1])
    else:
        target.unlink()
    with pytest.raises(ModelError, match="variables.data-00000-of-00001") as err:
        models.default_pair(packed)
    assert "fix:" in str(err.value)
    assert models.default_pair(packed, check=False)[0] == packed / "detector"


def test_pack_refuses_a_pair_over_the_budget(tmp_path):
    det = _fake_export(tmp_path / "det", "export")
    cls = _fake_export(tmp_path / "cls", "classifier")
    with pytest.raises(ModelError, match="over the 0.001 MB budget"):
        models.pack(det, cls, tmp_path / "pair", max_mb=0.001)
    assert not (tmp_path / "pair").exists() and not list(tmp_path.glob(".pair.tmp-*"))


def test_no_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="not a packed model pair"):
        models.verify(tmp_path)


def test_the_shipped_pair_is_whole_and_within_its_budget():
    manifest = models.verify(models.DEFAULT_DIR)
    total = sum(e["size"] for e in manifest["files"].values())
    assert total <= models.MAX_MB * 1e6
    card = models.card()
    assert "CC BY 3.0" in card and "Not a diagnostic device" in card and "official test split" in card
    info = json.loads((models.DEFAULT_DIR / "detector" / "karyotf.json").read_text())
    assert info.get("chromosome_probability"), "the shipped detector carries its calibration fitted on val"


def test_cli_models_lists_the_default_and_local_exports(tmp_path, capsys):
    from karyotf.cli import main

    _fake_export(tmp_path / "exported" / "mine", "export")
    assert main(["models", "--exported", str(tmp_path / "exported")]) == 0
    out = capsys.readouterr().out
    assert "* default" in out and "mine" in out and "val" in out
    assert main(["models", "--card"]) == 0 and "Model card" in capsys.readouterr().out


def test_default_karyotypes_a_sample_cell_with_no_path(sample_dir):
    import karyotf

    k = karyotf.Karyotyper.default()
    image = sample_dir / "images" / "1055712.jpg"
    cell = k.karyotype(image)
    assert 40 <= len(cell.boxes) <= 52 and all(b.name in classes.NAMES for b in cell.boxes)
    call = k.call(image)
    assert call.total == len(cell.boxes) and call.text
    assert call.flags == sorted(call.flags, key=lambda f: not f.review)  # review flags first


def test_karyogram_cli_uses_the_default_pair_without_model(tmp_path, sample_dir, capsys):
    from karyotf.cli import main

    img = sample_dir / "images" / "1055911.jpg"
    assert main(["karyogram", str(img), "--out", str(tmp_path / "k")]) == 0
    det = json.loads((tmp_path / "k" / "detections.json").read_text())
    assert det["source"]["kind"] == "model" and "models" in det["source"]["from"]
    assert det["count"] >= 40
    assert "1055911.jpg:" in capsys.readouterr().out


def test_a_corrupted_default_stops_the_karyogram_with_the_file_named(tmp_path, monkeypatch, sample_dir, capsys):
    from karyotf.cli import main

    copy = tmp_path / "pair"
    shutil.copytree(models.DEFAULT_DIR, copy)
    pb = copy / "classifier" / "saved_model" / "saved_model.pb"
    pb.write_bytes(pb.read_bytes() + b"x")
    monkeypatch.setattr(models, "DEFAULT_DIR", copy)
    assert main(["karyogram", str(sample_dir / "images" / "1055911.jpg"), "--out", str(tmp_path / "k")]) == 2
    err = capsys.readouterr().err
    assert str(pb) in err and "sha256" in err
    assert not (tmp_path / "k" / "report.json").exists()


def test_demo_karyotypes_the_sample_with_the_default_pair(tmp_path, few_cells):
    from karyotf import demo

    res = demo.karyotype_demo(tmp_path / "demo", src=few_cells, progress=False)
    assert len(res.cells) == 4 and res.model == "the default pair"
    rows = list(csv.DictReader((tmp_path / "demo" / "demo.csv").open()))
    assert [r["image"] for r in rows] == [c["image"] for c in res.cells]
    for r, c in zip(rows, res.cells):
        report = json.loads((tmp_path / "demo" / "karyograms" / c["image"] / "report.json").read_text())
        assert r["model_call"] == report["text"]  # the summary reads the default pair's own calls
        assert int(r["agree"]) == (r["model_call"] == r["annotation_call"])
    text = (tmp_path / "demo" / "summary.txt").read_text()
    assert f"equals the annotation's on {res.agree} of 4 cells" in text
    assert list((tmp_path / "demo").glob("side_by_side_*.png"))
