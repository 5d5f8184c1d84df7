"""karyotf.find (detect -> floor -> class-agnostic NMS, one typed result) and detections.json's one schema."""
from __future__ import annotations

import json

import pytest

from karyotf.annotations import Box
from karyotf.defaults import MIN_SCORE
from karyotf.find import Finder, Found, Removed, find, sift
from karyotf.karyogram.detections import SCHEMA, CellDetections


def _box(x, name, score):
    return Box(x, 0.0, x + 10.0, 30.0, name, score=score)


class _Planted(Finder):
    """A detector that finds the planted boxes in any image."""

    def __init__(self, boxes, info=None):
        self.boxes, self.export_dir, self.model_name = boxes, "planted", "planted"
        self.info = info or {}

    def detect(self, image, min_score=0.0):
        return sorted((b for b in self.boxes if b.score >= min_score), key=lambda b: -b.score)


def test_sift_keeps_removes_and_floors_each_box_once():
    a, dup, weak, far = _box(0, "21", 0.9), _box(1, "22", 0.8), _box(100, "1", 0.2), _box(50, "X", 0.6)
    found = sift([weak, dup, far, a], min_score=0.3, nms_iou=0.5)
    assert found.boxes == [a, far]                       # kept, best score first
    assert found.suppressed == [Removed(dup, a, pytest.approx(dup.iou(a)))]
    box, by, iou = found.suppressed[0]                   # unpacks as (removed, kept, IoU)
    assert (box, by) == (dup, a) and iou > 0.5
    assert found.below == [weak]
    assert sorted(found.everything(), key=id) == sorted([a, dup, weak, far], key=id)  # nothing dropped unseen
    assert sift([a, dup], 0.3, 1.0).suppressed == []    # nms_iou 1: no NMS


def test_a_finder_floor_comes_from_its_export_else_the_default():
    boxes = [_box(0, "21", 0.9), _box(100, "1", 0.35)]
    plain = _Planted(boxes)
    assert plain.min_score == MIN_SCORE and plain.names
    assert plain.describe() == {"from": "planted", "model": "planted"}
    tuned = _Planted(boxes, info={"min_score": 0.4})
    assert tuned.min_score == 0.4
    found = tuned.find(image=None)
    assert isinstance(found, Found) and found.min_score == 0.4
    assert [b.score for b in found.boxes] == [0.9] and [b.score for b in found.below] == [0.35]
    assert find(plain, None, 0.3, 0.5).boxes == boxes    # the free function: the same three steps


def test_detections_json_round_trip_and_versions(tmp_path):
    cell = CellDetections(image="cell.jpg", width=640, height=480, source={"kind": "model"}, call="46,XY",
                          text="46,XY", detections=[{**_box(0, "21", 0.9).to_dict(), "index": 0}],
                          not_counted={"below_min_score": [_box(100, "1", 0.2).to_dict()]},
                          image_file="cell.jpg", rows=[["1", "2"]], params={"overlap_iou": 0.5})
    path = cell.write(tmp_path / "detections.json")
    data = json.loads(path.read_text())
    assert data["schema"] == SCHEMA and data["count"] == 1
    again = CellDetections.read(path)
    assert again == cell and again.boxes()[0].name == "21"
    assert again.not_counted_entries() == [{"class": "1", "box": [100.0, 0.0, 110.0, 30.0], "score": 0.2,
                                            "why": "below_min_score"}]
    old = {k: v for k, v in data.items() if k not in ("schema", "not_counted", "rows", "params", "image_file")}
    assert CellDetections.from_dict(old).not_counted == {}     # version 0 files read too
    with pytest.raises(ValueError, match="newer"):
        CellDetections.from_dict({**data, "schema": SCHEMA + 1})
    with pytest.raises(ValueError, match="width"):
        CellDetections.from_dict({"image": "x"})
