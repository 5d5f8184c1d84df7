"""``karyotf zoo list`` / ``karyotf zoo pull MODEL``: the OD API model zoo checkpoints karyotf fine-tunes from."""
from __future__ import annotations

from pathlib import Path

# Imports inside functions, and why: the command's stage and its helpers, imported when the command runs (so that
# `karyotf --help` and every other command start without them).


def register(sub) -> None:
    p = sub.add_parser(
        "zoo", help="the COCO-pretrained OD API model zoo checkpoint of each model: list, pull (download + verify)",
        description="Each karyotf model has one OD API model zoo archive that fits it (what `karyotf config MODEL "
                    "--fine-tune coco` uses). Archives are cached in $KARYOTF_CACHE/zoo (default ~/.cache/karyotf/"
                    "zoo) with a sha256 beside each; $KARYOTF_ZOO_URL replaces the zoo's base address (a mirror).")
    zsub = p.add_subparsers(dest="zoo_command", metavar="SUBCOMMAND")
    ls = zsub.add_parser("list", help="each model's archive, checkpoint prefix, restore type and cache state")
    ls.add_argument("--cache", type=Path, default=None, help="zoo cache folder (default: $KARYOTF_CACHE/zoo)")
    ls.set_defaults(func=_list)
    pull = zsub.add_parser("pull", help="download (resumable), verify and unpack a model's archive into the cache")
    pull.add_argument("models", nargs="+", metavar="MODEL", help="model(s): " + ", ".join(_models()))
    pull.add_argument("--cache", type=Path, default=None, help="zoo cache folder (default: $KARYOTF_CACHE/zoo)")
    pull.add_argument("--no-progress", action="store_true", help="no progress bar")
    pull.set_defaults(func=_pull)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _models() -> list[str]:
    from ..zoo import ZOO

    return list(ZOO)


def _list(args) -> int:
    from ..zoo import listing

    for row in listing(args.cache):
        print(f"{row['model']}: {row['zoo_model']}")
        print(f"  archive      {row['url']}")
        print(f"  checkpoint   {row['checkpoint']} ({row['tf'].upper()}), fine_tune_checkpoint_type {row['fine_tune_type']}")
        print(f"  restores     {row['restores']}")
        print(f"  cached       {row['cached'] or 'no'}")
    return 0


def _pull(args) -> int:
    from ..zoo import pull

    for model in args.models:
        print(pull(model, cache=args.cache, progress=not args.no_progress).text())
    return 0
