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
