"""Matplotlib figures of the evaluation: PR curves, confusion matrix, per-class P/R/F1, chromosomes per image.

Every function draws on its own :class:`matplotlib.figure.Figure` with the Agg canvas (no pyplot, no display, no
global backend switch), writes the PNG atomically (:func:`karyotf.io.atomic_path`) and returns its path.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import classes
from .io import atomic_path

# Imports inside functions, and why: matplotlib (heavy: loaded when an image is decoded or drawn).

DPI = 120


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def save(fig, path: str | Path) -> Path:
    """Write ``fig`` as a PNG to ``path`` atomically."""
    path = Path(path)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return path


def _nan(v):
    return np.nan if v is None else v


def pr_curve(pr, path: str | Path, score_threshold: float | None = None, title: str = "") -> Path:
    """Precision-recall: the micro-averaged curve (bold) and one thin line per class with ground truth.

    ``pr`` is a :class:`karyotf.metrics.PRCurves`; the operating point at ``score_threshold`` is marked.
    """
    import matplotlib

    fig = _figure(10, 6)
    ax = fig.add_subplot(1, 1, 1)
    cmap = matplotlib.colormaps["tab20"].resampled(len(classes.NAMES))
    for i, (name, c) in enumerate(pr.per_class.items()):
        if c.n_truth == 0 or len(c.tp) == 0:
            continue
        ax.plot(c.recall, c.precision, lw=0.8, alpha=0.6, color=cmap(i), label=f"{name} (AP {c.ap:.2f})")
    m = pr.micro
    if len(m.tp):
        ax.plot(m.recall, m.precision, lw=2.5, color="black",
                label=f"all, micro (AP {_nan(m.ap):.3f}); mAP {_nan(pr.mean_ap):.3f}")
    if score_threshold is not None:
        p, r = m.at(score_threshold)
        if p is not None and r is not None:
            ax.plot([r], [p], "o", ms=9, color="red", label=f"score >= {score_threshold:g}: P {p:.2f} R {r:.2f}")
    ax.set_xlim(0, 1.0)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title or f"Precision-recall at IoU {pr.iou:g}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=1, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return save(fig, path)


def confusion_matrix(cm, path: str | Path, title: str = "") -> Path:
    """The 25 x 25 confusion matrix (true class by row, predicted by column, ``spurious`` row, ``missed`` column)."""
    return matrix(cm.matrix, cm.rows, cm.cols, path, separated=True, title=title or (
        f"Confusion matrix (class-agnostic match at IoU {cm.iou:g}, score >= {cm.score_threshold:g})"))


def matrix(mat, rows, cols, path: str | Path, title: str = "", separated: bool = False) -> Path:
    """A count matrix as a log-scaled heat map with the counts written in; ``separated`` rules off the last row
    and column (``spurious`` / ``missed``)."""
    from matplotlib.colors import LogNorm

    fig = _figure(10, 9)
    ax = fig.add_subplot(1, 1, 1)
    mat = np.asarray(mat, dtype=float)
    shown = np.where(mat > 0, mat, np.nan)
    vmax = max(1.0, float(np.nanmax(shown)) if np.isfinite(shown).any() else 1.0)
    im = ax.imshow(shown, cmap="viridis", norm=LogNorm(vmin=1, vmax=max(vmax, 2)), interpolation="nearest")
    n, m = mat.shape
    for i in range(n):
        for j in range(m):
            if mat[i, j] > 0:
                v = int(mat[i, j])
                ax.text(j, i, str(v), ha="center", va="center", fontsize=5,
                        color="white" if mat[i, j] < np.sqrt(vmax) else "black")
    ax.set_xticks(range(m))
    ax.set_xticklabels(cols, rotation=90, fontsize=7)
    ax.set_yticks(range(n))
    ax.set_yticklabels(rows, fontsize=7)
    if separated:
        ax.axhline(n - 1.5, color="red", lw=0.8)
        ax.axvline(m - 1.5, color="red", lw=0.8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.04, label="chromosomes (log scale)")
    return save(fig, path)


def per_class(thesis, path: str | Path, title: str = "") -> Path:
    """Grouped bars of precision, recall and F1 for each class and overall (micro)."""
    fig = _figure(12, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    names = list(thesis.per_class) + ["all"]
    counts = list(thesis.per_class.values()) + [thesis.overall]
    x = np.arange(len(names))
    w = 0.27
    for k, (attr, color) in enumerate((("precision", "tab:blue"), ("recall", "tab:orange"), ("f1", "tab:green"))):
        vals = [_nan(getattr(c, attr)) for c in counts]
        ax.bar(x + (k - 1) * w, vals, w, label=attr, color=color)
    ax.set_xticks(x)
    ax.set_xticklabels(names)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("chromosome")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(ncol=3, fontsize=8)
    ax.set_title(title or f"Per-class precision / recall / F1 (IoU {thesis.iou:g}, score >= {thesis.score_threshold:g})")
    return save(fig, path)


def found_per_image(found, path: str | Path, title: str = "") -> Path:
    """Histogram of chromosomes per image: in the truth, detected, found (any class) and correct (right class)."""
    fig = _figure(8, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    ims = found.images
    series = {"truth": [i.truth for i in ims], "detected": [i.detected for i in ims],
              "found (any class)": [i.found for i in ims], "correct (right class)": [i.correct for i in ims]}
    top = max([found.expected] + [v for vals in series.values() for v in vals]) + 2
    bins = np.arange(-0.5, top + 0.5, 1.0)
    for label, vals in series.items():
        ax.hist(vals, bins=bins, histtype="step", lw=1.6, label=label)
    ax.axvline(found.expected, color="black", ls="--", lw=0.8, label=f"{found.expected}")
    s = found.summary()
    share = lambda v: "n/a" if v is None else f"{100 * v:.0f}%"  # noqa: E731
    ax.set_title(title or f"Chromosomes per image ({s['images']} images; all found in {share(s['cells_all_found'])}, "
                          f"all correct in {share(s['cells_all_correct'])})", fontsize=9)
    ax.set_xlabel("chromosomes in the image")
    ax.set_ylabel("images")
    ax.legend(fontsize=8)
    return save(fig, path)
