"""Export and Detector speed per model at the default image size.

    .venv/bin/python bench/export_speed.py [--models ssd,faster_rcnn,rfcn] [--images 5] [--work /tmp/export_speed]

For each model: records from the built-in sample -> ``karyotf config`` at the model's default image size (batch 1)
-> train 1 step (a checkpoint to export; the weights do not matter for speed) -> ``karyotf.export.export``
(seconds, CPU seconds, SavedModel and frozen graph size) -> ``Detector`` with the SavedModel and with the frozen
graph: load seconds, first image (warm-up) and the median ms per image over ``--images`` sample images.
Results go to ``bench/results/export_speed.json`` and ``.md``.  Run it alone: the numbers are CPU-bound.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def bench_model(model: str, records: Path, work: Path, images: list[Path]) -> dict:
    from karyotf import pipelines, train
    from karyotf.detect import Detector, load_image
    from karyotf.export import export

    model_dir = work / "runs" / model
    out = work / "exported" / model
    if not (model_dir / "checkpoint").exists():
        pipelines.configure(model, records, model_dir, steps=1, batch=1)
        train.train(model_dir, steps=1, progress=False)
    cfg = pipelines.read_config(model_dir / "pipeline.config")
    row = {"model": model, "image_size": pipelines.image_size(cfg)}
    t0, c0 = time.perf_counter(), _cpu()
    export(model_dir, out)
    row["export_s"] = round(time.perf_counter() - t0, 1)
    row["export_cpu_s"] = round(_cpu() - c0, 1)
    row["saved_model_mb"] = round(_size_mb(out / "saved_model"), 1)
    row["frozen_graph_mb"] = round(_size_mb(out / "frozen_inference_graph.pb"), 1)
    arrays = [load_image(p) for p in images]
    for use in ("saved_model", "frozen_graph"):
        t0 = time.perf_counter()
        det = Detector(out, use=use)
        row[f"{use}_load_s"] = round(time.perf_counter() - t0, 1)
        det.detect(arrays[0])
        row[f"{use}_first_ms"] = round(det.last_seconds * 1000)
        times = []
        for arr in arrays:
            det.detect(arr)
            times.append(det.last_seconds * 1000)
        row[f"{use}_ms"] = round(statistics.median(times))
        del det
    print(json.dumps(row), flush=True)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="ssd,faster_rcnn,rfcn")
    ap.add_argument("--images", type=int, default=5, help="sample images timed per format")
    ap.add_argument("--work", type=Path, default=Path("/tmp/export_speed"))
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "export_speed")
    args = ap.parse_args(argv)

    from karyotf.paths import SAMPLE_DIR
    from karyotf.records import build_records

    records = args.work / "records"
    if not (records / "label_map.pbtxt").is_file():
        build_records(SAMPLE_DIR, records, progress=False)
    images = sorted((SAMPLE_DIR / "images").glob("*.jpg"))[: args.images]
    rows = [bench_model(m, records, args.work, images) for m in args.models.split(",")]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    args.out.with_suffix(".json").write_text(json.dumps({"rows": rows, "loadavg": load}, indent=2) + "\n")
    lines = [f"# Export and Detector speed ({os.cpu_count()} cores, load average at the end {load[0]:.1f})", "",
             "| model | image size | export s (CPU s) | SavedModel MB | frozen graph MB | SavedModel: load s, "
             "first ms, ms/image | frozen graph: load s, first ms, ms/image |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['image_size']} | {r['export_s']} ({r['export_cpu_s']}) | "
                     f"{r['saved_model_mb']} | {r['frozen_graph_mb']} | {r['saved_model_load_s']}, "
                     f"{r['saved_model_first_ms']}, {r['saved_model_ms']} | {r['frozen_graph_load_s']}, "
                     f"{r['frozen_graph_first_ms']}, {r['frozen_graph_ms']} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
