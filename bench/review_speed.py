"""Seconds per cell to review the sample cells by keyboard in the browser (``karyotf review``).

    .venv/bin/python bench/review_speed.py            # all 32 sample cells, ~1 min
    .venv/bin/python bench/review_speed.py --cells 8

The cells are made from the shipped sample as in the tests (``tests/review_cells.py``): 1055911 from its
annotation (47,XY,+21), the rest as a simulated model output (one chromosome missed, one scored low).  A scripted
keyboard pass then reviews them in Debian's headless Chromium through the real page: for each cell, ``F`` once
per open flag (resolve), ``Ctrl+Enter`` (accept: the server writes the VOC XML and rebuilds the karyogram), then
``]`` (next cell), waiting each time until the page shows the result.  This measures what the software costs a
reviewer per cell (page load, call, accept, rebuild), not a person's thinking time.

The before/after screenshots of an edited cell come from the browser test:
``KARYOTF_REVIEW_SHOTS=bench/results/review .venv/bin/python -m pytest tests/test_review.py -k browser``.

Writes ``bench/results/review/speed.md`` and ``speed.json``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from karyotf.review import make_server  # noqa: E402
from review_cells import chromium_missing, launch, make_cells  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", type=int, default=32, help="how many sample cells")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "review")
    args = ap.parse_args(argv)
    why = chromium_missing()
    if why:
        print(f"cannot run: {why}", file=sys.stderr)
        return 2
    import os

    from playwright.sync_api import sync_playwright

    load = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="karyotf-review-bench-") as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        stems = make_cells(tmp / "cells", n=args.cells)
        make_s = time.perf_counter() - t
        srv = make_server(tmp / "cells", reviewer="bench")
        srv.start_thread()
        per_cell, keys = [], []
        try:
            with sync_playwright() as p:
                ctx = launch(p, tmp / "profile")
                chromium_version = ctx.browser.version if ctx.browser else None
                page = ctx.new_page()
                t0 = time.perf_counter()
                page.goto(srv.url)
                for i, stem in enumerate(sorted(stems)):
                    page.wait_for_selector(f"body[data-cell='{stem}']")
                    ts = time.perf_counter()
                    n = page.locator("#flags input:not(:checked)").count()
                    for _ in range(n):
                        page.keyboard.press("f")
                    prev = page.evaluate("document.body.dataset.saved || ''")
                    page.keyboard.press("Control+Enter")
                    page.wait_for_function("(prev) => (document.body.dataset.saved || '') !== prev", arg=prev)
                    k = n + 1
                    if i + 1 < len(stems):
                        page.keyboard.press("]")
                        k += 1
                    keys.append(k)
                    per_cell.append(time.perf_counter() - ts)
                total = time.perf_counter() - t0
                ctx.close()
        finally:
            srv.shutdown()
            srv.server_close()
        reviewed = sum(1 for s in stems if (tmp / "cells" / s / f"{s}.xml").is_file())
    res = {"cells": len(stems), "reviewed": reviewed, "total_s": round(total, 2),
           "s_per_cell_mean": round(total / len(stems), 3), "s_per_cell_median": round(statistics.median(per_cell), 3),
           "s_per_cell_max": round(max(per_cell), 3), "keys_per_cell_mean": round(statistics.mean(keys), 2),
           "make_cells_s": round(make_s, 1), "load_avg_1min_at_start": load,
           "chromium": chromium_version}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "speed.json").write_text(json.dumps(res, indent=2) + "\n")
    md = ["# karyotf review: a scripted keyboard pass over the sample cells", "",
          "Debian's headless Chromium through the real page (`bench/review_speed.py`); per cell: `F` per open flag, "
          "`Ctrl+Enter` (accept: VOC XML + rebuilt karyogram), `]` (next). Software time only, no thinking time. "
          f"2 cores, load average {load} at the start (other jobs share the machine).", "",
          "| cells | reviewed | total s | s/cell (mean) | s/cell (median) | s/cell (max) | keys/cell |",
          "|---|---|---|---|---|---|---|",
          f"| {res['cells']} | {reviewed} | {res['total_s']} | {res['s_per_cell_mean']} | {res['s_per_cell_median']} "
          f"| {res['s_per_cell_max']} | {res['keys_per_cell_mean']} |", ""]
    (args.out / "speed.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
