"""The yolo model (karyotf.yolo, KerasCV YOLOv8): config validation, 3-step train + resume + SIGTERM, export with
the OD API's serving contract, and the export through Detector, `karyotf eval` and `karyotf karyogram` unchanged.

One tiny model (YOLOv8-n at 128 px, batch 2) is configured and trained once per module on 6 sample cells.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest

from karyotf import classes
from karyotf.errors import ExportError, PipelineConfigError  # noqa: F401

IMAGE_SIZE = 128


@pytest.fixture(scope="module")
def records(tmp_path_factory, sample_dir) -> Path:
    from karyotf.annotations import load_dataset
    from karyotf.records import build_records

    annotations, _ = load_dataset(sample_dir, progress=False)
    out = tmp_path_factory.mktemp("yolo_records")
    build_records(sample_dir, out, annotations=annotations[:6], progress=False)
    return out


def _config(records, out, *extra) -> int:
    from karyotf.cli import main

    return main(["config", "yolo", "--records", str(records), "--out", str(out), "--backbone", "n",
                 "--image-size", str(IMAGE_SIZE), "--batch", "2", "--steps", "3", *extra])


@pytest.fixture(scope="module")
def yolo_run(records, tmp_path_factory):
    """`karyotf config yolo` + `karyotf train yolo --steps 2`, then karyotf.train.train to 3 (a resume)."""
    from karyotf.cli import main
    from karyotf.train import train

    model_dir = tmp_path_factory.mktemp("runs") / "yolo"
    assert _config(records, model_dir) == 0
    assert main(["train", "yolo", "--model-dir", str(model_dir), "--steps", "2", "--no-progress"]) == 0
    assert (model_dir / "ckpt-2.index").is_file()
    resumed = train(model_dir, 3, progress=False)
    return model_dir, resumed


@pytest.fixture(scope="module")
def yolo_export(yolo_run, tmp_path_factory):
    from karyotf.cli import main

    model_dir, _ = yolo_run
    out = tmp_path_factory.mktemp("exported") / "yolo"
    assert main(["export", "--model-dir", str(model_dir), "--out", str(out)]) == 0
    return out


# ------------------------------------------------------------------------------------------------ config

def _template():
    from karyotf.yolo import config

    cfg = config.load_template()
    cfg.pop("_comment", None)
    return cfg


def test_template_is_valid_and_thesis_like():
    cfg = _template()
    assert cfg["model"] == "yolo" and cfg["backbone"] in ("n", "s", "m")
    assert cfg["image_size"] % 32 == 0 and cfg["batch"] >= 1 and cfg["steps"] >= 1
    assert cfg["global_clipnorm"] > 0 and cfg["classification_loss_weight"] > 0.5  # the KerasCV pitfalls
    assert cfg["weights"] is None  # from scratch offline


@pytest.mark.parametrize("field, value, words", [
    ("backbone", "xl", "one of n, s, m"),
    ("image_size", 100, "multiple of 32"),
    ("image_size", "640", "multiple of 32"),
    ("batch", 0, "from 1 to 256"),
    ("learning_rate", -0.1, "> 0"),
    ("steps", 2.5, ">= 1"),
    ("optimizer", "lamb", "adam, sgd"),
    ("global_clipnorm", 0, "gradient clipping"),
    ("classification_loss_weight", True, "> 0"),
    ("augment", ["hflip", "rotate"], "hflip, vflip, rot90"),
    ("score_threshold", 1.5, "< 1"),
    ("weights", "", "local Keras backbone weights"),
])
def test_each_bad_field_is_named(field, value, words):
    from karyotf.yolo import config

    cfg = _template()
    cfg[field] = value
    with pytest.raises(PipelineConfigError) as err:
        config.validate(cfg, "x.json")
    text = str(err.value)
    assert text.startswith("x.json: invalid yolo config")
    assert f"{field}: {json.dumps(value)} is not valid" in text and words in text
    assert len(text.strip().splitlines()) == 2  # only that field


def test_every_bad_field_at_once_missing_and_unknown():
    from karyotf.yolo import config

    cfg = _template()
    cfg.update(batch=-1, backbone="q", colour="red")
    del cfg["steps"]
    with pytest.raises(PipelineConfigError) as err:
        config.validate(cfg, "x.json")
    text = str(err.value)
    for words in ("batch: -1", 'backbone: "q"', "steps: missing", "unknown field(s) colour"):
        assert words in text


def test_config_refusals(records, tmp_path, capsys):
    from karyotf.cli import main

    def refused(*args) -> str:
        assert main(list(args)) == 2
        return capsys.readouterr().err

    base = ["config", "yolo", "--records", str(records), "--out", str(tmp_path / "a")]
    assert "weights: " in refused(*base, "--weights", str(tmp_path / "nothing.h5"))
    assert "unknown preset 'yolo_v9'" in refused(*base, "--weights", "preset:yolo_v9")
    err = refused(*base, "--image-size", "100")
    assert "image_size: 100 is not valid" in err and "multiple of 32" in err
    assert "for yolo only" in refused("config", "ssd", "--records", str(records), "--out", str(tmp_path / "s"),
                                      "--backbone", "n")
    assert "records" in refused("config", "yolo", "--records", str(tmp_path / "none"), "--out", str(tmp_path / "a"))
    # checkpoints of another backbone in the model dir
    assert _config(records, tmp_path / "b") == 0
    (tmp_path / "b" / "ckpt-5.index").write_bytes(b"")
    err = refused("config", "yolo", "--records", str(records), "--out", str(tmp_path / "b"), "--backbone", "s")
    assert "another model shape" in err and "backbone n -> s" in err
    assert not list((tmp_path / "a").glob("*.json"))  # nothing written by a refused config


def test_config_writes_filled_json(records, tmp_path):
    from karyotf.pipelines import read_info
    from karyotf.rundir import is_yolo_dir, yolo_records as records_of
    from karyotf.yolo import config

    assert _config(records, tmp_path / "y", "--augment", "hflip,rot90", "--learning-rate", "0.002") == 0
    cfg = config.read(tmp_path / "y")
    assert cfg["num_classes"] == classes.NUM_CLASSES and cfg["augment"] == ["hflip", "rot90"]
    assert cfg["learning_rate"] == 0.002 and Path(cfg["records_dir"]) == records.resolve()
    assert is_yolo_dir(tmp_path / "y") and records_of(tmp_path / "y") == records.resolve()
    info = read_info(tmp_path / "y")
    assert info["model"] == "yolo" and info["batch"] == 2 and info["steps"] == 3


# ----------------------------------------------------------------------------------------------- data

def test_records_as_batches(records, tmp_path):
    """Boxes come out in pixels of the resized image (xyxy), classes 0-based, padding -1; flips move boxes."""
    import tensorflow as tf

    from karyotf.records import read_examples
    from karyotf.yolo.data import parse_fn, shard_files

    serialized = next(iter(tf.data.TFRecordDataset(shard_files(records, "train"))))
    _, ann = next(read_examples(records, "train"))
    image, y = parse_fn(IMAGE_SIZE, 100)(serialized)
    assert image.shape == (IMAGE_SIZE, IMAGE_SIZE, 3) and image.dtype == tf.float32
    n = len(ann.boxes)
    boxes, labels = y["boxes"].numpy(), y["classes"].numpy()
    assert (labels[n:] == -1).all() and (boxes[n:] == -1).all()
    assert sorted(labels[:n].astype(int) + 1) == sorted(b.label for b in ann.boxes)
    first = ann.boxes[0]
    expect = [first.xmin / ann.width * IMAGE_SIZE, first.ymin / ann.height * IMAGE_SIZE,
              first.xmax / ann.width * IMAGE_SIZE, first.ymax / ann.height * IMAGE_SIZE]
    np.testing.assert_allclose(boxes[0], expect, atol=1e-3)
    # hflip applied by hand: x -> size - x
    from karyotf.yolo.data import _hflip, _rot90

    norm = tf.constant([[0.1, 0.2, 0.3, 0.6]])
    _, flipped = _hflip(tf.zeros([4, 4, 3]), norm)
    np.testing.assert_allclose(flipped.numpy(), [[0.1, 0.4, 0.3, 0.8]], atol=1e-6)
    img = np.zeros([4, 4, 3], np.float32)
    img[0, 3] = 1  # top-right pixel -> top-left after a quarter turn counter-clockwise
    turned, box = _rot90(tf.constant(img), tf.constant([[0.0, 0.75, 0.25, 1.0]]))
    assert turned.numpy()[0, 0, 0] == 1
    np.testing.assert_allclose(box.numpy(), [[0.0, 0.0, 0.25, 0.25]], atol=1e-6)


# ---------------------------------------------------------------------------------------- train, resume

@pytest.mark.slow
def test_train_exact_steps_and_resume(yolo_run):
    import tensorflow as tf

    model_dir, resumed = yolo_run
    assert (resumed.start_step, resumed.final_step, resumed.target_steps) == (2, 3, 3)
    assert not resumed.interrupted and resumed.checkpoint.endswith("ckpt-3")
    reader = tf.train.load_checkpoint(str(model_dir / "ckpt-3"))
    assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 3
    # the optimizer state came back from ckpt-2: 3 updates in all, not 1 (a fresh start)
    iters = [k for k in reader.get_variable_to_shape_map() if k.startswith("optimizer/") and "iter" in k]
    assert iters and reader.get_tensor(iters[0]) == 3
    assert np.isfinite(resumed.losses["Loss/total_loss"])
    assert set(resumed.losses) >= {"Loss/total_loss", "Loss/box_loss", "Loss/class_loss"}
    events = list((model_dir / "train").glob("events.out.tfevents*"))
    assert events, "TensorBoard events in model_dir/train"
    # already there: nothing to do, no model built
    from karyotf.train import train

    again = train(model_dir, 3, progress=False)
    assert again.steps_run == 0 and again.final_step == 3


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint(yolo_run, tmp_path):
    from karyotf.train import train

    model_dir = tmp_path / "yolo"
    shutil.copytree(yolo_run[0], model_dir, ignore=shutil.ignore_patterns("export-*"))

    def on_step(step, losses):  # noqa: ARG001
        os.kill(os.getpid(), signal.SIGTERM)  # arrives as step 4 ends; the loop stops before step 5

    previous = signal.getsignal(signal.SIGTERM)
    result = train(model_dir, 10, progress=False, checkpoint_every=100000, callback=on_step)
    assert signal.getsignal(signal.SIGTERM) is previous
    assert result.interrupted and result.final_step == 4 and (model_dir / "ckpt-4.index").is_file()


@pytest.mark.slow
def test_local_weights_file_starts_the_backbone(tmp_path):
    """From scratch unless a local weights file is given: the backbone then starts from the file's values."""
    from karyotf.yolo import config
    from karyotf.yolo.model import build, build_backbone

    cfg = dict(_template(), backbone="n", image_size=64, num_classes=24, weights=None)
    source = build_backbone(cfg)
    path = tmp_path / "backbone.weights.h5"
    source.save_weights(str(path))
    cfg["weights"] = config.check_weights(str(path))
    model = build(cfg)
    fresh = build(dict(cfg, weights=None))
    got = {w.name: w.numpy() for w in model.backbone.weights}
    want = {w.name: w.numpy() for w in source.weights}
    kernels = [n for n in want if "kernel" in n]
    assert kernels and all(np.array_equal(got[n], want[n]) for n in kernels)
    assert not all(np.array_equal(w.numpy(), want[w.name]) for w in fresh.backbone.weights if "kernel" in w.name)
    # a file of another size is a clear error
    cfg_s = dict(cfg, backbone="s")
    from karyotf.errors import TrainError

    with pytest.raises(TrainError, match="does not fit a YOLOv8-s backbone"):
        build(cfg_s)


# --------------------------------------------------------------------------------------------- export

@pytest.mark.slow
def test_export_layout_and_serving_contract(yolo_export, records):
    import tensorflow as tf

    out = yolo_export
    for name in ("saved_model/saved_model.pb", "frozen_inference_graph.pb", "label_map.pbtxt", "karyotf.json",
                 "yolo.json", "checkpoint/ckpt-0.index"):
        assert (out / name).is_file(), name
    meta = json.loads((out / "karyotf.json").read_text())
    assert meta["model"] == "yolo" and meta["checkpoint_step"] == 3 and meta["tf"] == "tf2"
    from karyotf import rundir

    assert meta["schema"] == rundir.SCHEMA and meta["kind"] == "export"  # written by rundir.write_info, stamped
    assert rundir.read_info(out)["image_size"] == meta["input_size"][0]
    loaded = tf.saved_model.load(str(out / "saved_model"))
    sig = loaded.signatures["serving_default"]
    (key, spec), = sig.structured_input_signature[1].items()
    assert spec.dtype == tf.uint8 and spec.shape.rank == 4
    image = np.random.default_rng(0).integers(0, 255, (2, 150, 200, 3), dtype=np.uint8)
    res = sig(**{key: tf.constant(image)})
    assert set(res) >= {"detection_boxes", "detection_scores", "detection_classes", "num_detections"}
    boxes, scores, cls, n = (res[k].numpy() for k in ("detection_boxes", "detection_scores", "detection_classes",
                                                          "num_detections"))
    assert boxes.shape[0] == 2 and boxes.shape[2] == 4
    assert ((boxes >= 0) & (boxes <= 1)).all()
    k = int(n[0])
    assert k > 0
    assert (boxes[0, :k, 0] <= boxes[0, :k, 2]).all() and (boxes[0, :k, 1] <= boxes[0, :k, 3]).all()
    assert set(cls[0, :k].astype(int)) <= set(range(1, classes.NUM_CLASSES + 1))  # 1-based label map ids
    assert (np.diff(scores[0, :k]) <= 1e-6).all()


@pytest.mark.slow
def test_detector_runs_the_export_unchanged(yolo_export, sample_dir):
    from karyotf.detect import Detector

    image = sorted((sample_dir / "images").glob("*.jpg"))[0]
    from karyotf.images import load

    arr = load(image)
    height, width = arr.shape[:2]
    saved = Detector(yolo_export).detect(image)
    frozen = Detector(yolo_export, use="frozen_graph").detect(image)
    assert saved and len(saved) == len(frozen)
    assert all(b.name in classes.NAMES for b in saved)
    assert all(0 <= b.xmin <= b.xmax <= width and 0 <= b.ymin <= b.ymax <= height for b in saved)
    assert max(b.xmax for b in saved) > 1.5  # pixels, not normalised
    for a, b in zip(saved, frozen):
        assert a.name == b.name and abs(a.score - b.score) < 1e-4
        assert abs(a.xmin - b.xmin) < 0.5 and abs(a.ymax - b.ymax) < 0.5


@pytest.mark.slow
def test_eval_and_karyogram_unchanged(yolo_run, yolo_export, sample_dir, tmp_path):
    from karyotf.cli import main

    model_dir, _ = yolo_run
    # eval on the model dir: exported into model_dir/export-ckpt-3 and run on the records yolo.json names
    assert main(["eval", str(model_dir), "--no-plots", "--out", str(tmp_path / "eval")]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["model"] == "yolo" and metrics["split"] == "test"
    assert (model_dir / "export-ckpt-3" / "yolo.json").is_file()
    # the karyogram from the export
    image = sorted((sample_dir / "images").glob("*.jpg"))[0]
    assert main(["karyogram", str(image), "--model", str(yolo_export), "--out", str(tmp_path / "k")]) == 0
    found = list((tmp_path / "k").rglob("detections.json"))
    assert found
    det = json.loads(found[0].read_text())
    assert det["source"]["model"] == "yolo"
    every = det["detections"] + det["not_counted"]["suppressed"] + det["not_counted"]["below_min_score"]
    assert every, "an untrained model still gives boxes at the default min score or below it"
    for d in every:
        assert d["class"] in classes.NAMES and classes.NAMES.index(d["class"]) + 1 == d["label"]
        x0, y0, x1, y1 = d["box"]
        assert 0 <= x0 <= x1 <= det["width"] and 0 <= y0 <= y1 <= det["height"]
    assert max(d["box"][2] for d in every) > 1.5
    assert list((tmp_path / "k").rglob("karyogram.png"))


@pytest.mark.slow
def test_export_refusals(yolo_run, tmp_path):
    from karyotf.export import export

    model_dir, _ = yolo_run
    with pytest.raises(ExportError, match="ssd only"):
        export(model_dir, tmp_path / "x", tflite=True)
    with pytest.raises(ExportError, match="no such checkpoint"):
        export(model_dir, tmp_path / "x", checkpoint=str(model_dir / "ckpt-99"))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "mine.txt").write_text("not an export")
    with pytest.raises(ExportError, match="not a karyotf export"):
        export(model_dir, busy)
    assert (busy / "mine.txt").is_file()
