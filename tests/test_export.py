"""karyotf.export: the real flow per model (config -> train 1 step -> export -> Detector), and export's refusals.

Each model is trained and exported once per session (tiny images, batch 1, 8 proposals): the expensive part of
this file.  The refusal tests need no training except the one about a checkpoint that does not fit.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from karyotf import classes
from karyotf.errors import ExportError

MODELS = ("ssd", "faster_rcnn", "rfcn")
IMAGE_SIZE = 128


@pytest.fixture(scope="session")
def export_records(tmp_path_factory, sample_dir) -> Path:
    from karyotf.annotations import load_dataset
    from karyotf.records import build_records

    annotations, _ = load_dataset(sample_dir, progress=False)
    out = tmp_path_factory.mktemp("export_records")
    build_records(sample_dir, out, annotations=annotations[:6], progress=False)
    return out


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory, export_records):
    """model name -> a model dir trained for one step with karyotf.train (made on first use)."""
    from karyotf import pipelines, train

    cache: dict[str, Path] = {}

    def get(model: str) -> Path:
        if model not in cache:
            model_dir = tmp_path_factory.mktemp("runs") / model
            kw = {} if model == "ssd" else {"proposals": 8}
            pipelines.configure(model, export_records, model_dir, steps=1, batch=1, image_size=IMAGE_SIZE, **kw)
            result = train.train(model_dir, steps=1, progress=False)
            assert result.final_step == 1
            cache[model] = model_dir
        return cache[model]

    return get


@pytest.fixture(scope="session")
def exported_dir(tmp_path_factory, trained_dir):
    """model name -> its export dir (made on first use).

    Each export goes over an older export holding a stale file (it must be replaced whole) and names its
    checkpoint explicitly; ssd's goes through `karyotf export`, the others through the Python API.
    """
    from karyotf.cli import main
    from karyotf.export import export
    from karyotf.train import latest_checkpoint

    cache: dict[str, Path] = {}

    def get(model: str) -> Path:
        if model not in cache:
            model_dir = trained_dir(model)
            out = tmp_path_factory.mktemp("exported") / model
            out.mkdir()
            (out / "karyotf.json").write_text("{}")
            (out / "stale.txt").write_text("from an older export")
            prefix, step = latest_checkpoint(model_dir)
            if model == "ssd":
                assert main(["export", "--model-dir", str(model_dir), "--out", str(out), "--checkpoint", prefix]) == 0
            else:
                assert export(model_dir, out, checkpoint=prefix) == out
            cache[model] = out
        return cache[model]

    return get


def _well_formed(boxes, width, height):
    from karyotf.annotations import Box

    assert boxes, "an untrained model still returns its top-scoring boxes at min_score 0"
    assert all(isinstance(b, Box) for b in boxes)
    assert all(b.name in classes.NAMES for b in boxes)
    scores = [b.score for b in boxes]
    assert all(0.0 <= s <= 1.0 for s in scores) and scores == sorted(scores, reverse=True)
    assert all(0 <= b.xmin <= b.xmax <= width and 0 <= b.ymin <= b.ymax <= height for b in boxes)
    # pixels, not normalised coordinates: some box reaches past 1 px
    assert max(b.xmax for b in boxes) > 1.5 and max(b.ymax for b in boxes) > 1.5


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_train_export_detect(model, trained_dir, exported_dir, sample_dir):
    from google.protobuf import text_format
    from object_detection.protos import pipeline_pb2

    from karyotf.detect import Detector, load_image, read_class_names as read_label_map

    out = exported_dir(model)
    meta = json.loads((out / "karyotf.json").read_text())
    expected_tf = "tf1" if model == "faster_rcnn" else "tf2"
    assert meta["model"] == model and meta["tf"] == expected_tf and meta["checkpoint_step"] == 1
    assert meta["source_model_dir"] == str(trained_dir(model).resolve())
    assert meta["checkpoint"] == str((trained_dir(model) / ("model.ckpt-1" if model == "faster_rcnn" else "ckpt-1")))
    assert not (out / "stale.txt").exists()  # the older export was replaced whole
    assert meta["input_size"] and IMAGE_SIZE in meta["input_size"]
    assert (out / "saved_model" / "saved_model.pb").is_file() and (out / "saved_model" / "variables").is_dir()
    assert (out / "frozen_inference_graph.pb").stat().st_size > 1_000_000
    text_format.Merge((out / "pipeline.config").read_text(), pipeline_pb2.TrainEvalPipelineConfig())
    assert read_label_map(out / "label_map.pbtxt") == dict(enumerate(classes.NAMES, start=1))
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp dir left

    image_path = sorted((sample_dir / "images").glob("*.jpg"))[0]
    image = load_image(image_path)
    height, width = image.shape[:2]
    # the SavedModel everywhere; the frozen graph too for one TF1 and one TF2 model (rfcn's costs ~1 min more)
    uses = ("saved_model",) if model == "rfcn" else ("saved_model", "frozen_graph")
    found = {}
    for use in uses:
        det = Detector(out, use=use)
        assert det.kind == use and det.model_name == model and det.tf == expected_tf
        found[use] = det.detect(image_path)
        _well_formed(found[use], width, height)
    if len(found) == 2:  # the two formats are the same network
        a, b = found["saved_model"][:5], found["frozen_graph"][:5]
        assert [x.name for x in a] == [x.name for x in b]
        assert np.allclose([x.score for x in a], [x.score for x in b], atol=1e-4)
        assert np.allclose([x.as_tuple() for x in a], [x.as_tuple() for x in b], atol=0.5)


@pytest.mark.slow
def test_checkpoint_that_does_not_fit_leaves_old_export_untouched(trained_dir, tmp_path):
    """A checkpoint of another model shape: ExportError naming it; the previous export stays as it was."""
    from karyotf.export import export

    src = trained_dir("ssd")
    bad = tmp_path / "bad_run"
    shutil.copytree(src, bad)
    cfg = (bad / "pipeline.config").read_text()
    assert "num_classes: 24" in cfg
    three = bad / "three.pbtxt"  # a label map that agrees with the config, so the checkpoint is what is wrong
    three.write_text("".join(f"item {{ id: {i} name: '{i}' }}\n" for i in (1, 2, 3)))
    cfg = re.sub(r'label_map_path: ".*"', f'label_map_path: "{three}"', cfg.replace("num_classes: 24", "num_classes: 3"))
    (bad / "pipeline.config").write_text(cfg)
    out = tmp_path / "exported"
    out.mkdir()
    (out / "karyotf.json").write_text("{}")
    (out / "marker").write_text("old export")
    with pytest.raises(ExportError, match=r"ckpt-1: the checkpoint does not fit the model.*incompatible tensor"):
        export(bad, out)
    assert sorted(p.name for p in out.iterdir()) == ["karyotf.json", "marker"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad_run", "exported"]  # no temp dir left


@pytest.mark.slow
def test_tf1_checkpoint_in_a_tf2_config_is_refused(trained_dir, tmp_path):
    from karyotf.export import export

    tf1_run = trained_dir("faster_rcnn")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(trained_dir("ssd") / "pipeline.config", mixed / "pipeline.config")
    for f in tf1_run.glob("model.ckpt-1.*"):
        shutil.copy(f, mixed / f.name)
    with pytest.raises(ExportError, match="no TF2 detection-model weights"):
        export(mixed, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------- refusals (cheap)

def _template_config(model: str) -> str:
    from karyotf.pipelines import MODELS as SPECS

    return SPECS[model].template.read_text()


def test_missing_model_dir_and_missing_config(tmp_path):
    from karyotf.export import export

    with pytest.raises(ExportError, match="no such model directory"):
        export(tmp_path / "absent", tmp_path / "out")
    (tmp_path / "run").mkdir()
    with pytest.raises(ExportError, match="no pipeline.config"):
        export(tmp_path / "run", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_invalid_config_names_the_file(tmp_path):
    from karyotf.export import export

    run = tmp_path / "run"
    run.mkdir()
    (run / "pipeline.config").write_text("model { ssd { num_classes: 24 banana: 3 } }\n")
    with pytest.raises(ExportError, match=r"pipeline.config: not a valid OD API pipeline config.*banana"):
        export(run, tmp_path / "out")
    (run / "pipeline.config").write_text("train_config { batch_size: 2 }\n")
    with pytest.raises(ExportError, match="no model"):
        export(run, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_no_checkpoint(tmp_path):
    from karyotf.export import export

    run = tmp_path / "run"
    run.mkdir()
    (run / "pipeline.config").write_text(_template_config("ssd"))
    with pytest.raises(ExportError, match="no checkpoint found.*karyotf train"):
        export(run, tmp_path / "out")
    with pytest.raises(ExportError, match="no such checkpoint"):
        export(run, tmp_path / "out", checkpoint=run / "ckpt-7")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_tflite_only_for_ssd_and_out_must_be_an_export(tmp_path):
    from karyotf.export import export

    run = tmp_path / "run"
    run.mkdir()
    (run / "pipeline.config").write_text(_template_config("rfcn"))
    with pytest.raises(ExportError, match="--tflite is for SSD models only"):
        export(run, tmp_path / "out", tflite=True)
    (run / "pipeline.config").write_text(_template_config("ssd"))
    (run / "ckpt-2.index").write_bytes(b"")  # never read: the out dir check comes first
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    with pytest.raises(ExportError, match="not a karyotf export; refusing"):
        export(run, precious)
    assert (precious / "thesis.tex").read_text() == "do not delete"


def test_tf_mode_and_input_size_from_templates():
    from google.protobuf import text_format
    from object_detection.protos import pipeline_pb2

    from karyotf.export import input_size_of
    from karyotf.pipelines import tf_mode

    for model, mode in (("ssd", "tf2"), ("faster_rcnn", "tf1"), ("rfcn", "tf2")):
        cfg = pipeline_pb2.TrainEvalPipelineConfig()
        text_format.Merge(_template_config(model), cfg)
        assert tf_mode(cfg) == mode
        size = input_size_of(cfg)
        assert size is not None and len(size) == 2 and all(v > 0 for v in size)


def test_module_main_reports_errors(tmp_path, capsys):
    from karyotf.cli.export import main  # what `python -m karyotf.export` runs

    assert main(["--model-dir", str(tmp_path / "absent"), "--out", str(tmp_path / "out")]) == 2
    assert "no such model directory" in capsys.readouterr().err


def test_cli_export_errors(tmp_path, capsys):
    from karyotf.cli import main

    assert main(["export", "--model-dir", str(tmp_path / "absent"), "--out", str(tmp_path / "o")]) == 2
    assert "no such model directory" in capsys.readouterr().err
    assert main(["export"]) == 2
    assert "give a MODEL name" in capsys.readouterr().err


def test_label_map_must_match_num_classes(tmp_path):
    from google.protobuf import text_format
    from object_detection.protos import pipeline_pb2

    from karyotf.export import export

    run = tmp_path / "run"
    run.mkdir()
    cfg = pipeline_pb2.TrainEvalPipelineConfig()
    text_format.Merge(_template_config("ssd"), cfg)
    short = tmp_path / "three.pbtxt"
    short.write_text("".join(f"item {{ id: {i} name: '{i}' }}\n" for i in (1, 2, 3)))
    cfg.train_input_reader.label_map_path = str(short)
    (run / "pipeline.config").write_text(text_format.MessageToString(cfg))
    (run / "ckpt-1.index").write_bytes(b"")  # found, never read: the label map check comes first
    with pytest.raises(ExportError, match=r"three.pbtxt: label ids 1..3 \(3\) do not match the model's num_classes 24"):
        export(run, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_export_default_dirs():
    from karyotf.cli.detect import model_export_dir
    from karyotf.cli.export import export_dirs

    assert export_dirs("ssd", None, None) == (Path("runs/ssd"), Path("exported/ssd"))
    assert export_dirs(None, Path("elsewhere/run7"), None) == (Path("elsewhere/run7"), Path("exported/run7"))
    assert export_dirs("rfcn", Path("r"), Path("o")) == (Path("r"), Path("o"))
    assert model_export_dir("ssd") == Path("exported/ssd")
    assert model_export_dir(str(Path(__file__).parent)) == Path(__file__).parent


def test_agnostic_label_map_reads_the_24_class_records_as_one_class(export_records, tmp_path):
    """The OD API's own TfExampleDecoder, given the one-class map, reads every chromosome of the unchanged records
    as class 1; the 24-class map reads them as their own ids."""
    import tensorflow as tf

    from karyotf import odapi  # noqa: F401
    from karyotf.pipelines import label_map_classes
    from karyotf.records import split_files
    from object_detection.data_decoders.tf_example_decoder import TfExampleDecoder

    one = classes.write_label_map(tmp_path / "agnostic.pbtxt", agnostic=True)
    assert label_map_classes(one) == {1: classes.AGNOSTIC}
    serialized = next(iter(tf.data.TFRecordDataset([str(p) for p in split_files(export_records, "train")])))
    got = TfExampleDecoder(label_map_proto_file=str(one)).decode(serialized)["groundtruth_classes"].numpy()
    full = TfExampleDecoder(label_map_proto_file=str(export_records / "label_map.pbtxt")).decode(serialized)
    full = full["groundtruth_classes"].numpy()
    assert len(got) == len(full) >= 40 and set(got.tolist()) == {1} and len(set(full.tolist())) >= 20


@pytest.mark.slow
def test_agnostic_detector_finds_and_a_classifier_names(export_records, tmp_path):
    """`config --agnostic`: one class on the same records; its export is a Detector of 'chromosome' boxes that the
    karyogram and eval refuse alone (naming the fix) and accept with a classifier."""
    from karyotf import pipelines, train
    from karyotf.classify.train import ClassifierConfig
    from karyotf.classify.train import train as train_classifier
    from karyotf.classify.export import export as export_classifier
    from karyotf.classify.karyotyper import open_model
    from karyotf.cli import main
    from karyotf.detect import Detector
    from karyotf.errors import EvaluateError, KaryogramError
    from karyotf import scorefloor as evaluate_mod
    from karyotf.evaluate import evaluate
    from karyotf.karyogram import from_detector, karyograms
    from karyotf.records import read_examples

    model_dir = tmp_path / "agnostic"
    assert main(["config", "ssd", "--records", str(export_records), "--out", str(model_dir), "--agnostic",
                 "--steps", "1", "--batch", "1", "--image-size", str(IMAGE_SIZE)]) == 0
    cfg = pipelines.read_config(model_dir / "pipeline.config")
    assert pipelines.num_classes(cfg) == 1 and json.loads((model_dir / "karyotf.json").read_text())["agnostic"]
    assert cfg.train_input_reader.label_map_path == str((model_dir / pipelines.AGNOSTIC_LABEL_MAP).resolve())
    assert train.train(model_dir, steps=1, progress=False).final_step == 1
    out = tmp_path / "exported"
    assert main(["export", "--model-dir", str(model_dir), "--out", str(out)]) == 0
    det = Detector(out)
    assert det.agnostic and det.label_map == {1: classes.AGNOSTIC}
    data, ann = next(read_examples(export_records, "test"))
    image = tmp_path / "cell.jpg"
    image.write_bytes(data)
    assert {b.name for b in det.detect(data)} <= {classes.AGNOSTIC}
    assert main(["detect", str(image), "--model", str(out), "--out", str(tmp_path / "found")]) == 0  # a finder alone
    with pytest.raises(KaryogramError, match="does not name them .*--classifier"):
        from_detector(det, image, tmp_path / "k")
    with pytest.raises(EvaluateError, match="class-agnostic detector .*--classifier"):
        evaluate(out, export_records, limit=1, plots=False)
    run = tmp_path / "classifier"
    train_classifier(export_records, run, epochs=1, progress=False,
                     config=ClassifierConfig(size=32, width=4, embed=16, heads=2))
    clf = export_classifier(run, tmp_path / "clf")
    report = evaluate(out, export_records, limit=1, plots=False, finder=open_model(out, classifier=clf))
    assert report.images == 1 and report.model.endswith("+classifier")
    res = karyograms([image], tmp_path / "kk", model=open_model(out, classifier=clf), progress=False)
    assert all(b.name in classes.NAMES for b in res[0].boxes)
    assert res[0].source["min_score"] == 0.3  # no tuned floor yet: the default

    # the score floor chosen on held-out cells is stored with the export and used when none is given
    assert main(["eval", str(out), "--records", str(export_records), "--tune-min-score", "--limit", "1",
                 "--classifier", str(clf), "--no-plots"]) == 0
    meta = json.loads((out / "karyotf.json").read_text())
    assert meta["min_score"] in evaluate_mod.SCORE_GRID and meta["min_score_tuning"]["split"] == "val"
    assert len(meta["min_score_tuning"]["table"]) == len(evaluate_mod.SCORE_GRID)
    res = karyograms([image], tmp_path / "k3", model=open_model(out, classifier=clf), progress=False)
    cal = meta.get("chromosome_probability")  # fitted on the same boxes unless they all share one score
    if cal is not None:  # the joint labelling chooses which boxes above the candidate floor count
        assert cal["split"] == "val" and cal["p"] == sorted(cal["p"]) and len(cal["scores"]) == len(cal["p"])
        assert res[0].source["min_score"] == cal["floor"]
    else:
        assert res[0].source["min_score"] == meta["min_score"]
