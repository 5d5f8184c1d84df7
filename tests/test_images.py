"""karyotf.images: one decoder, one rule for each kind of file and array, the same pixels TensorFlow trains on."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from karyotf import images
from karyotf.errors import ImageError


def _png(arr, mode=None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, format="PNG")
    return buf.getvalue()


def _png16(arr16: np.ndarray) -> bytes:
    import cv2

    ok, enc = cv2.imencode(".png", arr16[..., ::-1] if arr16.ndim == 3 else arr16)
    assert ok
    return enc.tobytes()


RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, (23, 31, 3), dtype=np.uint8)
GREY16 = RNG.integers(0, 65536, (23, 31), dtype=np.uint16)


def test_arrays_one_rule():
    grey = RGB[..., 0]
    assert (images.load(grey) == np.repeat(grey[..., None], 3, -1)).all()
    assert (images.load(np.dstack([RGB, RGB[..., :1]])) == RGB).all()  # alpha dropped
    assert (images.load(GREY16)[..., 0] == (GREY16 >> 8)).all()  # 16-bit: the high byte, never clipped
    as01 = images.load(RGB.astype(np.float32) / 255.0)
    assert np.abs(as01.astype(int) - RGB).max() <= 1  # floats in 0..1 are scaled, not cast to black
    assert (images.load(RGB.astype(np.float64)) == RGB).all()  # floats in 0..255 as they are
    assert (images.load(RGB.astype(np.int64)) == RGB).all()
    for bad, match in [(np.full((4, 4), 300, np.int32), "cast 16-bit data to uint16"),
                       (np.full((4, 4), 256.0), "values"), (np.full((4, 4), np.nan), "NaN"),
                       (np.zeros((4, 4), bool), "boolean"), (np.zeros((4, 4, 2), np.uint8), "expected HxWx3")]:
        with pytest.raises(ImageError, match=match):
            images.load(bad)


@pytest.mark.parametrize("kind", ["png16_grey", "png16_rgb", "tiff16", "tiff_float", "bmp", "rgba", "palette",
                                  "cmyk_jpeg", "grey_jpeg"])
def test_files_decode_like_tensorflow(tmp_path, kind):
    """Every kind of file gives the same pixels from karyotf.images and from TF decoding its record bytes."""
    import tensorflow as tf

    import karyotf.odapi  # noqa: F401  (the accurate-DCT shim for JPEG)
    from tf_slim.data import tfexample_decoder

    path = tmp_path / {"tiff16": "a.tif", "tiff_float": "a.tif", "bmp": "a.bmp", "cmyk_jpeg": "a.jpg",
                       "grey_jpeg": "a.jpg"}.get(kind, "a.png")
    if kind == "png16_grey":
        path.write_bytes(_png16(GREY16))
        expect = np.repeat((GREY16 >> 8)[..., None], 3, -1)
    elif kind == "png16_rgb":
        rgb16 = RNG.integers(0, 65536, (23, 31, 3), dtype=np.uint16)
        path.write_bytes(_png16(rgb16))
        expect = (rgb16 >> 8).astype(np.uint8)
    elif kind == "tiff16":
        Image.fromarray(GREY16).save(path)
        expect = np.repeat((GREY16 >> 8)[..., None], 3, -1)
    elif kind == "tiff_float":
        Image.fromarray(RGB[..., 0].astype(np.float32) / 255.0, "F").save(path)
        expect = None
    elif kind == "bmp":
        Image.fromarray(RGB).save(path)
        expect = RGB
    elif kind == "rgba":
        path.write_bytes(_png(np.dstack([RGB, RGB[..., :1]]), "RGBA"))
        expect = RGB
    elif kind == "palette":
        Image.fromarray(RGB).quantize(32).save(path)
        expect = None
    elif kind == "cmyk_jpeg":
        Image.fromarray(RGB).convert("CMYK").save(path, quality=95)
        expect = None
    else:
        Image.fromarray(RGB[..., 0]).save(path, quality=90)
        expect = None
    ours = images.load(path)
    assert ours.dtype == np.uint8 and ours.shape == (23, 31, 3)
    if expect is not None:
        assert np.abs(ours.astype(int) - expect).max() <= 1
    data, fmt = images.record_bytes(path)
    # what the OD API's decoder runs on a record's bytes (tf-slim's Image handler, with karyotf's shims)
    handler = tfexample_decoder.Image(image_key="i", format_key="f", channels=3)
    tf_pixels = handler.tensors_to_item({"i": tf.constant(data), "f": tf.constant(fmt)}).numpy()
    assert np.abs(tf_pixels.astype(int) - ours.astype(int)).max() <= 1, kind
    assert images.inspect(path).stored_as_is == (kind in ("rgba", "palette", "grey_jpeg", "png16_rgb"))


def test_damaged_file_is_an_error_naming_it(tmp_path):
    good = tmp_path / "good.jpg"
    Image.fromarray(RGB).save(good, quality=90)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with Image.open(cut) as im:  # the header alone looks fine: that is how it passed before
        assert im.size == (31, 23)
    with pytest.raises(ImageError, match=r"cut\.jpg.*damaged") as info:
        images.inspect(cut)
    assert info.value.kind == "unreadable_image"
    with pytest.raises(ImageError, match="no such image"):
        images.load(tmp_path / "none.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ImageError, match="not a readable image"):
        images.load(tmp_path / "text.png")


def test_exif_orientation_read_as_stored_unless_asked(tmp_path):
    path = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[images.EXIF_ORIENTATION_TAG] = 6  # rotated 90 degrees clockwise for display
    Image.fromarray(RGB).save(path, quality=95, exif=exif.tobytes())
    assert images.load(path).shape == (23, 31, 3)
    info = images.inspect(path)
    assert info.exif_orientation == 6 and info.exif_swaps_size and info.stored_as_is
    turned = images.load(path, exif_transpose=True)
    assert turned.shape == (31, 23, 3)
    assert not images.inspect(path, exif_transpose=True).stored_as_is  # records then store the turned pixels


def test_load_ahead_keeps_the_order_and_lists_a_bad_file_without_stopping(tmp_path, sample_dir):
    from karyotf.images import load, load_ahead

    good = sorted((sample_dir / "images").glob("*.jpg"))[:3]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    paths = [good[0], bad, good[1], tmp_path / "missing.jpg", good[2]]
    out = list(load_ahead(paths, ahead=2))
    assert [p for p, _, _ in out] == paths
    for (p, pixels, error) in out:
        if p in good:
            assert error is None and (pixels == load(p)).all()
        else:
            assert pixels is None and error is not None
