"""``karyotf review``."""
from __future__ import annotations

from pathlib import Path

# Imports inside functions, and why: the command's stage and its helpers, imported when the command runs (so that
# `karyotf --help` and every other command start without them).


def register(sub) -> None:
    from .. import defaults as D

    p = sub.add_parser(
        "review",
        help="review karyograms in the browser: correct boxes and classes, accept; corrections become VOC",
        description="Serve a local web app over a folder of karyogram outputs (what 'karyotf karyogram --out' "
                    "wrote): correct classes (keys 1-22, X, Y, or drag to a slot), delete and draw boxes, resolve "
                    "flags, comment, accept. Accepting writes <image>.xml (VOC) beside the cell's image and a "
                    "reviewed/ karyogram and report; the model output stays as it was. With --export-voc, gather "
                    "the reviewed cells into a VOC dataset for 'karyotf records' instead of serving.")
    p.add_argument("dir", type=Path, metavar="DIR",
                   help="folder of karyogram outputs (one cell, or one per sub-folder)")
    p.add_argument("--host", default=D.REVIEW_HOST,
                   help="address to listen on; anything but a loopback address exposes the folder (a warning is "
                        "printed)")
    p.add_argument("--port", type=int, default=D.REVIEW_PORT, help="port (0: a free port, printed)")
    p.add_argument("--reviewer", default=None, help="name written into every review (default: the login name)")
    p.add_argument("--case-pattern", default=D.CASE_PATTERN,
                   help="regex on the image name whose first group is the case id, for review by case (/cases)")
    p.add_argument("--export-voc", type=Path, default=None, metavar="OUT",
                   help="write the reviewed cells to OUT/images + OUT/annotations and exit")
    p.set_defaults(func=_review)


def _review(args) -> int:
    if args.export_voc is not None:
        from ..review.store import export_voc

        print(export_voc(args.dir, args.export_voc).text())
        return 0
    from ..review.server import serve

    serve(args.dir, host=args.host, port=args.port, reviewer=args.reviewer, case_pattern=args.case_pattern)
    return 0
