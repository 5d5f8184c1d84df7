"""karyotf.separate: synthetic crossings (exact masks, seeded), the separation model, the fallback, the karyogram
hooks, straightening and bad input."""
from __future__ import annotations

import numpy as np
import pytest

from karyotf.annotations import Box
from karyotf.separate import synth


def rod_cell(rods, shape=(160, 200), bg=235.0, dark=90.0):
    """A grey cell with dark rods: ``rods`` = [(x0, y0, x1, y1)] filled rectangles; RGB uint8."""
    g = np.full(shape, bg, np.float32)
    for x0, y0, x1, y1 in rods:
        g[y0:y1, x0:x1] = dark
    g = np.clip(g, 0, 255).astype(np.uint8)
    return np.stack([g] * 3, axis=-1)


def banded(length=60, width=12, bands=(0.2, 0.5, 0.8), name="1"):
    """A straight banded chromosome (vertical): transmittance 0.45 with darker bands at ``bands`` fractions."""
    t = np.ones((length + 4, width + 4), np.float32)
    m = np.zeros_like(t, bool)
    m[2:2 + length, 2:2 + width] = True
    t[m] = 0.45
    for f in bands:
        y = 2 + int(f * length)
        t[y - 2:y + 2, 2:2 + width] = 0.15
    return synth.Chromosome(trans=t, mask=m, name=name, cell="synthetic", background=235.0)


@pytest.fixture(scope="module")
def sample_chromosomes(sample_dir):
    from karyotf import images
    from karyotf.annotations import load_dataset

    anns = load_dataset(sample_dir)[0][:6]
    out = []
    for ann in anns:
        out.extend(synth.isolated(images.load(ann.image_path), ann.boxes, cell=ann.image_id))
    return out


# ------------------------------------------------------------------------------------------- synthetic generator


def test_isolated_keeps_only_chromosomes_that_touch_no_other_box():
    # rod 0 alone; rods 1 and 2 touch (one component spanning two boxes); rod 3 reaches into box 4
    img = rod_cell([(10, 10, 20, 60), (60, 10, 70, 60), (70, 30, 100, 40), (120, 10, 130, 70)])
    boxes = [Box(9, 9, 21, 61, "1"), Box(59, 9, 71, 61, "2"), Box(70, 29, 101, 41, "3"),
             Box(119, 9, 131, 71, "4"), Box(125, 50, 150, 80, "5")]
    found = synth.isolated(img, boxes, min_area=20)
    assert [c.name for c in found] == ["1"]
    c = found[0]
    assert c.area == (10 + 2) * (50 + 2)  # the rod grown by one pixel
    assert np.all(c.trans[~c.mask] == 1.0) and c.trans[c.mask].min() == pytest.approx(90 / 235, abs=0.01)


def test_isolated_from_a_real_cell(sample_chromosomes):
    assert len(sample_chromosomes) >= 10
    for c in sample_chromosomes:
        assert c.mask.any() and c.trans.shape == c.mask.shape
        assert np.all(c.trans[~c.mask] == 1.0)
        assert not c.mask[0].any() and not c.mask[-1].any()  # padded: the mask does not touch the frame


def test_scene_masks_are_exact_by_construction(sample_chromosomes):
    rng = np.random.default_rng(3)
    crossings = touchings = 0
    for _ in range(30):
        s = synth.make_scene(sample_chromosomes, rng, touch_p=0.3, noise=0.0, extra=(0, 1))
        g = s.image[..., 0].astype(np.float32)
        union = np.any(s.masks, axis=0)
        # nothing outside the masks is darkened: the slide is the background exactly
        assert np.all(np.abs(g[~union] - s.background) <= 0.5 + 1e-3)
        # every mask is its chromosome's turned mask: as many pixels, and its box is the mask's tight box
        for m, b in zip(s.masks, s.boxes):
            ys, xs = np.nonzero(m)
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == b.as_tuple()
        ov = s.overlap
        if s.touching:
            touchings += 1
            assert not ov.any()
            from scipy import ndimage as ndi

            grown = ndi.binary_dilation(s.masks[0], iterations=3)
            assert (grown & s.masks[1]).any()  # slid apart until they just no longer overlap
        else:
            crossings += 1
            assert ov.any()
            # multiplicative: the crossing is darker than the mean of either chromosome alone
            a_only = s.masks[0] & ~s.masks[1]
            assert g[ov].mean() < g[a_only].mean()
    assert crossings and touchings


def test_scene_multiplies_transmittances():
    a, b = banded(60, 12), banded(50, 10, name="2")
    s = synth.make_scene([a, b], np.random.default_rng(0), touch_p=0.0, noise=0.0)
    g = s.image[..., 0].astype(np.float32)
    ov = s.overlap
    assert ov.sum() > 20
    # where two plain (0.45) parts cross the grey is bg * 0.45 * 0.45
    vals = g[ov]
    assert np.any(np.abs(vals - np.round(235 * 0.45 * 0.45)) <= 1)
    assert vals.max() <= np.round(235 * 0.45) + 1


def test_scenes_are_seeded_and_reproducible(sample_chromosomes):
    one = list(synth.scenes(sample_chromosomes, 5, seed=11, extra=(0, 1)))
    two = list(synth.scenes(sample_chromosomes, 5, seed=11, extra=(0, 1)))
    other = list(synth.scenes(sample_chromosomes, 5, seed=12, extra=(0, 1)))
    for s, t in zip(one, two):
        assert np.array_equal(s.image, t.image)
        assert all(np.array_equal(m, n) for m, n in zip(s.masks, t.masks))
        assert [b.as_tuple() for b in s.boxes] == [b.as_tuple() for b in t.boxes]
    assert any(s.image.shape != t.image.shape or not np.array_equal(s.image, t.image) for s, t in zip(one, other))


def test_scene_needs_two_chromosomes():
    with pytest.raises(ValueError, match="two isolated"):
        synth.make_scene([banded()], np.random.default_rng(0))


# ------------------------------------------------------------------------------------------------- straighten


def bent_band_pattern(radius=40, thick=12, bands=((0.2, 30), (0.5, 80), (0.8, 120))):
    """A half-ring with round ends (a chromosome bent into a U, open end up), grey 150 with bands of distinct
    greys at arc fractions from the right end; returns (RGB image, mask, tip-to-tip centre-line length, the
    bands' fractions of that length)."""
    h = w = 2 * radius + 30
    cy, cx = 20, w // 2
    yy, xx = np.mgrid[:h, :w].astype(float)
    r = np.hypot(yy - cy, xx - cx)
    frac = np.clip(np.arctan2(yy - cy, xx - cx) / np.pi, 0, 1)
    mask = (np.abs(r - radius) <= thick / 2) & (yy >= cy)
    for ex in (cx - radius, cx + radius):  # round caps
        mask |= np.hypot(yy - cy, xx - ex) <= thick / 2
    g = np.full((h, w), 150.0)
    for f, v in bands:
        g[np.abs(frac - f) < 0.03] = v
    img = np.full((h, w, 3), 255, np.uint8)
    img[mask] = np.stack([g] * 3, -1)[mask].astype(np.uint8)
    length = np.pi * radius + thick
    return img, mask, length, [(thick / 2 + f * np.pi * radius) / length for f, _ in bands]


def test_straighten_keeps_band_order_and_length():
    from karyotf.separate.straighten import straighten

    img, mask, length, expected = bent_band_pattern()
    out, m, done = straighten(img, mask)
    assert done
    assert abs(out.shape[0] - length) <= 0.05 * length  # length preserved
    assert out.shape[1] < 0.4 * out.shape[0]  # laid straight: long and thin
    assert abs(m.sum() - mask.sum()) <= 0.1 * mask.sum()  # no chromosome lost or pulled in
    prof = np.array([out[k][m[k], 0].mean() if m[k].any() else 255 for k in range(out.shape[0])])
    # the bands are the runs darker than the plain grey: three of them, in their order, where they were
    from scipy import ndimage as ndi

    runs, n = ndi.label(prof < 140)
    assert n == 3
    centres = [np.nonzero(runs == i)[0].mean() / out.shape[0] for i in (1, 2, 3)]
    darkest = [prof[runs == i].min() for i in (1, 2, 3)]
    if darkest[0] > darkest[2]:  # either end may come first
        centres, darkest = [1 - c for c in centres[::-1]], darkest[::-1]
    assert darkest == sorted(darkest) and abs(darkest[0] - 30) < 10 and abs(darkest[2] - 120) < 10
    fr = centres
    assert np.allclose(fr, expected, atol=0.04)


def test_straighten_leaves_a_straight_chromosome_alone():
    from karyotf.separate.straighten import straighten

    img = np.full((80, 30, 3), 255, np.uint8)
    mask = np.zeros((80, 30), bool)
    mask[5:75, 10:20] = True
    img[mask] = 90
    out, m, done = straighten(img, mask)
    assert not done and out is img and m is mask


def test_straighten_empty_mask():
    from karyotf.separate.straighten import straighten

    img = np.full((10, 10, 3), 255, np.uint8)
    out, m, done = straighten(img, np.zeros((10, 10), bool))
    assert not done


# ------------------------------------------------------------------------------------- separator, fallback, bad input


@pytest.fixture(scope="module")
def untrained():
    """A separator that knows nothing: P = sigmoid(0.1) ~ 0.52 for every pixel (the logits layer zeroed), so it
    claims every foreground pixel and is sure of none: every box falls back to the cut-out."""
    from karyotf.separate.model import SeparateConfig, build_unet
    from karyotf.separate.separator import Separator

    cfg = SeparateConfig(size=64, width=4)
    model = build_unet(cfg.size, cfg.width)
    layer = model.get_layer("logits")
    kernel, bias = layer.get_weights()
    layer.set_weights([np.zeros_like(kernel), np.full_like(bias, 0.1)])
    return Separator(model=model, cfg=cfg)


def cell_masks(sep, shape):
    out = []
    for c in sep.cutouts:
        m = np.zeros(shape[:2], bool)
        x0, y0 = c.origin
        m[y0:y0 + c.mask.shape[0], x0:x0 + c.mask.shape[1]] = c.mask
        out.append(m)
    return out


def test_without_a_model_the_cut_out_is_used():
    from karyotf.karyogram.cutout import cut_out_all
    from karyotf.separate.separator import separate

    img = rod_cell([(10, 10, 20, 60), (60, 10, 70, 60), (70, 30, 100, 40)])
    boxes = [Box(9, 9, 21, 61, "1"), Box(59, 9, 71, 61, "2"), Box(70, 29, 101, 41, "3")]
    sep = separate(img, boxes)
    ref = cut_out_all(img, boxes)
    assert [c.method for c in sep.cutouts] == [c.method for c in ref]
    assert all(np.array_equal(a.mask, b.mask) for a, b in zip(sep.cutouts, ref))
    assert sep.clusters == [[1, 2]] and not sep.flags  # a pair touching: no flag


def test_low_confidence_falls_back_to_the_cut_out_and_is_flagged(untrained):
    from karyotf.karyogram.cutout import cut_out_all
    from karyotf.separate.separator import FLAG_CODE, separate

    img = rod_cell([(10, 10, 20, 60), (120, 10, 130, 70)])
    boxes = [Box(9, 9, 21, 61, "1"), Box(119, 9, 131, 71, "2")]
    sep = separate(img, boxes, untrained)
    ref = cut_out_all(img, boxes)
    assert all(c.method != "unet" for c in sep.cutouts)
    assert all(np.array_equal(a.mask, b.mask) for a, b in zip(sep.cutouts, ref))
    assert set(sep.uncertain) == {0, 1} and "low mask confidence" in sep.uncertain[0]
    assert [f.code for f in sep.flags] == [FLAG_CODE] and sep.flags[0].review
    assert set(sep.flags[0].classes) == {"1", "2"}


@pytest.mark.parametrize("model", [False, True], ids=["cutout", "untrained"])
def test_bad_input_gets_a_mask_or_a_flag(model, untrained):
    from karyotf.separate.separator import separate

    sep_model = untrained if model else None
    # a box with no foreground (slide only), a box inside another, a cluster of five crossing rods
    rods = [(20, 10, 28, 110), (10, 56, 110, 64), (60, 10, 68, 110), (14, 30, 104, 38), (14, 84, 104, 92),
            (150, 20, 160, 80)]
    img = rod_cell(rods, shape=(160, 240))
    boxes = [Box(*r, name=str(i + 1)) for i, r in enumerate(rods)]
    boxes += [Box(200, 100, 230, 140, "7"),  # nothing there
              Box(152, 40, 158, 60, "8")]  # inside box 6
    sep = separate(img, boxes, sep_model)
    assert len(sep.cutouts) == len(boxes)
    for i, c in enumerate(sep.cutouts):
        assert c.mask.any() and c.index == i and c.box is boxes[i]
    five = next(g for g in sep.clusters if 0 in g)
    assert sorted(five) == [0, 1, 2, 3, 4]
    for i in range(5):
        assert "cluster of 5" in sep.uncertain[i] or "confidence" in sep.uncertain[i]
    assert "no foreground" in sep.uncertain[6]
    assert sep.flags and sep.flags[0].code == "separation_uncertain"


def test_every_box_overlapping_keeps_every_chromosome_in_the_karyogram(untrained):
    from karyotf.karyogram.build import make_karyogram

    rods = [(40, 10, 50, 110), (10, 55, 110, 65), (20, 20, 90, 30), (20, 80, 90, 90)]
    img = rod_cell(rods, shape=(130, 130))
    names = ["1", "1", "2", "2"]
    boxes = [Box(10, 10, 110, 110, n) for n in names]  # every box the whole tangle
    for sep in (None, untrained):
        call, layout, _, checked = make_karyogram(img, boxes, separate=sep, straighten=True) if sep else \
            make_karyogram(img, boxes, straighten=True)
        assert len(layout.placements) == len(boxes)
    call, layout, _, _ = make_karyogram(img, boxes, separate=untrained)
    assert "separation_uncertain" in call.flag_codes


# ------------------------------------------------------------------------------------- the shipped model


@pytest.fixture(scope="module")
def shipped():
    from karyotf.separate.separator import Separator

    return Separator.default()


def test_a_planted_crossing_is_separated(shipped, sample_chromosomes):
    """Crossings of two known chromosomes (the sample's isolated ones): each chromosome's mask and the crossing
    come back close to the truth, and far better than the classical cut-out's."""
    from karyotf.karyogram.cutout import cut_out_all
    from karyotf.separate.separator import separate

    def iou(a, b):
        return (a & b).sum() / max(1, (a | b).sum())

    ours, theirs, ov = [], [], []
    for s in synth.scenes(sample_chromosomes, 12, seed=26, touch_p=0.0):
        sep = separate(s.image, s.boxes, shipped, min_confidence=0.0)
        masks = cell_masks(sep, s.image.shape)
        cut = cell_masks(type(sep)(cutouts=cut_out_all(s.image, s.boxes), confidence=[]), s.image.shape)
        ours += [iou(m, t) for m, t in zip(masks, s.masks)]
        theirs += [iou(m, t) for m, t in zip(cut, s.masks)]
        ov.append(iou(masks[0] & masks[1], s.overlap))
        assert all(c.method == "unet" for c in sep.cutouts)
    assert np.mean(ours) >= 0.88 and np.min(ours) >= 0.6
    assert np.mean(ov) >= 0.6
    assert np.mean(ours) > np.mean(theirs) + 0.04


def test_karyogram_cli_separate_and_straighten(tmp_path, sample_dir):
    from karyotf.cli import main

    img = sorted((sample_dir / "images").iterdir())[0]
    out = tmp_path / "k"
    assert main(["karyogram", str(img), "--annotations", str(sample_dir / "annotations"), "--separate",
                 "--straighten", "--out", str(out)]) == 0
    import json

    det = json.loads((out / "detections.json").read_text())
    assert all("karyogram_box" in d for d in det["detections"])  # every chromosome placed
    report = json.loads((out / "report.json").read_text())
    assert "separation_uncertain" in json.dumps(report)  # a crowded cell: its clusters are listed for review


# ------------------------------------------------------------------------------------- training, resume, export


def test_train_resumes_exports_and_loads(tmp_path, sample_dir):
    from karyotf.records import build_records
    from karyotf.separate.model import SeparateConfig
    from karyotf.separate.separator import Separator, separate
    from karyotf.separate.train import export, read_run, train

    records = tmp_path / "records"
    build_records(sample_dir, records, fractions=(0.6, 0.2, 0.2), progress=False)
    cfg = SeparateConfig(size=32, width=4, train_samples=24, val_samples=8, batch=8, epochs=1)
    run = tmp_path / "run"
    state = train(records, run, cfg, progress=False)
    assert state["epoch"] == 1 and state["samples"] == {"train": 24, "val": 8}
    assert (run / "best" / "model.weights.h5").is_file() and list((run / "cache").glob("windows-*.npz"))
    # a rerun with more epochs resumes at epoch 1 (the cached windows are reused)
    cfg.epochs = 2
    state = train(records, run, cfg, progress=False)
    assert state["epoch"] == 2 and read_run(run)["epoch"] == 2
    out = export(run, tmp_path / "exported")
    sep = Separator(out)
    assert sep.cfg.size == 32
    img = rod_cell([(10, 10, 20, 60), (60, 10, 70, 60)])
    res = separate(img, [Box(9, 9, 21, 61, "1"), Box(59, 9, 71, 61, "2")], sep)
    assert len(res.cutouts) == 2 and all(c.mask.any() for c in res.cutouts)


def test_train_refuses_another_shape_in_the_same_run(tmp_path):
    from karyotf.errors import SeparateError
    from karyotf.separate.model import SeparateConfig
    from karyotf.separate.train import train

    run = tmp_path / "run"
    run.mkdir()
    (run / "separate.json").write_text('{"config": {"size": 80, "width": 16}, "epoch": 3}')
    with pytest.raises(SeparateError, match="size 80, width 16"):
        train(tmp_path / "records", run, SeparateConfig(size=64, width=8), progress=False)


def test_export_of_an_empty_run_names_the_fix(tmp_path):
    from karyotf.errors import SeparateError
    from karyotf.separate.train import export

    with pytest.raises(SeparateError, match="karyotf separate train"):
        export(tmp_path, tmp_path / "out")
