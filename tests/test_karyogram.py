"""Karyogram: cut-out, orientation and layout on synthetic cells with known geometry; full karyograms, report
files, CLI (annotations and a stand-in Detector) and the karyogram dataset on real sample cells."""
from __future__ import annotations

import json
import math
import sys
import types

import cv2
import numpy as np
import pytest
from PIL import Image

from karyotf import classes
from karyotf.annotations import Box, load_dataset, read_voc
from karyotf.cli import main
from karyotf.errors import KaryogramError
from karyotf.find import Finder, class_agnostic_nms
from karyotf.karyogram import build_karyogram, from_annotation, parse_rows
from karyotf.karyogram import ideogram
from karyotf.karyogram.cutout import cut_out, cut_out_all
from karyotf.karyogram.layout import ROW_PRESETS, render
from karyotf.karyogram.orient import orient_all


# ---------------------------------------------------------------- synthetic cells
def draw_bar(img: np.ndarray, cx: float, cy: float, length: float, angle_deg: float, width: int = 12,
             grey: int = 90) -> Box:
    """A dark capsule (a straight chromosome) of ``length`` px at ``angle_deg`` from the vertical; its box."""
    a = math.radians(angle_deg)
    dx, dy = math.sin(a) * (length - width) / 2, math.cos(a) * (length - width) / 2
    p0 = (int(round(cx - dx)), int(round(cy - dy)))
    p1 = (int(round(cx + dx)), int(round(cy + dy)))
    cv2.line(img, p0, p1, (grey, grey, grey), thickness=width, lineType=cv2.LINE_8)
    ys, xs = np.nonzero((np.abs(img.astype(int) - grey).sum(axis=2) == 0))
    return Box(float(min(p0[0], p1[0]) - width / 2), float(min(p0[1], p1[1]) - width / 2),
               float(max(p0[0], p1[0]) + width / 2 + 1), float(max(p0[1], p1[1]) + width / 2 + 1), "1")


def synthetic_cell(names: list[str], seed: int = 0) -> tuple[np.ndarray, list[Box]]:
    """A white cell with one straight bar a chromosome, length proportional to its ISCN length, random angle."""
    rng = np.random.default_rng(seed)
    cols = 8
    img = np.full((90 * (len(names) // cols + 1) + 40, 90 * cols + 40, 3), 250, np.uint8)
    boxes = []
    unit = 80 / ideogram.length("1")
    for i, n in enumerate(names):
        cx, cy = 60 + 90 * (i % cols), 60 + 90 * (i // cols)
        length = max(16.0, ideogram.length(n) * unit)
        b = draw_bar(img, cx, cy, length, float(rng.uniform(0, 180)), width=9)
        boxes.append(b.with_coords(*b.as_tuple(), name=n))
    return img, boxes


def normal_names(sex: str = "XY") -> list[str]:
    return [n for n in classes.AUTOSOMES for _ in range(2)] + list(sex)


# ---------------------------------------------------------------- cut out and orient
def _own_area(img: np.ndarray) -> int:
    """Pixels of the bars drawn so far, grown by the cut-out's one-pixel edge ring."""
    from scipy import ndimage as ndi

    return int(ndi.binary_dilation(np.abs(img.astype(int) - 90).sum(axis=2) == 0).sum())


def test_cut_out_drops_neighbour_reaching_into_box():
    img = np.full((300, 300, 3), 250, np.uint8)
    target = draw_bar(img, 150, 150, 160, 0, width=14)            # vertical, 160 px
    own = _own_area(img)
    other = draw_bar(img, 215, 95, 120, 90, width=14)              # horizontal, its end inside the target's box
    assert other.xmin < target.xmax  # it does reach into the box
    c = cut_out(img, target, others=[other])
    assert c.method == "component"
    assert abs(c.area - own) / own < 0.03
    assert cut_out(img, target).area > 1.04 * own  # without knowing the neighbour's box, part of it stays
    # background outside the mask is clean white
    assert (c.image[~c.mask] == 255).all()


def test_cut_out_separates_touching_neighbour_by_shared_pixels():
    img = np.full((300, 300, 3), 250, np.uint8)
    target = draw_bar(img, 150, 150, 160, 0, width=14)
    own = _own_area(img)
    other = draw_bar(img, 190, 120, 90, 90, width=14)             # touches the target inside its box
    cs = cut_out_all(img, [target.with_coords(*target.as_tuple(), name="1"), other.with_coords(*other.as_tuple(),
                                                                                           name="2")])
    assert abs(cs[0].area - own) / own < 0.03  # the touching bar is given back to its own box
    assert cut_out(img, target).area > 1.04 * own


@pytest.mark.parametrize("angle", [0, 20, 45, 70, 90, 135, 160])
def test_orient_upright_and_one_scale(angle):
    img = np.full((400, 400, 3), 250, np.uint8)
    long_box = draw_bar(img, 130, 200, 180, angle, width=12)
    short_box = draw_bar(img, 300, 200, 90, angle + 37, width=12)
    cuts = cut_out_all(img, [long_box, short_box])
    oriented, scale = orient_all(cuts, longest=150)
    a, b = oriented
    assert a.height > 3 * a.width and b.height > 2 * b.width          # upright
    assert a.height == pytest.approx(150, abs=6)                        # longest scaled to 150 px
    assert a.height / b.height == pytest.approx(180 / 90, rel=0.08)     # relative lengths kept
    assert scale == pytest.approx(150 / 180, rel=0.05)


# ---------------------------------------------------------------- layout
def test_parse_rows_presets_and_specs():
    assert parse_rows("standard") == ROW_PRESETS["standard"]
    assert parse_rows("denver")[2] == ("6", "7", "8", "9", "10", "11", "12", "X")
    assert parse_rows("1-5|6-12,X|13-18|19-22,Y") == ROW_PRESETS["standard"]
    assert len(parse_rows("1-12,X|13-22,Y")) == 2
    assert parse_rows([["A1", "2", "3"], *ROW_PRESETS["denver"][1:2], ["6", "7", "8", "9", "10", "11", "12", "x"],
                       *ROW_PRESETS["denver"][3:]]) == ROW_PRESETS["denver"]                     # aliases accepted
    for bad in ("1-5|6-12|13-18|19-22,Y", "1-5|5-12,X|13-18|19-22,Y", "5-1|6-12,X|13-18|19-22,Y"):
        with pytest.raises(KaryogramError, match="fix"):
            parse_rows(bad)


def _row_of(rows, name):
    return next(i for i, r in enumerate(rows) if name in r)


@pytest.mark.parametrize("rows", ["standard", "denver"])
def test_layout_places_each_chromosome_once_in_its_row(rows):
    names = normal_names("XY")
    img, boxes = synthetic_cell(names)
    oriented, _ = orient_all(cut_out_all(img, boxes), longest=140)
    lay = render(oriented, rows=rows, longest=140, title="46,XY")
    W, H = lay.image.size
    assert sorted(p.index for p in lay.placements) == list(range(len(boxes)))
    assert not lay.missing_slots and not any(p.extra for p in lay.placements)
    for p in lay.placements:
        x0, y0, x1, y1 = p.box
        assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H                  # none cut off
        assert p.name == boxes[p.index].name
        assert (y1 - y0) >= (x1 - x0)                                    # upright
    rws = parse_rows(rows)
    for p in lay.placements:  # rows go down the page, classes left to right within a row
        for q in lay.placements:
            rp, rq = _row_of(rws, p.name), _row_of(rws, q.name)
            if rp < rq:
                assert p.box[1] < q.box[1]
            if rp == rq and rws[rp].index(p.name) < rws[rq].index(q.name):
                assert p.box[2] <= q.box[0]
    for i, p in enumerate(lay.placements):  # no two chromosomes drawn on top of each other
        for q in lay.placements[i + 1:]:
            assert Box(*p.box, "1").iou(Box(*q.box, "1")) == 0


def test_layout_marks_missing_and_extra_copies():
    names = normal_names("X") + ["21"]
    names.remove("7")
    img, boxes = synthetic_cell(names, seed=3)
    oriented, _ = orient_all(cut_out_all(img, boxes))
    lay = render(oriented)
    assert sorted(n for n, _ in lay.missing_slots) == ["7", "X"]       # 45,X leaves an empty X slot
    extra = [p for p in lay.placements if p.extra]
    assert [p.name for p in extra] == ["21"]
    twentyones = sorted((p for p in lay.placements if p.name == "21"), key=lambda p: p.box[0])
    assert twentyones[-1].extra                                         # the extra copy stands beside the pair
    assert max(abs(a.box[1] - b.box[1]) for a in twentyones for b in twentyones) < 40


def test_low_confidence_outlined():
    img, boxes = synthetic_cell(normal_names("XX"), seed=1)
    boxes = [b.with_coords(*b.as_tuple(), score=0.3 if i == 5 else 0.95) for i, b in enumerate(boxes)]
    oriented, _ = orient_all(cut_out_all(img, boxes))
    lay = render(oriented, low_score=0.5)
    low = [p for p in lay.placements if p.low_confidence]
    assert [p.index for p in low] == [5]
    x0, y0, x1, y1 = low[0].box
    frame = np.asarray(lay.image)[y0 - 3:y1 + 3, x0 - 3:x1 + 3]
    assert (np.abs(frame.astype(int) - (240, 140, 0)).sum(axis=2) < 30).sum() > 2 * (y1 - y0)


# ---------------------------------------------------------------- real cells, files, report
def test_karyogram_from_annotation_writes_everything(tmp_path, sample_dir):
    xml = sample_dir / "annotations" / "1055911.xml"
    res = from_annotation(xml, tmp_path / "k")
    assert res.call.iscn == "47,XY,+21"
    for key in ("karyogram", "detections", "report_html", "report_json"):
        assert res.paths[key].is_file() and res.paths[key].stat().st_size > 0
    assert not list((tmp_path / "k").glob(".*tmp"))                    # atomic writes leave nothing behind
    png = Image.open(res.paths["karyogram"])
    assert png.size[0] > 600 and png.size[1] > 500
    assert (np.asarray(png.convert("L"))[:5] > 250).all()               # white background
    dets = json.loads(res.paths["detections"].read_text())
    assert dets["count"] == 47 and dets["call"] == "47,XY,+21"
    assert all(len(d["karyogram_box"]) == 4 for d in dets["detections"])
    assert dets["image_file"] == "1055911.jpg" and (tmp_path / "k" / "1055911.jpg").read_bytes() == \
        (sample_dir / "images" / "1055911.jpg").read_bytes()             # the folder holds its image (review)
    assert dets["rows"][-1] == ["19", "20", "21", "22", "Y"] and dets["params"]["longest"] == 160.0
    rep = json.loads(res.paths["report_json"].read_text())
    assert rep["call"] == "47,XY,+21" and {"total_not_46", "extra_copy"} <= {f["code"] for f in rep["flags"]}
    assert next(r for r in rep["classes"] if r["class"] == "21")["count"] == 3
    html = res.paths["report_html"].read_text()
    assert "47,XY,+21" in html and "data:image/png;base64," in html and "extra_copy" in html
    upright = [p for p in res.placements if (p.box[3] - p.box[1]) >= (p.box[2] - p.box[0])]
    assert len(upright) >= 0.85 * len(res.placements)                   # bent ones may not be taller than wide


def test_planted_removed_chromosome_karyogram(tmp_path, sample_dir):
    ann = read_voc(sample_dir / "annotations" / "1054642.xml")
    boxes = [b for b in ann.boxes]
    victim = next(i for i, b in enumerate(boxes) if b.name == "3")
    res = build_karyogram(ann.image_path, boxes[:victim] + boxes[victim + 1:], tmp_path)
    assert res.call.iscn.startswith("45,") and res.call.iscn.endswith(",-3")
    assert res.call.has_flag("total_not_46") and res.call.has_flag("missing_copy")
    assert "missing_copy" in res.paths["report_html"].read_text()


def test_no_detections_report_says_so(tmp_path, sample_dir):
    res = build_karyogram(sample_dir / "images" / "1054642.jpg", [], tmp_path)
    assert res.call.iscn is None and res.call.flag_codes == ["no_detections"]
    assert res.paths["karyogram"].is_file()
    assert "No chromosomes were detected" in res.paths["report_html"].read_text()
    assert json.loads(res.paths["report_json"].read_text())["call"] is None
    assert json.loads(res.paths["detections"].read_text())["detections"] == []


def test_bad_input_errors(tmp_path, sample_dir):
    img = sample_dir / "images" / "1054642.jpg"
    with pytest.raises(KaryogramError, match="normalised"):
        build_karyogram(img, [Box(0.1, 0.1, 0.2, 0.3, "1"), Box(5000, 5000, 5100, 5100, "2")], tmp_path)
    with pytest.raises(KaryogramError, match="not found"):
        build_karyogram(tmp_path / "nope.jpg", [], tmp_path)


def test_class_agnostic_nms_keeps_best_of_one_chromosome():
    a = Box(0, 0, 20, 60, "21", score=0.9)
    b = Box(1, 0, 21, 60, "22", score=0.6)   # the same chromosome, second class
    c = Box(40, 0, 60, 60, "22", score=0.5)
    assert class_agnostic_nms([b, a, c], 0.7) == [a, c]
    assert len(class_agnostic_nms([a, b, c], 1.0)) == 3


# ---------------------------------------------------------------- CLI
def test_cli_karyogram_from_annotations(tmp_path, sample_dir, capsys):
    img = sample_dir / "images" / "1101021.jpg"
    rc = main(["karyogram", str(img), "--annotations", str(sample_dir / "annotations" / "1101021.xml"),
               "--out", str(tmp_path / "one")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "45,X" in out and "total_not_46" in out
    assert (tmp_path / "one" / "karyogram.png").is_file()
    imgs = [sample_dir / "images" / f"{s}.jpg" for s in ("1055253", "1091345")]
    rc = main(["karyogram", *map(str, imgs), "--annotations", str(sample_dir / "annotations"),
               "--out", str(tmp_path / "many"), "--rows", "denver"])
    assert rc == 0
    calls = (tmp_path / "many" / "calls.csv").read_text()
    assert "47,XX,+18" in calls and "47,XXX" in calls
    assert (tmp_path / "many" / "1055253" / "report.html").is_file()


def test_cli_karyogram_errors(tmp_path, sample_dir, capsys):
    img = sample_dir / "images" / "1101021.jpg"
    with pytest.raises(SystemExit):  # --model and --annotations exclude each other (neither: the shipped pair)
        main(["karyogram", str(img), "--model", str(tmp_path), "--annotations", str(tmp_path), "--out", str(tmp_path)])
    rc = main(["karyogram", str(tmp_path / "missing.jpg"), "--annotations", str(sample_dir / "annotations"),
               "--out", str(tmp_path)])
    assert rc == 2 and "not found" in capsys.readouterr().err


class _FakeDetector(Finder):
    """Stands in for karyotf.detect.Detector: returns ``boxes`` for any image."""

    boxes: list[Box] = []

    def __init__(self, export_dir, use="auto"):
        self.export_dir, self.model_name, self.kind = export_dir, "fake", "saved_model"

    def detect(self, image, min_score=0.0):
        return [b for b in self.boxes if b.score >= min_score]


@pytest.fixture
def fake_detect(monkeypatch):
    mod = types.ModuleType("karyotf.detect")
    mod.Detector = _FakeDetector
    monkeypatch.setitem(sys.modules, "karyotf.detect", mod)
    return _FakeDetector


def test_cli_model_no_detections_exits_cleanly(tmp_path, sample_dir, fake_detect, capsys, monkeypatch):
    monkeypatch.setattr(fake_detect, "boxes", [])
    rc = main(["karyogram", str(sample_dir / "images" / "1054642.jpg"), "--model", str(tmp_path / "exp"),
               "--out", str(tmp_path / "k")])
    assert rc == 0
    assert "no call" in capsys.readouterr().out
    assert "No chromosomes were detected" in (tmp_path / "k" / "report.html").read_text()


def test_cli_model_scored_detections(tmp_path, sample_dir, fake_detect, monkeypatch):
    ann = read_voc(sample_dir / "annotations" / "1055911.xml")
    dets = [b.with_coords(*b.as_tuple(), score=0.9 - 0.01 * (i % 10)) for i, b in enumerate(ann.boxes)]
    dets[0] = dets[0].with_coords(*dets[0].as_tuple(), score=0.4)                  # a weak one: outlined
    dup = dets[1].with_coords(*dets[1].as_tuple(), name="22", score=0.35)         # second class, same place
    junk = dets[2].with_coords(*dets[2].as_tuple(), score=0.1)                    # below --min-score
    monkeypatch.setattr(fake_detect, "boxes", dets + [dup, junk])
    rc = main(["karyogram", str(ann.image_path), "--model", str(tmp_path / "exp"), "--out", str(tmp_path / "k"),
               "--min-score", "0.3", "--low-score", "0.5"])
    assert rc == 0
    rep = json.loads((tmp_path / "k" / "report.json").read_text())
    assert rep["call"] == "47,XY,+21" and rep["source"]["kind"] == "model"
    assert "low_confidence" in {f["code"] for f in rep["flags"]}
    d = json.loads((tmp_path / "k" / "detections.json").read_text())
    assert d["count"] == 47 and sum(1 for x in d["detections"] if x.get("low_confidence")) == 1


# ---------------------------------------------------------------- karyogram dataset
def test_karyograms_dataset_round_trip(tmp_path, few_cells):
    from karyotf.karyogram.dataset import build_karyograms_dataset

    res = build_karyograms_dataset(few_cells, tmp_path / "kd", progress=False)
    assert res.written == 4 and res.skipped == 0
    src, _ = load_dataset(few_cells, progress=False)
    out, summary = load_dataset(tmp_path / "kd", progress=False)
    assert summary.used == 4 and summary.skipped == 0
    by_id = {a.image_id: a for a in out}
    for a in src:
        k = by_id[a.image_id]
        assert k.counts() == a.counts()                                  # every chromosome, its class kept
        assert k.image_path.suffix == ".png"
        for i, b in enumerate(k.boxes):
            assert 0 <= b.xmin < b.xmax <= k.width and 0 <= b.ymin < b.ymax <= k.height
            for c in k.boxes[i + 1:]:
                assert b.iou(c) == 0
        pix = np.asarray(Image.open(k.image_path).convert("L"))
        for b in k.boxes:  # each box holds its chromosome: dark pixels inside
            crop = pix[int(b.ymin):int(b.ymax), int(b.xmin):int(b.xmax)]
            assert (crop < 200).mean() > 0.2
    assert (tmp_path / "kd" / "calls.csv").is_file() and (tmp_path / "kd" / "manifest.json").is_file()


def test_karyograms_dataset_feeds_records(tmp_path, few_cells):
    from karyotf.karyogram.dataset import build_karyograms_dataset
    from karyotf.records import build_records, read_examples

    build_karyograms_dataset(few_cells, tmp_path / "kd", progress=False)
    rc = main(["karyograms-dataset", str(few_cells), "--out", str(tmp_path / "kd2"), "--labels", "--ideograms",
               "--format", "jpg"])
    assert rc == 0 and len(list((tmp_path / "kd2" / "images").glob("*.jpg"))) == 4
    build_records(tmp_path / "kd", tmp_path / "rec", progress=False)
    examples = list(read_examples(tmp_path / "rec"))
    assert len(examples) == 4
    truth = {a.image_id: a for a in load_dataset(tmp_path / "kd", progress=False)[0]}
    for _, ann in examples:
        assert ann.counts() == truth[ann.image_path.stem].counts()


def test_many_copies_of_one_class_are_capped_in_the_picture_not_in_the_call():
    names = normal_names("XX") + ["21"] * 8
    img, boxes = synthetic_cell(names, seed=2)
    from karyotf.karyogram import count_call

    call = count_call(boxes)  # 54 is beyond a plausible count: no ISCN string, the counts kept
    assert call.iscn is None and call.text == "no call: 54 chromosomes found" and call.counts["21"] == 10
    oriented, _ = orient_all(cut_out_all(img, boxes))
    lay = render(oriented, max_per_class=6)
    assert sum(p.name == "21" for p in lay.placements) == 6
    assert len(lay.placements) == len(boxes) - 4


def test_one_giant_false_box_does_not_shrink_the_cell():
    img, boxes = synthetic_cell(normal_names("XY"), seed=4)
    _, scale = orient_all(cut_out_all(img, boxes), longest=150)
    h, w = img.shape[:2]
    img = np.concatenate([img, np.full((200, w, 3), 250, np.uint8)])
    cv2.ellipse(img, (w // 2, h + 100), (w // 2 - 20, 60), 0, 0, 360, (110, 110, 110), -1)   # a nucleus
    nucleus = Box(15, h + 35, w - 15, h + 165, "1", score=0.2)                             # detected as a 1
    cuts = cut_out_all(img, boxes + [nucleus])
    assert cuts[-1].area > 0.8 * math.pi * (w // 2 - 20) * 60
    oriented, scale2 = orient_all(cuts, longest=150)
    assert scale2 == pytest.approx(scale, rel=0.1)


def test_from_annotation_with_image_array(tmp_path, sample_dir):
    ann = read_voc(sample_dir / "annotations" / "1054642.xml")
    arr = np.asarray(Image.open(ann.image_path).convert("RGB"))
    res = from_annotation(ann, tmp_path, image=arr)
    assert res.call.iscn == "46,XX" and res.source["image"].endswith("1054642.jpg")
    assert len(res.placements) == 46


# ---------------------------------------------------------------- nothing dropped unseen, no unreadable call
def test_a_confident_third_21_under_a_22_is_listed_and_flagged(tmp_path, sample_dir, fake_detect, monkeypatch):
    """The class-agnostic NMS used to drop it without a word and call a trisomy 46,XX."""
    from karyotf.karyogram import from_detector
    from karyotf.detect import Detector

    ann = read_voc(sample_dir / "annotations" / "1054642.xml")  # 46,XX
    dets = [b.with_coords(*b.as_tuple(), score=0.95) for b in ann.boxes]
    a22 = next(b for b in dets if b.name == "22")
    third21 = a22.with_coords(a22.xmin + 1, a22.ymin, a22.xmax + 1, a22.ymax, name="21", score=0.9)
    weak = dets[0].with_coords(*dets[0].as_tuple(), name="5", score=0.12)
    monkeypatch.setattr(fake_detect, "boxes", dets + [third21, weak])
    res = from_detector(Detector("exp"), ann.image_path, tmp_path / "k", min_score=0.3, nms_iou=0.7)
    assert res.call.iscn == "46,XX"  # the count still counts what was kept ...
    assert "suppressed_other_class" in res.call.flag_codes  # ... and says what it suppressed
    flag = next(f for f in res.call.flags if f.code == "suppressed_other_class")
    assert "a 21 (0.90) under a kept 22 (0.95)" in flag.message and set(flag.classes) == {"21", "22"}
    d = json.loads((tmp_path / "k" / "detections.json").read_text())
    sup = d["not_counted"]["suppressed"]
    assert len(sup) == 1 and sup[0]["class"] == "21" and sup[0]["kept_class"] == "22" and sup[0]["iou"] > 0.7
    assert d["detections"][sup[0]["kept_index"]]["class"] == "22"
    assert [x["score"] for x in d["not_counted"]["below_min_score"]] == [0.12]
    html = (tmp_path / "k" / "report.html").read_text()
    assert "Detections not counted" in html and "1 detection(s) below the minimum score" in html
    rep = json.loads((tmp_path / "k" / "report.json").read_text())
    assert rep["not_counted"] == d["not_counted"]


def test_a_weak_suppressed_box_is_listed_not_flagged(tmp_path, sample_dir, fake_detect, monkeypatch):
    from karyotf.karyogram import from_detector
    from karyotf.detect import Detector

    ann = read_voc(sample_dir / "annotations" / "1054642.xml")
    dets = [b.with_coords(*b.as_tuple(), score=0.95) for b in ann.boxes]
    same = dets[3].with_coords(*dets[3].as_tuple(), score=0.9)        # same class twice: the NMS's job
    weak = dets[4].with_coords(*dets[4].as_tuple(), name="Y", score=0.4)  # another class, below low_score
    monkeypatch.setattr(fake_detect, "boxes", dets + [same, weak])
    res = from_detector(Detector("exp"), ann.image_path, tmp_path / "k", min_score=0.3, low_score=0.5)
    assert res.call.iscn == "46,XX" and "suppressed_other_class" not in res.call.flag_codes
    assert len(json.loads((tmp_path / "k" / "detections.json").read_text())["not_counted"]["suppressed"]) == 2


def test_float_and_16_bit_arrays_are_not_black_or_white(sample_dir):
    from karyotf.karyogram.build import load_image

    rgb = np.asarray(Image.open(sample_dir / "images" / "1054642.jpg").convert("RGB"))
    as_float, _ = load_image(rgb.astype(np.float32) / 255.0)
    assert np.abs(as_float.astype(int) - rgb).max() <= 1  # was all black: cast without scaling
    as16, _ = load_image(rgb.astype(np.uint16) * 257)
    assert (as16 == rgb).all()  # was all white: clipped at 255


@pytest.mark.parametrize("names,text", [
    (["21"], "no call: 1 chromosome found"),
    (["1", "1", "2"], "no call: 3 chromosomes found"),
])
def test_too_few_chromosomes_is_no_call_with_the_counts(names, text):
    from karyotf.karyogram import count_call

    call = count_call([Box(10 * i, 0, 10 * i + 8, 30, n) for i, n in enumerate(names)])
    assert call.iscn is None and call.text == text and "?" not in call.text
    assert "no_call" in call.flag_codes and call.total == len(names)
    assert call.counts_text().startswith(f"1:{names.count('1')} 2:{names.count('2')} 3:0")


def test_cli_prints_no_call_with_counts(tmp_path, sample_dir, fake_detect, monkeypatch, capsys):
    ann = read_voc(sample_dir / "annotations" / "1054642.xml")
    monkeypatch.setattr(fake_detect, "boxes", [b.with_coords(*b.as_tuple(), score=0.9) for b in ann.boxes[:5]])
    assert main(["karyogram", str(ann.image_path), "--model", "exp", "--out", str(tmp_path / "k")]) == 0
    out = capsys.readouterr().out
    assert "no call: 5 chromosomes found" in out and "counts 1:" in out and ",-" not in out
