"""The glyphs data set: characters rendered from installed fonts, labelled by font properties.

Fonts: those matplotlib ships and, where installed, Debian's fonts-noto-core. A font is used when
its cmap covers every requested character with glyphs named for them, and its renderings are
distinct (this drops symbol, TeX-encoded and last-resort fonts that map letters to other shapes). Labels come from the font's name and OS/2 tables.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from gankd.data.cache import cache_dir, write_atomically
from gankd.progress import progress

DEFAULT_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
NOTO_DIRS = ("/usr/share/fonts/truetype/noto", "/usr/share/fonts/noto")
RENDER_VERSION = 2
WIDTH_NAMES = {1: "ultra-condensed", 2: "extra-condensed", 3: "condensed", 4: "semi-condensed", 5: "normal",
               6: "semi-expanded", 7: "expanded", 8: "extra-expanded", 9: "ultra-expanded"}
FIELDS = ("char", "family", "weight", "style", "width", "font")


def font_files() -> list[Path]:
    """Candidate font files: matplotlib's bundled TrueType fonts and Noto core, if installed."""
    import matplotlib

    dirs = [Path(matplotlib.get_data_path()) / "fonts" / "ttf", *map(Path, NOTO_DIRS)]
    extra = os.environ.get("GANKD_FONT_DIRS")
    if extra:
        dirs += [Path(d) for d in extra.split(os.pathsep)]
    files = {p.resolve() for d in dirs if d.is_dir() for p in d.iterdir()
             if p.suffix.lower() in (".ttf", ".otf") and "Emoji" not in p.name}
    return sorted(files)


def font_labels(font) -> dict:
    """family, weight (100-900), style and width of a fontTools TTFont."""
    names = font["name"]
    family = str(names.getDebugName(16) or names.getDebugName(1) or "unknown")
    os2 = font["OS/2"] if "OS/2" in font else None
    subfamily = str(names.getDebugName(17) or names.getDebugName(2) or "").lower()
    weight = int(os2.usWeightClass) if os2 else 400
    if weight < 100:  # some legacy fonts store 1-9
        weight *= 100
    if os2 and os2.fsSelection & (1 << 9) or "oblique" in subfamily:
        style = "oblique"
    elif os2 and os2.fsSelection & 1 or "italic" in subfamily:
        style = "italic"
    else:
        style = "normal"
    width = WIDTH_NAMES.get(int(os2.usWidthClass) if os2 else 5, "normal")
    return {"family": family, "weight": min(max(round(weight / 100) * 100, 100), 900), "style": style,
            "width": width}


def names_match(cmap: dict[int, str], chars: str) -> bool:
    """True if the glyphs for `chars` are named for those characters (90 %): TeX fonts such as cmex10
    map Latin code points to delimiters and symbols, which would be wrong images for their labels."""
    from fontTools.agl import UV2AGL

    def ok(ch: str) -> bool:
        name, std = cmap[ord(ch)], UV2AGL.get(ord(ch), ch)
        return name == ch or name.startswith(std) or name.lower() == f"uni{ord(ch):04x}"

    return sum(map(ok, chars)) >= 0.9 * len(chars)


def render_char(pil_font: ImageFont.FreeTypeFont, char: str, size: int) -> np.ndarray:
    """Black character on white, its ink box centred in a size x size square."""
    canvas = Image.new("L", (size * 2, size * 2), 255)
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = draw.textbbox((0, 0), char, font=pil_font)
    draw.text(((size * 2 - (right - left)) / 2 - left, (size * 2 - (bottom - top)) / 2 - top), char,
              font=pil_font, fill=0)
    half = size // 2
    return np.asarray(canvas.crop((size - half, size - half, size + half, size + half)))


def render_font(path: Path, chars: str, size: int) -> tuple[list[np.ndarray], dict] | None:
    """All characters in one font, or None if the font cannot render them as distinct glyphs."""
    from fontTools.ttLib import TTFont

    try:
        font = TTFont(str(path), lazy=True, fontNumber=0)
        cmap = font.getBestCmap() or {}
        if not all(ord(ch) in cmap for ch in chars) or not names_match(cmap, chars):
            return None
        labels = font_labels(font)
        pil_font = ImageFont.truetype(str(path), size=int(size * 0.7))
        images = [render_char(pil_font, ch, size) for ch in chars]
    except Exception:  # a broken or exotic font file is skipped, not fatal
        return None
    distinct = len({im.tobytes() for im in images})
    if distinct < 0.9 * len(chars) or any(im.min() > 128 for im in images):
        return None
    return images, labels


def load_glyphs(chars: str = DEFAULT_CHARS, size: int = 64) -> tuple[np.ndarray, list[dict]]:
    """Grayscale renderings [N, size, size, 1] and labels, rendered once and cached."""
    files = font_files()
    fingerprint = json.dumps([[str(p), p.stat().st_size] for p in files] + [chars, size, RENDER_VERSION])
    key = f"glyphs-v{RENDER_VERSION}-{hashlib.sha256(fingerprint.encode()).hexdigest()[:16]}"
    folder = cache_dir() / key
    if not (folder / "labels.json").is_file():
        images, labels = [], []
        for path in progress(files, "rendering glyphs", unit="fonts"):
            rendered = render_font(path, chars, size)
            if rendered is None:
                continue
            font_images, font_meta = rendered
            images += font_images
            labels += [{"char": ch, **font_meta, "font": path.stem} for ch in chars]
        array = np.stack(images)[..., None] if images else np.zeros((0, size, size, 1), np.uint8)
        write_atomically(folder, {"images.npy": array, "labels.json": labels})
    return np.load(folder / "images.npy", mmap_mode="r"), json.loads((folder / "labels.json").read_text())
