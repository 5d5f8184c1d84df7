"""The yolo config: ``pipelines/yolo.json`` (defaults) -> ``runs/yolo/yolo.json`` (filled, validated).

A small JSON file instead of a ``pipeline.config``: the OD API's protos have no YOLO meta-architecture.  Every
field is checked on its own and a bad one is a :class:`PipelineConfigError` naming the file, the field, the value
and what it may be.  The filled file adds the records dir, label map and number of classes.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from . import CONFIG_NAME, MODEL
from .. import rundir
from ..errors import PipelineConfigError
from ..io import atomic_write_json
from ..paths import DEFAULT_RUNS, TEMPLATES_DIR
from ..pipelines import ConfigResult, records_paths, label_map_classes

TEMPLATE = TEMPLATES_DIR / "yolo.json"

BACKBONES = {
    # karyotf name: (KerasCV preset it matches, stackwise_channels, stackwise_depth, fpn_depth).  The KerasCV
    # presets are the YOLOv8 n / s / m widths and depths (ultralytics' yolov8n/s/m.yaml); building from these
    # numbers needs no download (from_preset fetches even an untrained preset's config).
    "n": ("yolo_v8_xs_backbone", [32, 64, 128, 256], [1, 2, 2, 1], 1),
    "s": ("yolo_v8_s_backbone", [64, 128, 256, 512], [1, 2, 2, 1], 1),
    "m": ("yolo_v8_m_backbone", [96, 192, 384, 576], [2, 4, 4, 2], 2),
}
OPTIMIZERS = ("adam", "sgd")
AUGMENT = ("hflip", "vflip", "rot90")
PRESET_PREFIX = "preset:"

# field: (type, check, what it may be)
_FIELDS = {
    "model": (str, lambda v: v == MODEL, f"'{MODEL}'"),
    "backbone": (str, lambda v: v in BACKBONES, "one of " + ", ".join(BACKBONES) + " (YOLOv8 n / s / m)"),
    "image_size": (int, lambda v: 64 <= v <= 2048 and v % 32 == 0,
                   "a multiple of 32 from 64 to 2048 (the detector's coarsest feature map has stride 32)"),
    "batch": (int, lambda v: 1 <= v <= 256, "an integer from 1 to 256"),
    "learning_rate": (float, lambda v: 0 < v < 1, "a number > 0 and < 1"),
    "steps": (int, lambda v: v >= 1, "an integer >= 1"),
    "optimizer": (str, lambda v: v in OPTIMIZERS, "one of " + ", ".join(OPTIMIZERS)),
    "global_clipnorm": (float, lambda v: v > 0, "a number > 0 (KerasCV's YOLOv8 needs gradient clipping: "
                                               "without it training on unbalanced classes can stall at mAP 0)"),
    "box_loss_weight": (float, lambda v: v > 0, "a number > 0"),
    "classification_loss_weight": (float, lambda v: v > 0, "a number > 0"),
    "augment": (list, lambda v: all(a in AUGMENT for a in v) and len(set(v)) == len(v),
                "a list of distinct ops from " + ", ".join(AUGMENT) + " ([] for none)"),
    "max_boxes": (int, lambda v: 1 <= v <= 1000, "an integer from 1 to 1000 (boxes per image, padded)"),
    "score_threshold": (float, lambda v: 0 <= v < 1, "a number >= 0 and < 1 (the export keeps detections above it)"),
    "iou_threshold": (float, lambda v: 0 < v <= 1, "a number > 0 and <= 1 (per-class NMS in the export)"),
    "max_detections": (int, lambda v: 1 <= v <= 1000, "an integer from 1 to 1000"),
    "weights": (object, lambda v: v is None or (isinstance(v, str) and v.strip() != ""),
                "null (from scratch), the path of a local Keras backbone weights file (.h5), or preset:NAME"),
}
# filled by `karyotf config yolo` (not in the template)
_FILLED = {
    "records_dir": (str, lambda v: bool(v), "the records dir (`karyotf config yolo --records DIR`)"),
    "label_map": (str, lambda v: bool(v), "the records' label_map.pbtxt"),
    "num_classes": (int, lambda v: v >= 1, "an integer >= 1"),
}


def _check_type(kind, value) -> bool:
    if kind is object:
        return True
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def validate(cfg: dict, source: str | Path = "<config>", filled: bool = False) -> dict:
    """``cfg`` with numbers normalised, or a PipelineConfigError listing every bad field (one line each)."""
    if not isinstance(cfg, dict):
        raise PipelineConfigError(f"{source}: a yolo config is a JSON object, not {type(cfg).__name__}")
    fields = dict(_FIELDS, **(_FILLED if filled else {}))
    errors = []
    for name, (kind, check, want) in fields.items():
        if name not in cfg:
            errors.append(f"{name}: missing (it must be {want})")
            continue
        value = cfg[name]
        if not _check_type(kind, value) or not check(value):
            errors.append(f"{name}: {json.dumps(value)} is not valid (it must be {want})")
    known = set(fields) | set(_FILLED) | {"_comment"}
    unknown = sorted(set(cfg) - known)
    if unknown:
        errors.append(f"unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(fields))})")
    if errors:
        raise PipelineConfigError(f"{source}: invalid yolo config:\n  " + "\n  ".join(errors))
    out = dict(cfg)
    for name, (kind, _, _) in fields.items():
        if kind is float:
            out[name] = float(out[name])
    return out


def load_template(path: str | Path | None = None) -> dict:
    path = Path(path) if path is not None else TEMPLATE
    if not path.is_file():
        raise PipelineConfigError(f"{path}: no yolo template (fix: restore pipelines/yolo.json from the repo)")
    try:
        cfg = json.loads(path.read_text())
    except ValueError as exc:
        raise PipelineConfigError(f"{path}: not valid JSON: {exc}") from None
    return validate(cfg, path)


def read(model_dir: str | Path) -> dict:
    """The filled, validated config of a yolo model dir (or export dir)."""
    path = Path(model_dir) / CONFIG_NAME
    if not path.is_file():
        raise PipelineConfigError(f"{path}: no yolo config (fix: `karyotf config yolo --records RECORDS "
                                  f"--out {Path(model_dir)}`)")
    try:
        cfg = json.loads(path.read_text())
    except ValueError as exc:
        raise PipelineConfigError(f"{path}: not valid JSON: {exc}") from None
    return validate(cfg, path, filled=True)


def write(cfg: dict, model_dir: str | Path) -> Path:
    return atomic_write_json(Path(model_dir) / CONFIG_NAME, cfg)


def check_weights(weights: str | None) -> str | None:
    """A local weights file must exist (absolute path returned); ``preset:NAME`` must be a KerasCV YOLOv8 preset."""
    if weights is None:
        return None
    if weights.startswith(PRESET_PREFIX):
        name = weights[len(PRESET_PREFIX):]
        known = sorted({b[0] for b in BACKBONES.values()} | {b[0] + "_coco" for b in BACKBONES.values()})
        if name not in known:
            raise PipelineConfigError(f"weights: unknown preset {name!r} (choose one of {', '.join(known)}; a preset "
                                      "is downloaded at run time, so it needs network)")
        return weights
    p = Path(weights).expanduser()
    if not p.is_file():
        raise PipelineConfigError(f"weights: {p} is not a file (fix: a Keras weights file of the backbone, e.g. "
                                  "saved with backbone.save_weights('backbone.weights.h5'); or preset:NAME with network)")
    return str(p.resolve())


def fill(records_dir: str | Path, *, steps: int | None = None, batch: int | None = None,
         image_size: int | None = None, learning_rate: float | None = None, augment: list[str] | None = None,
         backbone: str | None = None, weights: str | None = None, template: str | Path | None = None) -> dict:
    """The template with ``records_dir`` and the given overrides, validated (nothing written)."""
    cfg = load_template(template)
    cfg.pop("_comment", None)
    for key, value in (("steps", steps), ("batch", batch), ("image_size", image_size),
                       ("learning_rate", learning_rate), ("backbone", backbone), ("weights", weights)):
        if value is not None:
            cfg[key] = value
    if augment is not None:
        cfg["augment"] = [a.strip() for a in augment if a.strip() and a.strip().lower() != "none"]
    records_dir = Path(records_dir).resolve()
    records_paths(records_dir)  # train shards must exist (RecordsError naming the fix)
    label_map = records_dir / "label_map.pbtxt"
    classes = label_map_classes(label_map)
    cfg.update(records_dir=str(records_dir), label_map=str(label_map), num_classes=len(classes))
    if cfg.get("weights") == "coco":  # as `--fine-tune coco` for the OD API models: KerasCV's COCO backbone
        cfg["weights"] = PRESET_PREFIX + BACKBONES.get(cfg.get("backbone"), ("yolo_v8_s_backbone",))[0] + "_coco"
    cfg = validate(cfg, "yolo config", filled=True)
    cfg["weights"] = check_weights(cfg["weights"])
    return cfg


def signature(cfg: dict) -> dict:
    """What decides the shapes of the variables: checkpoints are interchangeable only if these match."""
    return {"backbone": cfg["backbone"], "num_classes": cfg["num_classes"]}


def configure(records_dir: str | Path, out_dir: str | Path | None = None, **kwargs):
    """``karyotf config yolo``: write ``out_dir/yolo.json`` and ``out_dir/karyotf.json``; return a ConfigResult."""
    out_dir = Path(out_dir) if out_dir is not None else DEFAULT_RUNS / MODEL
    cfg = fill(records_dir, **kwargs)
    existing = rundir.latest_checkpoint(out_dir) if out_dir.is_dir() else None
    if existing is not None:
        if not (out_dir / CONFIG_NAME).is_file():
            other = " (an OD API model: it has a pipeline.config)" if (out_dir / rundir.PIPELINE).is_file() else ""
            raise PipelineConfigError(f"{out_dir}: holds checkpoint {existing[0]} but no {CONFIG_NAME}{other} "
                                      "(fix: --out a new model dir)")
        old = signature(read(out_dir))
        new = signature(cfg)
        if old != new:
            what = ", ".join(f"{k} {old[k]} -> {new[k]}" for k in new if old[k] != new[k])
            raise PipelineConfigError(
                f"{out_dir}: holds checkpoint {Path(existing[0]).name} (step {existing[1]}) of another model shape "
                f"({what}) (fix: --out a new model dir, or delete the checkpoints in {out_dir} to start over)")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = write(cfg, out_dir)
    info = {
        "model": MODEL,
        "tf": "tf2",
        "template": str(TEMPLATE),
        "records_dir": cfg["records_dir"],
        "label_map": cfg["label_map"],
        "num_classes": cfg["num_classes"],
        "image_size": cfg["image_size"],
        "batch": cfg["batch"],
        "steps": cfg["steps"],
        "learning_rate": cfg["learning_rate"],
        "augment": cfg["augment"],
        "backbone": cfg["backbone"],
        "fine_tune": cfg["weights"],
        "fine_tune_type": "backbone" if cfg["weights"] else None,
    }
    info_path = rundir.write_info(out_dir, info, "run")
    return ConfigResult(path, info_path, info)


def update_steps(model_dir: str | Path, steps: int) -> None:
    """Set the total steps of an existing yolo model dir (yolo.json and karyotf.json)."""
    cfg = read(model_dir)
    if cfg["steps"] == steps:
        return
    cfg["steps"] = steps
    write(cfg, model_dir)
    info = rundir.read_info(model_dir)
    if info:
        info["steps"] = steps
        rundir.write_info(model_dir, info, "run")
