"""Features of reference images, cached by (data hash, extractor id, resolution, resize mode), and
stats files (.npz) given as a reference directly."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from gankd.data.cache import cache_dir
from gankd.errors import GankdError
from gankd.features import Extractor
from gankd.fileio import atomic_write
from gankd.progress import progress


def data_hash(images: torch.Tensor) -> str:
    """sha256 of the uint8 pixels the extractor will see (so any change of data or resizing shows)."""
    return hashlib.sha256(images.contiguous().numpy().tobytes()).hexdigest()


def embed_all(extractor: Extractor, images: torch.Tensor, batch: int, what: str = "embed") -> torch.Tensor:
    """Features of uint8 images [N, C, H, W], batched, with a progress bar."""
    fn = extractor.perceptual if what == "perceptual" else extractor.embed
    chunks = range(0, len(images), batch)
    out = [fn(images[i:i + batch].float() / 127.5 - 1).cpu()
           for i in progress(chunks, f"{extractor.kind} features", unit="batch")]
    return torch.cat(out)


def cached_features(extractor: Extractor, images: torch.Tensor, batch: int) -> tuple[np.ndarray, Path]:
    """Reference features, computed once per (pixels, extractor, resolution, resize) and cached."""
    key = f"{data_hash(images)}|{extractor.id}|{images.shape[-1]}|{extractor.resize}"
    path = cache_dir() / "features" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"
    if path.is_file():
        return load_stats(path, extractor)["features"], path
    features = embed_all(extractor, images, batch).numpy()
    save_stats(path, features, extractor, images.shape[-1])
    return features, path


def save_stats(path: Path, features: np.ndarray, extractor: Extractor, resolution: int) -> None:
    """An .npz of features, mean, covariance and what made them; readable without pickle."""
    import io

    buf = io.BytesIO()
    meta = {"extractor": extractor.id, "resolution": resolution, "resize": extractor.resize, "n": len(features)}
    np.savez(buf, features=features.astype(np.float32), mu=features.mean(0).astype(np.float64),
             sigma=np.cov(features.astype(np.float64), rowvar=False), meta=np.array(json.dumps(meta)))
    atomic_write(path, buf.getvalue())


def load_stats(path: str | os.PathLike, extractor: Extractor) -> dict:
    """{"mu", "sigma", "features" or None, "meta"} from a stats file made with the same extractor."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as err:
        raise GankdError(f"{path}: not a readable stats file ({err})") from None
    if "mu" not in arrays or "sigma" not in arrays:
        raise GankdError(f"{path}: a stats file needs arrays mu and sigma (and optionally features)")
    meta = json.loads(str(arrays["meta"])) if "meta" in arrays else {}
    made_with = meta.get("extractor")
    if made_with and made_with != extractor.id:
        raise GankdError(f"{path} was made with {made_with} features, not {extractor.id}; "
                         f"use --features {made_with.split(':')[0]} or another reference")
    if not made_with and arrays["mu"].shape[0] != extractor_dim(extractor):
        raise GankdError(f"{path}: mu has {arrays['mu'].shape[0]} dimensions; {extractor.id} gives "
                         f"{extractor_dim(extractor)}")
    return {"mu": arrays["mu"], "sigma": arrays["sigma"], "features": arrays.get("features"), "meta": meta}


def extractor_dim(extractor: Extractor) -> int:
    return extractor.embed(torch.zeros(1, 3, 32, 32)).shape[1]
