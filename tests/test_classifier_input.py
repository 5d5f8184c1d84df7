"""What the classifier reads of each chromosome: the box crop, or its window with everything outside its separated
mask white (cell_crops(cutouts=), Karyotyper(input=), the CLASSIFIER_INPUT default)."""
from __future__ import annotations

import numpy as np
import pytest

from karyotf import defaults
from karyotf.annotations import Box
from karyotf.classify.crops import cell_crops
from karyotf.errors import KaryogramError
from karyotf.find import Finder
from karyotf.karyogram.cutout import masked


def _crossing():
    """A horizontal bar (chromosome 0) with a vertical bar (a neighbour) crossing its box."""
    img = np.full((80, 100, 3), 250, np.uint8)
    img[30:40, 10:70] = 60
    img[5:75, 40:46] = 90
    boxes = [Box(8, 28, 72, 42, "1"), Box(38, 3, 48, 77, "2")]
    return img, boxes


def test_cut_out_crops_keep_the_box_window_and_whiten_the_neighbour():
    img, boxes = _crossing()
    m = np.zeros((14, 64), bool)
    m[2:12, 2:62] = True                                   # chromosome 0's own mask: the bar, crossing included
    cuts = [masked(img, boxes[0], 0, m, (8, 28), "unet"), masked(img, boxes[1], 1, np.ones((80, 30), bool),
                                                                 (30, 0), "unet")]
    plain = cell_crops(img, boxes, size=64)
    cut = cell_crops(img, boxes, size=64, cutouts=cuts)
    # same window, same measurements; only the pixels outside the mask turn white (the neighbour's arm is gone)
    np.testing.assert_array_equal(plain.features, cut.features)
    assert (cut.crops[0] >= plain.crops[0]).all() and (cut.crops[0] != plain.crops[0]).any()
    assert (plain.crops[0] < 128).sum() > (cut.crops[0] < 128).sum() > 0
    np.testing.assert_array_equal(plain.crops[1], cut.crops[1])   # a mask covering its whole window: no change
    with pytest.raises(ValueError, match="1 cut-outs for 2 boxes"):
        cell_crops(img, boxes, cutouts=cuts[:1])


class _Detector(Finder):
    def __init__(self, boxes):
        self.boxes, self.export_dir, self.model_name, self.kind = boxes, "fake", "fake", "saved_model"
        self.agnostic = True
        self.info = {}

    def detect(self, image, min_score=0.0):
        return [b for b in self.boxes if (b.score or 1.0) >= min_score]


class _Classifier:
    size = 32
    path = "fake"

    def __init__(self):
        self.seen = []

    def probabilities_of(self, crops, features):
        self.seen.append(crops.copy())
        p = np.full((len(crops), 24), 0.01)
        p[:, 0] = 0.77
        return p


def test_the_karyotyper_reads_separated_cut_outs_by_default_and_box_crops_on_request(monkeypatch):
    from karyotf.classify.karyotyper import Karyotyper
    from karyotf.separate import separator as sep_mod

    img, boxes = _crossing()
    boxes = [b.with_coords(*b.as_tuple(), score=0.9) for b in boxes]
    calls = []
    real = sep_mod.separate

    def classical(image, bx, separator=None, **kw):        # the classical masks: no TensorFlow in a fast test
        calls.append(len(bx))
        return real(image, bx, None)

    monkeypatch.setattr(sep_mod, "separate", classical)
    monkeypatch.setattr(sep_mod, "load", lambda path: None)
    assert defaults.CLASSIFIER_INPUT == "separated"
    seen = {}
    for kind in ("separated", "box"):
        clf = _Classifier()
        k = Karyotyper(_Detector(boxes), clf, **({} if kind == "separated" else {"input": "box"}))
        assert k.input == kind and k.describe()["classifier_input"] == kind
        k.find(img, min_score=0.1)
        seen[kind] = clf.seen[0]
    assert calls == [2]                                    # separated once, for the counted boxes; box: never
    assert (seen["separated"][0] >= seen["box"][0]).all() and (seen["separated"][0] != seen["box"][0]).any()
    with pytest.raises(KaryogramError, match="classifier input 'masks': one of separated, box"):
        Karyotyper(_Detector(boxes), _Classifier(), input="masks")


def test_karyogram_cli_has_the_classifier_input_option(capsys):
    from karyotf.cli import main

    with pytest.raises(SystemExit):
        main(["karyogram", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--classifier-input {separated,box}" in out and "(default: separated)" in out


def test_a_classifier_trained_on_cut_outs_is_read_as_trained(monkeypatch, caplog):
    """``Classifier.probabilities(image, boxes)`` cuts each box out when the classifier was trained on separated
    cut-outs (box crops when on box crops); a Karyotyper told to read the other input says so in the log."""
    import logging

    from karyotf.classify.export import Classifier
    from karyotf.classify.karyotyper import Karyotyper
    from karyotf.separate import separator as sep_mod

    img, boxes = _crossing()
    calls = []
    real = sep_mod.separate

    def classical(image, bx, separator=None, **kw):
        calls.append(len(bx))
        return real(image, bx, None)

    monkeypatch.setattr(sep_mod, "separate", classical)
    monkeypatch.setattr(sep_mod, "load", lambda path: None)
    seen = []
    for on in ("separated", "box"):
        clf = Classifier.__new__(Classifier)            # the reading path only: no model loaded
        clf.info, clf.size, clf.views = {"config": {"input": on}}, 32, 1
        clf.probabilities_of = lambda crops, feats: (seen.append(crops.copy()), np.full((len(crops), 24), 1 / 24))[1]
        assert clf.trained_on == on and clf.probabilities(img, boxes).shape == (2, 24)
    assert calls == [2] and (seen[0][0] >= seen[1][0]).all() and (seen[0][0] != seen[1][0]).any()
    old = Classifier.__new__(Classifier)
    old.info = {"kind": "classifier"}                   # exported before the setting existed
    assert old.trained_on == "box"

    fake = _Classifier()
    fake.trained_on = "separated"
    with caplog.at_level(logging.WARNING, logger="karyotf.classify.karyotyper"):
        Karyotyper(_Detector(boxes), fake, input="box")
    assert "trained on separated crops and will read box ones" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="karyotf.classify.karyotyper"):
        Karyotyper(_Detector(boxes), fake)
    assert caplog.text == ""
