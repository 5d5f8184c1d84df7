"""Review by case: the review folder's cells grouped into cases, each case's karyotype as the cells stand now, and
accepting a case as a whole.

Cells are grouped by the case pattern of ``karyotf records`` / ``karyotf case`` (:func:`karyotf.records.case_of` on
the cell's image name).  A case's karyotype (:func:`karyotf.case.case_karyotype`) is computed afresh on every
request from each cell's current call: its reviewed report once the cell is accepted, else the model's; so it
changes as cells are corrected.  Accepting a case writes, under the review root::

    cases/<case>/reviewed/report.json   the case report (karyotf.case) with a ``review`` section: reviewer, UTC
                                        time, comment, revision, the karyotype accepted, each cell's version and
                                        whether it was reviewed
    cases/<case>/reviewed/report.html   the same for people

``report.json`` is written last and its hash is the case's version: a stale accept (another tab accepted the case
since this one loaded it) fails with :class:`~karyotf.review.store.ReviewConflict`.  A case accepted earlier whose
karyotype or cells have changed since reads ``changed since accepted``.
"""
from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

from .. import defaults as D
from ..case import Rules, safe_name, case_karyotype, read_cell, write_case_report
from ..errors import ReviewError
from ..records import case_of
from .store import MAX_COMMENT, ReviewConflict, ReviewFolder, UnknownCell, utc_now

CASES = "cases"
REVIEWED = "reviewed"


class CaseReview:
    """The cases of a :class:`ReviewFolder` and the case-level review operations (the web app's ``/api/cases``)."""

    def __init__(self, folder: ReviewFolder, case_pattern: str = D.CASE_PATTERN, rules=None):
        self.folder = folder
        self.case_pattern = case_pattern
        self.rules = rules or Rules()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------------ reading
    def _cases(self) -> dict[str, list]:
        """case id -> [(review cell id, CellCall)], from the cells as they stand now."""
        out: dict[str, list] = {}
        for cell in self.folder.cells(refresh=True).values():
            cc = read_cell(cell.folder)
            cc.case = case_of(cc.cell, self.case_pattern)
            out.setdefault(cc.case, []).append((cell.id, cc))
        return dict(sorted(out.items()))

    def _dir(self, case_id: str) -> Path:
        return self.folder.root / CASES / safe_name(case_id) / REVIEWED

    def version(self, case_id: str) -> str:
        try:
            return hashlib.sha256((self._dir(case_id) / "report.json").read_bytes()).hexdigest()[:16]
        except FileNotFoundError:
            return "unreviewed"

    def _accepted(self, case_id: str) -> dict | None:
        p = self._dir(case_id) / "report.json"
        if not p.is_file():
            return None
        try:
            rep = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ReviewError(f"{p}: unreadable ({exc}) (fix: accept the case again)") from None
        return rep.get("review") if isinstance(rep, dict) and isinstance(rep.get("review"), dict) else None

    def _state(self, case_id: str, members: list) -> tuple:
        case = case_karyotype([cc for _, cc in members], case_id, self.rules)
        versions = {cid: self.folder.version(self.folder.cell(cid)) for cid, _ in members}
        review = self._accepted(case_id)
        if review is None:
            status = "to review"
        elif (review.get("karyotype") != case.karyotype
              or {c: v.get("version") for c, v in (review.get("cells") or {}).items()} != versions):
            status = "changed since accepted"
        else:
            status = "accepted"
        return case, versions, review, status

    def list(self) -> list[dict]:
        out = []
        for case_id, members in self._cases().items():
            case, _, review, status = self._state(case_id, members)
            out.append({"id": case_id, "karyotype": case.karyotype, "text": case.text, "cells": len(members),
                        "reviewed_cells": sum(cc.reviewed for _, cc in members), "flags": case.flag_codes,
                        "status": status, "reviewer": (review or {}).get("reviewer"),
                        "reviewed_at": (review or {}).get("reviewed_at")})
        return out

    def _members(self, case_id: str) -> list:
        cases = self._cases()
        if case_id not in cases:
            raise UnknownCell(f"no case {case_id!r} in {self.folder.root} (fix: pick one from the list; "
                              f"{len(cases)} case(s) found)")
        return cases[case_id]

    def load(self, case_id: str) -> dict:
        """The case as it stands: karyotype, lines, flags, counts, each cell (review id, call, status, line), the
        accepted review (if any), the status and the version to send back on accept."""
        members = self._members(case_id)
        case, versions, review, status = self._state(case_id, members)
        d = case.to_dict()
        ids = {id(cc): cid for cid, cc in members}
        for row, c in zip(d["cells"], case.cells):
            row["review_id"] = ids[id(c)]
            row["status"] = "reviewed" if c.reviewed else "to review"
        return {**d, "id": case_id, "status": status, "review": review, "version": self.version(case_id)}

    # ------------------------------------------------------------------------------------------ writing
    def accept(self, case_id: str, payload: dict, reviewer: str | None = None) -> dict:
        """Accept the case as a whole (see the module doc); ``payload``: ``{"version", "comment"}``."""
        if not isinstance(payload, dict):
            raise ReviewError("the request body must be a JSON object {version, comment}")
        comment = payload.get("comment") or ""
        if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
            raise ReviewError(f"'comment' must be text of at most {MAX_COMMENT} characters")
        if "version" not in payload:
            raise ReviewError("'version' is missing (fix: send back the version the case was loaded with)")
        with self._lock:
            members = self._members(case_id)
            current = self.version(case_id)
            if payload["version"] != current:
                prev = self._accepted(case_id) or {}
                raise ReviewConflict(f"case {case_id} was accepted elsewhere since this page loaded it"
                                     + (f" (by {prev.get('reviewer')} at {prev.get('reviewed_at')})" if prev else "")
                                     + " (fix: reload the case and check it again)")
            case, versions, prev, _ = self._state(case_id, members)
            ids = {id(cc): cid for cid, cc in members}
            review = {
                "reviewer": reviewer or self.folder.reviewer, "reviewed_at": utc_now(),
                "revision": int((prev or {}).get("revision", 0)) + 1, "comment": comment,
                "karyotype": case.karyotype, "text": case.text, "flags": case.flag_codes,
                "cells": {ids[id(c)]: {"cell": c.cell, "version": versions[ids[id(c)]], "reviewed": c.reviewed,
                                       "call": c.text} for c in case.cells},
                "unreviewed_cells": [c.cell for c in case.cells if not c.reviewed],
            }
            out = self._dir(case_id)
            out.mkdir(parents=True, exist_ok=True)
            write_case_report(case, out, extra={"review": review})
        return self.load(case_id)
