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
