"""``--prior``: the karyotype prior of the joint labelling, one option shared by the commands that name
chromosomes (``karyogram``, ``eval``, ``classifier eval``)."""
from __future__ import annotations

# Imports inside functions, and why: the command's stage and its helpers, imported when the command runs (so that
# `karyotf --help` and every other command start without them).


def add_prior_option(parser) -> None:
    from ..defaults import PRIOR, PRIOR_PRESETS

    parser.add_argument("--prior", default=PRIOR, choices=PRIOR_PRESETS,
                        help="karyotype prior of the joint labelling: how common each aneuploidy is among the cells "
                             "the lab sees (prenatal: amniocytes / villi; postnatal: referred blood; oncology: "
                             "marrow / tumour, gains and losses common); see karyotf/classify/joint.py")
