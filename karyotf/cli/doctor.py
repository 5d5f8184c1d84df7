"""``karyotf doctor``."""
from __future__ import annotations

# Imports inside functions, and why: the command's stage and its helpers, imported when the command runs (so that
# `karyotf --help` and every other command start without them).


def register(sub) -> None:
    p = sub.add_parser("doctor", help="print versions and check that the OD API imports and builds a model")
    p.add_argument("--quick", action="store_true", help="only check imports (no model build)")
    p.set_defaults(func=_doctor)


def _doctor(args) -> int:
    from ..doctor import run

    return run(quick=args.quick)
