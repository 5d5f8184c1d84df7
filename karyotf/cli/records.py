"""``karyotf records``: VOC dataset -> sharded OD API TFRecords + label map + manifest + stats."""
from __future__ import annotations

from pathlib import Path

# Imports inside functions, and why: the command's stage and its helpers, imported when the command runs (so that
# `karyotf --help` and every other command start without them).


def register(sub) -> None:
    from .. import defaults as D

    p = sub.add_parser(
        "records", help="validate VOC annotations and write sharded TFRecords (train/val/test split by case)",
        description="Read LabelImg Pascal VOC (images and XML side by side, or images/ + annotations/), validate "
                    "every file, split by case and write OD API TFRecords, label_map.pbtxt, manifest.json, "
                    "stats.json and class_distribution.png.")
    p.add_argument("src", nargs="?", type=Path, default=None,
                   help="dataset folder (default: the built-in 32-cell sample)")
    p.add_argument("--out", type=Path, default=D.RECORDS_DIR, help="output folder")
    p.add_argument("--seed", type=int, default=D.SPLIT_SEED, help="split seed")
    p.add_argument("--split", default=",".join(f"{f:g}" for f in D.SPLIT_FRACTIONS), help="train,val,test fractions")
    p.add_argument("--case-pattern", default=D.CASE_PATTERN,
                   help="regex on the image name; its first group is the case id (default: %(default)s, CIL names "
                        "without their last digit)")
    p.add_argument("--shards", type=int, default=None, help=f"shards per split (default: one per {D.IMAGES_PER_SHARD} images)")
    p.add_argument("--strict", action="store_true", help="stop at the first bad file instead of skipping it")
    p.add_argument("--augmented-in-eval", action="store_true",
                   help="keep augmented copies of val/test cells in val/test (default: val/test hold originals only)")
    p.add_argument("--exif-transpose", action="store_true",
                   help="read images in their EXIF orientation (when the boxes were drawn on the turned view); "
                        "default: pixels as stored, as TensorFlow reads them")
    p.set_defaults(func=_records)


def _records(args) -> int:
    from ..records import build_records
    from . import CliError

    try:
        fractions = tuple(float(x) for x in args.split.split(","))
    except ValueError:
        raise CliError(f"--split {args.split!r}: give three numbers, e.g. 0.8,0.1,0.1") from None
    result = build_records(args.src, args.out, seed=args.seed, fractions=fractions, case_pattern=args.case_pattern,
                           shards=args.shards, strict=args.strict, augmented_in_eval=args.augmented_in_eval,
                           exif_transpose=args.exif_transpose)
    print(result.text())
    return 0
