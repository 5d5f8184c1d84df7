"""Pipeline templates, `karyotf config` filling and its guards, latest_checkpoint, odapi.run_isolated.

No training here (see test_train.py): records dirs are faked with correctly named shard files, which is all
config filling looks at.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from karyotf import odapi, pipelines
from karyotf.classes import write_label_map
from karyotf.errors import KaryotfError, PipelineConfigError, RecordsError
from karyotf.train import latest_checkpoint


def _records(root: Path, splits=("train", "val", "test"), label_map: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for s in splits:
        (root / f"{s}.record-00000-of-00001").write_bytes(b"")
    if label_map is None:
        write_label_map(root / "label_map.pbtxt")
    else:
        (root / "label_map.pbtxt").write_text(label_map)
    return root


def _label_map(ids) -> str:
    return "".join(f"item {{\n  id: {i}\n  name: 'c{i}'\n}}\n" for i in ids)


def _touch_ckpt(prefix: Path, pipeline_from: Path | None = None) -> Path:
    prefix.parent.mkdir(parents=True, exist_ok=True)
    Path(str(prefix) + ".index").write_bytes(b"")
    Path(str(prefix) + ".data-00000-of-00001").write_bytes(b"")
    if pipeline_from is not None:
        (prefix.parent / "pipeline.config").write_text(pipeline_from.read_text())
    return prefix


@pytest.fixture
def records(tmp_path) -> Path:
    return _records(tmp_path / "records")


# ---------------------------------------------------------------------------------------------------- templates

@pytest.mark.parametrize("model", list(pipelines.MODELS))
def test_template_is_a_valid_config_matching_the_registry(model):
    s = pipelines.MODELS[model]
    assert s.template.is_file() and s.template.parent.name == "pipelines"
    cfg = pipelines.load_template(model)
    assert pipelines.tf_mode(cfg) == s.tf
    assert pipelines.num_classes(cfg) == 24
    assert cfg.train_config.batch_size == s.batch == (4 if model == "rfcn" else 12)  # rfcn: RAM, see template
    assert pipelines.learning_rate(cfg) == pytest.approx(0.0002)
    assert pipelines.image_size(cfg) == s.image_size
    assert not cfg.train_config.fine_tune_checkpoint  # no pretrained weights offline
    assert pipelines.augmentation_names(cfg) == ["random_horizontal_flip", "random_vertical_flip",
                                                 "random_rotation90"]


def test_template_models_are_the_thesis_models():
    ssd, frcnn, rfcn = (pipelines.load_template(m) for m in ("ssd", "faster_rcnn", "rfcn"))
    assert pipelines.feature_extractor_type(ssd) == "ssd_mobilenet_v2_keras"
    anchors = ssd.model.ssd.anchor_generator.ssd_anchor_generator
    assert (anchors.min_scale, anchors.max_scale) == pytest.approx((0.04, 0.35))
    assert pipelines.feature_extractor_type(frcnn) == "faster_rcnn_inception_v2"
    assert pipelines.second_stage(frcnn) == "mask_rcnn_box_predictor"
    assert pipelines.feature_extractor_type(rfcn) == "faster_rcnn_resnet101_keras"
    assert pipelines.second_stage(rfcn) == "rfcn_box_predictor"


# ------------------------------------------------------------------------------------------------------ filling

def test_configure_fills_and_writes_a_valid_pipeline(tmp_path, records):
    from object_detection.utils import config_util

    out = tmp_path / "runs" / "ssd"
    res = pipelines.configure("ssd", records, out, steps=40, batch=3, image_size=256, learning_rate=0.001,
                              augment=["hflip", "rot90"])
    cfg = pipelines.read_config(res.pipeline_path)
    assert cfg.train_config.num_steps == 40 and cfg.train_config.batch_size == 3
    r = cfg.model.ssd.image_resizer.fixed_shape_resizer
    assert (r.height, r.width) == (256, 256)
    cos = cfg.train_config.optimizer.momentum_optimizer.learning_rate.cosine_decay_learning_rate
    assert cos.learning_rate_base == pytest.approx(0.001) and cos.total_steps == 40
    assert cos.warmup_steps <= cos.total_steps and cos.warmup_learning_rate <= cos.learning_rate_base
    assert pipelines.augmentation_names(cfg) == ["random_horizontal_flip", "random_rotation90"]
    train_path = cfg.train_input_reader.tf_record_input_reader.input_path[0]
    assert Path(train_path).is_absolute() and train_path.endswith("train.record-?????-of-00001")
    assert cfg.eval_input_reader[0].tf_record_input_reader.input_path[0].endswith("val.record-?????-of-00001")
    assert cfg.train_input_reader.label_map_path == str((records / "label_map.pbtxt").resolve())
    # the OD API's own reader accepts it
    configs = config_util.get_configs_from_pipeline_file(str(res.pipeline_path))
    assert configs["model"].ssd.num_classes == 24
    info = res.info
    assert info["model"] == "ssd" and info["tf"] == "tf2" and info["num_classes"] == 24
    assert (info["image_size"], info["batch"], info["steps"]) == (256, 3, 40)
    assert pipelines.read_info(out) == info
    assert "ssd" in res.text()


def test_num_classes_come_from_the_label_map(tmp_path):
    rec = _records(tmp_path / "rec3", label_map=_label_map([1, 2, 3]))
    res = pipelines.configure("rfcn", rec, tmp_path / "m")
    assert pipelines.num_classes(pipelines.read_config(res.pipeline_path)) == 3 == res.info["num_classes"]


def test_two_stage_image_size_and_proposals(tmp_path, records):
    res = pipelines.configure("faster_rcnn", records, tmp_path / "m", image_size=320, proposals=16)
    f = pipelines.read_config(res.pipeline_path).model.faster_rcnn
    k = f.image_resizer.keep_aspect_ratio_resizer
    assert (k.min_dimension, k.max_dimension, k.pad_to_max_dimension) == (320, 320, True)
    assert f.first_stage_max_proposals == 16 and f.second_stage_batch_size <= 16
    assert res.info["tf"] == "tf1"
    with pytest.raises(PipelineConfigError, match="two-stage"):
        pipelines.configure("ssd", records, tmp_path / "s", proposals=16)


def test_augment_none_and_unknown(tmp_path, records):
    res = pipelines.configure("ssd", records, tmp_path / "m", augment=["none"])
    assert pipelines.augmentation_names(pipelines.read_config(res.pipeline_path)) == []
    with pytest.raises(KaryotfError):
        pipelines.configure("ssd", records, tmp_path / "m2", augment=["no_such_op"])


def test_eval_reader_falls_back_when_there_is_no_val_split(tmp_path):
    rec = _records(tmp_path / "r", splits=("train", "test"))
    res = pipelines.configure("ssd", rec, tmp_path / "m")
    path = pipelines.read_config(res.pipeline_path).eval_input_reader[0].tf_record_input_reader.input_path[0]
    assert "test.record-" in path


# ------------------------------------------------------------------------------------------------------- guards

@pytest.mark.parametrize("ids,match", [([0, 1, 2], "1..N"), ([1, 2, 4], "1..N"), ([], "no items")])
def test_bad_label_maps_are_refused(tmp_path, ids, match):
    rec = _records(tmp_path / "r", label_map=_label_map(ids))
    with pytest.raises(PipelineConfigError, match=match):
        pipelines.configure("ssd", rec, tmp_path / "m")


def test_missing_records_and_label_map(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(RecordsError, match="karyotf records"):
        pipelines.configure("ssd", tmp_path / "empty", tmp_path / "m")
    rec = _records(tmp_path / "r")
    (rec / "label_map.pbtxt").unlink()
    with pytest.raises(PipelineConfigError, match="label map not found"):
        pipelines.configure("ssd", rec, tmp_path / "m")


def test_unknown_model_and_bad_values(tmp_path, records):
    with pytest.raises(PipelineConfigError, match="unknown model"):
        pipelines.configure("yolo", records, tmp_path / "m")
    for kwargs in ({"steps": 0}, {"batch": 0}, {"image_size": 8}, {"learning_rate": 0.0}):
        with pytest.raises(PipelineConfigError):
            pipelines.configure("ssd", records, tmp_path / "m", **kwargs)


def test_num_classes_change_with_checkpoints_in_the_model_dir_is_refused(tmp_path, records):
    out = tmp_path / "m"
    pipelines.configure("ssd", records, out, steps=10)
    _touch_ckpt(out / "ckpt-5")
    # same model shape: re-configuring (e.g. more steps) is fine
    pipelines.configure("ssd", records, out, steps=20, image_size=320)
    rec3 = _records(tmp_path / "rec3", label_map=_label_map([1, 2, 3]))
    with pytest.raises(PipelineConfigError, match=r"num_classes 24 -> 3") as err:
        pipelines.configure("ssd", rec3, out)
    assert "ckpt-5" in str(err.value) and "--out" in str(err.value)
    with pytest.raises(PipelineConfigError, match="feature_extractor"):
        pipelines.configure("rfcn", records, out)
    assert pipelines.read_info(out)["num_classes"] == 24  # nothing overwritten


def test_checkpoints_without_pipeline_are_refused(tmp_path, records):
    _touch_ckpt(tmp_path / "m" / "ckpt-1")
    with pytest.raises(PipelineConfigError, match="no pipeline.config"):
        pipelines.configure("ssd", records, tmp_path / "m")


def test_fine_tune_checkpoint_paths(tmp_path, records):
    from object_detection.protos import train_pb2

    ssd_dir = tmp_path / "old_ssd"
    ssd_ckpt = _touch_ckpt(ssd_dir / "ckpt-4", pipeline_from=pipelines.MODELS["ssd"].template)
    res = pipelines.configure("ssd", records, tmp_path / "new", fine_tune=ssd_ckpt)
    tc = pipelines.read_config(res.pipeline_path).train_config
    assert tc.fine_tune_checkpoint == str(ssd_ckpt.resolve())
    assert tc.fine_tune_checkpoint_type == "detection"
    assert tc.fine_tune_checkpoint_version == train_pb2.CheckpointVersion.V2
    # fine-tuning keeps the thesis's learning rate; from scratch, ssd gets its measured from-scratch rate
    assert pipelines.learning_rate(pipelines.read_config(res.pipeline_path)) == pytest.approx(0.0002)
    scratch = pipelines.configure("ssd", records, tmp_path / "scratch")
    assert pipelines.learning_rate(pipelines.read_config(scratch.pipeline_path)) == pytest.approx(0.04)
    assert scratch.info["learning_rate"] == pytest.approx(0.04)
    explicit = pipelines.configure("ssd", records, tmp_path / "explicit", learning_rate=0.001)
    assert pipelines.learning_rate(pipelines.read_config(explicit.pipeline_path)) == pytest.approx(0.001)
    # no pipeline.config beside it: a backbone (classification) checkpoint
    bare = _touch_ckpt(tmp_path / "backbone" / "ckpt-1")
    res = pipelines.configure("ssd", records, tmp_path / "new2", fine_tune=bare)
    assert pipelines.read_config(res.pipeline_path).train_config.fine_tune_checkpoint_type == "classification"
    bad = [
        (ssd_dir, "not a directory.*ckpt-4"),
        (tmp_path / "old_ssd" / "ckpt-4.index", "without .index"),
        (tmp_path / "old_ssd" / "model.ckpt", "must be DIR/ckpt-N"),
        (tmp_path / "old_ssd" / "weights.h5", "must be DIR/ckpt-N"),
        (tmp_path / "old_ssd" / "ckpt-9", "not found"),
    ]
    for path, match in bad:
        with pytest.raises(PipelineConfigError, match=match):
            pipelines.configure("ssd", records, tmp_path / "new3", fine_tune=path)
    with pytest.raises(PipelineConfigError, match="model dir itself"):
        pipelines.configure("ssd", records, ssd_dir, fine_tune=ssd_ckpt)
    # TF1 model: model.ckpt-N, version V1; a TF2 ckpt-N is refused
    tf1 = _touch_ckpt(tmp_path / "fr" / "model.ckpt-7", pipeline_from=pipelines.MODELS["faster_rcnn"].template)
    res = pipelines.configure("faster_rcnn", records, tmp_path / "fr2", fine_tune=tf1)
    tc = pipelines.read_config(res.pipeline_path).train_config
    assert tc.fine_tune_checkpoint_version == train_pb2.CheckpointVersion.V1
    assert tc.fine_tune_checkpoint_type == "detection"
    with pytest.raises(PipelineConfigError, match="TF2 checkpoint"):
        pipelines.configure("faster_rcnn", records, tmp_path / "fr3", fine_tune=ssd_ckpt)
    # a detection checkpoint of another architecture
    rfcn_ckpt = _touch_ckpt(tmp_path / "rf" / "ckpt-2", pipeline_from=pipelines.MODELS["rfcn"].template)
    with pytest.raises(PipelineConfigError, match="cannot fine-tune"):
        pipelines.configure("ssd", records, tmp_path / "new4", fine_tune=rfcn_ckpt)


def test_template_syntax_error_names_the_file(tmp_path):
    bad = tmp_path / "pipeline.config"
    bad.write_text("model { ssd { num_clases: 3 } }")
    with pytest.raises(PipelineConfigError, match=r"pipeline.config.*num_clases"):
        pipelines.read_config(bad)


def test_update_steps_rewrites_num_steps_and_schedule(tmp_path, records):
    out = tmp_path / "m"
    pipelines.configure("rfcn", records, out, steps=5)
    pipelines.update_steps(out, 300)
    cfg = pipelines.read_config(out / "pipeline.config")
    cos = cfg.train_config.optimizer.momentum_optimizer.learning_rate.cosine_decay_learning_rate
    assert cfg.train_config.num_steps == 300 == cos.total_steps == pipelines.read_info(out)["steps"]
    assert cos.warmup_steps == 15


# --------------------------------------------------------------------------------------------- latest_checkpoint

def test_latest_checkpoint_both_kinds(tmp_path):
    assert latest_checkpoint(tmp_path / "none") is None
    assert latest_checkpoint(tmp_path) is None
    for n in (2, 10, 9):
        _touch_ckpt(tmp_path / "a" / f"ckpt-{n}")
    assert latest_checkpoint(tmp_path / "a") == (str(tmp_path / "a" / "ckpt-10"), 10)
    for n in (0, 30):
        _touch_ckpt(tmp_path / "b" / f"model.ckpt-{n}")
    (tmp_path / "b" / "model.ckpt-99.meta").write_bytes(b"")  # no index: not a checkpoint
    assert latest_checkpoint(tmp_path / "b") == (str(tmp_path / "b" / "model.ckpt-30"), 30)


# ------------------------------------------------------------------------------------------------------------ CLI

def test_cli_config(tmp_path, records, capsys):
    from karyotf.cli import main

    out = tmp_path / "m"
    assert main(["config", "faster_rcnn", "--records", str(records), "--out", str(out), "--steps", "7",
                 "--batch", "2", "--augment", "vflip"]) == 0
    assert "faster_rcnn" in capsys.readouterr().out
    info = pipelines.read_info(out)
    assert (info["steps"], info["batch"], info["augment"]) == (7, 2, ["random_vertical_flip"])
    assert main(["config", "ssd", "--records", str(records), "--out", str(out / "x"),
                 "--fine-tune", str(tmp_path)]) == 2
    assert "checkpoint prefix" in capsys.readouterr().err


# -------------------------------------------------------------------------------------------------- run_isolated

@pytest.mark.slow  # spawns TF1 and TF2 child processes (the fast lane skips it)
def test_run_isolated_modes_results_and_errors(tmp_path, records):
    assert odapi.run_isolated("tf1", "karyotf.odapi:mode") == "tf1"
    # a KaryotfError comes back as the same class with its message
    with pytest.raises(PipelineConfigError, match="unknown model 'nope'"):
        odapi.run_isolated("tf2", "karyotf.pipelines:configure", model="nope", records_dir=records)
    with pytest.raises(ValueError):
        odapi.run_isolated("tf3", "karyotf.odapi:mode")


def test_isolated_errors_are_rebuilt_by_class():
    from karyotf.errors import AnnotationError

    exc = odapi._rebuild_error("karyotf.errors", "AnnotationError", "a.xml, object #2: bad", "tb")
    assert type(exc) is AnnotationError and str(exc) == "a.xml, object #2: bad"
    other = odapi._rebuild_error("builtins", "TypeError", "nope", "Traceback ...")
    assert isinstance(other, odapi.IsolatedError) and "TypeError: nope" in str(other) and "Traceback" in str(other)
