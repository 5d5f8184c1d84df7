"""Karyotyping speed with the shipped default pair: the first cell from a cold start, then cells per minute.

    .venv/bin/python bench/throughput.py            # the 32 cells of the built-in sample, 2 cores

Rows (``bench/results/throughput.md`` / ``.json``):

- **first cell**: ``karyotf karyogram CELL.jpg --out DIR`` in a fresh process, wall time from start to exit
  (Python and TensorFlow start-up, the sha256 check, loading the models, one karyogram written), and its CPU time;
- **stream**: ``karyotf karyogram`` over a folder of cells in one process: the models loaded once, every karyogram,
  report and ``calls.csv`` written; cells per minute after the models are loaded, and the load time apart.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _children_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    from karyotf.paths import SAMPLE_DIR

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=Path, default=SAMPLE_DIR / "images")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "throughput.md")
    args = p.parse_args()
    images = sorted(args.images.glob("*.jpg"))
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        c0 = _children_cpu()
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "karyotf", "karyogram", str(images[0]), "--out", f"{tmp}/one"],
                       check=True, capture_output=True)
        first = time.perf_counter() - t0
        first_cpu = _children_cpu() - c0

        from karyotf.classify.karyotyper import Karyotyper
        from karyotf.karyogram.build import karyograms

        t0 = time.perf_counter()
        k = Karyotyper.default()
        load = time.perf_counter() - t0
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        karyograms(images, f"{tmp}/all", model=k, progress=False)
        stream = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
    row = {"cells": len(images), "first_cell_seconds": round(first, 2), "first_cell_cpu_seconds": round(first_cpu, 2),
           "load_average_before": round(load_before, 2), "load_seconds": round(load, 2),
           "stream_seconds": round(stream, 2), "seconds_per_cell": round(stream / len(images), 3),
           "cells_per_minute": round(60 * len(images) / stream, 1), "cpu_seconds_per_cell": round(cpu / len(images), 3),
           "load_average": os.getloadavg(), "cores": os.cpu_count()}
    md = ("# Karyotyping speed with the shipped default pair\n\n"
          f"Produced by `bench/throughput.py` on {row['cores']} cores (1-min load average {load_before:.1f} before, "
          f"{row['load_average'][0]:.1f} at the end: on a shared machine wall times are upper bounds; the first "
          f"cell's CPU seconds (user + system of its process) do not depend on the load); {row['cells']} cells of "
          "the built-in sample.\n\n"
          "| first cell from a cold start (s) | its CPU s | models loaded (s) | s per cell, streamed | "
          "cells per minute | CPU s per cell |\n|---|---|---|---|---|---|\n"
          f"| {row['first_cell_seconds']} | {row['first_cell_cpu_seconds']} | {row['load_seconds']} | "
          f"{row['seconds_per_cell']} | {row['cells_per_minute']} | {row['cpu_seconds_per_cell']} |\n")
    from karyotf.io import atomic_write_json, atomic_write_text

    atomic_write_text(args.out, md)
    atomic_write_json(args.out.with_suffix(".json"), row)
    print(md)


if __name__ == "__main__":
    main()
