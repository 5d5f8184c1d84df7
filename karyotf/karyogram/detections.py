"""``detections.json``: what a karyogram counted and did not count, in one schema beside the type that writes it.

A cell folder written by ``karyotf karyogram`` (and a review's ``reviewed/``) holds one; :mod:`karyotf.review.store`
and :mod:`karyotf.case` read it through :class:`CellDetections`.  Version :data:`SCHEMA`::

    schema        SCHEMA (files written before it had a version are version 0: the same keys)
    image         the image as given (a path or "image"); image_file: the copy beside it (for the review), or null
    width, height the image's size in pixels
    source        where the boxes came from: {"kind": "annotations" | "model", "from", "model", "min_score", ...}
    count, call, text   how many boxes were counted, the ISCN call (or null), the call as text
    detections   one entry a counted box, in the karyogram's order: Box.to_dict() (class, label, box [xmin, ymin,
                  xmax, ymax] in pixels, score) and index, karyogram_box, extra_copy, low_confidence, classifier
                  (a classifier's top-1 and probabilities), foreground and empty_box (the box check)
    not_counted   {"suppressed": boxes the class-agnostic NMS removed (with kept_index, kept_class, iou),
                  "below_min_score": boxes under the floor, "left_out": boxes the joint labelling left out (with
                  p_chromosome)}
    rows          the karyogram's rows (class names), as :func:`karyotf.karyogram.layout.parse_rows` gives them
    params        longest, low_score, low_mean_score, overlap_iou, resolution: what a rebuild needs
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .. import classes
from ..annotations import Box
from ..io import atomic_write_json

SCHEMA = 1
"""Version of ``detections.json``'s schema."""
FILE = "detections.json"
NOT_COUNTED = ("suppressed", "below_min_score", "left_out")
"""The kinds of boxes a karyogram lists but does not count (``not_counted``'s keys)."""


@dataclass
class CellDetections:
    """One cell's ``detections.json`` (see the module doc)."""

    image: str
    width: int
    height: int
    source: dict = field(default_factory=dict)
    call: str | None = None
    text: str = ""
    detections: list[dict] = field(default_factory=list)
    not_counted: dict[str, list[dict]] = field(default_factory=dict)
    image_file: str | None = None
    rows: list[list[str]] | None = None
    params: dict = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.detections)

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, "image": self.image, "width": self.width, "height": self.height,
                "source": self.source, "count": self.count, "call": self.call, "text": self.text,
                "detections": self.detections, "not_counted": self.not_counted, "image_file": self.image_file,
                "rows": self.rows, "params": self.params}

    @classmethod
    def from_dict(cls, d: dict) -> "CellDetections":
        """The cell from a ``detections.json`` dict (version 0 or :data:`SCHEMA`); ValueError naming the key when
        the content does not fit."""
        if not isinstance(d, dict):
            raise ValueError("not a JSON object")
        if int(d.get("schema", 0)) > SCHEMA:
            raise ValueError(f"schema {d['schema']} is newer than this karyotf's ({SCHEMA}) (fix: update karyotf)")
        try:
            width, height = int(d["width"]), int(d["height"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"width / height: {exc!r}") from None
        dets = d.get("detections") or []
        groups = d.get("not_counted")
        if not isinstance(dets, list) or not all(isinstance(x, dict) for x in dets):
            raise ValueError("detections: not a list of objects")
        return cls(image=str(d.get("image", "")), width=width, height=height, source=d.get("source") or {},
                   call=d.get("call"), text=d.get("text") or "", detections=dets,
                   not_counted=groups if isinstance(groups, dict) else {}, image_file=d.get("image_file"),
                   rows=d.get("rows"), params=d.get("params") or {})

    @classmethod
    def read(cls, path: str | Path) -> "CellDetections":
        """:meth:`from_dict` of a file; OSError or ValueError (naming nothing: the caller names the file)."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def write(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.to_dict())

    def boxes(self) -> list[Box]:
        """The counted boxes (canonical class names, scores as written); ValueError for an entry that is not one."""
        try:
            return [Box(*map(float, d["box"]), classes.canonical(d["class"]), score=d.get("score"))
                    for d in self.detections]
        except (KeyError, TypeError, ValueError, classes.UnknownClassError) as exc:
            raise ValueError(f"detections: {exc!r}") from None

    def not_counted_entries(self) -> list[dict]:
        """Each listed box that was not counted as ``{class, box, score, why}`` (``why``: a key of
        :data:`NOT_COUNTED`); entries that are not boxes are passed over."""
        out = []
        for why, items in self.not_counted.items():
            for d in items if isinstance(items, list) else ():
                try:
                    box = [float(v) for v in d["box"]]
                    out.append({"class": classes.canonical(d["class"]), "box": box, "score": d.get("score"),
                                "why": why})
                except (KeyError, TypeError, ValueError, classes.UnknownClassError):
                    continue
        return out
