"""The emoji data set: colour bitmaps of the Noto Color Emoji font, with Unicode labels.

The bitmaps are PNGs in the font's CBDT table. Each glyph is mapped back to its code-point
sequence through the font's cmap (single code points) and its GSUB ligatures (flags, keycaps,
skin tones, ZWJ sequences). Names and groups come from Unicode's emoji-test.txt (Debian's
`unicode-data`), falling back to Python's unicodedata for single code points.
"""

from __future__ import annotations

import io
import json
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from gankd.data.cache import cache_dir, file_digest, write_atomically
from gankd.errors import DataError
from gankd.progress import progress

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/google-noto-emoji/NotoColorEmoji.ttf",
    "/System/Library/Fonts/NotoColorEmoji.ttf",
)
EMOJI_TEST_CANDIDATES = (
    "/usr/share/unicode/emoji/emoji-test.txt",
    "/usr/share/unicode-data/emoji/emoji-test.txt",
)
EXTRACTION_VERSION = 3  # bump when the cached arrays or labels change meaning

VS16, ZWJ = 0xFE0F, 0x200D
SKIN_TONES = {0x1F3FB: "light", 0x1F3FC: "medium-light", 0x1F3FD: "medium", 0x1F3FE: "medium-dark",
              0x1F3FF: "dark"}
GROUP_SLUGS = {
    "Smileys & Emotion": "smileys", "People & Body": "people", "Component": "component",
    "Animals & Nature": "animals", "Food & Drink": "food", "Travel & Places": "travel",
    "Activities": "activities", "Objects": "objects", "Symbols": "symbols", "Flags": "flags",
}
FIELDS = ("name", "codepoints", "group", "subgroup", "tone", "base", "base_name")


def find_file(env_var: str, candidates: tuple[str, ...], what: str, package: str) -> Path:
    """The first existing file among `$env_var` and the candidates, or a clear error."""
    paths = ([os.environ[env_var]] if os.environ.get(env_var) else []) + list(candidates)
    for p in paths:
        if Path(p).is_file():
            return Path(p)
    raise DataError(f"{what} not found (looked in {', '.join(paths)}): install Debian's {package} "
                    f"or set {env_var}")


@dataclass(frozen=True)
class UnicodeEmoji:
    name: str
    group: str
    subgroup: str


def read_emoji_test(path: Path) -> dict[tuple[int, ...], UnicodeEmoji]:
    """emoji-test.txt as {code points without VS16: (name, group, subgroup)}."""
    table: dict[tuple[int, ...], UnicodeEmoji] = {}
    group = subgroup = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            title = line.split(":", 1)[1].strip()
            group = GROUP_SLUGS.get(title, title.lower())
        elif line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif line and not line.startswith("#"):
            cps_text, rest = line.split(";", 1)
            status, comment = rest.split("#", 1)
            name = comment.strip().split(" ", 2)[2]  # "<emoji> E<version> <name>"
            key = tuple(int(c, 16) for c in cps_text.split() if int(c, 16) != VS16)
            if key not in table or status.strip() == "fully-qualified":
                table[key] = UnicodeEmoji(name, group, subgroup)
    return table


def glyph_sequences(font) -> dict[str, list[tuple[int, ...]]]:
    """Map glyph names to every code-point sequence that produces them (cmap + GSUB ligatures).

    A glyph can have several: Noto keeps legacy component orders (e.g. "female ZWJ person") beside
    the standard ones, so the caller picks the sequence Unicode knows.
    """
    seqs: dict[str, list[tuple[int, ...]]] = {}
    for cp, glyph in sorted(font.getBestCmap().items()):
        seqs.setdefault(glyph, []).append((cp,))
    ligatures: list[tuple[str, tuple[str, ...]]] = []
    for lookup in font["GSUB"].table.LookupList.Lookup:
        for sub in lookup.SubTable:
            sub = getattr(sub, "ExtSubTable", sub)
            for first, ligs in getattr(sub, "ligatures", {}).items():
                ligatures += [(lig.LigGlyph, (first, *lig.Component)) for lig in ligs]
    # Components may themselves be ligatures: resolve until a pass resolves nothing more.
    pending = ligatures
    while pending:
        unresolved = []
        for glyph, parts in pending:
            if all(p in seqs for p in parts):
                seqs.setdefault(glyph, []).append(tuple(cp for p in parts for cp in seqs[p][0]))
            else:
                unresolved.append((glyph, parts))
        if len(unresolved) == len(pending):
            break
        pending = unresolved
    return seqs


def component_names(key: tuple[int, ...]) -> str:
    """A readable name for a sequence Unicode's table does not list (newer than the table)."""
    return ", ".join(unicodedata.name(chr(c), f"U+{c:04X}").lower() for c in key if c != ZWJ)


def describe(candidates: list[tuple[int, ...]], table: dict[tuple[int, ...], UnicodeEmoji]) -> dict:
    """Labels for a glyph, from the first of its code-point sequences that Unicode lists."""
    keys = [tuple(c for c in cps if c != VS16) for cps in candidates]
    key = next((k for k in keys if k in table), keys[0])
    tones = [SKIN_TONES[c] for c in key if c in SKIN_TONES]
    base = tuple(c for c in key if c not in SKIN_TONES)
    entry = table.get(key) or UnicodeEmoji(component_names(key), "other", "")
    if not tones:
        tone = "none"
    elif len(set(tones)) == 1:
        tone = tones[0]
    else:
        tone = "mixed"
    base_entry = table.get(base)
    return {
        "name": entry.name,
        "codepoints": " ".join(f"{c:04X}" for c in key),
        "group": entry.group,
        "subgroup": entry.subgroup,
        "tone": tone,
        "base": " ".join(f"{c:04X}" for c in base),
        "base_name": base_entry.name if base_entry else component_names(base),
    }


def extract(font_path: Path, emoji_test: Path) -> tuple[np.ndarray, list[dict]]:
    """Decode every CBDT bitmap to RGBA and label it. Returns ([N, H, W, 4] uint8, labels)."""
    from fontTools.ttLib import TTFont

    font = TTFont(str(font_path), lazy=True)
    if "CBDT" not in font:
        raise DataError(f"{font_path} has no CBDT colour bitmaps; is it Noto Color Emoji?")
    strike = font["CBDT"].strikeData[0]
    seqs = glyph_sequences(font)
    table = read_emoji_test(emoji_test)
    order = {g: i for i, g in enumerate(font.getGlyphOrder())}
    glyphs = sorted(strike, key=order.__getitem__)
    images, labels = [], []
    for glyph in progress(glyphs, "extracting emoji bitmaps"):
        bitmap = strike[glyph]
        bitmap.decompile()
        img = np.asarray(Image.open(io.BytesIO(bitmap.imageData)).convert("RGBA"))
        candidates = seqs.get(glyph)
        meta = describe(candidates, table) if candidates else {f: "" for f in FIELDS} | {
            "name": glyph, "group": "other", "tone": "none"}
        images.append(img)
        labels.append({"glyph": glyph, **meta})
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise DataError(f"{font_path}: bitmaps of several sizes {sorted(shapes)}; expected one strike size")
    return np.stack(images), labels


def load_emoji() -> tuple[np.ndarray, list[dict]]:
    """RGBA bitmaps [N, 128, 136, 4] and labels, extracted once and cached by the font's hash."""
    font_path = find_file("GANKD_EMOJI_FONT", FONT_CANDIDATES, "Noto Color Emoji font", "fonts-noto-color-emoji")
    emoji_test = find_file("GANKD_EMOJI_TEST", EMOJI_TEST_CANDIDATES, "Unicode emoji-test.txt", "unicode-data")
    key = f"emoji-v{EXTRACTION_VERSION}-{file_digest(font_path)[:16]}-{file_digest(emoji_test)[:8]}"
    folder = cache_dir() / key
    if not (folder / "labels.json").is_file():
        images, labels = extract(font_path, emoji_test)
        write_atomically(folder, {"images.npy": images, "labels.json": labels})
    images = np.load(folder / "images.npy", mmap_mode="r")
    labels = json.loads((folder / "labels.json").read_text())
    return images, labels
