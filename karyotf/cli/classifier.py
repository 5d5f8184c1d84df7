"""``karyotf classifier train | eval | export``: the chromosome classifier stage (a detector finds, this names)."""
from __future__ import annotations

import argparse
from pathlib import Path

# Imports inside functions, and why: the command's stage and its helpers, imported when the command runs (so that
# `karyotf --help` and every other command start without them).


def register(sub) -> None:
    from ..classify import VIEWS
    from .prior import add_prior_option
    from ..classify.crops import SIZE
    from ..classify.data import INPUTS
    from ..classify.train import ClassifierConfig
    from ..paths import DEFAULT_EXPORTED, DEFAULT_RECORDS, DEFAULT_RUNS

    p = sub.add_parser("classifier", help="train, evaluate and export the chromosome classifier",
                       description="The classifier names each chromosome from its box crop, its size beside the "
                                   "others of its cell, and (by default) attention over the whole cell.")
    csub = p.add_subparsers(dest="classifier_command", metavar="ACTION")
    from . import DefaultsHelpFormatter as fmt  # each default once, none for None

    t = csub.add_parser("train", formatter_class=fmt, help="train (or resume) a classifier on the records",
                        description="Train on the records' train split, keep the weights with the best val top-1. "
                                    "Rerun to resume; Ctrl-C / SIGTERM save a checkpoint (exit 130).")
    t.add_argument("records", nargs="?", type=Path, default=DEFAULT_RECORDS, help="records dir")
    t.add_argument("--out", type=Path, default=DEFAULT_RUNS / "classifier", help="run dir")
    length = t.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, default=None, help="epochs (default 10 when --minutes is not given)")
    length.add_argument("--minutes", type=float, default=None, help="time budget instead of epochs (see --clock)")
    t.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="what --minutes measure: wall time, or this process's CPU time over the cores (a budget "
                        "other jobs on a shared machine do not eat)")
    t.add_argument("--size", type=int, default=SIZE, help="crop canvas side, pixels")
    t.add_argument("--no-context", action="store_true", help="no cell-context attention (each chromosome alone)")
    t.add_argument("--width", type=int, default=ClassifierConfig.width, help="filters of the first conv block (x2 each block)")
    t.add_argument("--batch", type=int, default=ClassifierConfig.cells_per_batch, help="cells per batch")
    t.add_argument("--learning-rate", type=float, default=ClassifierConfig.learning_rate,
                   help="peak learning rate (cosine schedule)")
    t.add_argument("--seed", type=int, default=ClassifierConfig.seed, help="random seed")
    t.add_argument("--input", choices=INPUTS, default=None,
                   help="what it learns from for each truth box: the box crop, or the separated cut-out (the box "
                        "window with everything outside the chromosome's mask white: what `karyogram` reads by "
                        "default); default: a resumed run's own, else box")
    t.set_defaults(func=_train)

    e = csub.add_parser("eval", formatter_class=fmt, help="top-1 / top-3, joint labelling, count calls, confusion",
                        description="Evaluate a classifier run or export from the truth boxes of one split.")
    e.add_argument("model", nargs="?", type=Path, default=DEFAULT_EXPORTED / "classifier",
                   help="classifier export dir or run dir")
    e.add_argument("--records", type=Path, default=None, help="records dir (default: the one it was trained on)")
    e.add_argument("--split", default="test", choices=("train", "val", "test"), help="split")
    e.add_argument("--out", type=Path, default=None, help="output dir (default: MODEL/eval)")
    e.add_argument("--no-plots", action="store_true", help="skip the confusion matrix picture")
    e.add_argument("--views", type=int, default=VIEWS,
                   help="test-time orientations of each crop, 1 (as it is) to 8 (every flip and quarter turn)")
    add_prior_option(e)
    e.set_defaults(func=_eval)

    x = csub.add_parser("export", formatter_class=fmt, help="SavedModel + label map of a run's best weights")
    x.add_argument("run", nargs="?", type=Path, default=DEFAULT_RUNS / "classifier", help="classifier run dir")
    x.add_argument("--out", type=Path, default=DEFAULT_EXPORTED / "classifier", help="export dir")
    x.set_defaults(func=_export)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _train(args) -> int:
    from ..classify.train import RUN_FILE, ClassifierConfig, read_run, train

    if args.input is None:   # a resumed run's own input, else the default
        saved = read_run(args.out)["config"] if (args.out / RUN_FILE).is_file() else {}
        args.input = saved.get("input", ClassifierConfig.input)
    cfg = ClassifierConfig(size=args.size, context=not args.no_context, width=args.width,
                           cells_per_batch=args.batch, learning_rate=args.learning_rate, seed=args.seed,
                           input=args.input)
    result = train(args.records, args.out, epochs=args.epochs, minutes=args.minutes, config=cfg, clock=args.clock)
    print(result.text())
    return 130 if result.interrupted else 0


def _eval(args) -> int:
    from ..classify.evaluate import evaluate

    report = evaluate(args.model, args.records, split=args.split, out_dir=args.out, plots=not args.no_plots,
                      prior=args.prior,
                      views=args.views)
    print(report.table(), end="")
    print(f"written to {report.out_dir}: " + ", ".join(p.name for p in report.files.values()))
    return 0


def _export(args) -> int:
    from ..classify.export import export

    out = export(args.run, args.out)
    print(f"exported {args.run} to {out}/ (saved_model/, label_map.pbtxt, karyotf.json)")
    return 0
