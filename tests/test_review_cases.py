"""Review by case (karyotf.review.cases): cells grouped into cases, the case karyotype following cell corrections,
a case accepted as a whole with its reviewed report; the HTTP API and the /cases page in a real browser."""
from __future__ import annotations

import http.client
import json
import os
import shutil

import pytest

from karyotf.review import ReviewConflict, ReviewFolder, make_server
from karyotf.review.cases import CaseReview

from review_cells import chromium_missing, launch

CELLS = ("1071391", "1071392", "1071394")  # one case of the built-in sample, 107139


@pytest.fixture(scope="module")
def case_src(tmp_path_factory, sample_dir):
    """``karyotf case`` output of case 107139 from truth boxes (cells under OUT/cells/, case report under
    OUT/cases/)."""
    from karyotf.case import run_cases

    out = tmp_path_factory.mktemp("case-src")
    run_cases([sample_dir / "images" / f"{s}.jpg" for s in CELLS], out, annotations=sample_dir / "annotations",
              progress=False)
    return out


@pytest.fixture
def case_dir(tmp_path, case_src):
    dst = tmp_path / "case"
    shutil.copytree(case_src, dst)
    return dst


def _relabel_one(folder: ReviewFolder, cell_id: str, src: str, dst: str) -> dict:
    """Accept ``cell_id`` with one chromosome ``src`` relabelled ``dst`` (as a reviewer would)."""
    d = folder.load(cell_id)
    boxes = [dict(b) for b in d["boxes"]]
    i = next(i for i, b in enumerate(boxes) if b["class"] == src)
    boxes[i]["class"] = dst
    return folder.accept(cell_id, {"version": d["version"], "boxes": boxes, "resolved": [], "comment": "relabel"})


def test_case_follows_cell_corrections_and_is_accepted_as_a_whole(case_dir):
    folder = ReviewFolder(case_dir, reviewer="case-test")
    cases = CaseReview(folder)
    listed = cases.list()
    assert [c["id"] for c in listed] == ["107139"] and listed[0]["cells"] == 3
    before = cases.load("107139")
    normal = before["karyotype"]
    assert normal in ("46,XX[3]", "46,XY[3]") and before["status"] == "to review"
    assert {c["review_id"] for c in before["cells"]} == {f"cells/{s}" for s in CELLS}

    # correct one cell: a 22 relabelled 21 -> that cell reads +21,-22 and leaves the normal line
    _relabel_one(folder, "cells/1071392", "22", "21")
    after = cases.load("107139")
    assert after["karyotype"] == normal.replace("[3]", "[2]")
    assert [x["cell"] for x in after["non_clonal"]] == ["1071392"]
    assert "+21,-22" in after["non_clonal"][0]["call"]
    assert {c["cell"]: c["status"] for c in after["cells"]}["1071392"] == "reviewed"

    # accept the case as a whole
    acc = cases.accept("107139", {"version": after["version"], "comment": "one odd cell"}, reviewer="dr-case")
    assert acc["status"] == "accepted" and acc["review"]["reviewer"] == "dr-case"
    assert acc["review"]["comment"] == "one odd cell" and acc["review"]["karyotype"] == after["karyotype"]
    assert sorted(acc["review"]["unreviewed_cells"]) == ["1071391", "1071394"]
    rep = json.loads((case_dir / "cases" / "107139" / "reviewed" / "report.json").read_text())
    assert rep["review"]["revision"] == 1 and rep["karyotype"] == after["karyotype"]
    html = (case_dir / "cases" / "107139" / "reviewed" / "report.html").read_text()
    assert "Accepted" in html and "dr-case" in html and "one odd cell" in html
    # the machine's case report beside it is untouched
    assert json.loads((case_dir / "cases" / "107139" / "report.json").read_text())["karyotype"] == normal

    # a stale accept (another tab) is refused
    with pytest.raises(ReviewConflict):
        cases.accept("107139", {"version": after["version"], "comment": "stale"})

    # a cell corrected after the case was accepted: the case says so
    _relabel_one(folder, "cells/1071391", "22", "21")
    now = cases.load("107139")
    assert now["status"] == "changed since accepted"
    assert now["karyotype"] != acc["karyotype"]
    again = cases.accept("107139", {"version": now["version"], "comment": ""})
    assert again["status"] == "accepted" and again["review"]["revision"] == 2


def _request(srv, method, path, body=None, token=True):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    h = {"Host": f"127.0.0.1:{srv.port}"}
    data = None if body is None else json.dumps(body).encode()
    if data is not None:
        h["Content-Type"] = "application/json"
    if token and method == "POST":
        h["X-Karyotf-Token"] = srv.token
    conn.request(method, path, body=data, headers=h)
    r = conn.getresponse()
    return r.status, r.read()


def test_case_api(case_dir):
    srv = make_server(case_dir, reviewer="api-case")
    srv.start_thread()
    try:
        st, body = _request(srv, "GET", "/cases")
        assert st == 200 and srv.token.encode() in body and b"cases.js" in body
        st, body = _request(srv, "GET", "/static/cases.html")
        assert st == 404  # pages only with their token filled in
        st, body = _request(srv, "GET", "/api/cases")
        assert st == 200 and [c["id"] for c in json.loads(body)["cases"]] == ["107139"]
        st, body = _request(srv, "GET", "/api/cases/107139")
        case = json.loads(body)
        assert st == 200 and case["version"] == "unreviewed"
        st, _ = _request(srv, "GET", "/api/cases/nope")
        assert st == 404
        st, _ = _request(srv, "POST", "/api/cases/107139/accept", {"version": "unreviewed"}, token=False)
        assert st == 403
        st, body = _request(srv, "POST", "/api/cases/107139/accept", {"version": "unreviewed", "comment": "ok"})
        assert st == 200 and json.loads(body)["review"]["reviewer"] == "api-case"
        st, body = _request(srv, "POST", "/api/cases/107139/accept", {"version": "unreviewed", "comment": "ok"})
        assert st == 409
    finally:
        srv.shutdown()
        srv.server_close()


def test_browser_accepts_a_case(case_dir, tmp_path):
    why = chromium_missing()
    if why and os.environ.get("KARYOTF_REQUIRE_BROWSER"):
        pytest.fail(f"KARYOTF_REQUIRE_BROWSER is set (CI) but {why}")
    if why:
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    srv = make_server(case_dir, reviewer="browser-case")
    srv.start_thread()
    errors = []
    try:
        with sync_playwright() as p:
            ctx = launch(p, tmp_path / "profile")
            page = ctx.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(srv.url + "cases")
            page.wait_for_selector("body[data-ready='1']")
            assert page.locator("#case-karyotype").inner_text() in ("46,XX[3]", "46,XY[3]")
            assert page.locator("#case-cells tbody tr").count() == 3
            page.fill("#case-comment", "signed in the browser")
            page.click("#accept-case")
            page.wait_for_selector("body[data-saved]")
            assert "Accepted" in page.locator("#case-message").inner_text()
            assert "accepted" in page.locator("#case-list").inner_text()
            ctx.close()
    finally:
        srv.shutdown()
        srv.server_close()
    assert not errors
    rep = json.loads((case_dir / "cases" / "107139" / "reviewed" / "report.json").read_text())
    assert rep["review"]["comment"] == "signed in the browser" and rep["review"]["reviewer"] == "browser-case"
