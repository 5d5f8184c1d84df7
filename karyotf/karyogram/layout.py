"""Lay out a karyogram: rows of Denver groups, homologues side by side under their class number, centromeres
aligned on each row's line, each class beside its ISCN ideogram.

Extra copies stand beside the pair (marked ``+``); a missing copy leaves an empty dashed slot; a
low-confidence chromosome is outlined.  The expected copies are two per autosome, and XY when a Y is present,
else XX.  :func:`render` returns the picture and where each chromosome went (its box in the karyogram, which
:mod:`karyotf.karyogram.dataset` writes as VOC).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .. import classes
from ..errors import KaryogramError
from . import ideogram
from .defaults import DEFAULT_ROWS, LONGEST, MAX_PER_CLASS, ROW_PRESETS  # noqa: F401  (re-exported)
from .orient import Oriented

# Imports inside functions, and why: matplotlib (heavy: loaded when an image is decoded or drawn).

WHITE = (255, 255, 255)
INK = (20, 20, 20)
GREY = (120, 120, 120)
LOW_COLOUR = (240, 140, 0)
MISSING_COLOUR = (200, 30, 30)
EXTRA_COLOUR = (20, 90, 220)


def parse_rows(spec: str | Sequence[Sequence[str]] | None) -> tuple[tuple[str, ...], ...]:
    """Rows from a preset name (``standard``, ``denver``), a spec such as ``"1-5|6-12,X|13-18|19-22,Y"``, or a list
    of lists of class names.  Every one of the 24 classes must appear exactly once."""
    if spec is None:
        spec = DEFAULT_ROWS
    if isinstance(spec, str):
        if spec in ROW_PRESETS:
            return ROW_PRESETS[spec]
        rows = []
        for part in spec.split("|"):
            row: list[str] = []
            for item in filter(None, (t.strip() for t in part.split(","))):
                if "-" in item:
                    a, b = (classes.canonical(t) for t in item.split("-", 1))
                    ia, ib = classes.NAMES.index(a), classes.NAMES.index(b)
                    if ib < ia:
                        raise KaryogramError(f"rows {spec!r}: range {item!r} runs backwards (fix: write low-high)")
                    row.extend(classes.NAMES[ia:ib + 1])
                else:
                    row.append(classes.canonical(item))
            rows.append(tuple(row))
    else:
        rows = [tuple(classes.canonical(n) for n in r) for r in spec]
    flat = [n for r in rows for n in r]
    missing = [n for n in classes.NAMES if n not in flat]
    dup = sorted({n for n in flat if flat.count(n) > 1}, key=classes.LABEL_OF.get)
    if missing or dup or any(not r for r in rows):
        raise KaryogramError(
            f"rows {spec!r}: " + "; ".join(filter(None, [
                f"missing {', '.join(missing)}" if missing else "",
                f"repeated {', '.join(dup)}" if dup else "",
                "an empty row" if any(not r for r in rows) else ""]))
            + f" (fix: list every class once, e.g. a preset {sorted(ROW_PRESETS)} or '1-5|6-12,X|13-18|19-22,Y')")
    return tuple(rows)


@functools.lru_cache(maxsize=8)
def font(size: int, bold: bool = False) -> ImageFont.ImageFont:
    """DejaVu Sans (shipped with matplotlib) at ``size`` px; PIL's bitmap font if it cannot be found."""
    try:
        from matplotlib import font_manager

        path = font_manager.findfont(f"DejaVu Sans{':bold' if bold else ''}", fallback_to_default=True)
        return ImageFont.truetype(path, size)
    except Exception:  # pragma: no cover - matplotlib is a dependency
        return ImageFont.load_default()


def expected_copies(name: str, counts: dict[str, int]) -> int:
    """Copies a normal cell has: 2 per autosome; XY if a Y is present, else XX."""
    if name in classes.AUTOSOMES:
        return 2
    has_y = counts.get("Y", 0) > 0
    if name == "X":
        return 1 if has_y else 2
    return 1 if has_y else 0


@dataclass
class Placement:
    """Where one chromosome went: ``index`` into the boxes of the cell, its class, and its box in the karyogram."""

    index: int
    name: str
    box: tuple[int, int, int, int]
    extra: bool = False
    low_confidence: bool = False


@dataclass
class Layout:
    image: Image.Image
    placements: list[Placement] = field(default_factory=list)
    missing_slots: list[tuple[str, tuple[int, int, int, int]]] = field(default_factory=list)


def _dashed_rect(d: ImageDraw.ImageDraw, box, colour, dash: int = 5, width: int = 2) -> None:
    x0, y0, x1, y1 = box
    for a, b, horizontal, fixed in ((x0, x1, True, y0), (x0, x1, True, y1), (y0, y1, False, x0), (y0, y1, False, x1)):
        t = a
        while t < b:
            e = min(b, t + dash)
            if horizontal:
                d.line([(t, fixed), (e, fixed)], fill=colour, width=width)
            else:
                d.line([(fixed, t), (fixed, e)], fill=colour, width=width)
            t += 2 * dash


def _text_size(d: ImageDraw.ImageDraw, text: str, f) -> tuple[int, int]:
    x0, y0, x1, y1 = d.textbbox((0, 0), text, font=f)
    return x1 - x0, y1 - y0


def _wrap(d, text: str, f, width: int) -> list[str]:
    words, lines, cur = text.split(), [], ""
    for w in words:
        trial = f"{cur} {w}".strip()
        if cur and _text_size(d, trial, f)[0] > width:
            lines.append(cur)
            cur = w
        else:
            cur = trial
    if cur:
        lines.append(cur)
    return lines


def render(chromosomes: Sequence[Oriented], rows=None, longest: float = LONGEST, title: str | None = None,
           subtitle: str | None = None, flags: Sequence[str] = (), low_score: float | None = 0.5,
           ideograms: bool = True, labels: bool = True, legend: bool = True, marks: bool = True,
           max_per_class: int = MAX_PER_CLASS, resolution: int = ideogram.DEFAULT_RESOLUTION) -> Layout:
    """Draw the karyogram of a cell's upright chromosomes.

    ``longest`` is the length in pixels the cell's longest chromosome was scaled to (and chromosome 1's
    ideogram is drawn at).  ``ideograms``, ``labels`` (class numbers, group letters, title, flags), ``legend``
    and ``marks`` (missing slots, low-confidence outlines, extra-copy signs) can be turned off for plain training
    images.  At most ``max_per_class`` chromosomes of one class are drawn (a broken model can put dozens in
    one class); the rest are counted under the class number (``+N not drawn``) and stay in the report.
    """
    rows = parse_rows(rows)
    by_class: dict[str, list[Oriented]] = {n: [] for n in classes.NAMES}
    for c in chromosomes:
        by_class[c.name].append(c)
    for n in by_class:  # best first: the pair is the two highest-scoring, extra copies after
        by_class[n].sort(key=lambda c: (-(c.cutout.box.score if c.cutout.box.score is not None else 1.0),
                                        c.cutout.index))
    counts = {n: len(v) for n, v in by_class.items()}
    widths = [c.width for c in chromosomes]
    typical_w = int(np.median(widths)) if widths else max(8, int(longest / 8))
    ideo_unit = longest / ideogram.length("1", resolution)
    ideo_w = max(6, int(round(longest / 16))) if ideograms else 0
    gap_item, gap_ideo, gap_slot = 6, (8 if ideograms else 0), 26
    margin = 24
    label_f, small_f = font(15, bold=True), font(12)
    title_f, flag_f = font(20, bold=True), font(13)

    # ---- measure every slot: items (chromosomes or empty slots) with their heights and centromeres
    slots: dict[str, list[dict]] = {}
    for n in classes.NAMES:
        exp = expected_copies(n, counts)
        items = []
        for k, c in enumerate(by_class[n][:max_per_class]):
            items.append({"kind": "chrom", "c": c, "w": c.width, "h": c.height,
                          "cen": c.centromere * c.height, "extra": k >= exp})
        ideo_h = ideogram.length(n, resolution) * ideo_unit
        cen_frac = ideogram.centromere_fraction(n, resolution)
        for _ in range(max(0, exp - len(by_class[n]))):
            items.append({"kind": "missing", "w": typical_w, "h": ideo_h, "cen": cen_frac * ideo_h})
        slots[n] = items

    def slot_width(n: str) -> int:
        items = slots[n]
        w = sum(it["w"] for it in items) + gap_item * max(0, len(items) - 1)
        return int(ideo_w + gap_ideo + max(w, typical_w))

    row_geoms = []
    for r in rows:
        above = [ideogram.centromere_fraction(n, resolution) * ideogram.length(n, resolution) * ideo_unit
                 for n in r] if ideograms else [0]
        below = [(1 - ideogram.centromere_fraction(n, resolution)) * ideogram.length(n, resolution) * ideo_unit
                 for n in r] if ideograms else [0]
        for n in r:
            for it in slots[n]:
                above.append(it["cen"])
                below.append(it["h"] - it["cen"])
        width = sum(slot_width(n) for n in r) + gap_slot * (len(r) - 1)
        row_geoms.append({"names": r, "above": max(above), "below": max(below), "width": width})

    group_h = 18 if labels else 0
    label_h = 24 if labels else 4
    content_w = max(g["width"] for g in row_geoms)
    header_lines: list[str] = []
    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    canvas_w = int(content_w + 2 * margin + (28 if labels else 0))
    if labels:
        for f in flags:
            header_lines.extend(_wrap(scratch, "\u2022 " + f, flag_f, canvas_w - 2 * margin))
    title_lines = _wrap(scratch, (title or "").replace(",", ", "), title_f, canvas_w - 2 * margin) if labels else []
    title_lines = [t.replace(", ", ",") for t in title_lines] or [""]
    header_h = 0
    if labels and (title or subtitle):
        header_h = 10 + 24 * len(title_lines) + (20 if subtitle else 0) + 17 * len(header_lines) + 10
    legend_h = 30 if (legend and labels and marks) else 0
    rows_h = sum(group_h + g["above"] + g["below"] + label_h + 12 for g in row_geoms)
    canvas_h = int(margin + header_h + rows_h + legend_h + margin)
    img = Image.new("RGB", (canvas_w, canvas_h), WHITE)
    d = ImageDraw.Draw(img)

    y = margin
    if header_h:
        for line in title_lines:
            d.text((margin, y), line, font=title_f, fill=INK)
            y += 24
        y += 10
        if subtitle:
            d.text((margin, y - 6), subtitle, font=small_f, fill=GREY)
            y += 20
        for line in header_lines:
            d.text((margin, y - 4), line, font=flag_f, fill=MISSING_COLOUR)
            y += 17
        y += 10

    layout = Layout(image=img)
    left = margin + (28 if labels else 0)
    for g in row_geoms:
        y_group = y
        y_cen = int(y + group_h + g["above"])
        x = left + (content_w - g["width"]) // 2
        group_spans: dict[str, list[int]] = {}
        for n in g["names"]:
            sw = slot_width(n)
            grp = classes.GROUP_OF[n]
            span = group_spans.setdefault(grp, [x, x + sw])
            span[1] = x + sw
            if ideograms:
                ih = ideogram.length(n, resolution) * ideo_unit
                iy = y_cen - ideogram.centromere_fraction(n, resolution) * ih
                ideogram.draw(d, n, x, iy, ideo_w, ih, resolution)
            ix = x + ideo_w + gap_ideo
            items_w = sum(it["w"] for it in slots[n]) + gap_item * max(0, len(slots[n]) - 1)
            ix += max(0, (sw - ideo_w - gap_ideo - items_w) // 2)
            for it in slots[n]:
                top = int(round(y_cen - it["cen"]))
                if it["kind"] == "chrom":
                    c = it["c"]
                    tile = Image.fromarray(c.image)
                    alpha = Image.fromarray((c.mask * 255).astype(np.uint8))
                    img.paste(tile, (int(ix), top), alpha)
                    bx = (int(ix), top, int(ix) + c.width, top + c.height)
                    score = c.cutout.box.score
                    low = low_score is not None and score is not None and score < low_score
                    if low and marks:
                        d.rectangle([bx[0] - 3, bx[1] - 3, bx[2] + 2, bx[3] + 2], outline=LOW_COLOUR, width=2)
                    if it["extra"] and labels and marks:
                        tw, _ = _text_size(d, "+", label_f)
                        d.text((bx[0] + (c.width - tw) / 2, top - 20), "+", font=label_f, fill=EXTRA_COLOUR)
                    layout.placements.append(Placement(c.cutout.index, n, bx, extra=it["extra"], low_confidence=low))
                else:
                    bx = (int(ix), top, int(ix) + it["w"], int(top + it["h"]))
                    if marks:
                        _dashed_rect(d, bx, MISSING_COLOUR)
                        d.line([(bx[0] + 3, bx[1] + 3), (bx[2] - 3, bx[3] - 3)], fill=(235, 170, 170), width=1)
                    layout.missing_slots.append((n, bx))
                ix += it["w"] + gap_item
            if labels:
                tw, th = _text_size(d, n, label_f)
                lx = x + ideo_w + gap_ideo + (sw - ideo_w - gap_ideo - tw) / 2
                d.text((lx, y_cen + g["below"] + 4), n, font=label_f, fill=INK)
                hidden = len(by_class[n]) - max_per_class
                if hidden > 0:
                    d.text((lx + tw + 6, y_cen + g["below"] + 6), f"+{hidden} not drawn", font=small_f,
                           fill=MISSING_COLOUR)
            x += sw + gap_slot
        if labels:
            for grp, (gx0, gx1) in group_spans.items():
                d.line([(gx0, y_group + 12), (gx1, y_group + 12)], fill=GREY, width=1)
                d.text((gx0, y_group - 4), grp, font=small_f, fill=GREY)
        y = y_cen + g["below"] + label_h + 12
        if labels:
            d.line([(margin, y - 6), (canvas_w - margin, y - 6)], fill=(230, 230, 230), width=1)

    if legend_h:
        ly = canvas_h - margin - legend_h + 8
        lx = margin
        d.rectangle([lx, ly, lx + 14, ly + 14], outline=LOW_COLOUR, width=2)
        lx += 20
        txt = f"low confidence (score < {low_score:g})" if low_score is not None else "low confidence"
        d.text((lx, ly), txt, font=small_f, fill=INK)
        lx += _text_size(d, txt, small_f)[0] + 24
        _dashed_rect(d, (lx, ly, lx + 14, ly + 14), MISSING_COLOUR, dash=3)
        lx += 20
        d.text((lx, ly), "missing copy", font=small_f, fill=INK)
        lx += _text_size(d, "missing copy", small_f)[0] + 24
        d.text((lx, ly - 3), "+", font=label_f, fill=EXTRA_COLOUR)
        lx += 16
        d.text((lx, ly), "extra copy", font=small_f, fill=INK)
        lx += _text_size(d, "extra copy", small_f)[0] + 24
        if ideograms:
            ideogram.draw(d, "21", lx, ly - 4, 8, 22, resolution)
            d.text((lx + 14, ly), f"ISCN ideogram ({resolution} bands)", font=small_f, fill=INK)
    return layout
