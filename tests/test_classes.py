import pytest

from karyotf import classes


def test_24_classes_ids_1_to_24_in_karyogram_order():
    assert classes.NAMES == tuple(str(i) for i in range(1, 23)) + ("X", "Y")
    assert [classes.LABEL_OF[n] for n in classes.NAMES] == list(range(1, 25))
    assert all(classes.NAME_OF[classes.LABEL_OF[n]] == n for n in classes.NAMES)


@pytest.mark.parametrize("alias,name", [
    ("A1", "1"), ("G21", "21"), ("chr21", "21"), ("21", "21"), (21, "21"), ("x", "X"), ("X", "X"), ("Y", "Y"),
    ("chrX", "X"), ("chr_7", "7"), ("Chromosome 7", "7"), ("C12", "12"), ("01", "1"), (" E18 ", "18"), ("gy", "Y"),
    ("CX", "X"),
])
def test_aliases(alias, name):
    assert classes.canonical(alias) == name


@pytest.mark.parametrize("bad", ["A21", "B1", "23", "0", "Z", "", "chr", "1p", "XX"])
def test_unknown_names_raise_with_the_fix(bad):
    with pytest.raises(classes.UnknownClassError) as err:
        classes.canonical(bad)
    assert "1..22, X, Y" in str(err.value) or "Denver group" in str(err.value)


def test_denver_groups_cover_every_class_once():
    members = [n for names in classes.DENVER_GROUPS.values() for n in names]
    assert sorted(members) == sorted(classes.NAMES)
    assert classes.GROUP_OF["X"] == "C" and classes.GROUP_OF["Y"] == "G" and classes.GROUP_OF["21"] == "G"


def test_label_map_loads_with_odapi_label_map_util(tmp_path):
    import karyotf.odapi  # noqa: F401  (shims before object_detection)
    from object_detection.utils import label_map_util

    path = classes.write_label_map(tmp_path / "label_map.pbtxt")
    label_map = label_map_util.load_labelmap(str(path))
    assert [item.id for item in label_map.item] == list(range(1, 25))
    assert label_map_util.get_label_map_dict(str(path)) == classes.LABEL_OF
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left no temp file
