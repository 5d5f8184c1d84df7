"""The count call from ground-truth boxes on all 600 CIL:54816 cells against the dataset's karyotypes.csv."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter

import pytest

from karyotf import classes
from karyotf.karyogram.agreement import check_dataset, expectation, read_karyotypes


@pytest.fixture(scope="module")
def report(cil_dir):
    return check_dataset(cil_dir)


def test_every_listed_cell_agrees(report, cil_dir):
    listed = read_karyotypes(cil_dir / "karyotypes.csv")
    assert not report.listed_missing
    checked = [c for c in report.cells if c.kind != "unlisted"]
    assert len(checked) == len(listed)
    bad = [(c.image, c.call.text, c.expected) for c in checked if not c.agrees]
    assert bad == []
    numerical = [c for c in checked if c.kind == "numerical"]
    assert len(numerical) >= 20
    for c in numerical:  # a numerical abnormality the count can see is always flagged for review
        assert c.call.has_flag("total_not_46")


def test_unlisted_cells_follow_their_annotation(report, cil_dir):
    """Unlisted cells: 46,XX/46,XY exactly when their boxes say two of each autosome and XX/XY; the others
    (a chromosome lost in preparation, or a sex-chromosome count the csv does not list) get their true count
    and a review flag, never a forced 46."""
    unlisted = [c for c in report.cells if c.kind == "unlisted"]
    assert len(unlisted) > 500
    for c in unlisted:
        root = ET.parse(cil_dir / "annotations" / f"{c.image}.xml").getroot()
        counts = Counter(classes.canonical(o.findtext("name")) for o in root.iter("object"))
        normal = (all(counts[n] == 2 for n in classes.AUTOSOMES)
                  and "X" * counts["X"] + "Y" * counts["Y"] in ("XX", "XY"))
        assert c.agrees == normal, c.image
        assert c.call.total == sum(counts.values())
        assert dict(c.call.counts) == {n: counts.get(n, 0) for n in classes.NAMES}
        if not normal:
            assert c.call.flags, c.image
    assert sum(c.agrees for c in unlisted) > 0.9 * len(unlisted)


def _call(extra: dict[str, int], sex: str):
    from karyotf.annotations import Box
    from karyotf.karyogram import count_call

    counts = {**{n: 2 for n in classes.AUTOSOMES}, **extra}
    names = [n for n in classes.AUTOSOMES for _ in range(counts[n])] + list(sex)
    return count_call([Box(30.0 * i, 0, 30.0 * i + 20, 60, n) for i, n in enumerate(names)])


@pytest.mark.parametrize("row,extra,sex,agrees", [
    (("47", "21", "numerical"), {"21": 3}, "XY", True),
    (("47", "21", "numerical"), {"18": 3}, "XY", False),      # right total, wrong chromosome
    (("47", "X", "numerical"), {}, "XXY", True),
    (("47", "X", "numerical"), {}, "XXX", True),
    (("47", "X", "numerical"), {}, "XYY", False),
    (("47", "X", "numerical"), {"21": 3}, "XY", False),
    (("45", "X", "numerical"), {}, "X", True),
    (("45", "Y", "numerical"), {}, "X", True),                # loss of the Y leaves 45,X
    (("45", "Y", "numerical"), {}, "Y", False),
    (("47", "unknow", "numerical"), {"12": 3}, "XY", True),
    (("44", "XX/XY", "numerical"), {"6": 1, "11": 1}, "XX", True),
    (("46", "21", "numerical"), {}, "XY", True),              # 46 listed: counting must not invent a change
    (("46", "21", "numerical"), {"21": 3}, "XY", False),
    (("47", "2", "structural"), {"5": 3}, "XY", True),
    (("46", "9", "structural"), {}, "XX", True),
    (("46", "9", "structural"), {"9": 1}, "XX", False),
])
def test_expectation_rules(row, extra, sex, agrees):
    count, text, kind = row
    _, _, ok = expectation({"chromosome_count": count, "abnormality": text, "kind": kind})
    assert ok(_call(extra, sex)) is agrees


def test_unlisted_expectation():
    _, _, ok = expectation(None)
    assert ok(_call({}, "XX")) and ok(_call({}, "XY"))
    assert not ok(_call({}, "X")) and not ok(_call({"21": 3, "22": 1}, "XY"))
