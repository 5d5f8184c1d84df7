"""The one home of what a run dir (``runs/MODEL``) and an export dir (``exported/MODEL``) hold, and how to read it.

Every stage (:mod:`~karyotf.pipelines`, :mod:`~karyotf.train`, :mod:`~karyotf.export`, :mod:`~karyotf.evaluate`,
:mod:`~karyotf.detect`, :mod:`~karyotf.yolo`, :mod:`~karyotf.classify`) and the CLI go through this module for::

    runs/MODEL/                          (written by `karyotf config`, then `karyotf train`)
        pipeline.config                  the filled OD API TrainEvalPipelineConfig   read_config / model_config
        label_map_agnostic.pbtxt         only for `config --agnostic`: the one-class label map
        karyotf.json                     what karyotf knows about the run           read_info / write_info
        ckpt-N.*  |  model.ckpt-N.*      TF2 / TF1 checkpoints, N = global step     latest_checkpoint
        train/                           TensorBoard summaries
        export-ckpt-N/                   the export `karyotf eval` makes of step N  eval_export_dir / to_evaluate
    runs/yolo/                           (`karyotf config yolo`: KerasCV YOLOv8, :mod:`karyotf.yolo`)
        yolo.json  karyotf.json  ckpt-N.*                                           is_yolo_dir / yolo_records
    exported/MODEL/                      (written by `karyotf export`; a yolo export adds its yolo.json)
        saved_model/  frozen_inference_graph.pb  pipeline.config  label_map.pbtxt  karyotf.json
    runs/classifier/                     (`karyotf classifier train`: classifier.json, weights)
    exported/classifier/                 (`karyotf classifier export`; a second look's export is alike, kind
                                         "second_look")
        saved_model/  label_map.pbtxt  karyotf.json                                 classifier_records

``karyotf.json`` has one schema for all (``kind`` :data:`KINDS`: ``"run"``, ``"export"`` or ``"classifier"``,
``schema`` :data:`SCHEMA`), written by :func:`write_info` alone: ``model``, ``tf``, ``num_classes`` and
``image_size`` (the longer input side in px) in a run and an export; a run adds its training settings
(``records_dir``, ``label_map``, ``batch``, ``steps``, ...), an export its checkpoint, tensor names and
``input_size`` (the resizer's two numbers), and, once ``karyotf eval --tune-min-score`` chose it, the karyogram's
score floor (``min_score``, ``min_score_tuning``); a classifier export its crop size, feature names and the run
it came from (:mod:`karyotf.classify.export`).  Files written before the schema had a version are read too
(:func:`read_info` fills ``image_size`` from an old export's ``input_size``).

A model or export dir to evaluate (:func:`model_info`, :func:`model_records`, :func:`to_evaluate`) is resolved
here too; making the missing export is :func:`karyotf.export.resolve_export`'s.

Nothing here imports TensorFlow at import time; reading a config or a label map imports the OD API's protos
through :mod:`karyotf.odapi`.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

from .errors import EvaluateError, ExportError, InfoError, KaryotfError, LabelMapError, PipelineConfigError
from .io import atomic_write_json
from .paths import DEFAULT_EXPORTED, DEFAULT_RUNS

# Imports inside functions, and why: protobuf (loaded with the OD API's protos when a config is parsed); karyotf.odapi
# (importing it loads TensorFlow and applies the OD API's compatibility shims: only where TensorFlow is about to run).

PIPELINE = "pipeline.config"
INFO = "karyotf.json"
LABEL_MAP = "label_map.pbtxt"
AGNOSTIC_LABEL_MAP = "label_map_agnostic.pbtxt"
"""A class-agnostic model's one-class label map, in its run dir (``karyotf config MODEL --agnostic``)."""
SAVED_MODEL = "saved_model"
FROZEN_GRAPH = "frozen_inference_graph.pb"
YOLO_CONFIG = "yolo.json"
"""The filled config in a yolo model dir (and a copy in its exports): what marks a dir as a yolo one."""
CLASSIFIER_RUN = "classifier.json"
"""A classifier run dir's settings and progress (:mod:`karyotf.classify.train`)."""
KINDS = ("run", "export", "classifier", "second_look")
"""``karyotf.json``'s ``kind``: a detector's run dir, a detector's export dir, a classifier's export dir, a
second look's export dir (:mod:`karyotf.classify.second_look`)."""
CLASSIFIER_KEYS = ("size", "features")
"""What a classifier's (or a second look's) ``karyotf.json`` must hold: its crop size and feature names."""
SCHEMA = 1
"""Version of ``karyotf.json``'s schema (files without ``schema`` are version 0: the same keys, but an export
has only ``input_size``, no ``image_size``)."""

CHECKPOINT_RE = re.compile(r"(?P<kind>model\.ckpt|ckpt)(?:-(?P<step>\d+))?$")
"""A checkpoint prefix's name: ``ckpt-N`` (TF2, object-based) or ``model.ckpt[-N]`` (TF1); N = global step."""


# ---------------------------------------------------------------------------------------------- checkpoints

def checkpoint_kind(prefix: str | Path) -> str | None:
    """``"tf2"`` for a ``ckpt-N`` prefix, ``"tf1"`` for ``model.ckpt[-N]``, else None (only the name counts)."""
    m = CHECKPOINT_RE.fullmatch(Path(prefix).name)
    if m is None or (m.group("kind") == "ckpt" and m.group("step") is None):
        return None
    return "tf2" if m.group("kind") == "ckpt" else "tf1"


def checkpoint_step(prefix: str | Path) -> int | None:
    """The global step N of a checkpoint prefix ``.../ckpt-N`` or ``.../model.ckpt-N`` (None if it has none)."""
    m = CHECKPOINT_RE.search(str(prefix))
    return int(m.group("step")) if m and m.group("step") else None


def latest_checkpoint(model_dir: str | Path) -> tuple[str, int] | None:
    """``(checkpoint prefix, step)`` of the newest checkpoint in ``model_dir`` (TF2 ``ckpt-N`` or TF1
    ``model.ckpt-N``), or None.  karyotf names TF2 checkpoints by global step, as the estimator does for TF1."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return None
    found = []
    for p in model_dir.iterdir():
        if not p.name.endswith(".index"):
            continue
        m = CHECKPOINT_RE.fullmatch(p.name[: -len(".index")])
        if m and m.group("step"):
            found.append((int(m.group("step")), str(model_dir / p.name[: -len(".index")])))
    if not found:
        return None
    step, prefix = max(found)
    return prefix, step


def resolve_checkpoint(model_dir: str | Path, checkpoint: str | Path | None = None) -> tuple[str, int | None]:
    """The checkpoint prefix to export and its step: ``checkpoint`` if given, else the latest in ``model_dir``.

    ``checkpoint`` may be a prefix (``runs/ssd/ckpt-3``, ``runs/frcnn/model.ckpt-200``), its ``.index`` file, or a
    directory (its latest checkpoint).
    """
    model_dir = Path(model_dir)
    if checkpoint is not None:
        ck = Path(checkpoint)
        if ck.is_dir():
            return resolve_checkpoint(ck)
        prefix = str(ck)[: -len(".index")] if str(ck).endswith(".index") else str(ck)
        if not Path(prefix + ".index").is_file():
            raise ExportError(f"{prefix}: no such checkpoint ({prefix}.index missing) "
                              "(fix: pass a prefix such as runs/MODEL/ckpt-3, or leave --checkpoint out for the latest)")
        return prefix, checkpoint_step(prefix)
    latest = latest_checkpoint(model_dir)
    if latest is None:
        raise ExportError(f"{model_dir}: no checkpoint found (no ckpt-N.index or model.ckpt-N.index) "
                          f"(fix: train first: `karyotf train MODEL --model-dir {model_dir}`)")
    return str(latest[0]), latest[1]


# ---------------------------------------------------------------------------------------------- karyotf.json

def read_info(directory: str | Path) -> dict:
    """``karyotf.json`` of a run or export dir as a dict (``{}`` when there is none); old files are upgraded in
    memory to :data:`SCHEMA`.  Raises :class:`InfoError` when the file is not JSON."""
    path = Path(directory) / INFO
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text())
    except (ValueError, OSError) as exc:
        raise InfoError(f"{path}: not valid JSON ({exc}) (fix: re-run the command that wrote it)") from exc
    if not isinstance(info, dict):
        raise InfoError(f"{path}: not a JSON object (fix: re-run the command that wrote it)")
    if "image_size" not in info and isinstance(info.get("input_size"), list) and info["input_size"]:
        info["image_size"] = max(info["input_size"])  # version 0 exports
    return info


def read_info_or_empty(directory: str | Path) -> dict:
    """:func:`read_info`, with ``{}`` for a file that is not JSON (for readers to which the file is optional)."""
    try:
        return read_info(directory)
    except InfoError:
        return {}


def stamp(info: dict, kind: str) -> dict:
    """``info`` as a ``karyotf.json`` of ``kind`` (:data:`KINDS`): led by ``schema`` and ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}: one of {', '.join(map(repr, KINDS))}")
    missing = [k for k in CLASSIFIER_KEYS if k not in info] if kind in ("classifier", "second_look") else []
    if missing:  # what loading it needs (karyotf.classify.export.Classifier, karyotf.classify.second_look)
        raise ValueError(f"a {kind}'s karyotf.json needs {', '.join(missing)}")
    rest = {k: v for k, v in info.items() if k not in ("schema", "kind")}
    return {"schema": SCHEMA, "kind": kind, **rest}


def write_info(directory: str | Path, info: dict, kind: str) -> Path:
    """Write ``karyotf.json`` (``kind``: :data:`KINDS`) atomically, stamped by :func:`stamp`: its one writer."""
    return atomic_write_json(Path(directory) / INFO, stamp(info, kind))


def model_name(directory: str | Path) -> str:
    """The model a run or export dir holds (its ``karyotf.json``'s ``model``, else the dir's name)."""
    return read_info_or_empty(directory).get("model") or Path(directory).name


# ---------------------------------------------------------------------------------------------- pipeline.config

def parse_config(text: str, source: str | Path = "<text>"):
    """Parse pipeline.config text into a ``TrainEvalPipelineConfig``; a syntax error names the file and line."""
    from google.protobuf import text_format

    from . import odapi

    cfg = odapi.pipeline_proto()
    try:
        text_format.Parse(text, cfg)
    except text_format.ParseError as exc:
        raise PipelineConfigError(
            f"{source}: not a valid OD API pipeline config: {exc} "
            "(fix: correct the field named there; the schema is object_detection/protos/pipeline.proto)") from None
    return cfg


def read_config(path: str | Path):
    """The one reader of a ``pipeline.config`` file (a template, a run's or an export's)."""
    path = Path(path)
    if not path.is_file():
        raise PipelineConfigError(f"{path}: no pipeline config there (fix: run `karyotf config MODEL --out {path.parent}`)")
    return parse_config(path.read_text(), path)


def model_config(directory: str | Path):
    """``directory/pipeline.config`` of a run or export dir."""
    return read_config(Path(directory) / PIPELINE)


def source_dir(directory: str | Path) -> Path | None:
    """The run dir an export was made from (its ``karyotf.json``'s ``source_model_dir``), or None."""
    source = read_info_or_empty(directory).get("source_model_dir")
    return Path(source) if source else None


def records_dir_of(cfg) -> Path:
    """The records dir a filled config trains on (the folder of its train input's shards)."""
    paths = list(cfg.train_input_reader.tf_record_input_reader.input_path)
    if not paths:
        raise PipelineConfigError("the config's train_input_reader has no input_path (fix: fill it with "
                                  "`karyotf config MODEL --records DIR`)")
    return Path(paths[0]).parent


# ---------------------------------------------------------------------------------------------- label map

def read_label_map(path: str | Path, canonical: bool = False, contiguous: bool = False,
                   error: type[KaryotfError] | None = None, fix: str = "") -> dict[int, str]:
    """``{id: name}`` of an OD API ``label_map.pbtxt``, with the OD API's ``label_map_util.load_labelmap``
    semantics (text proto, commas allowed, else binary; ids >= 0, 0 only for background).  An item's name is its
    ``name``, else its ``display_name``; of several items with one id the first names it.  ``contiguous``: the ids must run 1..N (what karyotf's records and
    ``num_classes`` need); ``canonical``: names become karyotf's class names (:func:`karyotf.classes.canonical`),
    an unknown name being an error (the first item may be a class-agnostic map's ``classes.AGNOSTIC``).  Raises ``error`` (default :class:`LabelMapError`) naming the file, with
    ``fix`` (what the caller's user should do) appended."""
    from . import classes, odapi

    def fail(message: str):
        return (error or LabelMapError)(message + (f" (fix: {fix})" if fix else ""))

    path = Path(path)
    if not path.is_file():
        raise fail(f"{path}: label map not found (no label map at this path)")
    try:
        lm = odapi.parse_label_map(path.read_bytes())
    except Exception as exc:  # the text parse failed and so did the binary one (DecodeError)
        raise fail(f"{path}: not a label map: {exc}") from None
    ids: dict[int, str] = {}
    for item in lm.item:  # the first item of an id names it (the OD API's category index); later ones are aliases
        ids.setdefault(item.id, item.name or item.display_name)
    if not ids:
        raise fail(f"{path}: the label map has no items (no `item {{ id: N name: '...' }}` entries)")
    if contiguous and sorted(ids) != list(range(1, len(ids) + 1)):
        raise (error or LabelMapError)(
            f"{path}: label ids are {sorted(ids)}; they must run 1..N without gaps (0 is the OD API's background) "
            "(fix: rewrite it with karyotf.classes.write_label_map)")
    try:
        odapi.validate_label_map(lm)
    except ValueError as exc:
        raise fail(f"{path}: {exc}") from None
    if canonical:
        for n, (ident, name) in enumerate(ids.items()):
            if n == 0 and name == classes.AGNOSTIC:  # a class-agnostic detector's map (classes.label_map_text)
                continue
            try:
                ids[ident] = classes.canonical(name)
            except classes.UnknownClassError as exc:
                raise fail(f"{path}: item #{n}: {exc}") from exc
    return ids


def label_map_of(cfg, directory: str | Path) -> Path | None:
    """The label map a model was configured with: the config's ``label_map_path`` (relative ones against
    ``directory``), else the one its ``karyotf.json`` names; None if neither exists."""
    directory = Path(directory)
    for reader in (cfg.train_input_reader, *cfg.eval_input_reader):
        if reader.label_map_path:
            p = Path(reader.label_map_path)
            if not p.is_absolute() and not p.is_file():
                p = directory / p
            if p.is_file():
                return p
    lm = read_info_or_empty(directory).get("label_map")
    if lm and Path(lm).is_file():
        return Path(lm)
    return None


# ---------------------------------------------------------------------------------------------- names -> dirs

def run_dir(model: str) -> Path:
    """Where a model's run lives by default: ``runs/MODEL``."""
    return DEFAULT_RUNS / model


def export_dir(model: str) -> Path:
    """Where a model's export lives by default: ``exported/MODEL``."""
    return DEFAULT_EXPORTED / model


def find_model(model: str | Path) -> Path:
    """A model name or path -> its dir: ``model`` if it is a dir, else ``runs/MODEL``, else ``exported/MODEL``,
    else ``runs/MODEL`` (whose absence the caller reports)."""
    if Path(model).is_dir():
        return Path(model)
    for d in (run_dir(str(model)), export_dir(str(model))):
        if d.is_dir():
            return d
    return run_dir(str(model))


def find_export(model: str | Path) -> Path:
    """An export dir as is, else ``exported/MODEL``."""
    return Path(model) if Path(model).is_dir() else export_dir(str(model))


def is_export_dir(path: str | Path) -> bool:
    return (Path(path) / SAVED_MODEL / "saved_model.pb").is_file() or (Path(path) / FROZEN_GRAPH).is_file()


def eval_export_dir(model_dir: str | Path, step: int) -> Path:
    """Where ``karyotf eval`` keeps the export of a run dir's checkpoint ``step``: ``MODEL_DIR/export-ckpt-N``."""
    return Path(model_dir) / f"export-ckpt-{step}"


# ---------------------------------------------------------------------------------------------- yolo and classifier dirs

def is_yolo_dir(path: str | Path) -> bool:
    """True for a yolo model dir (``runs/yolo``) or a yolo export dir: it holds ``yolo.json``."""
    return (Path(path) / YOLO_CONFIG).is_file()


def yolo_records(path: str | Path) -> Path | None:
    """The records dir a yolo model dir or export was configured with (its or its source's ``yolo.json``), else
    None (not a yolo dir)."""
    path = Path(path)
    for d in (path, source_dir(path)):
        if d is not None and is_yolo_dir(d):
            try:
                records = json.loads((d / YOLO_CONFIG).read_text()).get("records_dir")
            except (OSError, ValueError):
                continue
            if records:
                return Path(records)
    return None


def classifier_records(path: str | Path) -> str | None:
    """The records a classifier export (``karyotf.json``) or run (``classifier.json``) was trained on, else None."""
    for name in (INFO, CLASSIFIER_RUN):
        p = Path(path) / name
        if p.is_file():
            rec = json.loads(p.read_text()).get("records")
            if rec:
                return rec
    return None


# ---------------------------------------------------------------------------------------------- the model to evaluate

def _train_config_numbers(pipeline: Path) -> dict[str, int]:
    """``batch`` and ``steps`` of a pipeline.config's ``train_config`` ({} without a readable config)."""
    try:
        tc = read_config(pipeline).train_config
    except (PipelineConfigError, OSError, UnicodeDecodeError):
        return {}
    return {name: getattr(tc, key) for key, name in (("batch_size", "batch"), ("num_steps", "steps"))
            if tc.HasField(key)}


def model_info(path: str | Path) -> dict:
    """Name, batch and steps of a model dir (``runs/MODEL``) or an export dir, from karyotf.json / pipeline.config.

    Steps are the trained steps when known (an export's checkpoint step), else the steps asked for.
    """
    path = Path(path)
    meta = read_info_or_empty(path)
    info: dict = {"model": meta.get("model") or path.name, "batch": None, "steps": None}
    source = source_dir(path)
    src_meta = read_info_or_empty(source) if source else {}
    for m in (meta, src_meta):
        for key in ("batch", "steps"):
            if info[key] is None and isinstance(m.get(key), int):
                info[key] = m[key]
    cfg = _train_config_numbers(path / PIPELINE)
    if not cfg and source:
        cfg = _train_config_numbers(source / PIPELINE)
    for key in ("batch", "steps"):
        if info[key] is None:
            info[key] = cfg.get(key)
    if isinstance(meta.get("checkpoint_step"), int):
        info["steps"] = meta["checkpoint_step"]
    return info


def model_records(model: str | Path) -> Path:
    """The records a model dir or export dir was configured with (its ``pipeline.config``'s train input folder;
    for an export without one, its source model dir's; a yolo dir's ``yolo.json``)."""
    model = Path(model)
    records = yolo_records(model)  # a yolo model or export: yolo.json names its records
    if records is not None:
        return records
    candidates = [model / PIPELINE]
    source = source_dir(model)
    if source:
        candidates.append(source / PIPELINE)
    config = next((c for c in candidates if c.is_file()), None)
    if config is None:
        raise EvaluateError(f"{model}: no pipeline.config to say which records the model was trained on "
                            "(fix: pass --records DIR)")
    try:
        return records_dir_of(read_config(config))
    except PipelineConfigError as exc:
        raise EvaluateError(f"{config}: cannot read its records folder ({exc}) (fix: pass --records DIR)") from None


def to_evaluate(model: str | Path) -> tuple[Path, str | None]:
    """The export dir that evaluates ``model`` and the checkpoint prefix still to export into it (None when it is
    there): ``model`` itself for an export dir, else ``model/export-ckpt-N`` of the latest checkpoint N of a model
    dir.  :class:`EvaluateError` for a dir that is neither."""
    model = Path(model)
    if not model.is_dir():
        raise EvaluateError(f"{model}: no such model or export directory (fix: train with `karyotf train`, or give "
                            "an export dir made by `karyotf export`)")
    if is_export_dir(model):
        return model, None
    latest = latest_checkpoint(model)
    if latest is None:
        raise EvaluateError(f"{model}: neither an export (no saved_model/) nor a model dir with a checkpoint "
                            "(fix: train first, or pass the export dir)")
    prefix, step = latest
    out = eval_export_dir(model, step)
    if is_export_dir(out) and (out / INFO).is_file():
        return out, None
    return out, prefix


# ---------------------------------------------------------------------------------------------- writing an export

def staging_dir(out_dir: Path, model_dir: Path) -> Path:
    """Refuse an ``out_dir`` that is not a karyotf export (or is the model dir itself); make and return the
    temporary folder beside it that an export is written into, then renamed into place when complete."""
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir())
                                                       and not (out_dir / INFO).is_file())):
        raise ExportError(f"{out_dir}: exists and is not a karyotf export; refusing to replace it "
                          "(fix: choose another --out or remove it)")
    if out_dir.resolve() == model_dir.resolve():
        raise ExportError(f"{out_dir}: the export directory must differ from the model directory")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the export is an ordinary directory
    return tmp
