"""karyotf.case: many cells of one patient -> one ISCN case karyotype (clonality, mos, flags, report)."""
from __future__ import annotations

import json
import time

import pytest

from karyotf.case import CaseError, CellCall, Rules, case_karyotype, case_karyotypes, parse_numerical


def cells(*spec, start=0, **kw):
    """``cells(("47,XX,+21", 3), ("46,XX", 12))`` -> planted cells c0, c1, ..."""
    out = []
    for text, n in spec:
        for _ in range(n):
            out.append(CellCall.planted(text, cell=f"c{start + len(out)}", **kw))
    return out


# ------------------------------------------------------------------------------------------ the planted cases


def test_four_trisomy_21_cells_are_one_clone():
    case = case_karyotype(cells(("47,XX,+21", 4)))
    assert case.karyotype == "47,XX,+21[4]"
    assert case.sex == "XX"
    assert not case.non_clonal and not case.uncounted
    assert not case.has_flag("mosaicism_suspected")
    assert case.has_flag("too_few_counted")  # 4 < 20


def test_three_trisomy_21_with_twelve_normal_is_a_mosaic_and_flagged():
    case = case_karyotype(cells(("46,XX", 6), ("47,XX,+21", 3), ("46,XX", 6)))
    assert case.karyotype == "mos 47,XX,+21[3]/46,XX[12]"
    assert case.has_flag("mosaicism_suspected")
    assert case.extend_to == 30
    flag = next(f for f in case.flags if f.code == "mosaicism_suspected")
    assert "30" in flag.message and "47,XX,+21" in flag.message
    assert not case.has_flag("mixed_patients")


def test_one_48_among_47s_is_non_clonal_and_listed():
    cs = cells(("47,XY,+21", 5)) + [CellCall.planted("48,XY,+18,+21", cell="odd")]
    case = case_karyotype(cs)
    assert case.karyotype == "47,XY,+21[5]"
    assert [(c.cell, c.iscn) for c, _ in case.non_clonal] == [("odd", "48,XY,+18,+21")]
    assert "clone from 2" in case.non_clonal[0][1]
    assert case.has_flag("mosaicism_suspected")
    assert case.to_dict()["non_clonal"][0]["call"] == "48,XY,+18,+21"


def test_a_loss_in_two_cells_is_not_a_clone():
    case = case_karyotype(cells(("45,XX,-22", 2), ("46,XX", 10)))
    assert case.karyotype == "46,XX[10]"
    assert sorted(c.cell for c, _ in case.non_clonal) == ["c0", "c1"]
    assert "clone from 3" in case.non_clonal[0][1]
    # a third cell makes it a clone, and the karyotype a mosaic
    case3 = case_karyotype(cells(("45,XX,-22", 3), ("46,XX", 10)))
    assert case3.karyotype == "mos 45,XX,-22[3]/46,XX[10]"


def test_45x_with_46xx_is_a_mosaic_with_counts_normal_line_last():
    case = case_karyotype(cells(("46,XX", 16), ("45,X", 4)))
    assert case.karyotype == "mos 45,X[4]/46,XX[16]"
    assert case.sex == "X/XX"
    assert case.has_flag("sex_disagree") and not case.has_flag("xx_and_xy")
    # the normal line goes last even when it is the smaller one
    assert case_karyotype(cells(("46,XX", 3), ("45,X", 17))).karyotype == "mos 45,X[17]/46,XX[3]"


def test_abnormal_lines_by_size_largest_first():
    case = case_karyotype(cells(("47,XXX", 5), ("46,XX", 23), ("45,X", 15)))
    assert case.karyotype == "mos 45,X[15]/47,XXX[5]/46,XX[23]"


def test_thresholds_are_configurable():
    cs = cells(("45,XX,-22", 2), ("46,XX", 10))
    assert case_karyotype(cs, rules=Rules(loss_min=2)).karyotype == "mos 45,XX,-22[2]/46,XX[10]"
    assert case_karyotype(cells(("47,XX,+21", 2), ("46,XX", 10)),
                          rules=Rules(gain_min=3)).karyotype == "46,XX[10]"
    assert not case_karyotype(cells(("46,XY", 3)), rules=Rules(counted=3, analysed=0)).flags


# ------------------------------------------------------------------------------------------ bad input


def test_a_case_of_one_cell():
    case = case_karyotype(cells(("47,XY,+21", 1)))
    assert case.karyotype == "47,XY,+21[1]"
    assert case.has_flag("clone_below_threshold") and case.has_flag("too_few_counted")
    normal = case_karyotype(cells(("46,XY", 1)))
    assert normal.karyotype == "46,XY[1]" and not normal.has_flag("clone_below_threshold")


def test_cells_that_disagree_entirely_give_no_case_call():
    case = case_karyotype(cells(("47,XX,+21", 1), ("47,XY,+18", 1), ("45,XX,-3", 1), ("45,X", 1), ("47,XXY", 1)))
    assert case.karyotype is None
    assert case.text.startswith("no case call: no clonal line among 5 counted cells")
    assert case.has_flag("no_clone") and case.has_flag("mixed_patients") and case.has_flag("xx_and_xy")
    assert len(case.non_clonal) == 5


def test_two_patients_under_one_case_id_are_flagged():
    # a wrong pattern put a trisomy-18 girl and a trisomy-21 boy together
    case = case_karyotype(cells(("47,XX,+18", 6), ("47,XY,+21", 5)))
    assert case.karyotype == "mos 47,XX,+18[6]/47,XY,+21[5]"
    assert case.has_flag("mixed_patients") and case.has_flag("xx_and_xy") and case.has_flag("sex_disagree")
    chi = case_karyotype(cells(("46,XX", 8), ("46,XY", 12)))
    assert chi.karyotype == "chi 46,XY[12]/46,XX[8]"
    assert chi.has_flag("mixed_patients")
    # a true mosaic is not two patients
    assert not case_karyotype(cells(("47,XY,+21", 4), ("46,XY", 16))).has_flag("mixed_patients")


def test_uncallable_cells_are_listed_with_the_reason_and_not_counted():
    cs = cells(("47,XX,+21", 3))
    cs.append(CellCall.planted("no call: 12 chromosomes found", cell="few"))
    cs.append(CellCall.failed("broken", "broken.jpg: not an image"))
    cs.append(CellCall.planted("46,XX", cell="touch", flags=("suppressed_other_class",)))
    cs.append(CellCall.planted("46,XX", cell="touch-reviewed", flags=("suppressed_other_class",), reviewed=True))
    cs.append(CellCall.planted("47,XX,+21", cell="c0"))  # given twice
    case = case_karyotype(cs)
    reasons = {c.cell: r for c, r in case.uncounted}
    assert set(reasons) == {"few", "broken", "touch", "c0"}
    assert "12 chromosomes" in reasons["few"] and "not an image" in reasons["broken"]
    assert "suppressed_other_class" in reasons["touch"] and "twice" in reasons["c0"]
    assert case.karyotype == "mos 47,XX,+21[3]/46,XX[1]"
    assert case.counts()["counted"] == 4 and case.counts()["uncounted"] == 4
    assert case.has_flag("uncounted_cells")


def test_no_cell_counted():
    case = case_karyotype([CellCall.failed("a", "unreadable")])
    assert case.karyotype is None and "no cell counted" in case.text


def test_analysed_means_named_by_a_person():
    model = cells(("46,XY", 20), kind="model")
    assert case_karyotype(model).has_flag("too_few_analysed")
    truth = cells(("46,XY", 20), kind="annotations")
    assert case_karyotype(truth).flag_codes == []


def test_a_call_resting_on_low_confidence_cells_is_flagged():
    sure = cells(("46,XY", 18))
    shaky = cells(("47,XY,+21", 2), start=100, flags=("low_confidence",))
    case = case_karyotype(sure + shaky)
    assert case.karyotype == "mos 47,XY,+21[2]/46,XY[18]"
    assert case.has_flag("low_confidence")
    assert not case_karyotype(sure + cells(("46,XY", 2), start=100, flags=("low_confidence",))).has_flag(
        "low_confidence")


def test_100_cells_of_one_case_time_stays_linear():
    def run(n):
        cs = cells(("46,XY", n * 8 // 10), ("47,XY,+21", n - n * 8 // 10))
        t = time.perf_counter()
        case = case_karyotype(cs)
        return time.perf_counter() - t, case

    t100, case = run(100)
    assert case.karyotype == "mos 47,XY,+21[20]/46,XY[80]"
    assert not case.has_flag("too_few_counted")
    t2000, _ = run(2000)
    assert t100 < 1.0 and t2000 < 40 * max(t100, 1e-3)


def test_cases_are_grouped_by_the_records_case_pattern():
    from karyotf.records import case_of

    cs = [CellCall.planted("46,XX", cell=f"{1055911 + i}") for i in range(3)]
    cs += [CellCall.planted("47,XY,+21", cell=f"{1060141 + i}") for i in range(2)]
    out = case_karyotypes(cs)
    assert [c.case for c in out] == [case_of("1055911"), case_of("1060141")] == ["105591", "106014"]
    assert [c.karyotype for c in out] == ["46,XX[3]", "47,XY,+21[2]"]
    custom = case_karyotypes([CellCall.planted("46,XX", cell=f"p7_cell{i}") for i in range(2)],
                             case_pattern=r"^(.+)_cell\d+$")
    assert [c.case for c in custom] == ["p7"]
    with pytest.raises(CaseError, match="case-pattern"):
        case_karyotypes(cs, case_pattern="(")


def test_parse_numerical_rejects_what_is_not_a_count_call():
    assert parse_numerical("48,XY,+18,+21") == (48, "XY", ("+18", "+21"))
    for bad in ("47,XX", "46,YX", "47,XX,+23", "hello"):
        with pytest.raises(CaseError):
            parse_numerical(bad)
    assert json.dumps(case_karyotype(cells(("45,X", 3))).to_dict())
