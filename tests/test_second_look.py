"""The second look (issue 23): is a candidate box one whole, single chromosome?  Labels by geometry, inputs,
and a tiny run that trains on a planted detector's candidates, resumes, exports and reloads with the same
outputs."""
from __future__ import annotations

import hashlib
import json
import os
import signal

import numpy as np
import pytest

from karyotf.annotations import Box
from karyotf.classify import second_look as S


def _box(x0, y0, x1, y1, score=0.9):
    return Box(float(x0), float(y0), float(x1), float(y1), "chromosome", score=score)


def test_kinds_by_geometry_against_the_truth():
    truth = [Box(0, 0, 10, 40, "1"), Box(20, 0, 30, 40, "2"), Box(32, 0, 42, 40, "3")]
    cands = [_box(0, 0, 10, 40, 0.95),        # chromosome: matches truth 0
             _box(1, 1, 11, 41, 0.90),        # duplicate: IoU >= 0.5 with truth 0, already taken
             _box(0, 0, 10, 18, 0.80),        # fragment: inside truth 0
             _box(19, 0, 43, 40, 0.70),       # two: covers truth 1 and 2
             _box(100, 100, 120, 130, 0.60),  # background: no overlap
             _box(20, 0, 30, 40, 0.50),       # chromosome: matches truth 1 (free)
             _box(5, 20, 25, 60, 0.40)]       # misplaced: overlaps, neither inside nor covering: background
    got = [S.KINDS[k] for k in S.kinds(cands, truth)]
    assert got == ["chromosome", "duplicate", "fragment", "two", "background", "chromosome", "background"]
    assert S.kinds([], truth).shape == (0,)


def test_geometry_sees_duplicates_fragments_and_boxes_over_two():
    a, dup, frag, big = _box(0, 0, 10, 40, 0.9), _box(1, 1, 11, 41, 0.5), _box(0, 0, 10, 18, 0.4), \
        _box(-1, -1, 30, 42, 0.3)
    g = S.geometry([a, dup, frag, big])
    col = {n: i for i, n in enumerate(S.GEOMETRY)}
    assert g.shape == (4, len(S.GEOMETRY))
    assert g[0, col["iou_better"]] == 0 and g[1, col["iou_better"]] > 0.7          # a better box over the dup
    assert g[2, col["inside_other"]] == pytest.approx(1.0)                         # the fragment lies inside
    assert g[3, col["covers"]] == pytest.approx(1.0)                               # three boxes lie inside big
    np.testing.assert_allclose(g[:, col["score_rank"]], [0, 1 / 3, 2 / 3, 1], atol=1e-6)
    assert S.FEATURES[-len(S.GEOMETRY):] == S.GEOMETRY


class _PlantedDetector:
    """Finds each cell's truth boxes (scores 0.55-0.99) plus the negatives a detector makes: a fragment, a shifted
    second box, a box over two neighbours, a box on background; known by the image's hash."""

    def __init__(self, records):
        from karyotf import images
        from karyotf.records import read_examples

        self.truth = {}
        for data, ann in read_examples(records):
            self.truth[hashlib.sha1(images.load(data).tobytes()).hexdigest()] = ann.boxes
        self.export_dir, self.model_name, self.kind, self.info = "planted", "planted", "saved_model", {}

    def detect(self, image, min_score=0.0):
        key = hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()
        truth = self.truth[key]
        rng = np.random.default_rng(int(key[:8], 16))
        out = [_box(*b.as_tuple(), score=float(rng.uniform(0.55, 0.99))) for b in truth]
        for k in rng.choice(len(truth), size=3, replace=False):
            b = truth[k]
            out.append(_box(b.xmin, b.ymin, b.xmax, b.ymin + 0.45 * b.height, float(rng.uniform(0.2, 0.6))))
            out.append(_box(b.xmin + 0.2 * b.width, b.ymin, b.xmax + 0.2 * b.width, b.ymax,
                            float(rng.uniform(0.2, 0.6))))
        a, b = truth[0], min(truth[1:], key=lambda t: abs(t.xmin - truth[0].xmax) + abs(t.ymin - truth[0].ymin))
        out.append(_box(min(a.xmin, b.xmin), min(a.ymin, b.ymin), max(a.xmax, b.xmax), max(a.ymax, b.ymax), 0.5))
        h, w = image.shape[:2]
        out.append(_box(2, h - 30, 30, h - 2, 0.3))
        return [d for d in out if d.score >= min_score]


TINY = dict(size=24, width=4, embed=16, heads=2)


@pytest.fixture(scope="module")
def records(tmp_path_factory, sample_dir):
    from karyotf.records import build_records

    out = tmp_path_factory.mktemp("records")
    build_records(sample_dir, out, fractions=(0.6, 0.2, 0.2), progress=False)
    return out


@pytest.mark.slow
def test_second_look_trains_resumes_exports_and_reloads(records, tmp_path):
    det = _PlantedDetector(records)
    run = tmp_path / "run"
    cfg = S.SecondLookConfig(**TINY)

    def interrupt(step):
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    first = S.train(det, records, run, epochs=3, config=cfg, limit=5, val_limit=3, progress=False,
                    on_step=interrupt)
    assert first.interrupted and first.steps == 3 and (run / "ckpt" / "checkpoint").is_file()
    meta = json.loads((run / S.RUN_FILE).read_text())
    assert meta["state"]["step"] == 3 and meta["min_score"] == S.CANDIDATE_FLOOR
    counts = meta["counts"]["train"]
    assert counts["chromosome"] > 100 and counts["fragment"] >= 5 and counts["duplicate"] + counts["background"] >= 5
    assert counts["two"] >= 1
    second = S.train(det, records, run, epochs=3, config=cfg, limit=5, val_limit=3, progress=False)
    assert not second.interrupted and second.epochs == 3 and second.steps == 15
    assert [h["epoch"] for h in second.history] == [1, 2, 3] and second.best_val_loss is not None
    with pytest.raises(Exception, match="another shape"):
        S.train(det, records, run, epochs=4, config=S.SecondLookConfig(**{**TINY, "width": 8}), progress=False)
    out = S.export(run, tmp_path / "exported")
    info = json.loads((out / "karyotf.json").read_text())
    assert info["kind"] == "second_look" and info["kinds"] == list(S.KINDS) and info["features"] == list(S.FEATURES)
    from karyotf import images
    from karyotf.records import read_examples

    data, ann = next(iter(read_examples(records, "val")))
    arr = images.load(data)
    boxes = S.candidates(det, arr, S.CANDIDATE_FLOOR, S.CANDIDATE_NMS_IOU)
    a = S.SecondLook(out).probabilities(arr, boxes)
    b = S.SecondLook(run).probabilities(arr, boxes)
    assert a.shape == (len(boxes), len(S.KINDS)) and np.allclose(a.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(a, b, atol=1e-5)          # the export gives the run's best weights' outputs
    np.testing.assert_array_equal(a, S.SecondLook(out).probabilities(arr, boxes))   # reloads identically
    assert S.SecondLook(out).p_whole(arr, boxes).shape == (len(boxes),)
    with pytest.raises(Exception, match="neither a second-look export"):
        S.SecondLook(tmp_path)


def test_a_run_dir_without_its_run_file_names_the_file_and_the_command(tmp_path):
    from karyotf.classify import second_look, train
    from karyotf.errors import ClassifierError

    with pytest.raises(ClassifierError, match=r"no second_look\.json .*karyotf second-look train --out"):
        second_look.load_model(tmp_path)
    with pytest.raises(ClassifierError, match=r"no classifier\.json .*karyotf classifier train --out"):
        train.load_model(tmp_path)
