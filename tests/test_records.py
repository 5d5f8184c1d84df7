import json
import re
import shutil

import numpy as np
import pytest

from karyotf import records
from karyotf.annotations import load_dataset
from karyotf.cli import main
from karyotf.errors import RecordsError


@pytest.fixture(scope="module")
def sample_records(tmp_path_factory, sample_dir):
    out = tmp_path_factory.mktemp("records")
    result = records.build_records(sample_dir, out, seed=0, progress=False)
    return out, result


def _record_files(path):
    return sorted(p.name for p in path.rglob("*") if ".record-" in p.name)


def test_writes_splits_label_map_manifest_stats(sample_records, sample_dir):
    out, result = sample_records
    assert sum(result.counts.values()) == 32
    assert set(_record_files(out)) == {p.name for files in result.files.values() for p in files}
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["images"]) == 32 and manifest["seed"] == 0
    stats = json.loads((out / "stats.json").read_text())
    assert sum(s["images"] for s in stats["splits"].values()) == 32
    assert (out / "class_distribution.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(out.glob(".records-tmp-*"))
    assert records.split_pattern(out, "train").endswith("train.record-?????-of-00001")


def test_odapi_decoder_reads_back_the_xml_boxes_and_classes(sample_records, sample_dir):
    """The OD API's own TfExampleDecoder decodes every example to the boxes and classes of its XML."""
    import karyotf.odapi  # noqa: F401
    import tensorflow as tf
    from object_detection.core import standard_fields as fields
    from object_detection.data_decoders.tf_example_decoder import TfExampleDecoder

    out, _ = sample_records
    truth = {a.image_id: a for a in load_dataset(sample_dir, progress=False)[0]}
    decoder = TfExampleDecoder(label_map_proto_file=str(out / "label_map.pbtxt"))
    seen = 0
    for path in _record_files(out):
        for raw in tf.data.TFRecordDataset(str(out / path)):
            d = decoder.decode(raw)
            ann = truth[d[fields.InputDataFields.source_id].numpy().decode()]
            h, w = ann.height, ann.width
            assert d[fields.InputDataFields.image].shape == (h, w, 3)
            want = np.array([[b.ymin / h, b.xmin / w, b.ymax / h, b.xmax / w] for b in ann.boxes], np.float32)
            np.testing.assert_allclose(d[fields.InputDataFields.groundtruth_boxes].numpy(), want, atol=1e-6)
            assert d[fields.InputDataFields.groundtruth_classes].numpy().tolist() == [b.label for b in ann.boxes]
            seen += 1
    assert seen == 32


def test_read_examples_round_trips_pixels(sample_records, sample_dir):
    out, _ = sample_records
    truth = {a.image_id: a for a in load_dataset(sample_dir, progress=False)[0]}
    n = 0
    for image_bytes, ann in records.read_examples(out):
        t = truth[ann.image_id]
        assert image_bytes == t.image_path.read_bytes()
        assert [b.name for b in ann.boxes] == [b.name for b in t.boxes]
        np.testing.assert_allclose([b.as_tuple() for b in ann.boxes], [b.as_tuple() for b in t.boxes], atol=1e-3)
        n += 1
    assert n == 32


def test_split_keeps_cases_together_and_is_reproducible():
    ids = [f"{case}{cell}" for case in range(100000, 100060) for cell in range(1, 1 + case % 4)]
    a = records.split_by_case(ids, seed=3)
    assert a == records.split_by_case(list(reversed(ids)), seed=3)  # order of input does not matter
    assert a != records.split_by_case(ids, seed=4)
    by_case = {}
    for i, split in a.items():
        by_case.setdefault(i[:-1], set()).add(split)
    assert all(len(s) == 1 for s in by_case.values())
    counts = {s: sum(v == s for v in a.values()) for s in records.SPLITS}
    assert abs(counts["train"] / len(ids) - 0.8) < 0.05 and counts["val"] > 0 and counts["test"] > 0


def test_case_pattern():
    assert records.case_of("1055911") == "105591"
    assert records.case_of("cell_7") == "cell_7"
    assert records.case_of("p12_cell3", r"^(.+)_cell\d+$") == "p12"


def test_bad_fractions():
    with pytest.raises(RecordsError):
        records.split_by_case(["1", "2"], fractions=(0.5, 0.5))


def test_all_600_cil_cells(cil_dir, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["records", str(cil_dir), "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["images"]) == 600
    assert records.count_examples(p for s in records.SPLITS for p in records.split_files(out, s)) == 600
    cases = {}
    for image_id, info in manifest["images"].items():
        cases.setdefault(image_id[:-1], set()).add(info["split"])
    assert all(len(s) == 1 for s in cases.values()), "a case is split across splits"
    ids = [int(i) for i in re.findall(r"id: (\d+)", (out / "label_map.pbtxt").read_text())]
    assert ids == list(range(1, 25))


def _plant_bad(src, kind):
    xml = sorted((src / "annotations").glob("*.xml"))[1]
    text = xml.read_text()
    image = src / "images" / (xml.stem + ".jpg")
    if kind == "malformed_xml":
        xml.write_text(text[:200])
    elif kind == "missing_image":
        image.unlink()
    elif kind == "unreadable_image":
        image.write_bytes(b"\xff\xd8 truncated")
    elif kind == "size_mismatch":
        xml.write_text(re.sub(r"<width>\d+", "<width>77", text, count=1))
    elif kind == "unknown_class":
        xml.write_text(re.sub(r"<name>[^<]+</name>", "<name>chromosome 25</name>", text, count=1))
    elif kind == "outside":
        xml.write_text(re.sub(r"<xmax>\d+", "<xmax>99999", text, count=1))
    elif kind == "zero_area":
        m = re.search(r"<xmin>(\d+)</xmin>", text)
        xml.write_text(re.sub(r"<xmax>\d+", f"<xmax>{m.group(1)}", text, count=1))
    elif kind == "empty":
        xml.write_text(text[: text.index("<object>")] + "</annotation>\n")
    return xml


@pytest.mark.parametrize("kind", ["malformed_xml", "missing_image", "unreadable_image", "size_mismatch",
                                  "unknown_class", "outside", "zero_area", "empty"])
def test_strict_cli_fails_naming_the_file_and_writes_no_records(few_cells, tmp_path, capsys, kind):
    xml = _plant_bad(few_cells, kind)
    out = tmp_path / "out"
    assert main(["records", str(few_cells), "--out", str(out), "--strict"]) != 0
    err = capsys.readouterr().err
    assert xml.stem in err and "fix:" in err
    assert _record_files(tmp_path) == []
    # without --strict the good files go through
    assert main(["records", str(few_cells), "--out", str(out)]) == 0
    assert sum(len(records.split_files(out, s)) for s in records.SPLITS) >= 1
    stats = json.loads((out / "stats.json").read_text())
    assert stats["skipped"]["skipped"] == 1 and sum(s["images"] for s in stats["splits"].values()) == 3


def test_failure_while_writing_leaves_no_partial_shards_and_keeps_old_records(few_cells, tmp_path, monkeypatch):
    out = tmp_path / "out"
    records.build_records(few_cells, out, progress=False, fractions=(1, 0, 0))
    before = {p.name: p.read_bytes() for p in out.iterdir() if ".record-" in p.name}
    calls = {"n": 0}
    real = records.encode_example

    def flaky(ann, *a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C half way
        return real(ann, *a, **k)

    monkeypatch.setattr(records, "encode_example", flaky)
    with pytest.raises(KeyboardInterrupt):
        records.build_records(few_cells, out, progress=False, fractions=(0.5, 0.25, 0.25))
    after = {p.name: p.read_bytes() for p in out.iterdir() if ".record-" in p.name}
    assert after == before
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_rerun_with_other_shard_count_removes_stale_shards(few_cells, tmp_path):
    out = tmp_path / "out"
    records.build_records(few_cells, out, progress=False, fractions=(1, 0, 0), shards=2)
    assert len(records.split_files(out, "train")) == 2
    records.build_records(few_cells, out, progress=False, fractions=(1, 0, 0), shards=1)
    assert [p.name for p in records.split_files(out, "train")] == ["train.record-00000-of-00001"]


# ---------------------------------------------------------------- no silent wrong answers (issue 11)
def _retype(cell_dir, stem, suffix, save):
    """Replace a cell's JPEG by another file kind written by ``save(rgb, path)``; point its XML at it."""
    from PIL import Image

    jpg = cell_dir / "images" / f"{stem}.jpg"
    rgb = np.asarray(Image.open(jpg).convert("RGB"))
    jpg.unlink()
    save(rgb, cell_dir / "images" / f"{stem}{suffix}")
    xml = cell_dir / "annotations" / f"{stem}.xml"
    xml.write_text(re.sub(r"<filename>[^<]*</filename>", f"<filename>{stem}{suffix}</filename>", xml.read_text()))
    return rgb


def test_truncated_jpeg_is_refused_by_records_not_by_training(few_cells, tmp_path, capsys):
    jpg = sorted((few_cells / "images").glob("*.jpg"))[0]
    data = jpg.read_bytes()
    jpg.write_bytes(data[: len(data) * 2 // 3])
    result = records.build_records(few_cells, tmp_path / "r", progress=False)
    assert sum(result.counts.values()) == 3
    (err,) = result.summary.errors
    assert err.kind == "unreadable_image" and jpg.name in str(err) and "damaged" in str(err)
    assert main(["records", str(few_cells), "--out", str(tmp_path / "r2"), "--strict"]) == 2
    assert jpg.name in capsys.readouterr().err


def test_16_bit_cells_train_and_detect_on_the_same_pixels(few_cells, tmp_path):
    """A 16-bit PNG and TIFF: the OD API's training decoder and the Detector's loader see the same pixels (not a
    white image at detection time), and a JPEG cell too (same DCT)."""
    import cv2
    import tensorflow as tf
    from PIL import Image

    import karyotf.odapi  # noqa: F401
    from karyotf.detect import load_image
    from object_detection.core import standard_fields as fields
    from object_detection.data_decoders.tf_example_decoder import TfExampleDecoder

    stems = sorted(p.stem for p in (few_cells / "annotations").glob("*.xml"))
    noise = np.random.default_rng(0)

    def png16(rgb, path):
        grey = rgb[..., 0].astype(np.uint16) * 256 + noise.integers(0, 256, rgb.shape[:2]).astype(np.uint16)
        cv2.imwrite(str(path), grey)

    def tiff16(rgb, path):
        Image.fromarray(rgb[..., 1].astype(np.uint16) * 257).save(path)

    def bmp(rgb, path):
        Image.fromarray(rgb).save(path)

    expected = {stems[0]: _retype(few_cells, stems[0], ".png", png16)[..., 0],
                stems[1]: _retype(few_cells, stems[1], ".tif", tiff16)[..., 1],
                stems[2]: _retype(few_cells, stems[2], ".bmp", bmp)}
    out = tmp_path / "r"
    result = records.build_records(few_cells, out, fractions=(1, 0, 0), progress=False)
    assert sum(result.counts.values()) == 4 and not result.summary.errors
    decoder = TfExampleDecoder(label_map_proto_file=str(out / "label_map.pbtxt"))
    files = {p.stem: p for p in (few_cells / "images").iterdir()}
    seen = 0
    for shard in records.split_files(out, "train"):
        for raw in tf.data.TFRecordDataset(str(shard)):
            d = decoder.decode(raw)
            stem = d[fields.InputDataFields.source_id].numpy().decode()
            trained = d[fields.InputDataFields.image].numpy().astype(int)
            detected = load_image(files[stem]).astype(int)
            assert np.abs(trained - detected).max() <= 1, stem
            if stem in expected:
                want = expected[stem] if expected[stem].ndim == 3 else np.repeat(expected[stem][..., None], 3, -1)
                assert np.abs(detected - want).max() <= 1, stem
                assert detected.mean() < 250, stem
            seen += 1
    assert seen == 4


def test_augmented_copies_stay_with_their_cell_and_out_of_test(tmp_path, sample_dir):
    """The README's order (augment, then records): a cell and its copies share a split, and val/test hold no copy."""
    from karyotf.augment import augment_dataset

    aug = tmp_path / "aug"
    augment_dataset(sample_dir, aug, copies=1, ops="hflip", include_originals=True, grid=False, progress=False)
    out = tmp_path / "r"
    result = records.build_records(aug, out, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    imgs = manifest["images"]
    assert len(imgs) + len(manifest["left_out"]) == 64
    cell = {i: m.get("original", i) for i, m in imgs.items()}
    split_of_cell = {}
    for i, m in imgs.items():
        assert split_of_cell.setdefault(cell[i], m["split"]) == m["split"], i  # one split per cell
    assert all(m["split"] == "train" for m in imgs.values() if "original" in m)  # copies train only
    assert len(manifest["left_out"]) == result.counts["val"] + result.counts["test"]
    assert all(k.endswith("_aug0") for k in manifest["left_out"])
    plain = json.loads((records.build_records(sample_dir, tmp_path / "plain", progress=False).manifest).read_text())
    assert {i: m["split"] for i, m in plain["images"].items()} == {i: m["split"] for i, m in imgs.items()
                                                                    if "original" not in m}  # same test cells
    by_case = {}
    for m in imgs.values():
        by_case.setdefault(m["case"], set()).add(m["split"])
    assert all(len(s) == 1 for s in by_case.values())


def test_copies_without_originals_refuse_an_eval_split_of_copies(tmp_path, sample_dir):
    from karyotf.augment import augment_dataset

    aug = tmp_path / "aug"
    augment_dataset(sample_dir, aug, copies=1, ops="vflip", grid=False, progress=False)
    with pytest.raises(RecordsError, match="would hold only augmented copies.*--with-originals.*--augmented-in-eval"):
        records.build_records(aug, tmp_path / "r", progress=False)
    result = records.build_records(aug, tmp_path / "r", augmented_in_eval=True, progress=False)
    manifest = json.loads(result.manifest.read_text())
    split_of_case = {}
    for m in manifest["images"].values():
        assert split_of_case.setdefault(m["case"], m["split"]) == m["split"]
    assert result.counts["test"] > 0 and not manifest["left_out"]


def test_summary_names_images_without_xml_and_xml_without_images(few_cells, tmp_path):
    import shutil

    stray = few_cells / "images" / "9999991.jpg"
    shutil.copy(next((few_cells / "images").glob("*.jpg")), stray)
    lonely = sorted((few_cells / "images").glob("*.jpg"))[0]
    lonely.unlink()
    result = records.build_records(few_cells, tmp_path / "r", progress=False)
    text = result.text()
    assert "1 image(s) without an XML, not used: 9999991.jpg" in text
    assert f"1 XML file(s) without an image: {lonely.stem}.xml" in text
    stats = json.loads((tmp_path / "r" / "stats.json").read_text())
    assert stats["skipped"]["images_without_xml"] == ["9999991.jpg"]


def test_exif_rotated_annotation_names_exif_and_exif_transpose_reads_it(few_cells, tmp_path, capsys):
    from PIL import Image

    from karyotf.annotations import read_voc
    from karyotf.errors import AnnotationError
    from karyotf.images import EXIF_ORIENTATION_TAG, load

    xml = sorted((few_cells / "annotations").glob("*.xml"))[0]
    ann = read_voc(xml)
    jpg = ann.image_path
    shown = np.asarray(Image.open(jpg).convert("RGB"))
    exif = Image.Exif()
    exif[EXIF_ORIENTATION_TAG] = 8  # stored turned; a viewer turns it 90 degrees counter-clockwise back
    Image.fromarray(np.ascontiguousarray(np.rot90(shown, -1))).save(jpg, quality=95, exif=exif.tobytes())
    with pytest.raises(AnnotationError, match="EXIF orientation.*--exif-transpose") as info:
        read_voc(xml)
    assert info.value.kind == "size_mismatch"
    turned = read_voc(xml, exif_transpose=True)
    assert (turned.width, turned.height) == (ann.width, ann.height)
    out = tmp_path / "r"
    assert main(["records", str(few_cells), "--out", str(out), "--exif-transpose", "--split", "1,0,0"]) == 0
    capsys.readouterr()
    (stored, back) = next((b, a) for b, a in records.read_examples(out, "train") if a.filename == jpg.name)
    assert np.abs(load(stored).astype(int) - load(jpg, exif_transpose=True).astype(int)).max() <= 1
    assert np.abs(load(stored).astype(int) - shown.astype(int)).mean() < 3  # the annotated view


def test_all_images_damaged_leaves_the_previous_records(few_cells, tmp_path):
    out = tmp_path / "r"
    records.build_records(few_cells, out, progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir() if ".record-" in p.name}
    for jpg in (few_cells / "images").glob("*.jpg"):
        jpg.write_bytes(jpg.read_bytes()[:500])
    with pytest.raises(RecordsError, match="no readable image"):
        records.build_records(few_cells, out, progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir() if ".record-" in p.name} == before
