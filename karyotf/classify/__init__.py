"""Chromosome classifier stage: name each detected chromosome with a probability over the 24 classes, then
label the cell's chromosomes jointly under a karyotype prior (:mod:`.joint`) without ever forcing pairs."""
