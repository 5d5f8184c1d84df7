"""VOC -> TFRecord images per second: karyotf.records against the OD API's own create_pascal_tf_record logic.

Three rows: karyotf (which decodes every image completely to refuse damaged files, in parallel on all cores),
the OD API converter as it is (it reads image bytes and checks only the JPEG header), and the OD API converter
plus a full decode of each image: the same work as karyotf's validation, the fair comparison.

    .venv/bin/python bench/records_speed.py [SRC] [--repeats 3]

SRC defaults to ../shared/data/cil54816 (600 cells).  Both writers run in one process on the same files,
alternating, ``--repeats`` times each; the median is reported.  karyotf's time includes what the OD API script
does not do: validating every XML against its image (size, boxes, classes), the case-grouped split, sharding,
atomic moves, the manifest, stats JSON and the PNG chart.  The OD API side is ``dict_to_tf_example`` from
``object_detection/dataset_tools/create_pascal_tf_record.py`` (XML parse, image read, JPEG check, example
build) written to a single TFRecord, as that script does.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def odapi_run(src: Path, out: Path) -> int:
    import karyotf.odapi  # noqa: F401
    import tensorflow as tf
    from lxml import etree
    from object_detection.dataset_tools import create_pascal_tf_record as cptr
    from object_detection.utils import dataset_util

    from karyotf import classes

    # create_pascal_tf_record reads <dataset_dir>/<folder>/<image_subdirectory>/<filename>
    root = out / "voc"
    n = 0
    with tf.io.TFRecordWriter(str(out / "odapi.record")) as writer:
        for xml in sorted((src / "annotations").glob("*.xml")):
            data = dataset_util.recursive_parse_xml_to_dict(etree.fromstring(xml.read_bytes()))["annotation"]
            folder = root / data["folder"]
            if not folder.exists():
                folder.mkdir(parents=True)
                (folder / "images").symlink_to((src / "images").resolve())
            label_map = {o["name"]: classes.label_id(o["name"]) for o in data.get("object", [])}
            example = cptr.dict_to_tf_example(data, str(root), label_map, image_subdirectory="images")
            writer.write(example.SerializeToString())
            n += 1
    return n


def odapi_decode_run(src: Path, out: Path) -> int:
    """The OD API converter, then a full decode of each image (Pillow): the converter with a check as strict as
    karyotf's (karyotf reads a JPEG's coded data to its end at 1/8 scale: the same errors, without the full IDCT)."""
    from PIL import Image

    n = odapi_run(src, out)
    for path in sorted((src / "images").iterdir()):
        with Image.open(path) as im:
            im.load()
    return n


def karyotf_run(src: Path, out: Path) -> int:
    from karyotf.records import build_records

    result = build_records(src, out / "records", progress=False)
    return sum(result.counts.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", nargs="?", type=Path, default=REPO.parent / "shared" / "data" / "cil54816")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "records_speed.md")
    args = parser.parse_args()
    import karyotf.odapi  # noqa: F401  (warm imports so neither side pays them)
    import tensorflow as tf  # noqa: F401

    times: dict[str, list[float]] = {"karyotf": [], "odapi": [], "odapi_decode": []}
    counts = {}
    for _ in range(args.repeats):
        for name, fn in (("karyotf", karyotf_run), ("odapi", odapi_run), ("odapi_decode", odapi_decode_run)):
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                counts[name] = fn(args.src, Path(tmp))
                times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    rate = {k: counts[k] / med[k] for k in med}
    lines = [
        "# VOC -> TFRecord speed", "",
        f"Source: `{args.src.name}` ({counts['karyotf']} images), {args.repeats} runs each, median; "
        f"{os.cpu_count()} cores. Produced by `bench/records_speed.py`.", "",
        "| writer | images | median s | images/s |", "|---|---|---|---|",
        f"| karyotf `build_records` (every image decoded to its end, a JPEG's coded data at 1/8 scale; validate, "
        f"split, shard, manifest, stats, chart) | "
        f"{counts['karyotf']} | {med['karyotf']:.2f} | {rate['karyotf']:.0f} |",
        f"| OD API `create_pascal_tf_record.dict_to_tf_example` (one file, JPEG header check only) | "
        f"{counts['odapi']} | {med['odapi']:.2f} | {rate['odapi']:.0f} |",
        f"| OD API converter + a full decode of each image (an equally strict check) | {counts['odapi_decode']} | "
        f"{med['odapi_decode']:.2f} | {rate['odapi_decode']:.0f} |", "",
        f"Ratio karyotf / OD API + full decode (equally strict): **{rate['karyotf'] / rate['odapi_decode']:.2f}**; "
        f"karyotf / OD API converter alone: {rate['karyotf'] / rate['odapi']:.2f}", "",
    ]
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
