"""``karyotf second-look train | export``: the second look at every candidate box (is it one whole chromosome?)."""
from __future__ import annotations

from pathlib import Path

# Imports inside functions, and why: the command's stage and its helpers, imported when the command runs (so that
# `karyotf --help` and every other command start without them).


def register(sub) -> None:
    from ..paths import DEFAULT_EXPORTED, DEFAULT_RECORDS, DEFAULT_RUNS

    p = sub.add_parser("second-look", help="train and export the second look at every candidate box",
                       description="P(one whole, single chromosome) against fragment / two chromosomes / duplicate "
                                   "box / background for every candidate box a detector finds, from its crop, its "
                                   "place among the candidates and the cell; the joint labelling uses it to decide "
                                   "which boxes count (karyotf/classify/second_look.py).")
    s = p.add_subparsers(dest="second_look_command", metavar="ACTION")
    t = s.add_parser("train", help="train (or resume) on a detector's candidates",
                     description="Runs the detector over the records' train (and val) cells, labels each candidate "
                                 "by its geometry against the truth boxes, trains; selects on val; resumable.")
    t.add_argument("--detector", type=Path, required=True, help="the detector's export dir")
    t.add_argument("--records", type=Path, default=DEFAULT_RECORDS, help="records dir (train and val splits)")
    t.add_argument("--out", type=Path, default=DEFAULT_RUNS / "second_look", help="run dir")
    g = t.add_mutually_exclusive_group()
    g.add_argument("--epochs", type=int, default=None, help="epochs (default 10 without --minutes)")
    g.add_argument("--minutes", type=float, default=None, help="wall-time budget instead of epochs")
    t.add_argument("--limit", type=int, default=None, help="only the first N train cells")
    t.add_argument("--val-limit", type=int, default=None, help="only the first N val cells")
    t.add_argument("--size", type=int, default=48, help="crop side, pixels")
    t.add_argument("--width", type=int, default=8, help="filters of the first conv block")
    t.set_defaults(func=_train)
    x = s.add_parser("export", help="SavedModel of a run's best weights")
    x.add_argument("run", nargs="?", type=Path, default=DEFAULT_RUNS / "second_look", help="run dir")
    x.add_argument("--out", type=Path, default=DEFAULT_EXPORTED / "second_look", help="export dir")
    x.set_defaults(func=_export)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _train(args) -> int:
    from ..classify.second_look import SecondLookConfig, train

    result = train(args.detector, args.records, args.out, epochs=args.epochs, minutes=args.minutes,
                   config=SecondLookConfig(size=args.size, width=args.width), limit=args.limit,
                   val_limit=args.val_limit)
    print(result.text())
    print("candidates (train): " + ", ".join(f"{k} {v}" for k, v in result.counts.get("train", {}).items()))
    return 130 if result.interrupted else 0


def _export(args) -> int:
    from ..classify.second_look import export

    out = export(args.run, args.out)
    print(f"exported {args.run} to {out}/ (saved_model/, karyotf.json)")
    return 0
