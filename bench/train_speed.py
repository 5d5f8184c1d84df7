"""Seconds per training step and peak memory of each model at its DEFAULT image size and batch, on 2 CPU cores.

    .venv/bin/python bench/train_speed.py [--steps 6] [--models ssd,faster_rcnn,rfcn] [--out bench/train_speed.json]

Builds records from the built-in 32-cell sample, then for each model (one after another, each in a fresh
process via karyotf.odapi.run_isolated so the peak RSS is that model's alone): `karyotf config MODEL` with the
template defaults, and `karyotf train` for --steps steps.  Reports the first step (TF2: tf.function tracing
included; TF1: the first session.run, graph building is in wall_s only), the median of steps 2..N and the
child's peak RSS.  A child past --max-rss-gb is killed and reported as failed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path


class _RssGuard:
    """Every 2 s: the resident memory of this process's children; SIGKILL them all past ``limit_gb``."""

    def __init__(self, limit_gb: float):
        import threading

        self.limit_kb = limit_gb * 1024 * 1024
        self.peak_gb = 0.0
        self.killed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def _children() -> list[int]:
        pids = []
        for task in Path("/proc/self/task").iterdir():
            try:
                pids += [int(p) for p in (task / "children").read_text().split()]
            except OSError:
                pass
        return pids

    @staticmethod
    def _rss_kb(pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def _run(self):
        import signal

        while not self._stop.wait(2.0):
            for pid in self._children():
                rss = self._rss_kb(pid)
                self.peak_gb = max(self.peak_gb, rss / 1024 / 1024)
                if rss > self.limit_kb:
                    self.killed = True
                    os.kill(pid, signal.SIGKILL)

    def stop(self):
        self._stop.set()
        self._thread.join()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--models", default="ssd,faster_rcnn,rfcn")
    ap.add_argument("--batch", type=int, default=None, help="override the default batch")
    ap.add_argument("--image-size", type=int, default=None, help="override the default image size")
    ap.add_argument("--work", type=Path, default=None, help="where records and model dirs go (default: a temp dir)")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("train_speed.json"))
    ap.add_argument("--max-rss-gb", type=float, default=14.0,
                    help="kill a training child whose resident memory passes this (protects a shared machine)")
    args = ap.parse_args(argv)

    from karyotf import pipelines
    from karyotf.io import atomic_write_json
    from karyotf.records import build_records
    from karyotf.train import train

    work = args.work or Path(tempfile.mkdtemp(prefix="karyotf-bench-"))
    records = work / "records"
    if not (records / "label_map.pbtxt").is_file():
        build_records(None, records, progress=False)
    rows = []
    for model in args.models.split(","):
        model_dir = work / "runs" / model
        if model_dir.exists():
            import shutil

            shutil.rmtree(model_dir)
        cfg = pipelines.configure(model, records, model_dir, steps=args.steps, batch=args.batch,
                                  image_size=args.image_size)
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        guard = _RssGuard(args.max_rss_gb)
        try:
            result = train(model_dir, args.steps, progress=False, isolate=True, checkpoint_every=10**6)
        except Exception as exc:  # noqa: BLE001 - a model that does not fit is a result too
            guard.stop()
            row = {"model": model, "image_size": cfg.info["image_size"], "batch": cfg.info["batch"],
                   "proposals": cfg.info.get("proposals"), "failed": str(exc).splitlines()[0][:200],
                   "peak_rss_gb_seen": round(guard.peak_gb, 2), "killed_over_gb": args.max_rss_gb if guard.killed else None}
            rows.append(row)
            print(json.dumps(row), flush=True)
            continue
        guard.stop()
        wall = time.perf_counter() - t0
        secs = result.step_seconds
        row = {
            "model": model, "tf": cfg.info["tf"], "image_size": cfg.info["image_size"], "batch": cfg.info["batch"],
            "proposals": cfg.info.get("proposals"), "steps": result.steps_run,
            "step1_s": round(secs[0], 2), "median_s_per_step": round(statistics.median(secs[1:]), 2),
            "steps_2_to_n_s": [round(s, 2) for s in secs[1:]], "peak_rss_gb": round(result.peak_rss_mb / 1024, 2),
            "wall_s": round(wall, 1), "loadavg_1min_at_start": round(load, 2), "cpus": os.cpu_count(),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    atomic_write_json(args.out, rows)
    print(f"\n| model | tf | image | batch | step 1 (s) | s/step (median 2..N) | peak RSS (GB) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if "failed" in r:
            print(f"| {r['model']} | | {r['image_size']} | {r['batch']} | failed: {r['failed']} | | "
                  f">{r['peak_rss_gb_seen']} |")
            continue
        print(f"| {r['model']} | {r['tf']} | {r['image_size']} | {r['batch']} | {r['step1_s']} | "
              f"{r['median_s_per_step']} | {r['peak_rss_gb']} |")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
