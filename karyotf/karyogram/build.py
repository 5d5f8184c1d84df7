"""One cell in, a karyogram and a karyotype out: cut out -> orient -> lay out -> call -> report."""
from __future__ import annotations

import csv
import io
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from . import ideogram, report
from .. import classes
from ..annotations import Annotation, Box, read_voc
from ..errors import AnnotationError, ImageError, KaryogramError, KaryotfError
from ..find import ChromosomeFinder
from ..images import load, load_ahead
from ..io import atomic_path, atomic_write_text
from .call import LOW_MEAN_SCORE, LOW_SCORE, OVERLAP_IOU, Call, Flag, check_call, count_call
from .cutout import cut_out_all
from .defaults import LONGEST, NMS_IOU
from .detections import CellDetections
from .layout import Layout, Placement, parse_rows, render
from .orient import orient_all

# Imports inside functions, and why: Pillow (heavy: loaded when an image is decoded or drawn);
# karyotf.karyogram.layout (it loads OpenCV and Pillow at its top); karyotf.separate.separator (it loads OpenCV at its
# top); karyotf.separate.straighten (it loads OpenCV at its top); karyotf.detect.Detector (looked up when a model is
# loaded, so that a caller may stand another Detector in karyotf.detect, as the tests do).

log = logging.getLogger(__name__)


@dataclass
class KaryogramResult:
    """What :func:`build_karyogram` made: the call (with its flags), the picture, where each chromosome went,
    the files written (``karyogram``, ``detections``, ``report_html``, ``report_json``) and timings in ms."""

    call: Call
    boxes: list[Box]
    placements: list[Placement]
    image: "object"
    """The karyogram as a PIL image."""
    paths: dict[str, Path] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    source: dict = field(default_factory=dict)

    @property
    def flags(self) -> list[Flag]:
        return self.call.flags

    @property
    def iscn(self) -> str | None:
        return self.call.iscn


@dataclass
class KaryogramFailure:
    """A cell of a batch (:func:`karyograms`) that could not be done: the image and the error, for the summary and
    ``calls.csv``."""

    image: Path
    error: str
    call = None


def load_image(image) -> tuple[np.ndarray, str]:
    """(RGB uint8 array, name) from an array, a path or a PIL image, by karyotf's one decoder
    (:mod:`karyotf.images`); a bad image is a :class:`KaryogramError`."""
    if isinstance(image, (str, Path)):
        name = Path(image).name
    else:
        name = getattr(image, "filename", "") or "image"
    try:
        return load(image), name
    except ImageError as exc:
        raise KaryogramError(str(exc)) from None


def _check_boxes(boxes: Sequence[Box], shape, name: str) -> list[Box]:
    h, w = shape[:2]
    out = []
    for i, b in enumerate(boxes):
        try:
            cname = classes.canonical(b.name)
        except classes.UnknownClassError as exc:
            raise KaryogramError(f"{name}, box #{i}: {exc}") from None
        if b.xmax <= b.xmin or b.ymax <= b.ymin:
            raise KaryogramError(f"{name}, box #{i} ({cname}): zero or negative area "
                                 f"(fix: boxes are (xmin, ymin, xmax, ymax) in pixels)")
        if b.xmax <= 0 or b.ymax <= 0 or b.xmin >= w or b.ymin >= h:
            raise KaryogramError(f"{name}, box #{i} ({cname}): ({b.xmin:g},{b.ymin:g})-({b.xmax:g},{b.ymax:g}) lies "
                                 f"outside the {w}x{h} image (fix: boxes must be in pixels of this image, "
                                 "not normalised)")
        out.append(b if cname == b.name else b.with_coords(*b.as_tuple(), name=cname))
    return out


def make_karyogram(image, boxes: Sequence[Box], rows=None, longest: float = LONGEST, low_score: float = LOW_SCORE,
                   low_mean_score: float = LOW_MEAN_SCORE, overlap_iou: float = OVERLAP_IOU,
                   title: str | None = None, subtitle: str | None = None, ideograms: bool = True,
                   labels: bool = True, marks: bool = True, resolution: int = ideogram.DEFAULT_RESOLUTION,
                   suppressed: Sequence[tuple[Box, Box, float]] = (), extra_flags: Sequence[Flag] = (),
                   separate=None, straighten: bool = False, splits: Sequence = (),
                   ) -> tuple[Call, Layout, dict[str, float], list[Box]]:
    """Everything but the files: (call, layout with the PIL picture and placements, timings ms, checked boxes).

    ``suppressed``: boxes an NMS removed, ``(removed, kept, IoU)``, for the call's flags.  ``separate``: a
    separation model (export dir or :class:`karyotf.separate.separator.Separator`): each chromosome is drawn
    from its own mask, uncertain separations are flagged; ``straighten``: bent chromosomes laid straight
    (:mod:`karyotf.separate`); ``splits``: a person's split lines (:mod:`karyotf.separate.edit`, as the review app
    stores them), applied in order to the masks."""
    arr, name = load_image(image)
    boxes = _check_boxes(list(boxes), arr.shape, name)
    t = {}
    t0 = time.perf_counter()
    call = _call(arr, boxes, low_score, low_mean_score, overlap_iou, suppressed, extra_flags)
    if separate is not None:
        from ..separate.separator import load, separate as separate_cell

        sep = separate_cell(arr, boxes, load(separate))
        cut = sep.cutouts
        call.add_flags(sep.flags)
    else:
        cut = cut_out_all(arr, boxes)
    if splits:
        from ..separate.edit import apply_splits

        cut, _ = apply_splits(arr, boxes, cut, splits)
    t1 = time.perf_counter()
    oriented, _scale = orient_all(cut, longest=longest, resolution=resolution)
    if straighten:
        from ..separate.straighten import straighten_all

        oriented = straighten_all(oriented)
    t2 = time.perf_counter()
    flag_lines = [f.message for f in call.flags]
    layout = render(oriented, rows=rows, longest=longest, title=title or call.text, subtitle=subtitle,
                    flags=flag_lines, low_score=low_score if any(b.score is not None for b in boxes) else None,
                    ideograms=ideograms, labels=labels, legend=labels, marks=marks, resolution=resolution)
    t3 = time.perf_counter()
    t.update(call_cutout=1000 * (t1 - t0), orient=1000 * (t2 - t1), layout=1000 * (t3 - t2))
    return call, layout, t, boxes


def _call(arr: np.ndarray, boxes: list[Box], low_score: float, low_mean_score: float, overlap_iou: float,
          suppressed: Sequence[tuple[Box, Box, float]], extra_flags: Sequence[Flag]) -> Call:
    call = count_call(boxes, low_score=low_score, low_mean_score=low_mean_score, overlap_iou=overlap_iou,
                      suppressed=suppressed)
    call.add_flags(extra_flags)
    check_call(call, arr, boxes)  # empty, duplicate boxes; an image that does not match its boxes
    return call


def call_of(image, found, low_score: float = LOW_SCORE, low_mean_score: float = LOW_MEAN_SCORE,
            overlap_iou: float = OVERLAP_IOU) -> Call:
    """The count call of one cell from what a model found in it (a :class:`karyotf.find.Found`: the counted boxes,
    those the NMS removed, a naming model's flags), with the box checks of a karyogram, nothing drawn or written:
    the call ``karyotf karyogram`` reports."""
    arr, name = load_image(image)
    boxes = _check_boxes(list(found.boxes), arr.shape, name)
    return _call(arr, boxes, low_score, low_mean_score, overlap_iou, found.suppressed, found.flags or ())


def _keep_image(image, arr: np.ndarray, name: str, out: Path) -> Path:
    """A copy of the cell's image in ``out`` (the file's own bytes and name, or ``<name>.png`` for an array), so
    that the folder holds everything a review needs (:mod:`karyotf.review` serves only files inside it)."""
    if isinstance(image, (str, Path)):
        src = Path(image)
        dst = out / src.name
        if dst.exists() and dst.samefile(src):
            return dst
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
        return dst
    from PIL import Image

    stem = Path(name).stem if name and name != "image" else "image"
    dst = out / f"{stem}.png"
    with atomic_path(dst) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")
    return dst


def build_karyogram(image, boxes: Sequence[Box], out_dir: str | Path, rows=None, longest: float = LONGEST,
                    low_score: float = LOW_SCORE, low_mean_score: float = LOW_MEAN_SCORE,
                    overlap_iou: float = OVERLAP_IOU, source: dict | None = None,
                    resolution: int = ideogram.DEFAULT_RESOLUTION,
                    suppressed: Sequence[tuple[Box, Box, float]] = (),
                    below_min_score: Sequence[Box] = (), keep_image: bool = True,
                    report_extra: dict | None = None, extra_flags: Sequence[Flag] = (),
                    details: Sequence[dict] | None = None,
                    left_out: Sequence[tuple[Box, float]] = (), separate=None,
                    straighten: bool = False, pixels: np.ndarray | None = None,
                    splits: Sequence = ()) -> KaryogramResult:
    """Build the karyogram of one cell and write ``karyogram.png``, ``detections.json``, ``report.html`` and
    ``report.json`` into ``out_dir`` (atomically), and a copy of the image (``keep_image``; ``paths['image']``).

    ``image``: RGB array, path or PIL image; ``boxes``: pixel boxes with class names (from an annotation,
    ``score`` None, or a Detector, ``score`` set).  No boxes gives an empty karyogram and a report saying that
    no chromosomes were detected.  ``rows``: a preset (``standard``, ``denver``) or spec ``"1-5|6-12,X|..."``.
    ``suppressed`` (``(removed, kept, IoU)`` from an NMS), ``below_min_score`` and ``left_out`` (``(box, P(chromosome))``
    that a classifier's joint labelling left out of the count) are detections not counted: all are listed in
    ``detections.json`` and the report, and the call flags a confident suppressed box of another class.
    ``report_extra``: keys added to ``report.json`` (the review app adds its ``review`` section).
    ``extra_flags``: flags from outside the count (a classifier's joint labelling); ``details``: one dict a box
    (the classifier's own top-1 and probabilities), written beside each detection in ``detections.json``.
    ``detections.json`` also records what a later rebuild needs: ``image_file`` (the copy, relative to
    ``out_dir``), ``rows`` and ``params`` (longest, score and overlap thresholds, ideogram resolution).
    ``separate`` / ``straighten`` / ``splits``: see :func:`make_karyogram` (``params`` records the first two, as an
    absolute path and a bool, for the review's rebuild).
    """
    t0 = time.perf_counter()
    arr, name = (pixels, "image") if pixels is not None else load_image(image)  # pixels: decoded by the caller
    if isinstance(image, (str, Path)):
        name = str(image)
    source = dict(source or {})
    source.setdefault("image", name)
    subtitle = Path(str(source["image"])).name
    if source.get("kind"):
        subtitle += f"  \u00b7  chromosomes from {source['kind']}"
    if source.get("model"):
        subtitle += f" ({source['model']})"
    position = {id(b): i for i, b in enumerate(boxes)}  # _check_boxes keeps the order
    call, layout, timings, boxes = make_karyogram(arr, boxes, rows=rows, longest=longest, low_score=low_score,
                                                  low_mean_score=low_mean_score, overlap_iou=overlap_iou,
                                                  subtitle=subtitle, resolution=resolution, suppressed=suppressed,
                                                  extra_flags=extra_flags, separate=separate,
                                                  straighten=straighten, splits=splits)
    not_counted = {
        "suppressed": [{**d.to_dict(), "kept_index": position.get(id(k)), "kept_class": k.name, "iou": round(v, 3)}
                       for d, k, v in suppressed],
        "below_min_score": [d.to_dict() for d in sorted(below_min_score, key=lambda b: -(b.score or 0.0))],
    }
    if left_out:
        not_counted["left_out"] = [{**d.to_dict(), "p_chromosome": round(float(p), 4)}
                                   for d, p in sorted(left_out, key=lambda t: -t[1])]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"karyogram": out / "karyogram.png", "detections": out / "detections.json",
             "report_html": out / "report.html", "report_json": out / "report.json"}
    tw = time.perf_counter()
    buf = io.BytesIO()
    layout.image.save(buf, format="PNG", optimize=False)
    png = buf.getvalue()
    with atomic_path(paths["karyogram"]) as tmp:
        tmp.write_bytes(png)
    placed = {p.index: p for p in layout.placements}
    dets = []
    for i, b in enumerate(boxes):
        d = {"index": i, **b.to_dict()}
        if call.box_check is not None:
            d["foreground"] = round(call.box_check.foreground[i], 3)
            if i in call.box_check.empty:
                d["empty_box"] = True
        if details is not None and i < len(details):
            d["classifier"] = details[i]
        p = placed.get(i)
        if p is not None:
            d["karyogram_box"] = list(p.box)
            if p.extra:
                d["extra_copy"] = True
            if p.low_confidence:
                d["low_confidence"] = True
        dets.append(d)
    h, w = arr.shape[:2]
    if keep_image:
        paths["image"] = _keep_image(image, arr, name, out)
    params = {"longest": longest, "low_score": low_score, "low_mean_score": low_mean_score,
              "overlap_iou": overlap_iou, "resolution": resolution}
    model_path = getattr(separate, "path", separate)
    if model_path is not None:  # a rebuild (the review's) separates with the same model
        params["separate"] = str(Path(model_path).resolve())
    if straighten:
        params["straighten"] = True
    CellDetections(image=source["image"], width=w, height=h, source=source, call=call.iscn, text=call.text,
                   detections=dets, not_counted=not_counted,
                   image_file=paths["image"].name if keep_image else None,
                   rows=[list(r) for r in parse_rows(rows)], params=params).write(paths["detections"])
    timings["write"] = 1000 * (time.perf_counter() - tw)
    timings["total"] = 1000 * (time.perf_counter() - t0)
    report.write_html(paths["report_html"], call, png, source, timings, not_counted,
                      review=(report_extra or {}).get("review"))
    report.write_json(paths["report_json"], {**report.report_dict(call, source, timings, paths, not_counted),
                                             **(report_extra or {})})
    return KaryogramResult(call=call, boxes=list(boxes), placements=layout.placements, image=layout.image,
                           paths=paths, timings=timings, source=source)


def from_annotation(xml: str | Path | Annotation, out_dir: str | Path, image=None, **kw) -> KaryogramResult:
    """Karyogram of an annotated cell (ground truth, no model): the VOC XML's boxes on its image."""
    ann = xml if isinstance(xml, Annotation) else read_voc(xml, check_image=image is None)
    img = image if image is not None else (ann.pixels() if ann.exif_transpose else ann.image_path)
    shown = image if isinstance(image, (str, Path)) else ann.image_path
    src = {"kind": "annotations", "from": str(ann.xml_path or ""), "image": str(shown)}
    return build_karyogram(img, ann.boxes, out_dir, source=src, **kw)


def check_names(model: ChromosomeFinder) -> None:
    """A class-agnostic detector finds chromosomes but names none: a karyogram needs a classifier beside it."""
    if not model.names:
        raise KaryogramError(f"{model.export_dir or 'the model'}: a class-agnostic detector (one class, "
                             f"'{classes.AGNOSTIC}') finds chromosomes but does not name them (fix: add "
                             "--classifier exported/classifier, a classifier from `karyotf classifier export`)")


def from_detector(model: ChromosomeFinder, image, out_dir: str | Path, min_score: float | None = None,
                  nms_iou: float = NMS_IOU, pixels: np.ndarray | None = None, **kw) -> KaryogramResult:
    """Karyogram of a cell from a model (a :class:`karyotf.find.ChromosomeFinder`: a
    :class:`karyotf.detect.Detector`, or a :class:`karyotf.classify.karyotyper.Karyotyper` whose classifier names
    what its detector finds): ``model.find`` (:mod:`karyotf.find`: detections with ``score >= min_score``, after
    a class-agnostic NMS at ``nms_iou``; the OD API's NMS is per class).  ``min_score`` None: the model's floor
    (``model.min_score``: the export's tuned floor, else MIN_SCORE).

    Nothing is dropped unseen: detections below ``min_score`` and those the NMS removed are listed in
    ``detections.json`` and the report, and a removed box scoring at least ``low_score`` whose class differs from
    the box that kept it is flagged (``suppressed_other_class``): a third 21 lying over a 22 stays visible.
    ``pixels``: the image already decoded (:func:`karyotf.images.load_ahead`); ``image`` then names its file."""
    check_names(model)
    arr = pixels if pixels is not None else load_image(image)[0]
    t0 = time.perf_counter()
    cell = model.find(arr, min_score, nms_iou)
    detect_ms = 1000 * (time.perf_counter() - t0)
    extra = {}
    if cell.details is not None:  # a model that names (a Karyotyper): its joint labelling's flags and details
        extra = {"extra_flags": cell.flags, "details": cell.details, "left_out": cell.left_out}
    described = model.describe()
    src = {"kind": "model", "from": described["from"], "model": described["model"], "min_score": cell.min_score,
           "nms_iou": nms_iou, "image": str(image) if isinstance(image, (str, Path)) else "image"}
    if "classifier" in described:
        src["classifier"] = described["classifier"]
    kept = image if isinstance(image, (str, Path)) else arr  # a path: the review folder keeps the file itself
    res = build_karyogram(kept, cell.boxes, out_dir, source=src, suppressed=cell.suppressed,
                          below_min_score=cell.below, **extra, pixels=arr, **kw)
    res.timings["detect"] = detect_ms
    return res


def read_annotation_for(image: Path, annotations: Path) -> Annotation:
    """The annotation of ``image`` from an XML file or a folder of XML files (matched by file stem)."""
    annotations = Path(annotations)
    if annotations.is_dir():
        cands = [annotations / f"{image.stem}.xml", annotations / "annotations" / f"{image.stem}.xml"]
        xml = next((c for c in cands if c.is_file()), None)
        if xml is None:
            raise AnnotationError(annotations, f"no {image.stem}.xml for image {image.name}",
                                  "name each XML after its image, or pass the XML file itself", kind="missing")
    else:
        xml = annotations
    return read_voc(xml, image_dir=image.parent, image=image)


def karyograms(images: Sequence[str | Path], out_dir: str | Path,
               model: ChromosomeFinder | str | Path | None = None, annotations: str | Path | None = None,
               min_score: float | None = None, nms_iou: float = NMS_IOU, use: str = "auto", progress: bool = True,
               **kw) -> list[KaryogramResult]:
    """Karyograms of several images, from a model (``model``: a :class:`karyotf.find.ChromosomeFinder` the caller
    built, such as a :class:`karyotf.classify.karyotyper.Karyotyper` whose classifier names what its detector
    finds, or an export dir, loaded as a :class:`karyotf.detect.Detector` with ``use``) or from annotations
    (``annotations``: an XML file for one image, or a folder of XML named after the images).

    One image writes into ``out_dir``; several write into ``out_dir/<image stem>/`` and add ``out_dir/calls.csv``.
    One image that fails raises; of several, a cell that fails (no XML, a damaged file, a bad box) does not stop
    the others: its place in the list holds a :class:`KaryogramFailure` and ``calls.csv`` lists it with its error.
    """
    images = [Path(p) for p in images]
    from .layout import parse_rows

    parse_rows(kw.get("rows"))  # a bad --rows fails before a model is loaded
    if not images:
        raise KaryogramError("no image given (fix: name one or more metaphase images)")
    if (model is None) == (annotations is None):
        raise KaryogramError("give either --model EXPORT_DIR (detect) or --annotations XML (ground truth), "
                             "not both and not neither")
    if annotations is not None and len(images) > 1 and Path(annotations).is_file():
        raise KaryogramError(f"{annotations}: one XML file for {len(images)} images "
                             "(fix: give a folder of XML files named after the images)")
    stems = [p.stem for p in images]
    if len(set(stems)) != len(stems):
        raise KaryogramError("two images share a file name stem (fix: give images with distinct names)")
    if len(images) == 1 and not images[0].is_file():
        raise KaryogramError(f"{images[0]}: image not found (fix: check the path)")
    out = Path(out_dir)
    if isinstance(model, (str, Path)):
        from ..detect import Detector

        model = Detector(model, use=use)
    if model is not None:
        check_names(model)
    results = []
    # a stream: the model loaded once, the next image decoded on another core while this one is karyotyped
    iterator = load_ahead(images) if model is not None else ((p, None, None) for p in images)
    if progress and len(images) > 1:
        iterator = tqdm(iterator, desc="karyograms", unit="image", total=len(images))
    for img, pixels, error in iterator:
        dst = out if len(images) == 1 else out / img.stem
        try:
            if not img.is_file():
                raise KaryogramError(f"{img}: image not found (fix: check the path)")
            if error is not None:
                raise KaryogramError(str(error))
            if model is not None:
                results.append(from_detector(model, img, dst, min_score=min_score, nms_iou=nms_iou, pixels=pixels,
                                             **kw))
            else:
                ann = read_annotation_for(img, Path(annotations))
                results.append(from_annotation(ann, dst, image=img, **kw))
        except (KaryotfError, OSError) as exc:
            if len(images) == 1:
                raise
            log.warning("%s: failed, going on with the others: %s", img.name, exc)
            results.append(KaryogramFailure(image=img, error=str(exc)))
    if len(images) > 1:
        buf = io.StringIO()
        wr = csv.writer(buf, lineterminator="\n")
        wr.writerow(["image", "call", "total", "review", "flags", "folder", "error"])
        for img, r in zip(images, results):
            if isinstance(r, KaryogramFailure):
                wr.writerow([img.name, "error", "", "", "", "", r.error])
            else:
                wr.writerow([img.name, r.call.text, r.call.total, ";".join(r.call.review_codes),
                             ";".join(r.call.flag_codes), img.stem, ""])

        atomic_write_text(out / "calls.csv", buf.getvalue())
    return results
