"""The records (OD API ``tf.train.Example``s from ``karyotf records``) as KerasCV YOLOv8 batches.

Each example: the image decoded as everywhere in karyotf (JPEG with libjpeg's accurate DCT, PNG with 3 channels),
resized to ``image_size`` x ``image_size`` (as SSD's fixed-shape resizer: normalised boxes stay valid), then the
augmentation ops with the OD API's probabilities (``hflip``, ``vflip``, ``rot90``: each with p = 0.5), then
boxes in pixels of the resized image, ``xyxy``, and 0-based classes (label map id - 1), padded with -1 to
``max_boxes`` (KerasCV's dense box format; -1 marks padding).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import RecordsError
from ..records import split_files

# Imports inside functions, and why: TensorFlow / KerasCV / the OD API (heavy: kept off the import path).

BOX_FORMAT = "xyxy"

_FEATURES = None


def _features():
    import tensorflow as tf

    global _FEATURES
    if _FEATURES is None:
        _FEATURES = {
            "image/encoded": tf.io.FixedLenFeature([], tf.string),
            "image/object/bbox/xmin": tf.io.VarLenFeature(tf.float32),
            "image/object/bbox/ymin": tf.io.VarLenFeature(tf.float32),
            "image/object/bbox/xmax": tf.io.VarLenFeature(tf.float32),
            "image/object/bbox/ymax": tf.io.VarLenFeature(tf.float32),
            "image/object/class/label": tf.io.VarLenFeature(tf.int64),
        }
    return _FEATURES


def decode_image(encoded):
    """uint8 ``[H, W, 3]`` from JPEG (accurate DCT, as karyotf.images and karyotf's OD API decoder) or PNG bytes."""
    import tensorflow as tf

    image = tf.cond(
        tf.io.is_jpeg(encoded),
        lambda: tf.io.decode_jpeg(encoded, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_png(encoded, channels=3))
    image.set_shape([None, None, 3])
    return image


def _hflip(image, boxes):  # boxes: normalised [ymin, xmin, ymax, xmax]
    import tensorflow as tf

    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    return tf.image.flip_left_right(image), tf.stack([ymin, 1 - xmax, ymax, 1 - xmin], axis=-1)


def _vflip(image, boxes):
    import tensorflow as tf

    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    return tf.image.flip_up_down(image), tf.stack([1 - ymax, xmin, 1 - ymin, xmax], axis=-1)


def _rot90(image, boxes):
    """90 degrees counter-clockwise (``tf.image.rot90``, the OD API's ``random_rotation90``)."""
    import tensorflow as tf

    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    return tf.image.rot90(image), tf.stack([1 - xmax, ymin, 1 - xmin, ymax], axis=-1)


_OPS = {"hflip": _hflip, "vflip": _vflip, "rot90": _rot90}


def parse_fn(image_size: int, max_boxes: int, augment: list[str] | tuple[str, ...] = (), seed: int | None = None):
    """``serialized Example -> (float32 image [S, S, 3] in 0..255, {"boxes": [M, 4] xyxy px, "classes": [M]})``."""
    import tensorflow as tf

    for name in augment:
        if name not in _OPS:
            raise ValueError(f"augmentation {name!r} is not available for yolo (choose from {', '.join(_OPS)})")

    def parse(serialized):
        ex = tf.io.parse_single_example(serialized, _features())
        image = decode_image(ex["image/encoded"])
        dense = {k: tf.sparse.to_dense(v) for k, v in ex.items() if isinstance(v, tf.sparse.SparseTensor)}
        boxes = tf.stack([dense["image/object/bbox/ymin"], dense["image/object/bbox/xmin"],
                          dense["image/object/bbox/ymax"], dense["image/object/bbox/xmax"]], axis=-1)
        boxes = tf.clip_by_value(boxes, 0.0, 1.0)
        labels = tf.cast(dense["image/object/class/label"], tf.float32) - 1.0
        image = tf.image.resize(image, [image_size, image_size], method="bilinear")
        for name in augment:
            flipped = _OPS[name]
            image, boxes = tf.cond(tf.random.uniform([], seed=seed) < 0.5,
                                   lambda i=image, b=boxes, f=flipped: f(i, b), lambda i=image, b=boxes: (i, b))
        image.set_shape([image_size, image_size, 3])
        ymin, xmin, ymax, xmax = tf.unstack(boxes * float(image_size), axis=-1)
        xyxy = tf.stack([xmin, ymin, xmax, ymax], axis=-1)[:max_boxes]
        labels = labels[:max_boxes]
        n = tf.shape(labels)[0]
        xyxy = tf.pad(xyxy, [[0, max_boxes - n], [0, 0]], constant_values=-1.0)
        labels = tf.pad(labels, [[0, max_boxes - n]], constant_values=-1.0)
        xyxy.set_shape([max_boxes, 4])
        labels.set_shape([max_boxes])
        return image, {"boxes": xyxy, "classes": labels}

    return parse


def shard_files(records_dir: str | Path, split: str) -> list[str]:
    files = [str(p) for p in split_files(records_dir, split)]
    if not files:
        raise RecordsError(f"{records_dir}: no {split}.record-* shards (fix: `karyotf records SRC --out {records_dir}`)")
    return files


def dataset(cfg: dict, split: str = "train", training: bool = True, seed: int | None = None):
    """A batched ``tf.data.Dataset`` of ``(images, {"boxes", "classes"})`` for ``split`` of ``cfg``'s records.

    Training: shuffled, augmented, repeated forever, batches of ``cfg["batch"]`` (the last partial batch dropped).
    """
    import tensorflow as tf

    files = shard_files(cfg["records_dir"], split)
    ds = tf.data.Dataset.from_tensor_slices(files)
    if training:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=max(1, min(4, len(files))),
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=not training)
    if training:
        ds = ds.shuffle(256, seed=seed, reshuffle_each_iteration=True).repeat()
    parse = parse_fn(cfg["image_size"], cfg["max_boxes"], cfg["augment"] if training else (), seed=seed)
    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(cfg["batch"], drop_remainder=training)
    return ds.prefetch(tf.data.AUTOTUNE)
