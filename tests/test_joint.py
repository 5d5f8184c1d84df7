"""Karyotype-aware joint labelling (issue 16, point 3) on planted probability tables."""
from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest

from karyotf import classes
from karyotf.classify import joint as J
from karyotf.classify.joint import DEFAULT_PRIOR, SEX_LOG_LR, JointFlag, KaryotypePrior, joint_labels
from karyotf.karyogram.call import Flag

IDX = {n: i for i, n in enumerate(classes.NAMES)}
AUTO2 = [c for c in classes.AUTOSOMES for _ in range(2)]


def cell(*extra: str, drop: tuple[str, ...] = (), sex: str = "XY") -> list[str]:
    """Truth labels: two of each autosome plus ``sex``, with ``extra`` copies added and ``drop`` copies removed."""
    out = AUTO2 + list(sex) + list(extra)
    for d in drop:
        out.remove(d)
    return out


def table(truth: list[str], conf: float = 0.9) -> np.ndarray:
    """``conf`` on the true class, the rest spread evenly over the other 23."""
    p = np.full((len(truth), classes.NUM_CLASSES), (1 - conf) / (classes.NUM_CLASSES - 1))
    p[np.arange(len(truth)), [IDX[t] for t in truth]] = conf
    return p


def row(**probs: float) -> np.ndarray:
    """A planted row: the given classes' probabilities, the remainder spread over the others."""
    r = np.zeros(classes.NUM_CLASSES)
    for k, v in probs.items():
        r[IDX[k.lstrip("c")]] = v
    rest = 1 - r.sum()
    free = r == 0
    r[free] = rest / free.sum()
    return r


def codes(res) -> list[str]:
    return [f.code for f in res.flags()]


# ------------------------------------------------------------------------------------------- planted cells
@pytest.mark.parametrize("sex", ["XY", "XX"])
def test_normal_cell_stays_normal_without_changes(sex):
    truth = cell(sex=sex)
    res = joint_labels(table(truth))
    assert res.labels == truth == res.top1
    assert res.changed == [] and res.iscn == f"46,{sex}" and res.is_normal
    assert res.best_normal == pytest.approx(res.log_likelihood)
    assert res.best_abnormal < res.best_normal and res.log_lr > J.CLOSE_LOG_LR and not res.close_call
    assert res.flags() == []


def test_third_21_with_strong_evidence_stays_a_21():
    truth = cell("21")
    res = joint_labels(table(truth))
    assert res.labels == truth and res.changed == []
    assert res.iscn == "47,XY,+21" and res.counts["21"] == 3 and res.counts["22"] == 2
    assert res.best_normal is None and res.log_lr is None and not res.close_call
    assert res.best_abnormal == pytest.approx(res.log_likelihood)


def test_third_21_stays_even_when_the_classifier_hesitates_towards_22():
    truth = cell("21")
    p = table(truth)
    third = len(truth) - 1
    p[third] = row(c21=0.6, c22=0.35)
    res = joint_labels(p)
    assert res.labels[third] == "21" and res.iscn == "47,XY,+21" and res.changed == []


def test_trisomy_21_at_46_with_a_lost_22_is_kept_when_the_evidence_is_overwhelming():
    truth = cell("21", drop=("22",))          # 46,XY,+21,-22: a 22 lost in the spread
    p = table(truth, conf=0.999999)
    res = joint_labels(p)
    assert res.iscn == "46,XY,+21,-22" and not res.is_normal and res.changed == []
    assert res.best_normal is not None and res.best_normal < res.log_likelihood


@pytest.mark.parametrize("sex,iscn", [("X", "45,X"), ("XXY", "47,XXY"), ("XXX", "47,XXX"), ("XYY", "47,XYY")])
def test_sex_chromosome_aneuploidies_stay(sex, iscn):
    truth = cell(sex=sex)
    res = joint_labels(table(truth))
    assert res.labels == truth and res.changed == [] and res.iscn == iscn


def test_a_single_lost_autosome_is_not_filled_in():
    truth = cell(drop=("15",))
    res = joint_labels(table(truth))
    assert res.iscn == "45,XY,-15" and res.changed == []


def test_confusable_21_22_pair_is_relabelled_two_and_two_with_a_flag():
    truth = cell()
    p = table(truth)
    i21 = [i for i, t in enumerate(truth) if t == "21"]
    i22 = [i for i, t in enumerate(truth) if t == "22"]
    hesitant = i22[0]
    for i in i21 + [hesitant]:
        p[i] = row(c21=0.55, c22=0.45)        # three chromosomes look like 21, only one like 22
    res = joint_labels(p)
    assert [res.top1[i] for i in i21 + [hesitant]] == ["21"] * 3
    assert res.counts["21"] == 2 and res.counts["22"] == 2 and res.iscn == "46,XY"
    assert len(res.changed) == 1 and res.changed[0] in i21 + [hesitant]
    moved = res.changed[0]
    assert res.top1[moved] == "21" and res.labels[moved] == "22"
    flags = [f for f in res.flags() if f.code == "label_changed"]
    assert len(flags) == 1 and flags[0].indices == (moved,) and flags[0].classes == ("21", "22")
    assert "top-1 21 (p=0.55)" in flags[0].message and "labelled 22 (p=0.45)" in flags[0].message
    assert not res.close_call                 # +21,-22 costs ~9.7 nats of prior, the evidence ~0.2


def _balanced(q: float):
    """46,XY where one 22 looks like a 21 with odds (1-q)/q: normal needs that chromosome to be a 22."""
    truth = cell()
    p = table(truth, conf=1 - 1e-9)          # the others sure (odds e^13.8 at eps=1e-6): only d may move
    d = [i for i, t in enumerate(truth) if t == "22"][0]
    p[d] = 0.0
    p[d, IDX["21"]], p[d, IDX["22"]] = 1 - q, q
    return p, d


def _prior_gap() -> float:
    """log prior of normal minus log prior of +21,-22 (same sex)."""
    a = DEFAULT_PRIOR.autosome_log
    c21, c22 = classes.AUTOSOMES.index("21"), classes.AUTOSOMES.index("22")
    return float(a[c21, 2] + a[c22, 2] - a[c21, 3] - a[c22, 1])


def test_balanced_evidence_raises_a_close_call():
    gap = _prior_gap()
    q = 1 / (1 + math.exp(gap - 1.0))           # evidence for "21" one nat short of the prior's gap
    p, d = _balanced(q)
    res = joint_labels(p)
    assert res.close_call and res.log_lr == pytest.approx(1.0, abs=1e-6)
    assert res.is_normal and res.labels[d] == "22" and res.changed == [d]
    flag = [f for f in res.flags() if f.code == "close_call"]
    assert len(flag) == 1 and flag[0].classes == ("21", "22") and flag[0].indices == (d,)
    assert "46,XY,+21,-22" in flag[0].message and "46,XY" in flag[0].message
    assert set(codes(res)) == {"label_changed", "close_call"}


def test_balanced_the_other_way_is_still_a_close_call_and_keeps_the_abnormal_call():
    gap = _prior_gap()
    q = 1 / (1 + math.exp(gap + 1.0))
    p, d = _balanced(q)
    res = joint_labels(p)
    assert res.close_call and res.log_lr == pytest.approx(1.0, abs=1e-6)
    assert res.iscn == "46,XY,+21,-22" and res.changed == []
    assert res.best_abnormal == pytest.approx(res.log_likelihood)


def test_clear_evidence_either_way_is_not_a_close_call():
    gap = _prior_gap()
    for shift, call in ((-3.5, "46,XY"), (3.5, "46,XY,+21,-22")):
        p, _ = _balanced(1 / (1 + math.exp(gap + shift)))
        res = joint_labels(p)
        assert not res.close_call and res.log_lr == pytest.approx(3.5, abs=1e-6) and res.iscn == call
        assert ("label_changed" in codes(res)) == (call == "46,XY")


def _g_chromosome_between_21_and_y(shift: float):
    """47,XX plus a G chromosome whose 21-vs-Y odds sit ``shift`` nats above the prior's preference for +21."""
    truth = cell("21", sex="XX")
    p = table(truth, conf=1 - 1e-9)
    d = len(truth) - 1
    a = DEFAULT_PRIOR.autosome_log[classes.AUTOSOMES.index("21")]
    s = DEFAULT_PRIOR.sex_log
    gap = float((s[2, 0] + a[3]) - (s[2, 1] + a[2]))          # log prior(+21) - log prior(XXY), > 0
    odds = shift - gap                                          # log p(21)/p(Y) for d
    p[d] = 0.0
    p[d, IDX["21"]], p[d, IDX["Y"]] = 1 / (1 + math.exp(-odds)), 1 / (1 + math.exp(odds))
    return p, d


def test_close_alternative_at_47_between_plus21_and_xxy():
    p, d = _g_chromosome_between_21_and_y(1.0)
    res = joint_labels(p)
    assert res.iscn == "47,XX,+21" and res.runner_up_log_lr == pytest.approx(1.0, abs=1e-6)
    assert res.best_normal is None and not res.close_call and res.close_alternative
    flag = [f for f in res.flags() if f.code == "close_alternative"]
    assert len(flag) == 1 and flag[0].classes == ("21", "Y") and flag[0].indices == (d,)
    assert "47,XXY" in flag[0].message
    p, d = _g_chromosome_between_21_and_y(-1.0)
    res = joint_labels(p)
    assert res.iscn == "47,XXY" and res.close_alternative and res.changed == [] and res.top1[d] == "Y"
    assert res.runner_up_labels[d] == "21"
    p, _ = _g_chromosome_between_21_and_y(SEX_LOG_LR + 1.0)   # past the close call and the uncertain-sex flag
    res = joint_labels(p)
    assert res.iscn == "47,XX,+21" and not res.close_alternative and res.flags() == []


def test_low_top1_is_flagged():
    truth = cell()
    p = table(truth)
    p[3] = row(c2=0.4, c3=0.35)
    res = joint_labels(p)
    flag = [f for f in res.flags() if f.code == "low_top1"]
    assert len(flag) == 1 and flag[0].indices == (3,) and res.labels[3] == "2"


def test_flags_are_karyogram_flags_with_indices():
    p, d = _balanced(1 / (1 + math.exp(_prior_gap() - 1.0)))
    flags = joint_labels(p).flags()
    assert flags and all(isinstance(f, Flag) and isinstance(f, JointFlag) for f in flags)
    assert all(f.code in J.JOINT_FLAG_CODES for f in flags)
    assert flags[0].to_dict()["indices"] == [d]
    assert joint_labels(p).to_dict()["iscn"] == "46,XY"


# ------------------------------------------------------------------------------------------- edges and input
def test_empty_cell():
    for empty in (np.zeros((0, 24)), [], np.zeros((0,))):
        res = joint_labels(empty)
        assert res.labels == [] and res.changed == [] and res.best_normal is None and not res.close_call
        assert res.flags() == [] and sum(res.counts.values()) == 0


def test_one_chromosome():
    res = joint_labels(table(["7"]))
    assert res.labels == ["7"] and res.counts["7"] == 1 and res.best_normal is None
    assert res.runner_up < res.log_likelihood and not res.close_alternative


@pytest.mark.parametrize("truth", [["7", "7"], ["X", "Y"], ["21"] * 3, ["X"] * 5, ["Y"] * 4, ["1"] * 7])
def test_tiny_and_odd_cells_have_a_proper_runner_up(truth):
    res = joint_labels(table(truth))
    assert len(res.labels) == len(truth)
    assert res.runner_up is not None and res.runner_up <= res.log_likelihood + 1e-9   # ties are real here
    assert J._counts(res.runner_up_labels) != res.counts


def test_120_chromosomes_do_not_crash_and_stay_fast():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(24) * 0.5, size=120)
    t = time.perf_counter()
    res = joint_labels(p)
    assert time.perf_counter() - t < 2.0
    assert len(res.labels) == 120 and sum(res.counts.values()) == 120
    many = table(["1"] * 120, conf=0.99)            # every box the same class: past the prior's table
    res = joint_labels(many)
    assert sum(res.counts.values()) == 120 and "beyond_prior" in codes(res)


@pytest.mark.parametrize("bad,match", [
    (np.ones((46, 23)), r"shape \(N, 24\)"),
    (np.ones((2, 46, 24)), r"shape \(N, 24\)"),
    (np.ones(24), r"shape \(N, 24\)"),
    (np.where(np.eye(3, 24) > 0, np.nan, 0.1), "finite: row 0"),
    (np.where(np.eye(3, 24) > 0, -0.1, 0.1), "non-negative: row 0"),
    (np.vstack([np.ones(24), np.zeros(24)]), "row 1 sums to 0"),
])
def test_invalid_input_raises_a_clear_value_error(bad, match):
    with pytest.raises(ValueError, match=match):
        joint_labels(bad)


def test_rows_are_renormalised():
    truth = cell()
    a = joint_labels(table(truth))
    b = joint_labels(table(truth) * 7.0)
    assert a.labels == b.labels and a.log_likelihood == pytest.approx(b.log_likelihood)


# ------------------------------------------------------------------------------------------- the prior
def test_default_prior_numbers():
    a = DEFAULT_PRIOR.autosome_log
    c = {n: classes.AUTOSOMES.index(n) for n in ("1", "13", "18", "21")}
    assert np.allclose(np.exp(a).sum(axis=1), 1)
    assert math.exp(a[c["21"], 3] - a[c["21"], 2]) == pytest.approx(J.TRISOMY_21)
    assert math.exp(a[c["18"], 3] - a[c["18"], 2]) == pytest.approx(J.TRISOMY_18)
    assert math.exp(a[c["13"], 3] - a[c["13"], 2]) == pytest.approx(J.TRISOMY_13)
    assert math.exp(a[c["1"], 3] - a[c["1"], 2]) == pytest.approx(J.GAIN_FLOOR)
    assert math.exp(a[c["1"], 1] - a[c["1"], 2]) == pytest.approx(J.LOSS_FLOOR)
    s = np.exp(DEFAULT_PRIOR.sex_log)
    assert s.sum() == pytest.approx(1) and s[2, 0] == s[1, 1]
    assert s[1, 0] / s[1, 1] == pytest.approx(J.SEX_X / J.SEX_NORMAL)
    normal = {n: 2 for n in classes.AUTOSOMES} | {"X": 1, "Y": 1}
    plus21 = normal | {"21": 3}
    assert DEFAULT_PRIOR.log_prior(plus21) - DEFAULT_PRIOR.log_prior(normal) == pytest.approx(math.log(J.TRISOMY_21))
    assert DEFAULT_PRIOR.log_prior({"G21": 3} | {k: v for k, v in normal.items() if k != "21"}) == \
        pytest.approx(DEFAULT_PRIOR.log_prior(plus21))


def test_prior_must_be_concave():
    a = np.array(DEFAULT_PRIOR.autosome_log)
    a[0, 0] = -1.0                       # nullisomy of 1 nearly as likely as two copies: gain of copy 1 < copy 2
    with pytest.raises(ValueError, match="not concave"):
        KaryotypePrior(a, DEFAULT_PRIOR.sex_log)
    with pytest.raises(ValueError, match="shape"):
        KaryotypePrior(a[:, :2], DEFAULT_PRIOR.sex_log)


# ------------------------------------------------------------------------------------------- exactness
def _brute_force(p: np.ndarray, prior: KaryotypePrior, eps: float = 1e-6, other_than: dict | None = None) -> float:
    """Best score over all 24^N labellings (or those whose counts differ from ``other_than``), vectorised."""
    n = p.shape[0]
    logp = np.log(np.maximum(p / p.sum(axis=1, keepdims=True), eps))
    lab = np.array(list(itertools.product(range(24), repeat=n)), dtype=np.int16)
    ll = logp[np.arange(n), lab].sum(axis=1)
    counts = (lab[:, :, None] == np.arange(24)).sum(axis=1)
    auto = prior.autosome_log[np.arange(22), counts[:, :22]].sum(axis=1)
    nx, ny = counts[:, 22], counts[:, 23]
    ok = (nx <= prior.max_x) & (ny <= prior.max_y)
    sex = np.full(len(lab), -np.inf)
    sex[ok] = prior.sex_log[nx[ok], ny[ok]]
    score = ll + auto + sex
    if other_than is not None:
        score = score[(counts != np.array([other_than[c] for c in classes.NAMES])).any(axis=1)]
    return float(score.max())


def _random_prior(rng) -> KaryotypePrior:
    """A random concave autosome prior and an arbitrary (non-separable) sex table."""
    gains = -np.sort(-rng.normal(0, 3, size=(22, 5)), axis=1)      # non-increasing gains
    auto = np.concatenate([np.zeros((22, 1)), np.cumsum(gains, axis=1)], axis=1)
    auto -= np.logaddexp.reduce(auto, axis=1, keepdims=True)
    sex = np.log(rng.dirichlet(np.ones(15)).reshape(5, 3))
    return KaryotypePrior(auto, sex)


@pytest.mark.parametrize("seed", range(6))
def test_equals_brute_force_on_small_cells(seed):
    rng = np.random.default_rng(seed)
    n = 2 + seed % 3
    p = rng.dirichlet(np.ones(24) * 0.3, size=n)
    p[:, [IDX["X"], IDX["Y"]]] += 0.2                             # make the sex table matter
    for prior in (DEFAULT_PRIOR, _random_prior(rng)):
        res = joint_labels(p, prior=prior)
        assert res.log_likelihood == pytest.approx(_brute_force(p, prior), abs=1e-9)
        assert res.runner_up == pytest.approx(_brute_force(p, prior, other_than=res.counts), abs=1e-9)
        labels = [IDX[x] for x in res.labels]
        score = sum(math.log(max(p[i, c] / p[i].sum(), 1e-6)) for i, c in enumerate(labels))
        assert res.log_likelihood == pytest.approx(score + prior.log_prior(res.counts), abs=1e-9)


def _noisy_cell(rng, truth, conf=0.6):
    p = table(truth, conf) * 0.5 + rng.dirichlet(np.ones(24) * 0.2, size=len(truth)) * 0.5
    # plant a few confusions inside Denver groups
    for i in rng.choice(len(truth), size=6, replace=False):
        g = classes.DENVER_GROUPS[classes.GROUP_OF[truth[i]]]
        other = rng.choice([c for c in g if c != truth[i]])
        p[i, IDX[other]] += rng.uniform(0.3, 1.0)
    return p / p.sum(axis=1, keepdims=True)


def _score(p, labels, prior=DEFAULT_PRIOR):
    ll = sum(math.log(max(p[i, IDX[c]], 1e-6)) for i, c in enumerate(labels))
    cnt = {n: 0 for n in classes.NAMES}
    for c in labels:
        cnt[c] += 1
    return ll + prior.log_prior(cnt)


@pytest.mark.parametrize("seed", range(4))
def test_no_single_relabel_or_swap_beats_the_46_chromosome_answers(seed):
    rng = np.random.default_rng(100 + seed)
    truth = cell(sex="XX" if seed % 2 else "XY")
    p = _noisy_cell(rng, truth)
    res = joint_labels(p)
    assert res.best_normal is not None and res.best_abnormal is not None
    assert max(res.best_normal, res.best_abnormal) == pytest.approx(res.log_likelihood)
    assert _score(p, res.labels) == pytest.approx(res.log_likelihood)
    assert _score(p, res.normal_labels) == pytest.approx(res.best_normal)
    assert _score(p, res.abnormal_labels) == pytest.approx(res.best_abnormal)
    assert J._is_normal_counts(J._counts(res.normal_labels))
    assert not J._is_normal_counts(J._counts(res.abnormal_labels))
    for i in range(46):                      # no single relabel beats the optimum, nor, when abnormal (an X
        for c in classes.NAMES:              # and a Y swapped stay normal), the best abnormal
            lab = list(res.normal_labels)
            if lab[i] == c:
                continue
            lab[i] = c
            if not J._is_normal_counts(J._counts(lab)):
                assert _score(p, lab) <= res.best_abnormal + 1e-9
            lab = list(res.labels)
            lab[i] = c
            assert _score(p, lab) <= res.log_likelihood + 1e-9
    for i, j in itertools.combinations(range(46), 2):       # swaps keep the counts: the normal answer is optimal
        lab = list(res.normal_labels)
        lab[i], lab[j] = lab[j], lab[i]
        assert _score(p, lab) <= res.best_normal + 1e-9


def test_speed_of_a_46_chromosome_cell():
    rng = np.random.default_rng(7)
    cells = [_noisy_cell(rng, cell(sex="XY")) for _ in range(5)]
    joint_labels(cells[0])
    t = time.perf_counter()
    for p in cells:
        joint_labels(p)
    per_cell = (time.perf_counter() - t) / len(cells)
    print(f"joint_labels: {per_cell * 1e3:.1f} ms per 46-chromosome cell")
    assert per_cell < 0.5


def _simulated_classifier(rng, truth):
    """A ~0.89 top-1 classifier whose mistakes stay inside the Denver group (as real ones mostly do)."""
    rows = []
    for t in truth:
        a = np.full(24, 0.02)
        a[[IDX[c] for c in classes.DENVER_GROUPS[classes.GROUP_OF[t]]]] += 0.5
        a[IDX[t]] += 3.0
        rows.append(rng.dirichlet(a))
    return np.array(rows)


@pytest.mark.parametrize("extra,sex", [((), "XY"), (("21",), "XX"), ((), "XXY")])
def test_joint_labelling_fixes_counts_that_top1_gets_wrong(extra, sex):
    from collections import Counter
    rng = np.random.default_rng(11)
    right_top1 = right_joint = 0
    for _ in range(10):
        truth = cell(*extra, sex=sex)
        res = joint_labels(_simulated_classifier(rng, truth))
        right_top1 += Counter(res.top1) == Counter(truth)
        right_joint += Counter(res.labels) == Counter(truth)
        assert np.mean(np.array(res.labels) == truth) >= np.mean(np.array(res.top1) == truth) - 0.05
    assert right_joint >= 7 and right_joint > right_top1


# ------------------------------------------------------------------------------- which boxes count (real=)
def _brute_force_real(p: np.ndarray, r: np.ndarray, prior: KaryotypePrior, eps: float = 1e-6) -> float:
    """Best score over every labelling in which each box is one of the 24 classes or left out (-1)."""
    n = p.shape[0]
    logp = np.log(np.maximum(p / p.sum(axis=1, keepdims=True), eps))
    r = np.clip(r, J.REAL_CLIP, 1 - J.REAL_CLIP)
    best = -np.inf
    for lab in itertools.product(range(-1, 24), repeat=n):
        lab = np.array(lab)
        on = lab >= 0
        counts = np.bincount(lab[on], minlength=24)
        if counts[22] > prior.max_x or counts[23] > prior.max_y:
            continue
        s = (logp[np.nonzero(on)[0], lab[on]].sum() + np.log(r[on]).sum() + np.log1p(-r[~on]).sum()
             + prior.autosome_log[np.arange(22), counts[:22]].sum() + prior.sex_log[counts[22], counts[23]])
        best = max(best, s)
    return float(best)


@pytest.mark.parametrize("seed", range(4))
def test_real_equals_brute_force_on_small_cells(seed):
    rng = np.random.default_rng(100 + seed)
    n = 1 + seed % 3
    p = rng.dirichlet(np.ones(24) * 0.3, size=n)
    r = rng.uniform(0.05, 0.95, size=n)
    for prior in (DEFAULT_PRIOR, _random_prior(rng)):
        res = joint_labels(p, prior=prior, real=r)
        assert res.log_likelihood == pytest.approx(_brute_force_real(p, r, prior), abs=1e-9)
        assert sum(res.counts.values()) == n - len(res.left_out) == res.n


def test_a_weak_duplicate_is_left_out_and_a_sure_third_21_stays():
    truth = cell(sex="XX")
    dup = table(["7"])                          # a second box on a chromosome 7, the detector unsure of it
    res = joint_labels(np.vstack([table(truth), dup]), real=[0.99] * 46 + [0.6])
    assert res.left_out == [46] and res.iscn == "46,XX" and res.is_normal and res.n == 46
    assert res.labels[46] == "7" and res.counts["7"] == 2       # named by top-1, not counted
    # a third 7 costs log 2e-3: counting the box is e^5.8 times less likely, far past the close-call ratio
    assert res.left_out_log_lr[0] > J.CLOSE_LOG_LR and "left_out" not in codes(res)
    sure = joint_labels(table(cell("21", sex="XX"), conf=0.99), real=[0.999] * 47)
    assert sure.left_out == [] and sure.iscn == "47,XX,+21"
    doubt = joint_labels(table(cell("21", sex="XX"), conf=0.99), real=[0.999] * 46 + [0.8])
    # a third 21 on a box the detector doubts: left out, but +21 is within the close-call ratio: flagged
    assert doubt.left_out == [46] and doubt.iscn == "46,XX" and doubt.doubted == (46,)
    assert 0 < doubt.left_out_log_lr[0] < J.CLOSE_LOG_LR and "left_out" in codes(doubt)


def test_a_weak_box_that_completes_a_pair_is_counted():
    truth = cell(sex="XY")
    res = joint_labels(table(truth), real=[0.99] * 45 + [0.3])   # the last box (a Y) found only weakly
    assert res.left_out == [] and res.iscn == "46,XY"
    stray = joint_labels(np.vstack([table(truth[:-1]), table(["3"])]), real=[0.99] * 45 + [0.3])
    assert stray.left_out == [45] and stray.iscn == "45,X"       # a weak third 3 is not taken in


def test_real_none_is_every_box_counted_and_bad_real_is_a_clear_error():
    p = table(cell())
    a, b = joint_labels(p), joint_labels(p, real=np.ones(46))
    assert a.labels == b.labels and a.left_out == b.left_out == [] and a.real_prob is None
    with pytest.raises(ValueError, match=r"real must have shape \(46,\)"):
        joint_labels(p, real=[0.5])
    with pytest.raises(ValueError, match=r"real\[3\] = 1.5"):
        joint_labels(p, real=[0.5] * 3 + [1.5] + [0.5] * 42)
    assert joint_labels(np.zeros((0, 24)), real=[]).left_out == []
