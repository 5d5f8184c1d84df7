"""karyotf.evaluate: COCO mAP by the OD API beside the thesis metrics, report files, the model path, ``karyotf eval``."""
from __future__ import annotations

import hashlib
import io
import json
import sys
import types

import numpy as np
import pytest

from karyotf import classes, images
from karyotf import evaluate as E
from karyotf import metrics as M
from karyotf.annotations import Box, load_dataset
from karyotf.find import Finder


@pytest.fixture(scope="module")
def sample_anns(sample_dir):
    anns, _ = load_dataset(sample_dir, progress=False)
    return anns[:12]


def perfect(anns, score=0.95):
    return [[b.with_coords(*b.as_tuple(), score=score) for b in a.boxes] for a in anns]


def noisy(anns, seed=0):
    """Detections a poor detector might give: jittered boxes, some wrong classes, duplicates, misses, junk."""
    rng = np.random.default_rng(seed)
    out = []
    for a in anns:
        dets = []
        for b in a.boxes:
            if rng.random() < 0.15:
                continue  # missed
            j = rng.normal(0, 0.12, 4) * np.array([b.width, b.height, b.width, b.height])
            name = b.name if rng.random() < 0.7 else classes.NAMES[rng.integers(24)]
            dets.append(b.with_coords(*(np.array(b.as_tuple()) + j), name=name, score=float(rng.random())))
            if rng.random() < 0.1:  # duplicate
                dets.append(dets[-1].with_coords(*dets[-1].as_tuple(), score=float(rng.random())))
        for _ in range(rng.integers(0, 5)):  # junk
            x, y = rng.uniform(0, a.width - 40), rng.uniform(0, a.height - 40)
            dets.append(Box(x, y, x + 30, y + 40, classes.NAMES[rng.integers(24)], score=float(rng.random())))
        out.append(dets)
    return out


def random_dets(anns, seed=1):
    rng = np.random.default_rng(seed)
    out = []
    for a in anns:
        dets = []
        for _ in range(len(a.boxes)):
            x, y = rng.uniform(0, a.width - 60), rng.uniform(0, a.height - 60)
            w, h = rng.uniform(10, 60, 2)
            dets.append(Box(x, y, x + w, y + h, classes.NAMES[rng.integers(24)], score=float(rng.random())))
        out.append(dets)
    return out


def test_coco_perfect_is_one_random_is_less(sample_anns):
    good = E.evaluate_detections(sample_anns, perfect(sample_anns))
    assert good.map50 == pytest.approx(1.0) and good.map == pytest.approx(1.0)
    assert (good.precision, good.recall, good.f1) == (1.0, 1.0, 1.0)
    bad = E.evaluate_detections(sample_anns, random_dets(sample_anns))
    assert 0.0 <= bad.map50 < 0.1 and bad.map < good.map
    assert bad.f1 < 0.1


def test_own_ap_agrees_with_coco(sample_anns):
    r = E.evaluate_detections(sample_anns, noisy(sample_anns), score_threshold=0.3)
    assert 0.2 < r.map50 < 0.95  # neither trivial case
    assert r.own_map50 == pytest.approx(r.map50, abs=1e-9)
    # tied scores: both sort stably in the same order, so they still agree
    tied = [[b.with_coords(*b.as_tuple(), score=round(b.score, 1)) for b in d] for d in noisy(sample_anns, seed=3)]
    t = E.evaluate_detections(sample_anns, tied)
    assert t.own_map50 == pytest.approx(t.map50, abs=1e-9)
    # thesis numbers are consistent with their counts
    o = r.metrics.thesis.overall
    assert o.truth == sum(len(a.boxes) for a in sample_anns)
    assert r.precision == pytest.approx(o.tp / (o.tp + o.fp))
    # a higher threshold trades recall for precision
    hi = E.evaluate_detections(sample_anns, noisy(sample_anns), score_threshold=0.8, coco=False)
    assert hi.recall < r.recall and hi.precision >= r.precision and hi.coco is None


def test_report_files(sample_anns, tmp_path):
    from PIL import Image

    r = E.evaluate_detections(sample_anns, noisy(sample_anns), model="ssd", split="test", batch=8, steps=2400,
                              out_dir=tmp_path / "eval")
    assert set(r.files) == set(E.FILES)
    for key, path in r.files.items():
        assert path.is_file() and path.parent == tmp_path / "eval", key
        if path.suffix == ".png":
            with Image.open(path) as im:
                assert im.format == "PNG" and im.width > 400 and im.height > 300
    assert not [p for p in (tmp_path / "eval").iterdir() if p.name.startswith(".")]  # no temp files left
    data = json.loads(r.files["metrics"].read_text())
    assert data["model"] == "ssd" and data["images"] == len(sample_anns)
    assert data["summary"]["map50"] == pytest.approx(r.map50)
    assert data["summary"]["f1"] == pytest.approx(r.f1)
    assert data["thesis"]["overall"]["tp"] == r.metrics.thesis.overall.tp
    assert len(data["confusion"]["matrix"]) == 25
    assert len(data["found_per_image"]["images"]) == len(sample_anns)
    table = r.files["table"].read_text()
    header = "| Model | Batch size | Steps | Recall | Precision | F1 | mAP@0.5 | mAP@[.5:.95] |"
    assert header in table
    assert f"| ssd | 8 | 2400 | {r.recall:.3f} | {r.precision:.3f} | {r.f1:.3f} | {r.map50:.3f} | {r.map:.3f} |" in table


def test_table_markdown_several_models(sample_anns):
    a = E.evaluate_detections(sample_anns, perfect(sample_anns), model="ssd", batch=8, steps=100, coco=False)
    b = E.evaluate_detections(sample_anns, perfect(sample_anns[:2]) + [[]] * (len(sample_anns) - 2),
                              model="faster_rcnn", coco=False)
    lines = E.table_markdown([a, b]).strip().splitlines()
    assert len(lines) == 4
    assert lines[2] == "| ssd | 8 | 100 | 1.000 | 1.000 | 1.000 | - | - |"
    assert lines[3].startswith("| faster_rcnn | - | - | ")
    recall = float(lines[3].split("|")[4])
    n2 = sum(len(x.boxes) for x in sample_anns[:2])
    assert recall == pytest.approx(n2 / sum(len(x.boxes) for x in sample_anns), abs=5e-4)


def test_bad_input_errors(sample_anns):
    with pytest.raises(E.EvaluateError, match="one list of detections per image"):
        E.evaluate_detections(sample_anns, [[]], coco=False)
    with pytest.raises(E.EvaluateError, match="score threshold"):
        E.evaluate_detections(sample_anns, perfect(sample_anns), score_threshold=1.5, coco=False)
    with pytest.raises(E.EvaluateError, match="no such model"):
        E.evaluate("/nonexistent/model", "/nonexistent/records")


PIPELINE = """model { ssd { num_classes: 24 } }
train_config {
  batch_size: 6
  optimizer { momentum_optimizer { learning_rate { cosine_decay_learning_rate { total_steps: 999 } } } }
  data_augmentation_options { random_horizontal_flip { } }
  num_steps: 1500
}
eval_config { batch_size: 1 }
"""


def test_model_info(tmp_path):
    run = tmp_path / "runs" / "ssd"
    run.mkdir(parents=True)
    (run / "pipeline.config").write_text(PIPELINE)
    assert E.model_info(run) == {"model": "ssd", "batch": 6, "steps": 1500}
    (run / "karyotf.json").write_text(json.dumps({"model": "ssd", "batch": 8, "steps": 2400}))
    assert E.model_info(run) == {"model": "ssd", "batch": 8, "steps": 2400}
    exp = tmp_path / "exported" / "ssd"
    exp.mkdir(parents=True)
    (exp / "karyotf.json").write_text(json.dumps({"model": "ssd", "checkpoint_step": 1234,
                                                  "source_model_dir": str(run)}))
    assert E.model_info(exp) == {"model": "ssd", "batch": 8, "steps": 1234}  # steps trained, not asked


@pytest.fixture(scope="module")
def records(tmp_path_factory, sample_dir):
    from karyotf.records import build_records

    anns, _ = load_dataset(sample_dir, progress=False)
    out = tmp_path_factory.mktemp("records")
    build_records(out_dir=out, annotations=anns[:6], fractions=(0.0, 0.0, 1.0), progress=False)
    return out


class _FakeDetector(Finder):
    """Stands in for karyotf.detect.Detector: returns the truth of the image it is given, and one wrong class."""

    def __init__(self, export_dir, use="auto"):
        from karyotf.records import read_examples

        self.export_dir, self.use, self.model_name, self.kind = export_dir, use, "fake_ssd", "saved_model"
        self.truth = {}
        for image_bytes, ann in read_examples(_FakeDetector.records_dir, "test"):
            self.truth[hashlib.sha1(images.load(image_bytes).tobytes()).hexdigest()] = ann

    def detect(self, image, min_score=0.0):
        assert isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.shape[2] == 3
        ann = self.truth[hashlib.sha1(image.tobytes()).hexdigest()]
        boxes = [b.with_coords(*b.as_tuple(), score=0.9) for b in ann.boxes]
        first = boxes[0]
        boxes[0] = first.with_coords(*first.as_tuple(), name="Y" if first.name != "Y" else "X")
        return sorted(boxes, key=lambda b: -b.score)


@pytest.fixture
def fake_export(tmp_path, records, monkeypatch):
    exp = tmp_path / "exported" / "ssd"
    (exp / "saved_model").mkdir(parents=True)
    (exp / "saved_model" / "saved_model.pb").write_bytes(b"")
    (exp / "pipeline.config").write_text(PIPELINE)
    (exp / "karyotf.json").write_text(json.dumps({"model": "ssd", "checkpoint_step": 77}))
    _FakeDetector.records_dir = records
    monkeypatch.setitem(sys.modules, "karyotf.detect", types.SimpleNamespace(Detector=_FakeDetector))
    return exp


def test_evaluate_model_path_with_a_stand_in_detector(fake_export, records):
    r = E.evaluate(fake_export, records, split="test", plots=False)
    assert r.images == 6 and r.model == "fake_ssd" and (r.batch, r.steps) == (6, 77)
    o = r.metrics.thesis.overall
    assert (o.fp, o.fn) == (6, 6)  # one wrong class per image
    assert r.out_dir == fake_export / "eval" and (fake_export / "eval" / "metrics.json").is_file()
    assert r.seconds_per_image is not None
    assert r.metrics.confusion.misclassified == 6
    assert r.metrics.found.summary()["cells_all_found"] == 1.0
    assert r.metrics.found.summary()["cells_all_correct"] == 0.0


def test_cli_eval(fake_export, records, tmp_path, capsys):
    from karyotf.cli import main

    out = tmp_path / "cli-eval"
    rc = main(["eval", "ssd", "--model-dir", str(fake_export), "--records", str(records), "--out", str(out),
               "--score-threshold", "0.5", "--no-plots"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "| fake_ssd | 6 | 77 |" in text
    assert json.loads((out / "metrics.json").read_text())["score_threshold"] == 0.5


def test_cli_eval_missing_model(tmp_path, capsys, monkeypatch):
    from karyotf.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["eval", "ssd", "--records", str(tmp_path)]) == 2
    assert "no such model" in capsys.readouterr().err


def test_detect_split_returns_truth_and_all_detections(fake_export, records):
    truth, detections, seconds = E.detect_split(fake_export, records, "test", limit=3)
    assert len(truth) == len(detections) == 3 and seconds > 0.0  # measured per image
    assert [len(d) for d in detections] == [len(a.boxes) for a in truth]


def test_cli_model_path(tmp_path, monkeypatch):
    from pathlib import Path

    from karyotf.cli.evaluate import model_path

    monkeypatch.chdir(tmp_path)
    assert model_path("ssd", None) == Path("runs/ssd")  # nothing there yet: the error will name runs/ssd
    (tmp_path / "exported" / "ssd").mkdir(parents=True)
    assert model_path("ssd", None) == Path("exported/ssd")
    (tmp_path / "runs" / "ssd").mkdir(parents=True)
    assert model_path("ssd", None) == Path("runs/ssd")  # the model dir wins: its latest checkpoint
    assert model_path("exported/ssd", None) == Path("exported/ssd")
    assert model_path("ssd", Path("elsewhere")) == Path("elsewhere")


# ---------------------------------------------------------------- the model's own records (no silent ./records)
def _with_records(export_dir, records_dir):
    (export_dir / "pipeline.config").write_text(PIPELINE + (
        f'train_input_reader {{ tf_record_input_reader {{ input_path: "{records_dir}/train.record-?????-of-00001" }} }}\n'
        f'eval_input_reader {{ tf_record_input_reader {{ input_path: "{records_dir}/test.record-?????-of-00001" }} }}\n'))


def test_eval_reads_the_records_the_model_was_configured_with(fake_export, records, tmp_path, monkeypatch, capsys):
    """`karyotf eval MODEL --model-dir DIR` reads DIR's own records, not ./records (which here does not exist)."""
    from karyotf.cli import main

    _with_records(fake_export, records)
    monkeypatch.chdir(tmp_path)
    assert E.model_records(fake_export) == records
    rc = main(["eval", "ssd", "--model-dir", str(fake_export), "--out", str(tmp_path / "e"), "--no-plots"])
    assert rc == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "e" / "metrics.json").read_text())["records_dir"] == str(records)


def test_eval_missing_or_empty_records_name_the_path(fake_export, records, tmp_path, capsys):
    from karyotf.cli import main

    gone = tmp_path / "moved-away"
    _with_records(fake_export, gone)
    rc = main(["eval", "ssd", "--model-dir", str(fake_export), "--no-plots"])
    err = capsys.readouterr().err
    assert rc == 2 and f"records folder {gone}" in err and "does not exist" in err and "--records" in err
    assert "Traceback" not in err and "NotFoundError" not in err
    rc = main(["eval", "ssd", "--model-dir", str(fake_export), "--records", str(records), "--split", "val",
               "--no-plots"])
    err = capsys.readouterr().err
    assert rc == 2 and "no val.record-* shards (it has: test)" in err
    (fake_export / "pipeline.config").unlink()
    with pytest.raises(E.EvaluateError, match="no pipeline.config.*--records"):
        E.evaluate(fake_export)
