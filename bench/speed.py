"""The speed of every stage, medians over repeated runs: records, training, export, detection, karyograms.

    .venv/bin/python bench/speed.py                 # ~20 min on 2 idle cores
    .venv/bin/python bench/speed.py --repeats 5 --train-repeats 3 --export-repeats 3

Run it alone: every number is CPU-bound, and a second heavy job on 2 cores doubles them.

- **records**: ``build_records`` on ``--data`` (default the 600 CIL:54816 cells when present, else the built-in
  sample), ``--repeats`` times; images/s of the median run (validation, split, shards, manifest, stats, chart).
- **train**: each model at its template's default image size and batch (``--batch rfcn=12`` and
  ``--image-size`` override per model), from scratch, ``--train-steps`` steps in a
  fresh child process (``karyotf.train.train(isolate=True)``, so its peak RSS is that model's alone), repeated
  ``--train-repeats`` times.  Per run: step 1 (graph tracing / first session.run) and the median of steps 2..N;
  reported: the median over runs.  Peak RSS is the child's own high-water mark (``ru_maxrss``); a child past
  ``--max-rss-gb`` is killed and its row reports the RSS seen (rfcn at batch 12 and 640 px passed 19 GB).
- **export**: ``karyotf.export.export`` of the trained checkpoint (SavedModel + frozen graph), ``--export-repeats``
  times; median seconds.
- **detect**: ``Detector`` on the SavedModel and on the frozen graph; after one warm-up image, ``--repeats`` passes
  over ``--images`` sample images; median ms per image.
- **karyogram**: ``build_karyogram`` (cut out, orient, lay out, call, write PNG/JSON/HTML) of every sample cell
  from its annotation, ``--repeats`` passes, median ms per cell; and from the exported ssd (``from_detector``:
  detection + karyogram), the same.

Writes ``bench/results/speed.md`` and ``speed.json``; work files go to ``--work`` (default ``bench/work/speed``).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from flags import per_model

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MODELS = ("ssd", "faster_rcnn", "rfcn", "yolo")


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


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def bench_records(data: Path, repeats: int) -> dict:
    from karyotf.records import build_records

    runs, n = [], 0
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            result = build_records(data, Path(tmp) / "records", progress=False)
            runs.append(time.perf_counter() - t0)
            n = sum(result.counts.values())
    med = _median(runs)
    return {"data": str(data), "images": n, "runs_s": [round(r, 2) for r in runs], "median_s": round(med, 2),
            "images_per_s": round(n / med, 1)}


def bench_train(model: str, records: Path, work: Path, steps: int, repeats: int, max_rss_gb: float,
                batch: int | None = None, image_size: int | None = None) -> dict:
    from karyotf import pipelines
    from karyotf.train import train

    runs = []
    model_dir = work / "runs" / model
    for _ in range(repeats):
        shutil.rmtree(model_dir, ignore_errors=True)
        if model.split("-")[0] == "yolo":  # yolo, or yolo-n / yolo-s / yolo-m for another backbone size
            from karyotf.yolo.config import configure as configure_yolo

            backbone = model.split("-")[1] if "-" in model else None
            cfg = configure_yolo(records, model_dir, steps=steps, batch=batch, image_size=image_size,
                                 backbone=backbone)
        else:
            cfg = pipelines.configure(model, records, model_dir, steps=steps, batch=batch, image_size=image_size)
        load = _load()
        guard = _RssGuard(max_rss_gb)
        t0 = time.perf_counter()
        try:
            result = train(model_dir, steps, progress=False, isolate=True, checkpoint_every=10**6)
        except Exception as exc:  # noqa: BLE001 - a model that does not fit is a result too
            return {"model": model, "image_size": cfg.info["image_size"], "batch": cfg.info["batch"],
                    "failed": str(exc).splitlines()[0][:200], "peak_rss_gb_seen": round(guard.peak_gb, 2),
                    "killed_over_gb": max_rss_gb if guard.killed else None}
        finally:
            guard.stop()
        secs = result.step_seconds
        runs.append({"step1_s": round(secs[0], 2), "median_s_per_step": round(statistics.median(secs[1:]), 3),
                     "peak_rss_gb": round(result.peak_rss_mb / 1024, 2), "wall_s": round(time.perf_counter() - t0, 1),
                     "load_at_start": load})
        print(json.dumps({"train": model, **runs[-1]}), flush=True)
    return {"model": model + (f" ({cfg.info['backbone']})" if cfg.info.get("backbone") and "-" not in model else ""),
            "tf": cfg.info["tf"], "image_size": cfg.info["image_size"], "batch": cfg.info["batch"],
            "proposals": cfg.info.get("proposals"), "steps": steps, "runs": runs,
            "s_per_step": _median(r["median_s_per_step"] for r in runs),
            "step1_s": _median(r["step1_s"] for r in runs),
            "peak_rss_gb": max(r["peak_rss_gb"] for r in runs), "model_dir": str(model_dir)}


def _size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def bench_export(model: str, model_dir: Path, work: Path, repeats: int) -> dict:
    from karyotf.export import export

    out = work / "exported" / model
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        export(model_dir, out)
        runs.append(time.perf_counter() - t0)
        print(json.dumps({"export": model, "s": round(runs[-1], 1)}), flush=True)
    return {"runs_s": [round(r, 1) for r in runs], "median_s": round(_median(runs), 1),
            "saved_model_mb": round(_size_mb(out / "saved_model"), 1),
            "frozen_graph_mb": round(_size_mb(out / "frozen_inference_graph.pb"), 1), "export_dir": str(out)}


def bench_detect(export_dir: Path, images: list[Path], repeats: int) -> dict:
    from karyotf.detect import Detector, load_image

    arrays = [load_image(p) for p in images]
    row = {}
    for use in ("saved_model", "frozen_graph"):
        t0 = time.perf_counter()
        det = Detector(export_dir, use=use)
        row[f"{use}_load_s"] = round(time.perf_counter() - t0, 1)
        det.detect(arrays[0])  # warm-up: the first call builds the graph
        row[f"{use}_first_ms"] = round(det.last_seconds * 1000)
        times = []
        for _ in range(repeats):
            for arr in arrays:
                det.detect(arr)
                times.append(det.last_seconds * 1000)
        row[f"{use}_ms"] = round(_median(times), 1)
        del det
    print(json.dumps({"detect": str(export_dir), **row}), flush=True)
    return row


def bench_karyograms(sample: Path, ssd_export: Path | None, repeats: int, work: Path) -> dict:
    from karyotf.annotations import read_voc
    from karyotf.karyogram import from_annotation, from_detector

    xmls = sorted((sample / "annotations").glob("*.xml"))
    anns = [read_voc(x) for x in xmls]
    out = {"cells": len(anns)}
    times, cpu = [], []
    for _ in range(repeats):
        for ann in anns:
            t0, c0 = time.perf_counter(), time.process_time()
            from_annotation(ann, work / "karyograms" / "annotation" / ann.image_id)
            times.append(1000 * (time.perf_counter() - t0))
            cpu.append(1000 * (time.process_time() - c0))
    out["annotation_ms"] = round(_median(times))
    out["annotation_cpu_ms"] = round(_median(cpu))
    if ssd_export is not None:
        from karyotf.detect import Detector

        det = Detector(ssd_export)
        det.detect(anns[0].image_path)
        times, detect = [], []
        for _ in range(repeats):
            for ann in anns:
                t0 = time.perf_counter()
                res = from_detector(det, ann.image_path, work / "karyograms" / "ssd" / ann.image_id)
                times.append(1000 * (time.perf_counter() - t0))
                detect.append(res.timings.get("detect"))
        out["ssd_ms"] = round(_median(times))
        out["ssd_detect_ms"] = round(_median(detect))
    print(json.dumps({"karyogram": out}), flush=True)
    return out


def markdown(result: dict) -> str:
    a = result["args"]
    r = result["records"]
    lines = [
        "# Speed of every stage", "",
        f"Produced by `bench/speed.py` ({' '.join(result['argv']) or 'defaults'}), {result['started']}, "
        f"{os.cpu_count()} CPU cores, no GPU, {result['minutes']:.0f} min in all; 1-min load average "
        f"{result['load_start']} at the start, {result['load_end']} at the end.", "",
        "## Records", "",
        f"`build_records` on {r['images']} images of `{Path(r['data']).name}`: median {r['median_s']} s over "
        f"{a['repeats']} runs ({', '.join(str(x) for x in r['runs_s'])} s) = **{r['images_per_s']:.0f} images/s** "
        "(validating every XML against its image, split, shards, manifest, stats and the chart). "
        "`bench/records_speed.py` compares it with the OD API's own writer.", "",
        "## Training, export, detection", "",
        f"Each model at its template's default image size and batch (unless overridden: see the command), from "
        "scratch; training s/step = the median "
        f"of steps 2..{a['train_steps']} of a run, then the median over {a['train_repeats']} run(s); export "
        f"median of {a['export_repeats']}; detection median over {a['repeats']} passes of {a['images']} sample "
        "images after one warm-up image.", "",
        "| model | TF | image px | batch | step 1 s | s/step | peak RSS GB | export s | SavedModel MB | frozen graph "
        "MB | detect ms/image SavedModel | detect ms/image frozen graph | Detector load s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in result["models"]:
        t, e, d = m["train"], m.get("export") or {}, m.get("detect") or {}
        if t.get("failed"):
            lines.append(f"| {t['model']} | | {t['image_size']} | {t['batch']} | failed: {t['failed']} "
                         f"(peak RSS seen {t['peak_rss_gb_seen']} GB) |" + " |" * 8)
            continue
        lines.append(
            f"| {t['model']} | {t['tf']} | {t['image_size']} | {t['batch']} | {t['step1_s']:.1f} | "
            f"**{t['s_per_step']:.2f}** | {t['peak_rss_gb']} | {e.get('median_s', '-')} | "
            f"{e.get('saved_model_mb', '-')} | {e.get('frozen_graph_mb', '-')} | **{d.get('saved_model_ms', '-')}** | "
            f"{d.get('frozen_graph_ms', '-')} | {d.get('saved_model_load_s', '-')} / {d.get('frozen_graph_load_s', '-')} |")
    merged = [m for m in result["models"] if m.get("merged")]
    if merged:
        lines += ["", "Rows added later with `--merge` (measured on their own, on a machine other jobs were using: "
                  "compare their s/step with the others' only with the load in mind):", ""]
        lines += [f"- {m['train']['model']}: `bench/speed.py {' '.join(m['merged']['argv'])}`, {m['merged']['started']}, "
                  f"1-min load average {m['merged']['load_start']} at the start, {m['merged']['load_end']} at the end"
                  for m in merged]
    if result.get("notes"):
        lines += ["", "Notes:", ""] + [f"- {n}" for n in result["notes"]]
    k = result["karyogram"]
    lines += [
        "", "Per-run training numbers (step 1 s, median s/step, peak RSS GB, wall s of the whole child process "
        "including imports and graph building, 1-min load at the start). Step 1 is tf.function tracing plus the "
        "first step for TF2; for TF1 (faster_rcnn) the graph is built before step 1, so it shows in the wall time "
        "only:", "",
        *[f"- {m['train']['model']}: " + "; ".join(
            f"{x['step1_s']} s, {x['median_s_per_step']} s/step, {x['peak_rss_gb']} GB, {x['wall_s']} s wall, "
            f"load {x['load_at_start']}"
            for x in m["train"].get("runs", [])) for m in result["models"]],
        "", "## Karyograms", "",
        f"Every one of the {k['cells']} sample cells, {a['repeats']} passes, median per cell:", "",
        "| from | ms per cell (wall) | of which detection |", "|---|---|---|",
        f"| annotation (cut out, orient, lay out, call, write PNG + JSON + HTML) | **{k['annotation_ms']}** "
        f"({k['annotation_cpu_ms']} ms CPU) | - |",
    ]
    if "ssd_ms" in k:
        lines.append(f"| exported ssd (detect, NMS, then the same) | **{k['ssd_ms']}** | {k['ssd_detect_ms']} |")
    lines += ["", "The ssd here has trained a few steps only, so its boxes are not the real ones; the karyogram "
              "time grows with the number of boxes kept (at most 100).", ""]
    return "\n".join(lines)


def merge(args, t_start: float) -> int:
    """``--merge``: new rows for ``--models`` in the existing speed.json, each with its own time and load."""
    from karyotf.io import atomic_write_json, atomic_write_text
    from karyotf.paths import SAMPLE_DIR
    from karyotf.records import build_records

    json_path = args.out.with_suffix(".json")
    result = json.loads(json_path.read_text())
    records = args.work / "records"
    shutil.rmtree(records, ignore_errors=True)
    build_records(SAMPLE_DIR, records, progress=False)
    images = sorted((SAMPLE_DIR / "images").glob("*.jpg"))[: args.images]
    for model in [m for m in args.models.split(",") if m]:
        load = _load()
        row = {"train": bench_train(model, records, args.work, args.train_steps, args.train_repeats,
                                    args.max_rss_gb, args.batch.get(model), args.image_size.get(model))}
        if not row["train"].get("failed"):
            row["export"] = bench_export(model, Path(row["train"]["model_dir"]), args.work, args.export_repeats)
            row["detect"] = bench_detect(Path(row["export"]["export_dir"]), images, args.repeats)
        row["merged"] = {"argv": sys.argv[1:], "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t_start)),
                         "load_start": load, "load_end": _load()}
        name = row["train"]["model"]
        result["models"] = [m for m in result["models"] if m["train"]["model"] != name] + [row]
    atomic_write_json(json_path, result)
    atomic_write_text(args.out, markdown(result))
    print(args.out.read_text())
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    shared = REPO.parent / "shared" / "data" / "cil54816"
    ap.add_argument("--data", type=Path, default=shared if shared.is_dir() else None,
                    help="VOC folder for the records timing (default: CIL:54816 if present, else the sample)")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--repeats", type=int, default=3, help="runs of records, passes of detection and karyograms")
    ap.add_argument("--train-steps", type=int, default=6)
    ap.add_argument("--train-repeats", type=int, default=2)
    ap.add_argument("--export-repeats", type=int, default=2)
    ap.add_argument("--images", type=int, default=5, help="sample images per detection pass")
    ap.add_argument("--batch", type=per_model(int), default="",
                    help="per model batch override, e.g. rfcn=12 (default: the template's)")
    ap.add_argument("--image-size", type=per_model(int), default="", help="per model image size override, e.g. ssd=320")
    ap.add_argument("--max-rss-gb", type=float, default=20.0, help="kill a training child past this resident memory")
    ap.add_argument("--work", type=Path, default=REPO / "bench" / "work" / "speed")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "speed.md")
    ap.add_argument("--render-only", action="store_true", help="rewrite speed.md from speed.json, measure nothing")
    ap.add_argument("--merge", action="store_true",
                    help="measure only --models (training, export, detection) and put their rows into the existing "
                         "speed.json beside the others (records and karyogram numbers kept)")
    args = ap.parse_args(argv)
    if args.render_only:
        from karyotf.io import atomic_write_text

        atomic_write_text(args.out, markdown(json.loads(args.out.with_suffix(".json").read_text())))
        print(args.out.read_text())
        return 0

    from karyotf.io import atomic_write_json, atomic_write_text
    from karyotf.paths import SAMPLE_DIR
    from karyotf.records import build_records

    t_start = time.time()
    if args.merge:
        return merge(args, t_start)
    result = {"argv": sys.argv[1:] if argv is None else list(argv), "args": {k: str(v) if isinstance(v, Path) else v
                                                                           for k, v in vars(args).items()},
              "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_start": _load()}
    result["records"] = bench_records(args.data or SAMPLE_DIR, args.repeats)
    print(json.dumps({"records": result["records"]}), flush=True)

    records = args.work / "records"
    shutil.rmtree(records, ignore_errors=True)
    build_records(SAMPLE_DIR, records, progress=False)
    images = sorted((SAMPLE_DIR / "images").glob("*.jpg"))[: args.images]
    result["models"] = []
    for model in [m for m in args.models.split(",") if m]:
        row = {"train": bench_train(model, records, args.work, args.train_steps, args.train_repeats,
                                    args.max_rss_gb, args.batch.get(model), args.image_size.get(model))}
        if not row["train"].get("failed"):
            row["export"] = bench_export(model, Path(row["train"]["model_dir"]), args.work, args.export_repeats)
            row["detect"] = bench_detect(Path(row["export"]["export_dir"]), images, args.repeats)
        result["models"].append(row)
    ssd = next((Path(m["export"]["export_dir"]) for m in result["models"]
                if m["train"]["model"] == "ssd" and m.get("export")), None)
    result["karyogram"] = bench_karyograms(SAMPLE_DIR, ssd, args.repeats, args.work)
    result["load_end"] = _load()
    result["minutes"] = (time.time() - t_start) / 60
    atomic_write_json(args.out.with_suffix(".json"), result)
    atomic_write_text(args.out, markdown(result))
    print(args.out.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
