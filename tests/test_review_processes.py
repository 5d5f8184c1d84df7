"""karyotf review across processes: two ``karyotf review`` servers on one folder never lose a review (issue 22)."""
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
def cells(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("review-procs")
    make_cells(out, n=1)
    return out


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
