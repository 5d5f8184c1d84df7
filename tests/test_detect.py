"""karyotf.detect: Detector on hand-made exports with known outputs (fast), drawing, `karyotf detect`.

A fake export is a SavedModel / frozen graph whose serving function returns fixed OD API outputs, so the
pixel conversion, label mapping, padding, sorting, clipping and both loaders are checked exactly.  The real
models (ssd, faster_rcnn, rfcn) run through the Detector in tests/test_export.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from karyotf import classes
from karyotf.annotations import Box
from karyotf.errors import DetectError

# normalised [ymin, xmin, ymax, xmax], label id, score; unsorted on purpose; the last row overhangs the image
ROWS = [
    ([0.10, 0.20, 0.50, 0.60], 1, 0.40),
    ([0.00, 0.00, 0.25, 0.25], 23, 0.90),
    ([0.50, 0.50, 1.00, 1.00], 24, 0.70),
    ([-0.10, 0.90, 0.30, 1.20], 21, 0.20),
]
PADDING = 3  # rows past num_detections: garbage a detector must ignore


def _outputs(batch):
    import tensorflow as tf

    boxes = [r[0] for r in ROWS] + [[0.0, 0.0, 0.0, 0.0]] * PADDING
    labels = [float(r[1]) for r in ROWS] + [99.0] * PADDING
    scores = [r[2] for r in ROWS] + [0.99] * PADDING
    return {
        "detection_boxes": tf.tile(tf.constant([boxes], tf.float32), [batch, 1, 1]),
        "detection_classes": tf.tile(tf.constant([labels], tf.float32), [batch, 1]),
        "detection_scores": tf.tile(tf.constant([scores], tf.float32), [batch, 1]),
        "num_detections": tf.fill([batch], float(len(ROWS))),
        "raw_detection_scores": tf.zeros([batch, 7, 25]),
    }


def make_fake_export(out: Path, tf1_style: bool = False) -> Path:
    """An export dir like karyotf.export writes, around a serving function with fixed outputs.

    TF2 style: SavedModel input ``input_tensor`` [1, H, W, 3]; TF1 style: input ``inputs`` [None, H, W, 3].
    The frozen graph is the function frozen and renamed exactly as karyotf.export does for TF2 models.
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from karyotf.rundir import FROZEN_GRAPH
    from karyotf.serving import OUTPUT_NAMES, rename_frozen_io

    out.mkdir(parents=True)
    module = tf.Module()
    module.scale = tf.Variable(1.0)  # a variable, so freezing has something to fold
    batch = None if tf1_style else 1

    if tf1_style:
        @tf.function(input_signature=[tf.TensorSpec([batch, None, None, 3], tf.uint8)])
        def serve(inputs):
            d = _outputs(tf.shape(inputs)[0])
            d["detection_boxes"] = d["detection_boxes"] * module.scale
            return d
    else:
        @tf.function(input_signature=[tf.TensorSpec([batch, None, None, 3], tf.uint8)])
        def serve(input_tensor):
            d = _outputs(tf.shape(input_tensor)[0])
            d["detection_boxes"] = d["detection_boxes"] * module.scale
            return d

    module.serve = serve
    concrete = serve.get_concrete_function()
    tf.saved_model.save(module, str(out / "saved_model"), signatures=concrete)
    frozen = convert_variables_to_constants_v2(concrete)
    order = tf.nest.flatten({k: k for k in concrete.structured_outputs})
    outputs = {n: frozen.outputs[order.index(n)].name for n in OUTPUT_NAMES}
    graph_def = rename_frozen_io(frozen.graph.as_graph_def(), frozen.inputs[0].op.name, outputs)
    (out / FROZEN_GRAPH).write_bytes(graph_def.SerializeToString())
    classes.write_label_map(out / "label_map.pbtxt")
    (out / "karyotf.json").write_text(json.dumps({"model": "fake", "tf": "tf1" if tf1_style else "tf2"}))
    return out


@pytest.fixture(scope="module")
def fake_exports(tmp_path_factory):
    base = tmp_path_factory.mktemp("fake_exports")
    return {"tf2": make_fake_export(base / "tf2"), "tf1": make_fake_export(base / "tf1", tf1_style=True)}


def _expected(width: int, height: int) -> list[tuple[str, float, tuple[float, float, float, float]]]:
    result = []
    for (ymin, xmin, ymax, xmax), label, score in ROWS:
        c = [min(max(v, 0.0), 1.0) for v in (xmin, ymin, xmax, ymax)]
        result.append((classes.NAME_OF[label], score, (c[0] * width, c[1] * height, c[2] * width, c[3] * height)))
    return sorted(result, key=lambda r: -r[1])


@pytest.mark.parametrize("style", ["tf2", "tf1"])
@pytest.mark.parametrize("use", ["saved_model", "frozen_graph"])
def test_detector_returns_pixel_boxes_names_and_sorted_scores(fake_exports, style, use):
    from karyotf.detect import Detector

    det = Detector(fake_exports[style], use=use)
    assert det.kind == use and det.model_name == "fake" and det.tf == style
    assert det.label_map == {i: n for i, n in enumerate(classes.NAMES, start=1)}
    image = np.zeros((200, 300, 3), np.uint8)  # H=200, W=300: x scales by 300, y by 200
    boxes = det.detect(image)
    want = _expected(300, 200)
    assert len(boxes) == len(ROWS)  # the padded rows past num_detections are ignored
    assert all(isinstance(b, Box) for b in boxes)
    for box, (name, score, coords) in zip(boxes, want):
        assert box.name == name
        assert box.score == pytest.approx(score, abs=1e-6)
        assert box.as_tuple() == pytest.approx(coords, abs=1e-3)
    assert boxes[0].as_tuple() == pytest.approx((0, 0, 75, 50), abs=1e-3)  # the X: [0, .25] of 300 x 200
    assert [b.name for b in boxes] == ["X", "Y", "1", "21"]
    # the overhanging box is clipped to the image
    assert all(0 <= b.xmin <= b.xmax <= 300 and 0 <= b.ymin <= b.ymax <= 200 for b in boxes)


def test_min_score_and_batch_and_file_input(fake_exports, tmp_path):
    from PIL import Image

    from karyotf.detect import Detector

    det = Detector(fake_exports["tf2"])
    assert det.kind == "saved_model"  # auto prefers the SavedModel
    assert [b.name for b in det.detect(np.zeros((10, 10, 3), np.uint8), min_score=0.5)] == ["X", "Y"]
    grey = tmp_path / "grey.png"
    Image.fromarray(np.zeros((40, 80), np.uint8)).save(grey)  # a greyscale file becomes RGB
    first, second = det.detect_batch([grey, np.zeros((100, 100, 3), np.uint8)], min_score=0.6)
    assert first[0].as_tuple() == pytest.approx((0, 0, 20, 10), abs=1e-3)
    assert second[0].as_tuple() == pytest.approx((0, 0, 25, 25), abs=1e-3)
    assert det.last_seconds is not None and det.last_seconds > 0  # a measured time, not a placeholder


def test_auto_falls_back_to_frozen_graph(fake_exports, tmp_path):
    import shutil

    from karyotf.detect import Detector

    only_frozen = tmp_path / "frozen_only"
    shutil.copytree(fake_exports["tf2"], only_frozen)
    shutil.rmtree(only_frozen / "saved_model")
    det = Detector(only_frozen)
    assert det.kind == "frozen_graph"
    assert [b.name for b in det.detect(np.zeros((8, 8, 3), np.uint8))] == ["X", "Y", "1", "21"]
    with pytest.raises(DetectError, match="saved_model.pb: missing"):
        Detector(only_frozen, use="saved_model")


def test_unknown_class_id_is_a_clear_error(fake_exports, tmp_path):
    import shutil

    from karyotf.detect import Detector

    bad = tmp_path / "short_label_map"
    shutil.copytree(fake_exports["tf2"], bad)
    text = classes.label_map_text()
    (bad / "label_map.pbtxt").write_text(text[: text.index("item {\n  id: 23")])  # ids 1..22 only
    det = Detector(bad, use="frozen_graph")
    with pytest.raises(DetectError, match="no id 23"):
        det.detect(np.zeros((8, 8, 3), np.uint8))


def test_detector_load_errors(tmp_path):
    from karyotf.detect import Detector

    with pytest.raises(DetectError, match="no such export directory"):
        Detector(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DetectError, match="no label map"):
        Detector(tmp_path / "empty")
    classes.write_label_map(tmp_path / "empty" / "label_map.pbtxt")
    with pytest.raises(DetectError, match="frozen_inference_graph.pb: missing"):
        Detector(tmp_path / "empty")
    (tmp_path / "empty" / "frozen_inference_graph.pb").write_bytes(b"\x00garbage\xff" * 10)
    with pytest.raises(DetectError, match="frozen_inference_graph.pb"):
        Detector(tmp_path / "empty")
    with pytest.raises(DetectError, match="use="):
        Detector(tmp_path / "empty", use="onnx")


def test_read_label_map(tmp_path):
    from karyotf.detect import read_class_names as read_label_map

    p = tmp_path / "lm.pbtxt"
    p.write_text("# comment\nitem {\n  name: \"chrX\"\n  id: 1\n}\nitem { id: 2 name: 'A1' display_name: 'x' }\n")
    assert read_label_map(p) == {1: "X", 2: "1"}
    p.write_text("item { id: 1 name: 'banana' }\n")
    with pytest.raises(DetectError, match="item #0.*banana"):
        read_label_map(p)
    p.write_text("")
    with pytest.raises(DetectError, match="no `item"):
        read_label_map(p)


def test_load_image_shapes_and_errors(tmp_path):
    from karyotf.detect import load_image

    assert load_image(np.zeros((5, 6), np.uint8)).shape == (5, 6, 3)
    assert load_image(np.zeros((5, 6, 4), np.uint8)).shape == (5, 6, 3)
    as_float = load_image(np.full((2, 2, 3), 0.5, np.float32))
    assert as_float.dtype == np.uint8 and int(as_float[0, 0, 0]) == 127
    with pytest.raises(DetectError, match="expected HxWx3"):
        load_image(np.zeros((5, 6, 2), np.uint8))
    with pytest.raises(DetectError, match="no such image"):
        load_image(tmp_path / "nope.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(DetectError, match="not a readable image"):
        load_image(tmp_path / "bad.jpg")


def test_cli_detect_writes_json_and_pictures(fake_exports, sample_dir, tmp_path):
    from PIL import Image

    from karyotf.cli import main

    images = sorted((sample_dir / "images").glob("*.jpg"))[:2]
    out = tmp_path / "det"
    assert main(["detect", *map(str, images), "--model", str(fake_exports["tf1"]), "--out", str(out),
                 "--min-score", "0.5", "--use", "frozen_graph"]) == 0
    report = json.loads((out / "detections.json").read_text())
    assert report["model"] == "fake" and report["kind"] == "frozen_graph" and report["min_score"] == 0.5
    assert [Path(r["image"]).name for r in report["images"]] == [p.name for p in images]
    for r, path in zip(report["images"], images):
        with Image.open(path) as im:
            assert (r["width"], r["height"]) == im.size
        assert r["count"] == 2 and [d["class"] for d in r["detections"]] == ["X", "Y"]
        x = r["detections"][0]
        assert x["box"] == pytest.approx([0, 0, 0.25 * r["width"], 0.25 * r["height"]], abs=0.01)
        assert x["label"] == 23 and x["score"] == pytest.approx(0.9)
        assert r["seconds"] >= 0
        picture = out / f"{path.stem}_detections.png"
        assert Path(r["picture"]) == picture
        with Image.open(picture) as im:
            drawn = np.asarray(im.convert("RGB"))
        with Image.open(path) as im:
            original = np.asarray(im.convert("RGB"))
        assert drawn.shape == original.shape
        assert (drawn != original).any(axis=-1).sum() > 100  # boxes were drawn
    assert not list(out.glob(".*tmp"))  # nothing half-written left behind


def test_cli_detect_errors(fake_exports, tmp_path, capsys):
    from karyotf.cli import main

    assert main(["detect", str(tmp_path / "missing.jpg"), "--model", str(fake_exports["tf2"])]) == 2
    assert "missing.jpg: no such image file" in capsys.readouterr().err
    assert main(["detect", str(tmp_path / "x.jpg"), "--model", str(tmp_path / "no_export")]) == 2
