"""Karyotype-aware labelling of one cell's chromosomes, never forcing pairs (issue 16, point 3).

The classifier gives each of the N chromosomes of a cell a probability over the 24 classes (``probs``, shape
(N, 24), columns in :data:`karyotf.classes.NAMES` order).  Taking each chromosome's argmax (``top1``) ignores
that a cell holds about two of each; forcing two of each would hide every trisomy and monosomy.  Instead
:func:`joint_labels` finds the labelling that maximises

    score(labels) = sum_i log p_i(label_i) + log prior(counts(labels))

exactly, where the prior (:class:`KaryotypePrior`, a stated choice: presets ``prenatal`` (default), ``postnatal``,
``oncology``, see "The prior: what each term means") gives every copy number a real probability: a third 21
costs log(2e-2) ~ -3.9 nats, a third copy of any autosome at least log(2e-3) ~ -6.2, a lost copy log(3e-3)
~ -5.8, and the sex complements 45,X / 47,XXY / 47,XXX / 47,XYY their own entries.  A third 21 with strong
evidence therefore stays a 21; a chromosome the classifier hesitates on (21 at 0.55, 22 at 0.45) moves to the
class that makes the cell plausible, and each such move is flagged.

Algorithm (exact)
-----------------
The autosomes' priors are independent across classes and their log is concave in the copy number k (the
marginal gain g_c(k) = log P_c(k) - log P_c(k-1) does not increase with k; :class:`KaryotypePrior` asserts it).
Each autosome c gets "copy slots" k = 1..K; putting chromosome i in slot (c, k) costs ``-log p_i(c) - g_c(k)``.
A min-cost assignment of chromosomes to slots (``scipy.optimize.linear_sum_assignment``, every chromosome in
exactly one slot, a slot holds at most one) then equals the best labelling:

* Slots fill in order.  If an assignment uses slot (c, k+1) but not (c, k), moving that chromosome down to
  (c, k) changes the cost by g_c(k+1) - g_c(k) <= 0.  So some optimal assignment uses, for every class, a prefix
  of slots 1..m_c, whose bonuses sum to g_c(1) + ... + g_c(m_c) = log P_c(m_c) - log P_c(0): exactly the prior
  term (up to a constant).  Every labelling has such a prefix assignment of cost -score + const, and any other
  assignment costs at least as much as the prefix one with the same labels, so the minimum over assignments is
  -max score + const, and the labels of any minimum are an optimal labelling.

The sex chromosomes get a joint prior P(nX, nY) (X and Y are not independent: XX and XY are both normal while
X-alone and XXY are not, which no product of an X and a Y marginal can express).  The solver enumerates the
sex complements (nX in 0..MAX_X, nY in 0..MAX_Y; 15 small solves) and for each gives X exactly nX and Y exactly
nY slots, each with a large bonus M that makes filling them all optimal (M exceeds the spread of any feasible
cost); the best over the complements, with log P(nX, nY) added, is the joint optimum.

Capacity: autosome c has K = max(MAX_COPIES, ceil(N/21) + 1) slots (at most max(N, 3)).  Copies beyond MAX_COPIES (5) only exist
so that a cell of up to any N (120 boxes from a bad detection) stays feasible: each further copy costs
OVERFLOW_LOG_PENALTY more nats than the previous one (still concave).  Counts above K for an autosome, above
MAX_X for X or above MAX_Y for Y are not representable; a cell like that is a detection failure, not a
karyotype.

Normal and abnormal
-------------------
Normal = 46 chromosomes, two of each autosome, XX or XY.  ``best_normal`` (only when N == 46) is the best
labelling constrained to normal: two slots per autosome and the XX or XY sex slots, a square 46 x 46 assignment
each, the better of the two.  ``best_abnormal`` is the best labelling that is not normal: the unconstrained
optimum when that is abnormal; otherwise the maximum over the union "some autosome c has >= 3 copies" (slots
1..3 of c get the bonus M), "some autosome c has <= 1 copy" (slots 2..K of c removed), for the 22 autosomes,
and "the sex complement is neither XX nor XY" (read off the per-complement solves).  That union is exactly the
set of abnormal labellings of a 46-chromosome cell, so ``best_abnormal`` is exact too.  Complements whose
unconstrained score already lies below the best abnormal found are skipped (a constraint cannot raise a score),
so a 46-chromosome cell needs 15 + 2 + 44 (or 88, when both XX and XY beat every abnormal complement) solves
of about 46 x 112, each ~0.1 ms: ~18 ms a cell on this 2-core machine (measured; a 47-chromosome cell ~10 ms).

``runner_up`` (any N) is the best labelling whose per-class counts differ from the chosen ones: the best other
sex complement, or under the chosen complement some autosome c with at least m_c + 1 or at most m_c - 1 copies
(m_c its chosen count), 44 more solves (shared with the abnormal search at 46).  It gives cells of 45 or 47
chromosomes, where "normal" is impossible, a close-call test of their own: ``close_alternative`` when the
runner-up is within :data:`CLOSE_LOG_LR` (47,XX,+21 against 47,XXY for a G chromosome the classifier cannot
place), unless that comparison is the one ``close_call`` already reports.  Sensitivity analysis on the
optimal assignment's residual graph could replace the 44-88 re-solves if speed ever matters.

``log_lr`` = |best_normal - best_abnormal|: a max-labelling (Viterbi) approximation of the log posterior odds of
"normal" against "abnormal" (both scores include the prior).  Below :data:`CLOSE_LOG_LR` the cell is a close
call and a person must decide.

Which boxes count
-----------------
A detector's boxes are not all chromosomes: at any score floor some are duplicates of one chromosome, fragments
of one, boxes over two, or debris, while some real chromosomes score below the floor (measured on val of
CIL:54816 with a class-agnostic SSD: at its best floor the counted boxes were off by 5 per cell).  Given
``real`` (r_i, the probability that box i is a chromosome, from its detector score calibrated on val), the
labelling also decides which boxes count:

    score = sum_{i counted} [log r_i + log p_i(label_i)] + sum_{i left out} log(1 - r_i) + log prior(counts)

In the assignment each box gets one more column of its own, "left out", at cost -log(1 - r_i), and every slot
column of box i costs -log r_i more; the prefix argument is untouched (the extra costs do not depend on the
slot), so the optimum is still exact.  A third copy the detector is sure of (r near 1) stays, since leaving it out
costs more than the prior's log 2e-2; a weak second box on a chromosome already counted (r 0.5) goes, and a
weak box that completes a pair is taken in.  "Normal" becomes: some 46 of the boxes counted as a normal cell
(the normal slots forced full, the others left out).  Boxes left out are returned (``left_out``), named by their
top-1 and never dropped unseen; one whose counting is within the close-call ratio (:data:`CLOSE_LOG_LR`) of the
chosen labelling is flagged ``left_out`` (one more solve per box left out, under each sex complement that could
be close).

The second look's P and the count shift
---------------------------------------
With a second look, ``real`` is :func:`count_evidence` of its P(whole chromosome): the logit shifted by
:data:`COUNT_LOGIT_SHIFT` (the Karyotyper does it).  Why a shift, when that P is calibrated (on 352 val cells of the
full CIL set with the 1,800-step detector, the candidates at P 0.1-0.2 are chromosomes 17% of the time, at 0.4-0.6 54%, at 0.9-0.95 92%)?
Because the count asks another question: "does this box stand for a chromosome that no other box stands for?".  The
candidates (the second look's floor and NMS) miss 4.1% of the annotated chromosomes at IoU 0.5 (about 2 a cell;
every chromosome is among them in 23% of val cells only), and a fragment or a loose box is then the only box its
chromosome has: counting it is right for the count although the box is not one whole chromosome.  The shift is
chosen on val by ``bench/aneuploidy.py --tune`` (rule: the most abnormal cells called right among the shifts that
call at most 3% of normal cells abnormal), and must be chosen again for another detector or second look.  What it
cannot do: a chromosome the candidates missed and one the cell lost look the same, so with a detector that misses
about two a cell, a 45-chromosome cell is called 46 (bench/results/aneuploidy.md: no shift, no prior factor calls
more than a few of val's 45,X and 45,-N cells right without calling a tenth of normal cells abnormal).

The uncertain-sex flag
----------------------
Each sex complement's best labelling is solved anyway (above); ``sex_log_lr`` is how far the chosen one leads the
best other one.  Below :data:`SEX_LOG_LR` the cell is flagged ``sex_uncertain`` (review), naming the other
complement, its P (the complements' best scores normalised: a max-labelling approximation) and the boxes that would
change ("#17 could be Y, p(Y) 0.35").  XX against XY is where an end-to-end call goes silently wrong most often (the
classifier's X is weak: a second X at p(X) 0.2 is common); the threshold is chosen on val by ``bench/aneuploidy.py
--tune`` (rule: the most of 5 x wrong calls it newly puts under review - right calls it newly puts under review: a
silent wrong call weighs five needless reviews).  Below :data:`CLOSE_LOG_LR` it adds no review that
``close_alternative`` does not already give; above it, on val with the shipped pair, it puts 17 of 30 silent wrong
calls under review at 5 for 48 right calls newly reviewed (4 at 3.5 for 8; 25 at 6 for 125) (bench/results/aneuploidy.md; with
the earlier classifier, 12 of 25 at 4 for 31: aneuploidy_classifier6.md).

The prior: what each term means
-------------------------------
Each term is a probability about one metaphase of the population the lab sees, before its image is looked at:
``P(3 copies of 21) / P(2 copies)`` is how much rarer a cell with a third 21 is than one with two, i.e. about the
prevalence of trisomy 21 among the lab's cells (plus the rate of the artefacts that make a cell show that count:
a chromosome of a neighbouring cell in the spread, one chromosome lost in preparation).  So the prior depends on
who is tested, and is a stated choice: a prenatal lab sees trisomy 21 tens of times more often than live births
show it, a leukaemia lab sees gains and losses of many chromosomes in most abnormal clones.  Three presets ship
(:data:`PRESETS`, :meth:`KaryotypePrior.preset`, ``--prior`` on the command line); :meth:`KaryotypePrior.from_rates`
builds any other.  The default is ``prenatal`` (:data:`DEFAULT_PRESET`).

What it costs a third copy: with ``real``, a box is counted as one copy past a normal cell's when
r / (1 - r) > 1 / (p * gain), r its P(chromosome), p the classifier's probability of the class, gain the
prior's ratio for that copy (:meth:`KaryotypePrior.count_threshold`).  At p = 0.9:

=========  =========================  =============================  =================================
preset     third 21 / 18 / 13          any other third autosome        47,XXY / 47,XXX / 47,XYY
=========  =========================  =============================  =================================
prenatal   r > 0.982 / 0.991 / 0.996   r > 0.998 (gain 2e-3)           0.985 / 0.991 / 0.994
postnatal  r > 0.991 / 0.998 / 0.999   r > 0.999 (gain 1e-3)           0.992 / 0.996 / 0.996
oncology   r > 0.917 / 0.933 / 0.957   r > 0.957 (gain 0.05)           0.963 / 0.963 / 0.981
=========  =========================  =============================  =================================

(tests/test_prior_presets.py checks this table against the code.)  The detector's score, calibrated
(:mod:`karyotf.calibration`), rarely says more than 0.95: a third copy is then left out and flagged ``left_out``
for review with its chromosome and P.  The second look (:mod:`karyotf.classify.second_look`) asks the crop
itself whether it is one whole chromosome, and says 0.999 for a clear one: a clear third copy is then counted
under every preset.

The presets, and their sources (live-birth figures are the commonly quoted round numbers, not re-checked against
the papers here; prenatal rates vary several-fold with the referral reason):

* ``prenatal`` (default): amniocytes and chorionic villi at prenatal diagnosis.  Trisomy 21 about 1/100-1/250 at
  amniocentesis for maternal age >= 35, trisomy 18 about 1/300-1/400, trisomy 13 about 1/1000-1/2000, the sex
  chromosome aneuploidies together about 1/250-1/500 (Ferguson-Smith & Yates, Prenat Diagn 4:5-44, 1984, a
  European study of 52,965 amniocenteses; Hook, JAMA 249:2034-2038, 1983; Snijders et al., Ultrasound Obstet
  Gynecol 13:167-170, 1999 for the maternal-age risk tables); referrals for an abnormal ultrasound carry far
  higher rates of 18 and 13.  The numbers are set above these on purpose (below, per constant) and cover the
  bundled CIL:54816 sample (amniotic fluid).
* ``postnatal``: blood of children and adults referred for a constitutional karyotype.  Live-birth prevalences:
  trisomy 21 about 1/700 (CDC; Parker et al., Birth Defects Res A 88:1008-1016, 2010), trisomy 18 about
  1/5000, trisomy 13 about 1/10000, 47,XXY about 1/600 boys, 47,XXX and 47,XYY about 1/1000 girls / boys, 45,X
  about 1/2500 girls (Nielsen & Wohlert, Hum Genet 87:81-83, 1991, the Arhus newborn survey); a referred
  population is enriched several-fold (suspected Down syndrome is the commonest referral), so 21 at 1e-2, 18 at
  2e-3, 13 at 1e-3, any other gain 1e-3; 45,X at 2e-2 (mostly a sex chromosome lost in the spread), XXY 4e-3
  (kept below the +21 rate times the XX share, as in prenatal), XXX and XYY 2e-3.
* ``oncology``: bone marrow and tumour cultures.  Numerical changes are common in abnormal clones: +8 is the
  commonest numerical change in myeloid disorders, -7 / -5 in myelodysplasia and secondary AML, +12 in CLL,
  high hyperdiploid ALL gains X, 4, 6, 10, 14, 17, 18 and 21, loss of the Y grows with age (Heim & Mitelman,
  Cancer Cytogenetics, 4th ed., Wiley 2015; the Mitelman Database of Chromosome Aberrations and Gene Fusions in
  Cancer).  Gains 0.15 for 8, 0.1 for 21, 0.08 for 4, 6, 10, 12, 14, 17, 18, 0.05 for any other; losses 0.1 for
  7, 0.05 for 5, 13, 17, 20, 0.03 for any other; 45,X (a lost Y or X) 0.15.  Every copy past the third costs what
  the third did, so 4 copies of 21 (hyperdiploid ALL) stay describable.

The prior: numbers and sources (``prenatal``)
---------------------------------------------
The tool does not see live births.  It sees metaphases referred to a cytogenetics lab and datasets rich in
abnormal cells; the bundled sample is CIL:54816 (Tseng et al., Sci Data 10:104, 2023), amniotic-fluid cells
from prenatal diagnosis.  Counted in the 600-cell sample kept in ``../shared/data/cil54816`` (annotations and
its ``karyotypes.csv``): 40 cells listed abnormal (32 numerical: 11 "47,X", 6 "45,X", 4 "21", 2 "18", ...),
and among the 560 cells recorded normal, 31 hold 45 boxes (21 with one X and no Y, 6 with a Y and no X, 4 with
one autosome lost: 21, 22, 22, 15) and 11 hold 47 (10 XXY, 1 XYY): a chromosome lost in preparation or not
annotated, or a sex chromosome count differing from the listing, in 7.5% of "normal" cells.  So:

Autosomes, per class, as P(k copies) / P(2 copies):

* :data:`TRISOMY_21` = 2e-2.  Live births about 1/700 (the CDC's figure); at amniocentesis for maternal age or
  a positive screen it is the commonest abnormality and several-fold more frequent (maternal-age risk tables,
  e.g. Snijders et al. 1999, give roughly 1/250 at age 35 and a few % past 44 at mid-trimester); the CIL
  sample has 4/600.  2e-2 is above all of
  these on purpose: a third 21 must survive a hesitant classifier.  It is also the issue's baseline cost of any
  extra copy (log 0.02), which kept the third 21 in 7 of 8 trisomy-21 cells.
* :data:`TRISOMY_18` = 1e-2.  About 1/5000 live births (1/2500-1/6000 in surveys); about 1/300-1/400 at
  amniocentesis for maternal age (Ferguson-Smith & Yates 1984) because most affected pregnancies are lost later,
  and far more after an abnormal ultrasound (its usual referral); 2/600 in the CIL sample.  Raised from 5e-3 (issue
  23): at 5e-3 a third 18 needed P(chromosome) >= 0.996 to be counted, at 1e-2 it needs 0.991.
* :data:`TRISOMY_13` = 5e-3.  About 1/10000 live births (1/5000-1/16000); about 1/1000 at amniocentesis, likewise
  enriched by ultrasound referrals.
* :data:`GAIN_FLOOR` = 2e-3, a third copy of any other autosome: rare constitutional or mosaic trisomies (8,
  9, 16, 22 in prenatal cultures) plus artefacts (a chromosome of a neighbouring cell in the spread, one
  chromosome seen as two).  Any other autosomal gain is at least this likely; the three above are higher.
* :data:`LOSS_FLOOR` = 3e-3, one copy of an autosome missing: constitutional autosomal monosomy is almost
  never viable, but a metaphase spread loses a chromosome at random in a few % of cells (ISCN counts a loss as a
  clone only when three cells share it, because single-cell losses are routine artefacts); the CIL sample lost
  one autosome in 4/560 "normal" cells (0.7%), and an end-to-end detector misses far more.  3e-3 per class means
  about 6% of cells lose some autosome.  On val of the full CIL set 13/352 cells (3.7%) are annotated with one
  autosome lost, about 1.7e-3 per class: 3e-3 is not below what the data show, and 1e-2 called 3.6% of normal
  cells abnormal (against 2.0%) and no more abnormal cells right (bench/results/aneuploidy_ssd1800.md, the 1,800-step pair).
* Nullisomy P(0) = P(1)^2 / P(2) (two independent losses), and every copy past the third costs what the third
  did: P(k+1)/P(k) = P(3)/P(2) for k >= 3 (48,+21,+21 is about as rare as two independent trisomies).  These
  are the largest values concavity allows, so the assignment stays exact.

Sex chromosomes, joint P(nX, nY), as a share of cells (then normalised over the table):

* XX and XY, :data:`SEX_NORMAL` = 0.47 each (half the cells are female).
* 45,X  :data:`SEX_X` = 3e-2: Turner syndrome about 1/2500 live-born girls, but 45,X is the commonest
  single abnormality in conceptions and prenatal samples, and a spread loses its Y or one X like any other
  chromosome (and X loss rises with age); 6/600 listed plus 21/560 more read 45,X in the CIL sample (4.5%), and
  20/352 val cells of the full CIL set (5.7%, 45,X or 45,Y).  Kept below those shares on purpose: with candidates
  that miss about two chromosomes a cell, a missed X looks like a lost one: on val, at the count shift, 4.5e-2
  called no more abnormal cells right and 2.3% of normal cells abnormal (against 2.0%), 0.1 called 2 of 46
  abnormal cells right (against 1) and 3.9% of normal cells abnormal (bench/results/aneuploidy_ssd1800.md, "The prior's
  loss terms").
* 47,XXY :data:`SEX_XXY` = 8e-3: Klinefelter about 1/600 live-born boys (Nielsen & Wohlert 1991, the
  Arhus newborn survey); 11 listed "47,X" and 10 more XXY in the CIL sample (3.5%, some of them probably
  annotation slips).  Kept below TRISOMY_21 x SEX_NORMAL (P(XXY)/P(XX) = 0.017 < 0.02) on purpose: 21 and Y
  are both Denver group G, and an extra G chromosome the classifier cannot place between 21 and Y should make a
  +21 (the commonest abnormality at amniocentesis), not turn a female cell into XXY.  At 1.5e-2 a simulated
  group-confusing classifier turned 5 of 10 47,XX,+21 cells into 47,XXY.
* 47,XXX :data:`SEX_XXX` = 5e-3 and 47,XYY :data:`SEX_XYY` = 3e-3: about 1/1000 girls / boys each.
* Y without X (0, 1) :data:`SEX_Y_ONLY` = 5e-3: not viable, only an X lost or missed; 8/600 in the sample.
* 48,XXXY / 48,XXYY / 48,XXXX :data:`SEX_TETRA` = 5e-4 (1/18000-1/50000 boys); 49,XXXXY :data:`SEX_PENTA`
  = 1e-4 (about 1/85000 boys).
* Any other complement in 0..MAX_X x 0..MAX_Y (no sex chromosome at all, two Y without X, ...)
  :data:`SEX_FLOOR` = 1e-5.

These are orders of magnitude, chosen to be generous to real aneuploidy, not fitted: the live-birth figures
are the commonly quoted round numbers (not re-checked against the papers here), the CIL counts were made on the
sample's annotations.  Tune them on the val split (the bench) and keep them above the live-birth figures, which
understate what a lab sees.  A simulation with a ~0.89 top-1 classifier confusing within Denver groups (40 cells
a kind, ``_simulated_classifier`` in the tests) got the per-class counts right on 39/40 46,XX, 38/40
47,XY,+21, 32/40 47,XX,+21, 37/40 47,XXY and 40/40 45,X cells, against 0-1/40 for top-1 alone; with the
sexes mixed, 31/40 +18 cells (the third 18 goes to 16 or 17 when the classifier cannot tell), and 22/40
cells with a lost 15 (a loss is placed where the classifier is least sure: the prior cannot know which class
was lost).

The close-call threshold
------------------------
:data:`CLOSE_LOG_LR` = log(20) ~ 3.0 nats.  Both scores include the prior, so their difference is (in the
max-labelling approximation) the log posterior odds of normal against abnormal.  A ratio under 20 leaves the
losing side more than ~5% probability, and on Kass & Raftery's scale (JASA 90:773, 1995) a Bayes factor of
3-20 is only "positive" evidence, 20-150 "strong".  A count call should not rest on less than strong evidence,
so anything below 20:1 goes to a person.  Classifier probabilities are rarely calibrated; tune the threshold
on val against the issue's target (at most 30% of normal cells flagged, every abnormal one called or flagged).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from .. import classes
from .. import defaults as _defaults
from ..karyogram.call import Flag, iscn

# ---------------------------------------------------------------------------------------------- the tunables
MAX_COPIES = 5
"""Copies of an autosome the prior describes (slots per autosome for N <= ~100)."""
MAX_X = 4
"""Largest X count the sex prior describes."""
MAX_Y = 2
"""Largest Y count the sex prior describes."""

TRISOMY_21 = 2e-2
"""P(3 copies of 21) / P(2 copies): live births ~1/700, far more in referred / prenatal samples."""
TRISOMY_18 = 1e-2
"""P(3 copies of 18) / P(2 copies): live births ~1/5000, about 1/300 at amniocentesis, far more after an abnormal
ultrasound."""
TRISOMY_13 = 5e-3
"""P(3 copies of 13) / P(2 copies): live births ~1/10000, about 1/1000 at amniocentesis, more after an abnormal
ultrasound."""
GAIN_FLOOR = 2e-3
"""P(3 copies) / P(2 copies) of any other autosome (rare trisomies, stray or split chromosomes)."""
LOSS_FLOOR = 3e-3
"""P(1 copy) / P(2 copies) of any autosome (random loss in the spread, a chromosome the detector missed)."""
OVERFLOW_LOG_PENALTY = 10.0
"""Nats added to each further copy's cost past MAX_COPIES (copy MAX+j costs j * this more than copy MAX)."""

SEX_NORMAL = 0.47
"""Share of cells with XX, and the same share with XY."""
SEX_X = 3e-2
"""45,X (Turner ~1/2500 girls; common prenatally; a lost Y or X)."""
SEX_XXY = 8e-3
"""47,XXY (Klinefelter ~1/600 boys; 3.5% of the CIL sample); below TRISOMY_21 * SEX_NORMAL (21 vs Y)."""
SEX_XXX = 5e-3
"""47,XXX (~1/1000 girls)."""
SEX_XYY = 3e-3
"""47,XYY (~1/1000 boys)."""
SEX_Y_ONLY = 5e-3
"""A Y and no X (not viable: an X lost in the spread or missed)."""
SEX_TETRA = 5e-4
"""48,XXXY / 48,XXYY / 48,XXXX."""
SEX_PENTA = 1e-4
"""49,XXXXY."""
SEX_FLOOR = 1e-5
"""Any other sex complement in 0..MAX_X x 0..MAX_Y."""

CLOSE_LOG_LR = math.log(20.0)
"""Best normal and best abnormal closer than this (natural log of the ratio) -> a close call for a person."""
LOW_TOP1 = 0.5
"""A chromosome whose classifier top-1 probability is below this is listed as uncertain."""

REAL_CLIP = 1e-4
"""Probabilities that a box is a chromosome are clipped to [REAL_CLIP, 1 - REAL_CLIP] (no box is certain)."""

COUNT_LOGIT_SHIFT = 1.5
"""Nats added to the logit of the second look's P(whole chromosome) before the joint labelling weighs a box with it
(:func:`count_evidence`; the Karyotyper applies it): the candidates miss chromosomes, so a box that is not one
whole chromosome is often the only box its chromosome has.  Chosen on val (``bench/aneuploidy.py --tune``, "Which
boxes count: the shift", with the shipped pair; 2 with its earlier classifier, 6 epochs on box crops); 0 weighs the
second look's P as it is."""

SEX_LOG_LR = 5.0
"""A called sex complement less than this (natural log of the likelihood ratio) ahead of the best labelling under
another complement -> ``sex_uncertain`` (review).  Chosen on val (``bench/aneuploidy.py --tune``, "The
uncertain-sex flag", with the shipped pair; 4 with its earlier classifier, 3.5 with the 1,800-step pair); above
CLOSE_LOG_LR, since ``close_alternative`` already reviews any other call closer than that."""

NORMAL_SEXES = ((2, 0), (1, 1))
"""(nX, nY) of a normal cell: XX and XY."""

_N_AUTO = len(classes.AUTOSOMES)
_IX = classes.NAMES.index("X")
_IY = classes.NAMES.index("Y")


# ---------------------------------------------------------------------------------------------- the prior
@dataclass(frozen=True, eq=False)
class KaryotypePrior:
    """Copy-number prior for one cell: autosomes independent per class, X and Y jointly.

    ``autosome_log[c, k]`` = log P(autosome c has k copies), k = 0..MAX_COPIES, each row normalised;
    ``sex_log[nX, nY]`` = log P(the cell has nX X and nY Y), normalised over the table.  ``log_prior(counts)``
    is the sum of the 22 autosome terms and the sex term.  Every row of ``autosome_log`` must be concave in k
    (non-increasing gains) for :func:`joint_labels` to be exact; ``__post_init__`` checks it.  The numbers of
    :meth:`default` and their sources are in the module documentation.
    """

    autosome_log: np.ndarray
    sex_log: np.ndarray
    overflow_log_penalty: float = OVERFLOW_LOG_PENALTY
    name: str = "custom"
    """The preset it came from (``prenatal``, ``postnatal``, ``oncology``), or ``custom``."""

    def __post_init__(self):
        a = np.array(self.autosome_log, dtype=float)
        s = np.array(self.sex_log, dtype=float)
        if a.ndim != 2 or a.shape[0] != _N_AUTO or a.shape[1] < 4:
            raise ValueError(f"autosome_log must have shape ({_N_AUTO}, K+1) with K >= 3, got {a.shape}")
        if s.ndim != 2 or s.shape[0] < 3 or s.shape[1] < 2:
            raise ValueError(f"sex_log must have shape (MAX_X+1 >= 3, MAX_Y+1 >= 2), got {s.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError("autosome_log must be finite: every copy number needs a real probability")
        if np.any(np.isnan(s)) or np.any(s == np.inf):
            raise ValueError("sex_log must be finite or -inf")
        for (nx, ny) in NORMAL_SEXES:
            if not np.isfinite(s[nx, ny]):
                raise ValueError("sex_log must give XX and XY a finite log probability")
        gains = np.diff(a, axis=1)
        bad = np.nonzero(np.diff(gains, axis=1) > 1e-9)
        if bad[0].size:
            c, k = int(bad[0][0]), int(bad[1][0]) + 2
            raise ValueError(
                f"autosome_log of {classes.AUTOSOMES[c]} is not concave in the copy number: gain of copy {k} "
                f"({gains[c, k - 1]:.3g}) < gain of copy {k + 1} ({gains[c, k]:.3g}); the slot assignment would "
                "not be exact")
        if not self.overflow_log_penalty >= 0:
            raise ValueError("overflow_log_penalty must be >= 0")
        a.setflags(write=False)
        s.setflags(write=False)
        object.__setattr__(self, "autosome_log", a)
        object.__setattr__(self, "sex_log", s)

    @classmethod
    def default(cls) -> "KaryotypePrior":
        """The default preset (:data:`DEFAULT_PRESET`, ``prenatal``): the module's named constants as tables."""
        return cls.preset(DEFAULT_PRESET)

    @classmethod
    def from_rates(cls, gain: dict[str, float] | None = None, gain_floor: float = GAIN_FLOOR,
                   loss: dict[str, float] | None = None, loss_floor: float = LOSS_FLOOR,
                   sex: dict[tuple[int, int], float] | None = None, sex_floor: float = SEX_FLOOR,
                   name: str = "custom") -> "KaryotypePrior":
        """A prior from rates, each a probability ratio against the normal state (see "The prior: what each term
        means"): ``gain[c]`` = P(3 copies of c) / P(2 copies) (``gain_floor`` for the others), ``loss[c]`` = P(1
        copy) / P(2 copies) (``loss_floor``), ``sex[(nX, nY)]`` = the share of cells with that complement
        (``sex_floor`` for the others; XX and XY must be given), normalised over the table.  Nullisomy is
        P(1)^2 / P(2) and every copy past the third costs what the third did, the largest values that keep the
        prior concave (the labelling exact)."""
        ratio3 = np.full(_N_AUTO, float(gain_floor))
        ratio1 = np.full(_N_AUTO, float(loss_floor))
        for table, arr, what in ((gain or {}, ratio3, "gain"), (loss or {}, ratio1, "loss")):
            for c, v in table.items():
                arr[classes.AUTOSOMES.index(classes.canonical(c))] = v
        if not (np.all(ratio3 > 0) and np.all(ratio1 > 0) and np.all(ratio3 * ratio1 <= 1)):
            raise ValueError(f"prior {name!r}: every gain and loss rate must be > 0 and gain * loss <= 1 (a third "
                             "copy may not be likelier, relative to two, than two relative to one)")
        k = np.arange(MAX_COPIES + 1)
        rel = np.empty((_N_AUTO, MAX_COPIES + 1))
        rel[:, 0] = 2 * np.log(ratio1)                   # P0 = P1^2 / P2
        rel[:, 1] = np.log(ratio1)
        rel[:, 2] = 0.0
        rel[:, 3:] = (k[3:] - 2)[None, :] * np.log(ratio3)[:, None]  # P(k+1)/P(k) = P3/P2 for k >= 3
        auto = rel - np.logaddexp.reduce(rel, axis=1, keepdims=True)
        table = np.full((MAX_X + 1, MAX_Y + 1), float(sex_floor))
        for (nx, ny), v in (sex or {(2, 0): SEX_NORMAL, (1, 1): SEX_NORMAL}).items():
            table[nx, ny] = v
        if not np.all(table > 0):
            raise ValueError(f"prior {name!r}: every sex-complement share must be > 0")
        return cls(auto, np.log(table / table.sum()), name=name)

    @classmethod
    def preset(cls, name: str) -> "KaryotypePrior":
        """One of :data:`PRESETS` by name (``prenatal``, ``postnatal``, ``oncology``); ValueError naming them."""
        key = str(name).strip().lower()
        if key not in PRESETS:
            raise ValueError(f"unknown prior {name!r} (fix: one of {', '.join(PRESETS)})")
        return cls.from_rates(**PRESETS[key]["rates"], name=key)

    def gain_ratio(self, change: str) -> float:
        """How much rarer one copy more than a normal cell is: for an autosome, P(3 copies) / P(2 copies); for a
        sex complement (``XXY``, ``XXX``, ``XYY``, ...), its probability over that of the normal complement (XX or
        XY) it has one chromosome more than (the likelier one when both)."""
        text = str(change).strip().upper()
        if text and set(text) <= {"X", "Y"} and text not in ("X", "Y"):
            nx, ny = text.count("X"), text.count("Y")
            base = [s for s in NORMAL_SEXES if (nx - s[0], ny - s[1]) in ((1, 0), (0, 1))]
            if not base or nx > self.max_x or ny > self.max_y:
                raise ValueError(f"{change!r}: not one chromosome more than XX or XY")
            return float(max(math.exp(self.sex_log[nx, ny] - self.sex_log[b]) for b in base))
        c = classes.canonical(change)
        if c not in classes.AUTOSOMES:
            raise ValueError(f"{change!r}: an autosome (1-22) or a sex complement such as XXY")
        row = self.autosome_log[classes.AUTOSOMES.index(c)]
        return float(math.exp(row[3] - row[2]))

    def count_threshold(self, change: str, p_class: float = 0.9) -> float:
        """The P(chromosome) a box needs for the labelling to count it as one copy past a normal cell's
        (``change``: an autosome, or a sex complement such as ``XXY``, see :meth:`gain_ratio`) when the classifier gives that class ``p_class`` and the rest of the cell is clear:
        counting wins when r / (1 - r) > 1 / (p_class * gain), i.e. r > 1 / (1 + p_class * gain)."""
        return 1.0 / (1.0 + p_class * self.gain_ratio(change))

    @property
    def max_copies(self) -> int:
        return self.autosome_log.shape[1] - 1

    @property
    def max_x(self) -> int:
        return self.sex_log.shape[0] - 1

    @property
    def max_y(self) -> int:
        return self.sex_log.shape[1] - 1

    def gains(self, slots: int) -> np.ndarray:
        """(22, slots) marginal log gains g_c(k) = log P_c(k) - log P_c(k-1), k = 1..slots, non-increasing in k.

        Past ``max_copies`` the last gain is continued minus ``overflow_log_penalty`` times the copies beyond.
        """
        g = np.diff(self.autosome_log, axis=1)
        if slots <= g.shape[1]:
            return g[:, :slots]
        extra = np.arange(1, slots - g.shape[1] + 1)
        tail = g[:, -1:] - self.overflow_log_penalty * extra[None, :]
        return np.concatenate([g, tail], axis=1)

    def autosome_log_p(self, counts: np.ndarray) -> float:
        """Sum over the 22 autosomes of log P_c(counts[c]) (counts past ``max_copies`` extrapolated)."""
        counts = np.asarray(counts, dtype=int)
        top = int(counts.max(initial=0))
        if top <= self.max_copies:
            return float(self.autosome_log[np.arange(_N_AUTO), counts].sum())
        cum = np.concatenate([self.autosome_log[:, :1],
                              self.autosome_log[:, :1] + np.cumsum(self.gains(top), axis=1)], axis=1)
        return float(cum[np.arange(_N_AUTO), counts].sum())

    def sex_log_p(self, n_x: int, n_y: int) -> float:
        """log P(nX, nY); -inf outside the table."""
        if 0 <= n_x <= self.max_x and 0 <= n_y <= self.max_y:
            return float(self.sex_log[n_x, n_y])
        return -math.inf

    def log_prior(self, counts: dict[str, int]) -> float:
        """log P(counts) for per-class counts (missing classes count 0; names or aliases accepted)."""
        vec = np.zeros(classes.NUM_CLASSES, dtype=int)
        for name, n in counts.items():
            if n < 0:
                raise ValueError(f"negative count {n} for class {name!r}")
            vec[classes.NAMES.index(classes.canonical(name))] += int(n)
        return self._log_prior_vec(vec)

    def _log_prior_vec(self, vec: np.ndarray) -> float:
        return self.autosome_log_p(vec[:_N_AUTO]) + self.sex_log_p(int(vec[_IX]), int(vec[_IY]))


PRESETS: dict[str, dict] = {
    "prenatal": {
        "about": "amniotic fluid / chorionic villus cultures at prenatal diagnosis (referred for maternal age, a "
                 "positive screen or an abnormal ultrasound), and the bundled CIL:54816 sample",
        "rates": {"gain": {"21": TRISOMY_21, "18": TRISOMY_18, "13": TRISOMY_13}, "gain_floor": GAIN_FLOOR,
                  "loss_floor": LOSS_FLOOR,
                  "sex": {(2, 0): SEX_NORMAL, (1, 1): SEX_NORMAL, (1, 0): SEX_X, (2, 1): SEX_XXY, (3, 0): SEX_XXX,
                          (1, 2): SEX_XYY, (0, 1): SEX_Y_ONLY, (3, 1): SEX_TETRA, (2, 2): SEX_TETRA,
                          (4, 0): SEX_TETRA, (4, 1): SEX_PENTA}, "sex_floor": SEX_FLOOR}},
    "postnatal": {
        "about": "blood lymphocyte cultures of children and adults referred for a constitutional karyotype "
                 "(developmental delay, dysmorphism, infertility, recurrent miscarriage)",
        "rates": {"gain": {"21": 1e-2, "18": 2e-3, "13": 1e-3}, "gain_floor": 1e-3, "loss_floor": LOSS_FLOOR,
                  "sex": {(2, 0): SEX_NORMAL, (1, 1): SEX_NORMAL, (1, 0): 2e-2, (2, 1): 4e-3, (3, 0): 2e-3,
                          (1, 2): 2e-3, (0, 1): SEX_Y_ONLY, (3, 1): 2e-4, (2, 2): 2e-4, (4, 0): 2e-4,
                          (4, 1): 5e-5}, "sex_floor": SEX_FLOOR}},
    "oncology": {
        "about": "bone marrow / tumour cultures (leukaemia, myelodysplasia, lymphoma, solid tumours): numerical "
                 "changes are the rule, not the exception",
        "rates": {"gain": {"8": 0.15, "21": 0.1, "12": 0.08, "4": 0.08, "6": 0.08, "10": 0.08, "14": 0.08,
                           "17": 0.08, "18": 0.08}, "gain_floor": 0.05,
                  "loss": {"7": 0.1, "5": 0.05, "17": 0.05, "13": 0.05, "20": 0.05}, "loss_floor": 0.03,
                  "sex": {(2, 0): SEX_NORMAL, (1, 1): SEX_NORMAL, (1, 0): 0.15, (2, 1): 0.02, (3, 0): 0.02,
                          (1, 2): 0.01, (0, 1): 0.01, (3, 1): 5e-3, (2, 2): 5e-3, (4, 0): 5e-3, (4, 1): 1e-3},
                  "sex_floor": 1e-4}},
}
"""The shipped priors by name: ``about`` says which cells each describes, ``rates`` are
:meth:`KaryotypePrior.from_rates` arguments.  Sources and reasoning in the module documentation."""

if tuple(PRESETS) != _defaults.PRIOR_PRESETS:  # the CLI offers defaults.PRIOR_PRESETS without importing numpy
    raise AssertionError("karyotf.defaults.PRIOR_PRESETS must list the presets of karyotf.classify.joint.PRESETS")
DEFAULT_PRESET = _defaults.PRIOR
"""The prior :func:`joint_labels` uses unless told otherwise (``--prior`` on the command line)."""

DEFAULT_PRIOR = KaryotypePrior.default()


def prior_of(prior: "KaryotypePrior | str | None") -> KaryotypePrior:
    """A :class:`KaryotypePrior` from a prior, a preset name, or None (the default preset)."""
    if prior is None:
        return DEFAULT_PRIOR
    if isinstance(prior, KaryotypePrior):
        return prior
    return KaryotypePrior.preset(prior)


# ---------------------------------------------------------------------------------------------- the result
@dataclass(frozen=True)
class JointFlag(Flag):
    """A :class:`karyotf.karyogram.call.Flag` that also names the chromosomes (indices into ``probs``)."""

    indices: tuple[int, ...] = ()

    def to_dict(self) -> dict:
        d = super().to_dict()
        if self.indices:
            d["indices"] = list(self.indices)
        return d


JOINT_FLAG_CODES = {
    "label_changed": "the joint labelling gave a chromosome another class than the classifier's top-1",
    "close_call": f"the best normal and the best abnormal karyotype are within a likelihood ratio of "
                  f"{math.exp(CLOSE_LOG_LR):.0f}: a person must decide",
    "close_alternative": "another count call (e.g. 47,XXY against 47,XY,+21) is within the close-call likelihood "
                         "ratio of the chosen one",
    "low_top1": f"chromosomes whose classifier top-1 probability is below {LOW_TOP1:g}",
    "beyond_prior": "a class count beyond what the prior describes (a detection failure, not a karyotype)",
    "left_out": "a box left out of the count by the joint labelling, although counting it, which changes the call (a "
                "third copy: a possible aneuploidy), is within the close-call likelihood ratio",
    "left_out_swap": "a box left out that could stand in for a counted one (a second box on one chromosome) "
                     "without changing the call",
    "sex_uncertain": "the best labelling under another sex complement (46,XX against 46,XY, 45,X against 46,XX) is "
                     "within the uncertain-sex likelihood ratio (SEX_LOG_LR) of the chosen one: names the complement, "
                     "its P and the boxes that would change",
}
"""Every flag code :meth:`JointLabels.flags` can raise, with its meaning."""


@dataclass
class JointLabels:
    """The joint labelling of one cell, beside the classifier's own top-1, with the normal/abnormal comparison."""

    labels: list[str]
    top1: list[str]
    changed: list[int]
    log_likelihood: float
    best_normal: float | None
    best_abnormal: float | None
    log_lr: float | None
    close_call: bool
    counts: dict[str, int]
    normal_labels: list[str] | None = None
    """The best normal labelling (N == 46 only)."""
    abnormal_labels: list[str] | None = None
    """The best labelling that is not normal."""
    label_prob: list[float] = field(default_factory=list)
    """Classifier probability (renormalised) of each chromosome's joint label."""
    top1_prob: list[float] = field(default_factory=list)
    """Classifier probability of each chromosome's top-1 class."""
    close_log_lr: float = CLOSE_LOG_LR
    beyond_prior: tuple[str, ...] = ()
    """Classes whose count lies past the prior's table (more than MAX_COPIES autosomes, MAX_X X, MAX_Y Y)."""
    runner_up: float | None = None
    """Score of the best labelling whose per-class counts differ from the chosen ones (any N; None for N = 0)."""
    runner_up_labels: list[str | None] | None = None
    left_out: list[int] = field(default_factory=list)
    """Boxes the labelling left out of the count (only with ``real``): judged not a chromosome (a duplicate, a
    fragment, a stray).  Their ``labels`` entry is the classifier's top-1, and ``counts`` leaves them out."""
    real_prob: list[float] | None = None
    """Per box, the probability that it is a chromosome that the labelling was given (None: every box counts)."""
    left_out_log_lr: list[float] = field(default_factory=list)
    """Per box of ``left_out``: the chosen labelling's score minus the best one's that counts that box (inf when
    no labelling within the close-call ratio counts it).  Below ``close_log_lr`` the box is flagged."""
    left_out_alt: list[list[str | None] | None] = field(default_factory=list)
    """Per box of ``left_out``: the labels of the best labelling that counts it (None: none within the close-call
    ratio was looked for)."""
    prior_name: str = "custom"
    """The prior the labelling used (a preset's name, or ``custom``)."""
    sex_scores: dict[str, float] = field(default_factory=dict)
    """Score of the best labelling under each sex complement the prior allows (``XX``, ``XY``, ``X``, ...)."""
    sex_alt: str | None = None
    """The sex complement of the best labelling under another complement than the chosen one."""
    sex_alt_boxes: list[tuple[int, str | None, float | None]] = field(default_factory=list)
    """The boxes that labelling changes to or from X or Y: (index, its label there, classifier P of that label)."""
    sex_threshold: float = SEX_LOG_LR
    """``sex_uncertain`` fires when :attr:`sex_log_lr` is below this."""

    @property
    def sex(self) -> str:
        """The chosen sex complement (``XX``, ``XY``, ``X``, ...)."""
        return _sex_name((self.counts.get("X", 0), self.counts.get("Y", 0)))

    @property
    def sex_log_lr(self) -> float | None:
        """How much better (natural log) the chosen labelling is than the best one under another sex complement
        (None: no other complement is possible)."""
        if self.sex_alt is None or self.sex not in self.sex_scores:
            return None
        return self.sex_scores[self.sex] - self.sex_scores[self.sex_alt]

    @property
    def sex_alt_prob(self) -> float | None:
        """P(the other complement) among all complements (max-labelling approximation: each complement's best
        labelling's score, normalised)."""
        if self.sex_alt is None:
            return None
        v = np.array(list(self.sex_scores.values()))
        return float(math.exp(self.sex_scores[self.sex_alt] - float(np.logaddexp.reduce(v))))

    def sex_flag(self) -> "JointFlag | None":
        """``sex_uncertain`` (review) when another sex complement is within :attr:`sex_threshold` of the chosen
        one, naming it, its P and the boxes that would change (``sex complement uncertain: XY at P 0.20 (#17
        could be Y, p(Y) 0.35)``); else None."""
        lr = self.sex_log_lr
        if lr is None or not lr < self.sex_threshold:
            return None
        idx = tuple(i for i, _, _ in self.sex_alt_boxes)
        which = ", ".join(f"#{i} could be {name}, p({name}) {q:.2f}" if name is not None else f"#{i} left out"
                          for i, name, q in self.sex_alt_boxes)
        return JointFlag(
            "sex_uncertain",
            f"sex complement uncertain: {self.sex} called, {self.sex_alt} at P {self.sex_alt_prob:.2f} (a likelihood "
            f"ratio of {math.exp(lr):.3g} behind, log {lr:.2f} < {self.sex_threshold:.2f})"
            + (f" ({which})" if which else "") + ": a person must decide",
            ("X", "Y"), idx)

    @property
    def doubted(self) -> tuple[int, ...]:
        """Boxes left out although a labelling that counts them is within the close-call likelihood ratio."""
        return tuple(i for i, v in zip(self.left_out, self.left_out_log_lr) if v < self.close_log_lr)

    @property
    def doubted_call(self) -> tuple[int, ...]:
        """Doubted boxes whose counting changes the call (the per-class counts): a possible aneuploidy, or a
        chromosome that completes a pair.  The other doubted boxes only stand in for another box (a second box on
        one chromosome): counting them instead changes nothing."""
        alt = dict(zip(self.left_out, self.left_out_alt))
        return tuple(i for i in self.doubted if alt.get(i) is not None and _counts(alt[i]) != self.counts)

    def left_out_flags(self, where: dict[int, str] | None = None) -> list["JointFlag"]:
        """The flags of the doubted boxes left out: ``left_out`` (review) for each whose counting changes the call,
        naming the chromosome, the copy it would be and the evidence ("a third 21 left out, P(chromosome) 0.80:
        counting it gives 47,XX,+21, a likelihood ratio of 12 behind"), ``left_out_swap`` (note) for those that
        would only stand in for another box.  ``where``: text naming each box (e.g. its position), default
        ``#i``."""
        where = where or {}
        lr = dict(zip(self.left_out, self.left_out_log_lr))
        alt = dict(zip(self.left_out, self.left_out_alt))
        change = self.doubted_call
        out: list[JointFlag] = []
        parts, names = [], set()
        for i in change:
            name = alt[i][i]
            copies = _counts(alt[i])[name]
            names.add(name)
            parts.append(f"a {_ordinal(copies)} {name} left out ({where.get(i, f'#{i}')}, P(chromosome) "
                         f"{self.real_prob[i]:.2f}): counting it gives {iscn(_counts(alt[i]))[0]}, a likelihood "
                         f"ratio of {math.exp(min(lr[i], 50)):.3g} behind {self.iscn}")
        if change:
            out.append(JointFlag("left_out", "; ".join(parts) + f" (within {math.exp(self.close_log_lr):.0f}): a "
                                 "person must decide (see 'not counted')",
                                 tuple(sorted(names, key=classes.LABEL_OF.get)), change))
        swap = tuple(i for i in self.doubted if i not in change)
        if swap:
            out.append(JointFlag(
                "left_out_swap", f"{len(swap)} box(es) left out that could stand in for a counted box without "
                "changing the call: " + ", ".join(f"{self.top1[i]} ({where.get(i, f'#{i}')}, P(chromosome) "
                                                  f"{self.real_prob[i]:.2f})" for i in swap),
                tuple(sorted({self.top1[i] for i in swap}, key=classes.LABEL_OF.get)), swap))
        return out

    @property
    def runner_up_log_lr(self) -> float | None:
        """log_likelihood - runner_up: how much better the chosen count call is than the next one."""
        return None if self.runner_up is None else self.log_likelihood - self.runner_up

    @property
    def close_alternative(self) -> bool:
        """The runner-up count call is within ``close_log_lr`` and is not the normal/abnormal comparison that
        ``close_call`` already reports (e.g. 47,XY,+21 against 47,XXY, or 46,XX against 46,XY)."""
        if self.runner_up_labels is None or self.runner_up_log_lr >= self.close_log_lr:
            return False
        other = self.normal_labels if not self.is_normal else self.abnormal_labels
        return not (self.close_call and other is not None and _counts(other) == _counts(self.runner_up_labels))

    @property
    def n(self) -> int:
        """Boxes counted (every box, unless some were left out)."""
        return len(self.labels) - len(self.left_out)

    @property
    def iscn(self) -> str:
        """The ISCN count string of the joint labelling (``47,XY,+21``), see :func:`karyotf.karyogram.call.iscn`."""
        return iscn(self.counts)[0]

    @property
    def is_normal(self) -> bool:
        return _is_normal_counts(self.counts)

    def flags(self) -> list[JointFlag]:
        """Review flags: each changed label, a close normal/abnormal call, uncertain chromosomes, overflow."""
        out: list[JointFlag] = []
        for i in self.changed:
            t, j = self.top1[i], self.labels[i]
            out.append(JointFlag(
                "label_changed",
                f"chromosome #{i}: classifier top-1 {t} (p={self.top1_prob[i]:.4g}) labelled {j} "
                f"(p={self.label_prob[i]:.4g}) by the joint labelling",
                tuple(sorted({t, j}, key=classes.LABEL_OF.get)), (i,)))
        if self.close_call and self.normal_labels is not None and self.abnormal_labels is not None:
            normal = _counts(self.normal_labels)
            abnormal = _counts(self.abnormal_labels)
            differ = tuple(n for n in classes.NAMES if normal[n] != abnormal[n])
            idx = tuple(i for i, (a, b) in enumerate(zip(self.normal_labels, self.abnormal_labels)) if a != b)
            which = "normal" if self.best_normal >= self.best_abnormal else "abnormal"
            out.append(JointFlag(
                "close_call",
                f"best normal {iscn(normal)[0]} and best abnormal {iscn(abnormal)[0]} differ by a likelihood "
                f"ratio of {math.exp(self.log_lr):.3g} (log {self.log_lr:.2f} < {self.close_log_lr:.2f}); the "
                f"{which} one is chosen, a person must decide (chromosomes {', '.join(f'#{i}' for i in idx)})",
                differ, idx))
        if self.close_alternative:
            alt = _counts(self.runner_up_labels)
            differ = tuple(n for n in classes.NAMES if alt[n] != self.counts[n])
            idx = tuple(i for i, (a, b) in enumerate(zip(self.labels, self.runner_up_labels)) if a != b)
            sex_only = set(differ) <= {"X", "Y"}
            taken = [i for i in idx if i in self.left_out and self.runner_up_labels[i] is not None]
            out.append(JointFlag(
                "close_alternative",
                ("uncertain sex complement: " if sex_only else "")
                + ("counting box(es) left out (" + ", ".join(
                    f"#{i} as {self.runner_up_labels[i]}, P(chromosome) {self.real_prob[i]:.2f}" for i in taken)
                   + ") is close: " if taken else "")
                + f"the call {self.iscn} is only a likelihood ratio of {math.exp(self.runner_up_log_lr):.3g} (log "
                f"{self.runner_up_log_lr:.2f} < {self.close_log_lr:.2f}) ahead of {iscn(alt)[0]}: a person must "
                f"decide (chromosomes {', '.join(f'#{i}' for i in idx)})", differ, idx))
        low = tuple(i for i, p in enumerate(self.top1_prob) if p < LOW_TOP1)
        if low:
            out.append(JointFlag(
                "low_top1",
                f"{len(low)} chromosome(s) with a classifier top-1 probability below {LOW_TOP1:g}: "
                + ", ".join(f"#{i} {self.top1[i]} ({self.top1_prob[i]:.2f})" for i in low),
                tuple(sorted({self.top1[i] for i in low}, key=classes.LABEL_OF.get)), low))
        out += self.left_out_flags()
        sex = self.sex_flag()
        if sex is not None:
            out.append(sex)
        if self.beyond_prior:
            out.append(JointFlag(
                "beyond_prior",
                "counts past the prior's table for " + ", ".join(f"{n} ({self.counts[n]})" for n in self.beyond_prior)
                + ": labelled with overflow costs, not a karyotype", self.beyond_prior))
        return out

    def to_dict(self) -> dict:
        r = lambda v: None if v is None else round(float(v), 4)  # noqa: E731
        return {
            "labels": list(self.labels), "top1": list(self.top1), "changed": list(self.changed),
            "iscn": self.iscn, "normal": self.is_normal, "counts": dict(self.counts),
            "log_likelihood": r(self.log_likelihood), "best_normal": r(self.best_normal),
            "best_abnormal": r(self.best_abnormal), "log_lr": r(self.log_lr), "close_call": self.close_call,
            "runner_up": r(self.runner_up), "close_alternative": self.close_alternative,
            "left_out": list(self.left_out),
            "real_prob": None if self.real_prob is None else [r(x) for x in self.real_prob],
            "prior": self.prior_name,
            "sex_log_lr": r(self.sex_log_lr), "sex_alternative": self.sex_alt,
            "flags": [f.to_dict() for f in self.flags()],
        }


def _sex_name(sx: tuple[int, int]) -> str:
    """(nX, nY) as ISCN writes it: ``XX``, ``XY``, ``X``, ``XXY``; ``--`` for neither."""
    return "X" * sx[0] + "Y" * sx[1] or "--"


def _ordinal(k: int) -> str:
    return {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}.get(k, f"{k}th")


def _counts(labels) -> dict[str, int]:
    """Per-class counts of names (None, a box left out of the count, is not counted)."""
    out = {n: 0 for n in classes.NAMES}
    for name in labels:
        if name is not None:
            out[name] += 1
    return out


def _names(labels: np.ndarray | None) -> list[str | None] | None:
    """Label indices as class names, None for a box left out of the count."""
    if labels is None:
        return None
    return [classes.NAMES[k] if k >= 0 else None for k in labels]


def _is_normal_counts(counts: dict[str, int]) -> bool:
    return (all(counts.get(n, 0) == 2 for n in classes.AUTOSOMES)
            and (counts.get("X", 0), counts.get("Y", 0)) in NORMAL_SEXES)


def _vec(labels: np.ndarray) -> np.ndarray:
    """Per-class counts of label indices (-1, a box left out of the count, is not counted)."""
    labels = np.asarray(labels)
    return np.bincount(labels[labels >= 0], minlength=classes.NUM_CLASSES)


def _is_normal_vec(vec: np.ndarray) -> bool:
    return bool(np.all(vec[:_N_AUTO] == 2)) and (int(vec[_IX]), int(vec[_IY])) in NORMAL_SEXES


# ---------------------------------------------------------------------------------------------- the solver
def validate_probs(probs) -> np.ndarray:
    """``probs`` as a float (N, 24) array with rows summing to 1, or ValueError saying what is wrong."""
    a = np.asarray(probs, dtype=float)
    if a.size == 0 and a.ndim <= 2 and (a.ndim < 2 or a.shape[1] in (0, classes.NUM_CLASSES)):
        return np.zeros((0, classes.NUM_CLASSES))
    if a.ndim != 2 or a.shape[1] != classes.NUM_CLASSES:
        raise ValueError(f"probs must have shape (N, {classes.NUM_CLASSES}) (one row per chromosome, columns in "
                         f"classes.NAMES order), got shape {a.shape}")
    bad = ~np.isfinite(a)
    if bad.any():
        i = int(np.nonzero(bad.any(axis=1))[0][0])
        raise ValueError(f"probs must be finite: row {i} holds NaN or inf")
    if (a < 0).any():
        i = int(np.nonzero((a < 0).any(axis=1))[0][0])
        raise ValueError(f"probs must be non-negative: row {i} has {a[i].min():.3g}")
    s = a.sum(axis=1, keepdims=True)
    if (s <= 0).any():
        i = int(np.nonzero(s[:, 0] <= 0)[0][0])
        raise ValueError(f"probs row {i} sums to 0: no class has any probability")
    return a / s


class _Solver:
    """The slot assignments of one cell (see the module documentation for why they are exact)."""

    def __init__(self, logp: np.ndarray, prior: KaryotypePrior, real: np.ndarray | None = None):
        self.logp = logp
        self.prior = prior
        n = logp.shape[0]
        self.n = n
        self.k = min(max(prior.max_copies, -(-n // (_N_AUTO - 1)) + 1), max(n, 3))
        gains = prior.gains(self.k)                                              # (22, K)
        # counting box i costs -log r_i, leaving it out -log(1 - r_i) (no ``real``: every box is counted)
        self.log_real = None if real is None else np.log(real)
        self.log_stray = None if real is None else np.log1p(-real)
        count = np.zeros(n) if real is None else -self.log_real
        # autosome block: column c*K + (k-1) is slot k of class c
        self.auto = (-logp[:, :_N_AUTO, None] - gains[None, :, :]).reshape(n, _N_AUTO * self.k) + count[:, None]
        self.count = count
        self.auto_class = np.repeat(np.arange(_N_AUTO), self.k)
        self.auto_slot = np.tile(np.arange(1, self.k + 1), _N_AUTO)
        spread = max(float(np.abs(self.auto).max(initial=0.0)), float(np.abs(logp).max(initial=0.0)),
                     0.0 if real is None else float(np.abs(self.log_stray).max(initial=0.0))) + 1.0
        self.big = 2.0 * (n + 1) * spread + 1.0                                  # beats any cost spread
        self.null = None
        if real is not None:  # one "not a chromosome" column per box, usable by that box only
            self.null = np.full((n, n), np.inf)
            self.null[np.arange(n), np.arange(n)] = -self.log_stray
        self._memo: dict = {}

    def _sex_block(self, nx: int, ny: int):
        cols = [np.repeat(-self.logp[:, _IX:_IX + 1] + self.count[:, None], nx, axis=1) - self.big,
                np.repeat(-self.logp[:, _IY:_IY + 1] + self.count[:, None], ny, axis=1) - self.big]
        cls = np.array([_IX] * nx + [_IY] * ny, dtype=int)
        return np.concatenate(cols, axis=1), cls

    def solve(self, nx: int, ny: int, auto: np.ndarray | None = None, auto_class: np.ndarray | None = None,
              null: np.ndarray | None = None):
        """Best label indices (-1: left out of the count) with exactly nx X and ny Y over the given autosome
        columns (and "left out" columns ``null``, default every box's); None if infeasible."""
        null = self.null if null is None else null
        auto = self.auto if auto is None else auto
        auto_class = self.auto_class if auto_class is None else auto_class
        if nx + ny > self.n or (null is None and auto.shape[1] + nx + ny < self.n):
            return None
        sex, sex_class = self._sex_block(nx, ny)
        blocks, col_class = [auto, sex], [auto_class, sex_class]
        if null is not None:
            blocks.append(null)
            col_class.append(np.full(self.n, -1, dtype=int))
        cost = np.concatenate(blocks, axis=1)
        try:
            rows, cols = linear_sum_assignment(cost)
        except ValueError:                          # the forced slots cannot all be filled
            return None
        col_class = np.concatenate(col_class)
        labels = np.empty(self.n, dtype=int)
        labels[rows] = col_class[cols]
        vec = _vec(labels)
        if vec[_IX] != nx or vec[_IY] != ny:       # cannot happen while big beats the spread
            raise AssertionError("sex slots not all filled")
        return labels

    def score(self, labels: np.ndarray) -> float:
        counted = labels >= 0
        s = float(self.logp[np.nonzero(counted)[0], labels[counted]].sum()) + self.prior._log_prior_vec(_vec(labels))
        if self.log_real is not None:
            s += float(self.log_real[counted].sum() + self.log_stray[~counted].sum())
        return s

    def at_least(self, sex: tuple[int, int], c: int, m: int) -> np.ndarray | None:
        """Best labels with the sex ``sex`` and at least m copies of autosome c (bonus M on its slots 1..m: the
        slot costs stay non-decreasing, so the prefix argument still holds); None if infeasible.  Memoised."""
        key = (sex, c, ">=", m)
        if key not in self._memo:
            lab = None
            if 1 <= m <= self.k and m + sex[0] + sex[1] <= self.n:     # else infeasible: no labelling has it
                auto = self.auto.copy()
                auto[:, c * self.k:c * self.k + m] -= self.big
                lab = self.solve(*sex, auto)
                if lab is not None and np.count_nonzero(lab == c) < m:   # cannot happen while big beats the spread
                    raise AssertionError("forced autosome slots not all filled")
            self._memo[key] = lab
        return self._memo[key]

    def at_most(self, sex: tuple[int, int], c: int, m: int) -> np.ndarray | None:
        """Best labels with the sex ``sex`` and at most m copies of autosome c (its slots m+1..K removed); None
        if infeasible.  Memoised."""
        key = (sex, c, "<=", m)
        if key not in self._memo:
            lab = None
            if m >= 0:
                keep = ~((self.auto_class == c) & (self.auto_slot > m))
                lab = self.solve(*sex, self.auto[:, keep], self.auto_class[keep])
            self._memo[key] = lab
        return self._memo[key]

    def counting(self, sex: tuple[int, int], i: int) -> np.ndarray | None:
        """Best labels with the sex ``sex`` that count box ``i`` (its "left out" column removed)."""
        null = self.null.copy()
        null[i, i] = np.inf
        lab = self.solve(*sex, null=null)
        return lab if lab is not None and lab[i] >= 0 else None

    def normal(self, nx: int, ny: int) -> np.ndarray | None:
        """Best labelling with two of each autosome and the given sex (N == 46: every slot filled; with boxes
        that may be left out, N >= 46: the two slots of each autosome forced full, the other boxes left out)."""
        keep = self.auto_slot <= 2
        auto = self.auto[:, keep]
        if self.null is not None:
            if self.n < 46:
                return None
            auto = auto - self.big
        lab = self.solve(nx, ny, auto, self.auto_class[keep])
        if lab is not None and not _is_normal_vec(_vec(lab)):   # cannot happen while big beats the spread
            raise AssertionError("normal slots not all filled")
        return lab


def validate_real(real, n: int) -> np.ndarray:
    """``real`` as a float (N,) array of probabilities in [0, 1], or ValueError saying what is wrong."""
    a = np.asarray(real, dtype=float)
    if a.shape != (n,):
        raise ValueError(f"real must have shape ({n},) (one probability per box, the rows of probs), got {a.shape}")
    bad = ~np.isfinite(a) | (a < 0) | (a > 1)
    if bad.any():
        i = int(np.nonzero(bad)[0][0])
        raise ValueError(f"real[{i}] = {a[i]!r}: a probability that box {i} is a chromosome must lie in [0, 1]")
    return np.clip(a, REAL_CLIP, 1.0 - REAL_CLIP)


def count_evidence(p_whole, shift: float | None = None) -> np.ndarray:
    """The P(chromosome) the joint labelling weighs a box with, from the second look's P(whole chromosome):
    sigmoid(logit(p) + ``shift``) (``shift`` None: :data:`COUNT_LOGIT_SHIFT`; 0: ``p`` itself, clipped to
    [REAL_CLIP, 1 - REAL_CLIP])."""
    shift = COUNT_LOGIT_SHIFT if shift is None else float(shift)
    p = np.clip(np.asarray(p_whole, dtype=float), REAL_CLIP, 1.0 - REAL_CLIP)
    if shift == 0.0:
        return p
    return 1.0 / (1.0 + np.exp(-(np.log(p) - np.log1p(-p) + shift)))


def joint_labels(probs, prior: KaryotypePrior | str | None = None, close_log_lr: float = CLOSE_LOG_LR,
                 eps: float = 1e-6, real=None, sex_log_lr: float = SEX_LOG_LR) -> JointLabels:
    """The most likely labelling of one cell's chromosomes under ``prior``, with its normal/abnormal comparison.

    ``probs``: (N, 24) classifier probabilities, columns in :data:`karyotf.classes.NAMES` order; rows are
    renormalised, and each probability is floored at ``eps`` before its log (a classifier's 0 is not
    certainty).  ``real``: optional (N,) probability that each box is a chromosome at all (from the detector's
    score, calibrated on val: :func:`karyotf.scorefloor.tune_min_score`); with it the labelling may also leave a
    box out of the count (a duplicate, a fragment, a stray), at a cost of log(1 - r) against log r for counting
    it (see "Which boxes count").  ``sex_log_lr``: a called sex complement less than this ahead of the best
    labelling under another complement is flagged ``sex_uncertain`` (0: never).  Returns a :class:`JointLabels`;
    call ``.flags()`` for the review flags.
    """
    p = validate_probs(probs)
    prior = prior_of(prior)
    if not (eps > 0 and eps < 1):
        raise ValueError(f"eps must be in (0, 1), got {eps!r}")
    if not close_log_lr >= 0:
        raise ValueError(f"close_log_lr must be >= 0, got {close_log_lr!r}")
    if not sex_log_lr >= 0:
        raise ValueError(f"sex_log_lr must be >= 0, got {sex_log_lr!r}")
    n = p.shape[0]
    r = None if real is None else validate_real(real, n)
    names = np.array(classes.NAMES)
    if n == 0:
        zero = {c: 0 for c in classes.NAMES}
        s = prior.log_prior(zero)
        return JointLabels([], [], [], s, None, s, None, False, zero, None, [], [], [], close_log_lr,
                           real_prob=None if r is None else [], prior_name=prior.name, sex_threshold=sex_log_lr)
    logp = np.log(np.maximum(p, eps))
    solver = _Solver(logp, prior, r)
    can_be_normal = n == 46 if r is None else n >= 46

    # unconstrained: every sex complement the prior allows
    by_sex: dict[tuple[int, int], tuple[float, np.ndarray]] = {}
    for nx in range(prior.max_x + 1):
        for ny in range(prior.max_y + 1):
            if not np.isfinite(prior.sex_log[nx, ny]):
                continue
            lab = solver.solve(nx, ny)
            if lab is not None:
                by_sex[(nx, ny)] = (solver.score(lab), lab)
    best_sex = max(by_sex, key=lambda s: by_sex[s][0])
    best, labels = by_sex[best_sex]
    vec = _vec(labels)
    optimum_normal = _is_normal_vec(vec)

    best_normal = best_abnormal = None
    normal_lab = abnormal_lab = None
    if can_be_normal:
        for sx in NORMAL_SEXES:
            if not np.isfinite(prior.sex_log[sx]):
                continue
            lab = solver.normal(*sx)
            if lab is None:
                continue
            s = solver.score(lab)
            if best_normal is None or s > best_normal:
                best_normal, normal_lab = s, lab
        if optimum_normal:   # same optimum, same labels (ties aside)
            best_normal, normal_lab = best, labels
    if not optimum_normal:
        best_abnormal, abnormal_lab = best, labels
    else:
        # abnormal = some autosome >= 3 or <= 1, or an abnormal sex complement (module documentation)
        for sx, (s, lab) in by_sex.items():
            if sx not in NORMAL_SEXES and (best_abnormal is None or s > best_abnormal):
                best_abnormal, abnormal_lab = s, lab
        for sx in sorted((s for s in NORMAL_SEXES if s in by_sex), key=lambda s: -by_sex[s][0]):
            if best_abnormal is not None and by_sex[sx][0] <= best_abnormal:
                continue             # constraints cannot beat the unconstrained score of this complement
            for c in range(_N_AUTO):
                for lab in (solver.at_least(sx, c, 3), solver.at_most(sx, c, 1)):
                    if lab is None:
                        continue
                    s = solver.score(lab)
                    if best_abnormal is None or s > best_abnormal:
                        best_abnormal, abnormal_lab = s, lab

    # runner-up: the best labelling whose counts differ from the chosen ones (another sex complement, or some
    # autosome with more or fewer copies under the chosen complement: exactly the labellings with other counts)
    runner, runner_lab = None, None
    for sx, (s, lab) in by_sex.items():
        if sx != best_sex and (runner is None or s > runner):
            runner, runner_lab = s, lab
    for c in range(_N_AUTO):
        m = int(vec[c])
        for lab in (solver.at_least(best_sex, c, m + 1), solver.at_most(best_sex, c, m - 1)):
            if lab is None:
                continue
            s = solver.score(lab)
            if runner is None or s > runner:
                runner, runner_lab = s, lab

    # each box left out: how much better the chosen labelling is than the best one that counts it
    left_lr, left_alt = [], []
    for i in np.nonzero(labels < 0)[0]:
        counted, alt = -math.inf, None
        for sx, (s, _) in by_sex.items():
            if s >= best - close_log_lr:   # a constraint cannot raise a score: other complements cannot be close
                lab = solver.counting(sx, int(i))
                if lab is not None and solver.score(lab) > counted:
                    counted, alt = solver.score(lab), lab
        left_lr.append(best - counted)
        left_alt.append(_names(alt))

    # the best labelling under another sex complement, and the boxes that would change sex (the uncertain-sex flag)
    sex_alt, sex_boxes = None, []
    others = [sx for sx in by_sex if sx != best_sex]
    if others:
        sex_alt = max(others, key=lambda sx: by_sex[sx][0])
        alt_lab = by_sex[sex_alt][1]
        sex_boxes = [(int(i), classes.NAMES[alt_lab[i]] if alt_lab[i] >= 0 else None,
                      float(p[i, alt_lab[i]]) if alt_lab[i] >= 0 else None)
                     for i in np.nonzero(alt_lab != labels)[0]
                     if _IX in (labels[i], alt_lab[i]) or _IY in (labels[i], alt_lab[i])]
    sex_scores = {_sex_name(sx): float(v[0]) for sx, v in by_sex.items()}

    log_lr = None if best_normal is None or best_abnormal is None else abs(best_normal - best_abnormal)
    top = p.argmax(axis=1)
    rows = np.arange(n)
    left_out = np.nonzero(labels < 0)[0]
    shown = np.where(labels >= 0, labels, top)          # a box left out keeps its top-1 name (not counted)
    counts = {name: int(vec[i]) for i, name in enumerate(classes.NAMES)}
    beyond = tuple(name for i, name in enumerate(classes.AUTOSOMES) if vec[i] > prior.max_copies)
    beyond += tuple(name for name, i, m in (("X", _IX, prior.max_x), ("Y", _IY, prior.max_y)) if vec[i] > m)
    return JointLabels(
        labels=[str(x) for x in names[shown]],
        top1=[str(x) for x in names[top]],
        changed=[int(i) for i in np.nonzero((labels != top) & (labels >= 0))[0]],
        log_likelihood=best,
        best_normal=best_normal,
        best_abnormal=best_abnormal,
        log_lr=log_lr,
        close_call=log_lr is not None and log_lr < close_log_lr,
        counts=counts,
        normal_labels=_names(normal_lab),
        abnormal_labels=_names(abnormal_lab),
        label_prob=[float(x) for x in p[rows, shown]],
        top1_prob=[float(x) for x in p[rows, top]],
        close_log_lr=close_log_lr,
        beyond_prior=beyond,
        runner_up=runner,
        runner_up_labels=_names(runner_lab),
        left_out=[int(i) for i in left_out],
        real_prob=None if r is None else [float(x) for x in r],
        left_out_log_lr=[float(x) for x in left_lr],
        left_out_alt=left_alt,
        prior_name=prior.name,
        sex_scores=sex_scores,
        sex_alt=None if sex_alt is None else _sex_name(sex_alt),
        sex_alt_boxes=sex_boxes,
        sex_threshold=sex_log_lr,
    )
