import numpy as np

from gankd.data import glyphs
from gankd.data.spec import open_source


def test_rendering_and_labels():
    source = open_source("glyphs")
    assert len(source) >= 20 * 62
    labels = [source.labels(i) for i in range(len(source))]
    fonts = {lab["font"]: lab for lab in labels}
    assert fonts["DejaVuSans-Bold"]["weight"] == 700 and fonts["DejaVuSans"]["weight"] == 400
    assert fonts["DejaVuSans-Oblique"]["style"] == "oblique" and fonts["DejaVuSerif-Italic"]["style"] == "italic"
    assert fonts["DejaVuSans"]["family"] == "DejaVu Sans"
    assert "cmex10" not in fonts  # maps Latin code points to delimiters
    assert all(100 <= lab["weight"] <= 900 for lab in labels)
    image = source.image(0)
    assert image.shape == (64, 64, 1) and image.dtype == np.uint8


def test_glyph_images_are_their_characters():
    source = open_source("glyphs:chars=IW,font=DejaVuSans")
    ink = {source.labels(i)["char"]: (255 - source.image(i).astype(int)).sum() for i in range(len(source))}
    assert ink["W"] > 2 * ink["I"] > 0
    img = source.image(0)[..., 0]
    assert img[0].min() == 255 and img[:, 0].min() == 255  # white margin around a centred glyph


def test_weight_filter_and_missing_chars():
    bold = open_source("glyphs:weight=700,char=A")
    assert len(bold) > 3 and {bold.labels(i)["weight"] for i in range(len(bold))} == {700}
    images, labels = glyphs.load_glyphs("\U0001F600", 32)  # no text font has a grinning face
    assert len(labels) == 0 and images.shape == (0, 32, 32, 1)
