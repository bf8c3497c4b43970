"""Face data in the layouts users have (UTKFace, CACD, FFHQ-Aging), from small files the test
writes: labels parsed from names and CSV rows, filters and classes through specs, one line for
what does not parse."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gankd.data.faces import group_age, stem_of
from gankd.data.spec import open_source
from gankd.errors import DataError


def faces(folder: Path, names: list[str]) -> Path:
    for i, name in enumerate(names):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((20, 20, 3), 10 * i, np.uint8)).save(folder / name, format="PNG")
    return folder


def test_utkface_names_give_age_gender_race_and_filter(tmp_path):
    root = faces(tmp_path / "utk", ["26_1_2_20170116174525125.jpg.chip.jpg", "3_0_0_20161219203650636.jpg",
                                    "39_1_20170116174525125.jpg.chip.jpg", "61_0_4_20170117170319048.jpg"])
    src = open_source(f"utkface:root={root}")
    by_age = {src.labels(i)["age"]: src.labels(i) for i in range(len(src))}
    assert sorted(by_age) == [3, 26, 39, 61]
    assert (by_age[26]["gender"], by_age[26]["race"]) == ("1", "2")
    assert (by_age[39]["gender"], by_age[39]["race"]) == ("1", "?")  # the public set has a few such names
    women = open_source(f"utkface:root={root},gender=1")
    assert sorted(women.labels(i)["age"] for i in range(len(women))) == [26, 39]
    classes = open_source(f"utkface:root={root},label=age")
    assert classes.cond_dim == 4 and classes.cond(0).sum() == 1
    assert src.image(0).shape == (20, 20, 3)


def test_cacd_names_give_age_and_name(tmp_path):
    root = faces(tmp_path / "cacd", ["14_Aaron_Johnson_0001.jpg", "53_Mary_Kate_Olsen_0012.jpg"])
    src = open_source(f"cacd:root={root}")
    assert [src.labels(i)["age"] for i in range(2)] == [14, 53]
    assert src.labels(1)["name"] == "Mary_Kate_Olsen"


def test_ffhq_aging_csv_gives_age_groups(tmp_path):
    root = faces(tmp_path / "ffhq" / "images", ["00000/00000.png", "00000/00007.png", "01000/01000.png"])
    (tmp_path / "ffhq" / "ffhq_aging_labels.csv").write_text(
        "image_number,age_group,age_group_confidence,gender,gender_confidence\n"
        "0,20-29,0.9,female,0.99\n7,70-120,0.6,male,0.9\n1000,0-2,1.0,male,0.8\n3,3-6,1.0,male,0.8\n")
    src = open_source(f"ffhq-aging:root={root}")
    assert [(src.labels(i)["age"], src.labels(i)["age_group"], src.labels(i)["gender"]) for i in range(3)] == \
        [(24, "20-29", "female"), (95, "70-120", "male"), (1, "0-2", "male")]
    assert len(open_source(f"ffhq-aging:root={root},age_group=20-29|0-2")) == 2
    assert group_age("10-14") == 12 and group_age("adult") is None and stem_of("a/1_0_0_2.jpg.chip.jpg") == "1_0_0_2"


def test_what_does_not_parse_is_one_line_naming_it(tmp_path):
    with pytest.raises(DataError, match=r"x_1_2\.jpg: does not parse as age_gender_race_date\.jpg"):
        open_source(f"utkface:root={faces(tmp_path / 'u', ['20_1_2_2017.jpg', 'x_1_2.jpg'])}")
    with pytest.raises(DataError, match=r"Aaron\.jpg: does not parse as age_First_Last_nnnn\.jpg"):
        open_source(f"cacd:root={faces(tmp_path / 'c', ['Aaron.jpg'])}")
    root = faces(tmp_path / "f" / "img", ["00001.png", "00002.png"])
    (tmp_path / "f" / "ffhq_aging_labels.csv").write_text("image_number,age_group\n1,20-29\n")
    with pytest.raises(DataError, match=r"00002\.png: has no row in the labels CSV"):
        open_source(f"ffhq-aging:root={root}")
    (tmp_path / "bad.csv").write_text("image_number,age_group\n1,twenty\n")
    with pytest.raises(DataError, match=r"bad\.csv:2: needs an image_number and an age_group"):
        open_source(f"ffhq-aging:root={root},labels={tmp_path / 'bad.csv'}")
    with pytest.raises(DataError, match="cannot read the labels CSV"):
        open_source(f"ffhq-aging:root={root},labels={tmp_path / 'none.csv'}")
    with pytest.raises(DataError, match="utkface: give root=DIR"):
        open_source("utkface")


def test_cli_shows_face_data_and_refuses_bad_names_in_one_line(tmp_path, run_cli):
    root = faces(tmp_path / "utk", ["26_1_2_2017.jpg", "30_0_1_2017.jpg"])
    code, out, err = run_cli("data", "show", f"utkface:root={root},age=26", "-o", tmp_path / "g.png")
    assert code == 0 and (tmp_path / "g.png").is_file(), err
    faces(tmp_path / "utk", ["old.jpg"])
    code, _, err = run_cli("data", "show", f"utkface:root={root}", "-o", tmp_path / "h.png")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "old.jpg: does not parse" in err


# Glyph weight: a continuous attribute with ground truth -------------------------------------------

def test_inter_renders_any_weight_with_ink_growing_with_it(monkeypatch):
    from gankd.data import variable_font

    src = open_source("inter:chars=Ag,weights=100-900:200,styles=normal")
    weights = sorted({src.labels(i)["weight"] for i in range(len(src))})
    assert weights == [100, 300, 500, 700, 900] and len(src) == 10
    for ch in "Ag":
        ink = [int((255 - src.image(i).astype(int)).sum()) for i in range(len(src)) if src.labels(i)["char"] == ch]
        assert all(a < b for a, b in zip(ink, ink[1:])), ink  # heavier weight, more ink: the axis is really applied
    between = open_source("inter:chars=A,weights=400|450|500,styles=normal")
    ink = [int((255 - between.image(i).astype(int)).sum()) for i in range(3)]
    assert ink[0] < ink[1] < ink[2]  # a weight no named instance has
    italic = open_source("inter:chars=A,weights=400,styles=italic")
    assert not np.array_equal(italic.image(0), between.image(0)) and italic.labels(0)["style"] == "italic"
    assert variable_font.parse_weights("100|900|100") == [100, 900]
    for bad in ("inter:weights=50-900", "inter:weights=heavy", "inter:styles=bold"):
        with pytest.raises(DataError, match="inter: "):
            open_source(bad)
    monkeypatch.setattr(variable_font, "FONT_DIRS", ())
    monkeypatch.delenv("GANKD_FONT_DIRS", raising=False)
    with pytest.raises(DataError, match="apt install fonts-inter-variable"):
        open_source("inter:chars=A")
