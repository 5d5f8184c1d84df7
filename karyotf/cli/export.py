"""``karyotf export`` (SavedModel + frozen graph from a trained model dir) and ``karyotf detect`` (run an export)."""
from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    from .. import defaults as D
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

    d = sub.add_parser(
        "detect", help="detect chromosomes in images with an exported model; writes JSON and pictures",
        description="Run an exported model (from `karyotf export`) on images. Writes OUT/detections.json (per "
                    "image: boxes in pixels, classes, scores, image size, seconds; plus model and load time) and "
                    "OUT/<image>_detections.png with the boxes drawn (coloured by Denver group).")
    d.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    d.add_argument("--model", required=True,
                   help=f"export dir, or a model name meaning {DEFAULT_EXPORTED}/MODEL")
    d.add_argument("--out", type=Path, default=D.DETECTIONS_DIR, help="output dir")
    d.add_argument("--min-score", type=float, default=D.MIN_SCORE,
                   help="keep detections scoring at least this")
    d.add_argument("--use", default=D.USE, choices=("auto", "saved_model", "frozen_graph"),
                   help="which exported format to run; auto = the SavedModel if present")
    d.add_argument("--no-draw", action="store_true", help="write only detections.json, no pictures")
    d.set_defaults(func=_detect)


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


def model_export_dir(model: str) -> Path:
    """``--model`` of ``karyotf detect``: a directory as is, else ``exported/MODEL``."""
    from ..rundir import find_export

    return find_export(model)


def _detect(args) -> int:
    from ..detect import detect_images

    run = detect_images(args.images, model_export_dir(args.model), out_dir=args.out, min_score=args.min_score,
                        use=args.use, draw=not args.no_draw)
    for r in run.results:
        print(f"{r['image']}: {r['count']} chromosomes at score >= {args.min_score} ({r['seconds'] * 1000:.0f} ms)")
    print(f"wrote {run.json_path}" + (f" and {len(run.pictures)} picture(s) in {args.out}" if run.pictures else ""))
    return 0
