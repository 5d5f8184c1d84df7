"""``karyotf eval``: COCO mAP and the thesis metrics of a trained model on one split of the records."""
from __future__ import annotations

from pathlib import Path

# Imports inside functions, and why: the command's stage and its helpers, imported when the command runs (so that
# `karyotf --help` and every other command start without them).


def register(sub) -> None:
    from .prior import add_prior_option
    from .. import defaults as D

    DEFAULT_RUNS, DEFAULT_EXPORTED = D.RUNS_DIR, D.EXPORTED_DIR

    p = sub.add_parser(
        "eval", help="evaluate a model: COCO mAP + precision/recall/F1, confusion matrix, PR curve",
        description="Run the model over one split of the records and write metrics.json, table.md (the thesis "
                    "Table 5.1 row plus mAP@0.5 and mAP@[.5:.95]) and PNG plots (PR curve, confusion matrix, "
                    "per-class P/R/F1, chromosomes per image). A model dir is exported from its latest checkpoint "
                    "into MODEL_DIR/export-ckpt-N first (kept for next time).")
    p.add_argument("model", nargs="?", default="default",
                   help=f"a model name (its dir is {DEFAULT_RUNS}/MODEL, else {DEFAULT_EXPORTED}/MODEL), the path of a "
                        "model dir or an export dir, or 'default': the model pair shipped with karyotf (detector + "
                        "classifier; report in eval/default unless --out)")
    p.add_argument("--model-dir", type=Path, default=None,
                   help=f"model or export dir (default: MODEL if it is a dir, else {DEFAULT_RUNS}/MODEL, else "
                        f"{DEFAULT_EXPORTED}/MODEL)")
    p.add_argument("--records", type=Path, default=None,
                   help="records dir (default: the records the model was configured with, from its pipeline.config)")
    p.add_argument("--split", default=D.EVAL_SPLIT, choices=("train", "val", "test"), help="split")
    p.add_argument("--score-threshold", type=float, default=D.SCORE_THRESHOLD,
                   help="score at or above which a detection counts for precision/recall/F1")
    p.add_argument("--iou", type=float, default=D.IOU, help="IoU for a match")
    p.add_argument("--out", type=Path, default=None,
                   help="output dir (default: MODEL_DIR/eval, or MODEL_DIR/eval-SPLIT for train/val)")
    p.add_argument("--use", default=D.USE, choices=("auto", "saved_model", "frozen_graph"),
                   help="exported format to run")
    p.add_argument("--limit", type=int, default=None, help="only the first N images (default: all)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--classifier", type=Path, default=None,
                   help="exported chromosome classifier: the model finds, it names (end-to-end metrics)")
    p.add_argument("--second-look", type=Path, default=None,
                   help="exported second look: P(whole single chromosome) of every candidate box decides which boxes "
                        "count (with --classifier)")
    add_prior_option(p)
    p.add_argument("--tune-min-score", action="store_true",
                   help="first choose the karyogram's score floor on the val split (class-agnostic F1 of the boxes "
                        "a karyogram counts) and store it in the export's karyotf.json: `karyotf karyogram` uses it "
                        "when --min-score is not given")
    p.set_defaults(func=_eval)


def model_path(model: str, model_dir: Path | None) -> Path:
    """Where ``karyotf eval MODEL [--model-dir DIR]`` looks for the model (:func:`karyotf.rundir.find_model`)."""
    from ..rundir import find_model

    return model_dir if model_dir is not None else find_model(model)


def _eval(args) -> int:
    from ..evaluate import evaluate, table_markdown
    from ..scorefloor import tune_min_score

    if args.model == "default" and args.model_dir is None:  # the shipped pair: read-only, inside the package
        from ..errors import EvaluateError
        from ..models import CLASSIFIER, DETECTOR, SECOND_LOOK, default_parts

        if args.tune_min_score:
            raise EvaluateError("--tune-min-score writes into the model's export: the shipped default pair is "
                                "read-only (fix: evaluate your own export, `karyotf eval ssd --model-dir DIR`)")
        parts = default_parts()
        args.model_dir, args.classifier = parts[DETECTOR], args.classifier or parts[CLASSIFIER]
        if args.second_look is None and args.classifier == parts[CLASSIFIER]:
            args.second_look = parts.get(SECOND_LOOK)
        args.out = args.out or Path("eval") / "default"
    if args.tune_min_score:
        floor = tune_min_score(model_path(args.model, args.model_dir), args.records, split="val", use=args.use,
                               limit=args.limit)
        print(floor.text())
    finder = None
    if args.classifier is not None:  # the model object: the model finds, the classifier names
        from ..classify.karyotyper import open_model
        from ..evaluate import resolve_export

        finder = open_model(resolve_export(model_path(args.model, args.model_dir)), use=args.use,
                            classifier=args.classifier, prior=args.prior, second_look=args.second_look)
    report = evaluate(model_path(args.model, args.model_dir), args.records, split=args.split,
                      score_threshold=args.score_threshold, iou=args.iou, out_dir=args.out, use=args.use,
                      limit=args.limit, plots=not args.no_plots, finder=finder)
    print(table_markdown([report]), end="")
    print(f"written to {report.out_dir}: " + ", ".join(p.name for p in report.files.values()))
    return 0
