"""The chromosome classifier stage: crops, a tiny train / resume / interrupt, export and reload, evaluation."""
from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest

from karyotf import classes
from karyotf.annotations import Box, read_voc
from karyotf.classify.crops import FEATURES, cell_crops
from karyotf.errors import ClassifierError
from karyotf.find import Finder


def test_crops_fill_the_canvas_and_measure_relative_size(sample_dir):
    from karyotf.images import load

    ann = read_voc(sample_dir / "annotations" / "1054642.xml")
    image = load(ann.image_path)
    tiny = Box(5, 5, 6, 40, "1")  # 1 px wide: too small to crop
    cc = cell_crops(image, ann.boxes + [tiny], size=48)
    assert cc.crops.shape == (47, 48, 48) and cc.features.shape == (47, len(FEATURES))
    assert cc.too_small == [46] and (cc.crops[46] == 255).all() and (cc.features[46] == 0).all()
    by_name = {}
    for b, f in zip(ann.boxes, cc.features):
        by_name.setdefault(b.name, []).append(f[FEATURES.index("log_diag")])
    assert np.mean(by_name["1"]) > 0.3 > -0.3 > np.mean(by_name["21"])  # chromosome 1 is long, 21 short
    assert abs(float(np.median(cc.features[:46, 0]))) < 0.05  # relative to the cell's median
    assert cc.crops[:46].min() < 100  # a dark chromosome on each canvas
    # measured against reference boxes: three copies of chromosome 1 beside the cell keep their length relative to
    # the cell, not to each other
    ones = [b for b in ann.boxes if b.name == "1"]
    alone = cell_crops(image, ones, size=48)
    beside = cell_crops(image, ann.boxes + ones, size=48, reference=range(46))
    assert abs(float(np.median(alone.features[:, 0]))) < 0.05
    np.testing.assert_allclose(beside.features[46:], cc.features[[ann.boxes.index(b) for b in ones]], atol=1e-5)
    empty = cell_crops(image, [], size=48)
    assert len(empty) == 0 and empty.crops.shape == (0, 48, 48)


@pytest.fixture(scope="module")
def sample_records(tmp_path_factory, sample_dir):
    from karyotf.records import build_records

    out = tmp_path_factory.mktemp("records")
    build_records(sample_dir, out, fractions=(0.6, 0.2, 0.2), progress=False)
    return out


TINY = dict(size=32, width=4, embed=16, heads=2, cells_per_batch=4)


@pytest.fixture(scope="module")
def tiny_run(sample_records, tmp_path_factory):
    """A tiny classifier trained 2 epochs, interrupted by SIGINT after step 2 and resumed, then exported."""
    from karyotf.classify.train import ClassifierConfig, train
    from karyotf.cli import main

    tmp = tmp_path_factory.mktemp("classifier")
    run = tmp / "run"
    cfg = ClassifierConfig(**TINY)

    def interrupt(step):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    first = train(sample_records, run, epochs=2, config=cfg, progress=False, on_step=interrupt)
    meta_after_interrupt = json.loads((run / "classifier.json").read_text())
    second = train(sample_records, run, epochs=2, config=cfg, progress=False)
    out = tmp / "exported"
    assert main(["classifier", "export", str(run), "--out", str(out)]) == 0
    return {"run": run, "export": out, "first": first, "second": second, "meta": meta_after_interrupt}


@pytest.mark.slow
def test_train_interrupt_resume_export_reload(tiny_run, sample_records):
    """Trains, stops on SIGINT with a checkpoint, resumes to its epochs, exports and reloads with identical
    outputs."""
    from karyotf.classify.data import from_records
    from karyotf.classify.export import Classifier
    from karyotf.classify.train import ClassifierConfig, train

    first, second, run, out = tiny_run["first"], tiny_run["second"], tiny_run["run"], tiny_run["export"]
    assert first.interrupted and first.steps == 2
    assert tiny_run["meta"]["state"]["step"] == 2 and (run / "ckpt" / "checkpoint").is_file()
    assert not second.interrupted and second.epochs == 2 and second.steps > 2
    assert [h["epoch"] for h in second.history] == [1, 2] and second.best_val_top1 is not None
    assert second.history[-1]["train_loss"] < 3.4  # it learns (the loss at chance with smoothing is ln 24 = 3.18+)
    assert list((run / "train").glob("events.out.tfevents.*"))
    with pytest.raises(ClassifierError, match="another shape"):
        train(sample_records, run, epochs=3, config=ClassifierConfig(**{**TINY, "width": 8}), progress=False)
    info = json.loads((out / "karyotf.json").read_text())
    assert info["kind"] == "classifier" and info["size"] == 32 and info["features"] == list(FEATURES)
    assert "chr21" in (out / "label_map.pbtxt").read_text()
    val = from_records(sample_records, "val", 32, progress=False)
    sl = val.cell(0)
    a = Classifier(out).probabilities_of(val.crops[sl], val.features[sl])
    b = Classifier(run).probabilities_of(val.crops[sl], val.features[sl])
    assert a.shape == (sl.stop - sl.start, 24) and np.allclose(a.sum(1), 1, atol=1e-4)
    np.testing.assert_allclose(a, b, atol=1e-5)  # the export gives the run's best weights' outputs


@pytest.mark.slow
def test_classifier_eval_writes_metrics_and_confusion(tiny_run, tmp_path, capsys):
    from karyotf.cli import main

    assert main(["classifier", "eval", str(tiny_run["export"]), "--out", str(tmp_path / "e")]) == 0
    assert "| exported | test |" in capsys.readouterr().out
    m = json.loads((tmp_path / "e" / "metrics.json").read_text())
    s = m["summary"]
    assert 0 <= s["top1"] <= s["top3"] <= 1 and m["cells"] == len(m["cells_detail"]) > 0
    assert not any("overlapping_boxes" in c["flags"] for c in m["cells_detail"])  # truth boxes: no fake overlap
    assert len(m["confusion"]["matrix"]) == 24 and sum(map(sum, m["confusion"]["matrix"])) == m["chromosomes"]
    assert (tmp_path / "e" / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"


class _FakeDetector(Finder):
    """Stands in for karyotf.detect.Detector: the truth boxes of one cell with planted scores and classes."""

    def __init__(self, boxes):
        self.boxes, self.export_dir, self.model_name, self.kind = boxes, "fake", "fake", "saved_model"

    def detect(self, image, min_score=0.0):
        return [b for b in self.boxes if b.score >= min_score]


@pytest.mark.slow
def test_karyotyper_drives_the_karyogram(tiny_run, sample_dir, tmp_path):
    """The detector finds (its classes ignored), the classifier names; nothing found is dropped unseen."""
    from karyotf.classify.karyotyper import Karyotyper
    from karyotf.karyogram import from_detector

    ann = read_voc(sample_dir / "annotations" / "1054642.xml")
    found = [b.with_coords(*b.as_tuple(), name="1", score=0.9) for b in ann.boxes]  # a detector that says "1"
    weak = found[0].with_coords(*found[0].as_tuple(), score=0.1)
    k = Karyotyper(_FakeDetector(found + [weak]), tiny_run["export"])
    res = from_detector(k, ann.image_path, tmp_path / "k", min_score=0.3)
    assert res.call.total == 46 and len(res.boxes) == 46
    d = json.loads((tmp_path / "k" / "detections.json").read_text())
    assert all("classifier" in x and x["classifier"]["classifier"] in classes.NAMES for x in d["detections"])
    assert sum(x["classifier"]["changed"] for x in d["detections"]) == sum(
        f.code == "label_changed" for f in res.call.flags)
    assert len(d["not_counted"]["below_min_score"]) == 1  # the weak one, named by top-1, listed
    assert d["source"]["classifier"].endswith("exported")
    boxes = k.detect(ann.image_path)
    assert len(boxes) == 47 and all(b.name in classes.NAMES for b in boxes)


def test_errors_name_the_fix(tmp_path, sample_records):
    from karyotf.classify.export import Classifier
    from karyotf.classify.train import train

    with pytest.raises(ClassifierError, match="records folder .* does not exist"):
        train(tmp_path / "nope", tmp_path / "run", epochs=1, progress=False)
    with pytest.raises(ClassifierError, match="--epochs or --minutes"):
        train(sample_records, tmp_path / "run", epochs=1, minutes=1, progress=False)
    with pytest.raises(ClassifierError, match="neither a classifier export"):
        Classifier(tmp_path)


@pytest.mark.slow
def test_boxes_the_classifier_cannot_see_stay_counted_and_flagged(tiny_run, sample_dir, tmp_path):
    """A box too small to cut out and a box on bare background: never a crash, counted, listed and flagged."""
    from karyotf.classify.karyotyper import Karyotyper
    from karyotf.images import load
    from karyotf.karyogram import from_detector

    ann = read_voc(sample_dir / "annotations" / "1054642.xml")
    image = load(ann.image_path)
    found = [b.with_coords(*b.as_tuple(), score=0.9) for b in ann.boxes]
    tiny = Box(200.0, 200.0, 201.0, 230.0, "1", score=0.9)
    ys, xs = np.nonzero(image.min(axis=2) > 250)  # a corner of bare slide
    y, x = int(ys[0]), int(xs[0])
    bare = Box(float(x), float(y), float(x) + 3.0, float(y) + 3.0, "1", score=0.9)
    assert image[y:y + 3, x:x + 3].min() > 200
    k = Karyotyper(_FakeDetector(found + [tiny, bare]), tiny_run["export"])
    cell = k.karyotype(image, min_score=0.3, nms_iou=0.99)
    assert len(cell.boxes) == 48
    unseen = [f for f in cell.flags if f.code == "unclassifiable"]
    assert len(unseen) == 2 and any("too small" in f.message for f in unseen)
    assert sum("unclassifiable" in d for d in cell.details) == 2
    res = from_detector(k, ann.image_path, tmp_path / "k", min_score=0.3, nms_iou=0.99)
    assert res.call.total == 48 and "unclassifiable" in res.call.flag_codes
    assert "unclassifiable" in (tmp_path / "k" / "report.html").read_text()
    empty = Karyotyper(_FakeDetector([]), tiny_run["export"]).karyotype(image, min_score=0.3, nms_iou=0.7)
    assert empty.boxes == [] and empty.flags == []


def test_train_minutes_with_progress_bar(sample_records, tmp_path, capsys):
    """``karyotf classifier train --minutes`` with its progress bar on (an unknown total): trains to its budget and
    saves best weights (it crashed in tqdm's ``bool()`` on the old main)."""
    from karyotf.cli import main

    run = tmp_path / "run"
    assert main(["classifier", "train", str(sample_records), "--out", str(run), "--minutes", "0.05",
                 "--size", "32", "--width", "4", "--batch", "4"]) == 0
    err = capsys.readouterr().err
    assert "classifier" in err and "step" in err  # the tqdm bar was drawn
    assert (run / "best" / "checkpoint").is_file()


def test_train_on_separated_cut_outs_keeps_its_input(sample_records, tmp_path, capsys):
    """``classifier train --input separated``: the crops are the box windows with everything outside each
    chromosome's separated mask white (same boxes, labels and measurements as the box crops, never a box dropped),
    cached apart from the box crops; the run, its export and ``classifier eval`` keep the input; resuming with
    the other input stops with the fix."""
    from karyotf.classify.data import from_records
    from karyotf.classify.export import Classifier
    from karyotf.classify.train import ClassifierConfig, train
    from karyotf.cli import main

    box = from_records(sample_records, "val", 32, progress=False, limit=2)
    sep = from_records(sample_records, "val", 32, progress=False, limit=2, input="separated")
    assert sep.cell_ids == box.cell_ids and len(sep) == len(box) > 40
    np.testing.assert_array_equal(sep.labels, box.labels)
    np.testing.assert_array_equal(sep.features, box.features)
    # a neighbour's arm inside a box turns white: never darker, lighter somewhere
    assert (sep.crops.astype(int) >= box.crops.astype(int) - 1).mean() > 0.999 and (sep.crops > box.crops).any()
    with pytest.raises(ClassifierError, match="classifier input 'mask'"):
        from_records(sample_records, "val", 32, progress=False, limit=1, input="mask")

    run = tmp_path / "run"
    assert main(["classifier", "train", str(sample_records), "--out", str(run), "--epochs", "1", "--size", "32",
                 "--width", "4", "--batch", "8", "--input", "separated"]) == 0
    assert json.loads((run / "classifier.json").read_text())["config"]["input"] == "separated"
    caches = sorted(p.name for p in (run / "cache").glob("*.npz"))
    assert caches and all(n.startswith("cells-separated-") for n in caches)
    with pytest.raises(ClassifierError, match="a run on 'separated' crops, not 'box'"):
        train(sample_records, run, epochs=2, config=ClassifierConfig(size=32, width=4, cells_per_batch=8),
              progress=False)
    # the CLI resumes it with its own input when --input is not given
    assert main(["classifier", "train", str(sample_records), "--out", str(run), "--epochs", "1", "--size", "32",
                 "--width", "4", "--batch", "8"]) == 0
    out = tmp_path / "exported"
    assert main(["classifier", "export", str(run), "--out", str(out)]) == 0
    assert Classifier(out).trained_on == "separated" and Classifier(run).trained_on == "separated"
    capsys.readouterr()
