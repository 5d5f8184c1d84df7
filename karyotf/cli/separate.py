"""``karyotf separate train`` and ``karyotf separate export``: the separation model (karyotf.separate)."""
from __future__ import annotations

from pathlib import Path

# Imports inside functions, and why: the command's stage and its helpers, imported when the command runs (so that
# `karyotf --help` and every other command start without them).


def register(sub) -> None:
    from ..separate.model import SeparateConfig

    d = SeparateConfig()
    p = sub.add_parser("separate", help="the separation model: each chromosome's own mask where chromosomes touch "
                                        "or cross (train, export)",
                       description="Train the separation U-Net on synthetic crossings of the records' train "
                                   "split (selected on val), or export a run for `karyotf karyogram --separate`.")
    s = p.add_subparsers(dest="separate_command", metavar="SUBCOMMAND")
    t = s.add_parser("train", help="train (or resume) a separation run on synthetic crossings",
                     description="Build synthetic crossings from the isolated chromosomes of RECORDS' train split "
                                 "(val for selection), train the U-Net, keep the best epoch on val. A rerun on the "
                                 "same --out resumes.")
    t.add_argument("records", type=Path, metavar="RECORDS", help="records dir (karyotf records)")
    t.add_argument("--out", type=Path, default=Path("runs/separate"), help="run dir")
    t.add_argument("--epochs", type=int, default=d.epochs, help="epochs")
    t.add_argument("--minutes", type=float, default=None, help="wall-time budget (stops at epochs or minutes)")
    t.add_argument("--samples", type=int, default=d.train_samples, help="training windows")
    t.add_argument("--val-samples", type=int, default=d.val_samples, help="validation windows")
    t.add_argument("--size", type=int, default=d.size, help="window side (px)")
    t.add_argument("--width", type=int, default=d.width, help="filters of the U-Net's first level")
    t.add_argument("--batch", type=int, default=d.batch, help="batch size")
    t.add_argument("--seed", type=int, default=d.seed, help="seed of the synthetic scenes")
    t.set_defaults(func=_train)
    e = s.add_parser("export", help="a run's best weights -> an export dir for --separate")
    e.add_argument("run", type=Path, metavar="RUN_DIR", help="run dir of `karyotf separate train`")
    e.add_argument("--out", type=Path, default=Path("exported/separate"), help="export dir")
    e.set_defaults(func=_export)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _train(args) -> int:
    from ..separate.model import SeparateConfig
    from ..separate.train import train

    cfg = SeparateConfig(size=args.size, width=args.width, train_samples=args.samples,
                         val_samples=args.val_samples, batch=args.batch, epochs=args.epochs, minutes=args.minutes,
                         seed=args.seed)
    state = train(args.records, args.out, cfg)
    print(f"{args.out}: epoch {state['epoch']}, best val window IoU {state['best_iou']:.4f} "
          f"(epoch {state['best_epoch']}), {state['elapsed']:.0f} s")
    return 0


def _export(args) -> int:
    from ..separate.train import export

    out = export(args.run, args.out)
    print(f"exported {args.run} -> {out}")
    return 0
