"""Review folders for tests and the review benchmark, made from the shipped sample (no model needed).

The first cell is 1055911 from its annotation (47,XY,+21: three 21s to correct).  The others look like a model's
output: the annotation's boxes with deterministic scores, one chromosome missed and one scored low.
"""
from __future__ import annotations

import random
from pathlib import Path

from karyotf.annotations import read_voc
from karyotf.karyogram.build import build_karyogram, from_annotation
from karyotf.paths import SAMPLE_DIR

FIRST = "1055911"


def make_cells(out: Path, n: int = 3, seed: int = 0) -> list[str]:
    """Write ``n`` cells into ``out/<stem>/`` as ``karyotf karyogram`` does; return their stems."""
    stems = [FIRST] + [p.stem for p in sorted((SAMPLE_DIR / "annotations").glob("*.xml")) if p.stem != FIRST]
    stems = stems[:n]
    rng = random.Random(seed)
    for k, stem in enumerate(stems):
        xml = SAMPLE_DIR / "annotations" / f"{stem}.xml"
        if k == 0:
            from_annotation(xml, out / stem)
            continue
        ann = read_voc(xml)
        boxes = [b.with_coords(*b.as_tuple(), score=round(rng.uniform(0.75, 0.99), 3)) for b in ann.boxes]
        boxes.pop(rng.randrange(len(boxes)))                                   # a missed chromosome
        i = rng.randrange(len(boxes))
        boxes[i] = boxes[i].with_coords(*boxes[i].as_tuple(), score=0.41)       # a doubtful one
        build_karyogram(ann.image_path, boxes, out / stem, source={"kind": "model", "model": "ssd (simulated)",
                                                                   "image": str(ann.image_path)})
    return stems


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]  # a container's small /dev/shm must not crash the renderer


def chromium_missing() -> str | None:
    """Why a real-browser run cannot happen here (None when it can)."""
    import shutil

    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        return f"{CHROMIUM} not installed (apt-get install -y chromium chromium-driver; .ci/run does)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (make install)"
    return None


def launch(playwright, user_data_dir: Path):
    """Debian's Chromium, headless (playwright adds --headless), with a fresh profile (never a downloaded browser)."""
    exe = CHROMIUM if Path(CHROMIUM).exists() else __import__("shutil").which("chromium")
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir), executable_path=exe, headless=True, args=CHROMIUM_ARGS,
        viewport={"width": 1600, "height": 1000}, bypass_csp=True)  # the page forbids eval; the driver needs it


def screen_point(page, x: float, y: float) -> tuple[float, float]:
    """Page coordinates of metaphase pixel (x, y) (the SVG overlay maps image pixels)."""
    return page.evaluate("""([x, y]) => { const s = document.getElementById('overlay');
        const p = s.createSVGPoint(); p.x = x; p.y = y; const q = p.matrixTransform(s.getScreenCTM());
        return [q.x, q.y]; }""", [x, y])


def free_spot(boxes, width: int, height: int, size: int = 30) -> tuple[int, int] | None:
    """Top-left of a size x size square of the image that no box touches (where a drawn box cannot hit one)."""
    for y in range(10, height - size - 10, 7):
        for x in range(10, width - size - 10, 7):
            if all(x + size < b[0] or x > b[2] or y + size < b[1] or y > b[3] for b in boxes):
                return x, y
    return None


def shot(page, path: Path, width: int = 1200) -> Path:
    """A small PNG of the page (scaled to ``width``, 256 colours) for a note or the README."""
    import io

    from PIL import Image

    im = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    im = im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.quantize(colors=256, method=Image.MEDIANCUT).save(path, optimize=True)
    return path
