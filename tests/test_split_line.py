"""A person's split line (karyotf.separate.edit): the mask cut in two along the line, exact areas on planted masks,
clear errors naming the chromosome, and the karyogram drawn from the edited masks."""
from __future__ import annotations

import numpy as np
import pytest

from karyotf.annotations import Box
from karyotf.karyogram.cutout import masked
from karyotf.separate.edit import SplitError, apply_splits, parse_split, split_mask


def _cell(h=60, w=80):
    img = np.full((h, w, 3), 240, np.uint8)
    return img


def test_a_straight_line_cuts_a_planted_mask_into_two_exact_halves():
    mask = np.ones((10, 20), bool)                       # window at (100, 50): columns 100..119
    left, right = split_mask(mask, (100, 50), [(110, 40), (110, 70)])
    assert left.sum() == 100 and right.sum() == 100      # the line x = 110 runs between columns 109 and 110
    assert left[:, :10].all() and not left[:, 10:].any() and not (left & right).any()
    # a polyline with a bend: the side of each pixel is that of its nearest segment
    a, b = split_mask(mask, (0, 0), [(5, -10), (5, 5), (15, 5), (15, 30)])
    assert a.sum() + b.sum() == 200 and a.any() and b.any()


def test_one_chromosome_keeps_the_side_in_its_box_and_two_share_along_the_line():
    img = _cell()
    img[10:20, 10:50] = 60                               # chromosome 0 (box 10..30) and an arm of its neighbour
    img[10:20, 50:70] = 60
    boxes = [Box(10, 8, 30, 22, "1"), Box(45, 8, 70, 22, "2")]
    m0 = np.zeros((14, 60), bool)
    m0[2:12, 0:40] = True                                # its mask took the neighbour's arm 30..49 along
    m1 = np.zeros((14, 60), bool)
    m1[2:12, 40:60] = True
    cuts = [masked(img, boxes[0], 0, m0, (10, 8), "unet"), masked(img, boxes[1], 1, m1, (10, 8), "unet")]
    out, recs = apply_splits(img, boxes, cuts, [{"chromosomes": [0], "line": [[28, 0], [28, 40]]}])
    assert out[0].method == "split" and out[0].area == 10 * 18 and out[1] is cuts[1]
    assert recs[0]["areas"] == {"0": {"before": 400, "after": 180}} and recs[0]["classes"] == ["1"]
    ys, xs = np.nonzero(out[0].mask)
    assert xs.min() + out[0].origin[0] == 10 and xs.max() + out[0].origin[0] == 27
    # where the two part is redrawn: the union (10..69) shared out at x = 40, each side to the box holding it
    out, recs = apply_splits(img, boxes, cuts, [{"chromosomes": [1, 0], "line": [[40, 40], [40, 0]]}])
    assert out[0].area == 10 * 30 and out[1].area == 10 * 30
    assert recs[0]["areas"] == {"1": {"before": 200, "after": 300}, "0": {"before": 400, "after": 300}}
    assert out[0].image[out[0].mask].max() == 60         # the cut-out is the cell's pixels inside the new mask


@pytest.mark.parametrize("split, match", [
    ({"chromosomes": [0], "line": [[20, 15]]}, r"chromosome #0 \(1\): the line has 1 point"),
    ({"chromosomes": [0], "line": [[20, 15], [20.2, 15.1]]}, r"chromosome #0 \(1\): the line is a single point"),
    ({"chromosomes": [0], "line": [[5, 40], [75, 40]]}, r"chromosome #0 \(1\): the line does not cross the box"),
    ({"chromosomes": [0, 0], "line": [[20, 0], [20, 40]]}, r"chromosome #0 \(1\) given twice"),
    ({"chromosomes": [5], "line": [[20, 0], [20, 40]]}, r"chromosome #5 is not a box"),
    ({"chromosomes": [0], "line": "20,0 20,40"}, r"chromosome #0 \(1\): 'line' must be a list"),
])
def test_a_bad_line_is_an_error_naming_the_chromosome(split, match):
    boxes = [Box(10, 8, 30, 22, "1"), Box(45, 8, 70, 22, "2")]
    with pytest.raises(SplitError, match=match):
        parse_split(split, boxes, 0)


def test_a_line_beside_the_mask_does_not_cut_it_in_two():
    img = _cell()
    boxes = [Box(10, 8, 30, 22, "1")]
    m = np.zeros((14, 20), bool)
    m[2:12, 2:18] = True
    cuts = [masked(img, boxes[0], 0, m, (10, 8), "unet")]
    with pytest.raises(SplitError, match=r"chromosome #0 \(1\): the line does not cut its mask in two"):
        apply_splits(img, boxes, cuts, [{"chromosomes": [0], "line": [[11, 0], [11, 40]]}])


def test_the_karyogram_is_drawn_from_the_split_masks():
    from karyotf.karyogram.build import make_karyogram

    img = _cell(120, 160)
    img[20:30, 20:100] = 50                              # one long dark bar under two boxes
    boxes = [Box(18, 18, 60, 32, "1"), Box(60, 18, 102, 32, "2")]
    _, plain, _, _ = make_karyogram(img, boxes, ideograms=False)
    _, edited, _, _ = make_karyogram(img, boxes, ideograms=False,
                                     splits=[{"chromosomes": [0, 1], "line": [[70, 0], [70, 60]]}])
    a, b = np.asarray(plain.image), np.asarray(edited.image)
    assert a.shape != b.shape or not np.array_equal(a, b)
