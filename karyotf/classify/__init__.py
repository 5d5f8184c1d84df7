"""The chromosome classifier stage: a detector finds chromosomes, this stage names each one.

- :mod:`.crops`: one chromosome's input, the grey box crop on a fixed canvas plus measurements relative to its cell;
- :mod:`.model`: a per-chromosome CNN and a cell-context layer (self-attention over all chromosomes of a cell);
- :mod:`.data`: per-cell arrays from the records (same case-grouped split as ``karyotf records``);
- :mod:`.train`, :mod:`.evaluate`, :mod:`.export`: train (resumable), evaluate, export to a SavedModel;
- :mod:`.joint`: karyotype-aware labelling of a whole cell under a prior over karyotypes.
"""

VIEWS = 8
"""Test-time augmentation: each crop is seen in this many of the 8 orientations of its square (the flips and
quarter turns training shows it in) and the geometric mean of the views' probabilities names it; 1 = the crop as
it is.  ``bench/classifier.py`` measures each row at 1 and at 8 views (bench/results/classifier.md); 8 views cost
8 runs of the network per cell."""
