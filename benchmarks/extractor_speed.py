"""Images per second of each feature extractor on this machine (the cost of evaluation).

    python benchmarks/extractor_speed.py [--n 512] [--batch 64] [--out benchmarks/results/extractor_speed.json]

Weights are random (the speed does not depend on them; real weights need a download): each
extractor is built from a weights file of the right shapes written to a temporary folder.
Inputs are 32x32 RGB images, resized by each extractor to its own input size. fp32, inference mode.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch


def random_weights(kind: str, folder: Path) -> str | None:
    """A weights file of the right shapes for `kind` (None: the shipped domain weights)."""
    if kind == "domain":
        return None
    path = folder / f"{kind}.pt"
    if kind == "inception":
        from gankd.features.inception import fidelity_network

        torch.save(fidelity_network().state_dict(), path)
    elif kind.startswith("clip"):
        import open_clip

        model = open_clip.create_model(kind.partition(":")[2] or "ViT-B-32", pretrained=None)
        torch.save({k: v for k, v in model.state_dict().items() if k.startswith("visual.")}, path)
    elif kind.startswith("lpips"):
        import torchvision

        net = getattr(torchvision.models, {"alex": "alexnet", "vgg": "vgg16"}[kind.partition(":")[2] or "alex"])()
        torch.save({k: v for k, v in net.state_dict().items() if k.startswith("features.")}, path)
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--kinds", nargs="+", default=["domain", "inception", "clip:ViT-B-32", "lpips:alex"])
    parser.add_argument("--out", default="benchmarks/results/extractor_speed.json")
    args = parser.parse_args()
    from gankd.features import load_extractor

    images = torch.rand(args.n, 3, 32, 32) * 2 - 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds:
            extractor = load_extractor(kind, random_weights(kind, Path(tmp)))
            calls = [("embed", extractor.embed)] + ([("perceptual", extractor.perceptual)]
                                                    if extractor.has_perceptual else [])
            for what, fn in calls:
                fn(images[:args.batch])  # warm-up
                start = time.perf_counter()
                for i in range(0, args.n, args.batch):
                    fn(images[i:i + args.batch])
                rate = args.n / (time.perf_counter() - start)
                rows.append({"extractor": kind, "call": what, "input_size": extractor.input_size,
                             "images_per_s": round(rate, 1)})
                print(json.dumps(rows[-1]), flush=True)
    result = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                         f"torch {torch.__version__}, {torch.get_num_threads()} threads",
              "n": args.n, "batch": args.batch, "rows": rows}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
