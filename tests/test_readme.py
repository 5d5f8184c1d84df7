"""The README's commands run as tests (issue 22): every command block of its "Two commands" section and of its
"typical run", parsed from the README at test time (not a frozen copy), run as written on the built-in sample.

Only two things change, both through documented options: small step counts (:data:`SMALL`, and only options the
command's own ``--help`` lists), and the working directory (a fresh temporary folder, where the README's relative
outputs ``records/``, ``runs/``, ``exported/``, ``out/`` land; the repo's own paths such as
``karyotf/data/sample/...`` are reachable there as from the repo root).  ``make demo`` is run as what its Makefile
recipe runs (``karyotf demo``); ``make test`` / ``make test-fast`` are what CI runs, and are not run from here.
A command that exits non-zero fails the test, naming the README line.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
MAKEFILE = REPO / "Makefile"

SMALL = {"--steps": "3", "--epochs": "1", "--minutes": "0.05", "--classifier-epochs": "1"}
"""Small step counts, set through these options where a command documents them."""
QUICK = ("records", "config")
"""Typical-run commands quick enough for the fast lane (no training, no model)."""


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    nxt = re.search(r"^## ", text[start + len(heading):], re.M)
    return text[start:start + len(heading) + (nxt.start() if nxt else len(text))]


def _blocks(text: str) -> list[str]:
    return re.findall(r"```(?:bash|sh|console)?\n(.*?)```", text, re.S)


def _commands(block: str) -> list[str]:
    out = []
    for line in block.splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def two_commands() -> list[str]:
    """The command lines of the README's "Two commands" section."""
    return [c for b in _blocks(_section(README.read_text(), "## Two commands")) for c in _commands(b)]


def typical_run() -> list[str]:
    """The command lines of the README's typical run (the first command block after "A typical run")."""
    text = README.read_text()
    return _commands(_blocks(text[text.index("A typical run"):])[0])


def make_recipe(target: str) -> list[str]:
    """The commands a Makefile target runs, ``$(BIN)/`` dropped (the test runs this checkout's karyotf)."""
    lines = MAKEFILE.read_text().splitlines()
    i = next(k for k, line in enumerate(lines) if re.match(rf"^{re.escape(target)}\s*:", line))
    out = []
    for line in lines[i + 1:]:
        if not line.startswith("\t"):
            break
        out.append(re.sub(r"\$\((BIN|VENV)\)/(bin/)?", "", line.strip()))
    return out


def documented_options(argv: list[str]) -> set[str]:
    """The options ``karyotf ARGV... --help`` lists for the (sub)command ``argv`` names."""
    import argparse

    from karyotf.cli import build_parser

    parser = build_parser()
    for word in argv:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is None or word not in sub.choices:
            break
        parser = sub.choices[word]
    return {o for a in parser._actions for o in a.option_strings}


def small(argv: list[str], add: bool = False) -> list[str]:
    """``argv`` with the step counts of :data:`SMALL` (replaced where given; with ``add``, also added where the
    command documents the option)."""
    known = documented_options(argv)
    out = list(argv)
    for opt, value in SMALL.items():
        if opt not in known:
            continue
        if opt in out:
            out[out.index(opt) + 1] = value
        elif add:
            out += [opt, value]
    return out


def karyotf_argv(line: str) -> list[str]:
    argv = shlex.split(line)
    assert argv[0] == "karyotf", f"README command {line!r} is not a karyotf command"
    return argv[1:]


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A fresh folder where the README's relative paths resolve as from the repo root (karyotf/data linked)."""
    (tmp_path / "karyotf").mkdir()
    (tmp_path / "karyotf" / "data").symlink_to(REPO / "karyotf" / "data", target_is_directory=True)
    return tmp_path


def run(line: str, argv: list[str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-m", "karyotf", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, (f"README command {line!r} (run as karyotf {shlex.join(argv)}) exited "
                                  f"{proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def test_readme_sections_are_found_and_hold_commands():
    """The parser finds what the README documents (a README rewrite that loses a block fails here)."""
    two = two_commands()
    assert "make demo" in two and "make test" in two, two
    assert make_recipe("demo") and all(c.startswith("karyotf") for c in make_recipe("demo"))
    run_ = typical_run()
    assert run_ and all(c.startswith("karyotf ") for c in run_), run_
    assert any(karyotf_argv(c)[0] == "karyogram" for c in run_)


def test_readme_typical_run_quick_commands(workdir):
    """The typical run's commands that need no model (records, config), as written (fast lane)."""
    done = 0
    for line in typical_run():
        argv = karyotf_argv(line)
        if argv[0] not in QUICK:
            break  # the rest needs a trained model: the slow test runs it all
        run(line, small(argv), workdir)
        done += 1
    assert done, "the typical run does not begin with records / config"


@pytest.mark.slow
def test_readme_typical_run_as_written(workdir):
    """Every command of the typical run in order, with small step counts (--steps, --epochs, --minutes)."""
    for line in typical_run():
        run(line, small(karyotf_argv(line)), workdir, timeout=1500)
    assert any(workdir.glob("out/**/karyogram.png")) or any(workdir.glob("**/karyogram.png"))


@pytest.mark.slow
def test_readme_two_commands_make_demo_runs(workdir):
    """``make demo`` as its Makefile recipe runs it (``karyotf demo``), with small step counts through its
    documented options; ``make test`` / ``make test-fast`` are CI's own run."""
    lines = two_commands()
    assert "make demo" in lines
    for line in lines:
        if line.startswith("make ") and line.split()[1] in ("test", "test-fast", "install"):
            continue
        recipe = make_recipe(line.split()[1]) if line.startswith("make ") else [line]
        for cmd in recipe:
            run(line, small(karyotf_argv(cmd), add=True), workdir, timeout=1500)
    # the main job: the shipped pair karyotyped every sample cell, its calls beside the annotations'
    rows = (workdir / "demo" / "demo.csv").read_text().splitlines()
    assert len(rows) == 1 + 32 and rows[0].startswith("image,model_call,annotation_call,agree")
