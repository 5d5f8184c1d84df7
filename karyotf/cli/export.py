"""``karyotf export`` (and ``python -m karyotf.export``): SavedModel + frozen graph from a trained model dir."""
from __future__ import annotations

from pathlib import Path

# Imports inside functions, and why: the command's stage and its helpers, imported when the command runs (so that
# `karyotf --help` and every other command start without them).


def register(sub) -> None:
    from ..paths import DEFAULT_EXPORTED, DEFAULT_RUNS

    p = sub.add_parser(
        "export", help="export a trained model: SavedModel + frozen_inference_graph.pb (+ model.tflite for ssd)",
        description="Export the latest (or a given) checkpoint of a model dir to an export dir holding saved_model/, "
                    "frozen_inference_graph.pb, pipeline.config, label_map.pbtxt and karyotf.json, for TF1 and "
                    "TF2 models alike. Written atomically: on error nothing is left behind and an older export "
                    "stays as it was. Same as `python -m karyotf.export`.")
    p.add_argument("model", nargs="?", default=None,
                   help=f"model name: reads {DEFAULT_RUNS}/MODEL, writes {DEFAULT_EXPORTED}/MODEL")
    p.add_argument("--model-dir", type=Path, default=None, help=f"trained model dir (default: {DEFAULT_RUNS}/MODEL)")
    p.add_argument("--out", type=Path, default=None,
                   help=f"export dir (default: {DEFAULT_EXPORTED}/MODEL, MODEL being the model dir's name)")
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint prefix to export, e.g. runs/ssd/ckpt-300 (default: the latest in the model dir)")
    p.add_argument("--tflite", action="store_true", help="also write model.tflite (ssd only)")
    p.set_defaults(func=_export)


def export_dirs(model: str | None, model_dir: Path | None, out: Path | None) -> tuple[Path, Path]:
    """(model dir, export dir) from ``karyotf export``'s arguments."""
    from .. import rundir
    from . import CliError

    if model is None and model_dir is None:
        raise CliError("give a MODEL name (reads runs/MODEL) or --model-dir DIR")
    if model_dir is None:
        model_dir = rundir.run_dir(model)
    if out is None:
        out = rundir.export_dir(model or model_dir.name)
    return model_dir, out


def _export(args) -> int:
    from ..export import export

    model_dir, out = export_dirs(args.model, args.model_dir, args.out)
    path = export(model_dir, out, checkpoint=args.checkpoint, tflite=args.tflite)
    print(f"exported {model_dir} -> {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``karyotf export ARGS`` as a function (``argv`` default: ``sys.argv[1:]``); ``python -m karyotf.export ARGS``
    runs ``python -m karyotf export ARGS``."""
    import sys

    from . import main as cli_main

    return cli_main(["export", *(sys.argv[1:] if argv is None else argv)])
