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


# --- a box must hold a chromosome ---------------------------------------------------------------------------------

def _karyogram(img: Path, xml: Path, out: Path):
    from karyotf.karyogram.build import karyograms

    [res] = karyograms([img], out, annotations=xml, progress=False)
    return res


def _normal_cell(sample_dir: Path) -> Path:
    """A sample cell whose annotation is 46,XX or 46,XY."""
    from karyotf.karyogram.call import count_call

    for xml in sorted((sample_dir / "annotations").glob("*.xml")):
        if count_call(read_voc(xml, check_image=False).boxes).is_normal:
            return xml
    raise AssertionError("no normal cell in the sample")


def test_blank_image_with_a_real_xml_is_no_call_flagged(sample_dir, tmp_path):
    """A blank white image with a real XML: no call, every box listed empty, image_mismatch (the old main called
    it a clean 46,XY)."""
    from PIL import Image

    xml = _normal_cell(sample_dir)
    ann = read_voc(xml, check_image=False)
    blank = tmp_path / f"{xml.stem}.png"
    Image.new("RGB", (ann.width, ann.height), "white").save(blank)
    res = _karyogram(blank, xml, tmp_path / "k")
    assert res.call.iscn is None and not res.call.is_normal
    assert {"image_mismatch", "empty_box"} <= set(res.call.flag_codes)
    assert res.call.box_check.empty == list(range(len(ann.boxes)))
    report = (res.paths["report_json"]).read_text()
    assert "image_mismatch" in report and '"box_check"' in report


def test_xml_of_another_cell_is_flagged_image_mismatch(sample_dir, tmp_path):
    """Another cell's pixels under this cell's XML (padded to the XML's size): image_mismatch, no call."""
    from PIL import Image

    xml = _normal_cell(sample_dir)
    ann = read_voc(xml, check_image=False)
    others = [p for p in sorted((sample_dir / "images").glob("*.jpg")) if p.stem != xml.stem]
    canvas = Image.new("RGB", (ann.width, ann.height), "white")
    canvas.paste(Image.open(others[3]).convert("RGB"), (0, 0))
    img = tmp_path / f"{xml.stem}.png"
    canvas.save(img)
    res = _karyogram(img, xml, tmp_path / "k")
    assert "image_mismatch" in res.call.flag_codes and res.call.iscn is None


def test_extra_box_on_background_is_flagged_empty_box(sample_dir, tmp_path):
    """An extra 21 drawn on bare slide: still counted (47,...,+21) but flagged empty_box naming the box; the
    cell's true boxes are not flagged."""
    from karyotf.annotations import Box, write_voc
    from karyotf.boxcheck import check_boxes, foreground_mask, to_gray
    from karyotf import images

    xml = _normal_cell(sample_dir)
    ann = read_voc(xml)
    arr = images.load(ann.image_path)
    fg = foreground_mask(to_gray(arr))
    # a 20 x 40 px spot of bare slide: no foreground pixel in it
    spot = next((x, y) for y in range(0, ann.height - 40, 10) for x in range(0, ann.width - 20, 10)
                if not fg[y:y + 40, x:x + 20].any())
    extra = Box(spot[0], spot[1], spot[0] + 20, spot[1] + 40, "21")
    assert check_boxes(arr, ann.boxes).clean
    ann.boxes.append(extra)
    new_xml = write_voc(ann, tmp_path / "ann" / f"{xml.stem}.xml")
    res = _karyogram(ann.image_path, new_xml, tmp_path / "k")
    assert res.call.iscn is not None and "+21" in res.call.iscn  # counted as drawn, but ...
    [flag] = [f for f in res.call.flags if f.code == "empty_box"]
    assert f"#{len(ann.boxes) - 1} (21" in flag.message
    assert "image_mismatch" not in res.call.flag_codes
    assert res.call.box_check.empty == [len(ann.boxes) - 1]


def test_records_lists_training_boxes_on_background_and_duplicates(few_cells, tmp_path):
    """records: an extra box on bare slide and a duplicated box are listed with file and object index (the old main
    wrote both without a word); the cells' true boxes are not."""
    from karyotf.annotations import Box, write_voc
    from karyotf.boxcheck import foreground_mask, to_gray
    from karyotf import images
    from karyotf.records import build_records

    xml = sorted((few_cells / "annotations").glob("*.xml"))[0]
    ann = read_voc(xml)
    fg = foreground_mask(to_gray(images.load(ann.image_path)))
    x, y = next((x, y) for y in range(0, ann.height - 40, 10) for x in range(0, ann.width - 20, 10)
                if not fg[y:y + 40, x:x + 20].any())
    n = len(ann.boxes)
    ann.boxes.append(Box(x, y, x + 20, y + 40, "21"))  # object #n: on background
    b = ann.boxes[3]
    ann.boxes.append(b.with_coords(b.xmin + 1, b.ymin, b.xmax, b.ymax, name="X"))  # object #n+1: #3 again
    write_voc(ann, xml)
    res = build_records(few_cells, tmp_path / "rec", fractions=(1, 0, 0), progress=False)
    s = res.summary
    assert s.empty_boxes == [f"{xml.name}: object #{n} (21)"]
    assert len(s.duplicate_boxes) == 1 and s.duplicate_boxes[0].startswith(f"{xml.name}: objects #3 (")
    assert f"#{n + 1} (X)" in s.duplicate_boxes[0]
    text = res.text()
    assert s.empty_boxes[0] in text and s.duplicate_boxes[0] in text
    stats = (tmp_path / "rec" / "stats.json").read_text()
    assert "duplicate_boxes" in stats and f"object #{n} (21)" in stats


def test_records_says_when_val_or_test_is_empty(few_cells, tmp_path):
    """4 cells of 4 cases at 0.8,0.1,0.1 may leave val/test empty (as a reviewed folder exported with --export-voc
    does): the records say so instead of writing 0 images without a word."""
    from karyotf.records import build_records

    for xml in sorted((few_cells / "annotations").glob("*.xml"))[1:]:
        xml.unlink()
    res = build_records(few_cells, tmp_path / "rec", progress=False)
    assert res.counts.get("val", 0) == 0 and res.counts.get("test", 0) == 0
    assert [n.split(":")[0] for n in res.notes] == ["no val images", "no test images"]
    assert "note: no val images: 1 cell(s) in 1 case(s) are too few" in res.text()


def test_duplicate_box_is_flagged_in_the_karyogram(sample_dir, tmp_path):
    """A chromosome boxed twice (the second box 1 px off, another class): flagged duplicate_box naming both
    indices; never a silent 47."""
    from karyotf.annotations import write_voc

    xml = _normal_cell(sample_dir)
    ann = read_voc(xml)
    b = ann.boxes[5]
    ann.boxes.append(b.with_coords(b.xmin, b.ymin + 1, b.xmax, b.ymax, name="21"))
    new_xml = write_voc(ann, tmp_path / "ann" / f"{xml.stem}.xml")
    res = _karyogram(ann.image_path, new_xml, tmp_path / "k")
    [flag] = [f for f in res.call.flags if f.code == "duplicate_box"]
    n = len(ann.boxes) - 1
    assert f"#5 ({b.name}) and #{n} (21)" in flag.message
    assert res.call.box_check.duplicates[0][:2] == (5, n)


# --- nothing is lost in a batch -----------------------------------------------------------------------------------

def test_batch_goes_on_past_bad_cells_and_lists_them(sample_dir, tmp_path, capsys):
    """karyotf karyogram A B C D with an image without an XML and a damaged image in the middle: the good cells are
    done, calls.csv lists every cell (the bad ones with their errors), a summary is printed, exit 1 at the end (the
    old main stopped at the first bad cell with exit 2 and no calls.csv)."""
    import csv

    from karyotf.cli import main

    cells = sorted(p.stem for p in (sample_dir / "annotations").glob("*.xml"))[:2]
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for c in cells:
        shutil.copy(sample_dir / "images" / f"{c}.jpg", imgs / f"{c}.jpg")
    shutil.copy(sample_dir / "images" / f"{cells[0]}.jpg", imgs / "nolabel.jpg")  # no XML of this name
    (imgs / "broken.jpg").write_bytes((sample_dir / "images" / f"{cells[1]}.jpg").read_bytes()[:500])
    shutil.copy(sample_dir / "annotations" / f"{cells[1]}.xml", tmp_path / "broken.xml")
    ann_dir = tmp_path / "ann"
    shutil.copytree(sample_dir / "annotations", ann_dir)
    shutil.copy(tmp_path / "broken.xml", ann_dir / "broken.xml")
    order = [imgs / f"{cells[0]}.jpg", imgs / "nolabel.jpg", imgs / "broken.jpg", imgs / f"{cells[1]}.jpg"]
    rc = main(["karyogram", *map(str, order), "--annotations", str(ann_dir), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert rc == 1
    rows = list(csv.DictReader((tmp_path / "out" / "calls.csv").open()))
    assert [r["image"] for r in rows] == [p.name for p in order]
    assert [r["call"] == "error" for r in rows] == [False, True, True, False]
    assert "no nolabel.xml" in rows[1]["error"] and "broken.jpg" in rows[2]["error"]
    assert (tmp_path / "out" / cells[1] / "karyogram.png").is_file()
    assert "2 of 4 cell(s) done, 2 failed" in out and "nolabel.jpg, broken.jpg" in out


def test_records_removes_the_stale_tmp_folder_of_a_killed_run(few_cells, tmp_path):
    """A killed records run leaves .records-tmp-*: the next run removes it when it is stale (by name and age),
    leaves a young one (a run still writing) and anything not its own."""
    import os
    import time

    from karyotf.records import STALE_TMP_HOURS, build_records

    out = tmp_path / "rec"
    stale, young, other = out / ".records-tmp-killed1", out / ".records-tmp-running", out / ".keep-tmp-x"
    for d in (stale, young, other):
        d.mkdir(parents=True)
        (d / "train-00000-of-00001.tfrecord").write_bytes(b"partial")
    old = time.time() - (STALE_TMP_HOURS + 1) * 3600
    for f in (stale / "train-00000-of-00001.tfrecord", stale, other / "train-00000-of-00001.tfrecord", other):
        os.utime(f, (old, old))
    build_records(few_cells, out, fractions=(1, 0, 0), progress=False)
    assert not stale.exists() and young.is_dir() and other.is_dir()
    assert not [p for p in out.glob(".records-tmp-*") if p != young]


def test_augment_grid_is_not_an_image_of_the_dataset(few_cells, tmp_path):
    """karyotf augment OUT then records OUT: augment_grid.png is not listed as an image without an XML."""
    from karyotf.augment import augment_dataset
    from karyotf.records import build_records

    out = tmp_path / "aug"
    augment_dataset(few_cells, out, copies=1, ops="hflip", progress=False, include_originals=True)
    assert (out / "augment_grid.png").is_file()
    res = build_records(out, tmp_path / "rec", fractions=(1, 0, 0), progress=False)
    assert res.summary.images_without_xml == []
    assert res.summary.used == 8


# --- small texts --------------------------------------------------------------------------------------------------

def test_help_prints_each_default_once():
    """No option's --help reads '(default: the one it was trained on) (default: None)'."""
    from karyotf.cli import build_parser

    def parsers(p):
        yield p
        for a in p._actions:
            if hasattr(a, "choices") and isinstance(a.choices, dict):
                for sub in a.choices.values():
                    yield from parsers(sub)

    seen = 0
    for p in parsers(build_parser()):
        text = " ".join(p.format_help().split())
        assert "(default: None)" not in text, p.prog
        for a in p._actions:
            if a.help and a.option_strings:
                one = " ".join(p._get_formatter()._expand_help(a).split())
                assert one.count("(default") <= 1, (p.prog, a.option_strings, one)
                seen += 1
    assert seen > 100


def test_empty_image_file_says_it_is_empty(few_cells):
    from karyotf import images

    cell = sorted((few_cells / "images").glob("*.jpg"))[0]
    cell.write_bytes(b"")
    with pytest.raises(AnnotationError, match=r"is empty \(0 bytes\)"):
        images.inspect(cell)
    anns, summary = load_dataset(few_cells, progress=False)
    [err] = summary.errors
    assert err.kind == "unreadable_image" and "is empty (0 bytes)" in str(err) and cell.name in str(err)


def test_clipped_boxes_are_named_by_file_and_object(few_cells):
    xml = sorted((few_cells / "annotations").glob("*.xml"))[1]
    xml.write_text(re.sub(r"<xmin>\d+</xmin>", "<xmin>-1</xmin>", xml.read_text(), count=1))
    _, summary = load_dataset(few_cells, progress=False)
    assert summary.clipped_in == [f"{xml.name} (object #0)"]
    assert f"1 box(es) overhanging the image by <= 2 px clipped in 1 file(s): {xml.name} (object #0)" in summary.text()
