"""The review app's masks and split lines: POST /api/cells/{id}/masks shows each chromosome's mask after the page's
split lines, accept stores them with the review (listed under changes.split) and rebuilds the karyogram with the
edited masks; a bad line is a 400 naming the chromosome."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from karyotf.review import ReviewFolder, make_server

from review_cells import FIRST, make_cells
from test_review import boxes_of, request


@pytest.fixture(scope="module")
def one_cell_src(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("review-split-src")
    make_cells(out, n=1)
    return out


@pytest.fixture
def one_cell(tmp_path, one_cell_src) -> Path:
    dst = tmp_path / "cells"
    shutil.copytree(one_cell_src, dst)
    return dst


@pytest.fixture
def server(one_cell):
    srv = make_server(one_cell, reviewer="split-test")
    srv.start_thread()
    yield srv
    srv.shutdown()
    srv.server_close()


def across(box):
    """A line across a box's middle, at right angles to its longer side, reaching 3 px past it."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if y1 - y0 >= x1 - x0:
        return [[x0 - 3, cy], [x1 + 3, cy]]
    return [[cx, y0 - 3], [cx, y1 + 3]]


def test_masks_split_accept_round_trip(server, one_cell):
    status, cell = request(server, "GET", f"/api/cells/{FIRST}")
    boxes = boxes_of(cell)
    i = max(range(len(boxes)), key=lambda k: (boxes[k]["box"][3] - boxes[k]["box"][1]) *
            (boxes[k]["box"][2] - boxes[k]["box"][0]))                        # the biggest chromosome
    status, plain = request(server, "POST", f"/api/cells/{FIRST}/masks", {"boxes": boxes, "show": [i]})
    assert status == 200 and plain["splits"] == [] and len(plain["masks"]) == 1
    m0 = plain["masks"][0]
    assert m0["index"] == i and m0["method"] != "split" and m0["mask"].startswith("data:image/png;base64,")
    assert m0["cutout"].startswith("data:image/png;base64,") and m0["area"] > 100
    split = {"chromosomes": [i], "line": across(boxes[i]["box"])}
    status, cut = request(server, "POST", f"/api/cells/{FIRST}/masks", {"boxes": boxes, "splits": [split],
                                                                          "show": [i]})
    assert status == 200, cut
    m1 = cut["masks"][0]
    assert m1["method"] == "split" and 0 < m1["area"] < m0["area"]
    assert cut["splits"][0]["areas"] == {str(i): {"before": m0["area"], "after": m1["area"]}}
    status, everything = request(server, "POST", f"/api/cells/{FIRST}/masks", {"boxes": boxes, "splits": [split]})
    assert status == 200 and len(everything["masks"]) == len(boxes)

    # accept with the split: stored with the review, the karyogram rebuilt from the edited mask
    status, out = request(server, "POST", f"/api/cells/{FIRST}/accept",
                          {"version": cell["version"], "boxes": boxes, "splits": [split]})
    assert status == 200, out
    rec = out["review"]["changes"]["split"]
    assert len(rec) == 1 and rec[0]["chromosomes"] == [i] and rec[0]["classes"] == [boxes[i]["class"]]
    assert rec[0]["areas"][str(i)]["after"] == m1["area"] and out["review"]["reviewer"] == "split-test"
    rep = json.loads((one_cell / FIRST / "reviewed" / "report.json").read_text())
    assert rep["review"]["changes"]["split"] == rec and rep["review"]["reviewed_at"].endswith("Z")
    with_split = (one_cell / FIRST / "reviewed" / "karyogram.png").read_bytes()
    # the same boxes accepted again without the split: another karyogram (the chromosome is whole again)
    status, again = request(server, "POST", f"/api/cells/{FIRST}/accept",
                            {"version": out["version"], "boxes": boxes_of(out)})
    assert status == 200 and again["review"]["changes"]["split"] == []
    assert (one_cell / FIRST / "reviewed" / "karyogram.png").read_bytes() != with_split


@pytest.mark.parametrize("line, match", [
    ("one point", "the line has 1 point"),
    ("outside", "the line does not cross the box"),
    ("beside", "does not cut its mask in two"),
])
def test_a_bad_line_is_a_400_naming_the_chromosome(server, one_cell, line, match):
    status, cell = request(server, "GET", f"/api/cells/{FIRST}")
    boxes = boxes_of(cell)
    i = 3
    x0, y0, x1, y1 = boxes[i]["box"]
    pts = {"one point": [[(x0 + x1) / 2, (y0 + y1) / 2]],
           "outside": [[x1 + 40, y0 - 40], [x1 + 60, y1 + 40]],
           "beside": [[x0 - 1, y0 + 1], [x0 + 1, y0 - 1]]}[line]         # across its corner, off the mask
    split = {"chromosomes": [i], "line": pts}
    who = f"chromosome #{i} ({boxes[i]['class']})"
    for path, body in ((f"/api/cells/{FIRST}/masks", {"boxes": boxes, "splits": [split]}),
                       (f"/api/cells/{FIRST}/accept", {"version": cell["version"], "boxes": boxes,
                                                       "splits": [split]})):
        status, err = request(server, "POST", path, body)
        assert status == 400, err
        assert who in err["error"] and match in err["error"] and "fix:" in err["error"]
    assert ReviewFolder(one_cell).load(FIRST)["version"] == "unreviewed"          # nothing was saved
    assert not (one_cell / FIRST / f"{FIRST}.xml").exists()


def test_browser_masks_and_a_split_line(one_cell, tmp_path):
    """In the page: M shows the masks, S and a drag across the selected chromosome split its mask (the server
    recomputes it), Ctrl+Enter saves the split with the review."""
    import os

    from review_cells import chromium_missing, launch, screen_point, shot

    why = chromium_missing()
    if why and os.environ.get("KARYOTF_REQUIRE_BROWSER"):
        pytest.fail(f"KARYOTF_REQUIRE_BROWSER is set (CI) but {why}")
    if why:
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    cell = ReviewFolder(one_cell).load(FIRST)
    ones = sorted((b for b in cell["boxes"] if b["class"] == "1"), key=lambda b: b["box"][0] + b["box"][2])
    target = ones[0]["box"]                                   # the first chromosome the arrow keys select
    srv = make_server(one_cell, reviewer="browser-split")
    srv.start_thread()
    shots = Path(os.environ["KARYOTF_REVIEW_SHOTS"]) if os.environ.get("KARYOTF_REVIEW_SHOTS") else tmp_path
    errors = []
    try:
        with sync_playwright() as p:
            ctx = launch(p, tmp_path / "profile")
            page = ctx.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(srv.url + "#" + FIRST)
            page.wait_for_selector("body[data-ready='1']")
            page.keyboard.press("ArrowRight")
            assert "chromosome 1" in page.locator("#selection").inner_text()
            page.keyboard.press("m")
            page.wait_for_selector("#overlay image.mask.sel")
            page.wait_for_selector("#maskview img.over")
            assert page.locator("#overlay image.mask").count() == len(cell["boxes"])
            page.keyboard.press("s")
            line = across(target)
            (ax, ay), (bx, by) = (screen_point(page, *pt) for pt in line)
            page.mouse.move(ax, ay)
            page.mouse.down()
            page.mouse.move(bx, by, steps=10)
            page.mouse.up()
            page.wait_for_function("(t => t.startsWith('Split ') && !t.startsWith('Split mode'))"
                                   "(document.getElementById('msg').textContent)")
            assert "Split of chromosome 1" in page.locator("#msg").inner_text()
            assert "split by you" in page.locator("#maskview").inner_text()
            assert page.locator("#overlay polyline.splitline").count() == 1
            shot(page, shots / "split.png")
            page.keyboard.press("Escape")                          # ends split mode
            page.keyboard.press("Control+Enter")
            page.wait_for_selector("body[data-saved]")
            ctx.close()
    finally:
        srv.shutdown()
        srv.server_close()
    assert not errors, errors
    rep = json.loads((one_cell / FIRST / "reviewed" / "report.json").read_text())
    (rec,) = rep["review"]["changes"]["split"]
    assert rec["classes"] == ["1"] and rep["review"]["reviewer"] == "browser-split"
    (i,) = rec["chromosomes"]
    assert json.loads((one_cell / FIRST / "reviewed" / "detections.json").read_text())["detections"][i]["box"] == \
        pytest.approx(target)
    assert 0 < rec["areas"][str(i)]["after"] < rec["areas"][str(i)]["before"]


@pytest.mark.slow  # the U-Net separates a 47-chromosome cell three times (about 20 s on a loaded machine)
def test_a_separated_cell_is_reviewed_with_its_own_separation_model(tmp_path):
    """A cell built with --separate records its model in detections.json; the review's masks and its rebuilt
    karyogram use that model (not the classical cut-out), and say so."""
    from karyotf.karyogram.build import from_annotation
    from karyotf.paths import SAMPLE_DIR, SEPARATE_DIR

    from_annotation(SAMPLE_DIR / "annotations" / f"{FIRST}.xml", tmp_path / FIRST, separate=SEPARATE_DIR)
    det = json.loads((tmp_path / FIRST / "detections.json").read_text())
    assert det["params"]["separate"] == str(Path(SEPARATE_DIR).resolve())
    folder = ReviewFolder(tmp_path, reviewer="sep")
    cell = folder.load(FIRST)
    masks = folder.masks(FIRST, {"boxes": boxes_of(cell)})
    assert masks["separate"] == det["params"]["separate"]
    assert sum(m["method"] == "unet" for m in masks["masks"]) > 30
    out = folder.accept(FIRST, {"version": cell["version"], "boxes": boxes_of(cell)})
    rebuilt = json.loads((tmp_path / FIRST / "reviewed" / "detections.json").read_text())
    assert rebuilt["params"]["separate"] == det["params"]["separate"] and out["review"]["changes"]["split"] == []
    rep = json.loads((tmp_path / FIRST / "reviewed" / "report.json").read_text())
    assert any(f["code"] == "separation_uncertain" for f in rep["flags"]) == any(
        f["code"] == "separation_uncertain" for f in json.loads((tmp_path / FIRST / "report.json").read_text())["flags"])
