"""Tight rotated boxes versus rotated-corner boxes: mean IoU with boxes drawn around the rotated chromosome.

    .venv/bin/python bench/augment_iou.py [SRC] [--images N] [--angles 15,30,45,60] [--out bench/results/augment_iou.md]

SRC defaults to karyotf's 32-cell sample.  For every chromosome box of the first N cells and every angle the
image is rotated (canvas grown, as ``karyotf augment --ops rotate`` does) and two boxes are compared with two
references:

- ``mask``: the chromosome's foreground mask (Otsu inside the original box, central component), warped as an
  image with nearest-neighbour sampling, and the box around its pixels: "the box drawn around the rotated mask".
- ``resegment``: an independent check: Otsu again on the *rotated* image inside the loose corner box, central
  component, and the box around it (no use of the pre-rotation mask).

``tight`` is :func:`karyotf.augment.rotate` (mask points mapped through the rotation); ``corner`` is the box
of the four rotated corners of the original box.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from karyotf import augment as A  # noqa: E402
from karyotf.annotations import Box, load_dataset  # noqa: E402


def _bbox(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return None
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def measure(src: str | Path, n_images: int = 8, angles=(15.0, 30.0, 45.0, 60.0)) -> dict:
    anns, _ = load_dataset(src, progress=False)
    anns = anns[:n_images]
    iou = {("tight", "mask"): [], ("corner", "mask"): [], ("tight", "resegment"): [], ("corner", "resegment"): []}
    n_boxes = fallbacks = 0
    for ann in anns:
        image = A.load_image(ann.image_path)
        h, w = image.shape[:2]
        gray = A.gray_of(image)
        masks = []
        for b in ann.boxes:
            x0, y0, x1, y1 = A.box_window(b, w, h)
            masks.append(((x0, y0), A.foreground_mask(image, b, gray=gray).astype(np.uint8)))
        for angle in angles:
            rotated, tight = A.rotate(image, ann.boxes, angle)
            _, corner = A.rotate(image, ann.boxes, angle, tight=False)
            m, nw, nh = A.rotation_matrix(angle, w, h)
            rotated_gray = A.gray_of(rotated)
            for b, mk, t, c in zip(ann.boxes, masks, tight, corner):
                n_boxes += 1
                # warp the mask window onto the loose box's window only (same map, local coordinates)
                (ix, iy), mask = mk
                ox, oy, ox1, oy1 = A.box_window(c, nw, nh)
                m_local = m.copy()
                m_local[:, 2] = m[:, :2] @ np.array([ix, iy]) + m[:, 2] - np.array([ox, oy])
                local = _bbox(A.warp(mask, m_local, ox1 - ox, oy1 - oy, 0, nearest=True))
                ref = None if local is None else (local[0] + ox, local[1] + oy, local[2] + ox, local[3] + oy)
                if ref is None:
                    fallbacks += 1
                    continue
                ref_box = Box(*ref, b.name)
                iou[("tight", "mask")].append(t.iou(ref_box))
                iou[("corner", "mask")].append(c.iou(ref_box))
                reseg = A.foreground_mask(rotated, c, gray=rotated_gray)
                rb = _bbox(reseg)
                if rb is not None:
                    x0, y0, _, _ = A.box_window(c, nw, nh)
                    ref2 = Box(rb[0] + x0, rb[1] + y0, rb[2] + x0, rb[3] + y0, b.name)
                    iou[("tight", "resegment")].append(t.iou(ref2))
                    iou[("corner", "resegment")].append(c.iou(ref2))
    mean = {k: statistics.fmean(v) for k, v in iou.items()}
    return {"images": len(anns), "angles": list(angles), "boxes": n_boxes, "empty_masks": fallbacks,
            "tight_mean_iou": mean[("tight", "mask")], "corner_mean_iou": mean[("corner", "mask")],
            "tight_mean_iou_resegment": mean[("tight", "resegment")],
            "corner_mean_iou_resegment": mean[("corner", "resegment")],
            "tight_median_iou": statistics.median(iou[("tight", "mask")]),
            "corner_median_iou": statistics.median(iou[("corner", "mask")]),
            "tight_better_share": float(np.mean(np.array(iou[("tight", "mask")]) > np.array(iou[("corner", "mask")])))}


def main(argv=None) -> int:
    from karyotf.paths import SAMPLE_DIR

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", nargs="?", default=str(SAMPLE_DIR))
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--angles", default="15,30,45,60")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "augment_iou.md"))
    args = ap.parse_args(argv)
    angles = tuple(float(a) for a in args.angles.split(","))
    r = measure(args.src, args.images, angles)
    text = (f"# Tight vs rotated-corner boxes after rotation\n\n"
            f"`.venv/bin/python bench/augment_iou.py {Path(args.src).name} --images {args.images} "
            f"--angles {args.angles}`\n\n"
            f"{r['images']} cells, angles {', '.join(f'{a:g}' for a in angles)} deg, {r['boxes']} rotated boxes "
            f"({r['empty_masks']} with an empty mask skipped).\n\n"
            f"| box | mean IoU vs rotated mask | median | mean IoU vs re-segmented rotated image |\n"
            f"|---|---|---|---|\n"
            f"| tight (mask) | {r['tight_mean_iou']:.3f} | {r['tight_median_iou']:.3f} | "
            f"{r['tight_mean_iou_resegment']:.3f} |\n"
            f"| rotated corners | {r['corner_mean_iou']:.3f} | {r['corner_median_iou']:.3f} | "
            f"{r['corner_mean_iou_resegment']:.3f} |\n\n"
            f"Tight box better than the corner box for {100 * r['tight_better_share']:.1f}% of boxes.\n")
    print(text)
    from karyotf.io import atomic_write_text

    atomic_write_text(args.out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
