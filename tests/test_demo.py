"""`karyotf demo`: the one-command run of the whole pipeline on the sample."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from karyotf import classes, demo


def _manifest(splits: dict[str, str]) -> dict:
    return {"images": {i: {"split": s} for i, s in splits.items()}}


def test_choose_cell_prefers_an_abnormal_test_cell_and_never_a_training_one():
    m = _manifest({"1": "train", "2": "test", "3": "test", "4": "val"})
    assert demo.choose_cell(m, {}) == "2"
    assert demo.choose_cell(m, {"3": "47, 21"}) == "3"
    assert demo.choose_cell(m, {"1": "47, 21"}) == "2"  # abnormal but trained on: not chosen
    assert demo.choose_cell(_manifest({"1": "train", "4": "val"}), {}) == "4"
    assert demo.choose_cell(m, {}, cell="1") == "1"
    with pytest.raises(demo.DemoError, match="not in the demo dataset"):
        demo.choose_cell(m, {}, cell="99")


def test_listed_karyotypes_of_the_sample(sample_dir):
    listed = demo.listed_karyotypes(sample_dir)
    assert listed["1055911"].startswith("47 chromosomes, abnormality 21")
    assert len(listed) == 4
    assert demo.listed_karyotypes(sample_dir / "images") == {}


def test_side_by_side_puts_both_pictures_at_one_height(tmp_path):
    from PIL import Image

    Image.new("RGB", (300, 200), "red").save(tmp_path / "a.png")
    Image.new("RGB", (100, 400), "blue").save(tmp_path / "b.png")
    out = demo.side_by_side(tmp_path / "a.png", tmp_path / "b.png", ("left", "right"), tmp_path / "ab.png")
    pic = Image.open(out)
    assert pic.height == 400 + 50 and pic.width == 600 + 100 + 20
    assert pic.getpixel((10, 300))[:3] == (255, 0, 0) and pic.getpixel((650, 300))[:3] == (0, 0, 255)
    assert not list(tmp_path.glob(".*tmp"))


def test_summary_text_says_where_everything_is_and_that_it_is_not_diagnostic(tmp_path):
    r = demo.DemoResult(out_dir=tmp_path, model="ssd", steps=300, cell="1055911", n_train=25,
                        outputs={"records": tmp_path / "records"}, calls={"annotation": "47,XY,+21", "model": "44,XX"},
                        metrics={"precision": 0.25, "mAP@0.5": None}, seconds={"records": 3.0, "train": 200.0})
    text = r.text()
    assert "A demo-length model is not a diagnostic one" in text
    assert "300 steps" in text and "25 sample cells" in text
    assert str(tmp_path / "records") in text and "47,XY,+21" in text and "44,XX" in text
    assert "precision 0.250" in text and "mAP@0.5" not in text  # a missing metric is left out, not printed as None
    d = r.to_dict()
    assert json.loads(json.dumps(d))["disclaimer"].startswith("A demo-length model is not a diagnostic one")


def test_cli_demo_passes_its_options_to_run_demo(monkeypatch, capsys, tmp_path):
    from karyotf.cli import main

    seen = {}

    def fake(out_dir, **kw):
        seen.update(kw, out_dir=out_dir)
        return demo.DemoResult(out_dir=Path(out_dir), model=kw["model"], steps=kw["steps"])

    monkeypatch.setattr(demo, "run_demo", fake)
    assert main(["demo", "--train", "--out", str(tmp_path), "--steps", "7", "--image-size", "128", "--augment", "hflip,vflip",
                 "--cell", "1055911"]) == 0
    assert seen["out_dir"] == tmp_path and seen["steps"] == 7 and seen["image_size"] == 128
    assert seen["augment"] == ["hflip", "vflip"] and seen["cell"] == "1055911" and seen["fresh"] is True
    assert "not a diagnostic one" in capsys.readouterr().out
    assert main(["demo", "--train", "--augment", "", "--resume"]) == 0 and seen["augment"] == [] and seen["fresh"] is False


def test_demo_refuses_zero_steps(tmp_path):
    with pytest.raises(demo.DemoError, match="at least 1 step"):
        demo.run_demo(tmp_path, steps=0)


@pytest.mark.slow
def test_demo_runs_end_to_end_on_a_few_cells(tmp_path, few_cells):
    """records -> config -> train 2 steps -> export -> eval -> both karyograms, every output where the summary says."""
    from karyotf.annotations import read_voc
    from karyotf.karyogram import count_call

    r = demo.run_demo(tmp_path / "demo", src=few_cells, steps=2, image_size=128, batch=2, score_threshold=0.0,
                      progress=False)
    for label, path in r.outputs.items():
        assert Path(path).exists(), f"{label}: {path} missing"
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["training"]["steps"] == 2
    assert set(summary["calls"]) == {"annotation", "model"}
    manifest = json.loads((tmp_path / "demo" / "records" / "manifest.json").read_text())
    assert manifest["images"][r.cell]["split"] == "test"
    truth = read_voc(few_cells / "annotations" / f"{r.cell}.xml")
    assert r.calls["annotation"] == count_call(truth.boxes).text
    assert (tmp_path / "demo" / "karyogram" / "model" / "karyogram.png").is_file()
    assert (tmp_path / "demo" / "eval" / "metrics.json").is_file()
    # the class-agnostic detector finds, the classifier names: the model's karyogram has named chromosomes in rows
    assert r.model == "ssd (class-agnostic) + classifier" and summary["training"]["classifier_epochs"] >= 1
    assert (tmp_path / "demo" / "exported" / "classifier" / "karyotf.json").is_file()
    dets = json.loads((tmp_path / "demo" / "karyogram" / "model" / "detections.json").read_text())["detections"]
    assert len(dets) >= 10 and all(d["class"] in classes.NAMES and "classifier" in d for d in dets)
    assert "not a diagnostic one" in (tmp_path / "demo" / "summary.txt").read_text()
