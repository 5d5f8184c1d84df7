"""The ISCN count call: planted gains and losses, sex complements, flags, and that nothing is ever paired away."""
from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from karyotf import classes
from karyotf.annotations import Box, read_voc
from karyotf.karyogram import count_call, iscn


def cell(counts: dict[str, int] | None = None, sex: str = "XY", score: float | None = None) -> list[Box]:
    """Boxes of a synthetic cell: two of each autosome unless ``counts`` says otherwise, plus ``sex``."""
    counts = {**{n: 2 for n in classes.AUTOSOMES}, **(counts or {})}
    names = [n for n in classes.AUTOSOMES for _ in range(counts[n])] + list(sex)
    return [Box(30.0 * i, 0.0, 30.0 * i + 20, 60.0, n, score=score) for i, n in enumerate(names)]


@pytest.mark.parametrize("counts,sex,expected", [
    ({}, "XY", "46,XY"),
    ({}, "XX", "46,XX"),
    ({"21": 3}, "XY", "47,XY,+21"),
    ({}, "X", "45,X"),
    ({}, "XXY", "47,XXY"),
    ({}, "XXX", "47,XXX"),
    ({}, "XYY", "47,XYY"),
    ({"18": 3, "21": 3}, "XY", "48,XY,+18,+21"),
    ({"21": 1}, "XY", "45,XY,-21"),
    ({"21": 4}, "XX", "48,XX,+21,+21"),
    ({"13": 3}, "XXY", "48,XXY,+13"),
    ({"7": 0}, "XX", "44,XX,-7,-7"),
    ({"22": 1, "21": 3}, "XX", "46,XX,+21,-22"),
])
def test_iscn_calls(counts, sex, expected):
    call = count_call(cell(counts, sex))
    assert call.iscn == expected
    assert str(call) == expected
    assert call.total == sum(call.counts.values())
    assert call.is_normal == (expected in ("46,XX", "46,XY"))


def test_normal_cell_has_no_flags():
    call = count_call(cell(sex="XX"))
    assert call.flags == [] and call.is_normal and call.mean_score is None


def test_third_copy_is_never_moved_to_fill_a_gap():
    # a trisomy 21 with a lost 22 totals 46, but must not read as a normal 46: counting never re-pairs
    call = count_call(cell({"21": 3, "22": 1}, "XY"))
    assert call.total == 46 and call.iscn == "46,XY,+21,-22"
    assert not call.is_normal
    assert {"extra_copy", "missing_copy"} <= set(call.flag_codes)
    assert "total_not_46" not in call.flag_codes


def test_planted_removed_chromosome_from_real_annotation(sample_dir):
    ann = read_voc(sample_dir / "annotations" / "1054642.xml")
    base = count_call(ann.boxes)
    assert base.total == len(ann.boxes) == 46 and base.is_normal
    victim = next(i for i, b in enumerate(ann.boxes) if b.name == "7")
    call = count_call(ann.boxes[:victim] + ann.boxes[victim + 1:])
    assert call.iscn == f"45,{base.sex},-7"
    assert call.has_flag("total_not_46") and call.has_flag("missing_copy")
    assert next(f for f in call.flags if f.code == "missing_copy").classes == ("7",)


def test_planted_duplicated_21_from_real_annotation(sample_dir):
    ann = read_voc(sample_dir / "annotations" / "1054642.xml")
    sex = count_call(ann.boxes).sex
    b21 = next(b for b in ann.boxes if b.name == "21")
    call = count_call(ann.boxes + [b21.with_coords(b21.xmin + 300, b21.ymin, b21.xmax + 300, b21.ymax)])
    assert call.iscn == f"47,{sex},+21"
    assert call.has_flag("extra_copy") and call.has_flag("total_not_46")


def test_no_boxes_gives_no_call():
    call = count_call([])
    assert call.iscn is None and call.total == 0
    assert call.flag_codes == ["no_detections"]
    assert "no chromosomes" in call.text


@pytest.mark.parametrize("sex,flags,absent", [
    ("", {"sex_unknown"}, {"sex_atypical"}),
    ("XXY", {"sex_atypical", "y_with_two_x"}, {"sex_unknown"}),
    ("Y", {"sex_atypical", "y_without_x"}, set()),
    ("X", {"sex_atypical", "total_not_46"}, {"y_with_two_x"}),
    ("XY", set(), {"sex_atypical", "sex_unknown"}),
])
def test_sex_flags(sex, flags, absent):
    call = count_call(cell(sex=sex))
    assert flags <= set(call.flag_codes)
    assert not (absent & set(call.flag_codes))
    if not sex:  # "44,?" is not ISCN: no sex chromosome found is no call, with the counts kept
        assert call.iscn is None and call.text == "no call: no X and no Y among 44 chromosomes"
        assert "no_call" in call.flag_codes and call.total == 44


def test_confidence_flags():
    boxes = cell(sex="XY", score=0.9)
    boxes[3] = boxes[3].with_coords(*boxes[3].as_tuple(), score=0.2)
    call = count_call(boxes, low_score=0.5)
    assert call.low_confidence == [3]
    assert call.has_flag("low_confidence") and not call.has_flag("low_mean_confidence")
    assert call.class_scores["2"] == pytest.approx((0.9 + 0.2) / 2)
    weak = count_call(cell(sex="XY", score=0.4))
    assert weak.has_flag("low_mean_confidence") and weak.mean_score == pytest.approx(0.4)
    # ground truth carries no scores: never a confidence flag
    assert not {"low_confidence", "low_mean_confidence"} & set(count_call(cell()).flag_codes)


def test_overlapping_boxes_flagged():
    boxes = cell()
    dup = boxes[0].with_coords(boxes[0].xmin + 1, boxes[0].ymin, boxes[0].xmax + 1, boxes[0].ymax, name="3")
    call = count_call(boxes + [dup])
    assert call.has_flag("overlapping_boxes") and call.overlaps[0][:2] == (0, 46)
    assert not count_call(boxes).has_flag("overlapping_boxes")


def test_non_canonical_name_is_rejected():
    with pytest.raises(ValueError, match="canonical"):
        count_call([Box(0, 0, 10, 10, "G21")])


_ISCN_RE = re.compile(r"^(\d+),([XY]+|\?)((?:,[+-](?:[1-9]|1\d|2[0-2]))*)$")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=24, max_size=24))
def test_iscn_round_trips_counts(copies):
    counts = dict(zip(classes.NAMES, copies))
    text, sex, changes = iscn(counts)
    m = _ISCN_RE.match(text)
    assert m, text
    assert int(m.group(1)) == sum(copies)
    assert sex.count("X") == counts["X"] and sex.count("Y") == counts["Y"]
    rebuilt = {n: 2 for n in classes.AUTOSOMES}
    for ch in filter(None, m.group(3).split(",")):
        rebuilt[ch[1:]] += 1 if ch[0] == "+" else -1
    assert rebuilt == {n: counts[n] for n in classes.AUTOSOMES}
    nums = [int(ch[1:]) for ch in changes]
    assert nums == sorted(nums)  # ISCN: autosomal changes in chromosome order
