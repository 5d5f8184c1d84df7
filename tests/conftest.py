"""Shared test fixtures.

Tests may read ``../shared`` (CI keeps a copy beside its clone); the product never does.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KARYOTF_SHARED", REPO.parent / "shared"))
CIL = SHARED / "data" / "cil54816"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def cil_dir() -> Path:
    """The 600-cell CIL:54816 sample in ../shared (images/ + annotations/ + karyotypes.csv)."""
    if not (CIL / "annotations").is_dir():
        pytest.skip(f"{CIL} not found (set KARYOTF_SHARED)")
    return CIL


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The 32-cell sample shipped inside the package."""
    from karyotf.paths import SAMPLE_DIR

    return SAMPLE_DIR


def copy_cells(src: Path, dst: Path, n: int = 4) -> Path:
    """Copy the first ``n`` cells of ``src`` (images/ + annotations/) into ``dst`` in the same layout."""
    (dst / "images").mkdir(parents=True)
    (dst / "annotations").mkdir()
    for xml in sorted((src / "annotations").glob("*.xml"))[:n]:
        shutil.copy(xml, dst / "annotations" / xml.name)
        shutil.copy(src / "images" / (xml.stem + ".jpg"), dst / "images" / (xml.stem + ".jpg"))
    return dst


@pytest.fixture
def few_cells(tmp_path, sample_dir) -> Path:
    """A writable copy of 4 sample cells in the images/ + annotations/ layout."""
    return copy_cells(sample_dir, tmp_path / "few")
