"""Glyphs of a variable font at any weight: the built-in set `inter`, a continuous attribute with
ground truth (the true rendering at every weight), for measuring continuous attribute editing
offline (the face-aging model's "age" is the weight; identity is character and style).

Inter's variable fonts (apt `fonts-inter-variable`, or InterVariable.ttf from rsms/inter in
`$GANKD_FONT_DIRS`) have a weight axis from 100 to 900; each glyph is drawn black on white with
its ink box centred, as the `glyphs` set draws them (`glyphs.render_char`), at the weights asked
(`weights=100-900:100`, a range with a step, or a list `100|350|900`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gankd.data.glyphs import DEFAULT_CHARS, render_char
from gankd.data.source import ArraySource
from gankd.errors import DataError

FONT_DIRS = ("/usr/share/fonts/truetype/inter-vf", "/usr/share/fonts/opentype/inter", "/usr/share/fonts/truetype/inter")
STYLES = {"normal": ("Inter-roman.var.ttf", "InterVariable.ttf", "Inter.var.ttf"),
          "italic": ("Inter-italic.var.ttf", "InterVariable-Italic.ttf")}
FIELDS = ("char", "weight", "style")
WEIGHT_RANGE = (100, 900)


def parse_weights(text: str) -> list[int]:
    """`100-900:100` (from, to, step) or `100|350|900` -> sorted weights, each in 100-900."""
    try:
        if "-" in text:
            span, _, step = text.partition(":")
            low, high = (int(v) for v in span.split("-"))
            weights = list(range(low, high + 1, int(step or 100)))
        else:
            weights = [int(v) for v in text.split("|") if v.strip()]
    except ValueError:
        weights = []
    if not weights or not all(WEIGHT_RANGE[0] <= w <= WEIGHT_RANGE[1] for w in weights):
        raise DataError(f"inter: weights must be FROM-TO:STEP or a list A|B|C within {WEIGHT_RANGE[0]}-"
                        f"{WEIGHT_RANGE[1]}, not {text!r}")
    return sorted(set(weights))


def font_file(style: str) -> Path:
    dirs = [*FONT_DIRS, *filter(None, os.environ.get("GANKD_FONT_DIRS", "").split(os.pathsep))]
    for folder in map(Path, dirs):
        for name in STYLES[style]:
            if (folder / name).is_file():
                return folder / name
    raise DataError(f"inter: no {style} Inter variable font (apt install fonts-inter-variable, or put "
                    f"{STYLES[style][1]} in a folder named by $GANKD_FONT_DIRS)")


def make_inter(chars: str = DEFAULT_CHARS, weights: str = "100-900:100", size: str | int = 64,
               styles: str = "normal|italic") -> ArraySource:
    from PIL import ImageFont

    try:
        size = int(size)
    except ValueError:
        raise DataError(f"inter: size must be an integer, not {size!r}") from None
    style_list = [s.strip() for s in styles.split("|") if s.strip()]
    if not chars or not 8 <= size <= 1024 or not style_list or any(s not in STYLES for s in style_list):
        raise DataError(f"inter: needs chars, a size in 8-1024 and styles among {', '.join(STYLES)}")
    images, labels = [], []
    for style in style_list:
        font = ImageFont.truetype(str(font_file(style)), size=int(size * 0.7))
        for weight in parse_weights(weights):
            font.set_variation_by_axes([weight])
            for ch in chars:
                images.append(render_char(font, ch, size))
                labels.append({"char": ch, "weight": weight, "style": style})
    return ArraySource("inter", np.stack(images)[..., None], labels, FIELDS, key_field="char")
