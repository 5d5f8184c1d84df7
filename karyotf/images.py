"""The one image decoder: every stage reads pixels through it, and TensorFlow trains on the same pixels.

Files (JPEG, PNG, BMP, TIFF, GIF) and arrays become one thing: an ``H x W x 3`` ``uint8`` RGB array, by these
rules, the same everywhere (records, augment, detect, evaluate, karyogram):

- **Fully decoded.** A file is decoded to its last pixel when it is read, so a damaged or cut-short image is an
  :class:`ImageError` (``kind='unreadable_image'``) naming the file, never a crash later in training.
  :func:`inspect` (validation only, no pixels wanted) reads a JPEG's coded data to its end at 1/8 scale
  (libjpeg's DCT scaling: every block is decoded, the same truncation and data errors are raised, only the full
  inverse DCT is skipped); :func:`load` always decodes at full size.
- **Colour.** RGB as it is; grey (``L``, 16-bit, float) repeated into three channels; an alpha channel
  (``RGBA``, ``LA``, a palette's transparency) is dropped, not blended, as ``tf.io.decode_png(channels=3)``
  does; a palette is expanded; CMYK, YCbCr and LAB are converted to RGB by Pillow.
- **16-bit to 8-bit: the high byte** (``v >> 8``), exactly what TensorFlow's PNG decoder does with a 16-bit
  PNG at ``dtype=uint8``.  A 12-bit camera image stored in 16 bits therefore comes out dark (at most 15):
  stretch it to the full 16-bit range first.  Integer images beyond 16 bits are refused.
- **Floats** (TIFF mode ``F`` and float arrays): values in 0..1 are scaled by 255, values in 0..255 are taken as
  they are, then truncated to integers; anything else (negative, above 255, NaN) is refused.
- **Arrays**: ``uint8`` as it is, ``uint16`` by the 16-bit rule, other integer types only with values in 0..255,
  floats by the float rule; ``H x W``, ``H x W x 1``, ``H x W x 3`` or ``H x W x 4`` (alpha dropped).
- **EXIF orientation is ignored** (pixels as stored, as TensorFlow decodes them) unless ``exif_transpose=True``,
  which turns the image into the view a phone or a photo viewer shows.
- **JPEG** is decoded by libjpeg's accurate integer DCT (Pillow's); :mod:`karyotf.odapi` makes the OD API's
  training decoder use the same DCT (TF's default is the fast one, up to 4 grey levels apart), so a file gives
  the same pixels in training and at detection time.

TFRecords store JPEG (grey or RGB) and 8-bit PNG files byte for byte (TensorFlow decodes those to exactly these
pixels); every other image is stored as a PNG of the pixels decoded here (:func:`record_bytes`).
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .classes import GROUP_COLOURS, GROUP_OF
from .errors import ImageError

# Imports inside functions, and why: Pillow (heavy: loaded when an image is decoded or drawn).

SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
"""Image files karyotf looks for beside annotations."""

EXIF_ORIENTATION_TAG = 0x0112
_SWAPS_SIZE = {5, 6, 7, 8}
"""EXIF orientations that turn the image by 90 degrees (width and height swap)."""
_EXIF_WORDS = {2: "mirrored", 3: "rotated 180\u00b0", 4: "flipped vertically", 5: "mirrored and rotated 90\u00b0",
               6: "rotated 90\u00b0 clockwise", 7: "mirrored and rotated 90\u00b0", 8: "rotated 90\u00b0 counter-clockwise"}

_TF_AS_IS = {"JPEG": {"L", "RGB"}, "PNG": {"L", "RGB", "RGBA", "LA", "P"}}
"""File formats and Pillow modes that TensorFlow decodes (channels=3) to exactly this module's pixels."""


@dataclass(frozen=True)
class ImageInfo:
    """What :func:`inspect` found: the size as karyotf reads the image, and how it is stored."""

    path: Path
    width: int
    height: int
    channels: int
    format: str
    mode: str
    exif_orientation: int = 1
    exif_transpose: bool = False

    @property
    def stored_as_is(self) -> bool:
        """True when a TFRecord can hold the file's bytes unchanged (TensorFlow decodes them to these pixels)."""
        return self.mode in _TF_AS_IS.get(self.format, ()) and not (self.exif_transpose and self.exif_orientation != 1)

    @property
    def exif_words(self) -> str:
        return _EXIF_WORDS.get(self.exif_orientation, f"orientation {self.exif_orientation}")

    @property
    def exif_swaps_size(self) -> bool:
        return self.exif_orientation in _SWAPS_SIZE


def _name(source) -> str:
    return str(source) if isinstance(source, (str, Path)) else "image"


def _open(source):
    """A PIL image from a path or bytes (not yet decoded)."""
    from PIL import Image, UnidentifiedImageError

    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            return Image.open(io.BytesIO(bytes(source)))
        return Image.open(Path(source))
    except FileNotFoundError:
        raise ImageError(source, "no such image (file not found)", "check the path", kind="missing_image") from None
    except IsADirectoryError:
        raise ImageError(source, "is a folder, not an image", "give an image file", kind="missing_image") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        if not isinstance(source, (bytes, bytearray, memoryview)) and _is_empty(source):
            raise ImageError(source, "is empty (0 bytes)", "copy the image again; the file was truncated to "
                             "nothing (an interrupted copy or download?)") from None
        raise ImageError(source, f"not a readable image ({exc})", "give a JPEG, PNG, BMP or TIFF file") from None


def _is_empty(path) -> bool:
    try:
        return Path(path).stat().st_size == 0
    except OSError:
        return False


def _exif_orientation(im) -> int:
    try:
        value = im.getexif().get(EXIF_ORIENTATION_TAG, 1)
        return int(value) if int(value) in range(1, 9) else 1
    except Exception:  # a broken EXIF block is not a broken image
        return 1


def _decoded(im, source, exif_transpose: bool):
    """Decode every pixel of ``im`` (raises :class:`ImageError` on a damaged file); apply EXIF if asked."""
    try:
        im.load()
    except Exception as exc:  # PIL raises OSError, SyntaxError, struct.error, ... on damaged data
        raise ImageError(source, f"damaged image, cannot be decoded to the end ({type(exc).__name__}: {exc})",
                         "replace the file with an intact copy (re-export or re-copy it)") from None
    if exif_transpose and _exif_orientation(im) != 1:
        from PIL import ImageOps

        im = ImageOps.exif_transpose(im)
    return im


def _pil_to_rgb8(im, source) -> np.ndarray:
    mode = im.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = im.convert("RGBA" if mode in ("RGBA", "RGBa", "PA") else "LA")
        arr = np.asarray(im)
        return to_rgb8(arr[..., :3] if arr.shape[-1] == 4 else arr[..., :1], source)
    if mode == "P":
        return to_rgb8(np.asarray(im.convert("RGBA"))[..., :3], source)
    if mode in ("RGB", "L"):
        return to_rgb8(np.asarray(im), source)
    if mode == "1":
        return to_rgb8(np.asarray(im.convert("L")), source)
    if mode.startswith("I"):  # 16-bit (I;16, I;16B, ...) or 32-bit integer; a 16-bit PNG opens as "I"
        arr = np.asarray(im)
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 65535):
            raise ImageError(source, f"{mode} image with values {int(arr.min())}..{int(arr.max())}, beyond 16 bits",
                             "save it as an 8- or 16-bit image")
        return to_rgb8(arr.astype(np.uint16), source)
    if mode == "F":
        return to_rgb8(np.asarray(im), source)
    return to_rgb8(np.asarray(im.convert("RGB")), source)  # CMYK, YCbCr, LAB, HSV


def to_rgb8(arr, source="image array") -> np.ndarray:
    """An array as ``H x W x 3`` ``uint8`` by the module's rules (see the module doc)."""
    arr = np.asarray(arr)
    fix = "pass an H x W or H x W x 3 array: uint8, uint16, or float in 0..1 or 0..255"
    if arr.ndim == 3 and arr.shape[-1] == 4:
        arr = arr[..., :3]
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] != 3) or min(arr.shape[:2], default=0) < 1:
        raise ImageError(source, f"shape {arr.shape}: expected HxWx3 or HxW", fix)
    if arr.dtype == np.uint8:
        out = arr
    elif arr.dtype == np.uint16:
        out = (arr >> 8).astype(np.uint8)
    elif arr.dtype == np.bool_:
        raise ImageError(source, "boolean image array (a mask?)", fix)
    elif np.issubdtype(arr.dtype, np.integer):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 255:
            raise ImageError(source, f"{arr.dtype} image array with values {lo}..{hi}",
                             "cast 16-bit data to uint16, or scale it to 0..255")
        out = arr.astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ImageError(source, "float image array with NaN or infinite values", fix)
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0 or hi > 255:
            raise ImageError(source, f"float image array with values {lo:g}..{hi:g}", fix)
        scaled = arr * 255.0 if hi <= 1.0 else arr
        out = np.clip(scaled, 0, 255).astype(np.uint8)  # truncated, as numpy casts
    else:
        raise ImageError(source, f"image array of dtype {arr.dtype}", fix)
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=-1)
    return np.ascontiguousarray(out)


def load(source, exif_transpose: bool = False) -> np.ndarray:
    """Pixels of a path, encoded bytes, PIL image or array: ``H x W x 3`` ``uint8`` RGB (see the module doc)."""
    from PIL import Image

    if isinstance(source, Image.Image):
        return _pil_to_rgb8(_decoded(source, getattr(source, "filename", "") or "image", exif_transpose),
                            getattr(source, "filename", "") or "image")
    if isinstance(source, (str, Path, bytes, bytearray, memoryview)):
        name = _name(source) if isinstance(source, (str, Path)) else "encoded image"
        with _open(source) as im:
            return _pil_to_rgb8(_decoded(im, name, exif_transpose), name)
    return to_rgb8(source)


def inspect(path: str | Path, exif_transpose: bool = False) -> ImageInfo:
    """Decode a file completely (raising :class:`ImageError` if it is damaged) and say how it is stored.

    ``width`` / ``height`` are the size as karyotf reads it (after EXIF transposing, if asked).
    """
    path = Path(path)
    with _open(path) as im:
        fmt, mode = (im.format or "").upper(), im.mode
        orientation = _exif_orientation(im)
        if fmt == "JPEG":  # every block decoded, at 1/8 scale (see the module doc); the size is the file's
            w, h = im.size
            im.draft(mode, (max(1, w // 8), max(1, h // 8)))
            _decoded(im, path, False)
            if exif_transpose and orientation in _SWAPS_SIZE:
                w, h = h, w
        else:
            w, h = _decoded(im, path, exif_transpose).size
        channels = 1 if mode in ("L", "1", "F") or mode.startswith("I") else 3
    return ImageInfo(path=path, width=w, height=h, channels=channels, format=fmt, mode=mode,
                     exif_orientation=orientation, exif_transpose=exif_transpose)


def png_bytes(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def record_bytes(path: str | Path, exif_transpose: bool = False,
                 info: ImageInfo | None = None) -> tuple[bytes, str]:
    """(encoded bytes, ``'jpeg'`` | ``'png'``) for a TFRecord: the file as it is when TensorFlow decodes it to
    :func:`load`'s pixels, else a PNG of those pixels (16-bit, TIFF, BMP, CMYK, EXIF-transposed ...)."""
    path = Path(path)
    info = info or inspect(path, exif_transpose)
    if info.stored_as_is:
        return path.read_bytes(), "jpeg" if info.format == "JPEG" else "png"
    return png_bytes(load(path, exif_transpose)), "png"


def draw_boxes(image: np.ndarray, boxes, line: int = 2):
    """A PIL picture of ``image`` (HxWx3 uint8) with ``boxes`` drawn, coloured by Denver group
    (:data:`karyotf.classes.GROUP_COLOURS`) and labelled ``name`` (``*`` when truncated) and the score if any."""
    from PIL import Image, ImageDraw, ImageFont

    im = Image.fromarray(image).convert("RGB")
    draw = ImageDraw.Draw(im)
    font = ImageFont.load_default()
    for b in sorted(boxes, key=lambda b: b.score or 0.0):
        colour = GROUP_COLOURS.get(GROUP_OF.get(b.name, ""), (255, 255, 0))
        draw.rectangle([b.xmin, b.ymin, b.xmax, b.ymax], outline=colour, width=line)
        label = b.name + ("*" if b.truncated else "") + ("" if b.score is None else f" {b.score:.2f}")
        tx, ty = b.xmin + 1, max(0.0, b.ymin - 11)
        tw = draw.textlength(label, font=font)
        draw.rectangle([tx - 1, ty, tx + tw + 1, ty + 10], fill=colour)
        draw.text((tx, ty), label, fill=(255, 255, 255), font=font)
    return im


def load_ahead(paths, ahead: int = 1):
    """Yield ``(path, pixels, error)`` for each path in order, decoding the next ``ahead`` images on a worker
    thread while the caller works on the current one (PIL decodes with the GIL released, so on 2 cores the decoding
    runs beside the model).  A file that does not decode gives ``pixels`` None and its ``ImageError`` (or
    ``OSError``): the caller lists it and goes on."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    paths = list(paths)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="karyotf-decode") as pool:
        queue = deque()
        for p in paths[:ahead + 1]:
            queue.append(pool.submit(load, p))
        for i, p in enumerate(paths):
            future = queue.popleft()
            if i + ahead + 1 < len(paths):
                queue.append(pool.submit(load, paths[i + ahead + 1]))
            try:
                yield p, future.result(), None
            except (ImageError, OSError) as exc:
                yield p, None, exc
