"""A screenshot of the review page at 1280x720 with the metaphase zoomed in (issue 22's closing picture).

    .venv/bin/python bench/review_zoom_shot.py --out bench/results/review/review_zoom_1280x720.png

Debian's headless Chromium (--no-sandbox --disable-gpu --disable-background-networking --disable-component-update
--disable-sync --no-first-run, a fresh --user-data-dir) driven by playwright, on review cells made from the sample
(tests/review_cells.py) plus a model-like cell with many flags; the mouse wheel zooms about the crowded centre of
the metaphase and the arrow key selects a chromosome (the view follows it).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from review_cells import CHROMIUM, CHROMIUM_ARGS, make_cells  # noqa: E402
from test_review_processes import flagged_cell  # noqa: E402

from karyotf.review import make_server  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/review/review_zoom_1280x720.png")
    ap.add_argument("--wheel", type=int, default=5, help="wheel notches of zoom (1.25x each)")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="karyotf-review-shot-"))
    make_cells(tmp / "cells", n=2)
    cid = flagged_cell(tmp / "cells")
    srv = make_server(tmp / "cells", reviewer="dr. lee")
    srv.start_thread()
    try:
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(str(tmp / "profile"), executable_path=CHROMIUM, headless=True,
                                                       args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 720})
            page = ctx.new_page()
            page.goto(srv.url + "#" + cid)
            page.wait_for_selector("body[data-ready='1']")
            cell = json.loads(page.evaluate("JSON.stringify(S.cell)"))
            xs = sorted((b["box"][0] + b["box"][2]) / 2 for b in cell["boxes"])
            ys = sorted((b["box"][1] + b["box"][3]) / 2 for b in cell["boxes"])
            cx, cy = xs[len(xs) // 2], ys[len(ys) // 2]
            at = page.evaluate("([x, y]) => { const s = document.getElementById('overlay'); const p = "
                               "s.createSVGPoint(); p.x = x; p.y = y; const q = p.matrixTransform(s.getScreenCTM());"
                               " return [q.x, q.y]; }", [cx, cy])
            page.mouse.move(*at)
            for _ in range(args.wheel):
                page.mouse.wheel(0, -100)
                page.wait_for_timeout(80)
            page.keyboard.press("ArrowRight")
            page.wait_for_timeout(200)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out))
            scale = page.evaluate("document.getElementById('karyogram').dataset.scale")
            print(f"{args.out}: zoom {page.locator('#zoom-level').inner_text()}, karyogram scale {scale}")
            ctx.close()
    finally:
        srv.shutdown()
        srv.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
