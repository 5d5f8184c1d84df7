"""karyotf review (issue 22): two ``karyotf review`` servers on one folder never lose a review; the reviewed
report shows the review; a reviewed folder exported for records says when val/test are empty."""
from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from review_cells import FIRST, make_cells

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cells_src(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("review-procs")
    make_cells(out, n=2)
    return out


@pytest.fixture
def cells(tmp_path, cells_src) -> Path:
    import shutil

    return Path(shutil.copytree(cells_src, tmp_path / "cells"))


def _serve(folder: Path, reviewer: str):
    """A ``karyotf review`` process: (process, port, token)."""
    proc = subprocess.Popen([sys.executable, "-c", "from karyotf.cli import main; main()", "review", str(folder),
                             "--reviewer", reviewer], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**{k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},
                                 "PYTHONPATH": str(REPO)})
    lines = [proc.stdout.readline() for _ in range(2)]
    port = int(re.search(r"http://127\.0\.0\.1:(\d+)/", lines[1]).group(1))
    status, page = _request(port, "GET", "/")
    token = re.search(rb'name="karyotf-token" content="([^"]+)"', page).group(1).decode()
    return proc, port, token


def _request(port: int, method: str, path: str, body=None, token: str | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    h = {"Host": f"127.0.0.1:{port}"}
    data = None if body is None else json.dumps(body).encode()
    if data is not None:
        h["Content-Type"] = "application/json"
    if token:
        h["X-Karyotf-Token"] = token
    conn.request(method, path, body=data, headers=h)
    r = conn.getresponse()
    payload = r.read()
    conn.close()
    return r.status, (json.loads(payload) if r.getheader("Content-Type", "").startswith("application/json")
                      else payload)


def test_two_review_processes_one_wins_the_other_gets_409(cells):
    """Two servers (two processes) on one folder, concurrent accepts of the same cell from the same version: one
    200, one 409, and the saved review is the winner's (the old main answered 200 twice and one review was
    overwritten without a word: its 409 check held only inside one process)."""
    servers = [_serve(cells, who) for who in ("anna", "ben")]
    try:
        cell = [_request(port, "GET", f"/api/cells/{FIRST}")[1] for _, port, _ in servers]
        assert cell[0]["version"] == cell[1]["version"]
        results = {}
        go = threading.Barrier(2)

        def tab(k):
            _, port, token = servers[k]
            boxes = [{"class": b["class"], "box": b["box"], "origin": b["origin"]} for b in cell[k]["boxes"]]
            boxes[k]["class"] = "X"
            go.wait()
            results[k] = _request(port, "POST", f"/api/cells/{FIRST}/accept",
                                  {"version": cell[k]["version"], "boxes": boxes, "comment": f"by {k}"}, token)

        threads = [threading.Thread(target=tab, args=(k,)) for k in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = {k: s for k, (s, _) in results.items()}
        assert sorted(statuses.values()) == [200, 409], results
        winner = next(k for k, s in statuses.items() if s == 200)
        loser = 1 - winner
        assert "accepted elsewhere" in results[loser][1]["error"]
        saved = json.loads((cells / FIRST / "reviewed" / "report.json").read_text())["review"]
        assert saved["comment"] == f"by {winner}" and saved["revision"] == 1
        assert saved["reviewer"] == ("anna", "ben")[winner]
    finally:
        for proc, _, _ in servers:
            proc.terminate()
            proc.wait(timeout=30)


def test_reviewed_report_html_shows_reviewer_time_comment_and_resolved_flags(cells):
    """reviewed/report.html says who reviewed, when, the comment and which flags were resolved, as report.json
    does (the old main's HTML showed none of it)."""
    import html

    from karyotf.review import ReviewFolder

    folder = ReviewFolder(cells, reviewer="dr. <b>who</b>")
    cell = folder.load(FIRST)
    boxes = [{"class": b["class"], "box": b["box"], "origin": b["origin"]} for b in cell["boxes"]]
    codes = [f["code"] for f in cell["call"]["flags"]]
    assert codes
    done = folder.accept(FIRST, {"version": cell["version"], "boxes": boxes, "resolved": codes[:1],
                                 "comment": "trisomy 21 confirmed\nby banding"})
    review = done["review"]
    page = (cells / FIRST / "reviewed" / "report.html").read_text()
    assert html.escape("dr. <b>who</b>") in page and "<b>who</b>" not in page
    assert review["reviewed_at"] in page and "trisomy 21 confirmed\nby banding" in page
    assert f"<th>resolved flags</th><td style='text-align:left'>{codes[0]}</td>" in page
    assert "<th>open flags</th>" in page and "<th>revision</th><td style='text-align:left'>1</td>" in page


def test_export_voc_then_records_says_val_and_test_are_empty(cells, tmp_path):
    """karyotf review --export-voc, then records of the few reviewed cells: 0 val/test images are said, not silent."""
    from karyotf.records import build_records
    from karyotf.review import ReviewFolder, export_voc

    folder = ReviewFolder(cells, reviewer="t")
    for cid in folder.cells():
        cell = folder.load(cid)
        boxes = [{"class": b["class"], "box": b["box"], "origin": b["origin"]} for b in cell["boxes"]]
        folder.accept(cid, {"version": cell["version"], "boxes": boxes})
    exported = export_voc(cells, tmp_path / "voc")
    res = build_records(exported.out, tmp_path / "rec", progress=False)
    assert res.counts.get("val", 0) == 0 or res.counts.get("test", 0) == 0
    text = res.text()
    assert "note: no " in text and "too few" in text


def _browser(tmp_path):
    from review_cells import chromium_missing

    why = chromium_missing()
    if why and os.environ.get("KARYOTF_REQUIRE_BROWSER"):
        pytest.fail(f"KARYOTF_REQUIRE_BROWSER is set (CI) but {why}")
    if why:
        pytest.skip(why)


def open_review(p, srv, profile: Path, cell: str = FIRST, width: int = 1280, height: int = 720):
    """The review page of ``srv`` in headless Chromium at width x height, ``cell`` on screen."""
    from review_cells import CHROMIUM, CHROMIUM_ARGS

    ctx = p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                               args=CHROMIUM_ARGS, viewport={"width": width, "height": height},
                                               bypass_csp=True)
    page = ctx.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(srv.url + "#" + cell)
    page.wait_for_selector("body[data-ready='1']")
    return ctx, page, errors


def flagged_cell(cells: Path) -> str:
    """A model-like cell with many flags (low scores, two chromosomes missed, one boxed twice): ``many``."""
    from karyotf.annotations import read_voc
    from karyotf.karyogram.build import build_karyogram
    from karyotf.paths import SAMPLE_DIR

    ann = read_voc(SAMPLE_DIR / "annotations" / "1054642.xml")
    boxes = [b.with_coords(*b.as_tuple(), score=0.45 + 0.01 * (i % 9)) for i, b in enumerate(ann.boxes)]
    del boxes[3], boxes[20]
    boxes.append(boxes[7].with_coords(*boxes[7].as_tuple(), name="12", score=0.44))
    build_karyogram(ann.image_path, boxes, cells / "many", source={"kind": "model", "model": "ssd (simulated)",
                                                                   "image": str(ann.image_path)})
    return "many"


def view_box(page) -> list[float]:
    return [float(v) for v in page.get_attribute("#overlay", "viewBox").split()]


def test_browser_zoom_pan_readable_karyogram_and_every_flag_shown(cells, tmp_path):
    """At 1280x720: the wheel zooms the metaphase about the cursor (image and boxes together, labels keep their
    screen size), Shift+drag pans, a click and a drawn box land on the right image pixels when zoomed; the karyogram
    cut-outs fill their pane with an ideogram beside each class; no flag is cut off."""
    _browser(tmp_path)
    from playwright.sync_api import sync_playwright

    from karyotf.review import make_server
    from review_cells import free_spot, screen_point

    srv = make_server(cells, reviewer="zoom-test")
    srv.start_thread()
    try:
        with sync_playwright() as p:
            many = flagged_cell(cells)
            ctx, page, errors = open_review(p, srv, tmp_path / "profile", many)
            cell = json.loads(page.evaluate("JSON.stringify(S.cell)"))
            W, H = cell["width"], cell["height"]
            assert view_box(page) == [0, 0, W, H]
            # every flag is on screen, none scrolled away (the old list was capped at 96 px)
            flags = page.locator("#flags li")
            assert flags.count() >= 6
            for i in range(flags.count()):
                bb = flags.nth(i).bounding_box()
                assert bb and bb["y"] >= 0 and bb["y"] + bb["height"] <= 720, (i, bb)
            assert page.evaluate("(() => { const f = document.getElementById('flags');"
                                 " return f.scrollHeight <= f.clientHeight + 1; })()")
            # the karyogram: an ideogram per class, the 21s a readable size
            assert page.locator("canvas.ideogram").count() == 24
            h21 = [page.locator(".slot[data-cls='21'] canvas.tile").nth(i).bounding_box()["height"]
                   for i in range(page.locator(".slot[data-cls='21'] canvas.tile").count())]
            assert h21 and min(h21) >= 28, h21  # the old page: 17 px here, 20-25 px at its best
            label_h0 = page.locator("#overlay text").first.bounding_box()["height"]

            # zoom in with the wheel about a chromosome: the point under the cursor stays put
            def alone(i):  # a box whose centre lies in no other box (a click there can only select it)
                x0, y0, x1, y1 = cell["boxes"][i]["box"]
                cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
                return not any(o["box"][0] <= cx <= o["box"][2] and o["box"][1] <= cy <= o["box"][3]
                               for j, o in enumerate(cell["boxes"]) if j != i)

            k = next(i for i in range(len(cell["boxes"])) if alone(i))
            b = cell["boxes"][k]["box"]
            cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
            sx, sy = screen_point(page, cx, cy)
            page.mouse.move(sx, sy)
            for _ in range(4):
                page.mouse.wheel(0, -100)
                page.wait_for_timeout(50)
            vb = view_box(page)
            assert vb[2] < W / 2.2, vb
            sx2, sy2 = screen_point(page, cx, cy)
            assert abs(sx2 - sx) < 3 and abs(sy2 - sy) < 3
            assert abs(page.locator("#overlay text").first.bounding_box()["height"] - label_h0) < 2
            assert "\u00d7" in page.locator("#zoom-level").inner_text()
            # a click on the zoomed box selects it
            page.mouse.click(sx2, sy2)
            assert f"chromosome {cell['boxes'][k]['class']}" in page.locator("#selection").inner_text()
            # Shift+drag pans
            page.keyboard.down("Shift")
            page.mouse.move(sx2, sy2)
            page.mouse.down()
            page.mouse.move(sx2 + 60, sy2 + 30, steps=4)
            page.mouse.up()
            page.keyboard.up("Shift")
            vb2 = view_box(page)
            assert vb2[2] == pytest.approx(vb[2]) and vb2[0] < vb[0] - 5
            # a box drawn while zoomed gets the image pixels under the mouse
            spot = free_spot([x["box"] for x in cell["boxes"]], W, H, size=24)
            x0, y0 = spot
            page.evaluate("([x, y]) => setView(x - 40, y - 40, 160)", [x0, y0])
            a = screen_point(page, x0 + 2, y0 + 2)
            z = screen_point(page, x0 + 22, y0 + 22)
            page.mouse.move(*a)
            page.mouse.down()
            page.mouse.move(*z, steps=5)
            page.mouse.up()
            drawn = json.loads(page.evaluate("JSON.stringify(S.boxes.filter((b) => b.cls === null)[0].box)"))
            assert drawn == pytest.approx([x0 + 2, y0 + 2, x0 + 22, y0 + 22], abs=1.5)
            # W: the whole image again
            page.keyboard.press("Escape")
            page.keyboard.press("w")
            assert view_box(page) == [0, 0, W, H]
            assert not errors, errors
            ctx.close()
    finally:
        srv.shutdown()
        srv.server_close()


def test_review_call_checks_the_boxes_in_the_image(cells):
    """The review app's call has the karyogram's box check: a box drawn twice is flagged duplicate_box, a box on
    bare slide empty_box (the page would otherwise drop flags the model's karyogram raised)."""
    from karyotf.annotations import Box
    from karyotf.review import ReviewFolder

    folder = ReviewFolder(cells, reviewer="t")
    cell = folder.load(FIRST)
    assert "duplicate_box" not in [f["code"] for f in cell["call"]["flags"]]
    m = folder._model(folder.cell(FIRST))
    boxes = list(m["boxes"])
    b = boxes[4]
    boxes.append(b.with_coords(b.xmin, b.ymin, b.xmax - 1, b.ymax, name="21", score=None))
    boxes.append(Box(1, 1, 15, 30, "22"))  # a corner of bare slide
    got = folder.call(boxes, m["params"], m["image"])
    codes = [f["code"] for f in got["flags"]]
    assert "duplicate_box" in codes and "empty_box" in codes
    assert got["box_check"]["empty"] == [len(boxes) - 1]
