"""The karyogram's defaults, in a module light enough for the CLI to import at start-up (no numpy, no PIL)."""
from __future__ import annotations

from .. import classes

LONGEST = 160.0
"""Pixels the cell's longest chromosome is scaled to in the karyogram."""

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

MIN_SCORE = 0.3
"""Detections kept for a model's karyogram."""
NMS_IOU = 0.7
"""Class-agnostic NMS between detections of different classes (the OD API's NMS is per class)."""

LOW_SCORE = 0.5
"""A detection with a score below this is a low-confidence chromosome (outlined in the karyogram, flagged)."""
LOW_MEAN_SCORE = 0.7
"""Mean detection score below which the whole call is flagged as low-confidence."""
OVERLAP_IOU = 0.5
"""Two boxes overlapping at least this much (IoU) are flagged: one chromosome counted twice, or a tangle."""
