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


def one_line_error(code, err, text):
    assert code == 2 and err == f"gankd: error: {text}\n", err


def test_small_images_are_refused_where_they_are_first_read(tmp_path, run_cli):
    from PIL import Image

    shots = tmp_path / "shots"
    shots.mkdir()
    for name, size in (("bird", (40, 32)), ("cat", (20, 20)), ("dog", (64, 48))):
        Image.new("RGB", size).save(shots / f"{name}.png")
    small = f"{shots / 'cat.png'} (20x20) is smaller than the resolution 32"
    one_line_error(*run_cli("data", "split", shots, "--out", tmp_path / "split", "--shots", "1")[::2],
                   f"{small}; use larger images, or a lower --res (the resolution they will be trained at; 0: no "
                   "check, to train with upscale=true)")
    one_line_error(*run_cli("data", "export", shots, "--out", tmp_path / "export", "--res", "32")[::2],
                   f"{small}; use larger images, or a lower --res")
    one_line_error(*run_cli("adapt", "--source", "builtin:emoji32", "--target", shots, "--shots", "1",
                            "--out", tmp_path / "adapt")[::2],
                   f"{small}; allow enlarging with upscale=true (train, adapt) or --upscale (evaluate)")
    assert [p.name for p in tmp_path.iterdir()] == ["shots"]  # nothing written
    # at a resolution they all reach, or with no check, they are split and exported
    assert run_cli("data", "split", shots, "--out", tmp_path / "split", "--shots", "1", "--res", "20")[0] == 0
    assert run_cli("data", "split", shots, "--out", tmp_path / "split0", "--shots", "1", "--res", "0")[0] == 0
    assert run_cli("data", "export", shots, "--out", tmp_path / "export", "--res", "20")[0] == 0
