"""Thesis metrics against hand-computed cases (karyotf.metrics is pure numpy: no TensorFlow here)."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from karyotf import classes
from karyotf import metrics as M
from karyotf.annotations import Box


def box(x, y, name, score=None, w=10, h=30):
    return Box(x, y, x + w, y + h, name, score=score)


# Four chromosomes far apart (no two overlap), classes 1, 2, 21, X.
TRUTH = [box(0, 0, "1"), box(100, 0, "2"), box(200, 0, "21"), box(300, 0, "X")]


def dets_of(truth, score=0.9):
    return [b.with_coords(*b.as_tuple(), score=score) for b in truth]


def only(truth, dets, **kw):
    return M.compute_metrics([truth], [dets], **kw)


def test_module_imports_no_tensorflow():
    assert "karyotf.metrics" in sys.modules
    import subprocess

    code = "import sys, karyotf.metrics; sys.exit(int('tensorflow' in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_iou_matrix_agrees_with_box_iou():
    a = [box(0, 0, "1"), box(5, 10, "2", w=20, h=5), box(50, 50, "3")]
    b = [box(2, 3, "1"), box(0, 0, "1", w=0, h=0), box(5, 10, "2", w=20, h=5)]
    mat = M.iou_matrix(M.boxes_array(a), M.boxes_array(b))
    want = np.array([[x.iou(y) for y in b] for x in a])
    np.testing.assert_allclose(mat, want)
    assert mat[1, 2] == pytest.approx(1.0) and mat[2, 0] == 0.0


def test_perfect():
    m = only(TRUTH, dets_of(TRUTH))
    o = m.thesis.overall
    assert (o.tp, o.fp, o.fn) == (4, 0, 0)
    assert (m.thesis.precision, m.thesis.recall, m.thesis.f1) == (1.0, 1.0, 1.0)
    for name in ("1", "2", "21", "X"):
        c = m.thesis.per_class[name]
        assert (c.tp, c.fp, c.fn, c.precision, c.recall, c.f1) == (1, 0, 0, 1.0, 1.0, 1.0)
    absent = m.thesis.per_class["Y"]
    assert (absent.precision, absent.recall, absent.f1) == (None, None, None)
    assert m.thesis.macro == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert m.confusion.correct == 4 and m.confusion.matrix.sum() == 4
    assert m.confusion.count("21", "21") == 1
    s = m.found.summary()
    assert (s["cells_all_found"], s["cells_all_correct"], s["found_share"]) == (1.0, 1.0, 1.0)
    assert m.pr.mean_ap == pytest.approx(1.0) and m.pr.micro.ap == pytest.approx(1.0)


def test_one_missed():
    m = only(TRUTH, dets_of(TRUTH[:3]))  # X not detected
    o = m.thesis.overall
    assert (o.tp, o.fp, o.fn) == (3, 0, 1)
    assert m.thesis.precision == 1.0
    assert m.thesis.recall == pytest.approx(3 / 4)
    assert m.thesis.f1 == pytest.approx(2 * 1.0 * 0.75 / 1.75)  # = 6/7
    x = m.thesis.per_class["X"]
    assert (x.tp, x.fp, x.fn, x.precision, x.recall, x.f1) == (0, 0, 1, 0.0, 0.0, 0.0)
    assert m.confusion.count("X", M.MISSED) == 1 and m.confusion.missed["X"] == 1
    assert sum(m.confusion.spurious.values()) == 0
    img = m.found.images[0]
    assert (img.truth, img.detected, img.found, img.correct) == (4, 3, 3, 3)
    assert not img.all_found and m.found.summary()["cells_all_correct"] == 0.0
    assert m.pr.per_class["X"].ap == 0.0
    assert m.pr.mean_ap == pytest.approx(3 / 4)  # mean over the 4 classes with truth


def test_one_wrong_class():
    dets = dets_of(TRUTH)
    dets[2] = dets[2].with_coords(*dets[2].as_tuple(), name="22")  # the 21 called 22
    m = only(TRUTH, dets)
    o = m.thesis.overall
    assert (o.tp, o.fp, o.fn) == (3, 1, 1)
    assert m.thesis.precision == pytest.approx(0.75) and m.thesis.recall == pytest.approx(0.75)
    assert m.thesis.f1 == pytest.approx(0.75)
    c21, c22 = m.thesis.per_class["21"], m.thesis.per_class["22"]
    assert (c21.tp, c21.fp, c21.fn, c21.recall, c21.precision) == (0, 0, 1, 0.0, 0.0)
    assert (c22.tp, c22.fp, c22.fn, c22.precision, c22.recall) == (0, 1, 0, 0.0, None)
    # the swapped class lands in the (true 21, predicted 22) cell and nowhere else off the diagonal
    assert m.confusion.count("21", "22") == 1
    assert m.confusion.matrix[classes.LABEL_OF["21"] - 1, classes.LABEL_OF["22"] - 1] == 1
    assert m.confusion.count("22", "21") == 0
    assert m.confusion.misclassified == 1 and m.confusion.correct == 3
    assert m.confusion.misclassified_within_group == 1  # 21 and 22 are both Denver group G
    assert m.confusion.top_confusions() == [("21", "22", 1)]
    assert sum(m.confusion.missed.values()) == 0 and sum(m.confusion.spurious.values()) == 0
    img = m.found.images[0]
    assert (img.found, img.correct) == (4, 3)
    assert img.all_found and not img.all_correct


def test_duplicate_detection_is_false_positive():
    dets = dets_of(TRUTH)
    dup = TRUTH[0].with_coords(1, 0, 11, 30, score=0.8)  # the same chromosome 1 again, IoU 0.82
    assert dup.iou(TRUTH[0]) > 0.5
    m = only(TRUTH, dets + [dup])
    o = m.thesis.overall
    assert (o.tp, o.fp, o.fn) == (4, 1, 0)
    assert m.thesis.precision == pytest.approx(0.8) and m.thesis.recall == 1.0
    assert m.thesis.f1 == pytest.approx(2 * 0.8 / 1.8)
    c1 = m.thesis.per_class["1"]
    assert (c1.tp, c1.fp, c1.fn) == (1, 1, 0)
    assert m.confusion.count(M.SPURIOUS, "1") == 1 and m.confusion.count("1", "1") == 1
    img = m.found.images[0]
    assert (img.detected, img.found, img.correct) == (5, 4, 4)
    assert img.all_found and not img.all_correct  # a 47th "chromosome" would spoil the count call


def test_match_greedy_by_score_then_best_iou():
    t = [box(0, 0, "1")]
    low_iou_high_score = box(4, 0, "1", score=0.9)  # IoU 6/14
    assert 0.4 < low_iou_high_score.iou(t[0]) < 0.5
    good = box(2, 0, "1", score=0.6)  # IoU 8/12 = 0.67
    better_low = box(1, 0, "1", score=0.55)  # IoU 9/11 but scored lower: the 0.6 one gets the truth
    m = M.match_detections(t, [better_low, low_iou_high_score, good])
    assert m.tp == ((2, 0),) and set(m.fp) == {0, 1} and m.fn == ()
    # among truths of the class, the highest IoU wins
    two = [box(0, 0, "1"), box(3, 0, "1")]
    m = M.match_detections(two, [box(3, 0, "1", score=0.9)])
    assert m.tp == ((0, 1),) and m.fn == (0,)


def test_score_threshold_and_iou_threshold():
    dets = dets_of(TRUTH)
    dets[0] = dets[0].with_coords(*dets[0].as_tuple(), score=0.3)   # below 0.5: ignored
    dets[1] = dets[1].with_coords(105, 0, 115, 30, score=0.9)        # IoU 1/3 with its truth: FP + FN
    m = only(TRUTH, dets)
    o = m.thesis.overall
    assert (o.tp, o.fp, o.fn) == (2, 1, 2)
    assert m.found.images[0].detected == 3
    assert m.confusion.count("1", M.MISSED) == 1
    assert m.confusion.count("2", M.MISSED) == 1 and m.confusion.count(M.SPURIOUS, "2") == 1
    m2 = only(TRUTH, dets, score_threshold=0.25, iou=0.3)
    o2 = m2.thesis.overall
    assert (o2.tp, o2.fp, o2.fn) == (4, 0, 0)
    raw = M.match_detections(TRUTH, dets, min_score=0.5)
    assert raw.ignored == (0,)


def test_confusion_agnostic_match_takes_the_higher_score():
    # a wrong-class box scored above a right-class one on the same chromosome: the class-agnostic match pairs the
    # truth with the wrong class (greedy by score) and the right-class box becomes spurious
    t = [box(0, 0, "7")]
    m = only(t, [box(0, 0, "X", score=0.9), box(1, 0, "7", score=0.8)])
    assert m.confusion.count("7", "X") == 1 and m.confusion.count(M.SPURIOUS, "7") == 1
    assert m.confusion.misclassified_within_group == 1  # 7 and X: group C
    assert m.thesis.per_class["7"].tp == 1 and m.thesis.per_class["X"].fp == 1  # class-aware: the 7 is found
    m = only([box(0, 0, "1")], [box(0, 0, "Y", score=0.9)])
    assert m.confusion.misclassified == 1 and m.confusion.misclassified_within_group == 0


def test_empty_images():
    m = M.compute_metrics([[], TRUTH], [[box(0, 0, "5", score=0.9)], []])
    o = m.thesis.overall
    assert (o.tp, o.fp, o.fn) == (0, 1, 4)
    assert m.thesis.precision == 0.0 and m.thesis.recall == 0.0 and m.thesis.f1 == 0.0
    assert [i.all_found for i in m.found.images] == [True, False]
    assert m.found.summary()["cells_all_correct"] == 0.0


def test_pr_curve_hand_computed_ap():
    # one class, two chromosomes; detections: 0.9 TP, 0.8 FP (elsewhere), 0.7 TP
    t = [box(0, 0, "3"), box(100, 0, "3")]
    d = [box(0, 0, "3", score=0.9), box(50, 0, "3", score=0.8), box(100, 0, "3", score=0.7)]
    m = only(t, d)
    c = m.pr.per_class["3"]
    np.testing.assert_allclose(c.precision, [1.0, 0.5, 2 / 3])
    np.testing.assert_allclose(c.recall, [0.5, 0.5, 1.0])
    # COCO 101-point: recall 0..0.50 (51 points) at precision 1, 0.51..1.00 (50 points) at the envelope 2/3
    assert c.ap == pytest.approx((51 * 1.0 + 50 * 2 / 3) / 101)
    assert c.at(0.75) == (0.5, 0.5) and c.at(0.95) == (None, 0.0)
    assert m.pr.mean_ap == pytest.approx(c.ap)
    curve = m.pr.to_dict()["micro"]["curve"]
    i = curve["score"].index(0.7)
    assert curve["precision"][i] == pytest.approx(2 / 3) and curve["recall"][i] == 1.0


def test_score_none_counts_as_one_and_truth_as_detections_is_perfect(sample_dir):
    from karyotf.annotations import load_dataset

    anns, _ = load_dataset(sample_dir)
    gt = [a.boxes for a in anns[:8]]
    m = M.compute_metrics(gt, gt, image_ids=[a.image_id for a in anns[:8]])
    assert m.thesis.f1 == 1.0 and m.pr.mean_ap == pytest.approx(1.0)
    assert m.found.summary()["cells_all_correct"] == 1.0
    assert m.confusion.correct == sum(len(g) for g in gt)


def test_mismatched_lengths_and_bad_names():
    with pytest.raises(ValueError, match="2 images"):
        M.compute_metrics([[], []], [[]])
    with pytest.raises(ValueError, match="canonical"):
        M.compute_metrics([[Box(0, 0, 1, 1, "chr1")]], [[]])


def test_to_dict_is_json():
    import json

    dets = dets_of(TRUTH)
    m = only(TRUTH, dets[:3] + [box(500, 0, "Y", score=0.6)])
    d = json.loads(json.dumps(m.to_dict()))
    assert d["thesis"]["overall"]["tp"] == 3
    assert len(d["confusion"]["matrix"]) == 25 and len(d["confusion"]["matrix"][0]) == 25
    assert d["confusion"]["rows"][-1] == M.SPURIOUS and d["confusion"]["cols"][-1] == M.MISSED
    assert d["found_per_image"]["images"][0]["detected"] == 4


_coords = st.integers(0, 60)


@st.composite
def _image(draw):
    def boxes(n, scored):
        out = []
        for _ in range(n):
            x, y = draw(_coords), draw(_coords)
            w, h = draw(st.integers(4, 30)), draw(st.integers(4, 30))
            name = draw(st.sampled_from(["1", "2", "3"]))
            score = draw(st.sampled_from([0.1, 0.3, 0.5, 0.7, 0.9])) if scored else None
            out.append(Box(x, y, x + w, y + h, name, score=score))
        return out

    return boxes(draw(st.integers(0, 6)), False), boxes(draw(st.integers(0, 8)), True)


@settings(max_examples=60, deadline=None)
@given(st.lists(_image(), min_size=1, max_size=3), st.sampled_from([0.0, 0.3, 0.5, 0.8]))
def test_one_matching_equals_matching_at_the_threshold(images, thr):
    """Counting from the all-scores matching gives what matching only the kept detections gives."""
    truth = [t for t, _ in images]
    dets = [d for _, d in images]
    m = M.compute_metrics(truth, dets, score_threshold=thr)
    tp = fp = fn = 0
    for t, d in images:
        kept = [b for b in d if b.score >= thr]
        r = M.match_detections(t, kept, min_score=thr)
        tp, fp, fn = tp + len(r.tp), fp + len(r.fp), fn + len(r.fn)
        assert set(r.fn) | {ti for _, ti in r.tp} == set(range(len(t)))
    o = m.thesis.overall
    assert (o.tp, o.fp, o.fn) == (tp, fp, fn)
    assert m.confusion.matrix[:-1, :].sum() == sum(len(t) for t in truth)  # every truth box in exactly one cell
    assert m.confusion.matrix[:, :-1].sum() == sum(1 for d in dets for b in d if b.score >= thr)
