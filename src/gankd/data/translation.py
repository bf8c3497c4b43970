"""Data for image-to-image translation: two domains, A (inputs) and B (outputs), paired (pix2pix:
A[i] and B[i] are one example) or unpaired (CycleGAN: two sets), each in a train and a test part.
Unpaired built-ins keep the ground-truth B of every test A, for evaluation only.

Built-in tasks, offline, made from the built-in sets (`gankd data list`):
  edges2emoji   paired: A = the edge map of an emoji (Canny on its gray image, fixed thresholds,
                dilated one pixel, black on white), B = the emoji; every emoji
  emoji-tones   unpaired: A = people emoji in skin tone `a` (light), B = in tone `b` (dark); a test
                A's ground truth is the same base emoji in tone b, and no B of a test base trains
  glyphs-bold   paired: A = a character in a family's regular weight (400), B = the same character,
                family and style in bold (700)
The test part of a built-in is a seeded tenth (of the pairs, or of the A bases).
User data, in the layouts people have:
  a folder of side-by-side AB images (pix2pix: A left, B right) in train/ and test/ (or val/)
  a folder with trainA/ and trainB/, and testA/, testB/ (CycleGAN); `FOLDER:paired` pairs
  trainA and trainB (and the test folders) by file name
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gankd.data.cache import cache_dir, write_atomically
from gankd.data.dataset import ImageDataset, convert_channels
from gankd.data.folder import FolderSource
from gankd.data.source import ImageSource, Subset
from gankd.data.spec import open_source
from gankd.errors import DataError, unknown
from gankd.progress import progress

TEST_FRACTION = 0.1
SPLIT_SEED = 0
EDGES = {"sigma": 2.0, "low": 0.05, "high": 0.15, "dilate": 1}  # Canny on gray in [0, 1], at 136 px


@dataclass
class TranslationSet:
    name: str
    paired: bool
    train: tuple[ImageSource, ImageSource]  # (A, B)
    test: tuple[ImageSource, ImageSource] | None  # (A, ground-truth B aligned with A), or None


class PairedSide(ImageSource):
    """One side of paired data held as another source plus a per-image transform (edges)."""

    def __init__(self, name: str, source: ImageSource, images: np.ndarray | None = None):
        self.name, self.source, self.images, self.upscale_ok = name, source, images, source.upscale_ok

    def __len__(self) -> int:
        return len(self.source)

    def image(self, i: int) -> np.ndarray:
        return self.source.image(i) if self.images is None else self.images[i]

    def labels(self, i: int) -> dict:
        return self.source.labels(i)

    def key(self, i: int) -> str:
        return self.source.key(i)

    def where(self, i: int) -> str:
        return self.source.where(i)


class HalfSource(ImageSource):
    """The left (A) or right (B) half of side-by-side AB images (pix2pix's aligned layout)."""

    upscale_ok = False

    def __init__(self, folder: FolderSource, side: str):
        self.folder, self.side, self.name = folder, side, f"{folder.name}-{side}"

    def __len__(self) -> int:
        return len(self.folder)

    def image(self, i: int) -> np.ndarray:
        ab = self.folder.image(i)
        width = ab.shape[1]
        if width % 2:
            raise DataError(f"{self.folder.where(i)}: {width} px wide, not two halves (A | B) of one width")
        return ab[:, :width // 2] if self.side == "A" else ab[:, width // 2:]

    def labels(self, i: int) -> dict:
        return self.folder.labels(i)

    def key(self, i: int) -> str:
        return self.folder.key(i)

    def where(self, i: int) -> str:
        return f"{self.folder.where(i)} ({self.side} half)"


def split(n: int) -> tuple[list[int], list[int]]:
    """(train, test) indices: a seeded tenth for test (at least one)."""
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    cut = max(1, round(n * TEST_FRACTION))
    return sorted(order[cut:].tolist()), sorted(order[:cut].tolist())


def edge_maps(source: ImageSource) -> np.ndarray:
    """uint8 [N, H, W, 3] edge maps (black on white) of a source's square images of one size,
    cached by the images' keys and the edge settings."""
    import hashlib
    import json

    key = hashlib.sha256(json.dumps([EDGES, [source.key(i) for i in range(len(source))]]).encode()).hexdigest()[:16]
    folder = cache_dir() / "edges" / key
    if not (folder / "edges.npy").is_file():
        from scipy.ndimage import binary_dilation
        from skimage.feature import canny

        maps = []
        for i in progress(range(len(source)), "edge maps", unit="img"):
            gray = convert_channels(source.image(i), 1)[..., 0].astype(np.float64) / 255
            edges = canny(gray, sigma=EDGES["sigma"], low_threshold=EDGES["low"], high_threshold=EDGES["high"])
            maps.append(binary_dilation(edges, iterations=EDGES["dilate"]))
        write_atomically(folder, {"edges.npy": np.packbits(np.stack(maps), axis=-1)})
    side = source.image(0).shape[1]
    bits = np.unpackbits(np.load(folder / "edges.npy"), axis=-1)[..., :side].astype(bool)
    return np.repeat(np.where(bits, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)


def edges2emoji() -> TranslationSet:
    emoji = open_source("emoji")
    edges = PairedSide("emoji-edges", emoji, edge_maps(emoji))
    train, test = split(len(emoji))
    return TranslationSet("edges2emoji", True, (Subset(edges, train), Subset(emoji, train)),
                          (Subset(edges, test), Subset(emoji, test)))


def emoji_tones(a: str = "light", b: str = "dark") -> TranslationSet:
    tones = ("light", "medium-light", "medium", "medium-dark", "dark")
    if a not in tones or b not in tones or a == b:
        raise DataError(f"emoji-tones: a and b must be two different tones of {', '.join(tones)}")
    side_a, side_b = open_source(f"emoji:tone={a}"), open_source(f"emoji:tone={b}")
    in_b = {side_b.labels(i)["base"]: i for i in range(len(side_b))}
    bases = sorted({side_a.labels(i)["base"] for i in range(len(side_a))} & set(in_b))
    train, test = split(len(bases))
    held = {bases[i] for i in test}
    a_of = {side_a.labels(i)["base"]: i for i in range(len(side_a))}
    train_a = [a_of[bases[i]] for i in train]
    train_b = [in_b[bases[i]] for i in train]
    test_a = [a_of[base] for base in sorted(held)]
    truth = [in_b[base] for base in sorted(held)]
    return TranslationSet(f"emoji-tones:{a}>{b}", False, (Subset(side_a, train_a), Subset(side_b, train_b)),
                          (Subset(side_a, test_a), Subset(side_b, truth)))


def glyphs_bold() -> TranslationSet:
    glyphs = open_source("glyphs")
    where = {}
    for i in range(len(glyphs)):
        lab = glyphs.labels(i)
        where[(lab["family"], lab["style"], lab["width"], lab["char"], lab["weight"])] = i
    pairs = sorted((i, where[k[:4] + (700,)]) for k, i in where.items() if k[4] == 400 and k[:4] + (700,) in where)
    train, test = split(len(pairs))

    def side(part: list[int], which: int) -> ImageSource:
        return Subset(glyphs, [pairs[i][which] for i in part])

    return TranslationSet("glyphs-bold", True, (side(train, 0), side(train, 1)), (side(test, 0), side(test, 1)))


TASKS = {
    "edges2emoji": (edges2emoji, "paired: emoji edge maps -> emoji (3926 pairs)"),
    "emoji-tones": (emoji_tones, "unpaired: people emoji, skin tone a -> b (a=light, b=dark); ground truth for test"),
    "glyphs-bold": (glyphs_bold, "paired: regular -> bold of the same font family, style and character"),
}


def paired_by_name(a: Path, b: Path) -> tuple[ImageSource, ImageSource]:
    sa, sb = FolderSource(a), FolderSource(b)
    names_a, names_b = set(sa.names), set(sb.names)
    if names_a != names_b:
        missing = sorted(names_a ^ names_b)[0]
        side = b if missing in names_a else a
        raise DataError(f"{side / missing}: missing, so {a.name} and {b.name} cannot be paired by file name")
    for i, name in enumerate(sa.names):
        if sa.size(i) != sb.size(sb.names.index(name)):
            raise DataError(f"{a / name} is {sa.size(i)[0]}x{sa.size(i)[1]} but {b / name} is "
                            f"{sb.size(sb.names.index(name))[0]}x{sb.size(sb.names.index(name))[1]}: a pair must be one size")
    return sa, sb


def user_folder(path: Path, paired: bool) -> TranslationSet:
    if (path / "trainA").is_dir() or (path / "trainB").is_dir():
        for part in ("trainA", "trainB"):
            if not (path / part).is_dir():
                raise DataError(f"{path}: has {'trainB' if part == 'trainA' else 'trainA'}/ but no {part}/ "
                                "(a CycleGAN folder needs both sides)")
        load = paired_by_name if paired else (lambda a, b: (FolderSource(a), FolderSource(b)))
        train = load(path / "trainA", path / "trainB")
        test = load(path / "testA", path / "testB") if (path / "testA").is_dir() and (path / "testB").is_dir() else None
        return TranslationSet(path.name, paired, train, test if paired else None)
    if (path / "train").is_dir():
        folder = FolderSource(path / "train")
        test_dir = next((path / p for p in ("test", "val") if (path / p).is_dir()), None)
        test = FolderSource(test_dir) if test_dir else None
        return TranslationSet(path.name, True, (HalfSource(folder, "A"), HalfSource(folder, "B")),
                              (HalfSource(test, "A"), HalfSource(test, "B")) if test else None)
    raise DataError(f"{path}: not a translation folder; expected train/ (side-by-side AB images) or "
                    "trainA/ and trainB/ (CycleGAN)")


def open_translation(text: str) -> TranslationSet:
    """A translation task: a built-in name with `key=value` options, or a folder (`:paired` pairs a
    CycleGAN folder by file name)."""
    name, _, terms = text.partition(":")
    if Path(name).is_dir():
        if terms not in ("", "paired"):
            raise DataError(f"{text!r}: a translation folder takes only the term `paired`")
        return user_folder(Path(name), terms == "paired")
    if name not in TASKS:
        raise DataError(f"{unknown('translation task', name, TASKS)}; or give a pix2pix (train/ of AB images) "
                        "or CycleGAN (trainA/, trainB/) folder")
    options = {}
    for term in filter(None, terms.split(",")):
        key, sep, value = term.partition("=")
        if not sep:
            raise DataError(f"bad term {term!r} in {text!r}: expected key=value")
        options[key] = value
    make = TASKS[name][0]
    try:
        return make(**options)
    except TypeError:
        raise DataError(f"{name} has no option among {', '.join(options)}") from None


class TranslationDataset(torch.utils.data.Dataset):
    """Items {"a": image A, "b": image B} in [-1, 1] at one resolution. Paired: the pair i. Unpaired:
    A[i mod |A|] with B[pairing[i mod |B|]] over max(|A|, |B|) items (as CycleGAN's unaligned
    data); the pairing is a fixed seeded permutation, and the batches reshuffle both sides every
    epoch, so what each B meets changes as CycleGAN's random pairing does."""

    def __init__(self, a: ImageSource, b: ImageSource, paired: bool, resolution: int, seed: int = 0,
                 in_channels: int | None = None, out_channels: int | None = None, upscale: bool | None = None):
        if paired and len(a) != len(b):
            raise DataError(f"paired data with {len(a)} A and {len(b)} B images")
        self.a = ImageDataset(a, resolution, in_channels, upscale=upscale)
        self.b = ImageDataset(b, resolution, out_channels, upscale=upscale)
        self.paired = paired
        self.pairing = None if paired else torch.randperm(len(b), generator=torch.Generator().manual_seed(seed))

    def __len__(self) -> int:
        return len(self.a) if self.paired else max(len(self.a), len(self.b))

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        a = self.a[i % len(self.a)]["image"]
        b = self.b[i if self.paired else int(self.pairing[i % len(self.b)])]["image"]
        return {"a": a, "b": b}

    @property
    def channels(self) -> tuple[int, int]:
        return self.a.channels, self.b.channels

    @property
    def in_memory(self) -> bool:
        return self.a.in_memory and self.b.in_memory

    @property
    def workers(self) -> int:
        return self.a.workers
