"""Command-line helpers shared by the bench scripts."""
from __future__ import annotations

import argparse


def per_model(cast):
    """An argparse ``type`` for per-model values, ``"ssd=8,rfcn=4"`` -> ``{"ssd": 8, "rfcn": 4}`` (``""`` -> ``{}``)."""

    def parse(text: str) -> dict:
        out = {}
        for part in (p.strip() for p in (text or "").split(",")):
            if not part:
                continue
            model, sep, value = part.partition("=")
            if not sep or not model.strip():
                raise argparse.ArgumentTypeError(f"{part!r}: expected MODEL=VALUE, e.g. ssd=8")
            try:
                out[model.strip()] = cast(value)
            except ValueError as exc:
                raise argparse.ArgumentTypeError(f"{part!r}: {exc}") from None
        return out

    return parse
