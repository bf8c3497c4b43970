"""A sanity ladder for the evaluation features: do FID and KID grow as images get worse?

    python benchmarks/metric_ladder.py [--res 32] [--features domain] [--out benchmarks/results/metric_ladder.json]

For each few-shot target of the bench (built-in emoji groups), its images at `--res` are split in
two halves (seeded); the first half is the reference. Rungs, each scored against it:
  real (other half)  the rest of the same group: the floor any generator is measured against
  blur s=1, 2, 4     the other half, Gaussian-blurred (sigma in pixels at --res)
  colour blobs       smooth random colour fields (4x4 noise, bicubic up-sampling)
  noise              uniform per-pixel noise
  other groups       as many images of each other target, and of the source model's emoji people
A metric that is fit to rank generators must order the first five rungs (real < blur 1 < blur 2 <
blur 4 < blobs, noise): the script reports every place where it does not. Cost: about a minute on
2 CPU cores with domain features.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gankd.bench.fewshot import TARGETS
from gankd.data.spec import open_source
from gankd.features import load_extractor
from gankd.metrics.evaluate import uint8_images
from gankd.metrics.fid import frechet_distance, gaussian
from gankd.metrics.kid import kernel_distance
from gankd.metrics.reference import embed_all

PEOPLE = "emoji:subgroup=person|person-role|person-gesture|person-fantasy"  # builtin:emoji32's data
ORDERED = ("real (other half)", "blur s=1", "blur s=2", "blur s=4", "colour blobs")


def blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """uint8 [N, C, H, W] blurred by a separable Gaussian (reflect padding), back to uint8."""
    radius = int(3 * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-x ** 2 / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    c = images.shape[1]
    out = images.float()
    for shape in ((1, 1, 1, -1), (1, 1, -1, 1)):
        weight = kernel.view(shape).repeat(c, 1, 1, 1)
        pad = (radius, radius, 0, 0) if shape[-1] != 1 else (0, 0, radius, radius)
        out = F.conv2d(F.pad(out, pad, mode="reflect"), weight, groups=c)
    return out.round().clamp(0, 255).to(torch.uint8)


def blobs(n: int, res: int, rng: np.random.Generator) -> torch.Tensor:
    low = torch.from_numpy(rng.uniform(0, 255, (n, 3, 4, 4)).astype(np.float32))
    return F.interpolate(low, size=(res, res), mode="bicubic", align_corners=False).round().clamp(0, 255).to(torch.uint8)


def noise(n: int, res: int, rng: np.random.Generator) -> torch.Tensor:
    return torch.from_numpy(rng.integers(0, 256, (n, 3, res, res), dtype=np.uint8))


def scores(extractor, reference: np.ndarray, images: torch.Tensor, seed: int) -> dict:
    feats = embed_all(extractor, images, 64).numpy()
    mu, sigma = gaussian(feats)
    kid = kernel_distance(reference, feats, seed=seed)
    return {"fid": frechet_distance(mu, sigma, *gaussian(reference)), "kid": kid["mean"], "kid_std": kid["std"],
            "n": len(images)}


def ladder(target: str, res: int, extractor, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    images = uint8_images(open_source(TARGETS[target]), res, 3)
    order = rng.permutation(len(images))
    half = len(images) // 2
    reference, other = images[order[:half]], images[order[half:]]
    ref_feats = embed_all(extractor, reference, 64).numpy()
    rungs = {"real (other half)": other, **{f"blur s={s}": blur(other, s) for s in (1, 2, 4)},
             "colour blobs": blobs(len(other), res, rng), "noise": noise(len(other), res, rng)}
    for name, spec in {**{t: s for t, s in TARGETS.items() if t != target}, "people (source)": PEOPLE}.items():
        group = uint8_images(open_source(spec), res, 3)
        rungs[f"other group: {name}"] = group[rng.permutation(len(group))[:len(other)]]
    rows = {name: scores(extractor, ref_feats, imgs, seed) for name, imgs in rungs.items()}
    problems = []
    for metric in ("fid", "kid"):
        values = [rows[name][metric] for name in ORDERED]
        problems += [f"{metric}: {a} >= {b}" for a, b, va, vb in zip(ORDERED, ORDERED[1:], values, values[1:])
                     if va >= vb]
        if rows["noise"][metric] <= rows["blur s=4"][metric]:
            problems.append(f"{metric}: noise <= blur s=4")
        problems += [f"{metric}: {name} <= real (other half)" for name in rows
                     if name.startswith("other group") and rows[name][metric] <= rows["real (other half)"][metric]]
    return {"reference": len(reference), "rungs": rows, "not monotone": problems}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--res", type=int, default=32)
    parser.add_argument("--features", default="domain")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/metric_ladder.json"))
    args = parser.parse_args()
    extractor = load_extractor(args.features)
    start = time.time()
    results = {t: ladder(t, args.res, extractor, args.seed) for t in args.targets.split(",")}
    report = {"features": extractor.id, "resolution": args.res, "seed": args.seed,
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
                         f"{torch.get_num_threads()} threads", "seconds": round(time.time() - start, 1),
              "targets": results}
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    for target, result in results.items():
        print(f"\n{target} (reference: {result['reference']} images; FID and KID on {extractor.id} features)")
        for name, row in result["rungs"].items():
            print(f"  {name:28s} FID {row['fid']:9.2f}   KID {row['kid']:9.4f} ± {row['kid_std']:.4f}")
        print("  not monotone: " + ("; ".join(result["not monotone"]) or "none"))
    print(f"\n{args.out} ({report['seconds']} s)")


if __name__ == "__main__":
    main()
