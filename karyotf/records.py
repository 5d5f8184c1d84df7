"""TFRecords in the OD API's tf.train.Example format: encode, decode, split by case, write sharded and atomic.

``build_records(src, out)`` reads a VOC dataset (validated by :mod:`karyotf.annotations`), splits it into
train / val / test by *case* (all cells of one patient in one split, reproducible by seed), and writes::

    out/train.record-00000-of-00002   out/val.record-00000-of-00001   out/test.record-00000-of-00001
    out/label_map.pbtxt               24 items, ids 1..24 (karyotf.classes)
    out/manifest.json                 image -> split, case, shard; the settings that made the split
    out/stats.json                    class counts per split, chromosomes per image, what was skipped
    out/class_distribution.png        the same as bar charts

Every example carries the keys the OD API's ``TfExampleDecoder`` reads: encoded image, format, height, width,
filename, source_id, sha256 key, normalised boxes, class text and label, difficult, truncated, view.

Atomic: shards are written into a temporary folder inside ``out`` and moved into place only when every shard
is complete; a failed or interrupted run leaves no record file behind (and the previous records untouched).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import shutil
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
from tqdm import tqdm

from . import classes, defaults, images
from .annotations import Annotation, Box, LoadSummary, check_image_of, duplicate_lines, load_dataset
from .boxcheck import check_file
from .errors import AnnotationError, RecordsError
from .io import atomic_path, atomic_write_json
from .paths import SAMPLE_DIR

# Imports inside functions, and why: TensorFlow / KerasCV / the OD API (heavy: kept off the import path); matplotlib
# (heavy: loaded when an image is decoded or drawn).

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = defaults.SPLIT_FRACTIONS
DEFAULT_SEED = defaults.SPLIT_SEED
DEFAULT_CASE_PATTERN = defaults.CASE_PATTERN
"""Case id from the image stem: the first group of this regex, else the whole stem.

The default fits CIL:54816 names (all digits; the case is the name without its last digit, ``1055911`` ->
``105591``); any other name is its own case.  Use e.g. ``^(.+)_cell\\d+$`` for ``patient7_cell3.jpg``."""
IMAGES_PER_SHARD = defaults.IMAGES_PER_SHARD
_SHARD_RE = re.compile(r"^(?P<split>[a-z]+)\.record-(?P<i>\d{5})-of-(?P<n>\d{5})$")


# ----------------------------------------------------------------------------------------------- split


def case_of(image_id: str, pattern: str = DEFAULT_CASE_PATTERN) -> str:
    """The case (patient) an image belongs to, by ``pattern``'s first group; the stem itself if it does not match."""
    m = re.match(pattern, image_id)
    return m.group(1) if m and m.groups() else image_id


def split_by_case(image_ids: Sequence[str], fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = DEFAULT_SEED,
                  case_pattern: str = DEFAULT_CASE_PATTERN) -> dict[str, str]:
    """Assign each image to a split so that all images of a case share one split.

    Cases are shuffled by ``seed`` (after sorting, so the input order does not matter) and each goes to the split
    whose image count lags its target (``fraction * n``) the most.  Same ids, fractions and seed: same split.
    """
    if len(fractions) != len(SPLITS) or any(f < 0 for f in fractions) or sum(fractions) <= 0:
        raise RecordsError(f"split fractions {tuple(fractions)} must be three non-negative numbers "
                           f"(train, val, test), e.g. 0.8,0.1,0.1")
    total = float(sum(fractions))
    fractions = [f / total for f in fractions]
    by_case: dict[str, list[str]] = {}
    for image_id in sorted(set(image_ids)):
        by_case.setdefault(case_of(image_id, case_pattern), []).append(image_id)
    cases = sorted(by_case)
    random.Random(seed).shuffle(cases)
    n = sum(len(v) for v in by_case.values())
    targets = [f * n for f in fractions]
    counts = [0] * len(SPLITS)
    assignment: dict[str, str] = {}
    for case in cases:
        size = len(by_case[case])
        # the split that is furthest below its target (relative), among those that want images at all
        deficits = [(targets[i] - counts[i]) / targets[i] if targets[i] > 0 else float("-inf")
                     for i in range(len(SPLITS))]
        best = max(range(len(SPLITS)), key=lambda i: (deficits[i], -i))
        counts[best] += size
        for image_id in by_case[case]:
            assignment[image_id] = SPLITS[best]
    return assignment


# ----------------------------------------------------------------------------------------------- encode


def encode_example(ann: Annotation, image_bytes: bytes | None = None, image_format: str | None = None):
    """A ``tf.train.Example`` in the OD API's layout for one annotated image (boxes normalised to [0, 1])."""
    import tensorflow as tf

    if image_bytes is None:
        image_bytes, image_format = images.record_bytes(ann.image_path, ann.exif_transpose, info=ann.image_info)
    w, h = float(ann.width), float(ann.height)

    def b(values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))

    def f(values):
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))

    def i(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    boxes = ann.boxes
    feature = {
        "image/height": i([int(ann.height)]),
        "image/width": i([int(ann.width)]),
        "image/filename": b([ann.filename.encode()]),
        "image/source_id": b([ann.image_id.encode()]),
        "image/key/sha256": b([hashlib.sha256(image_bytes).hexdigest().encode()]),
        "image/encoded": b([image_bytes]),
        "image/format": b([(image_format or "jpeg").encode()]),
        "image/object/bbox/xmin": f([bx.xmin / w for bx in boxes]),
        "image/object/bbox/xmax": f([bx.xmax / w for bx in boxes]),
        "image/object/bbox/ymin": f([bx.ymin / h for bx in boxes]),
        "image/object/bbox/ymax": f([bx.ymax / h for bx in boxes]),
        "image/object/class/text": b([bx.name.encode() for bx in boxes]),
        "image/object/class/label": i([bx.label for bx in boxes]),
        "image/object/difficult": i([int(bx.difficult) for bx in boxes]),
        "image/object/truncated": i([int(bx.truncated) for bx in boxes]),
        "image/object/view": b([b"Unspecified" for _ in boxes]),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature))


def decode_example(serialized: bytes) -> tuple[bytes, Annotation]:
    """The image bytes and the :class:`Annotation` (pixel boxes) of one serialized example.

    ``Annotation.image_path`` is ``Path(filename)``: the image is in the record, not on disk.
    """
    import tensorflow as tf

    ex = tf.train.Example.FromString(serialized)
    feat = ex.features.feature

    def one(key, kind="bytes_list"):
        return getattr(feat[key], kind).value[0]

    def many(key, kind):
        return list(getattr(feat[key], kind).value) if key in feat else []

    width, height = int(one("image/width", "int64_list")), int(one("image/height", "int64_list"))
    xmin, xmax = many("image/object/bbox/xmin", "float_list"), many("image/object/bbox/xmax", "float_list")
    ymin, ymax = many("image/object/bbox/ymin", "float_list"), many("image/object/bbox/ymax", "float_list")
    labels = many("image/object/class/label", "int64_list")
    difficult = many("image/object/difficult", "int64_list") or [0] * len(labels)
    truncated = many("image/object/truncated", "int64_list") or [0] * len(labels)
    boxes = [Box(x0 * width, y0 * height, x1 * width, y1 * height, classes.NAME_OF[int(lab)],
                 difficult=bool(d), truncated=bool(t))
             for x0, y0, x1, y1, lab, d, t in zip(xmin, ymin, xmax, ymax, labels, difficult, truncated)]
    filename = one("image/filename").decode()
    return one("image/encoded"), Annotation(image_path=Path(filename), width=width, height=height, boxes=boxes)


# ----------------------------------------------------------------------------------------------- files


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}.record-{index:05d}-of-{count:05d}"


def split_files(records_dir: str | Path, split: str) -> list[Path]:
    """The shard files of one split, in order."""
    records_dir = Path(records_dir)
    files = sorted(p for p in records_dir.glob(f"{split}.record-*") if _SHARD_RE.match(p.name))
    return files


def split_pattern(records_dir: str | Path, split: str) -> str:
    """A glob of one split's shards, as the OD API's ``tf_record_input_reader.input_path`` accepts."""
    files = split_files(records_dir, split)
    if not files:
        raise RecordsError(f"{records_dir}: no {split}.record-* shards; run `karyotf records SRC --out {records_dir}`")
    count = _SHARD_RE.match(files[0].name).group("n")
    return str(Path(records_dir).resolve() / f"{split}.record-?????-of-{count}")


def read_examples(source: str | Path | Iterable[str | Path], split: str | None = None) -> Iterator[tuple[bytes, Annotation]]:
    """Iterate ``(image_bytes, Annotation)`` over a records dir (one split, or all) or over given shard files."""
    import tensorflow as tf

    if isinstance(source, (str, Path)) and Path(source).is_dir():
        splits = [split] if split else list(SPLITS)
        files = [f for s in splits for f in split_files(source, s)]
        if not files:
            raise RecordsError(f"{source}: no record shards for split(s) {', '.join(splits)}")
    elif isinstance(source, (str, Path)):
        if not Path(source).is_file():
            raise RecordsError(f"{source}: no such records folder or shard file (fix: build it with "
                               f"`karyotf records SRC --out {source}`, or give the records dir)")
        files = [Path(source)]
    else:
        files = [Path(p) for p in source]
    for path in files:
        for raw in tf.data.TFRecordDataset(str(path)):
            yield decode_example(raw.numpy())


def count_examples(files: Iterable[str | Path]) -> int:
    import tensorflow as tf

    return sum(1 for p in files for _ in tf.data.TFRecordDataset(str(p)))


# ----------------------------------------------------------------------------------------------- build


@dataclass
class RecordsResult:
    """What :func:`build_records` wrote."""

    out_dir: Path
    files: dict[str, list[Path]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    label_map: Path | None = None
    manifest: Path | None = None
    stats: Path | None = None
    chart: Path | None = None
    summary: LoadSummary | None = None
    seconds: float = 0.0
    left_out: dict[str, str] = field(default_factory=dict)
    """Images read but not written, with the reason (augmented copies of val/test cells)."""
    notes: list[str] = field(default_factory=list)
    """What the user should know about the splits (an empty val or test split, and why)."""

    def text(self) -> str:
        lines = [self.summary.text()] if self.summary else []
        if self.left_out:
            lines.append(f"  {len(self.left_out)} augmented copy(ies) of val/test cells left out: val/test hold "
                         "originals only (listed in manifest.json; --augmented-in-eval keeps them)")
        for split in SPLITS:
            n = self.counts.get(split, 0)
            lines.append(f"{split:5s}: {n:4d} images in {len(self.files.get(split, []))} shard(s)")
        lines.extend(f"note: {n}" for n in self.notes)
        lines.append(f"wrote {self.out_dir}/ (label_map.pbtxt, manifest.json, stats.json, class_distribution.png) "
                     f"in {self.seconds:.1f} s")
        return "\n".join(lines)


def _stats(annotations: list[Annotation], assignment: dict[str, str], summary: LoadSummary,
           cases: dict[str, str]) -> dict:
    out: dict = {"splits": {}, "skipped": summary.to_dict()}
    for split in SPLITS:
        anns = [a for a in annotations if assignment[a.image_id] == split]
        counts = Counter(b.name for a in anns for b in a.boxes)
        per_image = Counter(len(a.boxes) for a in anns)
        out["splits"][split] = {
            "images": len(anns),
            "cases": len({cases[a.image_id] for a in anns}),
            "chromosomes": sum(counts.values()),
            "class_counts": {name: counts.get(name, 0) for name in classes.NAMES},
            "chromosomes_per_image": {str(k): per_image[k] for k in sorted(per_image)},
            "images_with_46": per_image.get(46, 0),
        }
    return out


def plot_stats(stats: dict, path: str | Path) -> Path:
    """Bar charts: chromosomes per class and split; chromosomes per image.

    Drawn on a bare ``Figure`` (no pyplot state), so it can run in a background thread."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 7.5))
    ax1, ax2 = fig.subplots(2, 1, gridspec_kw={"height_ratios": [3, 2]})
    x = np.arange(len(classes.NAMES))
    width = 0.27
    colors = {"train": "#3b6ea8", "val": "#e39b2d", "test": "#4c9a4c"}
    for k, split in enumerate(SPLITS):
        s = stats["splits"][split]
        ax1.bar(x + (k - 1) * width, [s["class_counts"][n] for n in classes.NAMES], width,
                label=f"{split} ({s['images']} images, {s['cases']} cases)", color=colors[split])
    ax1.set_xticks(x, classes.NAMES)
    ax1.set_xlabel("chromosome class")
    ax1.set_ylabel("chromosomes")
    ax1.set_title("Class distribution per split")
    ax1.set_ylim(0, ax1.get_ylim()[1] * 1.18)
    ax1.legend(loc="upper center", ncol=3, frameon=False)
    all_counts = sorted({int(k) for split in SPLITS for k in stats["splits"][split]["chromosomes_per_image"]})
    if all_counts:
        xs = np.arange(len(all_counts))
        for k, split in enumerate(SPLITS):
            per = stats["splits"][split]["chromosomes_per_image"]
            ax2.bar(xs + (k - 1) * width, [per.get(str(c), 0) for c in all_counts], width, color=colors[split])
        ax2.set_xticks(xs, [str(c) for c in all_counts])
    ax2.set_xlabel("chromosomes labelled in the image (a normal cell has 46)")
    ax2.set_ylabel("images")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    return Path(path)


TMP_PREFIX = ".records-tmp-"
STALE_TMP_HOURS = 2.0
"""A ``.records-tmp-*`` folder (a killed run's shards) whose newest file is older than this is removed by the next
run into the same folder; a younger one may belong to a run still writing, and is left alone."""


def clean_stale_tmp(out_dir: str | Path, max_age_hours: float = STALE_TMP_HOURS) -> list[Path]:
    """Remove the ``.records-tmp-*`` folders a killed ``records`` run left in ``out_dir`` (only karyotf's own, by
    name, and only when nothing in them changed for ``max_age_hours``); returns what was removed."""
    removed = []
    now = time.time()
    for d in sorted(Path(out_dir).glob(TMP_PREFIX + "*")):
        if not d.is_dir() or d.is_symlink():
            continue
        try:
            newest = max([d.stat().st_mtime, *(f.stat().st_mtime for f in d.iterdir())])
        except OSError:
            continue
        if now - newest >= max_age_hours * 3600:
            shutil.rmtree(d, ignore_errors=True)
            log.info("removed %s, left by a killed records run", d)
            removed.append(d)
    return removed


def build_records(src: str | Path | None = None, out_dir: str | Path = "records", *, seed: int = DEFAULT_SEED,
                  fractions: Sequence[float] = DEFAULT_FRACTIONS, case_pattern: str = DEFAULT_CASE_PATTERN,
                  shards: int | None = None, strict: bool = False, progress: bool = True,
                  annotations: list[Annotation] | None = None, augmented_in_eval: bool = False,
                  exif_transpose: bool = False) -> RecordsResult:
    """Validate a VOC dataset and write sharded TFRecords, label map, manifest and stats (see the module doc).

    ``src`` defaults to the built-in sample.  ``shards``: shards per split (default: one per
    ``IMAGES_PER_SHARD`` images).  ``strict``: stop at the first bad file instead of skipping it.
    ``annotations``: already-loaded annotations to write instead of reading ``src``.

    Augmented copies (``karyotf augment`` records each copy's original in its XML) take their original's case, so
    a cell and all its copies land in one split.  Val and test hold originals only: copies of val/test cells are
    left out and listed (``augmented_in_eval=True`` keeps them).  ``exif_transpose``: read images in their EXIF
    orientation (the boxes were drawn on that view); the records then hold the turned pixels.
    """

    t0 = time.time()
    if annotations is None:
        if src is None:
            src = SAMPLE_DIR
        # the XML now; each image is decoded completely below, on all cores, while the records are written
        annotations, summary = load_dataset(src, strict=strict, progress=progress, exif_transpose=exif_transpose,
                                            check_images=False)
    else:
        summary = LoadSummary(used=len(annotations), boxes=sum(len(a.boxes) for a in annotations))
        summary.duplicate_boxes = [line for a in annotations for line in duplicate_lines(a)]
    if not annotations:
        raise RecordsError(f"{src}: no usable annotated image (all {summary.skipped} skipped); fix the errors above")
    ids = [a.image_id for a in annotations]
    dupes = [k for k, v in Counter(ids).items() if v > 1]
    if dupes:
        same = [f"{a.image_path.name} ({a.xml_path.name if a.xml_path else 'no XML'})" for a in annotations
                if a.image_id == dupes[0]]
        raise RecordsError(f"{src}: image names must be unique; {len(dupes)} repeat (e.g. {dupes[0]}: "
                           f"{', '.join(same)}); rename them")
    # split the cells (an augmented copy is its original's cell), so the originals split the same with or
    # without copies beside them, and a cell and its copies share a split
    cell_of = {a.image_id: a.cell_id for a in annotations}
    cases = {i: case_of(cell_of[i], case_pattern) for i in ids}
    cell_split = split_by_case(sorted(set(cell_of.values())), fractions, seed, case_pattern)
    assignment = {i: cell_split[cell_of[i]] for i in ids}
    left_out: dict[str, str] = {}
    if not augmented_in_eval:
        for a in annotations:
            if a.original and assignment[a.image_id] != "train":
                left_out[a.image_id] = (f"augmented copy of {a.original}, a {assignment[a.image_id]} cell: "
                                        "val/test hold originals only")
        for split, f in zip(SPLITS, fractions):
            had = [i for i in ids if assignment[i] == split]
            if split != "train" and f > 0 and had and all(i in left_out for i in had):
                raise RecordsError(
                    f"{src}: the {split} split would hold only augmented copies (their originals are not in the "
                    "dataset), and val/test hold originals only (fix: augment with --with-originals so the "
                    "originals come along, build the records from the originals and augment in training "
                    "(karyotf config --augment), or pass --augmented-in-eval to evaluate on copies)")
        annotations = [a for a in annotations if a.image_id not in left_out]
        if left_out:
            log.warning("%d augmented copies of val/test cells left out (val/test hold originals only)",
                        len(left_out))

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    order = sorted(annotations, key=lambda a: a.image_id)
    random.Random(seed + 1).shuffle(order)  # shuffled within each split, reproducibly
    per_split = {s: [a for a in order if assignment[a.image_id] == s] for s in SPLITS}

    result = RecordsResult(out_dir=out_dir, summary=summary, left_out=left_out)
    shard_of: dict[str, str] = {}
    pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1)
    failed: set[str] = set()

    def prepare(ann: Annotation):
        """(checked annotation, image bytes, format), or the AnnotationError of a damaged image; runs in the pool
        (the decode is Pillow's, with the GIL released; the example is built in the writing thread)."""
        try:
            if ann.image_info is None:
                ann = check_image_of(ann)  # the full decode: a damaged file is refused here, not in training
            data = images.record_bytes(ann.image_path, ann.exif_transpose, info=ann.image_info)
        except AnnotationError as exc:
            return exc
        try:  # a training box on bare background is a labelling error: listed (a failed check stops nothing)
            empty = check_file(ann.image_path, ann.boxes, ann.width, ann.exif_transpose).empty
        except Exception as exc:  # noqa: BLE001 - the image decoded above; this is a check, never a stop
            log.warning("%s: box check failed (%s)", ann.image_path, exc)
            empty = []
        return (ann, *data, empty)

    clean_stale_tmp(out_dir)
    tmp_dir = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=out_dir))
    try:
        import tensorflow as tf

        bar = None
        if progress:
            bar = tqdm(total=len(order), desc="writing records", unit="image", leave=False)
        for split, anns in per_split.items():
            if not anns:
                continue
            n_shards = shards or max(1, -(-len(anns) // IMAGES_PER_SHARD))
            n_shards = min(n_shards, len(anns))
            names = [shard_name(split, k, n_shards) for k in range(n_shards)]
            writers = [tf.io.TFRecordWriter(str(tmp_dir / name)) for name in names]
            try:
                # images decoded completely (and re-encoded as PNG where needed) on all cores, while this thread
                # builds and writes the examples in order
                for k, got in enumerate(pool.map(prepare, anns)):
                    if bar:
                        bar.update()
                    if isinstance(got, AnnotationError):
                        if strict:
                            raise got
                        log.warning("skipped: %s", got)
                        summary.errors.append(got)
                        summary.skipped, summary.used = summary.skipped + 1, summary.used - 1
                        summary.boxes -= len(anns[k].boxes)
                        failed.add(anns[k].image_id)
                        continue
                    ann, data, fmt, empty = got
                    xml_name = ann.xml_path.name if ann.xml_path else ann.filename
                    summary.empty_boxes.extend(f"{xml_name}: object #{i} ({ann.boxes[i].name})" for i in empty)
                    example = encode_example(ann, data, fmt).SerializeToString()
                    if ann.image_info.exif_orientation != 1 and not ann.exif_transpose:
                        summary.exif_as_stored.append(ann.image_path.name)
                    shard = k * n_shards // len(anns)  # contiguous, near-equal shards
                    writers[shard].write(example)
                    shard_of[ann.image_id] = names[shard]
            finally:
                for w in writers:
                    w.close()
            result.files[split] = [out_dir / name for name in names]
            result.counts[split] = sum(a.image_id not in failed for a in anns)
        if bar:
            bar.close()
        if len(failed) == len(order):  # before anything is moved in: the previous records stay as they were
            raise RecordsError(f"{src}: no readable image (all {summary.skipped} skipped); fix the errors above")
        # every shard is complete: move them in, then drop shards of earlier runs that this run did not write
        new = {p.name for files in result.files.values() for p in files}
        for name in sorted(new):
            (tmp_dir / name).replace(out_dir / name)
        for split in SPLITS:
            for old in split_files(out_dir, split):
                if old.name not in new:
                    old.unlink()
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        pool.shutdown(wait=True, cancel_futures=True)
    annotations = [a for a in annotations if a.image_id not in failed]
    summary.exif_as_stored.sort()
    summary.empty_boxes.sort()
    n_cases = len(set(cases.values()))
    for split, f in zip(SPLITS, fractions):
        if split != "train" and f > 0 and not result.counts.get(split):
            why = (f"{len(set(cell_of.values()))} cell(s) in {n_cases} case(s) are too few to give it a case at "
                   f"--split {','.join(f'{x:g}' for x in fractions)}")
            result.notes.append(f"no {split} images: {why}; `karyotf eval` / `classifier eval` on {split} and the "
                                "best-checkpoint choice need them (fix: add cells or cases, or change --split)")

    result.label_map = classes.write_label_map(out_dir / "label_map.pbtxt")
    manifest = {
        "source": str(src) if src is not None else None,
        "seed": seed,
        "fractions": dict(zip(SPLITS, fractions)),
        "case_pattern": case_pattern,
        "counts": result.counts,
        "augmented_in_eval": augmented_in_eval,
        "exif_transpose": exif_transpose,
        "images": {a.image_id: {"split": assignment[a.image_id], "case": cases[a.image_id],
                                "file": a.filename, "shard": shard_of[a.image_id], "chromosomes": len(a.boxes),
                                **({"original": a.original} if a.original else {})}
                   for a in sorted(annotations, key=lambda a: a.image_id)},
        "left_out": left_out,
    }
    result.manifest = atomic_write_json(out_dir / "manifest.json", manifest)
    stats = _stats(annotations, assignment, summary, cases)
    result.stats = atomic_write_json(out_dir / "stats.json", stats)
    result.chart = plot_stats(stats, out_dir / "class_distribution.png")
    result.seconds = time.time() - t0
    return result


def load_manifest(records_dir: str | Path) -> dict:
    path = Path(records_dir) / "manifest.json"
    if not path.is_file():
        raise RecordsError(f"{path} not found; run `karyotf records SRC --out {records_dir}` first")
    return json.loads(path.read_text())
