"""ISCN G-band ideograms from the band tables in ``karyotf/data/ideogram`` (see its README for provenance).

Each chromosome's bands are given in ISCN length units from p-ter, so the tables also give every class's
relative length and centromere position (where the ``acen`` bands meet), which the layout uses to align
centromeres when a chromosome's own centromere cannot be measured.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from .. import classes
from ..errors import KaryogramError
from ..paths import IDEOGRAM_DIR

RESOLUTIONS = (400, 550)
DEFAULT_RESOLUTION = 400


@dataclass(frozen=True)
class Band:
    chrom: str
    arm: str
    band: str
    start: float
    stop: float
    stain: str
    density: int | None = None

    @property
    def grey(self) -> int:
        """Fill grey level (0 black .. 255 white) of the band as ideograms draw it."""
        if self.stain == "gpos":
            return {25: 190, 50: 140, 75: 90, 100: 20}.get(self.density or 100, 20)
        if self.stain == "gvar":
            return 170
        if self.stain == "stalk":
            return 235
        if self.stain == "acen":
            return 200
        return 255


@functools.lru_cache(maxsize=4)
def bands(resolution: int = DEFAULT_RESOLUTION, ideogram_dir: str | None = None) -> dict[str, tuple[Band, ...]]:
    """All bands by canonical class name for one band resolution (400 or 550 bands per haploid set)."""
    folder = Path(ideogram_dir) if ideogram_dir else IDEOGRAM_DIR
    path = folder / f"homo-sapiens-{int(resolution)}.json"
    if not path.is_file():
        raise KaryogramError(f"{path}: ideogram band table not found "
                             f"(fix: use a resolution of {RESOLUTIONS} or reinstall karyotf)")
    try:
        rows = json.loads(path.read_text())["chrBands"]
    except (ValueError, KeyError) as exc:
        raise KaryogramError(f"{path}: not an ideogram band table ({exc}) (fix: reinstall karyotf)") from None
    out: dict[str, list[Band]] = {n: [] for n in classes.NAMES}
    for i, row in enumerate(rows):
        parts = row.split()
        try:
            chrom, arm, band, stain = parts[0], parts[1], parts[2], parts[7]
            start, stop = float(parts[3]), float(parts[4])
            density = int(parts[8]) if len(parts) > 8 else None
        except (IndexError, ValueError):
            raise KaryogramError(f"{path}: band row {i} {row!r} is malformed (fix: reinstall karyotf)") from None
        if chrom in out:
            out[chrom].append(Band(chrom, arm, band, start, stop, stain, density))
    missing = [n for n, b in out.items() if not b]
    if missing:
        raise KaryogramError(f"{path}: no bands for chromosome(s) {', '.join(missing)} (fix: reinstall karyotf)")
    return {n: tuple(sorted(b, key=lambda x: x.start)) for n, b in out.items()}


def length(name: str, resolution: int = DEFAULT_RESOLUTION) -> float:
    """ISCN length of a chromosome (units of its band table)."""
    return bands(resolution)[name][-1].stop


def centromere_fraction(name: str, resolution: int = DEFAULT_RESOLUTION) -> float:
    """Centromere position as a fraction of the length from p-ter (the end of the last p-arm band)."""
    b = bands(resolution)[name]
    p_end = max(x.stop for x in b if x.arm == "p")
    return p_end / b[-1].stop


def draw(draw_ctx, name: str, x: float, y: float, width: float, height: float,
         resolution: int = DEFAULT_RESOLUTION, outline=(60, 60, 60)) -> None:
    """Draw the ideogram of ``name`` with a PIL ``ImageDraw`` into the box (x, y, x+width, y+height), p-ter at top.

    Bands are filled by stain; the centromere (``acen``) is drawn as a pinch; ``stalk`` bands are narrower.
    """
    b = bands(resolution)[name]
    total = b[-1].stop
    cx = x + width / 2
    for band in b:
        y0 = y + band.start / total * height
        y1 = y + band.stop / total * height
        if band.stain == "acen":
            # a triangle narrowing toward the centromere: p arm's acen band narrows downward, q arm's upward
            if band.arm == "p":
                pts = [(x, y0), (x + width, y0), (cx, y1)]
            else:
                pts = [(cx, y0), (x + width, y1), (x, y1)]
            draw_ctx.polygon(pts, fill=(205, 80, 80), outline=outline)
            continue
        inset = width * 0.3 if band.stain == "stalk" else 0
        g = band.grey
        draw_ctx.rectangle([x + inset, y0, x + width - inset, max(y0, y1 - 0.01)], fill=(g, g, g), outline=None)
    # outlines of the two arms
    acen = [band for band in b if band.stain == "acen"]
    p_end = y + (acen[0].start if acen else 0) / total * height
    q_start = y + (acen[-1].stop if acen else 0) / total * height
    if p_end > y + 0.5:
        draw_ctx.rectangle([x, y, x + width, p_end], outline=outline)
    draw_ctx.rectangle([x, q_start, x + width, y + height], outline=outline)
