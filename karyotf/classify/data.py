"""Per-cell classifier data from the records: the same case-grouped split as ``karyotf records`` (its manifest).

:class:`CellSet` holds every chromosome of a split in flat arrays with per-cell offsets, so a batch is a few
whole cells (the cell-context layer needs all chromosomes of a cell together).  Arrays are cached beside the
run (``.npz``, keyed by the records' manifest and shard sizes), so a resumed or repeated run does not decode
the images again.
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from tqdm import tqdm

from .. import classes, images
from ..annotations import Annotation
from ..defaults import CLASSIFIER_INPUTS
from ..errors import ClassifierError
from ..io import atomic_path
from ..records import read_examples, split_files
from .crops import FEATURES, SIZE, cell_crops

CACHE_VERSION = 1
INPUTS = CLASSIFIER_INPUTS
"""What the classifier is trained on (and evaluated with) for each truth box: ``box``, the plain box crop, or
``separated``, the same box window with every pixel outside the chromosome's mask from the separation model
(:mod:`karyotf.separate`) white, what :class:`karyotf.classify.karyotyper.Karyotyper` reads by default
(:data:`karyotf.defaults.CLASSIFIER_INPUT`)."""


@dataclass
class CellSet:
    """Chromosomes of several cells: ``crops`` (M, S, S) uint8, ``features`` (M, F), ``labels`` (M,) int32
    (index into ``classes.NAMES``, -1 unknown), ``offsets`` (C + 1,): cell ``i`` is ``offsets[i]:offsets[i+1]``."""

    crops: np.ndarray
    features: np.ndarray
    labels: np.ndarray
    offsets: np.ndarray
    cell_ids: list[str]

    @property
    def cells(self) -> int:
        return len(self.cell_ids)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def cell(self, i: int) -> slice:
        return slice(int(self.offsets[i]), int(self.offsets[i + 1]))

    def save(self, path: Path) -> Path:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, crops=self.crops, features=self.features, labels=self.labels, offsets=self.offsets,
                         cell_ids=np.array(self.cell_ids))
        return path

    @classmethod
    def load(cls, path: Path) -> "CellSet":
        with np.load(path) as z:
            return cls(z["crops"], z["features"], z["labels"], z["offsets"], [str(s) for s in z["cell_ids"]])


def check_input(input: str) -> str:
    if input not in INPUTS:
        raise ClassifierError(f"classifier input {input!r}: one of {', '.join(INPUTS)}")
    return input


def from_cells(cells: Sequence[tuple[np.ndarray, Annotation]], size: int = SIZE, progress: bool = False,
               desc: str = "crops", input: str = "box", separator=None) -> CellSet:
    """A :class:`CellSet` from ``(RGB image, annotation)`` pairs (truth boxes give the labels); ``input``: one of
    :data:`INPUTS` (``separated``: ``separator``, an export dir or a loaded one, default the shipped model)."""
    check_input(input)
    if input == "separated":   # the separation model runs in this thread, one cell at a time (it uses every core)
        from ..separate.separator import cutouts

        it = tqdm(cells, desc=desc, unit="cell", leave=False) if progress else cells
        results = [(cell_crops(image, ann.boxes, size, cutouts=cutouts(image, ann.boxes, separator)
                               if ann.boxes else None),
                    [classes.NAMES.index(b.name) for b in ann.boxes]) for image, ann in it]
    else:
        def one(item):
            image, ann = item
            return cell_crops(image, ann.boxes, size), [classes.NAMES.index(b.name) for b in ann.boxes]

        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            results = pool.map(one, cells)
            if progress:
                results = tqdm(results, total=len(cells), desc=desc, unit="cell", leave=False)
            results = list(results)
    crops = [r[0].crops for r in results]
    feats = [r[0].features for r in results]
    labels = [np.array(r[1], np.int32) for r in results]
    sizes = [len(x) for x in labels]
    return CellSet(crops=np.concatenate(crops) if crops else np.zeros((0, size, size), np.uint8),
                   features=np.concatenate(feats) if feats else np.zeros((0, len(FEATURES)), np.float32),
                   labels=np.concatenate(labels) if labels else np.zeros((0,), np.int32),
                   offsets=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                   cell_ids=[ann.image_id for _, ann in cells])


def _records_key(records_dir: Path, split: str, size: int) -> str:
    files = split_files(records_dir, split)
    manifest = records_dir / "manifest.json"
    h = hashlib.sha256(json.dumps({"v": CACHE_VERSION, "size": size, "features": FEATURES, "split": split,
                                   "files": [(p.name, p.stat().st_size) for p in files]}).encode())
    if manifest.is_file():
        h.update(manifest.read_bytes())
    return h.hexdigest()[:16]


def from_records(records_dir: str | Path, split: str, size: int = SIZE, cache_dir: str | Path | None = None,
                 progress: bool = True, limit: int | None = None, input: str = "box") -> CellSet:
    """Every cell of one split of a records dir (its truth boxes and classes), cropped as ``input`` says
    (:data:`INPUTS`); cached in ``cache_dir``."""
    check_input(input)
    records_dir = Path(records_dir)
    if not records_dir.is_dir():
        raise ClassifierError(f"records folder {records_dir} does not exist (fix: build it with `karyotf records "
                              f"SRC --out {records_dir}`)")
    if not split_files(records_dir, split):
        raise ClassifierError(f"{records_dir}: no {split}.record-* shards (fix: rebuild the records with a "
                              f"{split} fraction above 0, e.g. --split 0.8,0.1,0.1)")
    cache = None
    if cache_dir is not None and limit is None:
        tag = "" if input == "box" else f"{input}-"   # box crops keep the cache name they always had
        cache = Path(cache_dir) / f"cells-{tag}{split}-{size}-{_records_key(records_dir, split, size)}.npz"
        if cache.is_file():
            return CellSet.load(cache)
    cells = []
    for k, (data, ann) in enumerate(read_examples(records_dir, split)):
        if limit is not None and k >= limit:
            break
        cells.append((images.load(data), ann))
    out = from_cells(cells, size, progress=progress, desc=f"{input} crops {split}", input=input)
    if cache is not None:
        out.save(cache)
    return out


def pad_cells(cs: CellSet, idx: Sequence[int]) -> dict[str, np.ndarray]:
    """Cells ``idx`` as one padded batch: crops (B, N, S, S), features (B, N, F), mask (B, N), labels (B, N)."""
    n = max([int(cs.offsets[i + 1] - cs.offsets[i]) for i in idx] + [1])
    b, s, f = len(idx), cs.crops.shape[1], cs.features.shape[1]
    out = {"crops": np.full((b, n, s, s), 255, np.uint8), "features": np.zeros((b, n, f), np.float32),
           "mask": np.zeros((b, n), bool), "labels": np.full((b, n), -1, np.int32)}
    for j, i in enumerate(idx):
        sl = cs.cell(i)
        m = sl.stop - sl.start
        out["crops"][j, :m] = cs.crops[sl]
        out["features"][j, :m] = cs.features[sl]
        out["mask"][j, :m] = True
        out["labels"][j, :m] = cs.labels[sl]
    return out


def batches(cs: CellSet, cells_per_batch: int, rng: np.random.Generator | None = None) -> Iterator[dict]:
    """Padded batches of whole cells, shuffled by ``rng`` (in order when None)."""
    order = np.arange(cs.cells)
    if rng is not None:
        rng.shuffle(order)
    for k in range(0, len(order), cells_per_batch):
        yield pad_cells(cs, order[k:k + cells_per_batch])
