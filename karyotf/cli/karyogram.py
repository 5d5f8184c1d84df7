"""``karyotf karyogram`` and ``karyotf karyograms-dataset``."""
from __future__ import annotations

from pathlib import Path

# Imports inside functions, and why: the command's stage and its helpers, imported when the command runs (so that
# `karyotf --help` and every other command start without them).


def register(sub) -> None:
    from .. import defaults as D
    from .prior import add_prior_option
    from ..karyogram.defaults import DEFAULT_ROWS, LONGEST, LOW_SCORE, MIN_SCORE, NMS_IOU, ROW_PRESETS
    from ..karyogram.ideogram import DEFAULT_RESOLUTION, RESOLUTIONS
    from ..paths import SEPARATE_DIR

    rows_help = (f"karyogram rows: a preset ({', '.join(ROW_PRESETS)}) or a spec such as '1-5|6-12,X|13-18|19-22,Y' "
                 "(every class once)")
    p = sub.add_parser(
        "karyogram",
        help="metaphase image(s) -> karyogram.png, detections.json, report.html/json with the ISCN count call",
        description="Build the karyogram and the ISCN count call (e.g. 47,XY,+21) of metaphase images, from the "
                    "model pair shipped with karyotf (the default), an exported model (--model) or from VOC "
                    "annotations (--annotations, ground truth). One image "
                    "writes into --out; several write into --out/<image stem>/ plus --out/calls.csv.")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="metaphase image(s), JPEG or PNG")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", type=Path, metavar="EXPORT_DIR",
                     help="exported model dir (karyotf export); without --model and --annotations, the model pair "
                          "shipped with karyotf finds and names (`karyotf models`)")
    src.add_argument("--annotations", type=Path, metavar="XML",
                     help="VOC XML of the image, or a folder of XML named after the images")
    p.add_argument("--classifier", type=Path, metavar="EXPORT_DIR", default=None,
                   help="exported chromosome classifier (karyotf classifier export): the model finds, it names "
                        "each chromosome with the whole cell as context (--model)")
    p.add_argument("--second-look", type=Path, metavar="EXPORT_DIR", default=None,
                   help="exported second look (karyotf second-look export): P(whole single chromosome) of every "
                        "candidate box decides which boxes count (--model with --classifier)")
    add_prior_option(p)
    p.add_argument("--out", type=Path, default=D.KARYOGRAM_DIR, help="output folder")
    p.add_argument("--rows", default=DEFAULT_ROWS, help=rows_help)
    p.add_argument("--min-score", type=float, default=None,
                   help="keep detections scoring at least this (--model; default: the floor `karyotf eval "
                        f"--tune-min-score` stored with the model, else {MIN_SCORE})")
    p.add_argument("--nms-iou", type=float, default=NMS_IOU,
                   help="class-agnostic NMS between detections of different classes (--model; 1 = off)")
    p.add_argument("--low-score", type=float, default=LOW_SCORE,
                   help="detections below this are outlined and flagged as low confidence")
    p.add_argument("--use", choices=("auto", "saved_model", "frozen_graph"), default=D.USE,
                   help="which export the Detector loads (--model)")
    p.add_argument("--longest", type=float, default=LONGEST, help="pixels the longest chromosome is scaled to")
    p.add_argument("--bands", type=int, choices=RESOLUTIONS, default=DEFAULT_RESOLUTION,
                   help="ideogram resolution (bands per haploid set)")
    p.add_argument("--separate", type=Path, metavar="MODEL_DIR", default=None, nargs="?", const=SEPARATE_DIR,
                   help="each chromosome drawn from its own mask (touching and crossing chromosomes separated, "
                        "uncertain separations flagged) by a separation model (karyotf separate export; alone: the "
                        "one shipped with karyotf); without it: the classical cut-out")
    p.add_argument("--classifier-input", choices=D.CLASSIFIER_INPUTS, default=D.CLASSIFIER_INPUT,
                   help="what the classifier reads of each chromosome (a model with a classifier): its box window "
                        "with everything outside its separated mask white (the --separate model, else the shipped "
                        "one), or the plain box crop")
    p.add_argument("--straighten", action="store_true",
                   help="lay bent chromosomes straight along their medial axis (bands in order, length kept)")
    p.set_defaults(func=_karyogram)

    d = sub.add_parser(
        "karyograms-dataset",
        help="annotated metaphases -> annotated karyogram images (VOC), for detection on karyograms",
        description="Turn annotated metaphases (VOC: images/ + annotations/, or side by side) into karyogram "
                    "images with a VOC XML of each chromosome's box in the karyogram; feed DST to 'karyotf "
                    "records'. Plain pictures by default (no text a detector could read).")
    d.add_argument("src", type=Path, metavar="SRC", help="VOC dataset folder")
    d.add_argument("--out", type=Path, required=True, metavar="DST", help="output folder")
    d.add_argument("--rows", default=DEFAULT_ROWS, help=rows_help)
    d.add_argument("--labels", action="store_true", help="print class numbers, group letters and marks")
    d.add_argument("--ideograms", action="store_true", help="draw the ISCN ideogram beside each class")
    d.add_argument("--format", choices=("png", "jpg"), default="png", help="image format")
    d.add_argument("--longest", type=float, default=LONGEST, help="pixels the longest chromosome is scaled to")
    d.add_argument("--strict", action="store_true", help="stop at the first bad cell instead of skipping it")
    d.set_defaults(func=_dataset)


def _karyogram(args) -> int:
    from ..classify.karyotyper import open_model
    from ..karyogram.build import karyograms

    # the model object: the detector, or the detector and the classifier that names what it finds
    model = open_model(args.model, use=args.use, classifier=args.classifier, prior=args.prior,
                       second_look=args.second_look, input=args.classifier_input, separator=args.separate,
                       default=args.annotations is None)  # neither: the model pair shipped with karyotf
    results = karyograms(args.images, args.out, model=model, annotations=args.annotations,
                         min_score=args.min_score, nms_iou=args.nms_iou, rows=args.rows,
                         separate=args.separate, straighten=args.straighten,
                         low_score=args.low_score, longest=args.longest, resolution=args.bands)
    from ..karyogram.build import KaryogramFailure

    failed = [r for r in results if isinstance(r, KaryogramFailure)]
    for img, r in zip(args.images, results):
        if isinstance(r, KaryogramFailure):
            print(f"{img.name}: error: {r.error}")
            continue
        print(f"{img.name}: {r.call.text}")
        if r.call.iscn is None and r.call.total:
            print(f"  counts {r.call.counts_text()}")
        for f in r.call.flags:  # the review level first
            print(f"  {f.level} {f}")
        print(f"  wrote {r.paths['karyogram'].parent}/ (karyogram.png, detections.json, report.html, report.json, "
              f"{r.paths['image'].name})"
              f" in {r.timings.get('total', 0) + r.timings.get('detect', 0):.0f} ms")
    if len(results) > 1:
        print(f"calls: {args.out / 'calls.csv'}")
        print(f"{len(results) - len(failed)} of {len(results)} cell(s) done" + (
            f", {len(failed)} failed (listed in calls.csv with their errors): "
            + ", ".join(r.image.name for r in failed) if failed else ""))
    return 1 if failed else 0


def _dataset(args) -> int:
    from ..karyogram.dataset import build_karyograms_dataset

    res = build_karyograms_dataset(args.src, args.out, rows=args.rows, longest=args.longest, labels=args.labels,
                                   ideograms=args.ideograms, image_format=args.format, strict=args.strict)
    print(res.text())
    return 0
