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

- **the classifier on crowded chromosomes** (``--classifier DIR``, trained on the records' train split, on box
  crops or on separated cut-outs: the export says which): on the real test cells (the first ``--cells``), every truth box whose box IoU with a neighbour's truth
  box is > 0.1 is *crowded*; the classifier's top-1 (and the joint labelling's, prior ``karyotf.defaults.PRIOR``)
  when each box is read as its plain box crop, as the separator's cut-out and as the
  classical cut-out (:func:`karyotf.classify.crops.cell_crops` with ``cutouts=``: the same box window, the pixels
  outside the chromosome's mask white), on crowded, non-crowded and all chromosomes.

Writes ``bench/results/separate.md`` and ``separate.json``; ``--only classifier`` runs the last section alone and
updates the others' results in place.
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


CROWDED = 0.1
"""A chromosome is crowded when its truth box has a box IoU above this with some neighbour's truth box."""


def classifier_rows(records, separator, classifier, limit=None, split="test"):
    from tqdm import tqdm

    from karyotf import classes, images
    from karyotf.classify.crops import cell_crops
    from karyotf.classify.export import Classifier
    from karyotf.classify.joint import joint_labels
    from karyotf.defaults import PRIOR
    from karyotf.karyogram.cutout import cut_out_all
    from karyotf.records import read_examples
    from karyotf.separate.separator import separate

    clf = Classifier(classifier)
    inputs = ("box", "separated", "cutout")
    hits = {k: {"top1": [], "joint": []} for k in inputs}
    crowded, methods, cells = [], {}, 0
    t0 = time.perf_counter()
    for k, (data, ann) in enumerate(tqdm(read_examples(records, split), desc="cells", unit="cell",
                                         total=limit)):
        if limit is not None and k >= limit:
            break
        img = images.load(data)
        boxes = ann.boxes
        if not boxes:
            continue
        cells += 1
        truth = np.array([classes.NAMES.index(b.name) for b in boxes])
        crowded += [max((b.iou(o) for j, o in enumerate(boxes) if j != i), default=0.0) > CROWDED
                    for i, b in enumerate(boxes)]
        sep = separate(img, boxes, separator)
        for c in sep.cutouts:
            methods[c.method] = methods.get(c.method, 0) + 1
        for name, cuts in (("box", None), ("separated", sep.cutouts), ("cutout", cut_out_all(img, boxes))):
            cc = cell_crops(img, boxes, clf.size, cutouts=cuts)
            p = clf.probabilities_of(cc.crops, cc.features)
            hits[name]["top1"] += list(np.argmax(p, axis=1) == truth)
            j = joint_labels(p, prior=PRIOR)
            hits[name]["joint"] += list(np.array([classes.NAMES.index(n) for n in j.labels]) == truth)
    crowded = np.array(crowded, bool)
    out = {"classifier": str(classifier), "trained_on": clf.trained_on, "views": clf.views, "prior": PRIOR, "cells": cells, "limit": limit,
           "split": split,
           "crowded_iou": CROWDED, "separated_methods": methods, "seconds": round(time.perf_counter() - t0, 1),
           "rows": {}}
    for name in inputs:
        row = {}
        for part, pick in (("crowded", crowded), ("not_crowded", ~crowded), ("all", np.ones_like(crowded))):
            t, j = np.array(hits[name]["top1"])[pick], np.array(hits[name]["joint"])[pick]
            row[part] = {"n": int(pick.sum()), "top1": round(float(t.mean()), 4) if t.size else None,
                         "joint_top1": round(float(j.mean()), 4) if j.size else None,
                         "top1_right": int(t.sum())}
        out["rows"][name] = row
    # paired on the crowded chromosomes: the box crop right and the cut-out wrong, and the other way
    b, s_ = np.array(hits["box"]["top1"])[crowded], np.array(hits["separated"]["top1"])[crowded]
    out["crowded_box_only_right"], out["crowded_separated_only_right"] = int((b & ~s_).sum()), int((~b & s_).sum())
    return out


def _pair():
    """What the shipped pair held when measured: when it was packed and its parts."""
    from karyotf.models import DEFAULT_DIR, read_manifest

    m = read_manifest(DEFAULT_DIR)
    return {"packed_at": m.get("packed_at"), "parts": [k for k in ("detector", "classifier", "second_look") if m.get(k)]}


def detected_rows(records, limit):
    """The shipped pair (``Karyotyper.default()``) on the first ``limit`` test cells, its classifier reading box
    crops and separated cut-outs: the count call against the annotation's, and the label of each truth chromosome
    a counted box matches (IoU >= 0.5), crowded or not."""
    from tqdm import tqdm

    from karyotf import images
    from karyotf.classify.karyotyper import Karyotyper
    from karyotf.karyogram.call import count_call
    from karyotf.records import read_examples

    models = {k: Karyotyper.default(input=k) for k in ("box", "separated")}
    models["separated"].detector = models["box"].detector  # one detector in memory
    rows = {k: {"call_right": [], "label_right": [], "crowded": [], "seconds": []} for k in models}
    for n, (data, ann) in enumerate(tqdm(read_examples(records, "test"), desc="detected", unit="cell", total=limit)):
        if n >= limit:
            break
        img = images.load(data)
        want = count_call(ann.boxes).iscn
        crowded = [max((b.iou(o) for j, o in enumerate(ann.boxes) if j != i), default=0.0) > CROWDED
                   for i, b in enumerate(ann.boxes)]
        for k, m in models.items():
            t0 = time.perf_counter()
            found = m.find(img)
            rows[k]["seconds"].append(time.perf_counter() - t0)
            rows[k]["call_right"].append(count_call(found.boxes).iscn == want)
            for t, c in zip(ann.boxes, crowded):
                best = max(found.boxes, key=t.iou, default=None)
                if best is not None and t.iou(best) >= 0.5:
                    rows[k]["label_right"].append(best.name == t.name)
                    rows[k]["crowded"].append(c)
    out = {"cells": min(limit, len(rows["box"]["call_right"])), "pair": _pair(), "rows": {}}
    for k, r in rows.items():
        lab, cr = np.array(r["label_right"]), np.array(r["crowded"], bool)
        out["rows"][k] = {"call_right": round(float(np.mean(r["call_right"])), 4),
                          "matched": int(lab.size), "label_right": round(float(lab.mean()), 4),
                          "crowded_matched": int(cr.sum()), "crowded_label_right": round(float(lab[cr].mean()), 4),
                          "not_crowded_label_right": round(float(lab[~cr].mean()), 4),
                          "seconds_per_cell_median": round(float(np.median(r["seconds"])), 3)}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=Path, required=True)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--scenes", type=int, default=300)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    ap.add_argument("--classifier", type=Path, help="a classifier export trained on the records' train split: adds "
                    "its top-1 on crowded chromosomes from box crops and from cut-outs")
    ap.add_argument("--cells", type=int, help="the first N test cells for the classifier rows (default: all)")
    ap.add_argument("--split", default="test", choices=("test", "val"),
                    help="the classifier rows' split: test for the rows, val to check the choice of the input "
                         "where choices are made (kept beside the test rows as `classifier_val`)")
    ap.add_argument("--detected", type=int, default=0, metavar="N",
                    help="also the shipped pair on the first N test cells, box crops against separated cut-outs")
    ap.add_argument("--only", choices=("classifier", "detected"), help="run only this section; the rest of "
                    "separate.json is kept")
    args = ap.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    from karyotf.separate import synth
    from karyotf.separate.separator import Separator
    from karyotf.separate.train import read_run

    separator = Separator(args.model)
    if args.only == "classifier":
        if args.classifier is None:
            ap.error("--only classifier needs --classifier DIR")
        res = json.loads((args.out / "separate.json").read_text())
        key = "classifier" if args.split == "test" else f"classifier_{args.split}"
        res[key] = classifier_rows(args.records, separator, args.classifier, args.cells, args.split)
        _write(args.out, res)
        return
    if args.only == "detected":
        res = json.loads((args.out / "separate.json").read_text())
        res["detected"] = detected_rows(args.records, args.detected or 60)
        _write(args.out, res)
        return
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
    if args.classifier is not None:
        res["classifier"] = classifier_rows(args.records, separator, args.classifier, args.cells)
    if args.detected:
        res["detected"] = detected_rows(args.records, args.detected)
    _write(args.out, res)


def _write(out, res):
    (out / "separate.json").write_text(json.dumps(res, indent=2) + "\n")
    (out / "separate.md").write_text(markdown(res))
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
              f"({c['flagged']} of {c['chromosomes']}). Masks used: {c['methods_after']}.", ""]
    lines += classifier_markdown(res.get("classifier"))
    if res.get("classifier_val"):  # the same rows on val, where the choice of the input is made
        v = res["classifier_val"]
        lines += [f"The choice checked on the **val** split ({v['cells']} cells, truth boxes; the same classifier):",
                  "", "| input | crowded top-1 | crowded joint | not crowded top-1 | all top-1 | all joint |",
                  "|---|---|---|---|---|---|"]
        for k in ("box", "separated", "cutout"):
            x = v["rows"][k]
            lines.append(f"| {k} | {x['crowded']['top1']:.3f} (n {x['crowded']['n']}) | "
                         f"{x['crowded']['joint_top1']:.3f} | {x['not_crowded']['top1']:.3f} | {x['all']['top1']:.3f} "
                         f"| {x['all']['joint_top1']:.3f} |")
        lines.append("")
    lines += detected_markdown(res.get("detected"))
    return "\n".join(lines)


def detected_markdown(d):
    if d is None:
        return []
    names = {"box": "box crops", "separated": "separated cut-outs (the default)"}
    lines = ["## The shipped pair reading box crops or separated cut-outs (detected boxes)", "",
             f"`Karyotyper.default(input=...)` on the first {d['cells']} real **test** cells (the shipped pair as "
             f"packed {d['pair']['packed_at']}: {' + '.join(d['pair']['parts'])}; its candidates and joint labelling "
             "unchanged; only the classifier's input differs): the count call equal to the "
             "annotation's, and the label of each truth chromosome that a counted box matches (IoU >= 0.5). A check "
             "that the default holds on detected boxes (duplicates and fragments among the candidates), not a "
             "choice made on test.", "",
             "| classifier input | count call right | matched chromosomes | label right | crowded: n | crowded "
             "label right | not crowded label right | s a cell (median) |", "|---|---|---|---|---|---|---|---|"]
    for k in ("box", "separated"):
        r = d["rows"][k]
        lines.append(f"| {names[k]} | {r['call_right']:.3f} | {r['matched']} | {r['label_right']:.3f} | "
                     f"{r['crowded_matched']} | {r['crowded_label_right']:.3f} | {r['not_crowded_label_right']:.3f} | "
                     f"{r['seconds_per_cell_median']:.2f} |")
    extra = d["rows"]["separated"]["seconds_per_cell_median"] - d["rows"]["box"]["seconds_per_cell_median"]
    return lines + ["", f"The separation costs {extra:.2f} s a cell more (median wall time on this shared machine).",
                    ""]


def classifier_markdown(c):
    if c is None:
        return ["The classifier's top-1 on crowded chromosomes from box crops against separated cut-outs is not "
                "measured here (run with `--classifier DIR`).", ""]
    on = c.get("trained_on", "box")    # rows made before it was recorded: the classifiers then were trained on box crops
    names = {"box": "box crop" + (" (what it was trained on)" if on == "box" else ""),
             "separated": "separator's cut-out (U-Net, cut-out fallback" + ("; what it was trained on)"
                                                                           if on == "separated" else ")"),
             "cutout": "classical cut-out"}
    trained = ("**on box crops** (the cut-out rows read an input it never saw)" if on == "box" else
               "**on the separator's cut-outs** (`karyotf classifier train --input separated`: the box-crop and "
               "classical cut-out rows read inputs it never saw)")
    r = c["rows"]
    lines = ["## The classifier on crowded chromosomes: box crops against separated cut-outs", "",
             f"Classifier `{c['classifier']}` ({c['views']} views), trained on the records' **train** split {trained}"
             f"; truth boxes of {'all' if c.get('limit') is None else 'the first'} {c['cells']} real **test** cells. *Crowded*: a truth box with box IoU > "
             f"{c['crowded_iou']} with some neighbour's truth box. Each input is the same box window "
             "(`karyotf.classify.crops.cell_crops`, `cutouts=`), with every pixel outside the chromosome's mask "
             "white for the cut-outs; the measurements (size, darkness, fill) stay the box's. Joint: the joint "
             f"labelling (prior `{c['prior']}`) over the cell's probabilities.", "",
             "| input | crowded top-1 | crowded joint top-1 | not crowded top-1 | not crowded joint | all top-1 "
             "| all joint |", "|---|---|---|---|---|---|---|"]
    for k in ("box", "separated", "cutout"):
        x = r[k]
        lines.append(f"| {names[k]} | {x['crowded']['top1']:.3f} | {x['crowded']['joint_top1']:.3f} | "
                     f"{x['not_crowded']['top1']:.3f} | {x['not_crowded']['joint_top1']:.3f} | {x['all']['top1']:.3f} "
                     f"| {x['all']['joint_top1']:.3f} |")
    n = r["box"]
    better = (r["separated"]["crowded"]["top1"] > n["crowded"]["top1"]
              and r["separated"]["all"]["top1"] >= n["all"]["top1"])
    from scipy.stats import binomtest

    a, b = c["crowded_box_only_right"], c["crowded_separated_only_right"]
    p = binomtest(min(a, b), a + b, 0.5).pvalue if a + b else 1.0
    lines += ["", f"n: {n['crowded']['n']} crowded, {n['not_crowded']['n']} not crowded, {n['all']['n']} in all "
                  f"(separator's masks: {c['separated_methods']}). On the crowded chromosomes the box crop alone is "
                  f"right on {a}, the separator's cut-out alone on {b} (McNemar's exact test: p = {p:.1g}).", "",
              ("Verdict: the separated cut-outs are better on crowded chromosomes and not worse overall: they are "
               "the classifier's default input (`karyotf.defaults.CLASSIFIER_INPUT` = `separated`; "
               "`karyotf karyogram --classifier-input box` for box crops)." if better else
               "Verdict: the separated cut-outs are not better on crowded chromosomes without being worse overall, "
               "so the classifier keeps reading box crops (`karyotf.defaults.CLASSIFIER_INPUT` = `box`)."), ""]
    return lines


if __name__ == "__main__":
    main()
