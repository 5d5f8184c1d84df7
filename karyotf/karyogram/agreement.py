"""Check the count call against a dataset's own karyotype list (``karyotypes.csv``), from ground-truth boxes.

``karyotypes.csv`` (CIL:54816 layout: ``image,chromosome_count,abnormality,kind``) lists the cells the dataset
calls abnormal; the abnormality column is the dataset's own text (``21``, ``X``, ``unknow``, ``XX/XY``, ...).
What "the call matches" means depends on the row:

``numerical`` (count is not 46, the text names one chromosome)
    the call's total equals the listed count and the named chromosome carries the change: an autosome ``n``
    has ``2 + (count - 46)`` copies; a gain of ``X`` / ``Y`` leaves three sex chromosomes with at least two of
    the named one (``XXY``, ``XXX`` / ``XYY``); a loss of ``X`` or ``Y`` leaves ``X``.
``numerical_unnamed`` (count is not 46; text ``unknow``, empty, or a mosaic such as ``XX/XY``)
    the call's total equals the listed count.
``numerical_46`` (a numerical abnormality listed with 46 chromosomes, e.g. a translocation trisomy)
    the call's total is 46: counting cannot see the abnormality, and must not invent one.
``structural``
    the call's total equals the listed count: a structural change does not change the count call.
``unlisted`` (recorded normal)
    ``46,XX`` or ``46,XY``.

The call itself never looks at the csv; this module only compares.
"""
from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .. import classes
from ..annotations import find_xml_files, read_voc
from ..errors import KaryogramError
from .call import NORMAL_SEX, Call, count_call

KINDS = ("numerical", "numerical_unnamed", "numerical_46", "structural", "unlisted")


@dataclass
class CellCheck:
    image: str
    call: Call
    kind: str
    expected: str
    agrees: bool
    listed: dict | None = None

    def to_dict(self) -> dict:
        return {"image": self.image, "kind": self.kind, "call": self.call.text, "expected": self.expected,
                "agrees": self.agrees, "flags": self.call.flag_codes,
                "listed": None if self.listed is None else dict(self.listed)}


@dataclass
class AgreementReport:
    src: Path
    cells: list[CellCheck] = field(default_factory=list)
    listed_missing: list[str] = field(default_factory=list)
    """csv rows whose image has no annotation in the dataset."""

    def by_kind(self) -> dict[str, tuple[int, int]]:
        """kind -> (cells, cells whose call agrees)."""
        out = {}
        for k in KINDS:
            cs = [c for c in self.cells if c.kind == k]
            if cs:
                out[k] = (len(cs), sum(c.agrees for c in cs))
        return out

    def disagreements(self, kind: str | None = None) -> list[CellCheck]:
        return [c for c in self.cells if not c.agrees and (kind is None or c.kind == kind)]

    def text(self) -> str:
        lines = [f"count call vs {self.src}/karyotypes.csv, from ground-truth boxes: {len(self.cells)} cells"]
        for k, (n, a) in self.by_kind().items():
            lines.append(f"  {k:18s} {a:4d} / {n:<4d} agree")
        for k in KINDS:
            bad = self.disagreements(k)
            if not bad:
                continue
            if k == "unlisted":
                calls = Counter(_unlisted_pattern(c.call) for c in bad)
                lines.append(f"  unlisted cells not 46,XX/46,XY ({len(bad)}): "
                             + ", ".join(f"{p} x{n}" for p, n in calls.most_common()))
                lines.append("    " + " ".join(f"{c.image}={c.call.text}" for c in bad))
            else:
                for c in bad:
                    lines.append(f"  {k} {c.image}: call {c.call.text}, expected {c.expected} "
                                 f"(listed {c.listed.get('chromosome_count')},{c.listed.get('abnormality')!r})")
        unflagged = [c for c in self.cells if not c.call.is_normal and not c.call.flags]
        lines.append(f"  abnormal calls without a review flag: {len(unflagged)}")
        if self.listed_missing:
            lines.append(f"  csv rows without an annotation: {', '.join(self.listed_missing)}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"src": str(self.src), "by_kind": {k: {"cells": n, "agree": a} for k, (n, a) in self.by_kind().items()},
                "disagreements": [c.to_dict() for c in self.disagreements()],
                "listed_missing": self.listed_missing}


def _unlisted_pattern(call: Call) -> str:
    if call.total == 45 and call.sex in NORMAL_SEX:
        return "45,<sex>,-autosome"
    return call.text


def read_karyotypes(path: str | Path) -> dict[str, dict]:
    """``karyotypes.csv`` rows by image stem."""
    path = Path(path)
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise KaryogramError(f"{path}: cannot read ({exc.strerror}) (fix: check the path)") from None
    need = {"image", "chromosome_count", "abnormality", "kind"}
    if rows and not need <= set(rows[0]):
        raise KaryogramError(f"{path}: columns {sorted(rows[0])} (fix: need {sorted(need)})")
    return {Path(r["image"].strip()).stem: r for r in rows}


def expectation(row: dict | None) -> tuple[str, str, "callable"]:
    """(kind, expected text, predicate on a Call) for a csv row (None: an unlisted cell)."""
    if row is None:
        return "unlisted", "46,XX or 46,XY", lambda c: c.is_normal
    count = int(row["chromosome_count"])
    text = (row.get("abnormality") or "").strip()
    kind = (row.get("kind") or "").strip().lower()
    if kind == "structural":
        return "structural", f"total {count}", lambda c: c.total == count
    if count == 46:
        return "numerical_46", "total 46", lambda c: c.total == 46
    try:
        name = classes.canonical(text)
    except classes.UnknownClassError:
        return "numerical_unnamed", f"total {count}", lambda c: c.total == count
    delta = count - 46
    if name in classes.AUTOSOMES:
        sign = "+" if delta > 0 else "-"
        return ("numerical", f"{count},<sex>,{sign}{name}" + (f" x{abs(delta)}" if abs(delta) > 1 else ""),
                lambda c: c.total == count and c.counts[name] - 2 == delta)
    if delta > 0:
        return ("numerical", f"{count} with {2 + delta} sex chromosomes, >= 2 {name}",
                lambda c: c.total == count and len(c.sex) == 2 + delta and c.sex.count(name) >= 2)
    if delta == -1:  # 45,X: an X lost (from XX) or the Y lost (from XY) both leave a single X
        return "numerical", f"{count},X (loss of {name})", lambda c: c.total == count and c.sex == "X"
    return ("numerical", f"{count} with {2 + delta} sex chromosomes",
            lambda c: c.total == count and len(c.sex.strip("?")) == 2 + delta)


def check_dataset(src: str | Path, karyotypes: str | Path | None = None) -> AgreementReport:
    """Count-call every annotated cell of ``src`` from its ground-truth boxes and compare with ``karyotypes.csv``
    (default ``src/karyotypes.csv``).  Reads XML only (no images)."""
    src = Path(src)
    csv_path = Path(karyotypes) if karyotypes else src / "karyotypes.csv"
    listed = read_karyotypes(csv_path)
    report = AgreementReport(src=src)
    seen = set()
    for xml in find_xml_files(src):
        ann = read_voc(xml, check_image=False)
        stem = xml.stem
        seen.add(stem)
        row = listed.get(stem)
        call = count_call(ann.boxes)
        kind, expected, ok = expectation(row)
        report.cells.append(CellCheck(stem, call, kind, expected, bool(ok(call)), row))
    report.listed_missing = sorted(set(listed) - seen)
    return report
