"""The model pair shipped inside the package, its model card and its sha256 check; ``karyotf models``.

karyotf installs with a default pair (``karyotf/data/models/default/``): a class-agnostic SSD MobileNet v2 that finds
chromosomes (with its P(chromosome | score) calibration fitted on val) and the chromosome classifier that names them,
with, when packed with one, the second look that asks each candidate box whether it is one whole chromosome
(:mod:`karyotf.classify.second_look`), all trained by ``bench/default_model.py`` on the CIL:54816 training cells
(CC BY 3.0, see the model card).  Every
command that needs a model takes it when no ``--model`` is given, and the Python API has one call for it::

    import karyotf
    call = karyotf.Karyotyper.default().call("metaphase.jpg")
    print(call.text, call.review_codes)

The folder holds ``detector/`` (frozen graph, label map, ``karyotf.json``), ``classifier/`` (SavedModel, label map,
``karyotf.json``), ``second_look/`` (SavedModel, ``karyotf.json``; optional), :data:`CARD` and :data:`MANIFEST`: every file's sha256 and size, checked each time the pair is loaded,
so a damaged or changed file is named in a :class:`ModelError` rather than giving wrong calls.

:func:`pack` writes such a folder from two export dirs (the recipe script calls it); :func:`list_models` is what
``karyotf models`` prints: the default pair and the local exports with the numbers their cards or evaluations hold.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ModelError
from .io import sha256_of
from .paths import DATA_DIR

DEFAULT_DIR = DATA_DIR / "models" / "default"
"""The shipped default pair (installed with the package: ``package_data`` takes ``data/**``)."""
MANIFEST = "manifest.json"
CARD = "MODEL_CARD.md"
DETECTOR, CLASSIFIER, SECOND_LOOK = "detector", "classifier", "second_look"
SCHEMA = 1
SHIPPED = {
    DETECTOR: ("frozen_inference_graph.pb", "label_map.pbtxt", "karyotf.json", "pipeline.config"),
    CLASSIFIER: ("saved_model", "label_map.pbtxt", "karyotf.json"),
    SECOND_LOOK: ("saved_model", "karyotf.json"),
}
"""What :func:`pack` copies of each export.  The detector ships as its frozen graph: measured on the SSD of the
default pair, 19 MB against 21 MB for its SavedModel, loaded in 11 s against 29 s on a loaded 2-core machine, the
same boxes and speed per image (the Detector runs either); its checkpoint and eval reports stay behind.  The
classifier ships as its SavedModel (1.8 MB), the second look as its SavedModel (0.9 MB)."""
MAX_MB = 25.0
"""The budget of the shipped pair in git (:func:`pack` refuses a larger one)."""


def read_manifest(directory: str | Path = DEFAULT_DIR) -> dict:
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise ModelError(f"{path}: no manifest: {directory} is not a packed model pair (fix: reinstall karyotf, or "
                         "pack one with `python bench/default_model.py`)")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable manifest ({exc}) (fix: reinstall karyotf)") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ModelError(f"{path}: the manifest has no 'files' table (fix: reinstall karyotf)")
    return manifest


def verify(directory: str | Path = DEFAULT_DIR) -> dict:
    """Check every file the manifest lists against its sha256 and size; return the manifest.  A file that is
    missing or does not match raises :class:`ModelError` naming it."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    for rel, entry in sorted(manifest["files"].items()):
        path = directory / rel
        if not path.is_file():
            raise ModelError(f"{path}: missing from the model pair (the manifest lists it) (fix: reinstall karyotf, "
                             "or restore the file with git)")
        size = path.stat().st_size
        got = sha256_of(path)
        if got != entry["sha256"] or size != entry["size"]:
            raise ModelError(f"{path}: sha256 {got[:16]}... ({size} bytes) does not match the manifest's "
                             f"{entry['sha256'][:16]}... ({entry['size']} bytes): the file is damaged or was "
                             "changed, and the model would give wrong calls (fix: reinstall karyotf, or restore the "
                             "file with `git checkout`)")
    return manifest


def default_pair(directory: str | Path | None = None, check: bool = True) -> tuple[Path, Path]:
    """``(detector export dir, classifier export dir)`` of the shipped pair, its files checked (``check``)."""
    parts = default_parts(directory, check=check)
    return parts[DETECTOR], parts[CLASSIFIER]


def default_parts(directory: str | Path | None = None, check: bool = True) -> dict[str, Path]:
    """The export dirs of the shipped models by part (:data:`DETECTOR`, :data:`CLASSIFIER` and, when the pair was
    packed with one, :data:`SECOND_LOOK`), every file checked against the manifest (``check``); ``directory``
    defaults to :data:`DEFAULT_DIR` (read at call time)."""
    directory = Path(DEFAULT_DIR if directory is None else directory)
    manifest = verify(directory) if check else read_manifest(directory)
    parts = {DETECTOR: directory / DETECTOR, CLASSIFIER: directory / CLASSIFIER}
    if manifest.get(SECOND_LOOK):
        parts[SECOND_LOOK] = directory / manifest[SECOND_LOOK]
    return parts


def card(directory: str | Path = DEFAULT_DIR) -> str:
    path = Path(directory) / CARD
    return path.read_text() if path.is_file() else ""


def pack(detector: str | Path, classifier: str | Path, out_dir: str | Path = DEFAULT_DIR, card_text: str = "",
         meta: dict | None = None, max_mb: float = MAX_MB, second_look: str | Path | None = None) -> Path:
    """Copy what the exports need into ``out_dir`` with a model card and a sha256 manifest (atomically):
    the detector, the classifier and, if given, the second look the joint labelling weighs the candidates with.

    Absolute paths in the exports' ``karyotf.json`` (the run dirs of the machine that trained them) are cut to
    their last part: they mean nothing on another machine."""
    detector, classifier, out_dir = Path(detector), Path(classifier), Path(out_dir)
    sources = [(DETECTOR, detector), (CLASSIFIER, classifier)]
    if second_look is not None:
        sources.append((SECOND_LOOK, Path(second_look)))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        for part, src in sources:
            for name in SHIPPED[part]:
                s = src / name
                if s.is_dir():
                    shutil.copytree(s, tmp / part / name)
                elif s.is_file():
                    (tmp / part).mkdir(parents=True, exist_ok=True)
                    shutil.copy2(s, tmp / part / name)
                elif name != "pipeline.config":
                    raise ModelError(f"{s}: missing from the export (fix: re-export it)")
            info_path = tmp / part / "karyotf.json"
            info = json.loads(info_path.read_text())
            info_path.write_text(json.dumps(_local(info), indent=2) + "\n")
        (tmp / CARD).write_text(card_text)
        files = {}
        for p in sorted(tmp.rglob("*")):
            if p.is_file():
                files[p.relative_to(tmp).as_posix()] = {"sha256": sha256_of(p), "size": p.stat().st_size}
        total = sum(e["size"] for e in files.values()) / 1e6
        if total > max_mb:
            raise ModelError(f"{' + '.join(str(s) for _, s in sources)}: {total:.1f} MB, over the {max_mb:g} MB "
                             "budget of the shipped pair (fix: a smaller model or export format)")
        manifest = {"schema": SCHEMA, "packed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "megabytes": round(total, 2),
                    "detector": DETECTOR, "classifier": CLASSIFIER,
                    **({SECOND_LOOK: SECOND_LOOK} if second_look is not None else {}),
                    "card": CARD, "files": files, **(meta or {})}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        from .io import replace_dir

        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _local(obj):
    if isinstance(obj, dict):
        return {k: _local(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_local(v) for v in obj]
    if isinstance(obj, str) and obj.startswith("/") and len(obj) > 1:
        return Path(obj).name
    return obj


@dataclass
class ModelEntry:
    """One row of ``karyotf models``."""

    name: str
    path: Path
    kind: str
    default: bool = False
    numbers: dict = field(default_factory=dict)
    problem: str = ""

    def text(self) -> str:
        nums = ", ".join(f"{k} {v}" for k, v in self.numbers.items())
        mark = "*" if self.default else " "
        return f"{mark} {self.name:28s} {self.kind:34s} {nums}" + (f"  [{self.problem}]" if self.problem else "")


def list_models(exported: str | Path | None = None, default_dir: str | Path = DEFAULT_DIR) -> list[ModelEntry]:
    """The default pair (its card's numbers; its files checked) and every export dir under ``exported`` (default
    ``exported/``), with what its ``karyotf.json`` / ``eval/metrics.json`` hold."""
    from . import defaults

    rows = []
    default_dir = Path(default_dir)
    if (default_dir / MANIFEST).is_file():
        entry = ModelEntry("default", default_dir, "detector + classifier (shipped)", default=True)
        try:
            manifest = verify(default_dir)
            if manifest.get(SECOND_LOOK):
                entry.kind = "detector + classifier + second look (shipped)"
            entry.numbers = dict(manifest.get("numbers", {}))
            entry.numbers.setdefault("MB", manifest.get("megabytes"))
        except ModelError as exc:
            entry.problem = str(exc)
        rows.append(entry)
    root = Path(exported) if exported is not None else Path(defaults.EXPORTED_DIR)
    if root.is_dir():
        for d in sorted(p for p in root.iterdir() if p.is_dir()):
            info_path = d / "karyotf.json"
            if not info_path.is_file():
                continue
            try:
                info = json.loads(info_path.read_text())
            except ValueError:
                rows.append(ModelEntry(d.name, d, "?", problem=f"{info_path}: unreadable"))
                continue
            kind = info.get("kind", "?")
            what = "classifier" if kind == "classifier" else f"detector ({info.get('model', '?')}" + (
                ", class-agnostic)" if info.get("agnostic") else ")")
            nums = {}
            if kind == "classifier" and info.get("best_val_top1") is not None:
                nums["val top-1"] = round(float(info["best_val_top1"]), 3)
            if info.get("min_score") is not None:
                nums["floor"] = info["min_score"]
            if info.get("chromosome_probability"):
                nums["calibrated"] = "yes"
            metrics = d / "eval" / "metrics.json"
            if metrics.is_file():
                try:
                    m = json.loads(metrics.read_text())
                    for key in ("f1", "map50"):
                        if m.get(key) is not None:
                            nums[key] = round(float(m[key]), 3)
                except ValueError:
                    pass
            rows.append(ModelEntry(d.name, d, what, numbers=nums))
    return rows
