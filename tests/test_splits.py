import json

import pytest

from gankd.data.spec import open_source
from gankd.data.splits import export, load_split, make_split, verify_split
from gankd.errors import DataError, OutputExistsError

SPEC = "emoji:group=food,tone=none"


def shots_of(manifest):
    return [f["index"] for f in manifest["files"] if f["split"] == "train"]


def test_same_seed_same_split(tmp_path):
    source = open_source(SPEC)
    a = make_split(source, 10, 0, tmp_path / "a", SPEC)
    b = make_split(source, 10, 0, tmp_path / "b", SPEC)
    c = make_split(source, 10, 1, tmp_path / "c", SPEC)
    assert shots_of(a) == shots_of(b) != shots_of(c)
    assert len(shots_of(a)) == 10 and len(a["files"]) == len(source)
    names = [sorted(p.name for p in (tmp_path / s / "train").iterdir()) for s in "ab"]
    assert names[0] == names[1]


def test_manifest_checks(tmp_path):
    make_split(open_source(SPEC), 10, 0, tmp_path / "s", SPEC)
    manifest = verify_split(tmp_path / "s")
    assert manifest["spec"] == SPEC and manifest["seed"] == 0
    train, held_out = load_split(tmp_path / "s")
    assert len(train) == 10 and len(held_out) == manifest["total"] - 10
    victim = tmp_path / "s" / manifest["files"][0]["path"]
    victim.write_bytes(victim.read_bytes() + b"\0")
    with pytest.raises(DataError, match="sha256 differs"):
        verify_split(tmp_path / "s")


def test_unlisted_file_and_bad_shots(tmp_path):
    make_split(open_source(SPEC), 5, 3, tmp_path / "s", SPEC)
    (tmp_path / "s" / "train" / "intruder.png").write_bytes(b"x")
    with pytest.raises(DataError, match="not in the manifest"):
        verify_split(tmp_path / "s")
    with pytest.raises(DataError, match="--shots must be between"):
        make_split(open_source("digits:digit=0"), 5000, 0, tmp_path / "t", "digits:digit=0")
    with pytest.raises(OutputExistsError):
        make_split(open_source(SPEC), 5, 3, tmp_path / "s", SPEC)


def test_export_with_class_labels(tmp_path):
    source = open_source("digits:digit=1|7,label=digit")
    out = export(source, tmp_path / "x", resolution=16)
    labels = json.loads((out / "dataset.json").read_text())["labels"]
    assert len(labels) == len(source) and {lab for _, lab in labels} == {0, 1}
    again = open_source(str(out))
    assert again.cond_dim == 2 and len(again) == len(source)


def test_a_split_of_labelled_data_keeps_its_classes_checksummed(tmp_path):
    spec = "emoji:group=animals|food,tone=none,label=group"
    source = open_source(spec)
    manifest = make_split(source, 10, 0, tmp_path / "s", spec)
    assert set(manifest["conditioning"]) == {"train/dataset.json", "eval/dataset.json"}
    train, held = load_split(tmp_path / "s")
    assert train.cond_dim == held.cond_dim == 2
    for entry in manifest["files"][:12]:
        part = train if entry["split"] == "train" else held
        i = part.names.index(entry["path"].split("/", 1)[1])
        assert part.cond(i).argmax() == ["animals", "food"].index(entry["labels"]["group"])
    labels = json.loads((tmp_path / "s" / "train" / "dataset.json").read_text())
    labels["labels"][0][1] = 1 - labels["labels"][0][1]
    (tmp_path / "s" / "train" / "dataset.json").write_text(json.dumps(labels))
    with pytest.raises(DataError, match=r"train/dataset\.json: sha256 differs"):
        verify_split(tmp_path / "s")
