"""Build notebooks/karyotf_colab.ipynb from the cells below (run: python notebooks/build_notebook.py).

The notebook is generated so that it stays reviewable as plain Python and reproducible; edit this file, not the
.ipynb.  Every pipeline step runs the `karyotf` command line in a subprocess (check=True: a failing step fails
the cell), so the notebook kernel itself needs no TensorFlow: on Colab, whose Python is not the 3.11 that
TensorFlow 2.15 needs, the install cell builds a Python 3.11 venv with the GPU stack and the cells drive it.
tests/test_notebook.py executes the result headless with tiny parameters.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
OUT = HERE / "karyotf_colab.ipynb"

INTRO = """\
# karyotf on Colab: chromosome detection, metrics, karyogram

From labelled G-banded metaphase images (Pascal VOC, 24 classes) to a trained TF Object Detection API model, the
thesis-style metrics table, an exported model and a karyogram with its ISCN count call.

Run the cells top to bottom. **Runtime > Change runtime type > GPU** makes training use the GPU. Section 2
karyotypes a sample cell with the model pair shipped with karyotf, before any training. The parameters cell
below is all you need to change; the defaults train SSD MobileNet v2 on the 32 sample cells that ship with
karyotf. Optional: mount Google Drive (to keep data and models) and pull a dataset from Roboflow (needs an API key
in Colab's *Secrets* as `ROBOFLOW_API_KEY`); both are skipped outside Colab or without a key.

> A short run gives a demo-length model, not a diagnostic one: it shows that the pipeline works end to end. Its
> calls must not be used for any clinical or research decision.
"""

PARAMETERS = """\
# Parameters (papermill: this cell is tagged `parameters`)
DATA = ""               # dataset: VOC images/ + annotations/ (or side by side); "" = karyotf's built-in 32-cell sample
MAX_CELLS = 0           # use only the first N cells of DATA (0 = all)
MODEL = "ssd"           # ssd | faster_rcnn | rfcn
STEPS = 300             # training steps (the thesis trained for tens of thousands)
IMAGE_SIZE = 320        # model input size, pixels
BATCH = 8
FINE_TUNE = "coco"      # "coco": start from the OD API model zoo's COCO checkpoint for MODEL (downloaded once);
                        # "" = from scratch (no network needed); or a checkpoint prefix such as ".../ckpt-5"
LEARNING_RATE = 0       # peak of the cosine schedule; 0 = karyotf's default: 0.0002 (the thesis's) when fine-tuning,
                        # 0.04 for ssd from scratch
AUGMENT = "hflip,vflip,rot90"  # OD API augmentation during training ("" = none)
CLASSIFIER_EPOCHS = 40  # the detector finds ("chromosome", class-agnostic), a chromosome classifier trained this
                        # many epochs names; 0 = a 24-class detector finds and names alone
SCORE_THRESHOLD = 0.3   # for precision / recall / F1 and the karyogram
WORK = "karyotf_work"   # outputs: records/, runs/, exported/, eval/, karyogram/
CELL = ""               # image id for the karyogram ("" = the first test-split cell)
USE_DRIVE = False       # Colab: mount Google Drive at /content/drive (then use /content/drive/MyDrive/... paths)
ROBOFLOW_WORKSPACE = "" # Roboflow pull: workspace, project and version; needs ROBOFLOW_API_KEY
ROBOFLOW_PROJECT = ""
ROBOFLOW_VERSION = 1
KARYOTF_REPO = "https://github.com/karyotf/karyotf.git"  # where the Colab install cell clones karyotf from
"""

SETUP = """\
import os, shutil, subprocess, sys
from pathlib import Path
from IPython.display import Image, Markdown, display

try:
    import google.colab  # noqa: F401
    IN_COLAB = True
except ImportError:
    IN_COLAB = False
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
WORK = Path(WORK).resolve()
WORK.mkdir(parents=True, exist_ok=True)
HAS_GPU = shutil.which("nvidia-smi") is not None and subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0
print(f"Colab: {IN_COLAB}   GPU: {HAS_GPU}   outputs in {WORK}")


def karyotf(*args):
    \"\"\"Run one `karyotf` command, show its output as it comes, fail the cell if it fails.\"\"\"
    cmd = [*KARYOTF, *map(str, args)]
    print("$ karyotf " + " ".join(map(str, args)), flush=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    for line in proc.stdout:
        print(line, end="", flush=True)
    if proc.wait():
        raise RuntimeError(f"karyotf {args[0]} failed (exit {proc.returncode}); see its output above")
"""

INSTALL_MD = """\
## 1. Install

On Colab: clone karyotf and install its pinned stack into a Python 3.11 venv (TensorFlow 2.15 has no wheel for
Colab's newer Python), with the GPU build of TensorFlow (`tensorflow[and-cuda]`) in place of the CPU wheel the
local venv uses; the same recipe as the Dockerfile. Elsewhere the kernel's own Python must already have karyotf
(`make install`, then pick the `.venv` kernel).
"""

INSTALL = """\
if IN_COLAB:
    src, venv = Path("/content/karyotf"), Path("/content/karyotf-venv")
    if not (venv / "bin" / "karyotf").exists():
        def sh(cmd):
            print("$", cmd, flush=True)
            subprocess.run(cmd, shell=True, check=True)
        if not src.exists():
            sh(f"git clone --depth 1 {KARYOTF_REPO} {src}")
        sh("pip install -q uv && uv venv --python 3.11 --seed " + str(venv))
        pip = f"{venv}/bin/python -m pip install -q --disable-pip-version-check"
        tf_version = next(l.split("==")[1] for l in (src / "constraints.txt").read_text().splitlines()
                          if l.startswith("tensorflow-cpu=="))
        sh(f"cd {src} && sed '/^tensorflow-cpu\\\\b/d' requirements.txt > /tmp/requirements-gpu.txt && "
           f"{pip} -c constraints.txt 'tensorflow[and-cuda]=={tf_version}' -r /tmp/requirements-gpu.txt && "
           f"{pip} --no-deps -c constraints.txt -r requirements-nodeps.txt && "
           f"{pip} --no-deps --no-build-isolation -e .")
    PYTHON = str(venv / "bin" / "python")
else:
    import importlib.util
    if importlib.util.find_spec("karyotf") is None:
        raise RuntimeError("karyotf is not installed in this kernel's Python: run `make install` and choose the "
                           ".venv kernel (or `pip install -e .` into this environment)")
    PYTHON = sys.executable
KARYOTF = [PYTHON, "-m", "karyotf"]
karyotf("--version")
"""

DRIVE = """\
# Optional: Google Drive, to keep data and models between sessions (skipped outside Colab or when USE_DRIVE is False)
if IN_COLAB and USE_DRIVE:
    from google.colab import drive
    drive.mount("/content/drive")
else:
    print("Google Drive: skipped" + ("" if IN_COLAB else " (not on Colab)"))
"""

ROBOFLOW = """\
# Optional: pull a dataset version from Roboflow (skipped without a workspace/project or an API key)
key = os.environ.get("ROBOFLOW_API_KEY", "")
if IN_COLAB and not key:
    try:
        from google.colab import userdata
        key = userdata.get("ROBOFLOW_API_KEY") or ""
    except Exception:  # no such secret, or access not granted
        key = ""
if ROBOFLOW_WORKSPACE and ROBOFLOW_PROJECT and key:
    os.environ["ROBOFLOW_API_KEY"] = key
    pulled = WORK / "roboflow"
    karyotf("roboflow", "pull", "--workspace", ROBOFLOW_WORKSPACE, "--project", ROBOFLOW_PROJECT,
            "--version", ROBOFLOW_VERSION, "--format", "voc", "--out", pulled / "export", "--overwrite",
            "--import-to", pulled / "voc")
    DATA = str(pulled / "voc")
else:
    print("Roboflow: skipped (" + ("no API key" if not key else "no workspace/project set") + ")")
"""

DEFAULT_MD = """\
## 2. Karyotype a cell with the model pair shipped with karyotf

karyotf installs with a default pair (a class-agnostic SSD that finds chromosomes and the classifier that names
them, trained on CIL:54816 cells of other cases than the built-in sample's; its model card: `karyotf models --card`).
One cell, with no path to a model: the karyogram and its ISCN count call with the review flags. Train your own
below.
"""

DEFAULT_CELL = """\
SAMPLE = Path(subprocess.run([PYTHON, "-c", "import karyotf.paths as p; print(p.SAMPLE_DIR)"],
                             capture_output=True, text=True, check=True).stdout.strip())
karyotf("models")
karyotf("karyogram", SAMPLE / "images" / "1055911.jpg", "--out", WORK / "default-karyogram")
display(Image(filename=str(WORK / "default-karyogram" / "karyogram.png"), width=900))
"""

DATA_MD = """\
## 3. Data and records

TFRecords split by case (all cells of a patient in one split), the label map and the class distribution.
"""

DATA_CELL = """\
if not DATA:  # the built-in sample, wherever karyotf is installed
    DATA = subprocess.run([PYTHON, "-c", "import karyotf.paths as p; print(p.SAMPLE_DIR)"],
                          capture_output=True, text=True, check=True).stdout.strip()
data = Path(DATA)
if MAX_CELLS:
    # a small copy: the first MAX_CELLS annotated cells
    subset = WORK / f"data-{MAX_CELLS}"
    shutil.rmtree(subset, ignore_errors=True)
    xml_dir = data / "annotations" if (data / "annotations").is_dir() else data
    img_dir = data / "images" if (data / "images").is_dir() else data
    (subset / "annotations").mkdir(parents=True)
    (subset / "images").mkdir()
    for xml in sorted(xml_dir.glob("*.xml"))[:MAX_CELLS]:
        shutil.copy(xml, subset / "annotations")
        for image in img_dir.glob(xml.stem + ".*"):
            if image.suffix.lower() != ".xml":
                shutil.copy(image, subset / "images")
    data = subset
print(f"dataset: {data}  ({len(list(data.rglob('*.xml')))} annotated cells)")
RECORDS = WORK / "records"
karyotf("records", data, "--out", RECORDS)
display(Image(filename=str(RECORDS / "class_distribution.png"), width=900))
"""

TRAIN_MD = """\
## 4. Config and training

`karyotf config` fills the model's pipeline.config template (classes, record paths, steps, batch, image size,
augmentation) and validates it with the OD API; with `FINE_TUNE = "coco"` it first fetches the OD API model zoo
archive that fits `MODEL` (cached in `~/.cache/karyotf`, or `$KARYOTF_CACHE`) and restores its backbone, as the
thesis did. `karyotf train` prints the device it runs on, trains for exactly `STEPS` steps, writes checkpoints and
TensorBoard events, and resumes when run again.

With `CLASSIFIER_EPOCHS` above 0 the detector is class-agnostic (`--agnostic`: it finds "chromosome") and a
chromosome classifier (`karyotf classifier train`) names each chromosome from its crop and its cell; the count call
then weighs the whole cell against a karyotype prior. Detectors find far better than they name, so this is the
default.
"""

TRAIN = """\
MODEL_DIR = WORK / "runs" / MODEL
options = ["--steps", STEPS, "--batch", BATCH, "--image-size", IMAGE_SIZE, "--augment", AUGMENT or "none"]
if LEARNING_RATE:
    options += ["--learning-rate", LEARNING_RATE]
if FINE_TUNE:
    options += ["--fine-tune", FINE_TUNE]
if CLASSIFIER_EPOCHS:
    options += ["--agnostic"]  # one class, "chromosome": the classifier below names what it finds
karyotf("config", MODEL, "--records", RECORDS, "--out", MODEL_DIR, *options)
print("training on the", "GPU" if HAS_GPU else "CPU (slow: switch the runtime to GPU for real runs)")
karyotf("train", MODEL, "--model-dir", MODEL_DIR, "--steps", STEPS)
CLASSIFIER = []  # the karyogram's and eval's --classifier option
if CLASSIFIER_EPOCHS:
    karyotf("classifier", "train", RECORDS, "--out", WORK / "runs" / "classifier", "--epochs", CLASSIFIER_EPOCHS)
    karyotf("classifier", "export", WORK / "runs" / "classifier", "--out", WORK / "exported" / "classifier")
    CLASSIFIER = ["--classifier", WORK / "exported" / "classifier"]
"""

EXPORT_MD = """\
## 5. Export and evaluation

The exported model (SavedModel + frozen graph) is what the Detector, `karyotf eval` and `karyotf karyogram` load.
The table has the shape of the thesis's Table 5.1 (precision, recall and F1 at IoU 0.5 and the score threshold)
plus the OD API's COCO mAP@0.5 and mAP@[.5:.95], on the test split.
"""

EXPORT = """\
EXPORTED = WORK / "exported" / MODEL
karyotf("export", MODEL, "--model-dir", MODEL_DIR, "--out", EXPORTED)
EVAL = WORK / "eval"
karyotf("eval", MODEL, "--model-dir", EXPORTED, "--records", RECORDS, "--split", "test",
        "--score-threshold", SCORE_THRESHOLD, "--out", EVAL, *CLASSIFIER)
display(Markdown((EVAL / "table.md").read_text()))
for png in sorted(EVAL.glob("*.png")):
    display(Image(filename=str(png), width=700))
"""

KARYO_MD = """\
## 6. Karyogram

One test-split cell: the karyogram and the ISCN count call from the trained model, and from the cell's own
annotation for comparison.
"""

KARYO = """\
import json
manifest = json.loads((RECORDS / "manifest.json").read_text())
test_cells = sorted(i for i, v in manifest["images"].items() if v["split"] == "test")
cell = CELL or (test_cells or sorted(manifest["images"]))[0]
xml = next(p for p in data.rglob(cell + ".xml"))
image = next(p for p in data.rglob(cell + ".*") if p.suffix.lower() != ".xml")
KARYO = WORK / "karyogram" / cell
karyotf("karyogram", image, "--model", EXPORTED, "--min-score", SCORE_THRESHOLD, "--out", KARYO / "model",
        *CLASSIFIER)
karyotf("karyogram", image, "--annotations", xml, "--out", KARYO / "annotation")
for source in ("model", "annotation"):
    pictures = sorted((KARYO / source).rglob("karyogram.png"))
    print(f"from the {source}:")
    display(Image(filename=str(pictures[0]), width=900))
"""

OUTRO = """\
## Where everything is

`WORK/records` (TFRecords), `WORK/runs/MODEL` (checkpoints; `tensorboard --logdir WORK/runs`), `WORK/exported/MODEL`,
`WORK/eval` and `WORK/karyogram`. With Drive mounted, point `WORK` at `/content/drive/MyDrive/...` to keep them.
"""

SUMMARY = """\
for path in sorted(p for p in WORK.iterdir()):
    print(path)
"""


def build() -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["accelerator"] = "GPU"
    nb.metadata["colab"] = {"provenance": [], "gpuType": "T4"}
    params = new_code_cell(PARAMETERS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [new_markdown_cell(INTRO), params, new_code_cell(SETUP), new_markdown_cell(INSTALL_MD),
                new_code_cell(INSTALL), new_code_cell(DRIVE), new_code_cell(ROBOFLOW), new_markdown_cell(DEFAULT_MD),
                new_code_cell(DEFAULT_CELL), new_markdown_cell(DATA_MD),
                new_code_cell(DATA_CELL), new_markdown_cell(TRAIN_MD), new_code_cell(TRAIN),
                new_markdown_cell(EXPORT_MD), new_code_cell(EXPORT), new_markdown_cell(KARYO_MD),
                new_code_cell(KARYO), new_markdown_cell(OUTRO), new_code_cell(SUMMARY)]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    nbformat.validate(nb)
    return nb


def main() -> int:
    nbformat.write(build(), OUT)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
