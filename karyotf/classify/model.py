"""The classifier network: a CNN per chromosome crop, its measurements, and a cell-context layer.

Input is one or more *cells*, padded to the largest: ``crops`` uint8 (B, N, S, S), ``features`` float32
(B, N, F), ``mask`` bool (B, N) (True for a real chromosome).  Each crop goes through the same small CNN
(4 conv blocks, batch norm, global average pooling) to an embedding, which is joined with the chromosome's
measurements (:mod:`karyotf.classify.crops`).  With ``context=True`` a transformer layer then lets every
chromosome attend to all the others of its cell (as KaryoNet does): a chromosome is named beside its
neighbours' sizes and staining, not alone.  Output: logits (B, N, 24) in ``classes.NAMES`` order.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from .. import classes


class ChromosomeClassifier(tf.keras.Model):
    def __init__(self, size: int = 64, n_features: int = 5, context: bool = True, width: int = 32,
                 embed: int = 128, heads: int = 4, dropout: float = 0.1, num_classes: int = classes.NUM_CLASSES,
                 norm: str = "batch", **kw):
        super().__init__(**kw)
        self.size, self.n_features, self.context, self.width = size, n_features, context, width
        self.embed, self.heads, self.dropout_rate, self.num_classes = embed, heads, dropout, num_classes
        self.norm = norm
        L = tf.keras.layers

        def normalization(k):
            # batch norm's running statistics lag far behind on a few hundred steps (val top-1 0.26 with them
            # against 0.44 with batch statistics, measured); momentum 0.9 tracks; group norm has none
            if norm == "group":
                return L.GroupNormalization(groups=8, name=f"gn{k}")
            return L.BatchNormalization(momentum=0.9, name=f"bn{k}")

        blocks = []
        for k, f in enumerate((width, 2 * width, 4 * width, 8 * width)):
            blocks += [L.Conv2D(f, 3, padding="same", use_bias=False, name=f"conv{k}"), normalization(k),
                       L.ReLU(name=f"relu{k}")]
            if k < 3:
                blocks.append(L.MaxPool2D(2, name=f"pool{k}"))
        blocks += [L.GlobalAveragePooling2D(name="gap"), L.Dropout(dropout), L.Dense(embed, name="embed")]
        self.cnn = tf.keras.Sequential(blocks, name="cnn")
        self.feat = L.Dense(embed, name="features")
        self.mix = L.Dense(embed, activation="relu", name="mix")
        if context:
            self.attn = L.MultiHeadAttention(heads, key_dim=embed // heads, dropout=dropout, name="cell_attention")
            self.ln1 = L.LayerNormalization(name="ln1")
            self.ffn = tf.keras.Sequential([L.Dense(2 * embed, activation="relu"), L.Dropout(dropout),
                                            L.Dense(embed)], name="ffn")
            self.ln2 = L.LayerNormalization(name="ln2")
        self.head = L.Dense(num_classes, name="logits")

    def get_config(self):
        return {"size": self.size, "n_features": self.n_features, "context": self.context, "width": self.width,
                "embed": self.embed, "heads": self.heads, "dropout": self.dropout_rate,
                "num_classes": self.num_classes, "norm": self.norm}

    def call(self, inputs, training=False):
        crops, feats, mask = inputs["crops"], inputs["features"], inputs["mask"]
        b, n = tf.shape(crops)[0], tf.shape(crops)[1]
        x = 1.0 - tf.cast(tf.reshape(crops, [-1, self.size, self.size, 1]), tf.float32) / 255.0  # dark = high
        e = tf.reshape(self.cnn(x, training=training), [b, n, self.embed])
        h = self.mix(tf.concat([e, self.feat(feats)], axis=-1))
        if self.context:
            pair = tf.logical_and(mask[:, :, None], mask[:, None, :])
            a = self.attn(h, h, attention_mask=pair, training=training)
            h = self.ln1(h + a)
            h = self.ln2(h + self.ffn(h, training=training))
        return self.head(h)

    def build_for(self):
        """Create the variables with a dummy cell (so checkpoints restore before the first step)."""
        self({"crops": np.full((1, 2, self.size, self.size), 255, np.uint8),
              "features": np.zeros((1, 2, self.n_features), np.float32), "mask": np.ones((1, 2), bool)})
        return self
