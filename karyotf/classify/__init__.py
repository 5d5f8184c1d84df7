"""The chromosome classifier stage: a detector finds chromosomes, this stage names each one.

- :mod:`.crops`: one chromosome's input, the grey box crop on a fixed canvas plus measurements relative to its cell;
- :mod:`.model`: a per-chromosome CNN and a cell-context layer (self-attention over all chromosomes of a cell);
- :mod:`.data`: per-cell arrays from the records (same case-grouped split as ``karyotf records``);
- :mod:`.train`, :mod:`.evaluate`, :mod:`.export`: train (resumable), evaluate, export to a SavedModel;
- :mod:`.joint`: karyotype-aware labelling of a whole cell under a prior over karyotypes.
"""
