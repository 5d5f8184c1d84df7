"""karyotf.defaults: the one table of user-changeable defaults, the CLI's --help and the README agree with it."""
from __future__ import annotations

import argparse
from pathlib import Path

from karyotf import defaults

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_table_is_the_defaults_table():
    assert defaults.markdown_table() in README.read_text()


def _actions(parser: argparse.ArgumentParser, path=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, path + (name,))
        else:
            yield path, action, parser


def test_cli_defaults_come_from_the_table_and_show_in_help():
    from karyotf.cli import build_parser

    values = {repr(d.value) for d in defaults.TABLE.values()}
    seen = set()
    for path, action, parser in _actions(build_parser()):
        if not action.option_strings or action.default in (None, False, argparse.SUPPRESS):
            continue
        if path and path[0] in ("classifier", "demo"):  # their defaults live in karyotf.classify / karyotf.demo
            continue
        seen.add(repr(action.default))
        help_text = parser.format_help()
        assert "(default" in help_text, (path, action.option_strings)
    table_backed = seen & values
    assert {repr(defaults.CHECKPOINT_EVERY), repr(defaults.KEEP_CHECKPOINTS), repr(defaults.SUMMARY_EVERY),
            repr(defaults.MIN_SCORE), repr(defaults.SCORE_THRESHOLD), repr(defaults.RECORDS_DIR)} <= table_backed


def test_train_defaults_are_the_tables():
    import inspect

    from karyotf import train

    sig = inspect.signature(train.train)
    assert sig.parameters["checkpoint_every"].default == defaults.CHECKPOINT_EVERY == 500
    assert sig.parameters["keep"].default == defaults.KEEP_CHECKPOINTS == 7
    assert sig.parameters["summary_every"].default == defaults.SUMMARY_EVERY == 100


def test_train_help_shows_the_knobs(capsys):
    import pytest

    from karyotf.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for text in ("(default: 500)", "(default: 7)", "(default: 100)"):
        assert text in out
