"""Catch the aneuploidy (issue 23): the karyotype prior's presets, which candidate boxes count, and flags in two
levels (review / note), on planted candidate tables: each candidate box has classifier probabilities and a
P(whole single chromosome) (``real``), as the second look or the score calibration gives them."""
from __future__ import annotations

import math

import numpy as np
import pytest

from karyotf import classes
from karyotf.annotations import Box
from karyotf.classify import joint as J
from karyotf.classify.joint import KaryotypePrior, joint_labels
from karyotf.find import Finder
from karyotf.karyogram.call import FLAG_CODES, FLAG_LEVELS, NOTE, REVIEW, count_call, level_of

IDX = {n: i for i, n in enumerate(classes.NAMES)}
AUTO2 = [c for c in classes.AUTOSOMES for _ in range(2)]
SURE = 0.9995  # a clear whole chromosome, as the second look says it


def cell(*extra: str, sex: str = "XX") -> list[str]:
    return AUTO2 + list(sex) + list(extra)


def table(truth, conf: float = 0.95) -> np.ndarray:
    p = np.full((len(truth), classes.NUM_CLASSES), (1 - conf) / (classes.NUM_CLASSES - 1))
    p[np.arange(len(truth)), [IDX[t] for t in truth]] = conf
    return p


def row(**probs: float) -> np.ndarray:
    r = np.zeros(classes.NUM_CLASSES)
    for k, v in probs.items():
        r[IDX[k.lstrip("c")]] = v
    r[r == 0] = (1 - r.sum()) / np.count_nonzero(r == 0)
    return r


def call_flags(res):
    """Every flag of the cell as the karyogram gives them: the count call's of the counted boxes plus the joint
    labelling's."""
    counted = [n for i, n in enumerate(res.labels) if i not in set(res.left_out)]
    call = count_call([Box(10.0 * i, 0.0, 10.0 * i + 8.0, 30.0, n) for i, n in enumerate(counted)])
    call.add_flags(res.flags())
    return call


# ------------------------------------------------------------------------------------------- presets
def test_presets_are_selectable_by_name_and_default_is_prenatal():
    assert J.DEFAULT_PRIOR.name == "prenatal" == J.DEFAULT_PRESET
    for name in ("prenatal", "postnatal", "oncology"):
        p = KaryotypePrior.preset(name)
        assert p.name == name and np.allclose(np.exp(p.autosome_log).sum(axis=1), 1)
        assert joint_labels(table(cell()), prior=name).prior_name == name
    with pytest.raises(ValueError, match="unknown prior 'neonatal'.*prenatal, postnatal, oncology"):
        KaryotypePrior.preset("neonatal")
    onc, pre = KaryotypePrior.preset("oncology"), KaryotypePrior.preset("prenatal")
    assert onc.gain_ratio("8") > pre.gain_ratio("8") and onc.gain_ratio("21") > pre.gain_ratio("21")
    assert pre.gain_ratio("21") == pytest.approx(J.TRISOMY_21) and pre.gain_ratio("18") == pytest.approx(J.TRISOMY_18)
    with pytest.raises(ValueError, match="gain \\* loss <= 1"):
        KaryotypePrior.from_rates(gain={"8": 20.0}, loss_floor=0.1)


# the module documentation's table: P(chromosome) needed to count one copy past normal, classifier p = 0.9
DOC_TABLE = {"prenatal": {"21": 0.982, "18": 0.991, "13": 0.996, "7": 0.998, "XXY": 0.985, "XXX": 0.991, "XYY": 0.994},
             "postnatal": {"21": 0.991, "18": 0.998, "13": 0.999, "7": 0.999, "XXY": 0.992, "XXX": 0.996,
                           "XYY": 0.996},
             "oncology": {"21": 0.917, "18": 0.933, "13": 0.957, "7": 0.957, "XXY": 0.963, "XXX": 0.963,
                          "XYY": 0.981}}


@pytest.mark.parametrize("name", sorted(DOC_TABLE))
def test_count_thresholds_are_the_documented_table(name):
    prior = KaryotypePrior.preset(name)
    for change, want in DOC_TABLE[name].items():
        assert prior.count_threshold(change) == pytest.approx(want, abs=5e-4), change
    doc = J.__doc__
    assert f"{name:9s}  r > {DOC_TABLE[name]['21']:.3f} / {DOC_TABLE[name]['18']:.3f}" in doc


@pytest.mark.parametrize("name", sorted(DOC_TABLE))
def test_a_clear_third_copy_is_counted_under_every_preset(name):
    """Clear = the second look's P(whole chromosome) 0.9995 and the classifier 0.9 on the class: above every
    threshold of the table, so each preset counts it."""
    for extra in ("21", "18", "13", "7"):
        truth = cell(extra, sex="XY")
        p = table(truth)
        p[-1] = row(**{f"c{extra}": 0.9})
        res = joint_labels(p, prior=name, real=[SURE] * len(truth))
        assert res.left_out == [] and res.iscn == f"47,XY,+{extra}", (name, extra)


# ------------------------------------------------------------------------------------------- planted tables
def test_clear_third_18_counted():
    truth = cell("18")
    p = table(truth)
    p[-1] = row(c18=0.9, c17=0.05)
    res = joint_labels(p, real=[SURE] * 46 + [0.995])
    assert res.left_out == [] and res.iscn == "47,XX,+18" and res.counts["18"] == 3
    call = call_flags(res)
    assert call.iscn == "47,XX,+18"
    extra = next(f for f in call.review_flags if f.code == "extra_copy")     # an abnormal call is reviewed
    assert extra.classes == ("18",)
    # the same box with only the detector's calibrated score behind it (P 0.9) is left out, but not silently
    weak = joint_labels(p, real=[SURE] * 46 + [0.9])
    assert weak.left_out == [46] and weak.iscn == "46,XX"
    flag = next(f for f in weak.flags() if f.code == "left_out")
    assert flag.level == REVIEW and flag.classes == ("18",) and "a third 18 left out" in flag.message


def test_fragment_of_a_1_left_out():
    truth = cell(sex="XY")
    frag = row(c4=0.35, c5=0.3, c6=0.1)                         # a piece of a 1 looks like a B/C chromosome
    res = joint_labels(np.vstack([table(truth), frag]), real=[SURE] * 46 + [0.03])
    assert res.left_out == [46] and res.iscn == "46,XY" and res.is_normal
    assert not call_flags(res).review_flags                     # nothing for a person: the fragment is listed
    # its parent 1 also found only as the fragment's neighbour: still two 1s counted
    assert res.counts["1"] == 2


def test_duplicate_box_of_a_21_left_out():
    truth = cell(sex="XX")
    dup = row(c21=0.93)                                          # a second box on a 21, as sure a 21 as the first
    res = joint_labels(np.vstack([table(truth), dup]), real=[SURE] * 46 + [0.05])
    assert res.left_out == [46] and res.iscn == "46,XX" and res.labels[46] == "21"
    assert not call_flags(res).review_flags
    # at P 0.5 counting it beside its twin (+21) is e^4 times less likely: listed, no review
    half = joint_labels(np.vstack([table(truth), dup]), real=[SURE] * 46 + [0.5])
    assert half.left_out == [46] and half.iscn == "46,XX" and not call_flags(half).review_flags
    # a "duplicate" the second look takes for a chromosome at 0.8 is a possible third 21: reviewed
    doubt = joint_labels(np.vstack([table(truth), dup]), real=[SURE] * 46 + [0.8])
    assert doubt.left_out == [46] and doubt.iscn == "46,XX"
    f = next(f for f in doubt.flags() if f.code == "left_out")
    assert f.classes == ("21",) and "P(chromosome) 0.80" in f.message


def test_duplicate_that_only_stands_in_for_another_box_is_a_note():
    """Two boxes on one 7, both half-sure: counting either gives the same call: a note, not a review."""
    truth = cell(sex="XY")
    p = np.vstack([table(truth), row(c7=0.95)])
    real = [SURE] * 46 + [0.6]
    real[12] = 0.6                                               # the counted 7's own box is no surer
    res = joint_labels(p, real=real)
    assert res.iscn == "46,XY" and len(res.left_out) == 1
    codes = {f.code: f for f in res.flags()}
    assert "left_out" not in codes and codes["left_out_swap"].level == NOTE
    assert not call_flags(res).review_flags


def test_weak_third_21_left_out_with_a_review_flag_naming_21():
    truth = cell("21")
    p = table(truth, conf=0.99)
    res = joint_labels(p, real=[SURE] * 46 + [0.8])
    assert res.left_out == [46] and res.iscn == "46,XX" and res.doubted_call == (46,)
    call = call_flags(res)
    flag = next(f for f in call.review_flags if f.code == "left_out")
    assert flag.classes == ("21",) and flag.review
    assert "a third 21 left out (#46, P(chromosome) 0.80): counting it gives 47,XX,+21" in flag.message
    assert call.flags[0].review                                  # the review level leads
    d = flag.to_dict()
    assert d["level"] == "review" and d["classes"] == ["21"] and d["indices"] == [46]
    # a weak stray that would be a third 7 is only listed: a person is not asked about it
    stray = joint_labels(np.vstack([table(cell()), row(c7=0.9)]), real=[SURE] * 46 + [0.8])
    assert stray.left_out == [46] and not call_flags(stray).review_flags


def test_uncertain_sex_complement_is_a_review_flag():
    truth = cell(sex="XX")
    p = table(truth)
    p[-1] = row(cX=0.5, cY=0.45)                                 # the second X: or is it a Y?
    res = joint_labels(p)
    assert res.iscn == "46,XX"
    flag = next(f for f in res.flags() if f.code == "close_alternative")
    assert flag.review and set(flag.classes) == {"X", "Y"} and flag.message.startswith("uncertain sex complement")


def test_45x_with_a_duplicate_x_box_is_called_45x_when_the_second_look_says_duplicate():
    """A 45,X cell whose X got a second box (as sure an X to the classifier): the second look says duplicate
    (P(whole chromosome) 0.002): after the count shift it is still left out, and the call is 45,X, not 46,XX.
    (A duplicate the second look is less sure of, P 0.05, completes the pair: the count shift chosen on val trusts
    a missed chromosome more than a lost one, see joint's "The second look's P and the count shift".)"""
    truth = AUTO2 + ["X"]
    p = np.vstack([table(truth), row(cX=0.93)])
    look = np.array([SURE] * 45 + [0.002])                       # the second look's P(whole chromosome)
    res = joint_labels(p, real=J.count_evidence(look))
    assert res.left_out == [45] and res.iscn == "45,X" and res.labels[45] == "X"
    # 46,XX is not far behind (a second X is 16 times likelier than none): a person is asked, the X named
    if res.doubted_call:
        f = next(f for f in res.flags() if f.code == "left_out")
        assert f.review and f.classes == ("X",) and "a second X left out" in f.message
    # the same box the second look takes for a whole chromosome (0.9): a second X, 46,XX
    sure = joint_labels(p, real=J.count_evidence(np.array([SURE] * 45 + [0.9])))
    assert sure.left_out == [] and sure.iscn == "46,XX"


def test_count_evidence_shifts_the_logit_and_keeps_the_order():
    p = np.array([1e-6, 0.01, 0.3, 0.5, 0.9, 0.9995, 1.0])
    assert np.allclose(J.count_evidence(p, 0.0), np.clip(p, J.REAL_CLIP, 1 - J.REAL_CLIP))
    q = J.count_evidence(p, 1.5)
    assert np.all(np.diff(q) >= 0) and np.all((q > J.REAL_CLIP / 2) & (q < 1))
    assert q[3] == pytest.approx(1 / (1 + math.exp(-1.5)))
    assert np.allclose(J.count_evidence(p), J.count_evidence(p, J.COUNT_LOGIT_SHIFT))


def test_uncertain_sex_flag_fires_on_an_ambiguous_cell_and_not_on_a_clear_one():
    truth = cell(sex="XX")
    p = table(truth)
    p[-1] = row(cX=0.5, cY=0.45)                                 # the second X: or is it a Y?
    res = joint_labels(p, sex_log_lr=3.5)
    assert res.iscn == "46,XX" and res.sex == "XX" and res.sex_alt == "XY"
    assert 0 <= res.sex_log_lr < 1.0 and 0.2 < res.sex_alt_prob < 0.5
    flag = next(f for f in res.flags() if f.code == "sex_uncertain")
    assert flag.review and flag.classes == ("X", "Y") and flag.indices == (45,)
    assert flag.message.startswith("sex complement uncertain: XX called, XY at P 0.")
    assert "#45 could be Y, p(Y) 0.45" in flag.message
    assert "sex_uncertain" in call_flags(res).review_codes
    assert res.to_dict()["sex_alternative"] == "XY"
    for sex in ("XX", "XY"):                                     # clear X and Y: no flag
        clear = joint_labels(table(cell(sex=sex)), sex_log_lr=3.5)
        assert clear.sex == sex and clear.sex_log_lr > 5.0
        assert "sex_uncertain" not in {f.code for f in clear.flags()}
    # the threshold is the caller's: 0 turns the flag off
    assert "sex_uncertain" not in {f.code for f in joint_labels(p, sex_log_lr=0.0).flags()}
    # a weak Y-looking box in a clear XX cell is named when the flag fires at a wider threshold
    q = table(cell(sex="XX"))
    q[10] = row(c6=0.6, cY=0.35)
    wide = joint_labels(q, sex_log_lr=20.0)
    f = next(f for f in wide.flags() if f.code == "sex_uncertain")
    assert "could be Y" in f.message


# ------------------------------------------------------------------------------------------- levels
def test_every_flag_code_has_a_level_and_notes_are_the_chatty_ones():
    from karyotf.classify.joint import JOINT_FLAG_CODES

    for code in list(FLAG_CODES) + list(JOINT_FLAG_CODES) + ["unclassifiable"]:
        assert code in FLAG_LEVELS, code
    for code in ("low_confidence", "low_mean_confidence", "overlapping_boxes", "suppressed_other_class",
                 "label_changed", "low_top1", "left_out_swap"):
        assert level_of(code) == NOTE
    for code in ("left_out", "close_call", "close_alternative", "extra_copy", "missing_copy", "sex_atypical",
                 "total_not_46", "no_call", "sex_uncertain"):
        assert level_of(code) == REVIEW
    assert level_of("some_new_code") == REVIEW            # an unknown doubt is not dismissed


def _simulated_cell(rng, truth, junk: int):
    """Classifier probabilities with Denver-group confusion (as a ~0.9 top-1 classifier makes) and the second
    look's P: real chromosomes 0.995-0.9999, junk boxes (fragments, duplicates) 0.001-0.3."""
    groups = {n: [m for m in classes.NAMES if classes.GROUP_OF[m] == classes.GROUP_OF[n] and m != n]
              for n in classes.NAMES}
    rows, real = [], []
    for t in truth:
        r = np.full(classes.NUM_CLASSES, 1e-3)
        conf = rng.uniform(0.7, 0.99)
        r[IDX[t]] = conf
        others = groups[t] or [m for m in classes.NAMES if m != t]
        r[IDX[others[rng.integers(len(others))]]] += (1 - conf) * 0.8
        rows.append(r / r.sum())
        real.append(rng.uniform(0.995, 0.9999))
    for _ in range(junk):
        r = rng.dirichlet(np.ones(classes.NUM_CLASSES) * 0.5)
        rows.append(r)
        real.append(rng.uniform(0.001, 0.3))
    order = rng.permutation(len(rows))
    return np.array(rows)[order], np.array(real)[order]


def test_flag_rates_on_planted_cells():
    """Normal and aneuploid cells with junk boxes: the calls are mostly right, review flags fire on few right
    normal calls and on every wrong call, and a flag firing on most right calls is a note."""
    rng = np.random.default_rng(23)
    kinds = [((), "XX"), ((), "XY")] * 10 + [(("21",), "XY"), (("18",), "XX"), (("13",), "XY"), ((), "XXY"),
                                              ((), "X")] * 4
    fired_right, right, wrong_unflagged, reviewed_normal, normal_right = {}, 0, [], 0, 0
    for extra, sex in kinds:
        truth = cell(*extra, sex=sex)
        want = count_call([Box(10.0 * i, 0.0, 10.0 * i + 8.0, 30.0, n) for i, n in enumerate(truth)])
        probs, real = _simulated_cell(rng, truth, junk=int(rng.integers(0, 4)))
        call = call_flags(joint_labels(probs, real=real))
        ok = call.iscn == want.iscn
        right += ok
        if ok:
            for code in set(call.flag_codes):
                fired_right[code] = fired_right.get(code, 0) + 1
            if want.is_normal:
                normal_right += 1
                reviewed_normal += bool(call.review_flags)
        elif not call.review_flags:
            wrong_unflagged.append((want.iscn, call.iscn))
    assert right >= 0.85 * len(kinds)
    assert wrong_unflagged == []
    assert reviewed_normal <= 0.25 * normal_right
    for code, n in fired_right.items():                      # chatty flags are notes by construction
        if n > 0.5 * right:
            assert level_of(code) == NOTE, (code, n, right)


# ------------------------------------------------------------------------------------------- the Karyotyper
class _Detector(Finder):
    """The truth boxes of one cell plus planted ones, at planted scores; its export carries a calibration (P =
    score)."""

    def __init__(self, boxes):
        self.boxes, self.export_dir, self.model_name = boxes, "planted", "planted"
        self.agnostic = True
        self.info = {"chromosome_probability": {"scores": [0.0, 1.0], "p": [0.0, 1.0], "floor": 0.1}}

    def detect(self, image, min_score=0.0):
        return [b for b in self.boxes if b.score >= min_score]


class _Classifier:
    """Reads the class a planted crop carries in its first pixel: 0.95 on it."""

    size, path = 16, "planted"

    def probabilities_of(self, crops, features):
        p = np.full((len(crops), 24), 0.05 / 23)
        p[np.arange(len(crops)), crops[:, 0, 0].astype(int)] = 0.95
        return p


class _SecondLook:
    """P(whole chromosome) planted by box position: ``sure`` maps (xmin, ymin) to P, every other box 0.9995."""

    path, min_score, nms_iou = "planted", 0.1, 0.5

    def __init__(self, sure):
        self.sure = sure

    def p_whole(self, image, boxes):
        return np.array([self.sure.get((b.xmin, b.ymin), 0.9995) for b in boxes])


def _planted_crops(image, boxes, size=16, reference=None, cutouts=None):
    from karyotf.classify.crops import CellCrops

    crops = np.zeros((len(boxes), size, size), np.uint8)
    crops[:, 0, 0] = [classes.NAMES.index(b.name) for b in boxes]
    return CellCrops(crops, np.full((len(boxes), 5), 0.5, np.float32), [])


def test_karyotyper_counts_what_the_second_look_is_sure_of(sample_dir, monkeypatch, tmp_path):
    """A third 18 the detector scores 0.6 (the calibration leaves it out) is counted on the second look's 0.9995;
    a second box on a 21 the detector scores 0.995 (the calibration counts it: +21) is left out on its 0.01."""
    from karyotf.annotations import read_voc
    from karyotf.classify import crops as crops_mod
    from karyotf.classify.karyotyper import Karyotyper
    from karyotf.karyogram import from_detector

    monkeypatch.setattr(crops_mod, "cell_crops", _planted_crops)
    ann = read_voc(sample_dir / "annotations" / "1054642.xml")
    found = [b.with_coords(*b.as_tuple(), score=0.99) for b in ann.boxes]
    third18 = Box(3.0, 3.0, 30.0, 50.0, "18", score=0.6)
    a21 = next(b for b in ann.boxes if b.name == "21")
    dup21 = Box(a21.xmin + 0.4 * a21.width, a21.ymin, a21.xmax + 0.4 * a21.width, a21.ymax, "21", score=0.995)
    assert a21.iou(dup21) < 0.5
    det = _Detector(found + [third18, dup21])
    by_score = Karyotyper(det, _Classifier())
    cell = by_score.find(ann.image_path)
    assert count_call(cell.boxes).iscn == f"47,{ann_sex(ann)},+21"      # the score counts the duplicate
    look = _SecondLook({(dup21.xmin, dup21.ymin): 0.01})
    k = Karyotyper(det, _Classifier(), second_look=look, prior="prenatal")
    assert k.min_score == 0.1 and k.candidate_nms_iou == 0.5 and k.chooses
    cell = k.find(ann.image_path)
    assert count_call(cell.boxes).iscn == f"47,{ann_sex(ann)},+18"
    # listed with the P the labelling weighed it by: the second look's 0.01 through the count shift (issue 23)
    assert [(b.name, p) for b, p in cell.left_out] == [("21", pytest.approx(float(J.count_evidence(0.01))))]
    assert not [f for f in cell.flags if f.code == "left_out"]
    # the same third 18 the second look doubts (0.9, weighed as it is: count_shift 0): left out, and a person is
    # asked about a third 18
    k = Karyotyper(det, _Classifier(), second_look=_SecondLook({(dup21.xmin, dup21.ymin): 0.01,
                                                                (third18.xmin, third18.ymin): 0.9}), count_shift=0.0)
    cell = k.find(ann.image_path)
    assert count_call(cell.boxes).iscn == f"46,{ann_sex(ann)}"
    flag = next(f for f in cell.flags if f.code == "left_out")
    assert flag.review and flag.classes == ("18",) and "a third 18 left out (box at 3,3, score 0.60" in flag.message
    res = from_detector(k, ann.image_path, tmp_path / "k")
    rep = (tmp_path / "k" / "report.html").read_text()
    assert rep.index("Review: the call may be wrong") < rep.index("a third 18 left out")
    assert res.call.review_flags[0].code in ("left_out", "extra_copy", "total_not_46") and res.call.flags[0].review
    assert k.describe()["prior"] == "prenatal"


def ann_sex(ann) -> str:
    return "".join(sorted(b.name for b in ann.boxes if b.name in ("X", "Y")))


# ------------------------------------------------------------------------------------------- the --tune rules
def _bench():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import aneuploidy

    return aneuploidy


def test_tune_rules_choose_within_the_target_and_flag_net_of_right_calls():
    a = _bench()
    pts = [{"shift": 0.0, "abnormal_right": 0.10, "normal_called_abnormal": 0.09, "normal_right": 0.77},
           {"shift": 1.0, "abnormal_right": 0.02, "normal_called_abnormal": 0.03, "normal_right": 0.79},
           {"shift": 2.0, "abnormal_right": 0.02, "normal_called_abnormal": 0.02, "normal_right": 0.80}]
    assert a.choose_shift(pts)["shift"] == 2.0                  # within 3%: equal abnormal right, more normal right
    assert a.choose_shift(pts, limit=0.01)["shift"] == 2.0       # none within: the fewest normal called abnormal
    assert a.choose_shift(pts, limit=0.1)["shift"] == 0.0
    cells = [{"right": False, "normal": True, "review": ["close_alternative"], "all_flags": [], "sex_log_lr": 1.0},
             {"right": False, "normal": True, "review": [], "all_flags": [], "sex_log_lr": 2.5},
             {"right": True, "normal": True, "review": [], "all_flags": [], "sex_log_lr": 2.0},
             {"right": True, "normal": True, "review": [], "all_flags": [], "sex_log_lr": 5.0},
             {"right": True, "normal": True, "review": [], "all_flags": [], "sex_log_lr": 5.5},
             {"right": True, "normal": False, "review": [], "all_flags": [], "sex_log_lr": None}]
    sweep = a.sex_sweep(cells, grid=(0.0, 1.5, 3.0, 6.0))
    assert [(q["wrong_flagged"], q["right_flagged"]) for q in sweep] == [(0, 0), (1, 0), (2, 1), (2, 3)]
    assert [(q["wrong_new"], q["right_new"]) for q in sweep] == [(0, 0), (0, 0), (1, 1), (1, 3)]
    assert a.choose_sex(sweep, cost=3.0)["threshold"] == 3.0     # 3 x 1 - 1 = 2 (6.0: 3 - 3 = 0)
    assert a.choose_sex(sweep, cost=1.0)["threshold"] == 0.0     # nothing gained net: the smallest
    assert sweep[2]["wrong_without_review"] == 0.0 and sweep[1]["wrong_without_review"] == pytest.approx(1 / 6)
    flagged = a.with_sex_flag(cells, 3.0)
    assert flagged[1]["review"] == ["sex_uncertain"] and flagged[3]["review"] == [] and cells[1]["review"] == []
    # the flag names X and Y, as the pipeline's does (the "naming the chromosome in question" column reads it)
    named = a.with_sex_flag([{**cells[1], "review_classes": ["21"]}], 3.0)[0]
    assert named["review_classes"] == ["21", "X", "Y"]


def test_default_model_rows_count_every_review_code_of_the_call():
    """The shipped pair's rows (bench/default_model.py) count a cell as reviewed by the call's review codes, the
    uncertain-sex flag and the count call's own included (once they were read from a narrower list and missed
    ``sex_uncertain``); an earlier row's per-cell flags are levelled anew from their codes."""
    _bench()
    import default_model as D

    cells = [{"call": "46,XX", "annotation": "46,XX", "normal": True, "right": True, "review": ["sex_uncertain"],
              "all_flags": ["sex_uncertain", "low_top1"], "flagged": True, "flags": [], "counted": 46, "truth": 46},
             {"call": "46,XY", "annotation": "46,XX", "normal": True, "right": False, "review": ["sex_uncertain"],
              "all_flags": ["sex_uncertain", "label_changed"], "flagged": True, "flags": [], "counted": 46, "truth": 46},
             {"call": "46,XX", "annotation": "47,XX,+21", "normal": False, "right": False, "review": [],
              "all_flags": ["low_confidence", "left_out_swap"], "flagged": False, "flags": [], "counted": 46, "truth": 46},
             {"call": "47,XX,+18", "annotation": "46,XX", "normal": True, "right": False,
              "review": ["extra_copy"], "all_flags": ["extra_copy"], "flagged": False, "flags": [], "counted": 46, "truth": 46}]
    for c in cells:
        c["called_normal"] = c["call"] in ("46,XX", "46,XY")
    r = D.call_rows(cells)
    assert r["normal_review_flagged"] == pytest.approx(1.0) and r["abnormal_review_flagged"] == 0.0
    assert r["wrong_without_review"] == pytest.approx(1 / 4) and r["wrong_calls"] == 3
    assert r["normal_called_abnormal"] == pytest.approx(1 / 3)
    stale = {"split": "val", "f1": 0.5, "per_cell": [{**c, "review": []} for c in cells]}
    again = D.resummarise(stale)
    assert [c["review"] for c in again["per_cell"]] == [["sex_uncertain"], ["sex_uncertain"], [], ["extra_copy"]]
    assert again["wrong_without_review"] == pytest.approx(1 / 4) and again["f1"] == 0.5


def _cell_call(counts: dict[str, int]):
    boxes = [Box(10.0 * i, 0.0, 10.0 * i + 8.0, 30.0, n) for i, n in enumerate(
        n for n in classes.NAMES for _ in range(counts.get(n, 2 if n in classes.AUTOSOMES else 0)))]
    return count_call(boxes)


def test_rows_say_whether_a_review_flag_names_the_chromosome_in_question():
    """The rows' column "abnormal right or a review flag naming the chromosome in question" (issue 23's target): a
    trisomy 21 called 46,XX counts only when a review flag names 21; a flag naming another chromosome, or a note
    naming 21, does not; a right call counts without any flag."""
    _bench()
    import quality as Q

    from karyotf.karyogram.call import Flag

    want21 = _cell_call({"X": 2, "21": 3})
    cases = []
    for flags in ([Flag("left_out", "a third 21 left out", ("21",))], [Flag("left_out", "a third 18", ("18",))],
                  [Flag("label_changed", "21 -> 22", ("21", "22"))], []):
        got = _cell_call({"X": 2})
        got.add_flags(flags)
        cases.append(Q.cell_row("c", got, want21, got.review_codes, 46, 47))
    right = _cell_call({"X": 2, "21": 3})
    cases.append(Q.cell_row("r", right, want21, [], 47, 47))
    assert [c["in_question"] for c in cases] == [["21"]] * 4 + [[]]
    assert [Q.named(c) for c in cases] == [True, False, False, False, False]
    s = Q.call_summary(cases)
    assert s["abnormal_right_or_named"] == pytest.approx(2 / 5)   # the named one and the right one
    assert s["abnormal_right_or_review"] == pytest.approx(3 / 5)  # any review flag, 18's included
    assert s["wrong_named"] == pytest.approx(1 / 4)
