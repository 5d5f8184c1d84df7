"""The case, not the cell: the count calls of one patient's cells -> one ISCN 2020 karyotype, with clonality,
``mos``, non-clonal findings, uncounted cells and case flags.

A laboratory signs a case: about 20 metaphases counted, about 5 analysed band by band, the count extended to 30-50
cells when mosaicism is suspected.  This module takes the per-cell count calls (:mod:`karyotf.karyogram.call`:
karyogram output folders already made, or made here from images with a model or from truth boxes), groups them
into cases by the same ``case_pattern`` as :func:`karyotf.records.case_of`, and writes each case's karyotype.

**Lines.**  A *line* is the set of counted cells sharing one numerical karyotype (the cell call's ISCN text,
``47,XX,+21``).  The most frequent normal karyotype (``46,XX`` or ``46,XY``) is the *normal line*: always a line,
whatever its size.  Every other karyotype is a line only when it is a clone (ISCN 2020, the clonality rule):
at least :data:`~karyotf.defaults.CASE_GAIN_MIN` (2) cells when it carries a gain (an extra autosome or sex
chromosome; a normal karyotype of the other sex counts as a gain), at least
:data:`~karyotf.defaults.CASE_LOSS_MIN` (3) when it carries losses only (``45,X``, ``45,XX,-22``).  The counted
cells in no line are *non-clonal findings*: listed apart, with the reason, never written into the karyotype.
When every counted cell has the same karyotype, that karyotype is the case's line even below the threshold (all
cells examined agree; a case of one cell), and the case is flagged ``clone_below_threshold``.

**Writing it.**  Each line is its karyotype with its cell count in brackets, ``47,XX,+21[4]``.  More than one
line makes a mosaic, prefixed ``mos`` and joined by ``/``; the order is ISCN's for constitutional mosaics:
the abnormal lines by size, the largest first (ties: in ISCN order of their text), and the normal line last
whatever its size (``mos 47,XY,+21[4]/46,XY[16]``, ``mos 45,X[4]/46,XX[16]``).  Normal lines of both sexes are a
chimera (``chi 46,XX[12]/46,XY[8]``), ordered by size, and are flagged.  No line at all reads
``no case call: ...``.

**Cells not counted** (listed with the reason, in no line): a cell that failed to load, one with no call
(too few or too many chromosomes, no X and no Y), one given twice, and a model's cell carrying a flag that
puts the count in doubt (:data:`~karyotf.defaults.CASE_UNCOUNTED_FLAGS`) until a person reviews it.  A reviewed
cell (``reviewed/report.json``, written by ``karyotf review``) is read from its review, and a cell from truth boxes
is the annotator's: both are counted whatever their flags, a person named their chromosomes.

**Counted and analysed.**  *Counted*: cells whose count call joins the case.  *Analysed*: counted cells whose
chromosomes a person named band by band, i.e. truth boxes (``--annotations``) or a review; a model's cells are
counted, not analysed.

**Case flags** (:data:`FLAG_CODES`): too few cells counted or analysed against the standard
(:data:`~karyotf.defaults.CASE_COUNTED`, :data:`~karyotf.defaults.CASE_ANALYSED`); mosaicism suspected (more
than one line, or any non-clonal cell), with the count to extend to: the first of
:data:`~karyotf.defaults.CASE_EXTEND_TO` above the cells counted (30 cells exclude a line in 10% of cells and 50
in 6%, with 95% confidence: ``1 - (1 - p) ** n >= 0.95``, Hook 1977); XX and XY cells in one case; cells
disagreeing on the sex complement; a call resting on low-confidence cells (a low mean detection score,
``low_mean_confidence``: the lines change without them); cells disagreeing beyond mosaicism (possible mixed patients: normal lines of both sexes,
two clonal abnormal lines sharing no change, or most counted cells in no line).

The best karyograms (two go with the report; :func:`best_cells`): among the counted cells with a karyogram
picture, fewest review-level flags (:data:`karyotf.karyogram.call.FLAG_LEVELS`), then fewest flags, then fewest
overlapping box pairs, then highest mean score; in a mosaic the best cell of
each of the two largest lines.
"""
from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence

from tqdm import tqdm

from . import classes
from . import defaults as D
from .annotations import IMAGE_SUFFIXES
from .errors import KaryotfError
from .io import atomic_write_json, atomic_write_text
from .karyogram.call import Flag, REVIEW, level_of
from .karyogram.defaults import NMS_IOU, OVERLAP_IOU
from .karyogram.detections import CellDetections
from .records import case_of

# Imports inside functions, and why: karyotf.karyogram.build (it loads OpenCV and Pillow at its top); Pillow (heavy:
# loaded when an image is decoded or drawn).

NORMAL = ("46,XX", "46,XY")
LOW_CONFIDENCE_FLAGS = ("low_mean_confidence",)
"""A cell with one of these flags is a low-confidence cell (its mean detection score is low)."""
REPORT = "report.json"
CELL_MARKER = "detections.json"
"""A karyogram output folder (a cell) holds this file (as :mod:`karyotf.review` finds cells)."""
MAX_DEPTH = 3

FLAG_CODES = {
    "too_few_counted": "fewer cells counted than the standard",
    "too_few_analysed": "fewer cells analysed band by band (truth boxes or a review) than the standard",
    "uncounted_cells": "cells that could not be counted (listed with the reason)",
    "mosaicism_suspected": "more than one line, or cells in no line: extend the count",
    "clone_below_threshold": "the only line has fewer cells than a clone needs: clonality not established",
    "no_clone": "no line: the counted cells share no clonal karyotype",
    "xx_and_xy": "cells with XX and cells with XY in one case",
    "sex_disagree": "cells of the case disagree on the sex chromosome complement",
    "rests_on_low_confidence": "the case karyotype rests on low-confidence cells",
    "mixed_patients": "the cells disagree beyond what mosaicism explains: two patients under one case id?",
}
"""Every case flag code with its meaning (the report's legend)."""


class CaseError(KaryotfError):
    """Bad input to ``karyotf case``: names the file and the fix."""


@dataclass(frozen=True)
class Rules:
    """The clonality thresholds and the counting standard (:mod:`karyotf.defaults`)."""

    gain_min: int = D.CASE_GAIN_MIN
    loss_min: int = D.CASE_LOSS_MIN
    counted: int = D.CASE_COUNTED
    analysed: int = D.CASE_ANALYSED
    extend_to: tuple[int, ...] = D.CASE_EXTEND_TO
    uncounted_flags: tuple[str, ...] = D.CASE_UNCOUNTED_FLAGS

    def __post_init__(self):
        if self.gain_min < 1 or self.loss_min < 1:
            raise CaseError(f"clonality thresholds must be at least 1 (gain {self.gain_min}, loss {self.loss_min})")
        if self.counted < 0 or self.analysed < 0:
            raise CaseError("the counted / analysed standards must be 0 or more")

    def to_dict(self) -> dict:
        return {"gain_min": self.gain_min, "loss_min": self.loss_min, "counted": self.counted,
                "analysed": self.analysed, "extend_to": list(self.extend_to),
                "uncounted_flags": list(self.uncounted_flags)}


# ----------------------------------------------------------------------------------------------- cells

_ISCN = re.compile(r"^(\d{1,2}),([XY]+)((?:,[+-](?:[1-9]|1\d|2[0-2]))*)$")


def parse_numerical(text: str) -> tuple[int, str, tuple[str, ...]]:
    """``"47,XX,+21"`` -> ``(47, "XX", ("+21",))``: a numerical ISCN karyotype as the count call writes it.

    Raises :class:`CaseError` for text that is not one, or whose count does not add up."""
    m = _ISCN.match(str(text).strip().replace(" ", ""))
    if not m:
        raise CaseError(f"{text!r} is not a numerical ISCN karyotype such as 47,XX,+21 or 45,X")
    total, sex, rest = int(m.group(1)), m.group(2), m.group(3)
    changes = tuple(c for c in rest.split(",") if c)
    if sex != "X" * sex.count("X") + "Y" * sex.count("Y"):
        raise CaseError(f"{text!r}: write the sex chromosomes X first, then Y (e.g. XXY)")
    expected = 44 + len(sex) + sum(1 if c[0] == "+" else -1 for c in changes)
    if total != expected:
        raise CaseError(f"{text!r}: the count {total} does not add up (the changes give {expected})")
    return total, sex, changes


def _order_key(text: str):
    """ISCN-like sort key of a numerical karyotype (count, then sex, then changes in chromosome order)."""
    total, sex, changes = parse_numerical(text)
    return (total, sex, [(classes.LABEL_OF[c[1:]], c[0]) for c in changes])


def has_gain(text: str) -> bool:
    """A line with an extra chromosome (autosome or sex chromosome) needs the gain threshold."""
    _, sex, changes = parse_numerical(text)
    return len(sex) > 2 or any(c.startswith("+") for c in changes)


@dataclass
class CellCall:
    """One cell's count call, as the case reads it."""

    cell: str
    iscn: str | None
    total: int = 0
    sex: str = "?"
    changes: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    flag_messages: tuple[str, ...] = ()
    mean_score: float | None = None
    overlaps: int = 0
    kind: str = "planted"
    """Where the call came from: ``annotations`` (truth boxes), ``model``, ``planted`` (given as text)."""
    reviewed: bool = False
    folder: Path | None = None
    karyogram: Path | None = None
    image: str | None = None
    error: str | None = None
    """Why the cell could not be loaded or made (then there is no call)."""
    no_call: str | None = None
    case: str = ""

    @classmethod
    def planted(cls, text: str, cell: str = "cell", **kw) -> "CellCall":
        """A cell with a given call (``"47,XX,+21"``), e.g. for tests; ``no call: why`` plants an uncallable one."""
        if str(text).startswith("no call"):
            return cls(cell=cell, iscn=None, no_call=str(text).partition(":")[2].strip() or "no call",
                       flags=("no_call",), **kw)
        total, sex, changes = parse_numerical(text)
        return cls(cell=cell, iscn=",".join([str(total), sex, *changes]), total=total, sex=sex, changes=changes, **kw)

    @classmethod
    def failed(cls, cell: str, error: str, **kw) -> "CellCall":
        return cls(cell=cell, iscn=None, error=error, **kw)

    @classmethod
    def from_call(cls, cell: str, call, **kw) -> "CellCall":
        """From a :class:`karyotf.karyogram.call.Call`."""
        return cls(cell=cell, iscn=call.iscn, total=call.total, sex=call.sex, changes=tuple(call.changes),
                   flags=tuple(call.flag_codes), flag_messages=tuple(f.message for f in call.flags),
                   mean_score=call.mean_score, overlaps=len(call.overlaps), no_call=call.no_call, **kw)

    @property
    def text(self) -> str:
        if self.error:
            return f"not loaded: {self.error}"
        return self.iscn if self.iscn is not None else f"no call: {self.no_call or 'no chromosomes detected'}"

    @property
    def low_confidence(self) -> bool:
        return any(f in LOW_CONFIDENCE_FLAGS for f in self.flags)

    @property
    def analysed(self) -> bool:
        """Chromosomes named by a person: truth boxes or a review."""
        return self.reviewed or self.kind == "annotations"

    def uncounted_reason(self, rules: Rules) -> str | None:
        """Why the cell is not counted toward any line, or None."""
        if self.error:
            return f"failed to load: {self.error}"
        if self.iscn is None:
            return f"no call: {self.no_call or 'no chromosomes detected'}"
        if not self.analysed:  # a person named this cell's chromosomes (truth boxes, a review): their count stands
            touching = [f for f in self.flags if f in rules.uncounted_flags]
            if touching:
                return "flag(s) touching the count, not reviewed: " + ", ".join(touching)
        return None

    def to_dict(self) -> dict:
        return {"cell": self.cell, "case": self.case, "call": self.iscn, "text": self.text, "total": self.total,
                "sex": self.sex, "changes": list(self.changes), "flags": list(self.flags),
                "mean_score": None if self.mean_score is None else round(self.mean_score, 4),
                "overlaps": self.overlaps, "kind": self.kind, "reviewed": self.reviewed,
                "folder": None if self.folder is None else str(self.folder),
                "image": self.image, "error": self.error}


def _overlap_pairs(det_file: Path, iou: float) -> int:
    try:
        det = CellDetections.read(det_file)
        boxes = det.boxes()
        iou = float(det.params.get("overlap_iou", iou))
    except (OSError, ValueError, TypeError):
        return 0
    return sum(1 for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if boxes[i].iou(boxes[j]) >= iou)


def read_cell(folder: str | Path) -> CellCall:
    """The call of a karyogram output folder (``karyotf karyogram``): its reviewed report (``reviewed/report.json``,
    from ``karyotf review``) if there is one, else its ``report.json``.  A folder that cannot be read gives a
    failed cell naming the file and the fix (it is listed, the case goes on)."""
    folder = Path(folder)
    reviewed = (folder / "reviewed" / REPORT).is_file()
    base = folder / "reviewed" if reviewed else folder
    path = base / REPORT
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or "total" not in data:
            raise ValueError("not a karyogram report")
        source = data.get("source") or {}
        image = source.get("image")
        cell = Path(str(image)).stem if image and image != "image" else folder.name
        flags = data.get("flags") or []
        png = base / "karyogram.png"
        return CellCall(cell=cell, iscn=data.get("call"), total=int(data.get("total") or 0),
                        sex=str(data.get("sex") or "?"), changes=tuple(data.get("changes") or ()),
                        flags=tuple(str(f.get("code")) for f in flags),
                        flag_messages=tuple(str(f.get("message", "")) for f in flags),
                        mean_score=data.get("mean_score"), overlaps=_overlap_pairs(base / CELL_MARKER, OVERLAP_IOU),
                        kind=str(source.get("kind") or "model"), reviewed=reviewed, folder=folder,
                        karyogram=png if png.is_file() else None, image=image, no_call=data.get("no_call"))
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        return CellCall.failed(folder.name, f"{path}: unreadable ({exc}) (fix: rebuild the cell with karyotf "
                                            "karyogram)", folder=folder)


# ----------------------------------------------------------------------------------------------- the case


@dataclass
class Line:
    karyotype: str
    cells: list[CellCall]
    normal: bool = False

    @property
    def n(self) -> int:
        return len(self.cells)

    @property
    def text(self) -> str:
        return f"{self.karyotype}[{self.n}]"

    def to_dict(self) -> dict:
        return {"karyotype": self.karyotype, "cells": [c.cell for c in self.cells], "count": self.n,
                "normal": self.normal, "text": self.text}


@dataclass
class CaseKaryotype:
    """One case's karyotype and everything it rests on."""

    case: str
    karyotype: str | None
    lines: list[Line]
    cells: list[CellCall]
    non_clonal: list[tuple[CellCall, str]]
    uncounted: list[tuple[CellCall, str]]
    flags: list = field(default_factory=list)
    rules: Rules = field(default_factory=Rules)
    extend_to: int | None = None
    """Cells to extend the count to when mosaicism is suspected (None: not suspected, or already counted)."""
    no_call: str | None = None

    @property
    def text(self) -> str:
        return self.karyotype if self.karyotype is not None else f"no case call: {self.no_call}"

    @property
    def counted(self) -> list[CellCall]:
        out = {id(c) for c, _ in self.uncounted}
        return [c for c in self.cells if id(c) not in out]

    @property
    def analysed(self) -> list[CellCall]:
        return [c for c in self.counted if c.analysed]

    @property
    def sex(self) -> str:
        """The sex chromosome complement of the lines, in line order (``XX``, ``X/XX``)."""
        seen: list[str] = []
        for ln in self.lines:
            s = parse_numerical(ln.karyotype)[1]
            if s not in seen:
                seen.append(s)
        return "/".join(seen) if seen else "?"

    @property
    def flag_codes(self) -> list[str]:
        return [f.code for f in self.flags]

    def has_flag(self, code: str) -> bool:
        return code in self.flag_codes

    def line_of(self, cell: CellCall) -> Line | None:
        return next((ln for ln in self.lines if any(c is cell for c in ln.cells)), None)

    @property
    def normal(self) -> bool:
        return self.karyotype is not None and len(self.lines) == 1 and self.lines[0].normal

    def counts(self) -> dict:
        """The counts the karyotype rests on."""
        return {"given": len(self.cells), "counted": len(self.counted), "analysed": len(self.analysed),
                "uncounted": len(self.uncounted), "in_lines": sum(ln.n for ln in self.lines),
                "non_clonal": len(self.non_clonal), "low_confidence": sum(c.low_confidence for c in self.counted),
                "standard_counted": self.rules.counted, "standard_analysed": self.rules.analysed}

    def to_dict(self) -> dict:
        return {"case": self.case, "karyotype": self.karyotype, "text": self.text, "no_call": self.no_call,
                "sex": self.sex, "normal": self.normal, "lines": [ln.to_dict() for ln in self.lines],
                "non_clonal": [{"cell": c.cell, "call": c.text, "reason": r} for c, r in self.non_clonal],
                "uncounted": [{"cell": c.cell, "call": c.text, "reason": r} for c, r in self.uncounted],
                "flags": [f.to_dict() for f in self.flags], "counts": self.counts(), "extend_to": self.extend_to,
                "best": [c.cell for c in best_cells(self)], "rules": self.rules.to_dict(),
                "cells": [{**c.to_dict(), "line": (self.line_of(c).karyotype if self.line_of(c) else None)}
                          for c in self.cells]}


def _is_normal(text: str) -> bool:
    return text in NORMAL


def _lines(counted: Sequence[CellCall], rules: Rules) -> tuple[list[Line], list[tuple[CellCall, str]], bool]:
    """(lines in ISCN order, non-clonal cells with the reason, whether the unanimity rule made the only line)."""
    groups: dict[str, list[CellCall]] = {}
    for c in counted:
        groups.setdefault(c.iscn, []).append(c)
    normals = [k for k in groups if _is_normal(k)]
    main = None
    if normals:
        with_y = sum("Y" in c.sex for c in counted)
        majority_sex = "46,XY" if with_y * 2 > len(counted) else "46,XX"
        main = max(normals, key=lambda k: (len(groups[k]), k == majority_sex, k == "46,XX"))
    lines: list[Line] = []
    non_clonal: list[tuple[CellCall, str]] = []
    for k, cs in groups.items():
        if k == main:
            lines.append(Line(k, cs, normal=True))
            continue
        gain = has_gain(k) or _is_normal(k)
        need = rules.gain_min if gain else rules.loss_min
        if len(cs) >= need:
            lines.append(Line(k, cs, normal=_is_normal(k)))
        else:
            what = ("a normal karyotype of the other sex" if _is_normal(k)
                    else "a line with a gain" if gain else "a loss-only line")
            reason = (f"{k} in {len(cs)} cell{'s' * (len(cs) != 1)}: {what} is a clone from {need} cells "
                      f"(ISCN clonality rule)")
            non_clonal += [(c, reason) for c in cs]
    unanimous = False
    if not lines and len(groups) == 1:
        (k, cs), = groups.items()
        lines.append(Line(k, cs, normal=_is_normal(k)))
        non_clonal = []
        unanimous = True
    abnormal = sorted((ln for ln in lines if ln.karyotype != main), key=lambda ln: (-ln.n, _order_key(ln.karyotype)))
    if any(ln.normal for ln in abnormal):  # normal lines of both sexes: a chimera, ordered by size
        lines = sorted(lines, key=lambda ln: (-ln.n, _order_key(ln.karyotype)))
    else:
        lines = abnormal + [ln for ln in lines if ln.karyotype == main]
    return lines, non_clonal, unanimous


def _extend_to(counted: int, rules: Rules) -> int | None:
    return next((n for n in sorted(rules.extend_to) if n > counted), None)


def _excluded(n: int, confidence: float = 0.95) -> float:
    """The smallest share of cells a line can have and still show in ``n`` cells with ``confidence``."""
    return 1 - (1 - confidence) ** (1 / n)


def case_karyotype(cells: Iterable[CellCall], case: str = "", rules: Rules | None = None) -> CaseKaryotype:
    """The ISCN karyotype of one case from its cells' count calls (the module doc states every rule)."""
    rules = rules or Rules()
    cells = list(cells)
    uncounted: list[tuple[CellCall, str]] = []
    seen: dict[str, CellCall] = {}
    for c in cells:
        reason = c.uncounted_reason(rules)
        if reason is None and c.cell in seen:
            reason = f"given twice (also {seen[c.cell].folder or seen[c.cell].image or c.cell}): counted once"
        if reason is None:
            seen[c.cell] = c
        else:
            uncounted.append((c, reason))
    out_ids = {id(c) for c, _ in uncounted}
    counted = [c for c in cells if id(c) not in out_ids]
    lines, non_clonal, unanimous = _lines(counted, rules)
    flags: list = []
    res = CaseKaryotype(case=case, karyotype=None, lines=lines, cells=cells, non_clonal=non_clonal,
                        uncounted=uncounted, flags=flags, rules=rules)
    if lines:
        normal_lines = [ln for ln in lines if ln.normal]
        prefix = "chi " if len(normal_lines) > 1 else "mos " if len(lines) > 1 else ""
        res.karyotype = prefix + "/".join(ln.text for ln in lines)
    else:
        res.no_call = (f"no cell counted ({len(uncounted)} not counted)" if not counted else
                       f"no clonal line among {len(counted)} counted cells")
    n = len(counted)
    if n < rules.counted:
        flags.append(Flag("too_few_counted", f"{n} cell{'s' * (n != 1)} counted; the standard is {rules.counted}"))
    na = len(res.analysed)
    if na < rules.analysed:
        flags.append(Flag("too_few_analysed", f"{na} cell{'s' * (na != 1)} analysed band by band (truth boxes or "
                                              f"a review); the standard is {rules.analysed}"))
    if uncounted:
        flags.append(Flag("uncounted_cells", f"{len(uncounted)} cell(s) not counted: "
                          + "; ".join(f"{c.cell} ({r})" for c, r in uncounted[:5])
                          + (" ..." if len(uncounted) > 5 else "")))
    if not lines and counted:
        flags.append(Flag("no_clone", f"no clonal line among {n} counted cells: "
                          + ", ".join(f"{k} x{v}" for k, v in Counter(c.iscn for c in counted).most_common())))
    if unanimous and not lines[0].normal:
        ln = lines[0]
        need = rules.gain_min if has_gain(ln.karyotype) else rules.loss_min
        if ln.n < need:
            flags.append(Flag("clone_below_threshold", f"every counted cell is {ln.karyotype}, but in {ln.n} "
                              f"cell{'s' * (ln.n != 1)} only: a clone needs {need}; clonality not established"))
    if len(lines) > 1 or non_clonal:
        res.extend_to = _extend_to(n, rules)
        by_size = sorted(lines, key=lambda ln: -ln.n)
        minority = [f"{ln.karyotype} in {ln.n}" for ln in by_size[1:]]
        minority += [f"{k} in {v} (non-clonal)" for k, v in Counter(c.iscn for c, _ in non_clonal).items()]
        what = "; ".join(minority)
        if res.extend_to is not None:
            advice = (f"extend the count to {res.extend_to} cells (then a line in {100 * _excluded(res.extend_to):.0f}% "
                      "of cells or more shows with 95% confidence)")
        else:
            advice = f"{n} cells already counted (at least {max(rules.extend_to, default=n)})"
        flags.append(Flag("mosaicism_suspected", f"{what} of {n} counted cells: {advice}"))
    female = [c for c in counted if "Y" not in c.sex and c.sex.count("X") >= 2]
    male = [c for c in counted if "Y" in c.sex]
    if female and male:
        flags.append(Flag("xx_and_xy", f"{len(female)} cell(s) with XX and no Y, {len(male)} with a Y in one case: "
                          "chimerism, maternal cells, or two patients under one case id", ("X", "Y")))
    sexes = Counter(c.sex for c in counted)
    if len(sexes) > 1:
        flags.append(Flag("sex_disagree", "sex complements " + ", ".join(f"{s} x{v}" for s, v in sexes.most_common()),
                          ("X", "Y")))
    low = [c for c in counted if c.low_confidence]
    if low:
        confident_lines = {ln.karyotype for ln in _lines([c for c in counted if not c.low_confidence], rules)[0]}
        if confident_lines != {ln.karyotype for ln in lines}:
            flags.append(Flag("rests_on_low_confidence", f"{len(low)} of {n} counted cells are low-confidence; without them "
                              f"the lines would be {', '.join(sorted(confident_lines)) or 'none'}"))
    mixed = []
    if len([ln for ln in lines if ln.normal]) > 1:
        mixed.append("normal lines of both sexes")
    auto = [ln for ln in lines if parse_numerical(ln.karyotype)[2]]
    for i in range(len(auto)):
        for j in range(i + 1, len(auto)):
            if not set(parse_numerical(auto[i].karyotype)[2]) & set(parse_numerical(auto[j].karyotype)[2]):
                mixed.append(f"clonal lines {auto[i].karyotype} and {auto[j].karyotype} share no change")
    if n >= 3 and 2 * len(non_clonal) > n:
        mixed.append(f"{len(non_clonal)} of {n} counted cells join no line")
    if mixed:
        flags.append(Flag("mixed_patients", "; ".join(mixed) + ": beyond what mosaicism explains (two patients "
                          "under one case id? check --case-pattern; chimerism; a poor preparation)"))
    return res


def best_cells(case: CaseKaryotype, n: int = 2) -> list[CellCall]:
    """The ``n`` best-quality karyograms: counted cells with a karyogram picture, fewest review-level flags, then
    fewest flags, then fewest overlapping box pairs, then highest mean score (truth boxes have none: equal), then
    name; in a mosaic the best cell of each of the largest lines first."""
    def key(c: CellCall):
        return (sum(level_of(f) == REVIEW for f in c.flags), len(c.flags), c.overlaps,
                -(c.mean_score if c.mean_score is not None else 1.0), c.cell)

    pool = sorted((c for c in case.counted if c.karyogram is not None), key=key)
    chosen: list[CellCall] = []
    if len(case.lines) > 1:
        for ln in sorted(case.lines, key=lambda ln: -ln.n):
            best = next((c for c in pool if any(c is x for x in ln.cells)), None)
            if best is not None and len(chosen) < n:
                chosen.append(best)
    for c in pool:
        if len(chosen) >= n:
            break
        if not any(c is x for x in chosen):
            chosen.append(c)
    return chosen


def group_cases(cells: Iterable[CellCall], case_pattern: str = D.CASE_PATTERN) -> dict[str, list[CellCall]]:
    """Cells by case, by the same rule as ``karyotf records`` (:func:`karyotf.records.case_of`); sets ``.case``."""
    try:
        re.compile(case_pattern)
    except re.error as exc:
        raise CaseError(f"--case-pattern {case_pattern!r} is not a regular expression ({exc})") from None
    out: dict[str, list[CellCall]] = {}
    for c in cells:
        c.case = case_of(c.cell, case_pattern)
        out.setdefault(c.case, []).append(c)
    return dict(sorted(out.items()))


def case_karyotypes(cells: Iterable[CellCall], case_pattern: str = D.CASE_PATTERN,
                    rules: Rules | None = None) -> list[CaseKaryotype]:
    """Every case's karyotype, cases in name order."""
    return [case_karyotype(cs, case, rules) for case, cs in group_cases(cells, case_pattern).items()]


# ----------------------------------------------------------------------------------------------- cells from disk


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in {s.lower() for s in IMAGE_SUFFIXES}


def _cell_folders(root: Path, depth: int = 0) -> list[Path]:
    if (root / CELL_MARKER).is_file():
        return [root]
    if depth >= MAX_DEPTH:
        return []
    out = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        if sub.name in ("reviewed", "cases") or sub.name.startswith("."):
            continue
        out += _cell_folders(sub, depth + 1)
    return out


def collect(sources: Sequence[str | Path]) -> tuple[list[Path], list[Path], list[CellCall]]:
    """(karyogram output folders, images to make cells of, failed cells) from the command line's CELLS: a cell
    folder, a folder of them (up to 3 levels deep), a folder of images (or ``images/``), image files, or a
    ``report.json``.  A path that is none of these is a failed cell, listed."""
    folders: list[Path] = []
    images: list[Path] = []
    failed: list[CellCall] = []
    for src in map(Path, sources):
        if src.is_file():
            if src.name == REPORT:
                folders.append(src.parent)
            elif _is_image(src):
                images.append(src)
            else:
                failed.append(CellCall.failed(src.stem, f"{src}: not an image nor a karyogram report.json "
                                                        "(fix: give images, or karyotf karyogram output folders)"))
        elif src.is_dir():
            found = _cell_folders(src)
            folders += found
            if not found:
                for d in (src, src / "images"):
                    if d.is_dir():
                        images += sorted(p for p in d.iterdir() if p.is_file() and _is_image(p))
            if not found and not images:
                failed.append(CellCall.failed(src.name, f"{src}: no image and no karyogram output folder in it"))
        else:
            failed.append(CellCall.failed(src.stem, f"{src}: not found (fix: check the path)"))
    return folders, images, failed


def _reusable(folder: Path, image: Path, kind: str, origin: str) -> bool:
    """Whether a cell folder made earlier (a resumed run) is from this image and this source, and newer than both."""
    try:
        rep = folder / REPORT
        src = json.loads(rep.read_text(encoding="utf-8")).get("source") or {}
        if str(src.get("image")) != str(image) or src.get("kind") != kind or str(src.get("from", "")) != origin:
            return False
        t = rep.stat().st_mtime
        return t >= image.stat().st_mtime and (not origin or not Path(origin).is_file()
                                               or t >= Path(origin).stat().st_mtime)
    except (OSError, ValueError, AttributeError):
        return False


def make_cells(images: Sequence[Path], out_dir: str | Path, model=None, annotations: str | Path | None = None,
               min_score: float | None = None, nms_iou: float | None = None, progress: bool = True,
               resume: bool = True, **kw) -> list[CellCall]:
    """Each image's karyogram (``karyotf karyogram``'s outputs) into ``out_dir/<image stem>/`` and its call.

    ``model``: a model object (:func:`karyotf.classify.karyotyper.open_model`), or None with ``annotations`` (an
    XML file for one image, or a folder of XML named after the images); with neither, the model pair shipped with
    karyotf calls the images.  A cell that fails (unreadable image, no or
    bad XML, a box outside the image) is a failed cell naming the file and the fix: listed, the case goes on.
    ``resume``: a cell folder made earlier from the same image and source, newer than both, is read, not remade."""
    from .karyogram.build import from_annotation, from_detector, read_annotation_for

    if model is None and annotations is None and images:  # the model pair shipped with karyotf
        from .classify.karyotyper import open_model

        model = open_model(None, default=True)
    out = Path(out_dir)
    cells: list[CellCall] = []
    stems = Counter(p.stem for p in images)
    iterator = images
    if progress and len(images) > 1:
        iterator = tqdm(images, desc="cells", unit="cell")
    for img in iterator:
        dst = out / img.stem
        if stems[img.stem] > 1:
            cells.append(CellCall.failed(img.stem, f"{img}: another image has the same name {img.stem} (fix: "
                                                   "give images distinct names)", image=str(img)))
            continue
        try:
            if model is not None:
                origin = model.describe()["from"]
                if not (resume and _reusable(dst, img, "model", origin)):
                    from_detector(model, img, dst, min_score=min_score,
                                  nms_iou=NMS_IOU if nms_iou is None else nms_iou, **kw)
            else:
                ann = read_annotation_for(img, Path(annotations))
                if not (resume and _reusable(dst, img, "annotations", str(ann.xml_path or ""))):
                    from_annotation(ann, dst, image=img, **kw)
        except (KaryotfError, OSError, ValueError) as exc:
            cells.append(CellCall.failed(img.stem, str(exc), image=str(img)))
            continue
        cells.append(read_cell(dst))
    return cells


def load_cells(sources: Sequence[str | Path], out_dir: str | Path, model=None,
               annotations: str | Path | None = None, progress: bool = True, **kw) -> list[CellCall]:
    """Every cell named by ``sources`` (:func:`collect`): karyogram folders are read, images are made into
    ``out_dir/cells/`` (:func:`make_cells`), and what fails is listed as failed cells."""
    folders, images, failed = collect(sources)
    cells = [read_cell(f) for f in folders]
    made_stems = {c.cell for c in cells}
    todo = [p for p in images if p.stem not in made_stems]
    cells += make_cells(todo, Path(out_dir) / "cells", model=model, annotations=annotations, progress=progress,
                        **kw) if todo else []
    return cells + failed


@dataclass
class CaseRun:
    """What :func:`run_cases` made: the cases, and the files written."""

    cases: list[CaseKaryotype]
    out_dir: Path
    paths: dict[str, Path] = field(default_factory=dict)

    def text(self) -> str:
        lines = []
        for c in self.cases:
            cnt = c.counts()
            lines.append(f"case {c.case}: {c.text}  ({cnt['counted']} counted, {cnt['analysed']} analysed, "
                         f"{cnt['uncounted']} not counted, {cnt['non_clonal']} non-clonal)")
            lines += [f"  non-clonal {x.cell}: {x.text}" for x, _ in c.non_clonal]
            lines += [f"  not counted {x.cell}: {r}" for x, r in c.uncounted]
            lines += [f"  flag {f}" for f in c.flags]
        lines.append(f"wrote {self.out_dir}/cases.csv, cases.json and cases/<case>/report.html, report.json")
        return "\n".join(lines)


def run_cases(sources: Sequence[str | Path], out_dir: str | Path, model=None, annotations=None,
              case_pattern: str = D.CASE_PATTERN, rules: Rules | None = None, progress: bool = True,
              thumbnails: bool = True, **kw) -> CaseRun:
    """Cells -> cases -> each case's karyotype and report: ``out_dir/cases/<case>/report.html`` and
    ``report.json``, and ``out_dir/cases.csv`` / ``cases.json`` (one row a case).  Cells made from images go to
    ``out_dir/cells/<image stem>/`` (a review folder: ``karyotf review out_dir``)."""
    out = Path(out_dir)
    cells = load_cells(sources, out, model=model, annotations=annotations, progress=progress, **kw)
    if not cells:
        raise CaseError("no cell given (fix: name images, a folder of images, or karyogram output folders)")
    cases = case_karyotypes(cells, case_pattern, rules)
    run = CaseRun(cases=cases, out_dir=out)
    iterator = cases
    if progress and len(cases) > 1:
        iterator = tqdm(cases, desc="case reports", unit="case")
    for c in iterator:
        write_case_report(c, out / "cases" / safe_name(c.case), thumbnails=thumbnails)
    run.paths.update(write_summary(cases, out))
    return run


def safe_name(name: str) -> str:
    """``name`` as a folder name (anything but letters, digits and ``._-`` becomes ``_``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "case"


# ----------------------------------------------------------------------------------------------- report

THUMB_WIDTH = 160
_CSS = """body{font-family:DejaVu Sans,Arial,sans-serif;margin:24px;color:#222}
h1{font-size:22px;margin:0 0 4px} .call{font-size:28px;font-weight:bold;margin:8px 0}
.ok{color:#1a7f37} .warn{color:#c62828} table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ccc;padding:2px 8px;text-align:left;vertical-align:middle} th{background:#f3f3f3}
tr.off td{background:#fdecea} tr.nc td{background:#fff8e1} img.k{max-width:100%;border:1px solid #ddd}
.src{color:#666;font-size:13px} ul.flags li{color:#c62828}"""


def _data_uri(path: Path | None, width: int | None = None) -> str | None:
    """A picture as a ``data:`` URI (a JPEG thumbnail ``width`` px wide, or the PNG as it is), None if unreadable."""
    if path is None:
        return None
    try:
        if width is None:
            return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")
        from PIL import Image

        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((width, width * 4))
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=80)
        return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    except (OSError, ValueError):
        return None


def _rel(path: Path | None, start: Path) -> str | None:
    if path is None:
        return None
    try:
        return Path(os.path.relpath(Path(path).resolve(), Path(start).resolve())).as_posix()
    except ValueError:  # another drive
        return str(path)


def case_html(case: CaseKaryotype, out_dir: Path, thumbnails: bool = True, review: dict | None = None) -> str:
    """The case report page: karyotype, counts, lines, non-clonal findings, flags, the best karyograms, every cell;
    ``review``: the case review (:mod:`karyotf.review.cases`), shown under the karyotype."""
    esc = html.escape
    cnt = case.counts()
    ok = case.karyotype is not None and case.normal and not [f for f in case.flags if f.code not in (
        "too_few_counted", "too_few_analysed")]
    p = ["<!doctype html><html><head><meta charset='utf-8'>",
         f"<title>karyotf case {esc(case.case)}: {esc(case.text)}</title><style>{_CSS}</style></head><body>",
         f"<h1>Case {esc(case.case)}</h1>",
         f"<div class='call {'ok' if ok else 'warn'}'>{esc(case.text)}</div>",
         f"<p>sex chromosome complement: <b>{esc(case.sex)}</b></p>",
         (f"<p><b>Accepted</b> by {esc(str(review.get('reviewer')))} at {esc(str(review.get('reviewed_at')))} "
          f"(revision {review.get('revision')}); cells not reviewed one by one: "
          f"{esc(', '.join(review.get('unreviewed_cells') or []) or 'none')}</p>"
          + (f"<p>comment: {esc(str(review.get('comment')))}</p>" if review.get("comment") else "")
          if review else ""),
         "<h2>Counts the karyotype rests on</h2><table>"]
    p += [f"<tr><th>{esc(k.replace('_', ' '))}</th><td>{v}</td></tr>" for k, v in cnt.items()]
    p.append("</table>")
    if case.lines:
        p.append("<h2>Lines</h2><table><tr><th>line</th><th>cells</th><th>which</th></tr>")
        p += [f"<tr><td>{esc(ln.karyotype)}{' (normal)' if ln.normal else ''}</td><td>{ln.n}</td>"
              f"<td>{esc(', '.join(c.cell for c in ln.cells))}</td></tr>" for ln in case.lines]
        p.append("</table>")
    if case.non_clonal:
        p.append("<h2>Non-clonal findings (not in the karyotype)</h2><ul>")
        p += [f"<li><b>{esc(c.cell)}</b>: {esc(c.text)} &mdash; {esc(r)}</li>" for c, r in case.non_clonal]
        p.append("</ul>")
    if case.uncounted:
        p.append("<h2>Cells not counted</h2><ul>")
        p += [f"<li><b>{esc(c.cell)}</b>: {esc(r)}</li>" for c, r in case.uncounted]
        p.append("</ul>")
    if case.flags:
        p.append("<h2>Case flags</h2><ul class='flags'>")
        p += [f"<li><b>{esc(f.code)}</b>: {esc(f.message)}</li>" for f in case.flags]
        p.append("</ul>")
    else:
        p.append("<p>No case flags.</p>")
    best = best_cells(case)
    p.append("<h2>Karyograms</h2><p class='src'>The best-quality karyograms: counted cells with fewest review "
             "flags, then fewest flags, then fewest overlapping box pairs, then highest mean score (in a mosaic, the "
             "best of each of the two largest lines).</p>")
    if not best:
        p.append("<p class='warn'>No counted cell has a karyogram picture.</p>")
    for c in best:
        uri = _data_uri(c.karyogram)
        ln = case.line_of(c)
        p.append(f"<h3>{esc(c.cell)}: {esc(c.text)}{f' (line {esc(ln.karyotype)})' if ln else ''}</h3>")
        if uri:
            p.append(f"<img class='k' alt='karyogram of {esc(c.cell)}' src='{uri}'>")
    p.append("<h2>Cells</h2><table><tr><th>karyogram</th><th>cell</th><th>call</th><th>flags</th><th>joins</th>"
             "<th>report</th></tr>")
    why_nc = {id(c): r for c, r in case.non_clonal}
    why_out = {id(c): r for c, r in case.uncounted}
    for c in case.cells:
        ln = case.line_of(c)
        if ln is not None:
            joins, cls = f"line {esc(ln.karyotype)}", ""
        elif id(c) in why_out:
            joins, cls = f"not counted: {esc(why_out[id(c)])}", " class='off'"
        else:
            joins, cls = f"non-clonal: {esc(why_nc.get(id(c), ''))}", " class='nc'"
        thumb = _data_uri(c.karyogram, THUMB_WIDTH) if thumbnails else None
        img = f"<img alt='' src='{thumb}'>" if thumb else "&ndash;"
        rep = None
        if c.folder is not None:
            rep = (c.folder / "reviewed" / "report.html") if c.reviewed else (c.folder / "report.html")
        link = f"<a href='{esc(_rel(rep, out_dir))}'>report</a>" if rep is not None and rep.is_file() else "&ndash;"
        flags = ", ".join(c.flags) + (" (reviewed)" if c.reviewed else "")
        p.append(f"<tr{cls}><td>{img}</td><td>{esc(c.cell)}</td><td>{esc(c.text)}</td><td>{esc(flags)}</td>"
                 f"<td>{joins}</td><td>{link}</td></tr>")
    p.append("</table><h2>Rules</h2><ul>")
    r = case.rules
    p += [f"<li>a line with a gain is a clone from {r.gain_min} cells, a loss-only line from {r.loss_min} cells "
          "(ISCN); the normal line is always a line; lines by size, the normal line last</li>",
          f"<li>standard: {r.counted} cells counted, {r.analysed} analysed; mosaicism suspected: extend to "
          f"{', '.join(map(str, r.extend_to))} cells</li>",
          f"<li>an unreviewed cell with a flag among {', '.join(r.uncounted_flags)} is not counted</li></ul>"]
    p.append("<h2>Flag legend</h2><ul>")
    p += [f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in FLAG_CODES.items()]
    p.append("</ul><p class='src'>The count calls count chromosomes per class; they cannot see structural "
             "changes, so neither can the case karyotype.</p></body></html>\n")
    return "".join(p)


def write_case_report(case: CaseKaryotype, out_dir: str | Path, thumbnails: bool = True,
                      extra: dict | None = None) -> dict[str, Path]:
    """``report.html`` and ``report.json`` of one case into ``out_dir`` (atomic writes)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"report_html": out / "report.html", "report_json": out / REPORT}
    atomic_write_text(paths["report_html"], case_html(case, out, thumbnails, (extra or {}).get("review")))
    data = case.to_dict()
    for c in data["cells"]:
        if c["folder"]:
            c["folder"] = _rel(Path(c["folder"]), out)
    data["best_karyograms"] = [_rel(c.karyogram, out) for c in best_cells(case)]
    data["flag_legend"] = dict(FLAG_CODES)
    atomic_write_json(paths["report_json"], {**data, **(extra or {})})
    return paths


def write_summary(cases: Sequence[CaseKaryotype], out_dir: str | Path) -> dict[str, Path]:
    """``cases.csv`` and ``cases.json``: one row a case (karyotype, counts, flags, folder)."""
    out = Path(out_dir)
    buf = io.StringIO()
    wr = csv.writer(buf, lineterminator="\n")
    wr.writerow(["case", "karyotype", "cells", "counted", "analysed", "not_counted", "non_clonal", "flags",
                 "folder"])
    for c in cases:
        n = c.counts()
        wr.writerow([c.case, c.text, n["given"], n["counted"], n["analysed"], n["uncounted"], n["non_clonal"],
                     ";".join(c.flag_codes), f"cases/{safe_name(c.case)}"])
    paths = {"cases_csv": out / "cases.csv", "cases_json": out / "cases.json"}
    atomic_write_text(paths["cases_csv"], buf.getvalue())
    atomic_write_json(paths["cases_json"], {"cases": [
        {"case": c.case, "karyotype": c.karyotype, "text": c.text, "flags": c.flag_codes, "counts": c.counts(),
         "folder": f"cases/{safe_name(c.case)}"} for c in cases]})
    return paths
