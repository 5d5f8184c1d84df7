"""The model registry and pipeline.config filling: template -> filled, proto-validated ``runs/MODEL/pipeline.config``.

A template in the repo's top-level ``pipelines/`` is itself a valid OD API ``TrainEvalPipelineConfig`` (text
proto).  :func:`configure` parses it with the OD API's ``pipeline_pb2``, sets the fields karyotf owns (number of
classes from the records' label map, record and label map paths, steps, batch, image size, learning rate,
augmentation, fine-tune checkpoint: a local ``ckpt-N`` prefix, or ``coco`` for the model zoo checkpoint that
:mod:`karyotf.zoo` registers for the model), checks the result, and writes ``pipeline.config`` and ``karyotf.json``
into the model dir.  It refuses combinations the OD API would only fail on later, or silently get wrong:
checkpoints of another shape already in the model dir, a fine-tune checkpoint that is not ``.../ckpt-N``,
a label map whose ids do not start at 1, a TF1 extractor in a TF2 template, and so on.

Only protobuf is needed here (the OD API's protos, through :mod:`karyotf.odapi` inside the functions that parse,
so that importing the registry, e.g. for ``karyotf --help``, loads no TensorFlow).  What a run dir holds and how
it is read (pipeline.config, karyotf.json, checkpoints, the label map) is :mod:`karyotf.rundir`'s.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from . import classes as _classes, rundir, zoo
from .augment import odapi_augmentation
from .errors import PipelineConfigError
from .io import atomic_write_text
from .paths import TEMPLATES_DIR
from .records import split_files, split_pattern
from .rundir import parse_config, read_config, read_info, records_dir_of  # noqa: F401  (the run dir's readers)

# Imports inside functions, and why: protobuf (loaded with the OD API's protos when a config is parsed); karyotf.odapi
# (importing it loads TensorFlow and applies the OD API's compatibility shims: only where TensorFlow is about to run).

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    """One trainable model: its template and the defaults ``karyotf config`` fills in."""

    name: str
    template: Path
    tf: str  # "tf1" (slim extractor, estimator, own process) or "tf2" (Keras extractor, eager loop)
    image_size: int
    batch: int
    steps: int
    learning_rate: float  # the thesis's, for fine-tuning pretrained weights (--fine-tune)
    description: str
    scratch_learning_rate: float | None = None  # from scratch (no --fine-tune), where measured; else learning_rate


# Defaults follow the thesis where it gives them (batch 12-16 -> 12, learning rate 0.0002); image sizes are
# explained in each template's header: 512 for SSD (fixed resize), longer side 640 for the two-stage models.
# R-FCN ResNet101 defaults to batch 4: at batch 12 it passed 19 GB of RAM on a CPU
# (`bench/speed.py --models rfcn --batch rfcn=12` reproduces it).
# From scratch (no --fine-tune: the only choice offline) SSD defaults to 0.04: on the 600 CIL cells, 12 CPU minutes
# at 0.0002 left the model finding nothing, at 0.04 it learned (bench/results/quality.md, rows "template" and not).
MODELS: dict[str, ModelSpec] = {
    "ssd": ModelSpec(
        "ssd", TEMPLATES_DIR / "ssd.config", "tf2", 512, 12, 20000, 0.0002,
        "SSD MobileNet v2 (TF2 Keras ssd_mobilenet_v2_keras); the fastest on a CPU", scratch_learning_rate=0.04),
    "faster_rcnn": ModelSpec(
        "faster_rcnn", TEMPLATES_DIR / "faster_rcnn.config", "tf1", 640, 12, 20000, 0.0002,
        "Faster R-CNN Inception v2 (TF1 slim faster_rcnn_inception_v2; runs in a TF1 process of its own)"),
    "rfcn": ModelSpec(
        "rfcn", TEMPLATES_DIR / "rfcn.config", "tf2", 640, 4, 20000, 0.0002,
        "R-FCN ResNet101 (TF2 Keras faster_rcnn_resnet101_keras + rfcn_box_predictor)"),
}

FINE_TUNE_TYPES = ("detection", "classification", "full")
COCO = "coco"  # --fine-tune coco: the OD API model zoo checkpoint that fits the model (karyotf.zoo)
PIPELINE_NAME = rundir.PIPELINE
INFO_NAME = rundir.INFO
AGNOSTIC_LABEL_MAP = rundir.AGNOSTIC_LABEL_MAP

def spec(model: str) -> ModelSpec:
    try:
        return MODELS[model]
    except KeyError:
        raise PipelineConfigError(
            f"unknown model {model!r}: choose one of {', '.join(MODELS)}") from None


# ---------------------------------------------------------------------------------------------- proto read/write

def config_text(cfg) -> str:
    from google.protobuf import text_format

    return text_format.MessageToString(cfg)


def write_config(cfg, path: str | Path) -> Path:
    """Write ``cfg`` as text proto, atomically, after checking that the text parses back to the same message."""
    text = config_text(cfg)
    if parse_config(text, path) != cfg:  # pragma: no cover - protobuf round trip is exact
        raise PipelineConfigError(f"{path}: config does not survive a text round trip")
    return atomic_write_text(path, text)


def load_template(model: str):
    s = spec(model)
    return read_config(s.template)


# ------------------------------------------------------------------------------------------ what a config says

def meta_arch(cfg) -> str:
    return cfg.model.WhichOneof("model") or ""


def _arch(cfg):
    return getattr(cfg.model, meta_arch(cfg))


def num_classes(cfg) -> int:
    return _arch(cfg).num_classes


def feature_extractor_type(cfg) -> str:
    return _arch(cfg).feature_extractor.type


def tf_mode(cfg) -> str:
    """``tf2`` for Keras feature extractors (type ends in ``_keras``) and CenterNet, ``tf1`` for slim ones."""
    if meta_arch(cfg) == "center_net":
        return "tf2"
    return "tf2" if feature_extractor_type(cfg).endswith("_keras") else "tf1"


def second_stage(cfg) -> str:
    if meta_arch(cfg) != "faster_rcnn":
        return ""
    return cfg.model.faster_rcnn.second_stage_box_predictor.WhichOneof("box_predictor_oneof") or ""


def signature(cfg) -> dict:
    """What decides the shapes of a model's variables: checkpoints are interchangeable only if these match."""
    return {"meta_arch": meta_arch(cfg), "feature_extractor": feature_extractor_type(cfg),
            "second_stage": second_stage(cfg), "num_classes": num_classes(cfg)}


def image_size(cfg) -> int:
    resizer = _arch(cfg).image_resizer
    kind = resizer.WhichOneof("image_resizer_oneof")
    if kind == "fixed_shape_resizer":
        return max(resizer.fixed_shape_resizer.height, resizer.fixed_shape_resizer.width)
    if kind == "keep_aspect_ratio_resizer":
        return resizer.keep_aspect_ratio_resizer.max_dimension
    raise PipelineConfigError(f"image resizer {kind!r} is not supported by karyotf (use fixed_shape or keep_aspect_ratio)")


def set_image_size(cfg, size: int) -> None:
    if size < 32:
        raise PipelineConfigError(f"image size {size} is too small (fix: use 32 px or more; the default is the model's)")
    resizer = _arch(cfg).image_resizer
    kind = resizer.WhichOneof("image_resizer_oneof")
    if kind == "fixed_shape_resizer":
        resizer.fixed_shape_resizer.height = size
        resizer.fixed_shape_resizer.width = size
    elif kind == "keep_aspect_ratio_resizer":
        # The longer side becomes `size`; padded to size x size so that batches stack.
        resizer.keep_aspect_ratio_resizer.min_dimension = size
        resizer.keep_aspect_ratio_resizer.max_dimension = size
    else:
        image_size(cfg)  # raises


def _learning_rate_message(cfg):
    opt = cfg.train_config.optimizer
    which = opt.WhichOneof("optimizer")
    if which is None:
        raise PipelineConfigError("train_config.optimizer is empty (fix: keep the template's momentum_optimizer)")
    lr = getattr(opt, which).learning_rate
    return lr, lr.WhichOneof("learning_rate")


def learning_rate(cfg) -> float:
    lr, kind = _learning_rate_message(cfg)
    if kind == "cosine_decay_learning_rate":
        return lr.cosine_decay_learning_rate.learning_rate_base
    if kind == "constant_learning_rate":
        return lr.constant_learning_rate.learning_rate
    if kind in ("manual_step_learning_rate", "exponential_decay_learning_rate"):
        return getattr(lr, kind).initial_learning_rate
    raise PipelineConfigError(f"learning rate schedule {kind!r} is not supported by karyotf")


def set_learning_rate(cfg, value: float) -> None:
    """The OD API's own ``learning_rate`` override (``config_util.merge_external_params_with_configs``): the
    schedule's initial rate becomes ``value``, its other rates keep their ratio to it."""
    if not value > 0:
        raise PipelineConfigError(f"learning rate must be > 0, not {value}")
    learning_rate(cfg)  # raises for a schedule karyotf does not support
    from . import odapi

    odapi.override(cfg, learning_rate=value)


def set_steps(cfg, steps: int) -> None:
    """Train for ``steps`` in all: ``num_steps`` and the cosine schedule's length (which reaches 0 there)."""
    if steps < 1:
        raise PipelineConfigError(f"steps must be >= 1, not {steps}")
    cfg.train_config.num_steps = steps
    lr, kind = _learning_rate_message(cfg)
    if kind == "cosine_decay_learning_rate":
        c = lr.cosine_decay_learning_rate
        c.total_steps = steps
        # warm-up over 5% of training, at most 500 steps (the OD API refuses warmup_steps > total_steps)
        c.warmup_steps = min(500, steps // 20)
        c.warmup_learning_rate = c.learning_rate_base / 10 if c.warmup_steps else 0.0


def set_proposals(cfg, proposals: int) -> None:
    """Two-stage models: ``first_stage_max_proposals`` (and the second-stage sample size, which may not exceed it)."""
    if meta_arch(cfg) != "faster_rcnn":
        raise PipelineConfigError("--proposals applies only to the two-stage models (faster_rcnn, rfcn)")
    if proposals < 1:
        raise PipelineConfigError(f"proposals must be >= 1, not {proposals}")
    f = cfg.model.faster_rcnn
    f.first_stage_max_proposals = proposals
    f.second_stage_batch_size = min(f.second_stage_batch_size or 64, proposals)


def set_augmentation(cfg, names: list[str]) -> list[str]:
    """Replace ``data_augmentation_options`` with the OD API steps for karyotf op names (``[]`` = none)."""
    from google.protobuf import text_format

    names = [n.strip() for n in names if n.strip() and n.strip().lower() != "none"]

    snippets = odapi_augmentation(names) if names else []
    del cfg.train_config.data_augmentation_options[:]
    for snippet in snippets:
        text = snippet.strip()
        if not text.startswith("data_augmentation_options"):
            text = f"data_augmentation_options {{ {text} }}"
        try:
            text_format.Merge(text, cfg.train_config)
        except text_format.ParseError as exc:
            raise PipelineConfigError(f"augmentation snippet is not a preprocessor step: {exc}: {text!r}") from None
    return names


def augmentation_names(cfg) -> list[str]:
    return [o.WhichOneof("preprocessing_step") for o in cfg.train_config.data_augmentation_options]


# -------------------------------------------------------------------------------------------- label map, records

def label_map_classes(path: str | Path) -> dict[int, str]:
    """Ids -> names of the records' label map (:func:`karyotf.rundir.read_label_map`), whose ids must run 1..N:
    the OD API reserves 0 for background, and karyotf sets ``num_classes`` to N.  Several items may share an id
    (aliases): the first names it, as in the OD API's category index."""
    return rundir.read_label_map(path, contiguous=True, error=PipelineConfigError,
                                 fix="`karyotf records` writes label_map.pbtxt into the records dir; pass that dir "
                                     "with --records")


def records_paths(records_dir: Path) -> tuple[str, str, Path]:
    """(train shard pattern, eval shard pattern, label map) of a records dir (eval: val, else test, else train)."""
    train = split_pattern(records_dir, "train")  # raises RecordsError naming the fix
    eval_split = next((s for s in ("val", "test") if split_files(records_dir, s)), "train")
    if eval_split == "train":
        log.warning("%s has no val or test shards; eval_input_reader reads the train split", records_dir)
    return train, split_pattern(records_dir, eval_split), records_dir / rundir.LABEL_MAP


# ---------------------------------------------------------------------------------------------- checkpoints

def check_fine_tune_checkpoint(path: str | Path, tf: str, model_dir: Path | None = None) -> Path:
    """A fine-tune checkpoint must be a checkpoint *prefix*: ``dir/ckpt-N`` (TF2) or ``dir/model.ckpt[-N]`` (TF1)."""
    p = Path(path).expanduser()
    if p.is_dir():
        found = rundir.latest_checkpoint(p)
        hint = f" (fix: --fine-tune {found[0]})" if found else " (fix: name the checkpoint prefix, e.g. DIR/ckpt-3)"
        raise PipelineConfigError(f"{p}: --fine-tune needs a checkpoint prefix, not a directory{hint}")
    if p.suffix in (".index",) or p.name.endswith(".data-00000-of-00001"):
        raise PipelineConfigError(f"{p}: give the checkpoint prefix without .index/.data-* "
                                  f"(fix: --fine-tune {p.parent / p.name.split('.index')[0].split('.data-')[0]})")
    kind = rundir.checkpoint_kind(p)
    if kind != tf:
        want = "DIR/ckpt-N (a TF2 object-based checkpoint)" if tf == "tf2" else "DIR/model.ckpt-N (a TF1 checkpoint)"
        why = (f"; {p.name} is a {kind.upper()} checkpoint, which a {tf.upper()} model cannot load"
               if kind else "")
        raise PipelineConfigError(f"{p}: the fine-tune checkpoint must be {want}{why}")
    if not Path(str(p) + ".index").is_file():
        raise PipelineConfigError(f"{p}: checkpoint not found ({p.name}.index missing) "
                                  "(fix: check the path; `ls DIR` shows ckpt-N.index files)")
    p = p.resolve()
    if model_dir is not None and p.parent == Path(model_dir).resolve():
        raise PipelineConfigError(
            f"{p}: the fine-tune checkpoint sits in the model dir itself; the OD API refuses that "
            "(fix: --out a new model dir; to continue this run just run `karyotf train` again: it resumes)")
    return p


def _guess_fine_tune_type(ckpt: Path) -> str:
    """``detection`` for checkpoints of an OD API run (a pipeline.config beside them), else ``classification``."""
    return "detection" if (ckpt.parent / PIPELINE_NAME).is_file() else "classification"


# ---------------------------------------------------------------------------------------------------- configure

@dataclass
class ConfigResult:
    pipeline_path: Path
    info_path: Path
    info: dict = field(default_factory=dict)

    def text(self) -> str:
        i = self.info
        agnostic = " (class-agnostic)" if i.get("agnostic") else ""
        return (f"wrote {self.pipeline_path} ({i['model']}, {i['tf']}, {i['num_classes']} classes{agnostic}, "
                f"{i['image_size']} px, batch {i['batch']}, {i['steps']} steps, lr {i['learning_rate']:g}"
                + (f", fine-tune {i['fine_tune']} ({i['fine_tune_type']})" if i.get("fine_tune") else "") + ")")


def fill(model: str, records_dir: str | Path, *, steps: int | None = None, batch: int | None = None,
         image_size: int | None = None, learning_rate: float | None = None, augment: list[str] | None = None,
         fine_tune: str | Path | None = None, fine_tune_type: str | None = None, proposals: int | None = None,
         model_dir: str | Path | None = None, agnostic_label_map: str | Path | None = None):
    """The filled ``TrainEvalPipelineConfig`` for ``model`` on ``records_dir`` (nothing written).

    ``agnostic_label_map``: a class-agnostic detector (one class, ``classes.AGNOSTIC``) reading the same records
    through this one-class label map (``classes.write_label_map(path, agnostic=True)``)."""
    s = spec(model)
    cfg = load_template(model)
    if tf_mode(cfg) != s.tf:
        raise PipelineConfigError(
            f"{s.template}: feature extractor {feature_extractor_type(cfg)!r} is a {tf_mode(cfg)} extractor but "
            f"model {model} is registered as {s.tf} (fix: a TF2 template needs a *_keras extractor)")
    records_dir = Path(records_dir).resolve()
    train_pattern, eval_pattern, label_map = records_paths(records_dir)
    classes = label_map_classes(label_map)
    if agnostic_label_map is not None:
        label_map = Path(agnostic_label_map).resolve()
        classes = label_map_classes(label_map)

    arch = _arch(cfg)
    arch.num_classes = len(classes)
    if not cfg.eval_input_reader:
        cfg.eval_input_reader.add()
    for reader in (cfg.train_input_reader, cfg.eval_input_reader[0]):
        reader.label_map_path = str(label_map)
    del cfg.train_input_reader.tf_record_input_reader.input_path[:]
    cfg.train_input_reader.tf_record_input_reader.input_path.append(train_pattern)
    del cfg.eval_input_reader[0].tf_record_input_reader.input_path[:]
    cfg.eval_input_reader[0].tf_record_input_reader.input_path.append(eval_pattern)

    if learning_rate is None:
        learning_rate = s.learning_rate if fine_tune or s.scratch_learning_rate is None else s.scratch_learning_rate
    set_learning_rate(cfg, learning_rate)
    set_steps(cfg, steps if steps is not None else s.steps)
    b = batch if batch is not None else s.batch
    if b < 1:
        raise PipelineConfigError(f"batch must be >= 1, not {b}")
    cfg.train_config.batch_size = b
    set_image_size(cfg, image_size if image_size is not None else s.image_size)
    resizer = arch.image_resizer
    if (b > 1 and resizer.WhichOneof("image_resizer_oneof") == "keep_aspect_ratio_resizer"
            and not resizer.keep_aspect_ratio_resizer.pad_to_max_dimension):
        raise PipelineConfigError(f"{s.template}: batch {b} with keep_aspect_ratio_resizer needs "
                                  "pad_to_max_dimension: true (fix: set it in the template, or --batch 1)")
    if proposals is not None:
        set_proposals(cfg, proposals)
    if augment is not None:
        set_augmentation(cfg, list(augment))

    tc = cfg.train_config
    tc.ClearField("fine_tune_checkpoint")
    tc.ClearField("fine_tune_checkpoint_type")
    tc.ClearField("from_detection_checkpoint")
    if fine_tune:
        from_zoo = str(fine_tune) == COCO
        if from_zoo:  # the model zoo archive registered for this model (karyotf.zoo): fetched, verified, cached

            pulled = zoo.pull(model)
            fine_tune, fine_tune_type = pulled.checkpoint, fine_tune_type or pulled.fine_tune_type
        ckpt = check_fine_tune_checkpoint(fine_tune, s.tf, Path(model_dir) if model_dir else None)
        kind = fine_tune_type or _guess_fine_tune_type(ckpt)
        if kind not in FINE_TUNE_TYPES:
            raise PipelineConfigError(f"fine-tune type {kind!r}: choose one of {', '.join(FINE_TUNE_TYPES)}")
        # a zoo archive's pairing is the registry's (its pipeline.config may predate today's protos: not parsed)
        if not from_zoo and kind in ("detection", "full") and (ckpt.parent / PIPELINE_NAME).is_file():
            other = read_config(ckpt.parent / PIPELINE_NAME)
            mine, theirs = signature(cfg), signature(other)
            for key in ("meta_arch", "feature_extractor"):
                if mine[key] != theirs[key]:
                    raise PipelineConfigError(
                        f"{ckpt}: a {theirs[key]} checkpoint cannot fine-tune a {mine[key]} model "
                        f"(fix: fine-tune from a checkpoint of the same model)")
            if kind == "full" and mine != theirs:
                raise PipelineConfigError(
                    f"{ckpt}: fine-tune type 'full' restores every variable, but the checkpoint's model differs "
                    f"({theirs} vs {mine}) (fix: --fine-tune-type detection restores the shared parts)")
        tc.fine_tune_checkpoint = str(ckpt)
        tc.fine_tune_checkpoint_type = kind
        from . import odapi

        tc.fine_tune_checkpoint_version = odapi.checkpoint_version(s.tf)
    return cfg


def configure(model: str, records_dir: str | Path, out_dir: str | Path | None = None, *, steps: int | None = None,
              batch: int | None = None, image_size: int | None = None, learning_rate: float | None = None,
              augment: list[str] | None = None, fine_tune: str | Path | None = None,
              fine_tune_type: str | None = None, proposals: int | None = None,
              agnostic: bool = False) -> ConfigResult:
    """Fill ``model``'s template for ``records_dir`` and write ``out_dir/pipeline.config`` + ``karyotf.json``.

    ``agnostic``: a class-agnostic detector ("chromosome" only) on the same records: its one-class label map is
    written to ``out_dir/label_map_agnostic.pbtxt``.  It finds chromosomes; a classifier names them
    (``karyotf karyogram IMAGE --model ... --classifier exported/classifier``).

    ``out_dir`` defaults to ``runs/MODEL``.  Refuses (PipelineConfigError) when checkpoints already in ``out_dir``
    belong to a model of another shape (other number of classes, extractor or meta-architecture): the OD API
    would otherwise fail on restore, or resume the wrong model.
    """
    s = spec(model)
    out_dir = Path(out_dir) if out_dir is not None else rundir.run_dir(model)
    agnostic_map = None
    if agnostic:
        agnostic_map = out_dir / AGNOSTIC_LABEL_MAP
        if not agnostic_map.is_file() or agnostic_map.read_text() != _classes.label_map_text(agnostic=True):
            out_dir.mkdir(parents=True, exist_ok=True)
            _classes.write_label_map(agnostic_map, agnostic=True)
    cfg = fill(model, records_dir, steps=steps, batch=batch, image_size=image_size, learning_rate=learning_rate,
               augment=augment, fine_tune=fine_tune, fine_tune_type=fine_tune_type, proposals=proposals,
               model_dir=out_dir, agnostic_label_map=agnostic_map)
    existing = rundir.latest_checkpoint(out_dir)
    if existing is not None:
        old_path = out_dir / PIPELINE_NAME
        if old_path.is_file():
            old = signature(read_config(old_path))
            new = signature(cfg)
            changed = {k: (old[k], new[k]) for k in new if old[k] != new[k]}
            if changed:
                what = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items())
                raise PipelineConfigError(
                    f"{out_dir}: holds checkpoint {Path(existing[0]).name} (step {existing[1]}) of another model "
                    f"shape ({what}); training would fail to restore it or mix two models "
                    f"(fix: --out a new model dir, optionally with --fine-tune {existing[0]}; "
                    f"or delete the checkpoints in {out_dir} to start over)")
        else:
            raise PipelineConfigError(
                f"{out_dir}: holds checkpoint {existing[0]} but no {PIPELINE_NAME} saying what model it is "
                f"(fix: --out a new model dir)")
    out_dir.mkdir(parents=True, exist_ok=True)
    pipeline_path = write_config(cfg, out_dir / PIPELINE_NAME)
    info = {
        "model": model,
        "tf": s.tf,
        "template": str(s.template),
        "records_dir": str(Path(records_dir).resolve()),
        "label_map": cfg.train_input_reader.label_map_path,
        "num_classes": num_classes(cfg),
        "agnostic": bool(agnostic),
        "image_size": image_size_of(cfg),
        "batch": cfg.train_config.batch_size,
        "steps": cfg.train_config.num_steps,
        "learning_rate": float(f"{learning_rate_of(cfg):.6g}"),  # float32 in the proto
        "augment": augmentation_names(cfg),
        "fine_tune": cfg.train_config.fine_tune_checkpoint or None,
        "fine_tune_type": cfg.train_config.fine_tune_checkpoint_type or None,
    }
    if str(fine_tune or "") == COCO:
        info["fine_tune_zoo"] = zoo.entry(model).archive
    if meta_arch(cfg) == "faster_rcnn":
        info["proposals"] = cfg.model.faster_rcnn.first_stage_max_proposals
    info = rundir.stamp(info, "run")
    info_path = rundir.write_info(out_dir, info, "run")
    return ConfigResult(pipeline_path, info_path, info)


# names that do not shadow configure()'s keyword arguments
image_size_of = image_size
learning_rate_of = learning_rate


def update_steps(model_dir: str | Path, steps: int) -> None:
    """Set the total step count of an existing model dir (pipeline.config and karyotf.json), atomically."""
    model_dir = Path(model_dir)
    cfg = read_config(model_dir / PIPELINE_NAME)
    if cfg.train_config.num_steps == steps:
        return
    set_steps(cfg, steps)
    write_config(cfg, model_dir / PIPELINE_NAME)
    info = read_info(model_dir)
    if info:
        info["steps"] = steps
        rundir.write_info(model_dir, info, "run")

