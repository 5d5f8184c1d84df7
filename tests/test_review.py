"""karyotf review: the store (what a review writes), the HTTP API (safety, errors, concurrent edits), the CLI and
export, and a real-browser review in Debian's headless Chromium driven by playwright."""
from __future__ import annotations

import http.client
import json
import os
import threading
import time
from pathlib import Path

import pytest

from karyotf.annotations import load_dataset, read_voc
from karyotf.cli import main
from karyotf.errors import ReviewError
from karyotf.review import ReviewConflict, ReviewFolder, export_voc, make_server

from review_cells import FIRST, chromium_missing, free_spot, launch, make_cells, screen_point, shot


@pytest.fixture(scope="module")
def cells_src(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("review-src")
    make_cells(out, n=2)
    return out


@pytest.fixture
def cells(tmp_path, cells_src) -> Path:
    """A fresh, writable copy of two karyogram outputs: 1055911 (47,XY,+21) and a simulated model cell."""
    import shutil

    dst = tmp_path / "cells"
    shutil.copytree(cells_src, dst)
    return dst


@pytest.fixture
def server(cells):
    srv = make_server(cells, reviewer="api-test")
    srv.start_thread()
    yield srv
    srv.shutdown()
    srv.server_close()


def request(srv, method, path, body=None, token=True, headers=None, raw=None):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    h = {"Host": f"127.0.0.1:{srv.port}"}
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
    if data is not None:
        h["Content-Type"] = "application/json"
    if token and method == "POST":
        h["X-Karyotf-Token"] = srv.token
    h.update(headers or {})
    conn.request(method, path, body=data, headers=h)
    r = conn.getresponse()
    payload = r.read()
    conn.close()
    ctype = r.getheader("Content-Type", "")
    return r.status, (json.loads(payload) if ctype.startswith("application/json") else payload)


def boxes_of(cell: dict) -> list[dict]:
    return [{"class": b["class"], "box": b["box"], "origin": b["origin"]} for b in cell["boxes"]]


# ------------------------------------------------------------------------------------------ store
def test_folder_lists_cells_and_the_call_is_count_call(cells):
    folder = ReviewFolder(cells, reviewer="me")
    listed = {c["id"]: c for c in folder.list()}
    assert set(listed) == {FIRST, "1054642"}
    assert listed[FIRST]["status"] == "to review" and listed[FIRST]["call"] == "47,XY,+21"
    cell = folder.load(FIRST)
    assert cell["call"]["call"] == "47,XY,+21" and cell["version"] == "unreviewed"
    assert cell["image"] == f"/files/{FIRST}/{FIRST}.jpg" and len(cell["boxes"]) == 47
    assert cell["rows"][3] == ["19", "20", "21", "22", "Y"]
    sim = folder.load("1054642")
    assert "low_confidence" in {f["code"] for f in sim["call"]["flags"]}    # model scores reach the call


def test_accept_writes_voc_reviewed_report_and_keeps_the_model_output(cells):
    folder = ReviewFolder(cells, reviewer="dr-a")
    cell = folder.load(FIRST)
    before = (cells / FIRST / "detections.json").read_bytes(), (cells / FIRST / "karyogram.png").read_bytes()
    boxes = boxes_of(cell)
    i21 = next(i for i, b in enumerate(boxes) if b["class"] == "21")
    boxes[i21]["class"] = "22"
    out = folder.accept(FIRST, {"version": cell["version"], "boxes": boxes, "resolved": ["extra_copy", "bogus"],
                                "comment": "a 21 was a 22"})
    assert out["call"]["call"] == "47,XY,+22" and out["status"] == "flagged"       # total_not_46 left open
    ann = read_voc(cells / FIRST / f"{FIRST}.xml")
    assert len(ann.boxes) == 47 and ann.counts()["22"] == 3 and ann.counts()["21"] == 2
    rep = json.loads((cells / FIRST / "reviewed" / "report.json").read_text())
    r = rep["review"]
    assert rep["call"] == "47,XY,+22" and r["reviewer"] == "dr-a" and r["reviewed_at"].endswith("Z")
    assert r["resolved_flags"] == ["extra_copy"] and r["open_flags"] == ["total_not_46"]
    assert r["changes"]["relabelled"] == [{"origin": i21, "from": "21", "to": "22"}] and r["revision"] == 1
    assert r["model"]["call"] == "47,XY,+21" and r["comment"] == "a 21 was a 22"
    assert (cells / FIRST / "reviewed" / "karyogram.png").stat().st_size > 10_000
    assert before == ((cells / FIRST / "detections.json").read_bytes(), (cells / FIRST / "karyogram.png").read_bytes())
    assert not list((cells / FIRST).rglob(".*.tmp"))                                # atomic writes
    again = folder.load(FIRST)                                                      # the reviewed state reloads
    assert again["version"] == out["version"] != "unreviewed" and again["review"]["comment"] == "a 21 was a 22"
    assert [b["class"] for b in again["boxes"]].count("22") == 3 and again["boxes"][0]["kbox"]


def test_a_failed_rebuild_saves_nothing(cells, monkeypatch):
    import karyotf.karyogram.build as build

    folder = ReviewFolder(cells)
    cell = folder.load(FIRST)

    def broken(*a, **k):
        raise MemoryError("no room")

    monkeypatch.setattr(build, "build_karyogram", broken)
    with pytest.raises(ReviewError, match="could not be rebuilt.*nothing was saved"):
        folder.accept(FIRST, {"version": cell["version"], "boxes": boxes_of(cell)})
    assert not (cells / FIRST / f"{FIRST}.xml").exists() and folder.load(FIRST)["version"] == "unreviewed"


def test_stale_accept_is_a_conflict_and_a_bad_box_is_refused(cells):
    folder = ReviewFolder(cells)
    cell = folder.load(FIRST)
    folder.accept(FIRST, {"version": cell["version"], "boxes": boxes_of(cell)}, reviewer="tab-1")
    with pytest.raises(ReviewConflict, match="accepted elsewhere.*tab-1"):
        folder.accept(FIRST, {"version": cell["version"], "boxes": boxes_of(cell)}, reviewer="tab-2")
    fresh = folder.load(FIRST)
    for bad, match in (([{"class": "23", "box": [1, 1, 20, 20]}], "not one of"),
                       ([{"class": "1", "box": [1, 1, 1, 20]}], "smaller than 2 px"),
                       ([{"class": "1", "box": "0 0 9 9"}], "four numbers"), ([], "nothing to accept")):
        with pytest.raises(ReviewError, match=match):
            folder.accept(FIRST, {"version": fresh["version"], "boxes": bad})


# ------------------------------------------------------------------------------------------ HTTP API
def test_page_and_assets_are_served_from_the_package(server):
    status, page = request(server, "GET", "/")
    assert status == 200 and server.token.encode() in page and b"/static/app.js" in page
    assert b"http" not in page.replace(b'xmlns="http://www.w3.org/2000/svg"', b"")   # no CDN, no outside link
    for name in ("app.js", "app.css"):
        status, body = request(server, "GET", f"/static/{name}")
        assert status == 200 and len(body) > 1000
    assert request(server, "GET", "/static/../store.py")[0] == 404
    status, body = request(server, "GET", f"/files/{FIRST}/{FIRST}.jpg")
    assert status == 200 and body[:2] == b"\xff\xd8"


def test_path_traversal_and_symlinks_out_are_refused(server, cells, tmp_path):
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"secret")
    os.symlink(outside, cells / FIRST / "link.png")
    os.symlink(tmp_path, cells / "linkdir")
    for path in ("/files/../secret.png", "/files/%2e%2e/secret.png", f"/files/{FIRST}/../../secret.png",
                 "/files//etc/passwd", f"/files/{FIRST}/link.png", "/files/linkdir/secret.png",
                 f"/files/{FIRST}/%2e%2e%2f%2e%2e%2fsecret.png", f"/files/{FIRST}/report.html"):
        status, body = request(server, "GET", path)
        assert status == 403, (path, status)
        assert "refused" in body["error"], body
    assert "linkdir" not in {c["id"] for c in request(server, "GET", "/api/cells")[1]["cells"]}
    os.symlink(tmp_path, cells / "1054642" / "reviewed")                     # a write must not follow it out
    _, cell = request(server, "GET", "/api/cells/1054642")
    status, body = request(server, "POST", "/api/cells/1054642/accept",
                           {"version": cell["version"], "boxes": boxes_of(cell)})
    assert status == 400 and "is a link" in body["error"] and not (tmp_path / "report.json").exists()
    status, body = request(server, "GET", "/", headers={"Host": "evil.example:80"})   # DNS rebinding
    assert status == 403 and "Host" in body["error"]


def test_token_json_and_unknown_cell_errors(server):
    status, cell = request(server, "GET", f"/api/cells/{FIRST}")
    assert status == 200
    body = {"version": cell["version"], "boxes": boxes_of(cell)}
    for token, headers in ((False, {}), (False, {"X-Karyotf-Token": "guess"})):
        status, err = request(server, "POST", f"/api/cells/{FIRST}/accept", body, token=token, headers=headers)
        assert status == 403 and "token" in err["error"]
    assert request(server, "POST", "/api/call", {"boxes": []}, token=False)[0] == 403
    status, err = request(server, "POST", f"/api/cells/{FIRST}/accept", raw=b'{"version": "unreviewed", "boxes": [')
    assert status == 400 and "malformed JSON" in err["error"]
    status, err = request(server, "POST", "/api/call", raw=b"[1, 2]")
    assert status == 400 and "JSON object" in err["error"]
    status, err = request(server, "POST", "/api/call", raw=b"{}", headers={"Content-Type": "text/plain"})
    assert status == 415
    status, err = request(server, "GET", "/api/cells/no-such-cell")
    assert status == 404 and "no cell 'no-such-cell'" in err["error"]
    status, err = request(server, "POST", "/api/cells/no-such-cell/accept", body)
    assert status == 404
    status, err = request(server, "POST", "/api/call", {"boxes": [{"class": "Z", "box": [0, 0, 9, 9]}]})
    assert status == 400 and "not one of 1..22, X, Y" in err["error"]
    status, call = request(server, "POST", "/api/call", {"cell": FIRST, "boxes": boxes_of(cell)[:46]})
    assert status == 200 and call["total"] == 46
    assert request(server, "GET", "/api/nothing")[0] == 404
    assert request(server, "DELETE", f"/api/cells/{FIRST}")[0] == 405
    assert request(server, "GET", "/")[0] == 200                                   # still serving


def test_a_refused_post_does_not_poison_a_kept_alive_connection(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("POST", "/api/call", body=b'{"boxes": []}', headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.status == 403 and r.getheader("Connection") == "close"
    r.read()
    conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("GET", "/api/cells")
    r = conn.getresponse()
    assert r.status == 200 and len(json.loads(r.read())["cells"]) == 2
    conn.request("GET", "/api/cells")                                          # kept alive after a success
    assert conn.getresponse().status == 200
    conn.close()


def test_concurrent_accepts_one_wins_the_other_gets_409(server, cells):
    _, cell = request(server, "GET", f"/api/cells/{FIRST}")
    a, b = boxes_of(cell), boxes_of(cell)
    a[0]["class"], b[1]["class"] = "X", "Y"
    results = []

    def tab(boxes):
        results.append(request(server, "POST", f"/api/cells/{FIRST}/accept",
                               {"version": cell["version"], "boxes": boxes}))

    threads = [threading.Thread(target=tab, args=(x,)) for x in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(s for s, _ in results)
    assert statuses == [200, 409], results
    err = next(body for s, body in results if s == 409)["error"]
    assert "accepted elsewhere" in err and "reload" in err
    winner = next(body for s, body in results if s == 200)
    status, again = request(server, "POST", f"/api/cells/{FIRST}/accept",
                            {"version": winner["version"], "boxes": boxes_of(winner), "comment": "second look"})
    assert status == 200 and again["review"]["revision"] == 2


def test_export_voc_gathers_reviewed_cells_for_records(cells, tmp_path, capsys):
    folder = ReviewFolder(cells, reviewer="x")
    cell = folder.load(FIRST)
    folder.accept(FIRST, {"version": cell["version"], "boxes": boxes_of(cell)})
    out = tmp_path / "voc"
    assert main(["review", str(cells), "--export-voc", str(out)]) == 0
    text = capsys.readouterr().out
    assert "exported 1 reviewed cell(s), 47 chromosomes" in text and "1054642" in text
    assert sorted(p.name for p in (out / "images").iterdir()) == [f"{FIRST}.jpg"]
    anns, summary = load_dataset(out, progress=False)                     # what karyotf records reads
    assert summary.used == 1 and summary.skipped == 0 and len(anns[0].boxes) == 47
    res = export_voc(cells, out)                                          # again: same files, no error
    assert res.cells == 1
    from karyotf.records import build_records

    rec = build_records(out, tmp_path / "records", progress=False)        # karyotf records takes it as is
    assert json.loads((tmp_path / "records" / "stats.json").read_text()) and rec is not None


def test_cli_review_serves_and_prints_the_url(cells):
    import subprocess
    import sys
    import urllib.request

    proc = subprocess.Popen([sys.executable, "-c", "from karyotf.cli import main; main()", "review", str(cells),
                             "--reviewer", "cli"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**{k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},
                                 "PYTHONPATH": str(Path(__file__).resolve().parents[1])})  # a pipe sees the URL
    try:
        lines = [proc.stdout.readline() for _ in range(2)]
        assert "2 cell(s)" in lines[0] and "reviewer cli" in lines[0], lines
        url = lines[1].split()[1]
        assert url.startswith("http://127.0.0.1:") and "WARNING" not in "".join(lines)
        with urllib.request.urlopen(url + "api/cells", timeout=30) as r:
            assert {c["id"] for c in json.loads(r.read())["cells"]} == {FIRST, "1054642"}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_only_loopback_hosts_skip_the_warning():
    from karyotf.review.server import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.7")


def test_cli_review_help_and_empty_folder(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["review", "--help"])
    help_text = capsys.readouterr().out
    for opt in ("--port", "--host", "--reviewer", "--export-voc"):
        assert opt in help_text
    assert main(["review", str(tmp_path)]) == 2
    assert "no cell found" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ real browser
SHOTS = Path(os.environ.get("KARYOTF_REVIEW_SHOTS", "")) if os.environ.get("KARYOTF_REVIEW_SHOTS") else None


def test_browser_review_by_keyboard_and_mouse(cells, tmp_path):
    why = chromium_missing()
    if why and os.environ.get("KARYOTF_REQUIRE_BROWSER"):
        pytest.fail(f"KARYOTF_REQUIRE_BROWSER is set (CI) but {why}")
    if why:
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    srv = make_server(cells, reviewer="browser-test")
    srv.start_thread()
    shots = SHOTS or tmp_path
    errors = []
    try:
        with sync_playwright() as p:
            ctx = launch(p, tmp_path / "profile")
            page = ctx.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(srv.url + "#" + FIRST)
            page.wait_for_selector("body[data-ready='1']")
            call = page.locator("#call")
            assert call.inner_text() == "47,XY,+21"
            shot(page, shots / "before.png")

            # 1. keyboard: walk back from the end (Y, X, 22, 22) to a 21, then type 2 2
            for _ in range(12):
                page.keyboard.press("ArrowLeft")
                if "chromosome 21" in page.locator("#selection").inner_text():
                    break
            page.keyboard.type("22")
            page.wait_for_function("document.getElementById('call').textContent === '47,XY,+22'")

            # 2. mouse: drag a 21 from its slot to the 22 slot of the karyogram (scrolled into view: the cut-outs
            #    are shown at a readable size, so the karyogram pane may scroll)
            page.locator(".slot[data-cls='22']").scroll_into_view_if_needed()
            tile = page.locator(".slot[data-cls='21'] canvas.tile").first.bounding_box()
            slot = page.locator(".slot[data-cls='22']").bounding_box()
            page.mouse.move(tile["x"] + tile["width"] / 2, tile["y"] + tile["height"] / 2)
            page.mouse.down()
            page.mouse.move(slot["x"] + slot["width"] / 2, slot["y"] + slot["height"] / 2, steps=8)
            page.mouse.up()
            page.wait_for_function("document.getElementById('call').textContent === '47,XY,-21,+22,+22'")

            # 3. delete the dragged chromosome (still selected)
            page.keyboard.press("Delete")
            page.wait_for_function("document.getElementById('call').textContent === '46,XY,-21,+22'")

            # 4. draw a missed box on a free part of the metaphase, class 21 by keyboard
            cell = ReviewFolder(cells).load(FIRST)
            x, y = free_spot([b["box"] for b in cell["boxes"]], cell["width"], cell["height"])
            sx0, sy0 = screen_point(page, x, y)
            sx1, sy1 = screen_point(page, x + 30, y + 30)
            page.mouse.move(sx0, sy0)
            page.mouse.down()
            page.mouse.move(sx1, sy1, steps=6)
            page.mouse.up()
            assert "new box" in page.locator("#selection").inner_text()
            page.keyboard.type("21")
            page.wait_for_function("document.getElementById('call').textContent === '47,XY,+22'")

            # 5. resolve a flag (F), comment, accept (Ctrl+Enter)
            page.keyboard.press("f")
            assert page.locator("#flags input[data-code='total_not_46']").is_checked()
            page.keyboard.press("c")
            page.keyboard.type("one 21 was a 22; a 21 was missed")
            page.keyboard.press("Escape")
            page.keyboard.press("Control+Enter")
            page.wait_for_selector("body[data-saved]")
            assert "Accepted: 47,XY,+22" in page.locator("#msg").inner_text()
            shot(page, shots / "after.png")
            ctx.close()
    finally:
        srv.shutdown()
        srv.server_close()
    assert not errors, errors

    ann = read_voc(cells / FIRST / f"{FIRST}.xml")
    counts = ann.counts()
    assert len(ann.boxes) == 47 and counts["21"] == 2 and counts["22"] == 3
    drawn = [b for b in ann.boxes if abs(b.xmin - x) <= 2 and abs(b.ymin - y) <= 2]
    assert len(drawn) == 1 and drawn[0].name == "21" and abs(drawn[0].width - 30) <= 3
    rep = json.loads((cells / FIRST / "reviewed" / "report.json").read_text())
    r = rep["review"]
    assert rep["call"] == "47,XY,+22" and r["reviewer"] == "browser-test"
    assert r["resolved_flags"] == ["total_not_46"] and r["open_flags"] == ["extra_copy"]
    assert [c["to"] for c in r["changes"]["relabelled"]] == ["22"] and len(r["changes"]["deleted"]) == 1
    assert r["changes"]["added"] == 1 and r["comment"] == "one 21 was a 22; a 21 was missed"
    assert json.loads((cells / FIRST / "detections.json").read_text())["call"] == "47,XY,+21"   # model output kept
    for name in ("before.png", "after.png"):
        assert (shots / name).stat().st_size > 20_000             # a real page, not a blank one


def test_browser_keyboard_only_new_box_undo_and_a_second_tab(cells, tmp_path):
    """No mouse: N draws a box, Ctrl(+Shift)+arrows move and size it, a single digit and a timed-out 1 set
    classes, Z undoes, F resolves; a second tab that loaded the cell before the accept gets the 409 message."""
    why = chromium_missing()
    if why and os.environ.get("KARYOTF_REQUIRE_BROWSER"):
        pytest.fail(f"KARYOTF_REQUIRE_BROWSER is set (CI) but {why}")
    if why:
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    cid = "1054642"
    model = ReviewFolder(cells).load(cid)
    assert model["call"]["call"] == "45,XX,-7"
    srv = make_server(cells, reviewer="keys")
    srv.start_thread()
    errors = []
    call_is = "(t) => document.getElementById('call').textContent === t"
    try:
        with sync_playwright() as p:
            ctx = launch(p, tmp_path / "profile")
            page, other = ctx.new_page(), ctx.new_page()
            for pg in (page, other):
                pg.on("pageerror", lambda e: errors.append(str(e)))
                pg.goto(srv.url + "#" + cid)
                pg.wait_for_selector(f"body[data-cell='{cid}']")
            page.bring_to_front()
            page.keyboard.press("n")
            assert "new box" in page.locator("#selection").inner_text()
            page.keyboard.press("Control+ArrowRight")
            page.keyboard.press("Control+ArrowRight")
            page.keyboard.press("Control+Shift+ArrowDown")
            page.keyboard.press("7")
            page.wait_for_function(call_is, arg="46,XX")
            page.keyboard.press("ArrowRight")
            before = page.locator("#selection").inner_text()
            page.keyboard.press("1")                                  # waits for a second digit, then means 1
            page.wait_for_function("() => document.getElementById('call').textContent !== '46,XX'")
            assert page.locator("#selection").inner_text().startswith("Selected: chromosome 1 ")
            page.keyboard.press("z")
            page.wait_for_function(call_is, arg="46,XX")
            assert page.locator("#selection").inner_text() == before
            while page.locator("#flags input:not(:checked)").count():
                page.keyboard.press("f")
            page.keyboard.press("Control+Enter")
            page.wait_for_selector("body[data-saved]")
            assert page.locator("#cell-list button[data-cell='1054642'] .badge").inner_text() == "reviewed"

            other.bring_to_front()
            other.keyboard.press("ArrowRight")
            other.keyboard.press("x")
            other.keyboard.press("Control+Enter")
            other.wait_for_function("() => document.getElementById('msg').textContent.startsWith('Not saved')")
            assert "accepted elsewhere" in other.locator("#msg").inner_text()
            other.keyboard.press("r")
            other.wait_for_function(call_is, arg="46,XX")
            ctx.close()
    finally:
        srv.shutdown()
        srv.server_close()
    assert not errors, errors
    ann = read_voc(cells / cid / f"{cid}.xml")
    assert len(ann.boxes) == 46 and ann.counts()["7"] == 2
    ws = sorted(b["box"][2] - b["box"][0] for b in model["boxes"])
    hs = sorted(b["box"][3] - b["box"][1] for b in model["boxes"])
    w, h = ws[len(ws) // 2], hs[len(hs) // 2]
    x0, y0 = model["width"] / 2 - w / 2 + 8, model["height"] / 2 - h / 2
    drawn = [b for b in ann.boxes if abs(b.xmin - x0) <= 1.5 and abs(b.ymin - y0) <= 1.5]
    assert len(drawn) == 1 and drawn[0].name == "7" and abs(drawn[0].height - (h + 4)) <= 1.5
    r = json.loads((cells / cid / "reviewed" / "report.json").read_text())["review"]
    assert r["reviewer"] == "keys" and r["open_flags"] == [] and r["changes"]["added"] == 1 and r["revision"] == 1


def test_browser_restores_a_detection_the_model_did_not_count(cells, tmp_path):
    """detections.json's not_counted boxes (NMS-suppressed, below the minimum score) show dotted; a click restores
    one with the model's class, and the call counts it."""
    why = chromium_missing()
    if why and os.environ.get("KARYOTF_REQUIRE_BROWSER"):
        pytest.fail(f"KARYOTF_REQUIRE_BROWSER is set (CI) but {why}")
    if why:
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    from karyotf.paths import SAMPLE_DIR

    cid = "1054642"
    det_path = cells / cid / "detections.json"
    det = json.loads(det_path.read_text())
    kept = {tuple(d["box"]) for d in det["detections"]}
    truth = read_voc(SAMPLE_DIR / "annotations" / f"{cid}.xml")
    missed = next(b for b in truth.boxes if tuple(round(v, 2) for v in b.as_tuple()) not in kept)
    det["not_counted"] = {"suppressed": [],
                          "below_min_score": [{**missed.to_dict(), "score": 0.22}]}   # as karyogram lists them
    det_path.write_text(json.dumps(det))
    assert ReviewFolder(cells).load(cid)["not_counted"][0]["why"] == "below_min_score"
    srv = make_server(cells, reviewer="ghost")
    srv.start_thread()
    try:
        with sync_playwright() as p:
            ctx = launch(p, tmp_path / "profile")
            page = ctx.new_page()
            page.goto(srv.url + "#" + cid)
            page.wait_for_selector(f"body[data-cell='{cid}']")
            assert page.locator("#call").inner_text() == "45,XX,-7"
            page.locator("#overlay text.ghost").click()                      # its label "7?"
            page.wait_for_function("() => document.getElementById('call').textContent === '46,XX'")
            assert page.locator("#overlay rect.ghost").count() == 0
            assert "Restored a 7" in page.locator("#msg").inner_text()
            page.keyboard.press("z")
            page.wait_for_function("() => document.getElementById('call').textContent === '45,XX,-7'")
            page.keyboard.press("g")                                         # the same by keyboard
            page.wait_for_function("() => document.getElementById('call').textContent === '46,XX'")
            ctx.close()
    finally:
        srv.shutdown()
        srv.server_close()
