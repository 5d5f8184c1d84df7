"""Count call from ground-truth boxes against the dataset's own karyotype list, and karyogram speed.

    .venv/bin/python bench/karyogram_agreement.py [SRC] [--render N] [--model EXPORT_DIR] [--min-score S]
        [--out bench/results/karyogram_agreement.md]

SRC defaults to ../shared/data/cil54816 (600 cells + karyotypes.csv).  Steps:

1. every cell's count call from its VOC boxes (XML only), compared with ``karyotypes.csv`` row by row as
   :mod:`karyotf.karyogram.agreement` defines "agrees" for each row kind;
2. ``--render N``: full karyograms (cut out, orient, lay out, report files) of N cells, the listed abnormal ones
   first, timing each (ms per cell) and writing them under ``bench/results/karyograms/``;
3. ``--model``: one cell from an exported model, image in to karyogram out (Detector load excluded and reported
   apart), on whatever cores the machine has.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from karyotf.annotations import find_xml_files, read_voc  # noqa: E402
from karyotf.io import atomic_write_text  # noqa: E402
from karyotf.karyogram import from_annotation, from_detector  # noqa: E402
from karyotf.karyogram.agreement import check_dataset  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", nargs="?", type=Path, default=REPO.parent / "shared" / "data" / "cil54816")
    ap.add_argument("--render", type=int, default=12, help="karyograms to draw and time (0: none)")
    ap.add_argument("--model", type=Path, default=None, help="exported model dir for the one-cell timing")
    ap.add_argument("--cell", default=None, help="cell (image stem) for the --model timing")
    ap.add_argument("--min-score", type=float, default=0.3, help="detections kept for the --model karyogram")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "karyogram_agreement.md")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    report = check_dataset(args.src)
    t_call = time.perf_counter() - t0
    lines = ["# Count call vs karyotypes.csv, from ground-truth annotations", "",
             f"`{args.src}`: {len(report.cells)} cells, call of all of them (XML parse + count) in {t_call:.1f} s.", "",
             "```", report.text(), "```", ""]

    xmls = {x.stem: x for x in find_xml_files(args.src)}
    if args.render:
        listed = [c.image for c in report.cells if c.kind != "unlisted"]
        others = [c.image for c in report.cells if c.kind == "unlisted"]
        order = listed[: args.render // 2] + others[: args.render - min(len(listed), args.render // 2)]
        times, out_root = [], args.out.parent / "karyograms"
        rows = []
        cpu = []
        for stem in order[: args.render]:
            t, c = time.perf_counter(), time.process_time()
            res = from_annotation(xmls[stem], out_root / stem)
            times.append(1000 * (time.perf_counter() - t))
            cpu.append(1000 * (time.process_time() - c))
            ann = read_voc(xmls[stem], check_image=False)
            rows.append(f"| {stem} | {ann.width}x{ann.height} | {res.call.text} | {times[-1]:.0f} | "
                        f"{', '.join(res.call.flag_codes) or '-'} |")
        lines += [f"## Karyograms from annotations ({len(times)} cells, written to `{out_root}`)", "",
                  f"ms per cell (cut out + orient + lay out + PNG/JSON/HTML): median {statistics.median(times):.0f}, "
                  f"max {max(times):.0f} (the first includes font loading); CPU ms per cell median "
                  f"{statistics.median(cpu):.0f} (wall time depends on what else shares the 2 cores)", "",
                  "| cell | size | call | ms | flags |", "|---|---|---|---|---|", *rows, ""]
    if args.model:
        from karyotf.detect import Detector

        stem = args.cell or next(c.image for c in report.cells if c.kind == "numerical")
        image = read_voc(xmls[stem]).image_path
        t = time.perf_counter()
        det = Detector(args.model)
        t_load = time.perf_counter() - t
        dst = args.out.parent / "karyograms" / f"{stem}_model"
        from_detector(det, image, dst, min_score=args.min_score)  # warm-up (tracing)
        runs, cpu = [], []
        for _ in range(3):
            t, c = time.perf_counter(), time.process_time()
            res = from_detector(det, image, dst, min_score=args.min_score)
            runs.append(1000 * (time.perf_counter() - t))
            cpu.append(1000 * (time.process_time() - c))
        call_text = res.call.text if len(res.call.text) <= 60 else res.call.text[:57] + "..."
        lines += [f"## One cell from an exported model ({args.model})", "",
                  f"cell {stem}: Detector load {t_load:.1f} s; image in -> karyogram out median "
                  f"{statistics.median(runs):.0f} ms wall, {statistics.median(cpu):.0f} ms CPU (all threads) "
                  f"(detect {res.timings.get('detect', 0):.0f} ms), call {call_text}, {len(res.boxes)} "
                  f"detections kept at score >= {args.min_score:g}", ""]
    for stem, name in (("1055911", "abnormal"), ("104204", "normal")):  # two pictures to look at, kept in git
        pic = args.out.parent / "karyograms" / stem / "karyogram.png"
        if pic.is_file():
            (args.out.parent / f"karyogram_{name}_{stem}.png").write_bytes(pic.read_bytes())
    text = "\n".join(lines)
    print(text)
    atomic_write_text(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
