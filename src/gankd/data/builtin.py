"""The built-in data sets (emoji, glyphs, digits): real images from installed packages, offline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gankd.data import cifar, emoji, faces, glyphs, variable_font
from gankd.data.source import ArraySource, ImageSource
from gankd.errors import DataError

BACKGROUNDS = {"white": 255, "black": 0}


class EmojiSource(ArraySource):
    """Noto Color Emoji bitmaps, padded to squares (136 x 136) on a chosen background."""

    def __init__(self, bg: str = "white"):
        if bg not in (*BACKGROUNDS, "alpha"):
            raise DataError(f"emoji: bg must be white, black or alpha, not {bg!r}")
        images, labels = emoji.load_emoji()
        super().__init__("emoji", images, labels, emoji.FIELDS, key_field="name")
        self.bg = bg

    def image(self, i: int) -> np.ndarray:
        rgba = np.asarray(self.images[i])
        h, w, _ = rgba.shape
        side = max(h, w)
        top, left = (side - h) // 2, (side - w) // 2
        square = np.zeros((side, side, 4), np.uint8)
        square[top:top + h, left:left + w] = rgba
        if self.bg == "alpha":
            return square
        alpha = square[..., 3:].astype(np.float32) / 255
        rgb = square[..., :3] * alpha + BACKGROUNDS[self.bg] * (1 - alpha)
        return np.round(rgb).astype(np.uint8)

    @property
    def channels(self) -> int:
        return 4 if self.bg == "alpha" else 3


class DigitsSource(ArraySource):
    """scikit-learn's 1797 handwritten digits, 8 x 8, ink bright on dark, 17 grey levels."""

    def __init__(self):
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = np.round(digits.images * (255 / 16)).astype(np.uint8)[..., None]
        labels = [{"digit": int(t)} for t in digits.target]
        super().__init__("digits", images, labels, ("digit",), key_field="digit")


CIFAR_OPTIONS = {"root": "the folder holding cifar-10-batches-py/ or cifar-100-python/ (default $GANKD_CIFAR)",
                 "part": "train (default) or test"}

FACE_ROOT = {"root": "the folder or zip of its images"}


@dataclass(frozen=True)
class Builtin:
    description: str
    options: dict[str, str]  # option name -> help
    make: Callable[..., ImageSource]
    fields: tuple[str, ...]


def make_glyphs(chars: str = glyphs.DEFAULT_CHARS, size: str | int = 64) -> ImageSource:
    if not chars:
        raise DataError("glyphs: chars= needs at least one character")
    try:
        size = int(size)
    except ValueError:
        raise DataError(f"glyphs: size must be an integer, not {size!r}") from None
    if not 8 <= size <= 1024:
        raise DataError(f"glyphs: size must be between 8 and 1024, got {size}")
    images, labels = glyphs.load_glyphs(chars, size)
    if not labels:
        raise DataError(f"glyphs: no installed font renders all of {chars!r}")
    return ArraySource("glyphs", images, labels, glyphs.FIELDS, key_field="font")


BUILTINS: dict[str, Builtin] = {
    "emoji": Builtin("Noto Color Emoji bitmaps, 136x136 padded (fonts-noto-color-emoji)",
                     {"bg": "background: white (default), black, or alpha (RGBA)"}, EmojiSource, emoji.FIELDS),
    "glyphs": Builtin("characters rendered from matplotlib's fonts and Noto core, black on white",
                      {"chars": "characters to render (default A-Z a-z 0-9)", "size": "render size (default 64)"},
                      make_glyphs, glyphs.FIELDS),
    "inter": Builtin("characters of Inter's variable font at any weight 100-900, black on white "
                     "(fonts-inter-variable): a continuous attribute with ground truth",
                     {"chars": "characters to render (default A-Z a-z 0-9)",
                      "weights": "FROM-TO:STEP or a list A|B|C (default 100-900:100)", "size": "render size (default 64)",
                      "styles": "normal, italic or normal|italic (default)"},
                     variable_font.make_inter, variable_font.FIELDS),
    "digits": Builtin("scikit-learn's handwritten digits, 8x8 grayscale", {}, DigitsSource, ("digit",)),
    "cifar10": Builtin("CIFAR-10 from your copy (torchvision's layout; not shipped, never downloaded)", CIFAR_OPTIONS,
                       lambda **o: cifar.make_cifar("cifar10", **o), ("label",)),
    "cifar100": Builtin("CIFAR-100 from your copy (torchvision's layout; not shipped, never downloaded)", CIFAR_OPTIONS,
                        lambda **o: cifar.make_cifar("cifar100", **o), ("label", "coarse")),
    "utkface": Builtin("UTKFace faces from your copy, age/gender/race from file names (never downloaded)", FACE_ROOT,
                       lambda **o: faces.FaceAgeSource("utkface", **o), faces.FIELDS["utkface"]),
    "cacd": Builtin("CACD2000 faces from your copy, age and name from file names (never downloaded)", FACE_ROOT,
                    lambda **o: faces.FaceAgeSource("cacd", **o), faces.FIELDS["cacd"]),
    "ffhq-aging": Builtin("FFHQ-Aging faces from your copy, age groups from its labels CSV (never downloaded)",
                          {**FACE_ROOT, "labels": "ffhq_aging_labels.csv (default: beside root)"},
                          lambda **o: faces.FaceAgeSource("ffhq-aging", **o), faces.FIELDS["ffhq-aging"]),
}
