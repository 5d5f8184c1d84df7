"""Empty and mismatched boxes: how the box check of ``karyotf.boxcheck`` separates true boxes from boxes on slide.

    .venv/bin/python bench/boxcheck.py ../shared/data/cil54816 --out bench/results/boxcheck.md

For every cell: the foreground share of each true box; the cell's own boxes must raise no ``image_mismatch``;
the XML of another cell (the cell 7 places on, boxes outside the image dropped) laid on the image should.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from karyotf import images  # noqa: E402
from karyotf.annotations import load_dataset  # noqa: E402
from karyotf.boxcheck import WEAK_BOX_FOREGROUND, check_boxes  # noqa: E402
from karyotf.defaults import DUPLICATE_IOU, EMPTY_BOX_FOREGROUND  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path)
    ap.add_argument("--out", type=Path, default=Path("bench/results/boxcheck.md"))
    args = ap.parse_args(argv)
    t0 = time.time()
    anns, _ = load_dataset(args.src, progress=False, check_images=False)
    fg, own_flagged, own_empty_cells, other_flagged, other_empty, dups = [], 0, 0, 0, [], 0
    for k, a in enumerate(anns):
        arr = images.load(a.image_path)
        c = check_boxes(arr, a.boxes)
        fg += c.foreground
        own_flagged += c.mismatch is not None
        own_empty_cells += bool(c.empty)
        dups += len(c.duplicates)
        o = anns[(k + 7) % len(anns)]
        h, w = arr.shape[:2]
        co = check_boxes(arr, [b for b in o.boxes if b.xmax <= w and b.ymax <= h])
        other_flagged += co.mismatch is not None
        other_empty.append(len(co.empty))
    fg = np.array(fg)
    n = len(anns)
    lines = [
        "# Box check: empty boxes and images that do not match their XML", "",
        f"`.venv/bin/python bench/boxcheck.py {args.src.name}` ({time.time() - t0:.0f} s)", "",
        f"{n} cells, {len(fg)} true boxes.", "",
        "| measure | value |", "|---|---|",
        f"| true boxes: foreground share, min / 0.1% / 1% / median | {fg.min():.3f} / "
        + " / ".join(f"{v:.3f}" for v in np.percentile(fg, [0.1, 1, 50])) + " |",
        f"| true boxes below EMPTY_BOX_FOREGROUND ({EMPTY_BOX_FOREGROUND:g}): flagged `empty_box` | "
        f"{(fg < EMPTY_BOX_FOREGROUND).sum()} |",
        f"| true boxes below WEAK_BOX_FOREGROUND ({WEAK_BOX_FOREGROUND:g}) | {(fg < WEAK_BOX_FOREGROUND).sum()} |",
        f"| cells with their own XML flagged `image_mismatch` | {own_flagged} of {n} |",
        f"| cells with their own XML with an `empty_box` | {own_empty_cells} of {n} |",
        f"| cells with another cell's XML flagged `image_mismatch` | {other_flagged} of {n} "
        f"({100 * other_flagged / n:.1f}%) |",
        f"| another cell's XML: empty boxes per cell, median | {np.median(other_empty):.0f} |",
        f"| duplicate pairs (IoU >= DUPLICATE_IOU, {DUPLICATE_IOU:g}) among the true boxes | {dups} |",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
