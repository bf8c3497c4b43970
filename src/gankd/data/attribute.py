"""Images with a continuous attribute (the aging model's "age") and, where the data has one, an
identity: what the aging family trains on and what its benchmark scores against ground truth.

Any data spec serves: faces (`utkface:root=DIR`, field `age`), glyphs of a variable font
(`inter`, field `weight`, identity `char,style`), emoji in five skin tones
(`emoji:tone=light|medium-light|medium|medium-dark|dark`, field `tone` read on the ordinal
`SCALES` 1-5, identity `base`). Values listed in `hold_out` never reach training: the model is
scored there against the true images. With identity fields, a fifth of the identities (every fifth
in sorted order) are the test part, all their images at every value; without, every tenth image.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from gankd.data.dataset import ImageDataset
from gankd.data.source import ImageSource, Subset
from gankd.data.spec import open_source
from gankd.errors import DataError

SCALES = {"tone": {"light": 1.0, "medium-light": 2.0, "medium": 3.0, "medium-dark": 4.0, "dark": 5.0}}
TEST_EVERY = {True: 5, False: 10}  # every k-th identity (with identities) or image (without) is a test one


def parse_values(text: str) -> tuple[float, ...]:
    """`400|600` (or `400,600`) -> (400.0, 600.0); named ordinal values (`medium`) by `SCALES`."""
    names = {k: v for scale in SCALES.values() for k, v in scale.items()}
    out = []
    for item in filter(None, (v.strip() for v in text.replace(",", "|").split("|"))):
        try:
            out.append(names[item] if item in names else float(item))
        except ValueError:
            raise DataError(f"hold-out value {item!r} is not a number or one of {', '.join(names)}") from None
    return tuple(out)


def attribute_value(field: str, raw, where: str) -> float:
    """The number an image's label stands for (a number, or a named level of `SCALES[field]`)."""
    scale = SCALES.get(field, {})
    if str(raw) in scale:
        return scale[str(raw)]
    try:
        return float(raw)
    except (TypeError, ValueError):
        levels = f" or one of {', '.join(scale)}" if scale else ""
        raise DataError(f"{where}: {field} is {raw!r}, not a number{levels}; filter such images out of the "
                        f"data spec") from None


@dataclass
class AttributeData:
    """A source's images with their attribute values and identities, split into train and test."""

    name: str
    source: ImageSource
    field: str
    values: np.ndarray  # float64 [N]
    identities: list[str] | None  # per image; None: the data names no identity
    train: list[int]
    test: list[int]
    held_out: tuple[float, ...]

    def truth(self, i: int, value: float) -> int | None:
        """The image of image i's identity at `value` (ground truth of a translation), if there is one."""
        if self.identities is None:
            return None
        match = [j for j in self._by_identity[self.identities[i]] if self.values[j] == value]
        return match[0] if match else None

    @cached_property
    def _by_identity(self) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        for j, ident in enumerate(self.identities or []):
            groups.setdefault(ident, []).append(j)
        return groups

    @property
    def train_values(self) -> np.ndarray:
        return np.unique(self.values[self.train])


def open_attribute(spec: str, field: str, identity: str = "", hold_out: str = "") -> AttributeData:
    """The images of `spec` with the attribute `field` (and identity fields, comma-separated), the
    values of `hold_out` kept out of training."""
    source = open_source(spec)
    if len(source) == 0:
        raise DataError(f"{spec}: no images")
    fields = [f for f in identity.split(",") if f]
    for name in (field, *fields):
        if name not in source.labels(0):
            raise DataError(f"{spec} has no label {name!r} (labels: {', '.join(source.labels(0))})")
    labels = [source.labels(i) for i in range(len(source))]
    values = np.array([attribute_value(field, lab[field], source.where(i)) for i, lab in enumerate(labels)])
    held = parse_values(hold_out)
    missing = [v for v in held if v not in values]
    if missing:
        raise DataError(f"hold-out {', '.join(f'{v:g}' for v in missing)}: no image of {spec} has that {field} "
                        f"(it has {', '.join(f'{v:g}' for v in np.unique(values)[:12])}...)")
    identities = ["/".join(str(lab[f]) for f in fields) for lab in labels] if fields else None
    if identities is not None:
        names = sorted(set(identities))
        test_names = set(names[TEST_EVERY[True] - 1::TEST_EVERY[True]])
        is_test = [ident in test_names for ident in identities]
    else:
        is_test = [i % TEST_EVERY[False] == TEST_EVERY[False] - 1 for i in range(len(source))]
    train = [i for i in range(len(source)) if not is_test[i] and values[i] not in held]
    test = [i for i in range(len(source)) if is_test[i]]
    if len(np.unique(values[train])) < 2:
        raise DataError(f"{spec}: training needs images at two {field} values at least, after the hold-out")
    return AttributeData(spec, source, field, values, identities, train, test, held)


class AttributeDataset(torch.utils.data.Dataset):
    """Items {"image": [-1, 1] tensor, "value": the attribute} of some of an `AttributeData`'s images."""

    def __init__(self, data: AttributeData, indices: list[int], resolution: int, channels: int | None = None,
                 upscale: bool | None = None):
        self.data, self.indices = data, list(indices)
        self.images = ImageDataset(Subset(data.source, self.indices), resolution, channels, upscale=upscale)
        self.values = torch.tensor(data.values[self.indices], dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": self.images[i]["image"], "value": self.values[i]}

    @property
    def channels(self) -> int:
        return self.images.channels

    @property
    def in_memory(self) -> bool:
        return self.images.in_memory

    @property
    def workers(self) -> int:
        return self.images.workers
