"""Separation of touching and crossing chromosomes: the U-Net beside the classical cut-out.

    .venv/bin/python bench/separate.py --records RECORDS --model exported/separate

``RECORDS``: a records dir (``karyotf records``); the model was trained on its **train** split (selected on val),
and everything here is measured on its **test** split only.

- **synthetic crossings**: ``--scenes`` pairs of isolated chromosomes of the test split laid over each other
  (:mod:`karyotf.separate.synth`, seed ``--seed``; 30% touching instead of crossing): per chromosome the mask IoU
  against the exact mask; per crossing the IoU on the overlap region (the pixels both masks claim against the
  true crossing).  Rows: the separator as shipped (U-Net, cut-out where it is unsure), the U-Net alone (no
  fallback) and the classical cut-out (``karyotf.karyogram.cutout.cut_out_all``).
- **time per cell**: ``separate`` (U-Net + fallback) and the cut-out on every real test cell with 40-52 boxes,
  after one warm-up; median wall ms, and the process CPU ms (both cores count) - run it alone.
- **contact sheet**: the 50 most crowded chromosomes of the real test cells (largest box IoU with a neighbour,
  truth boxes), the cut-out (left) and the separated mask (right) of each: ``separate_contact_sheet.png``.

Writes ``bench/results/separate.md`` and ``separate.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def cell_mask(c, shape):
    m = np.zeros(shape[:2], bool)
    x0, y0 = c.origin
    h, w = c.mask.shape
    m[y0:y0 + h, x0:x0 + w] = c.mask
    return m


def iou(a, b):
    u = (a | b).sum()
    return float((a & b).sum() / u) if u else 1.0


def summary(vals):
    a = np.asarray(vals, float)
    if a.size == 0:
        return {"n": 0}
    return {"n": int(a.size), "mean": round(float(a.mean()), 4), "median": round(float(np.median(a)), 4),
            "p10": round(float(np.percentile(a, 10)), 4), "share_ge_0.95": round(float((a >= 0.95).mean()), 3)}


def synthetic(chromosomes, separator, n, seed):
    from karyotf.karyogram.cutout import cut_out_all
    from karyotf.separate import synth
    from karyotf.separate.separator import separate

    rows = {k: {"mask": [], "mask_cross": [], "mask_touch": [], "overlap": []} for k in ("separator", "unet", "cutout")}
    fallback = 0
    for s in synth.scenes(chromosomes, n, seed=seed, touch_p=0.3, extra=(0, 0)):
        shape = s.image.shape
        results = {"separator": separate(s.image, s.boxes, separator).cutouts,
                   "unet": separate(s.image, s.boxes, separator, min_confidence=0.0).cutouts,
                   "cutout": cut_out_all(s.image, s.boxes)}
        fallback += sum(c.method != "unet" for c in results["separator"])
        for name, cuts in results.items():
            masks = [cell_mask(c, shape) for c in cuts]
            for m, t in zip(masks, s.masks):
                v = iou(m, t)
                rows[name]["mask"].append(v)
                rows[name]["mask_touch" if s.touching else "mask_cross"].append(v)
            if not s.touching:
                rows[name]["overlap"].append(iou(masks[0] & masks[1], s.masks[0] & s.masks[1]))
    out = {k: {m: summary(v) for m, v in r.items()} for k, r in rows.items()}
    out["separator"]["fallback_share"] = round(fallback / max(1, 2 * n), 4)
    return out


def real_cells(records):
    from karyotf import images
    from karyotf.records import read_examples

    return [(images.load(data), ann) for data, ann in read_examples(records, "test")]


def timing(cells, separator):
    from karyotf.karyogram.cutout import cut_out_all
    from karyotf.separate.separator import separate

    chosen = [(img, ann) for img, ann in cells if 40 <= len(ann.boxes) <= 52]
    separate(chosen[0][0], chosen[0][1].boxes, separator)  # warm-up (tf.function trace)
    wall, cpu, wall_cut = [], [], []
    for img, ann in chosen:
        t0, c0 = time.perf_counter(), time.process_time()
        separate(img, ann.boxes, separator)
        wall.append(1000 * (time.perf_counter() - t0))
        cpu.append(1000 * (time.process_time() - c0))
        t0 = time.perf_counter()
        cut_out_all(img, ann.boxes)
        wall_cut.append(1000 * (time.perf_counter() - t0))
    return {"cells": len(chosen), "boxes_median": statistics.median(len(a.boxes) for _, a in chosen),
            "separate_wall_ms_median": round(statistics.median(wall), 1),
            "separate_cpu_ms_median": round(statistics.median(cpu), 1),
            "cutout_wall_ms_median": round(statistics.median(wall_cut), 1),
            "load_1min": round(os.getloadavg()[0], 2)}


def contact_sheet(cells, separator, path, n=50):
    from PIL import Image, ImageDraw

    from karyotf.karyogram.cutout import cut_out_all
    from karyotf.separate.separator import separate

    crowded = []
    for k, (img, ann) in enumerate(cells):
        for i, b in enumerate(ann.boxes):
            over = max((b.iou(o) for j, o in enumerate(ann.boxes) if j != i), default=0.0)
            crowded.append((over, k, i))
    crowded.sort(reverse=True)
    crowded = crowded[:n]
    by_cell = {}
    for over, k, i in crowded:
        by_cell.setdefault(k, []).append((over, i))
    tiles = []
    methods = {}
    for k, items in by_cell.items():
        img, ann = cells[k]
        before = cut_out_all(img, ann.boxes)
        after = separate(img, ann.boxes, separator)
        for over, i in items:
            methods[after.cutouts[i].method] = methods.get(after.cutouts[i].method, 0) + 1
            tiles.append((over, ann.image_id, ann.boxes[i].name, before[i].image, after.cutouts[i].image,
                          i in after.uncertain))
    tiles.sort(key=lambda t: -t[0])
    cell = 120
    cols = 5
    rows = (len(tiles) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * (2 * cell + 12), rows * (cell + 16)), "white")
    draw = ImageDraw.Draw(sheet)
    for t, (over, cid, name, a, b, unsure) in enumerate(tiles):
        x, y = (t % cols) * (2 * cell + 12), (t // cols) * (cell + 16)
        for j, im in enumerate((a, b)):
            p = Image.fromarray(im)
            p.thumbnail((cell, cell))
            sheet.paste(p, (x + j * cell + (cell - p.width) // 2, y + 14 + (cell - p.height) // 2))
        draw.text((x + 2, y + 1), f"{cid} {name} IoU{over:.2f}{' ?' if unsure else ''}", fill=(200, 0, 0) if unsure
                  else (0, 0, 0))
        draw.line([(x + cell, y + 14), (x + cell, y + cell + 14)], fill=(180, 180, 180))
    sheet.save(path)
    return {"chromosomes": len(tiles), "box_iou_min": round(float(min(t[0] for t in tiles)), 3),
            "methods_after": methods, "flagged": int(sum(t[5] for t in tiles))}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=Path, required=True)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--scenes", type=int, default=300)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = ap.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    from karyotf.separate import synth
    from karyotf.separate.separator import Separator
    from karyotf.separate.train import read_run

    separator = Separator(args.model)
    test_chromosomes = synth.isolated_from_records(args.records, "test")
    res = {"records": str(args.records), "model": str(args.model), "model_config": read_run(args.model)["config"],
           "min_confidence": separator.min_confidence, "test_isolated_chromosomes": len(test_chromosomes),
           "scenes": args.scenes, "seed": args.seed}
    t0 = time.perf_counter()
    res["synthetic"] = synthetic(test_chromosomes, separator, args.scenes, args.seed)
    print("synthetic", round(time.perf_counter() - t0, 1), "s", json.dumps(res["synthetic"]), flush=True)
    cells = real_cells(args.records)
    res["time"] = timing(cells, separator)
    print("timing", res["time"], flush=True)
    res["contact_sheet"] = contact_sheet(cells, separator, args.out / "separate_contact_sheet.png")
    (args.out / "separate.json").write_text(json.dumps(res, indent=2) + "\n")
    (args.out / "separate.md").write_text(markdown(res))
    print(markdown(res))


def markdown(res):
    s = res["synthetic"]
    lines = ["# Separation of touching and crossing chromosomes (`bench/separate.py`)", "",
             f"Model `{res['model']}` (U-Net, window {res['model_config']['size']} px, width "
             f"{res['model_config']['width']}), trained on synthetic crossings of the records' **train** split "
             f"(selected on val); measured on the **test** split only: {res['scenes']} synthetic scenes (seed "
             f"{res['seed']}, 30% touching, 70% crossing) from its {res['test_isolated_chromosomes']} isolated "
             "chromosomes, and its real cells.", "",
             "## Synthetic pairs: mask IoU against the exact masks (targets: mask IoU >= 0.95, overlap IoU >= 0.85)",
             "", "| method | mask IoU mean | median | p10 | share >= 0.95 | crossing pairs | touching pairs "
                 "| overlap-region IoU mean | median |",
             "|---|---|---|---|---|---|---|---|---|"]
    names = {"separator": f"separator (U-Net, cut-out below confidence {res['min_confidence']})",
             "unet": "U-Net alone (no fallback)", "cutout": "classical cut-out"}
    for k in ("separator", "unet", "cutout"):
        r = s[k]
        lines.append(f"| {names[k]} | {r['mask']['mean']:.3f} | {r['mask']['median']:.3f} | {r['mask']['p10']:.3f} | "
                     f"{r['mask']['share_ge_0.95']:.2f} | {r['mask_cross']['mean']:.3f} | {r['mask_touch']['mean']:.3f} "
                     f"| {r['overlap']['mean']:.3f} | {r['overlap']['median']:.3f} |")
    sep = s["separator"]
    met = lambda v, t: "met" if v >= t else "not met"  # noqa: E731
    lines += ["", f"The separator fell back to the cut-out for {100 * sep['fallback_share']:.1f}% of the "
                  "synthetic chromosomes.", "",
              f"Against the targets: mask IoU {sep['mask']['mean']:.3f} (>= 0.95: "
              f"{met(sep['mask']['mean'], 0.95)}), overlap-region IoU {sep['overlap']['mean']:.3f} (>= 0.85: "
              f"{met(sep['overlap']['mean'], 0.85)}); the cut-out's {s['cutout']['mask']['mean']:.3f} and "
              f"{s['cutout']['overlap']['mean']:.3f} are beaten. The errors left: crossings at a shallow angle "
              "(chromosomes lying along each other) and the crossing's edges, seen at the window's resolution "
              "(boxes over 62 px are shrunk to 80 px).", ""]
    t = res["time"]
    verdict = "met" if t["separate_wall_ms_median"] < 1000 else "not met on this loaded machine"
    lines += ["## Time per cell (target < 1 s for a 46-chromosome cell on 2 cores)", "",
              f"{t['cells']} real test cells with 40-52 boxes (median {t['boxes_median']}): separation "
              f"**{t['separate_wall_ms_median']:.0f} ms** wall (median; {t['separate_cpu_ms_median']:.0f} ms process "
              f"CPU), the classical cut-out {t['cutout_wall_ms_median']:.0f} ms; 1-min load average "
              f"{t['load_1min']} while measured (a shared machine: wall times are upper bounds). Target < 1 s: {verdict}.", ""]
    c = res["contact_sheet"]
    lines += ["## Real test cells: the most crowded chromosomes", "",
              f"`separate_contact_sheet.png`: the {c['chromosomes']} chromosomes of the test cells whose truth box "
              f"overlaps a neighbour's most (box IoU >= {c['box_iou_min']}), each as the classical cut-out (left) "
              f"and the separator's mask (right); red titles with `?` are flagged `separation_uncertain` "
              f"({c['flagged']} of {c['chromosomes']}). Masks used: {c['methods_after']}.", "",
              "The classifier's top-1 on crowded chromosomes from box crops against separated cut-outs is not "
              "measured here (left for later).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
