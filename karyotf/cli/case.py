"""``karyotf case``: the cells of one or more cases -> each case's ISCN karyotype and case report."""
from __future__ import annotations

from pathlib import Path

# Imports inside functions, and why: the command's stage and its helpers, imported when the command runs (so that
# `karyotf --help` and every other command start without them).


def register(sub) -> None:
    from .. import defaults as D
    from ..karyogram.defaults import LOW_SCORE, NMS_IOU

    p = sub.add_parser(
        "case", help="cells of one or more patients -> one ISCN case karyotype each (clonality, mos, flags, report)",
        description="Group cells into cases by --case-pattern (as `karyotf records`), call every cell (karyogram "
                    "outputs already made are read; images are called with --model [--classifier] or from truth "
                    "boxes with --annotations) and write each case's ISCN karyotype: clonal lines with cell counts, "
                    "mos, non-clonal findings, uncounted cells and case flags. Writes OUT/cases.csv, cases.json, "
                    "cases/<case>/report.html and report.json, and OUT/cells/<image>/ (a review folder).")
    p.add_argument("cells", nargs="+", type=Path, metavar="CELLS",
                   help="images, folders of images (or images/), karyogram output folders, or folders of them")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", type=Path, metavar="EXPORT_DIR", help="exported model dir (karyotf export)")
    src.add_argument("--annotations", type=Path, metavar="XML_DIR",
                     help="folder of VOC XML named after the images (truth boxes, no model)")
    p.add_argument("--classifier", type=Path, metavar="EXPORT_DIR", default=None,
                   help="exported chromosome classifier: the model finds, it names (--model)")
    p.add_argument("--out", type=Path, default=D.CASE_DIR, help="output folder")
    p.add_argument("--case-pattern", default=D.CASE_PATTERN,
                   help="regex on the image name; its first group is the case id (default: %(default)s, as "
                        "`karyotf records`)")
    p.add_argument("--gain-min", type=int, default=D.CASE_GAIN_MIN, help="cells a line with a gain needs to be a clone")
    p.add_argument("--loss-min", type=int, default=D.CASE_LOSS_MIN, help="cells a loss-only line needs to be a clone")
    p.add_argument("--counted", type=int, default=D.CASE_COUNTED, help="cells to count by the standard")
    p.add_argument("--analysed", type=int, default=D.CASE_ANALYSED, help="cells to analyse by the standard")
    p.add_argument("--extend-to", default=",".join(map(str, D.CASE_EXTEND_TO)),
                   help="counts to extend to when mosaicism is suspected")
    p.add_argument("--uncounted-flags", default=",".join(D.CASE_UNCOUNTED_FLAGS),
                   help="cell flags that keep an unreviewed cell out of the count (comma-separated; '' for none)")
    p.add_argument("--min-score", type=float, default=None,
                   help="keep detections scoring at least this (--model; default: the model's tuned floor)")
    p.add_argument("--nms-iou", type=float, default=NMS_IOU, help="class-agnostic NMS (--model)")
    p.add_argument("--low-score", type=float, default=LOW_SCORE, help="a detection below this is low-confidence")
    p.add_argument("--use", choices=("auto", "saved_model", "frozen_graph"), default=D.USE,
                   help="which export the Detector loads (--model)")
    p.add_argument("--no-resume", action="store_true", help="remake cells already made in OUT/cells")
    p.set_defaults(func=_case)


def _case(args) -> int:
    from ..case import Rules, run_cases
    from ..classify.karyotyper import open_model
    from . import CliError

    try:
        extend = tuple(int(x) for x in args.extend_to.split(",") if x.strip())
    except ValueError:
        raise CliError(f"--extend-to {args.extend_to!r}: give cell counts, e.g. 30,50") from None
    rules = Rules(gain_min=args.gain_min, loss_min=args.loss_min, counted=args.counted, analysed=args.analysed,
                  extend_to=extend, uncounted_flags=tuple(f.strip() for f in args.uncounted_flags.split(",")
                                                          if f.strip()))
    model = open_model(args.model, use=args.use, classifier=args.classifier)
    run = run_cases(args.cells, args.out, model=model, annotations=args.annotations, case_pattern=args.case_pattern,
                    rules=rules, resume=not args.no_resume, min_score=args.min_score, nms_iou=args.nms_iou,
                    low_score=args.low_score)
    print(run.text())
    return 0
