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
from gankd.features import Extractor, check_judge, load_extractor
from gankd.generate import sample
from gankd.nets.stylegan2 import NOISE_MODES
from gankd.metrics.copying import data_copying
from gankd.metrics.fid import frechet_distance, gaussian
from gankd.metrics.intra_lpips import intra_cluster_distance
from gankd.metrics.kid import kernel_distance
from gankd.metrics.precision_recall import precision_recall
from gankd.metrics.reference import cached_features, embed_all, load_stats
from gankd.runs import checkpoint_of
from gankd.seeds import check_seed
from gankd.metrics import INTRA_LPIPS_SAMPLES, NEEDS_FEATURES, NEEDS_TRAIN, NEEDS_TRUTH, check_counts, parse_metrics
from gankd.metrics.paired import paired_scores

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
        check_judge(features)
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
        if "intra_lpips" in metrics or "lpips" in metrics:
            self.perceptual = load_extractor(lpips or ("domain" if features == "domain" else "lpips"),
                                             None, "clean", device)
        if "intra_lpips" in metrics:
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


def refuse_teacher(ckpt: str, meta: dict, features: str) -> None:
    """A model is never judged by an extractor its method trained through (the checkpoint records them)."""
    judge = features.partition(":")[0]
    if any(t.partition(":")[0] == judge for t in meta.get("training", {}).get("teachers", [])):
        raise GankdError(f"{ckpt} was trained through {judge} features (its method's perceptual loss); "
                         "a model is never judged by its own teacher: use other --features")


def load_target(target: str | os.PathLike, n: int, seed: int, batch: int, device: str,
                resolution: int | None, upscale: bool | None = None,
                noise: str = "random") -> tuple[torch.Tensor, str, str, str | None]:
    """(uint8 images [N, C, R, R], description, path, noise mode or None) of a generator's checkpoint
    (seeds seed .. seed+n-1 with `noise` noise) or of a folder/zip of images."""
    ckpt = checkpoint_of(target)
    if ckpt is not None:
        images = sample(ckpt, list(range(seed, seed + n)), noise_mode=noise, batch_size=batch, device=device)
        return (torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
                f"{ckpt} (seeds {seed}-{seed + n - 1}, {noise} noise)", ckpt, noise)
    from gankd.data.spec import open_source

    source = open_source(str(target))
    res = resolution or min(source.image(0).shape[:2])
    return uint8_images(source, res, 3, upscale)[:n], f"{target} ({min(n, len(source))} images)", str(target), None


def test_pairs(ref: str, cfg, upscale: bool | None):
    """(inputs in [-1, 1] [N, C_in, R, R], ground truth uint8 [N, C_out, R, R], the task) of the test
    part of the task `ref` (a built-in task or a translation folder), for a model of config `cfg`."""
    from gankd.data.translation import TranslationDataset, open_translation

    task = open_translation(ref)
    if task.test is None:
        raise GankdError(f"{ref}: no test part (testA/ and testB/, or test/) to evaluate on")
    test = TranslationDataset(*task.test, True, cfg.resolution, upscale=upscale, in_channels=cfg.in_channels,
                              out_channels=cfg.out_channels)
    inputs = torch.stack([test[i]["a"] for i in range(len(test))])
    truth = test.b.images if test.b.in_memory else torch.stack([test.b.uint8(i) for i in range(len(test))])
    return inputs, truth, task


def translated_target(ckpt: str, ref: str, upscale: bool | None, device: str):
    """(outputs, ground truth, description, reference source, training B source) of a translation
    checkpoint on the test part of the task `ref`."""
    from gankd.checkpoint import load_checkpoint
    from gankd.families.translation import translate_uint8

    model = load_checkpoint(ckpt).require("translation", "translation evaluation")
    inputs, truth, task = test_pairs(ref, model.config, upscale)
    G = model.network("G_AB" if "G_AB" in model.roles else "G").to(device)
    outputs = translate_uint8(G, inputs.to(device))
    return outputs, truth, f"{ckpt} on the {len(inputs)} test inputs of {ref}", task.test[1], task.train[1]


def copying_picture(images: torch.Tensor, train: torch.Tensor, distance: np.ndarray, index: np.ndarray,
                    count: int = 8) -> np.ndarray:
    """Top row: the generated samples closest to a training image; bottom row: that training image."""
    from gankd.images import grid, upscale_nearest

    order = np.argsort(distance)[:count]
    pairs = torch.cat([images[order], train[index[order]]]).permute(0, 2, 3, 1).numpy()
    return grid(upscale_nearest(pairs, 64), cols=len(order))


def evaluate(target: str | os.PathLike, ref: str | os.PathLike, metrics: str | list[str] | None = None,
             features: str = "domain", n: int = 5000, seed: int = 0, train: str | None = None,
             lpips: str | None = None, weights: str | None = None, resize: str = "clean", batch: int = 64,
             device: str = "cpu", res: int | None = None, out: str | os.PathLike | None = None,
             upscale: bool | None = None, noise: str = "random", force: bool = False) -> dict:
    """Evaluate and write `out`/metrics.json (and copying.png); returns the result dict.

    A generator draws `n` samples; a translation model translates the test inputs of the task
    `ref` and is compared with their ground truth (default metrics: fid, kid and every paired one);
    a folder of images is taken as it is. Images below the evaluated resolution are refused unless
    `upscale` (None: built-in sets yes, folders no), as in training."""
    from gankd.checkpoint import read_meta
    from gankd.data.spec import open_source
    from gankd.data.splits import load_split
    from gankd.fileio import check_new_dir, new_dir
    from gankd.nets import ARCHITECTURES

    ckpt = checkpoint_of(target)
    meta = read_meta(ckpt) if ckpt else None
    translation = meta is not None and ARCHITECTURES[meta["arch"]].family == "translation"
    names = parse_metrics(metrics or ("fid,kid,l1,psnr,ssim,lpips" if translation else "fid,kid"))
    if not translation and any(m in NEEDS_TRUTH for m in names):
        raise GankdError(f"{', '.join(m for m in names if m in NEEDS_TRUTH)} need ground truth: a translation model "
                         "evaluated on a task with paired test images")
    if n < 2:
        raise GankdError("--n must be at least 2")
    check_seed(seed, "--seed", count=n)
    if noise not in NOISE_MODES:
        raise GankdError(f"--noise must be one of {', '.join(NOISE_MODES)}, not {noise!r}")
    if meta is not None:
        refuse_teacher(ckpt, meta, features)
    out_dir = Path(out) if out else free_name(Path(f"eval-{Path(str(target)).stem or 'images'}"))
    check_new_dir(out_dir, force)
    start = time.time()
    train_source = open_source(train) if train else None
    truth = None
    if translation:
        images, truth, described, task_reference, task_train = translated_target(ckpt, str(ref), upscale, device)
        reference, target_path, noise_used, train_source = task_reference, ckpt, None, train_source or task_train
    else:
        images, described, target_path, noise_used = load_target(target, n, seed, batch, device, res, upscale, noise)
        ref_path = Path(ref)
        if ref_path.suffix == ".npz":
            reference = ref_path
        elif (ref_path / "manifest.json").is_file():
            split_train, reference = load_split(ref_path)
            train_source = train_source or split_train
        else:
            reference = open_source(str(ref))
    check_counts(names, len(images), described)
    evaluator = Evaluator(reference, names, features, images.shape[-1], images.shape[1], train_source, lpips, weights,
                          resize, batch, device, seed, str(ref), upscale, noise_used)
    results = evaluator(images)
    if truth is not None:
        for metric, value in paired_scores(images, truth, names, evaluator.perceptual, batch).items():
            extractor = f"{evaluator.perceptual.id}," if metric == "lpips" else ""
            results[metric] = {"value": value, "id": f"{metric}[{extractor}ground truth]"}
    copying = results.pop("_copying", None)
    report = {"target": described, "target_path": target_path, "samples": len(images), "resolution": images.shape[-1],
              **evaluator.protocol(), "metrics": results, "reference_cache": str(evaluator.cache_file),
              "seconds": round(time.time() - start, 1)}
    new_dir(out_dir, force)
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
