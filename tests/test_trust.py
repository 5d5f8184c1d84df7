"""Issue 22: what a call stands on — XML<->image pairing, empty and duplicate boxes, batch robustness."""
from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import pytest

from karyotf.annotations import load_dataset, read_voc
from karyotf.errors import AnnotationError


def _set_filename(xml: Path, name: str) -> None:
    xml.write_text(re.sub(r"<filename>[^<]*</filename>", f"<filename>{name}</filename>", xml.read_text()))


def _cells(few_cells: Path) -> list[str]:
    return sorted(p.stem for p in (few_cells / "annotations").glob("*.xml"))


# --- XML <-> image pairing ---------------------------------------------------------------------------------------

def test_renamed_xml_is_paired_by_its_stem_and_the_disagreeing_filename_is_a_warning(few_cells, caplog):
    """A copied LabelImg XML whose <filename> names another cell: the image named after the XML wins (the old
    main put its boxes on the other cell's pixels, and did not list that cell's image as lacking an XML)."""
    a, b = _cells(few_cells)[:2]
    (few_cells / "annotations" / f"{a}.xml").unlink()  # a.jpg now has no XML
    _set_filename(few_cells / "annotations" / f"{b}.xml", f"{a}.jpg")
    with caplog.at_level(logging.WARNING, logger="karyotf.annotations"):
        anns, summary = load_dataset(few_cells, progress=False)
    paired = {x.xml_path.stem: x.image_path.name for x in anns}
    assert paired[b] == f"{b}.jpg"
    assert f"{a}.jpg" in summary.images_without_xml
    assert len(summary.filename_disagrees) == 1
    note = summary.filename_disagrees[0]
    assert f"{b}.xml" in note and f"{a}.jpg" in note and f"{b}.jpg" in note
    assert note in summary.text() and any(note in r.getMessage() for r in caplog.records)


def test_one_image_claimed_by_two_xml_is_an_error_naming_both_and_the_rest_go_on(few_cells, tmp_path):
    """x.xml (no x.jpg) whose <filename> is a.jpg, beside a.xml: an error naming both XMLs; records goes on with
    every other cell (the old main aborted the whole run with 'image names must be unique', naming neither)."""
    from karyotf.records import build_records

    cells = _cells(few_cells)
    a = cells[0]
    stray = few_cells / "annotations" / "stray.xml"
    shutil.copy(few_cells / "annotations" / f"{cells[1]}.xml", stray)
    _set_filename(stray, f"{a}.jpg")
    anns, summary = load_dataset(few_cells, progress=False)
    assert sorted(x.xml_path.stem for x in anns) == cells
    [err] = summary.errors
    assert err.kind == "image_claimed_twice" and err.path == stray
    assert "stray.xml" in str(err) and f"{a}.xml" in str(err) and f"{a}.jpg" in str(err)
    res = build_records(few_cells, tmp_path / "rec", fractions=(1, 0, 0), progress=False)
    assert res.summary.used == len(cells) and res.summary.skipped == 1
    with pytest.raises(AnnotationError, match="stray.xml"):
        load_dataset(few_cells, progress=False, strict=True)


def test_karyogram_pairs_the_xml_with_the_image_it_was_given_for(few_cells, tmp_path, caplog):
    """karyotf karyogram IMG --annotations X.xml: the boxes are checked against IMG, not the image <filename>
    names; an XML named after and pointing at another cell is a warning naming both."""
    from karyotf.karyogram.build import read_annotation_for

    b = _cells(few_cells)[1]
    img = tmp_path / "other.jpg"  # a cell of the same size as b's, under another name
    shutil.copy(few_cells / "images" / f"{b}.jpg", img)
    with caplog.at_level(logging.WARNING, logger="karyotf.annotations"):
        ann = read_annotation_for(img, few_cells / "annotations" / f"{b}.xml")
    assert ann.image_path == img
    assert any(f"{b}.xml" in r.getMessage() and "other.jpg" in r.getMessage() for r in caplog.records)
