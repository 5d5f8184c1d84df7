"""``karyotf detect``: run an exported model on images; detections JSON and pictures."""
from __future__ import annotations

from pathlib import Path

# Imports inside functions, and why: the command's stage and its helpers, imported when the command runs (so that
# `karyotf --help` and every other command start without them).


def register(sub) -> None:
    from .. import defaults as D
    from ..paths import DEFAULT_EXPORTED

    d = sub.add_parser(
        "detect", help="detect chromosomes in images with an exported model; writes JSON and pictures",
        description="Run an exported model (from `karyotf export`) on images. Writes OUT/detections.json (per "
                    "image: boxes in pixels, classes, scores, image size, seconds; plus model and load time) and "
                    "OUT/<image>_detections.png with the boxes drawn (coloured by Denver group).")
    d.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    d.add_argument("--model", default=None,
                   help=f"export dir, or a model name meaning {DEFAULT_EXPORTED}/MODEL (default: the model pair "
                        "shipped with karyotf, its boxes named by its classifier; `karyotf models`)")
    d.add_argument("--out", type=Path, default=D.DETECTIONS_DIR, help="output dir")
    d.add_argument("--min-score", type=float, default=D.MIN_SCORE,
                   help="keep detections scoring at least this")
    d.add_argument("--use", default=D.USE, choices=("auto", "saved_model", "frozen_graph"),
                   help="which exported format to run; auto = the SavedModel if present")
    d.add_argument("--no-draw", action="store_true", help="write only detections.json, no pictures")
    d.set_defaults(func=_detect)


def model_export_dir(model: str) -> Path:
    """``--model`` of ``karyotf detect``: a directory as is, else ``exported/MODEL``."""
    from ..rundir import find_export

    return find_export(model)


def _detect(args) -> int:
    from ..detect import detect_images

    if args.model is None:  # the model pair shipped with karyotf: its classifier names the boxes
        from ..classify.karyotyper import Karyotyper

        model = Karyotyper.default()
    else:
        model = model_export_dir(args.model)
    run = detect_images(args.images, model, out_dir=args.out, min_score=args.min_score,
                        use=args.use, draw=not args.no_draw)
    for r in run.results:
        print(f"{r['image']}: {r['count']} chromosomes at score >= {args.min_score} ({r['seconds'] * 1000:.0f} ms)")
    print(f"wrote {run.json_path}" + (f" and {len(run.pictures)} picture(s) in {args.out}" if run.pictures else ""))
    return 0
