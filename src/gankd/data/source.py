"""Image sources: an indexable list of images at native size, each with labels and a stable key.

Every data set, built-in or the user's, is a source; filtering gives a `Subset`, and
`gankd.data.dataset.ImageDataset` turns any source into training tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class ImageSource:
    """Base class. Subclasses implement `__len__`, `image`, `labels` and `key`."""

    name: str = "images"
    fields: tuple[str, ...] = ()
    upscale_ok: bool = True  # may images be enlarged to reach the training resolution?

    def __len__(self) -> int:
        raise NotImplementedError

    def image(self, i: int) -> np.ndarray:
        """Image i as uint8 [H, W, C] with C = 1 (gray), 3 (RGB) or 4 (RGBA)."""
        raise NotImplementedError

    def labels(self, i: int) -> dict:
        """Descriptive labels of image i (used for filtering and manifests)."""
        return {}

    def key(self, i: int) -> str:
        """A stable, file-name-safe identifier of image i."""
        return f"{i:06d}"

    def where(self, i: int) -> str:
        """Where image i comes from, for messages (a file's path; by default its key)."""
        return self.key(i)

    def cond(self, i: int) -> np.ndarray | None:
        """Conditioning vector of image i (one-hot class or feature), or None if unconditional."""
        return None

    @property
    def cond_dim(self) -> int:
        return 0

    @property
    def channels(self) -> int:
        return self.image(0).shape[2] if len(self) else 3


class Subset(ImageSource):
    """A view of some indices of a source, optionally with one label field as the class."""

    def __init__(self, source: ImageSource, indices: Sequence[int], class_field: str | None = None):
        self.source, self.indices = source, list(indices)
        self.name, self.fields, self.upscale_ok = source.name, source.fields, source.upscale_ok
        self.class_field = class_field
        self.class_names = sorted({str(self.labels(i)[class_field]) for i in range(len(self))}) if class_field else []

    def __len__(self) -> int:
        return len(self.indices)

    def image(self, i: int) -> np.ndarray:
        return self.source.image(self.indices[i])

    def labels(self, i: int) -> dict:
        return self.source.labels(self.indices[i])

    def key(self, i: int) -> str:
        return self.source.key(self.indices[i])

    def where(self, i: int) -> str:
        return self.source.where(self.indices[i])

    def cond(self, i: int) -> np.ndarray | None:
        if not self.class_field:
            return self.source.cond(self.indices[i])
        onehot = np.zeros(len(self.class_names), np.float32)
        onehot[self.class_names.index(str(self.labels(i)[self.class_field]))] = 1
        return onehot

    @property
    def cond_dim(self) -> int:
        return len(self.class_names) if self.class_field else self.source.cond_dim

    @property
    def channels(self) -> int:
        return self.source.channels


class ArraySource(ImageSource):
    """Images held in one array (possibly memory-mapped) with a list of label dicts."""

    def __init__(self, name: str, images: np.ndarray, labels: list[dict], fields: Sequence[str],
                 key_field: str | None = None):
        self.name, self.images, self._labels, self.fields = name, images, labels, tuple(fields)
        self.key_field = key_field

    def __len__(self) -> int:
        return len(self._labels)

    def image(self, i: int) -> np.ndarray:
        return np.asarray(self.images[i])

    def labels(self, i: int) -> dict:
        return self._labels[i]

    def key(self, i: int) -> str:
        if self.key_field is None:
            return f"{self.name}-{i:05d}"
        safe = "".join(ch if ch.isalnum() else "_" for ch in str(self._labels[i][self.key_field]))
        return f"{self.name}-{i:05d}-{safe}"

    @property
    def channels(self) -> int:
        return self.images.shape[3]
