"""Data: built-in sets, the user's folders and zips, training tensors, few-shot splits."""

from gankd.data.dataset import ImageDataset
from gankd.data.source import ImageSource
from gankd.data.spec import open_source

__all__ = ["ImageDataset", "ImageSource", "open_source"]
