import shutil

import pytest

from karyotf.annotations import Annotation, Box, load_dataset, read_voc, voc_xml, write_voc
from karyotf.errors import AnnotationError


def _one(few_cells):
    xml = sorted((few_cells / "annotations").glob("*.xml"))[0]
    return xml, xml.read_text()


def test_reads_the_cil_layout_with_canonical_names(few_cells):
    anns, summary = load_dataset(few_cells, progress=False)
    assert summary.used == 4 and summary.skipped == 0
    assert all(len(a.boxes) >= 44 for a in anns)
    assert {b.name for a in anns for b in a.boxes} <= set(str(i) for i in range(1, 23)) | {"X", "Y"}
    assert all(a.image_path.is_file() for a in anns)


def test_reads_the_side_by_side_layout(few_cells, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for p in list((few_cells / "images").iterdir()) + list((few_cells / "annotations").iterdir()):
        shutil.copy(p, flat / p.name)
    anns, summary = load_dataset(flat, progress=False)
    assert summary.used == 4 and anns[0].image_path.parent == flat


def test_write_then_read_round_trips(few_cells, tmp_path):
    xml, _ = _one(few_cells)
    ann = read_voc(xml)
    out = tmp_path / "annotations" / xml.name
    (tmp_path / "images").mkdir()
    shutil.copy(ann.image_path, tmp_path / "images" / ann.filename)
    write_voc(ann, out)
    again = read_voc(out)
    assert again.boxes == ann.boxes and (again.width, again.height) == (ann.width, ann.height)


def _plant(xml, text, old, new):
    assert old in text, old
    xml.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("kind,mutate,obj", [
    ("malformed_xml", lambda x, t: x.write_text(t[: len(t) // 2]), None),
    ("missing_image", lambda x, t: (x.parent.parent / "images" / (x.stem + ".jpg")).unlink(), None),
    ("unreadable_image", lambda x, t: (x.parent.parent / "images" / (x.stem + ".jpg")).write_bytes(b"not a jpeg"), None),
    ("size_mismatch", lambda x, t: _plant(x, t, "<width>", "<width>1"), None),
    ("unknown_class", lambda x, t: _plant(x, t, "<name>A1</name>", "<name>chr23</name>"), 0),
    ("bad_box", lambda x, t: _plant(x, t, "<xmax>", "<xmax>9999"), 0),
    ("bad_box", lambda x, t: _plant(x, t, "<ymax>", "<ymax>-"), 0),
    ("empty", lambda x, t: x.write_text(t[: t.index("<object>")] + "</annotation>\n"), None),
])
def test_each_bad_input_names_file_object_and_fix(few_cells, kind, mutate, obj):
    xml, text = _one(few_cells)
    mutate(xml, text)
    with pytest.raises(AnnotationError) as err:
        read_voc(xml)
    e = err.value
    assert e.kind == kind
    assert xml.stem in str(e)
    assert "fix:" in str(e)
    if obj is not None:
        assert e.obj == obj and f"object #{obj}" in str(e)
    # the run goes on with the good files...
    anns, summary = load_dataset(few_cells, progress=False)
    assert summary.used == 3 and summary.skipped == 1 and summary.by_kind() == {kind: 1}
    # ...or stops at the first under strict
    with pytest.raises(AnnotationError):
        load_dataset(few_cells, strict=True, progress=False)


def test_small_overhang_is_clipped_not_rejected(few_cells):
    import re

    xml, text = _one(few_cells)
    xml.write_text(re.sub(r"<xmin>\d+</xmin>", "<xmin>-1</xmin>", text, count=1))  # a 1 px overhang
    ann = read_voc(xml)
    assert ann.clipped_boxes == 1 and ann.boxes[0].xmin == 0.0


def test_box_geometry():
    a = Box(0, 0, 10, 10, "1")
    b = Box(5, 0, 15, 10, "1")
    assert a.area == 100 and a.iou(b) == pytest.approx(50 / 150) and a.iou(a) == 1.0
    assert a.label == 1 and Box(0, 0, 1, 1, "Y").label == 24


def test_voc_xml_writes_canonical_names():
    from pathlib import Path

    ann = Annotation(Path("x.jpg"), 100, 80, [Box(1, 2, 30, 40, "X", truncated=True)])
    text = voc_xml(ann)
    assert "<name>X</name>" in text and "<truncated>1</truncated>" in text and "<width>100</width>" in text
