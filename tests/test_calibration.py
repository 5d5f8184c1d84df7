"""P(chromosome | score): the isotonic calibration fitted on val, and the Karyotyper that lets the joint labelling
choose which boxes count."""
from __future__ import annotations

import json

import numpy as np
import pytest

from karyotf import calibration as C
from karyotf import classes
from karyotf.annotations import Box, read_voc
from karyotf.find import Finder


def test_isotonic_is_the_pooled_non_decreasing_fit():
    np.testing.assert_allclose(C.isotonic(np.array([0.1, 0.5, 0.3, 0.9]), np.ones(4)), [0.1, 0.4, 0.4, 0.9])
    np.testing.assert_allclose(C.isotonic(np.array([1.0, 0.0]), np.array([3.0, 1.0])), [0.75, 0.75])


def test_fit_recovers_a_known_curve_and_round_trips():
    rng = np.random.default_rng(0)
    s = rng.uniform(0, 1, 20000)
    y = rng.uniform(0, 1, s.size) < s ** 2            # P(chromosome | s) = s^2
    cal = C.fit(s, y, cells=7, nms_iou=0.7)
    got = cal([0.2, 0.5, 0.8])
    np.testing.assert_allclose(got, [0.04, 0.25, 0.64], atol=0.05)
    assert list(cal.p) == sorted(cal.p) and cal.boxes == s.size and cal.cells == 7
    assert cal.floor == pytest.approx(np.sqrt(C.CANDIDATE_P), abs=0.05)   # the first bin with P >= 0.05
    again = C.ChromosomeProbability.from_dict(json.loads(json.dumps(cal.to_dict())))
    np.testing.assert_allclose(again([0.1, 0.6, 0.95]), cal([0.1, 0.6, 0.95]), atol=1e-3)
    assert "P(chromosome | score) fitted on 20000 boxes of 7 val cells" in cal.text()


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="too few to calibrate"):
        C.fit([0.5, 0.5], [True, False])
    with pytest.raises(ValueError, match="non-decreasing"):
        C.ChromosomeProbability.from_dict({"scores": [0.1, 0.9], "p": [0.8, 0.2], "floor": 0.1})


class _Detector(Finder):
    """Stands in for a Detector whose export carries a calibration: P = score."""

    def __init__(self, boxes):
        self.boxes, self.export_dir, self.model_name, self.kind = boxes, "fake", "fake", "saved_model"
        self.agnostic = True
        self.info = {C.KEY: {"scores": [0.0, 1.0], "p": [0.0, 1.0], "floor": 0.1}}

    def detect(self, image, min_score=0.0):
        return [b for b in self.boxes if b.score >= min_score]


class _Classifier:
    """Reads the class a planted crop carries in its first pixel (see ``_planted_crops``): 0.9 on it."""

    size = 16
    path = "fake"

    def probabilities_of(self, crops, features):
        p = np.full((len(crops), 24), 0.1 / 23)
        p[np.arange(len(crops)), crops[:, 0, 0].astype(int)] = 0.9
        return p


def _planted_crops(image, boxes, size=16, reference=None, cutouts=None):
    from karyotf.classify.crops import CellCrops

    crops = np.zeros((len(boxes), size, size), np.uint8)
    crops[:, 0, 0] = [classes.NAMES.index(b.name) for b in boxes]
    return CellCrops(crops, np.zeros((len(boxes), 5), np.float32), [])


def test_karyotyper_leaves_out_a_duplicate_lists_it_and_counts_a_weak_pair_partner(sample_dir, tmp_path,
                                                                                  monkeypatch):
    from karyotf.classify import crops as crops_mod
    from karyotf.classify.karyotyper import Karyotyper
    from karyotf.karyogram import from_detector

    monkeypatch.setattr(crops_mod, "cell_crops", _planted_crops)
    ann = read_voc(sample_dir / "annotations" / "1054642.xml")
    assert len(ann.boxes) == 46
    found = [b.with_coords(*b.as_tuple(), score=0.99 - 1e-4 * i) for i, b in enumerate(ann.boxes)]
    found[-1] = found[-1].with_coords(*found[-1].as_tuple(), score=0.35)        # a true chromosome found weakly
    first = found[0]
    dup = first.with_coords(first.xmin + 0.3 * first.width, first.ymin, first.xmax + 0.3 * first.width, first.ymax,
                            score=0.6)                                          # a shifted second box, IoU < 0.7
    assert first.iou(dup) < 0.7
    noise = Box(1.0, 1.0, 20.0, 20.0, "1", score=0.05)                          # below the candidate floor
    k = Karyotyper(_Detector(found + [dup, noise]), _Classifier())
    cell = k.karyotype(ann.image_path, min_score=0.1, nms_iou=0.7)
    assert len(cell.boxes) == 46 and sorted(b.name for b in cell.boxes) == sorted(b.name for b in ann.boxes)
    assert [(b.name, p) for b, p in cell.left_out] == [(first.name, pytest.approx(0.6))]
    assert len(cell.below) == 1
    assert len(k.detect(ann.image_path)) == 48  # everything found, counted or not, comes back named
    assert "left_out" not in [f.code for f in cell.flags]   # a third copy of it is far less likely: listed only
    # a third 21 on a box the detector is only fairly sure of: left out, but +21 is close: flagged for a person
    third = Box(2.0, 2.0, 30.0, 40.0, "21", score=0.8)
    cell = Karyotyper(_Detector(found + [third]), _Classifier()).karyotype(ann.image_path, min_score=0.1,
                                                                         nms_iou=0.7)
    assert [(b.name, p) for b, p in cell.left_out] == [("21", pytest.approx(0.8))]
    flag = next(f for f in cell.flags if f.code == "left_out")
    assert "a third 21 left out (box at 2,2" in flag.message and flag.classes == ("21",) and flag.review
    res = from_detector(k, ann.image_path, tmp_path / "k")                      # min_score: the candidate floor
    assert res.source["min_score"] == 0.1 and res.call.total == 46
    d = json.loads((tmp_path / "k" / "detections.json").read_text())
    assert [x["p_chromosome"] for x in d["not_counted"]["left_out"]] == [0.6]
    assert "left out of the count by the joint labelling" in (tmp_path / "k" / "report.html").read_text()
    # a box the NMS removed under a box the joint step then left out: both listed, the removed one pointing at it
    under = third.with_coords(third.xmin + 1, third.ymin, third.xmax + 1, third.ymax, score=0.75)
    cell = Karyotyper(_Detector(found + [third, under]), _Classifier()).karyotype(ann.image_path, min_score=0.1,
                                                                                nms_iou=0.7)
    assert [b.name for b, _ in cell.left_out] == ["21"] and len(cell.suppressed) == 1
    assert cell.suppressed[0][1] is cell.left_out[0][0]
    det = _Detector(found + [dup])
    det.info[C.KEY]["nms_iou"] = 0.5   # fitted at another NMS: the candidates go through that one, not 0.7
    cell = Karyotyper(det, _Classifier()).karyotype(ann.image_path, min_score=0.1, nms_iou=0.7)
    assert cell.left_out == [] and [round(v, 2) for _, _, v in cell.suppressed] == [round(first.iou(dup), 2)]
    plain = Karyotyper(_Detector(found + [dup]), _Classifier(), joint=False)     # no joint step: no choosing
    assert plain.calibration is None
    assert len(plain.karyotype(ann.image_path, min_score=0.1, nms_iou=0.7).boxes) == 47
