"""``karyotf models``: the model pair shipped with karyotf and the local exports."""
from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    from .. import defaults as D

    p = sub.add_parser(
        "models",
        help="the default model pair shipped with karyotf (checked) and the local exports, with their numbers",
        description="List the model pair shipped with karyotf (every file's sha256 checked; the numbers of its "
                    "model card) and the export dirs under --exported (kind, val top-1, score floor, eval F1). "
                    "--card prints the default pair's model card.")
    p.add_argument("--exported", type=Path, default=D.EXPORTED_DIR, help="folder of local export dirs")
    p.add_argument("--card", action="store_true", help="print the default pair's model card")
    p.set_defaults(func=_models)


def _models(args) -> int:
    from ..models import DEFAULT_DIR, card, list_models

    if args.card:
        text = card()
        print(text if text else f"{DEFAULT_DIR}: no model card")
        return 0 if text else 2
    rows = list_models(args.exported)
    if not rows:
        print(f"no models: no default pair in {DEFAULT_DIR} and no export under {args.exported}/")
        return 1
    print("  name                         kind                               numbers")
    for r in rows:
        print(r.text())
        print(f"    {r.path}")
    print("* = used when no --model is given (karyotf karyogram / detect / eval default)")
    return 1 if any(r.problem for r in rows if r.default) else 0
