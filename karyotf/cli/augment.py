"""``karyotf augment``: write augmented copies (image + VOC XML) of an annotated dataset."""
from __future__ import annotations

from pathlib import Path

# Imports inside functions, and why: the command's stage and its helpers, imported when the command runs (so that
# `karyotf --help` and every other command start without them).


def register(sub) -> None:
    from .. import defaults as D
    from ..augment import OPS, PRESETS

    ops_help = "; ".join(f"{n}{':' + ':'.join(f'{d:g}' for d in s.defaults) if s.defaults else ''} = {s.help}"
                         for n, s in OPS.items())
    presets_help = "; ".join(f"{k} = {','.join(v)}" for k, v in PRESETS.items())
    p = sub.add_parser(
        "augment", help="write augmented images + VOC XML (rotations with tight boxes, flips, crops, ...)",
        description="Write COPIES augmented versions of every annotated image of SRC to OUT/images + "
                    "OUT/annotations (readable by `karyotf records`), reproducibly from SEED, with augment.json "
                    "and augment_grid.png. Ops: " + ops_help + ". Presets: " + presets_help + ".")
    p.add_argument("src", nargs="?", type=Path, default=None,
                   help="dataset folder (default: the built-in 32-cell sample)")
    p.add_argument("--out", type=Path, default=D.AUGMENT_DIR, help="output folder")
    p.add_argument("--copies", type=int, default=D.AUGMENT_COPIES, help="augmented copies per image")
    p.add_argument("--seed", type=int, default=D.AUGMENT_SEED, help="random seed")
    p.add_argument("--ops", default=D.AUGMENT_OPS,
                   help="comma-separated ops / presets, params after colons, e.g. rot90,rotate:-15:15,crop:0.5:0.7")
    p.add_argument("--chain", action="store_true",
                   help="pass every copy through all ops, each with probability --p (default: one op per copy, "
                        "cycling through the ops)")
    p.add_argument("--p", type=float, default=D.AUGMENT_P, help="op probability with --chain")
    p.add_argument("--with-originals", action="store_true", help="also copy the originals into OUT")
    p.add_argument("--no-grid", action="store_true", help="do not draw augment_grid.png")
    p.add_argument("--grid-images", type=int, default=D.GRID_IMAGES, help="originals (rows) in the grid")
    p.add_argument("--strict", action="store_true", help="stop at the first bad annotation instead of skipping it")
    p.add_argument("--exif-transpose", action="store_true",
                   help="read images in their EXIF orientation (when the boxes were drawn on the turned view)")
    p.set_defaults(func=_augment)


def _augment(args) -> int:
    from ..augment import augment_dataset
    from ..paths import SAMPLE_DIR

    result = augment_dataset(args.src or SAMPLE_DIR, args.out, copies=args.copies, seed=args.seed, ops=args.ops,
                             chain=args.chain, p=args.p, include_originals=args.with_originals,
                             grid=not args.no_grid, grid_images=args.grid_images, strict=args.strict,
                             exif_transpose=args.exif_transpose)
    print(result.text())
    return 0
