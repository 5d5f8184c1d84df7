"""Where karyotf's built-in data lives, and the default locations of the pipeline's outputs."""
from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = PACKAGE_DIR / "data"
SAMPLE_DIR = DATA_DIR / "sample"
"""32 CIL:54816 cells shipped with karyotf (CC BY 3.0, see its README): the default input of every command."""
SAMPLE_KARYOTYPES = SAMPLE_DIR / "karyotypes.csv"
IDEOGRAM_DIR = DATA_DIR / "ideogram"
SEPARATE_DIR = DATA_DIR / "separate"
"""The separation U-Net shipped with karyotf (``karyotf separate export`` of a run on CIL:54816's train split;
``bench/results/separate.md``): what ``karyotf karyogram --separate`` uses when given no folder."""

_REPO_PIPELINES = PACKAGE_DIR.parent / "pipelines"
TEMPLATES_DIR = _REPO_PIPELINES if _REPO_PIPELINES.is_dir() else PACKAGE_DIR / "templates"
"""pipeline.config templates: the repo's top-level ``pipelines/`` (the Docker image copies it there too)."""

from .defaults import EXPORTED_DIR as DEFAULT_EXPORTED  # noqa: E402  (the defaults table holds their meaning)
from .defaults import RECORDS_DIR as DEFAULT_RECORDS  # noqa: E402
from .defaults import RUNS_DIR as DEFAULT_RUNS  # noqa: E402
