"""The Colab notebook: generated from notebooks/build_notebook.py, and executed headless with tiny parameters."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "karyotf_colab.ipynb"


def _builder():
    spec = importlib.util.spec_from_file_location("build_notebook", REPO / "notebooks" / "build_notebook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _params_index(nb) -> int:
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell must be tagged `parameters`"
    return tagged[0]


def test_committed_notebook_is_what_the_builder_makes():
    built = _builder().build()
    committed = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(committed)
    assert [(c.cell_type, c.source) for c in committed.cells] == [(c.cell_type, c.source) for c in built.cells], \
        "notebooks/karyotf_colab.ipynb is stale: run `python notebooks/build_notebook.py`"
    assert not any(c.get("outputs") for c in committed.cells if c.cell_type == "code"), "commit it without outputs"


def test_parameters_cell_comes_first_and_names_data_model_steps():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    i = _params_index(nb)
    assert i == min(k for k, c in enumerate(nb.cells) if c.cell_type == "code"), "parameters must be the first code cell"
    names = {}
    exec(nb.cells[i].source, {}, names)  # plain assignments only
    assert {"DATA", "MODEL", "STEPS", "IMAGE_SIZE", "WORK", "USE_DRIVE", "ROBOFLOW_WORKSPACE"} <= set(names)
    assert names["MODEL"] == "ssd" and names["USE_DRIVE"] is False and names["ROBOFLOW_WORKSPACE"] == ""
    assert names["FINE_TUNE"] == "coco" and names["LEARNING_RATE"] == 0  # the thesis's start and its 0.0002


def test_every_code_cell_compiles():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            compile(cell.source, f"<{cell.get('id')}>", "exec")


TINY = """\
DATA = ""
MAX_CELLS = 4
MODEL = "ssd"
STEPS = 2
IMAGE_SIZE = 128
BATCH = 2
FINE_TUNE = ""
LEARNING_RATE = 0.01
AUGMENT = "hflip"
CLASSIFIER_EPOCHS = 1
SCORE_THRESHOLD = 0.0
WORK = {work!r}
CELL = ""
USE_DRIVE = True
ROBOFLOW_WORKSPACE = "someone"
ROBOFLOW_PROJECT = "chromosomes"
ROBOFLOW_VERSION = 1
KARYOTF_REPO = "file:///nonexistent"
"""


@pytest.mark.slow
def test_notebook_runs_headless_with_tiny_parameters(tmp_path, monkeypatch):
    """All cells run without error on 4 sample cells, 2 steps at 128 px; Drive and Roboflow skip themselves."""
    from nbclient import NotebookClient

    monkeypatch.delenv("ROBOFLOW_API_KEY", raising=False)
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the kernel imports this checkout's karyotf
    nb = nbformat.read(NOTEBOOK, as_version=4)
    work = tmp_path / "work"
    nb.cells[_params_index(nb)].source = TINY.format(work=str(work))
    # the kernel: this interpreter (the venv's), whatever kernels the machine has registered
    kernel_dir = tmp_path / "kernels" / "karyotf-test"
    kernel_dir.mkdir(parents=True)
    (kernel_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "karyotf test", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    client = NotebookClient(nb, timeout=600, kernel_name="karyotf-test", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError naming the failing cell

    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                     if o.get("output_type") == "stream")
    assert "Google Drive: skipped (not on Colab)" in text
    assert "Roboflow: skipped (no API key)" in text
    from karyotf import __version__

    assert f"karyotf {__version__}" in text, "the install cell did not reach karyotf"
    # the outputs the notebook promises, on disk and inline
    assert list((work / "records").glob("train.record-*"))
    assert (work / "runs" / "ssd" / "pipeline.config").is_file()
    assert (work / "exported" / "ssd" / "saved_model" / "saved_model.pb").is_file()
    table = (work / "eval" / "table.md").read_text()
    assert "| Model |" in table and "F1" in table
    assert list((work / "karyogram").rglob("karyogram.png"))
    markdown = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "text/markdown" in o.get("data", {})]
    assert any("| Model |" in o["data"]["text/markdown"] for o in markdown), "metrics table not shown inline"
    default_cell, karyo_cell = [c for c in nb.cells if c.cell_type == "code" and 'karyotf("karyogram"' in c.source]
    assert sum("image/png" in o.get("data", {}) for o in karyo_cell.outputs) == 2, "karyograms not shown inline"
    # the model pair shipped with karyotf karyotypes a cell before any training
    assert (work / "default-karyogram" / "report.json").is_file()
    assert sum("image/png" in o.get("data", {}) for o in default_cell.outputs) == 1
    assert "* default" in text
