"""The karyogram's defaults, in a module light enough for the CLI to import at start-up (no numpy, no PIL)."""
from __future__ import annotations

from .. import classes
from ..defaults import LONGEST, LOW_SCORE, MIN_SCORE, NMS_IOU  # noqa: F401  (user-changeable: karyotf.defaults)

ROW_PRESETS: dict[str, tuple[tuple[str, ...], ...]] = {
    # the usual printed karyogram: A+B | C+X | D+E | F+G+Y
    "standard": (("1", "2", "3", "4", "5"),
                 ("6", "7", "8", "9", "10", "11", "12", "X"),
                 ("13", "14", "15", "16", "17", "18"),
                 ("19", "20", "21", "22", "Y")),
    # one Denver group a row: 1-3 | 4-5 | 6-12, X | 13-15 | 16-18 | 19-20 | 21-22, Y
    "denver": tuple(classes.DENVER_GROUPS[g] for g in "ABCDEFG"),
}
DEFAULT_ROWS = "standard"
MAX_PER_CLASS = 6
"""At most this many chromosomes of one class are drawn (the rest are counted in the picture and reported)."""


CALL_MIN_TOTAL = 44
CALL_MAX_TOTAL = 49
"""A count call (an ISCN string) is written only for a cell with CALL_MIN_TOTAL..CALL_MAX_TOTAL chromosomes and at
least one X or Y.  The bounds span the constitutional counts a cytogenetics lab meets (44 in a double monosomy or a
balanced Robertsonian homozygote, 45,X, trisomies at 47, 48,XXXY and double trisomies, 49,XXXXY) and every cell of
CIL:54816 (44..47).  Outside them a count mostly means chromosomes missed or found twice, so the cell reads
``no call: N chromosomes found`` with its per-class counts and flags, never an ISCN string."""

LOW_MEAN_SCORE = 0.7
"""Mean detection score below which the whole call is flagged as low-confidence."""
OVERLAP_IOU = 0.5
"""Two boxes overlapping at least this much (IoU) are flagged: one chromosome counted twice, or a tangle."""
