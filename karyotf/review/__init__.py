"""Review in the browser: a cytogeneticist corrects a karyogram, and the corrections become training data.

``karyotf review DIR`` serves a local web app (:mod:`.server`, the standard library's HTTP server; the page is
plain JS/CSS in ``static/``, no build step, nothing from a CDN) over the cells ``karyotf karyogram`` wrote
into DIR.  :mod:`.store` owns the folder: which cells there are, their boxes and count call (always
:func:`karyotf.karyogram.call.count_call`), and what accepting a review writes (VOC XML beside the image, a
``reviewed/`` karyogram and report, the model output untouched).  :func:`export_voc` gathers reviewed cells
into a VOC dataset for ``karyotf records``.
"""
from __future__ import annotations

from .server import ReviewServer, make_server, serve
from .store import ExportResult, ReviewConflict, ReviewFolder, UnknownCell, export_voc

__all__ = ["ExportResult", "ReviewConflict", "ReviewFolder", "ReviewServer", "UnknownCell", "export_voc",
           "make_server", "serve"]
