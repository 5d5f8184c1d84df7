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
    empty = cell_crops(image, [], size=48)
    assert len(empty) == 0 and empty.crops.shape == (0, 48, 48)


@pytest.fixture(scope="module")
def sample_records(tmp_path_factory, sample_dir):
    from karyotf.records import build_records

    out = tmp_path_factory.mktemp("records")
    build_records(sample_dir, out, fractions=(0.6, 0.2, 0.2), progress=False)
    return out


TINY = dict(size=32, width=4, embed=16, heads=2, cells_per_batch=4)


@pytest.mark.slow
def test_train_interrupt_resume_export_reload(sample_records, tmp_path):
    """A tiny classifier trains, stops on SIGINT with a checkpoint, resumes to its epochs, exports and reloads
    with identical outputs."""
    from karyotf.classify.data import from_records
    from karyotf.classify.export import Classifier, export
    from karyotf.classify.train import ClassifierConfig, train
    from karyotf.cli import main

    run = tmp_path / "run"
    cfg = ClassifierConfig(**TINY)

    def interrupt(step):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    first = train(sample_records, run, epochs=2, config=cfg, progress=False, on_step=interrupt)
    assert first.interrupted and first.steps == 2
    meta = json.loads((run / "classifier.json").read_text())
    assert meta["state"]["step"] == 2 and (run / "ckpt" / "checkpoint").is_file()
    second = train(sample_records, run, epochs=2, config=cfg, progress=False)
    assert not second.interrupted and second.epochs == 2 and second.steps > 2
    assert [h["epoch"] for h in second.history] == [1, 2] and second.best_val_top1 is not None
    assert list((run / "train").glob("events.out.tfevents.*"))
    with pytest.raises(ClassifierError, match="another shape"):
        train(sample_records, run, epochs=3, config=ClassifierConfig(**{**TINY, "width": 8}), progress=False)

    out = tmp_path / "exported"
    assert main(["classifier", "export", str(run), "--out", str(out)]) == 0
    info = json.loads((out / "karyotf.json").read_text())
    assert info["kind"] == "classifier" and info["size"] == 32 and info["features"] == list(FEATURES)
    assert "chr21" in (out / "label_map.pbtxt").read_text()
    val = from_records(sample_records, "val", 32, progress=False)
    sl = val.cell(0)
    a = Classifier(out).probabilities_of(val.crops[sl], val.features[sl])
    b = Classifier(run).probabilities_of(val.crops[sl], val.features[sl])
    assert a.shape == (sl.stop - sl.start, 24) and np.allclose(a.sum(1), 1, atol=1e-4)
    np.testing.assert_allclose(a, b, atol=1e-5)  # the export gives the run's best weights' outputs


def test_errors_name_the_fix(tmp_path, sample_records):
    from karyotf.classify.export import Classifier
    from karyotf.classify.train import train

    with pytest.raises(ClassifierError, match="records folder .* does not exist"):
        train(tmp_path / "nope", tmp_path / "run", epochs=1, progress=False)
    with pytest.raises(ClassifierError, match="--epochs or --minutes"):
        train(sample_records, tmp_path / "run", epochs=1, minutes=1, progress=False)
    with pytest.raises(ClassifierError, match="neither a classifier export"):
        Classifier(tmp_path)
