import io

import numpy as np
import pytest
from PIL import Image

from gankd.data import emoji
from gankd.data.builtin import EmojiSource
from gankd.data.spec import open_source


@pytest.fixture(scope="module")
def extracted():
    return emoji.load_emoji()


def find(labels, codepoints):
    return next(i for i, lab in enumerate(labels) if lab["codepoints"] == codepoints)


def test_count_and_shape(extracted):
    images, labels = extracted
    assert images.shape == (3926, 128, 136, 4)
    assert len(labels) == 3926
    assert len({lab["codepoints"] for lab in labels}) == 3926  # every bitmap maps to its own sequence


def test_labels_of_known_emoji(extracted):
    _, labels = extracted
    grin = labels[find(labels, "1F600")]
    assert (grin["name"], grin["group"], grin["tone"]) == ("grinning face", "smileys", "none")
    wave = labels[find(labels, "1F44B 1F3FD")]
    assert wave["name"] == "waving hand: medium skin tone"
    assert (wave["group"], wave["tone"], wave["base"], wave["base_name"]) == ("people", "medium", "1F44B", "waving hand")
    assert labels[find(labels, "1F1EF 1F1F5")]["name"] == "flag: Japan"
    # a ZWJ sequence whose font ligature lists its components in a legacy order
    assert labels[find(labels, "26F9 200D 2640")]["name"] == "woman bouncing ball"
    couple = labels[find(labels, "1F469 1F3FB 200D 2764 200D 1F468 1F3FF")]
    assert couple["tone"] == "mixed" and couple["group"] == "people"
    groups = {lab["group"] for lab in labels}
    assert {"smileys", "people", "animals", "food", "travel", "activities", "objects", "symbols", "flags"} <= groups


def test_image_of_known_codepoint(extracted):
    """The extracted array is the font's own PNG for that code point, decoded independently."""
    from fontTools.ttLib import TTFont

    images, labels = extracted
    font_path = emoji.find_file("GANKD_EMOJI_FONT", emoji.FONT_CANDIDATES, "font", "fonts-noto-color-emoji")
    font = TTFont(str(font_path))
    glyph = font.getBestCmap()[0x1F600]
    bitmap = font["CBDT"].strikeData[0][glyph]
    bitmap.decompile()
    expected = np.asarray(Image.open(io.BytesIO(bitmap.imageData)).convert("RGBA"))
    got = images[find(labels, "1F600")]
    assert np.array_equal(got, expected)
    r, g, b, a = got[64, 68].astype(int)  # centre of the face: opaque yellow
    assert a == 255 and r > 200 and g > 150 and b < 100


def test_backgrounds():
    white, alpha = EmojiSource("white"), EmojiSource("alpha")
    assert white.image(0).shape == (136, 136, 3) and alpha.image(0).shape == (136, 136, 4)
    assert (white.image(0)[0, 0] == 255).all() and alpha.image(0)[0, 0, 3] == 0
    assert (EmojiSource("black").image(0)[0, 0] == 0).all()


def test_cache_is_reused(monkeypatch, extracted):
    monkeypatch.setattr(emoji, "extract", lambda *a: pytest.fail("extracted again despite the cache"))
    images, labels = emoji.load_emoji()
    assert images.shape[0] == len(labels) == 3926


def test_spec_filters():
    animals = open_source("emoji:group=animals,tone=none")
    assert len(animals) > 100 and all(animals.labels(i)["group"] == "animals" for i in range(len(animals)))
    rest = open_source("emoji:group!=smileys|animals|food|flags")
    groups = {rest.labels(i)["group"] for i in range(len(rest))}
    assert groups.isdisjoint({"smileys", "animals", "food", "flags"}) and "people" in groups
    labelled = open_source("emoji:group=food,label=subgroup")
    assert labelled.cond_dim == len({labelled.labels(i)["subgroup"] for i in range(len(labelled))})
    assert labelled.cond(0).sum() == 1
