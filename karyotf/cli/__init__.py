"""Command line: argument parsing only; each command calls one function of the Python API.

Each module is named after its command (``doctor``, ``records``, ``augment``, ``roboflow``: roboflow pull, import;
``zoo``: zoo list, pull; ``config``, ``train``, ``export``, ``detect``, ``evaluate``: eval; ``karyogram``: karyogram,
karyograms-dataset; ``classifier``: classifier train, eval, export; ``demo``; ``review``; ``case``; ``models``).  Each module has
``register(subparsers)`` that adds its commands, each with ``func=`` set to a handler taking the parsed args.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from .. import __version__

# Imports inside functions, and why: the command's stage and its helpers, imported when the command runs (so that
# `karyotf --help` and every other command start without them).

GROUPS = ("karyotf.cli.doctor", "karyotf.cli.records", "karyotf.cli.augment", "karyotf.cli.roboflow", "karyotf.cli.zoo",
          "karyotf.cli.config", "karyotf.cli.train", "karyotf.cli.export", "karyotf.cli.detect", "karyotf.cli.evaluate",
          "karyotf.cli.karyogram", "karyotf.cli.classifier", "karyotf.cli.second_look", "karyotf.cli.demo",
          "karyotf.cli.review", "karyotf.cli.case", "karyotf.cli.separate", "karyotf.cli.models")


class CliError(Exception):
    """An error the user can fix; printed without a traceback, exit status 2."""


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows every option's default (the values of :mod:`karyotf.defaults`), except where there is
    none to show (``None``, a flag's ``False``) or the help text already says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "%(default)" in text or "(default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """Every (sub)command's parser: :class:`DefaultsHelpFormatter` unless a command asks for another."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="karyotf",
        description="Chromosome detection, karyograms and karyotype calls with the TF Object Detection API.")
    parser.add_argument("--version", action="version", version=f"karyotf {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in GROUPS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's C++ INFO lines drown the progress bars
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from ..errors import KaryotfError

        if isinstance(exc, (KaryotfError, CliError)):
            print(f"karyotf {args.command}: error: {exc}", file=sys.stderr)
            return 2
        raise
    return int(result or 0)
