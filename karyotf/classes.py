"""The 24 human chromosome classes: the one source of truth for names, label ids, Denver groups and aliases.

Label ids run 1..24 (the OD API reserves 0 for the background): ``1``..``22`` are ids 1..22, ``X`` is 23 and
``Y`` is 24.  Every other module asks this one to turn whatever a person wrote in an annotation (``A1``,
``G21``, ``chr21``, ``21``, ``x``) into the canonical name.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from .io import atomic_write_text

NAMES: tuple[str, ...] = tuple(str(i) for i in range(1, 23)) + ("X", "Y")
"""Canonical class names in karyogram order; the label id of ``NAMES[i]`` is ``i + 1``."""

NUM_CLASSES = len(NAMES)

# Denver groups (ISCN): A 1-3, B 4-5, C 6-12 and X, D 13-15, E 16-18, F 19-20, G 21-22 and Y.
DENVER_GROUPS: dict[str, tuple[str, ...]] = {
    "A": ("1", "2", "3"),
    "B": ("4", "5"),
    "C": ("6", "7", "8", "9", "10", "11", "12", "X"),
    "D": ("13", "14", "15"),
    "E": ("16", "17", "18"),
    "F": ("19", "20"),
    "G": ("21", "22", "Y"),
}
GROUP_OF: dict[str, str] = {name: g for g, names in DENVER_GROUPS.items() for name in names}
AUTOSOMES: tuple[str, ...] = NAMES[:22]
SEX_CHROMOSOMES: tuple[str, ...] = ("X", "Y")

LABEL_OF: dict[str, int] = {name: i + 1 for i, name in enumerate(NAMES)}
NAME_OF: dict[int, str] = {i: name for name, i in LABEL_OF.items()}

_ALIAS_RE = re.compile(
    r"^(?:(?P<chr>chr(?:omosome)?)[\s_-]*|(?P<group>[a-g])[\s_-]?)?0*(?P<n>[1-9]|1[0-9]|2[0-2]|x|y)$",
    re.IGNORECASE)


class UnknownClassError(ValueError):
    """A class name that is none of the 24 chromosomes nor one of their aliases."""


@functools.lru_cache(maxsize=4096)
def canonical(name: str | int) -> str:
    """Return the canonical class name (``'1'``..``'22'``, ``'X'``, ``'Y'``) for a name or alias.

    Accepted: the canonical names, any case of ``x`` / ``y``, integers 1..22, the Denver-group spelling
    (``A1``, ``C7``, ``G21``; the letter must match the group), ``chr21`` / ``chr_21`` / ``chromosome 21`` /
    ``chrX``, and leading zeros (``01``).
    """
    text = str(name).strip()
    m = _ALIAS_RE.match(text)
    if m is None:
        raise UnknownClassError(
            f"unknown class name {text!r}: use one of 1..22, X, Y "
            "(aliases such as A1, G21, chr21, x are accepted)")
    key = m.group("n").upper()
    group = (m.group("group") or "").upper()
    if group and GROUP_OF[key] != group:
        raise UnknownClassError(
            f"class name {text!r}: chromosome {key} is in Denver group {GROUP_OF[key]}, not {group}; "
            f"write {GROUP_OF[key]}{key} or just {key}")
    return key


def label_id(name: str | int) -> int:
    """Label id 1..24 of a class name or alias."""
    return LABEL_OF[canonical(name)]


@dataclass(frozen=True)
class ChromosomeClass:
    name: str
    label: int
    group: str

    @property
    def display(self) -> str:
        return self.name


CLASSES: tuple[ChromosomeClass, ...] = tuple(ChromosomeClass(n, LABEL_OF[n], GROUP_OF[n]) for n in NAMES)


AGNOSTIC = "chromosome"
"""The one class of a class-agnostic detector (``karyotf config MODEL --agnostic``): it finds chromosomes and names
none; a classifier (:mod:`karyotf.classify`) names what it finds.  Not a chromosome name: no label id of its own."""


def label_map_text(agnostic: bool = False) -> str:
    """The OD API ``label_map.pbtxt`` text for the 24 classes (ids 1..24, display name = canonical name).

    ``agnostic``: the one-class map of a class-agnostic detector, which reads the same 24-class records: item 1
    is ``chromosome`` (the OD API takes the first item of an id as its category), then every chromosome name with
    id 1 too.  The OD API's ``TfExampleDecoder`` maps each box's class *text* through the label map, so every
    chromosome of the unchanged records becomes class 1 (tested through the decoder itself).
    """
    items = []
    if agnostic:
        items.append(f"item {{\n  id: 1\n  name: '{AGNOSTIC}'\n  display_name: '{AGNOSTIC}'\n}}\n")
    for c in CLASSES:
        items.append(f"item {{\n  id: {1 if agnostic else c.label}\n  name: '{c.name}'\n"
                     f"  display_name: 'chr{c.name}'\n}}\n")
    return "".join(items)


def write_label_map(path: str | Path, agnostic: bool = False) -> Path:
    """Write ``label_map.pbtxt`` (:func:`label_map_text`) atomically and return its path."""
    return atomic_write_text(Path(path), label_map_text(agnostic))


def is_agnostic(label_map: dict[int, str]) -> bool:
    """Whether ``{id: name}`` (first item of each id, as the OD API reads it) is a class-agnostic detector's map."""
    return label_map == {1: AGNOSTIC}


GROUP_COLOURS: dict[str, tuple[int, int, int]] = {
    "A": (230, 25, 75), "B": (245, 130, 48), "C": (60, 180, 75), "D": (0, 130, 200),
    "E": (145, 30, 180), "F": (240, 50, 230), "G": (128, 128, 0)}
"""The colour of each Denver group in karyotf's pictures of boxes (:func:`karyotf.images.draw_boxes`)."""
