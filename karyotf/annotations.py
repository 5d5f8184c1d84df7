"""Pascal VOC (LabelImg) annotations: read, validate, write.

Coordinates are pixels everywhere in karyotf's API, as VOC writes them: ``0 <= xmin < xmax <= width``.
Reading validates every file and raises :class:`~karyotf.errors.AnnotationError` naming the file, the object
index and the fix; :func:`load_dataset` collects those errors, goes on with the good files (or stops at the
first under ``strict``) and returns a summary of what was used and skipped.

Two layouts are read: images and XML side by side in one folder, or separate ``images/`` and
``annotations/`` folders (as in CIL:54816).  An XML is paired with its image by name: the image whose stem
equals the XML's stem wins, and a ``<filename>`` that names another file is a warning naming both (a copied or
renamed LabelImg file keeps its old ``<filename>``); ``<filename>`` is used only when no image has the XML's stem.
One image claimed by two XML files is an error naming both (:func:`load_dataset` skips the claimant that is not
named after the image, and goes on with the other files).  ``<path>`` (the annotator's own disk) is ignored.
"""
from __future__ import annotations

import logging
import os
import xml.etree.ElementTree as ET
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable

from tqdm import tqdm

from . import classes, images
from .boxcheck import duplicate_pairs
from .defaults import DUPLICATE_IOU
from .errors import AnnotationError, ImageError
from .io import atomic_write_text

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = images.SUFFIXES
ANNOTATION_DIRS = ("annotations", "Annotations", "xml", "labels")
IMAGE_DIRS = ("images", "JPEGImages", "imgs")
CLIP_TOLERANCE = 2.0
"""Boxes that overhang the image by at most this many pixels (annotators' off-by-one) are clipped, not rejected."""


@dataclass(frozen=True)
class Box:
    """One chromosome: a pixel box and its canonical class name (``'1'``..``'22'``, ``'X'``, ``'Y'``)."""

    xmin: float
    ymin: float
    xmax: float
    ymax: float
    name: str
    difficult: bool = False
    truncated: bool = False
    score: float | None = None

    @property
    def label(self) -> int:
        return classes.LABEL_OF[self.name]

    @property
    def width(self) -> float:
        return self.xmax - self.xmin

    @property
    def height(self) -> float:
        return self.ymax - self.ymin

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.xmin + self.xmax) / 2, (self.ymin + self.ymax) / 2)

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.xmin, self.ymin, self.xmax, self.ymax)

    def with_coords(self, xmin: float, ymin: float, xmax: float, ymax: float, **kw) -> "Box":
        return replace(self, xmin=float(xmin), ymin=float(ymin), xmax=float(xmax), ymax=float(ymax), **kw)

    def iou(self, other: "Box") -> float:
        ix = max(0.0, min(self.xmax, other.xmax) - max(self.xmin, other.xmin))
        iy = max(0.0, min(self.ymax, other.ymax) - max(self.ymin, other.ymin))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def to_dict(self) -> dict:
        # a class-agnostic detector's box (classes.AGNOSTIC) has no chromosome label id: null
        d = {"class": self.name, "label": classes.LABEL_OF.get(self.name), "box": [round(v, 2) for v in self.as_tuple()]}
        if self.score is not None:
            d["score"] = round(float(self.score), 4)
        if self.difficult:
            d["difficult"] = True
        if self.truncated:
            d["truncated"] = True
        return d


@dataclass
class Annotation:
    """One image and its chromosome boxes."""

    image_path: Path
    width: int
    height: int
    boxes: list[Box] = field(default_factory=list)
    depth: int = 3
    xml_path: Path | None = None
    clipped_boxes: int = 0
    """How many boxes overhung the image by at most ``CLIP_TOLERANCE`` px and were clipped on reading."""
    clipped_objects: tuple[int, ...] = ()
    """The object indices (in the XML) of those boxes."""
    original: str | None = None
    """For an augmented copy: the image id of the cell it was made from (``<source><original>`` in the XML), so
    that ``karyotf records`` keeps a cell and all its copies in one split."""
    exif_transpose: bool = False
    """Read the image in its EXIF orientation (the boxes were drawn on that view)."""
    image_info: "images.ImageInfo | None" = None
    """How the image is stored, from the full decode that validated it (``None`` when not checked)."""
    pairing_note: str | None = None
    """Set when the XML's ``<filename>`` names another file than the image it was paired with (by stem): the
    warning, naming both."""

    @property
    def filename(self) -> str:
        return self.image_path.name

    @property
    def image_id(self) -> str:
        return self.image_path.stem

    def counts(self) -> Counter:
        return Counter(b.name for b in self.boxes)

    @property
    def cell_id(self) -> str:
        """The cell this image shows: its own id, or for an augmented copy the id of its original."""
        return self.original or self.image_id

    def pixels(self):
        """The image as ``H x W x 3`` ``uint8`` RGB (:func:`karyotf.images.load`, in the annotated view)."""
        return images.load(self.image_path, self.exif_transpose)


@dataclass
class LoadSummary:
    """What :func:`load_dataset` used and skipped, and why."""

    used: int = 0
    skipped: int = 0
    boxes: int = 0
    clipped_boxes: int = 0
    clipped_in: list[str] = field(default_factory=list)
    """``file: objects #i, #j`` for each XML with clipped boxes."""
    errors: list[AnnotationError] = field(default_factory=list)
    images_without_xml: list[str] = field(default_factory=list)
    """Image files in the dataset that no XML describes (not used)."""
    exif_as_stored: list[str] = field(default_factory=list)
    """Images that carry an EXIF orientation and were read as stored (the XML size fits the stored view)."""
    filename_disagrees: list[str] = field(default_factory=list)
    """One line per XML whose ``<filename>`` names another file than the image it was paired with by stem."""
    duplicate_boxes: list[str] = field(default_factory=list)
    """One line per pair of near-identical boxes (IoU >= :data:`karyotf.defaults.DUPLICATE_IOU`, any classes): file
    and object indices; both boxes are kept (one chromosome boxed twice is a labelling error to fix)."""
    empty_boxes: list[str] = field(default_factory=list)
    """One line per box with (almost) no chromosome pixels (:mod:`karyotf.boxcheck`; ``karyotf records`` measures
    them): file and object index."""

    def by_kind(self) -> Counter:
        return Counter(e.kind for e in self.errors)

    def text(self) -> str:
        lines = [f"annotations: {self.used} used ({self.boxes} chromosomes), {self.skipped} skipped"]
        if self.clipped_boxes:
            lines.append(f"  {self.clipped_boxes} box(es) overhanging the image by <= {CLIP_TOLERANCE:g} px clipped"
                         + (f" in {len(self.clipped_in)} file(s): {_some(self.clipped_in)}" if self.clipped_in
                            else ""))
        for what, items in ((f"pair(s) of duplicate boxes (IoU >= {_duplicate_iou():g}, any classes), both kept "
                             "(fix: delete one box of each pair)", self.duplicate_boxes),
                            ("box(es) on bare background (almost no chromosome pixels): a labelling error? (fix: "
                             "delete or move the box)", self.empty_boxes)):
            if items:
                lines.append(f"  {len(items)} {what}:")
                lines.extend(f"    {n}" for n in items[:10])
                if len(items) > 10:
                    lines.append(f"    ... ({len(items) - 10} more, in stats.json)")
        if self.filename_disagrees:
            lines.append(f"  {len(self.filename_disagrees)} XML file(s) whose <filename> names another image; "
                         "paired by file name:")
            lines.extend(f"    {n}" for n in self.filename_disagrees[:10])
            if len(self.filename_disagrees) > 10:
                lines.append(f"    ... ({len(self.filename_disagrees) - 10} more)")
        for kind, n in sorted(self.by_kind().items()):
            lines.append(f"  skipped for {kind}: {n}")
        missing = [e.path.name for e in self.errors if e.kind == "missing_image"]
        if missing:
            lines.append(f"  {len(missing)} XML file(s) without an image: {_some(missing)}")
        if self.images_without_xml:
            lines.append(f"  {len(self.images_without_xml)} image(s) without an XML, not used: "
                         f"{_some(self.images_without_xml)} (label them, or move them out of the dataset)")
        if self.exif_as_stored:
            lines.append(f"  {len(self.exif_as_stored)} image(s) carry an EXIF orientation and were read as stored, "
                         f"as TensorFlow reads them: {_some(self.exif_as_stored)} (if their boxes were drawn on the "
                         "turned view, pass --exif-transpose)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"used": self.used, "skipped": self.skipped, "boxes": self.boxes,
                "clipped_boxes": self.clipped_boxes, "clipped_in": list(self.clipped_in), "skipped_by_kind": dict(self.by_kind()),
                "errors": [str(e) for e in self.errors], "images_without_xml": list(self.images_without_xml),
                "exif_read_as_stored": list(self.exif_as_stored),
                "filename_disagrees": list(self.filename_disagrees),
                "duplicate_boxes": list(self.duplicate_boxes), "empty_boxes": list(self.empty_boxes)}


def _duplicate_iou() -> float:
    return DUPLICATE_IOU


def duplicate_lines(ann: Annotation) -> list[str]:
    """``file: objects #i (class) and #j (class), IoU v`` for each pair of near-identical boxes of ``ann``."""
    name = ann.xml_path.name if ann.xml_path else ann.filename
    return [f"{name}: objects #{i} ({ann.boxes[i].name}) and #{j} ({ann.boxes[j].name}), IoU {v:.2f}"
            for i, j, v in duplicate_pairs(ann.boxes)]


def _some(names: list[str], n: int = 5) -> str:
    return ", ".join(names[:n]) + (f", ... ({len(names) - n} more)" if len(names) > n else "")


def _text(node: ET.Element, tag: str) -> str | None:
    child = node.find(tag)
    return child.text.strip() if child is not None and child.text is not None else None


def _number(xml_path: Path, node: ET.Element, tag: str, obj: int | None, fix: str) -> float:
    raw = _text(node, tag)
    if raw is None:
        raise AnnotationError(xml_path, f"<{tag}> is missing", fix, obj, kind="malformed_xml")
    try:
        return float(raw)
    except ValueError:
        raise AnnotationError(xml_path, f"<{tag}> is {raw!r}, not a number", fix, obj, kind="malformed_xml") from None


def find_image(xml_path: Path, filename: str | None, image_dir: Path | None = None) -> Path | None:
    """The image an XML file describes: the image named after the XML (its stem), else the one ``<filename>``
    names; looked for in ``image_dir``, beside the XML, then in a sibling ``images/`` folder."""
    return pair_image(xml_path, filename, image_dir)[0]


def pair_image(xml_path: Path, filename: str | None, image_dir: Path | None = None) -> tuple[Path | None, str | None]:
    """``(image, note)``: the image :func:`find_image` pairs with ``xml_path``, and a warning naming both files when
    ``<filename>`` names another image than the one named after the XML (``None`` when they agree)."""
    dirs = []
    if image_dir is not None:
        dirs.append(Path(image_dir))
    dirs.append(xml_path.parent)
    dirs.extend(xml_path.parent.parent / d for d in IMAGE_DIRS)
    named = Path(filename.replace("\\", "/")).name if filename else None
    by_stem = [xml_path.stem + s for s in IMAGE_SUFFIXES] + [xml_path.stem + s.upper() for s in IMAGE_SUFFIXES]
    if named and Path(named).stem == xml_path.stem:
        by_stem.insert(0, named)  # <filename> agrees with the stem: its exact suffix first
    for names in (by_stem, [named] if named else []):
        for d in dirs:
            for name in names:
                candidate = d / name
                if candidate.is_file():
                    note = None
                    if named and candidate.name != named and names is by_stem:
                        note = (f"{xml_path}: <filename> is {named}, but the XML is named after {candidate.name}; "
                                f"paired with {candidate.name} (fix: set <filename> to {candidate.name}, or rename "
                                "the XML after its image)")
                    return candidate, note
    return None, None


def read_voc(xml_path: str | Path, image_dir: str | Path | None = None, check_image: bool = True,
             clip_tolerance: float = CLIP_TOLERANCE, exif_transpose: bool = False,
             image: str | Path | None = None) -> Annotation:
    """Read and validate one LabelImg Pascal VOC file.

    The image is the one named after the XML, else the one ``<filename>`` names (see the module doc); ``image``:
    the image this XML was given for (``karyotf karyogram IMAGE --annotations XML``), which then wins (a
    ``<filename>`` naming another file, with an XML named after another image, is a warning naming both).

    ``check_image``: decode the image completely (a damaged file is an error) and check its size against the XML
    (:func:`check_image_of`).  ``exif_transpose``: the boxes were drawn on the image turned by its EXIF
    orientation; read it that way.  Raises :class:`AnnotationError` (with ``kind`` one of ``malformed_xml``,
    ``missing_image``, ``unreadable_image``, ``size_mismatch``, ``unknown_class``, ``bad_box``, ``empty``).
    """
    ann = _parse_voc(Path(xml_path), image_dir, clip_tolerance, exif_transpose, image)
    if ann.pairing_note:
        log.warning("%s", ann.pairing_note)
    return check_image_of(ann) if check_image else ann


def check_image_of(ann: Annotation) -> Annotation:
    """Decode ``ann``'s image completely and check its size against the XML's; sets ``image_info`` and ``depth``.

    Raises :class:`AnnotationError` (``unreadable_image`` naming the image and its XML, or ``size_mismatch``,
    naming EXIF and ``--exif-transpose`` where the image's EXIF orientation explains the mismatch)."""
    xml_path, image_path, width, height = ann.xml_path, ann.image_path, ann.width, ann.height
    exif_transpose = ann.exif_transpose
    size_fix = "set <size><width>/<height> to the image's real size (re-open the image in LabelImg and save)"
    try:
        info = images.inspect(image_path, exif_transpose)
    except ImageError as exc:
        raise AnnotationError(image_path, f"{exc.problem} (the image of {xml_path.name})", exc.fix,
                              kind="unreadable_image") from None
    if (info.width, info.height) != (width, height):
        if not exif_transpose and info.exif_swaps_size and (info.height, info.width) == (width, height):
            raise AnnotationError(
                xml_path, f"<size> says {width}x{height} but {image_path.name} is stored as "
                f"{info.width}x{info.height}: its EXIF orientation ({info.exif_words}) turns it to "
                f"{width}x{height}, the view the boxes were drawn on; karyotf, like TensorFlow, reads pixels as "
                "stored", "pass --exif-transpose (exif_transpose=True) to read images in their EXIF "
                "orientation, or re-save the image upright without EXIF rotation", kind="size_mismatch")
        raise AnnotationError(xml_path, f"<size> says {width}x{height} but {image_path.name} is "
                              f"{info.width}x{info.height}", size_fix, kind="size_mismatch")
    return replace(ann, depth=info.channels, image_info=info)


def _parse_voc(xml_path: Path, image_dir, clip_tolerance: float, exif_transpose: bool,
               image: str | Path | None = None) -> Annotation:
    """The XML half of :func:`read_voc`: everything but the image's pixels."""
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        raise AnnotationError(xml_path, f"malformed XML ({exc})",
                              "re-save the file from LabelImg or repair the XML by hand", kind="malformed_xml") from None
    except OSError as exc:
        raise AnnotationError(xml_path, f"cannot read ({exc.strerror})", "check the path and permissions",
                              kind="malformed_xml") from None
    if root.tag != "annotation":
        raise AnnotationError(xml_path, f"root element is <{root.tag}>, not <annotation>",
                              "this is not a Pascal VOC file; export VOC from LabelImg/Roboflow", kind="malformed_xml")
    filename = _text(root, "filename")
    if image is not None:
        image_path, note = Path(image), None
        named = Path(filename.replace("\\", "/")).name if filename else None
        if image_path.stem != xml_path.stem and named and named != image_path.name:
            note = (f"{xml_path}: given for {image_path.name}, but its <filename> is {named} and it is named "
                    f"after {xml_path.stem}; check that it describes {image_path.name}")
    else:
        image_path, note = pair_image(xml_path, filename, Path(image_dir) if image_dir else None)
    if image_path is None:
        raise AnnotationError(xml_path, f"image {filename or xml_path.stem + '.*'} not found",
                              "put the image beside the XML or in a sibling images/ folder, or fix <filename>",
                              kind="missing_image")
    size = root.find("size")
    size_fix = "set <size><width>/<height> to the image's real size (re-open the image in LabelImg and save)"
    if size is None:
        raise AnnotationError(xml_path, "<size> is missing", size_fix, kind="malformed_xml")
    width = int(_number(xml_path, size, "width", None, size_fix))
    height = int(_number(xml_path, size, "height", None, size_fix))
    depth_raw = _text(size, "depth")
    depth = int(depth_raw) if depth_raw and depth_raw.isdigit() else 3
    if width <= 0 or height <= 0:
        raise AnnotationError(xml_path, f"<size> is {width}x{height}", size_fix, kind="size_mismatch")

    objects = root.findall("object")
    if not objects:
        raise AnnotationError(xml_path, "no <object>: the image has no chromosome boxes",
                              "label the chromosomes, or remove the image and XML from the set", kind="empty")
    boxes = []
    clipped: list[int] = []
    for i, obj in enumerate(objects):
        raw_name = _text(obj, "name")
        try:
            name = classes.canonical(raw_name or "")
        except classes.UnknownClassError as exc:
            raise AnnotationError(xml_path, str(exc), "rename the object to one of 1..22, X, Y (or A1..G22)", i,
                                  kind="unknown_class") from None
        bnd = obj.find("bndbox")
        box_fix = "redraw the box inside the image in LabelImg"
        if bnd is None:
            raise AnnotationError(xml_path, f"object {raw_name!r} has no <bndbox>", box_fix, i, kind="malformed_xml")
        xmin, ymin, xmax, ymax = (_number(xml_path, bnd, t, i, box_fix) for t in ("xmin", "ymin", "xmax", "ymax"))
        if xmax <= xmin or ymax <= ymin:
            raise AnnotationError(xml_path, f"box of {raw_name!r} has zero or negative area "
                                  f"({xmin:g},{ymin:g})-({xmax:g},{ymax:g})", box_fix, i, kind="bad_box")
        overhang = max(-xmin, -ymin, xmax - width, ymax - height)
        if overhang > clip_tolerance:
            raise AnnotationError(xml_path, f"box of {raw_name!r} ({xmin:g},{ymin:g})-({xmax:g},{ymax:g}) lies "
                                  f"outside the {width}x{height} image", box_fix, i, kind="bad_box")
        if overhang > 0:
            clipped.append(i)
        xmin, ymin = max(0.0, xmin), max(0.0, ymin)
        xmax, ymax = min(float(width), xmax), min(float(height), ymax)
        if xmax <= xmin or ymax <= ymin:
            raise AnnotationError(xml_path, f"box of {raw_name!r} lies on the image border with no area inside",
                                  box_fix, i, kind="bad_box")
        boxes.append(Box(xmin, ymin, xmax, ymax, name, difficult=_text(obj, "difficult") == "1",
                         truncated=_text(obj, "truncated") == "1"))
    return Annotation(image_path=image_path, width=width, height=height, boxes=boxes, depth=depth,
                      xml_path=xml_path, clipped_boxes=len(clipped), clipped_objects=tuple(clipped), original=_text(root, "source/original"),
                      exif_transpose=exif_transpose, pairing_note=note)


def voc_xml(ann: Annotation, folder: str = "images") -> str:
    """LabelImg-style Pascal VOC XML text for an annotation (class names written canonically)."""
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = folder
    ET.SubElement(root, "filename").text = ann.filename
    ET.SubElement(root, "path").text = ann.filename
    source = ET.SubElement(root, "source")
    ET.SubElement(source, "database").text = "karyotf"
    if ann.original:
        ET.SubElement(source, "original").text = ann.original
    size = ET.SubElement(root, "size")
    ET.SubElement(size, "width").text = str(int(ann.width))
    ET.SubElement(size, "height").text = str(int(ann.height))
    ET.SubElement(size, "depth").text = str(int(ann.depth))
    ET.SubElement(root, "segmented").text = "0"
    for b in ann.boxes:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = b.name
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "1" if b.truncated else "0"
        ET.SubElement(obj, "difficult").text = "1" if b.difficult else "0"
        bnd = ET.SubElement(obj, "bndbox")
        for tag, v in zip(("xmin", "ymin", "xmax", "ymax"), b.as_tuple()):
            ET.SubElement(bnd, tag).text = str(int(round(v)))
    ET.indent(root, space="   ")
    return ET.tostring(root, encoding="unicode") + "\n"


def write_voc(ann: Annotation, xml_path: str | Path, folder: str = "images") -> Path:
    """Write an annotation as VOC XML, atomically."""
    return atomic_write_text(xml_path, voc_xml(ann, folder))


def find_xml_files(src: str | Path) -> list[Path]:
    """The XML files of a dataset folder (either layout) or a single XML file, sorted."""
    src = Path(src)
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise AnnotationError(src, "no such file or folder", "give a folder with VOC XML files (and images)",
                              kind="missing")
    for d in ANNOTATION_DIRS:
        if (src / d).is_dir():
            files = sorted((src / d).glob("*.xml"))
            if files:
                return files
    files = sorted(src.glob("*.xml"))
    if not files:
        files = sorted(src.rglob("*.xml"))
    return files


def image_files(src: str | Path) -> list[Path]:
    """The image files of a dataset folder in either layout (beside the XML, or in ``images/`` folders).

    In the ``images/`` + ``annotations/`` layout the folder's top level is not data: a picture there (``karyotf
    augment``'s ``augment_grid.png``) is not an image of the dataset."""
    src = Path(src)
    if not src.is_dir():
        return []
    subs = [src / d for d in (*IMAGE_DIRS, *ANNOTATION_DIRS) if (src / d).is_dir()]
    dirs = subs or [src]
    suffixes = {s.lower() for s in IMAGE_SUFFIXES}
    return sorted(p for d in dirs if d.is_dir() for p in d.iterdir() if p.suffix.lower() in suffixes and p.is_file())


def _one_xml_per_image(parsed: list) -> list:
    """An image claimed by two or more XML files: the one named after the image keeps it; each other claimant
    becomes an ``image_claimed_twice`` error naming both XML files (all of them when none is named after it)."""
    claims: dict[str, list[int]] = {}
    for i, item in enumerate(parsed):
        if isinstance(item, Annotation):
            claims.setdefault(os.path.normpath(os.path.abspath(item.image_path)), []).append(i)
    out = list(parsed)
    for idx in claims.values():
        if len(idx) < 2:
            continue
        anns = [parsed[i] for i in idx]
        owners = [a for a in anns if a.xml_path.stem == a.image_path.stem]
        owner = owners[0] if len(owners) == 1 else None
        for i, a in zip(idx, anns):
            if a is owner:
                continue
            others = [b.xml_path.name for b in anns if b is not a]
            kept = (f"; {owner.xml_path.name} is named after it and keeps it" if owner is not None
                    else "; none is named after it, so none is used")
            out[i] = AnnotationError(
                a.xml_path, f"{a.image_path.name} is claimed by {a.xml_path.name} and by {', '.join(others)}{kept}",
                f"rename {a.xml_path.name} after the image it describes (and set its <filename>), or remove it",
                kind="image_claimed_twice")
    return out


def load_dataset(src: str | Path | Iterable[Path], strict: bool = False, check_images: bool = True,
                 progress: bool = True, clip_tolerance: float = CLIP_TOLERANCE, exif_transpose: bool = False,
                 workers: int | None = None) -> tuple[list[Annotation], LoadSummary]:
    """Read and validate every VOC file of a dataset, decoding every image completely (on all cores).

    Bad files are logged and skipped (``strict=False``) or raise at the first (``strict=True``).  The summary
    also lists images that no XML describes and images read as stored although they carry an EXIF orientation.
    """
    files = find_xml_files(src) if isinstance(src, (str, Path)) else [Path(p) for p in src]
    if not files:
        raise AnnotationError(Path(str(src)), "no VOC XML files found",
                              "point at a folder with *.xml beside the images or in annotations/", kind="missing")
    summary = LoadSummary()
    out: list[Annotation] = []

    def fail(exc: AnnotationError) -> None:
        if strict:
            raise exc
        log.warning("skipped: %s", exc)
        summary.errors.append(exc)
        summary.skipped += 1

    bar = None
    if progress:
        bar = tqdm(total=len(files), desc="reading VOC", unit="file", leave=False)
    parsed: list[Annotation | AnnotationError] = []
    for xml in files:  # the XML: Python work, in this thread
        try:
            parsed.append(_parse_voc(xml, None, clip_tolerance, exif_transpose))
        except AnnotationError as exc:
            parsed.append(exc)
    parsed = _one_xml_per_image(parsed)
    for item in parsed:
        if isinstance(item, Annotation) and item.pairing_note:
            log.warning("%s", item.pairing_note)
            summary.filename_disagrees.append(item.pairing_note)

    def check(item):
        if isinstance(item, AnnotationError) or not check_images:
            return item
        try:
            return check_image_of(item)
        except AnnotationError as exc:
            return exc

    # then every image decoded completely on all cores (Pillow decodes with the GIL released); decoding while
    # this thread parses XML was slower, the threads waiting on each other for the GIL
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        for got in pool.map(check, parsed):
            if bar:
                bar.update()
            if isinstance(got, AnnotationError):
                try:
                    fail(got)
                except AnnotationError:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
                continue
            summary.clipped_boxes += got.clipped_boxes
            if got.clipped_objects:
                summary.clipped_in.append(f"{got.xml_path.name} (object " + ", ".join(
                    f"#{i}" for i in got.clipped_objects) + ")")
            summary.duplicate_boxes.extend(duplicate_lines(got))
            if got.image_info is not None and got.image_info.exif_orientation != 1 and not exif_transpose:
                summary.exif_as_stored.append(got.image_path.name)
            out.append(got)
            summary.used += 1
            summary.boxes += len(got.boxes)
    if bar:
        bar.close()
    if isinstance(src, (str, Path)) and Path(src).is_dir():
        def key(p: Path) -> str:  # no resolve(): 7,200 lstat calls on 600 cells for the same answer here
            return os.path.normpath(os.path.abspath(p))

        described = {key(a.image_path) for a in out}
        described |= {key(e.path) for e in summary.errors if e.kind == "unreadable_image"}
        stems = {x.stem for x in files}
        summary.images_without_xml = [p.name for p in image_files(src)
                                      if key(p) not in described and p.stem not in stems]
        if summary.images_without_xml:
            log.warning("%d image(s) without an XML: %s", len(summary.images_without_xml),
                        _some(summary.images_without_xml))
    return out, summary
