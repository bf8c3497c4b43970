"""`gankd evaluate`: a generator (or a folder of images) against a reference, reporting quality
(FID, KID, precision), diversity (recall, intra-cluster LPIPS) and memorisation (data-copying)
together, each named with the extractor and weights that produced it (`fid[domain:3f2a91c0]`).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from gankd.data.dataset import ImageDataset
from gankd.data.source import ImageSource
from gankd.errors import GankdError
from gankd.features import Extractor, load_extractor
from gankd.generate import NOISE_MODES, sample
from gankd.metrics.copying import data_copying
from gankd.metrics.fid import frechet_distance, gaussian
from gankd.metrics.intra_lpips import intra_cluster_distance
from gankd.metrics.kid import kernel_distance
from gankd.metrics.precision_recall import precision_recall
from gankd.metrics.reference import cached_features, embed_all, load_stats
from gankd.runs import is_run, newest_checkpoint
from gankd.seeds import check_seed

METRICS = {
    "fid": "Fréchet distance of Gaussians fitted to the features",
    "kid": "kernel (MMD², cubic) distance, unbiased, mean ± std over subsets; primary for small references",
    "pr": "precision and recall, k = 3 (Kynkäänniemi et al. 2019)",
    "intra_lpips": "mean pairwise perceptual distance within clusters around each training shot (CDC)",
    "copying": "C_T of Meehan et al. (2020) and the nearest-training distance ratio, against held-out images",
}
NEEDS_TRAIN = ("intra_lpips", "copying")
NEEDS_FEATURES = ("kid", "pr", "copying")
INTRA_LPIPS_SAMPLES = 1000  # CDC's protocol: 1000 samples
# The fewest images, on either side, with which a metric is defined (pr: more than its k = 3 neighbours).
MIN_IMAGES = {"fid": 2, "kid": 2, "pr": 4, "intra_lpips": 1, "copying": 1}


def parse_metrics(text: str | list[str]) -> list[str]:
    names = [m.strip() for m in (text.split(",") if isinstance(text, str) else text) if m.strip()]
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise GankdError(f"unknown metric {unknown[0]!r}" if unknown else "no metrics given"
                         f"; choose from {', '.join(METRICS)}")
    return names


def check_counts(metrics: list[str], n: int, what: str, hint: str = "") -> None:
    """Refuse, before any work, a set too small for one of the metrics."""
    short = [f"{m} needs at least {MIN_IMAGES[m]}" for m in metrics if n < MIN_IMAGES[m]]
    if short:
        raise GankdError(f"{what} has {n} image{'s' * (n != 1)}; {', '.join(short)}{hint}")


def uint8_images(source: ImageSource, resolution: int, channels: int, upscale: bool | None = None) -> torch.Tensor:
    """All images of a source as uint8 [N, C, R, R], cropped and resized as training data is, by
    the same rule for images below the resolution (`upscale`; None: built-in sets yes, folders no)."""
    data = ImageDataset(source, resolution, channels=channels, upscale=upscale)
    return data.images if data.images is not None else torch.stack([data.uint8(i) for i in range(len(data))])


class Evaluator:
    """Reference side prepared once (features cached on disk); call it with generated images.

    The training loop keeps one and calls it every `eval.every` steps; `evaluate` calls it once.
    """

    def __init__(self, reference: ImageSource | str | os.PathLike, metrics: list[str], features: str = "domain",
                 resolution: int = 32, channels: int = 3, train: ImageSource | None = None,
                 lpips: str | None = None, weights: str | None = None, resize: str = "clean", batch: int = 64,
                 device: str = "cpu", seed: int = 0, name: str | None = None, upscale: bool | None = None,
                 noise: str | None = None):
        self.metrics, self.batch, self.seed, self.noise = metrics, batch, seed, noise
        if train is None and any(m in NEEDS_TRAIN for m in metrics):
            raise GankdError(f"{', '.join(m for m in metrics if m in NEEDS_TRAIN)} need the training images: "
                             "give a split folder as the reference, or --train DIR|SPEC")
        self.extractor = load_extractor(features, weights, resize, device)
        if isinstance(reference, ImageSource):
            images = uint8_images(reference, resolution, channels, upscale)
            feats, self.cache_file = cached_features(self.extractor, images, batch)
            self.reference = {"features": feats, "n": len(feats), "name": name or reference.name}
        else:
            stats = load_stats(reference, self.extractor)
            self.cache_file = Path(reference)
            self.reference = {"features": stats["features"], "mu": stats["mu"], "sigma": stats["sigma"],
                              "n": stats["meta"].get("n"), "name": str(reference)}
            missing = [m for m in metrics if m in NEEDS_FEATURES and stats["features"] is None]
            if missing:
                raise GankdError(f"{reference} holds only mean and covariance; {', '.join(missing)} need features")
        if self.reference["n"] is not None:
            check_counts(metrics, self.reference["n"], f"the reference {self.reference['name']}")
        if "mu" not in self.reference:
            self.reference["mu"], self.reference["sigma"] = gaussian(self.reference["features"])
        self.train_images = uint8_images(train, resolution, channels, upscale) if train is not None else None
        self.perceptual = None
        if "intra_lpips" in metrics:
            self.perceptual = load_extractor(lpips or ("domain" if features == "domain" else "lpips"),
                                             None, "clean", device)
            self.shots = embed_all(self.perceptual, self.train_images, batch, "perceptual")
        if "copying" in metrics:
            self.train_features = embed_all(self.extractor, self.train_images, batch).numpy()

    def protocol(self) -> dict:
        """What was compared with what, how: goes into every result."""
        return {"features": self.extractor.id, "resize": self.extractor.resize,
                "reference": self.reference["name"], "reference_images": self.reference["n"],
                "training_images": None if self.train_images is None else len(self.train_images),
                "perceptual": None if self.perceptual is None else self.perceptual.id, "seed": self.seed,
                "noise": self.noise}

    def named(self, metric: str, extractor: Extractor | None = None) -> str:
        """`fid[domain:804d56a9,noise=random]`: a metric with the extractor and weights that made it,
        and the noise mode of the generated images (none for images read from files)."""
        noise = f",noise={self.noise}" if self.noise else ""
        return f"{metric}[{(extractor or self.extractor).id}{noise}]"

    def __call__(self, images: torch.Tensor) -> dict:
        """Metrics of uint8 images [N, C, R, R]: {name: {"value" or parts, "id"}}, plus "_copying" arrays."""
        feats = embed_all(self.extractor, images, self.batch).numpy()
        out: dict = {}
        if "fid" in self.metrics:
            mu, sigma = gaussian(feats)
            out["fid"] = {"value": frechet_distance(mu, sigma, self.reference["mu"], self.reference["sigma"]),
                          "id": self.named("fid")}
        if "kid" in self.metrics:
            kid = kernel_distance(self.reference["features"], feats, seed=self.seed)
            out["kid"] = {"value": kid["mean"], **kid, "id": self.named("kid")}
        if "pr" in self.metrics:
            pr = precision_recall(torch.from_numpy(self.reference["features"]), torch.from_numpy(feats))
            out["precision"] = {"value": pr["precision"], "k": pr["k"], "id": self.named("precision")}
            out["recall"] = {"value": pr["recall"], "k": pr["k"], "id": self.named("recall")}
        if "intra_lpips" in self.metrics:
            subset = images[:INTRA_LPIPS_SAMPLES]
            result = intra_cluster_distance(embed_all(self.perceptual, subset, self.batch, "perceptual"), self.shots)
            out["intra_lpips"] = {"value": result["mean"], "samples": len(subset), **result,
                                  "id": self.named("intra_lpips", self.perceptual)}
            del out["intra_lpips"]["mean"]
        if "copying" in self.metrics:
            held = self.reference["features"]
            result = data_copying(self.train_features, feats, held, seed=self.seed)
            out["_copying"] = {"distance": result.pop("nearest_distance"), "index": result.pop("nearest_index")}
            out["copying"] = {"value": result["C_T"], **result, "id": self.named("copying")}
        return out


def load_target(target: str | os.PathLike, n: int, seed: int, batch: int, device: str,
                resolution: int | None, upscale: bool | None = None, noise: str = "random",
                features: str | None = None) -> tuple[torch.Tensor, str, str, str | None]:
    """(uint8 images [N, C, R, R], description, path, noise mode or None) of a checkpoint (seeds
    seed .. seed+n-1 with `noise` noise; a run folder means its last checkpoint) or of a folder/zip
    of images. A checkpoint trained through `features` (its recipe's teachers) is refused."""
    from gankd.models import PREFIX

    text = str(target)
    path = Path(target)
    if is_run(path):
        path = newest_checkpoint(path)
        text = str(path)
    if text.startswith(PREFIX) or path.is_file() and path.suffix != ".zip":
        from gankd.checkpoint import read_meta

        teachers = read_meta(text).get("training", {}).get("teachers", [])
        judge = (features or "").partition(":")[0]
        if any(t.partition(":")[0] == judge for t in teachers):
            raise GankdError(f"{text} was trained through {judge} features (its method's perceptual loss); "
                             "a model is never judged by its own teacher: use other --features")
        images = sample(text, list(range(seed, seed + n)), noise_mode=noise, batch_size=batch, device=device)
        return (torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
                f"{text} (seeds {seed}-{seed + n - 1}, {noise} noise)", text, noise)
    from gankd.data.spec import open_source

    source = open_source(text)
    res = resolution or min(source.image(0).shape[:2])
    return uint8_images(source, res, 3, upscale)[:n], f"{text} ({min(n, len(source))} images)", text, None


def copying_picture(images: torch.Tensor, train: torch.Tensor, distance: np.ndarray, index: np.ndarray,
                    count: int = 8) -> np.ndarray:
    """Top row: the generated samples closest to a training image; bottom row: that training image."""
    from gankd.images import grid, upscale_nearest

    order = np.argsort(distance)[:count]
    pairs = torch.cat([images[order], train[index[order]]]).permute(0, 2, 3, 1).numpy()
    return grid(upscale_nearest(pairs, 64), cols=len(order))


def evaluate(target: str | os.PathLike, ref: str | os.PathLike, metrics: str | list[str] = "fid,kid",
             features: str = "domain", n: int = 5000, seed: int = 0, train: str | None = None,
             lpips: str | None = None, weights: str | None = None, resize: str = "clean", batch: int = 64,
             device: str = "cpu", res: int | None = None, out: str | os.PathLike | None = None,
             upscale: bool | None = None, noise: str = "random") -> dict:
    """Evaluate and write `out`/metrics.json (and copying.png); returns the result dict. Images below
    the evaluated resolution are refused unless `upscale` (None: built-in sets yes, folders no), as in
    training."""
    from gankd.data.spec import open_source
    from gankd.data.splits import load_split
    from gankd.fileio import check_new_dir, new_dir

    names = parse_metrics(metrics)
    if n < 2:
        raise GankdError("--n must be at least 2")
    check_seed(seed, "--seed", count=n)
    out_dir = Path(out) if out else free_name(Path(f"eval-{Path(str(target)).stem or 'images'}"))
    check_new_dir(out_dir)
    start = time.time()
    if noise not in NOISE_MODES:
        raise GankdError(f"--noise must be one of {', '.join(NOISE_MODES)}, not {noise!r}")
    images, described, target_path, noise_used = load_target(target, n, seed, batch, device, res, upscale, noise,
                                                             features)
    check_counts(names, len(images), described)
    ref_path = Path(ref)
    train_source = open_source(train) if train else None
    if ref_path.suffix == ".npz":
        reference = ref_path
    elif (ref_path / "manifest.json").is_file():
        split_train, reference = load_split(ref_path)
        train_source = train_source or split_train
    else:
        reference = open_source(str(ref))
    evaluator = Evaluator(reference, names, features, images.shape[-1], images.shape[1], train_source, lpips,
                          weights, resize, batch, device, seed, str(ref), upscale, noise_used)
    results = evaluator(images)
    copying = results.pop("_copying", None)
    report = {"target": described, "target_path": target_path, "samples": len(images), "resolution": images.shape[-1],
              **evaluator.protocol(), "metrics": results, "reference_cache": str(evaluator.cache_file),
              "seconds": round(time.time() - start, 1)}
    new_dir(out_dir)
    (out_dir / "metrics.json").write_text(json.dumps(report, indent=1, default=float) + "\n")
    if copying is not None:
        from gankd.images import save_png

        save_png(out_dir / "copying.png", copying_picture(images, evaluator.train_images, **copying))
        report["copying_picture"] = str(out_dir / "copying.png")
    report["out"] = str(out_dir)
    return report


def free_name(path: Path) -> Path:
    """`path`, or `path-2`, `path-3`... whichever does not exist yet."""
    candidate, k = path, 2
    while candidate.exists():
        candidate, k = path.with_name(f"{path.name}-{k}"), k + 1
    return candidate
