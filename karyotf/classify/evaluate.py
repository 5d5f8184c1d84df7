"""Evaluate a chromosome classifier from truth boxes on one split of the records.

Per chromosome: top-1 and top-3 of the classifier alone, and top-1 after the karyotype-aware joint labelling
(:mod:`karyotf.classify.joint`), per class and overall, and the 24 x 24 confusion matrix.  Per cell: all
chromosomes right, and the count call from the joint labels against the annotation's own call, reported
separately on normal and on numerically abnormal cells (an always-46 caller must not look good), with the share
of cells flagged for review (any flag of the count call, or a cell-level flag of the joint labelling: a close
normal/abnormal decision, a close alternative call, counts beyond the prior).

Written to ``out_dir``: ``metrics.json``, ``table.md``, ``confusion_matrix.png`` (joint labels).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import classes, plots as P, rundir
from ..annotations import Box
from ..errors import ClassifierError
from ..io import atomic_write_json, atomic_write_text
from ..karyogram.call import count_call
from .joint import joint_labels, prior_of

# Imports inside functions, and why: karyotf.classify.data (it loads OpenCV at its top); karyotf.classify.export (it
# loads OpenCV at its top); karyotf.classify.train (it loads OpenCV at its top).


CELL_FLAGS = ("close_call", "close_alternative", "beyond_prior", "unclassifiable", "left_out")
"""Flags that send a cell to review: the joint labelling's about the whole cell, and the Karyotyper's
``unclassifiable`` (a box the classifier could not see) and ``left_out`` (a box left out of the count although
counting it is within the close-call likelihood ratio); ``label_changed`` and ``low_top1`` are notes on single chromosomes, shown beside them."""


@dataclass
class CellResult:
    cell_id: str
    truth_call: str | None
    call: str | None
    right: bool
    normal: bool
    flagged: bool
    flags: list[str]
    all_right: bool
    changed: int
    top1_right: bool = False
    """The count call from the classifier's top-1 labels alone equals the annotation's."""


@dataclass
class ClassifierReport:
    model: str
    split: str
    records_dir: str
    chromosomes: int
    cells: int
    top1: float
    top3: float
    joint_top1: float
    per_class: dict[str, dict]
    confusion: np.ndarray
    cell_results: list[CellResult] = field(default_factory=list)
    seconds_per_cell: float = 0.0
    out_dir: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)

    def _share(self, pick, what) -> float | None:
        cells = [c for c in self.cell_results if pick(c)]
        return None if not cells else float(np.mean([what(c) for c in cells]))

    def summary(self) -> dict:
        normal = lambda c: c.normal  # noqa: E731
        abnormal = lambda c: not c.normal  # noqa: E731
        return {
            "top1": self.top1, "top3": self.top3, "joint_top1": self.joint_top1,
            "cells_all_right": self._share(lambda c: True, lambda c: c.all_right),
            "call_right": self._share(lambda c: True, lambda c: c.right),
            "call_right_top1": self._share(lambda c: True, lambda c: c.top1_right),
            "call_right_normal": self._share(normal, lambda c: c.right),
            "call_right_abnormal": self._share(abnormal, lambda c: c.right),
            "flagged_normal": self._share(normal, lambda c: c.flagged),
            "abnormal_right_or_flagged": self._share(abnormal, lambda c: c.right or c.flagged),
            "normal_cells": sum(c.normal for c in self.cell_results),
            "abnormal_cells": sum(not c.normal for c in self.cell_results),
            "seconds_per_cell": self.seconds_per_cell,
        }

    def to_dict(self) -> dict:
        return {"model": self.model, "split": self.split, "records_dir": self.records_dir,
                "chromosomes": self.chromosomes, "cells": self.cells, "summary": self.summary(),
                "per_class": self.per_class, "confusion": {"classes": list(classes.NAMES),
                                                           "matrix": self.confusion.tolist()},
                "cells_detail": [c.__dict__ for c in self.cell_results]}

    def table(self) -> str:
        s = self.summary()

        def f(v):
            return "-" if v is None else f"{v:.3f}"
        return ("| model | split | cells | top-1 | top-3 | joint top-1 | all right | call right (normal / abnormal) "
                "| normal flagged | abnormal right or flagged | s/cell |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
                f"| {self.model} | {self.split} | {self.cells} | {f(s['top1'])} | {f(s['top3'])} | "
                f"{f(s['joint_top1'])} | {f(s['cells_all_right'])} | {f(s['call_right_normal'])} / "
                f"{f(s['call_right_abnormal'])} | {f(s['flagged_normal'])} | {f(s['abnormal_right_or_flagged'])} | "
                f"{s['seconds_per_cell']:.3f} |\n")


def _call(names):
    """The count call of a cell's class names (from truth boxes: the boxes themselves play no part, so they are
    laid side by side, never overlapping)."""
    return count_call([Box(10.0 * i, 0.0, 10.0 * i + 8.0, 30.0, n) for i, n in enumerate(names)])


def evaluate(model: str | Path, records_dir: str | Path | None = None, split: str = "test",
             out_dir: str | Path | None = None, progress: bool = True, plots: bool = True,
             limit: int | None = None, views: int | None = None, prior=None) -> ClassifierReport:
    """Evaluate a classifier run or export from the truth boxes of one split (see the module doc); ``views``:
    test-time orientations per crop (default :data:`karyotf.classify.export.VIEWS`); ``prior``: the joint
    labelling's karyotype prior, a preset name or a :class:`~karyotf.classify.joint.KaryotypePrior` (default
    :data:`karyotf.defaults.PRIOR`)."""
    from .data import from_records
    from .export import VIEWS, Classifier

    prior = prior_of(prior)
    model = Path(model)
    clf = Classifier(model, views=VIEWS if views is None else views)
    if records_dir is None:
        records_dir = rundir.classifier_records(model)
        if records_dir is None:
            raise ClassifierError(f"{model}: does not say which records it was trained on (fix: pass --records DIR)")
    cache = model / "cache" if (model / rundir.CLASSIFIER_RUN).is_file() else None
    cs = from_records(records_dir, split, clf.size, cache, progress, limit, input=clf.trained_on)
    if cs.cells == 0:
        raise ClassifierError(f"{records_dir}: split {split!r} has no cells")
    probs = np.zeros((len(cs), classes.NUM_CLASSES), np.float32)
    joint = np.zeros(len(cs), np.int32)
    results = []
    t0 = time.perf_counter()
    for i in range(cs.cells):
        sl = cs.cell(i)
        p = clf.probabilities_of(cs.crops[sl], cs.features[sl])
        probs[sl] = p
        j = joint_labels(p, prior=prior)
        joint[sl] = [classes.NAMES.index(n) for n in j.labels]
        truth = [classes.NAMES[k] for k in cs.labels[sl]]
        want, got, alone = (_call(names) for names in (truth, j.labels, j.top1))
        flags = got.flag_codes + [f.code for f in j.flags() if f.code in CELL_FLAGS]
        results.append(CellResult(cell_id=cs.cell_ids[i], truth_call=want.iscn, call=got.iscn,
                                  right=got.iscn is not None and got.iscn == want.iscn, normal=want.is_normal,
                                  flagged=bool(flags), flags=flags, all_right=truth == list(j.labels),
                                  changed=len(j.changed),
                                  top1_right=alone.iscn is not None and alone.iscn == want.iscn))
    seconds = (time.perf_counter() - t0) / cs.cells
    labels = cs.labels
    top = np.argmax(probs, axis=1)
    confusion = np.zeros((classes.NUM_CLASSES, classes.NUM_CLASSES), np.int64)
    np.add.at(confusion, (labels, joint), 1)
    per_class = {}
    for k, n in enumerate(classes.NAMES):
        m = labels == k
        per_class[n] = {"chromosomes": int(m.sum()),
                        "top1": None if not m.any() else round(float((top[m] == k).mean()), 4),
                        "joint_top1": None if not m.any() else round(float((joint[m] == k).mean()), 4)}
    from .train import top_k

    report = ClassifierReport(model=model.name, split=split,
                              records_dir=str(records_dir), chromosomes=len(cs), cells=cs.cells,
                              top1=top_k(probs, labels, 1), top3=top_k(probs, labels, 3),
                              joint_top1=float((joint == labels).mean()), per_class=per_class,
                              confusion=confusion, cell_results=results, seconds_per_cell=seconds)
    out = Path(out_dir) if out_dir is not None else model / ("eval" if split == "test" else f"eval-{split}")
    out.mkdir(parents=True, exist_ok=True)
    report.out_dir = out
    report.files["metrics"] = atomic_write_json(out / "metrics.json", report.to_dict())
    report.files["table"] = atomic_write_text(out / "table.md", report.table())
    if plots:
        report.files["confusion"] = P.matrix(confusion, classes.NAMES, classes.NAMES, out / "confusion_matrix.png",
                                             title=f"Classifier confusion on {split} (joint labels, truth boxes)")
    return report
