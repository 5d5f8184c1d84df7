"""Separate what touches and crosses: each chromosome's own mask, and straightening for display.

``synth``: synthetic crossings with exact masks (training and test truth); ``inputs``: the model's input
window of one box; ``model``: the small U-Net; ``train``: ``karyotf separate train`` and export;
``separator``: :class:`Separator` (a cell and its boxes -> one mask a box, the classical cut-out as the
fallback) and the review flags; ``straighten``: lay a bent chromosome straight along its medial axis;
``edit``: a person's split line (the review app), applied to the masks.
"""
