"""How the shipped `domain` encoder was made: multi-task classification on the built-in data.

    python -m gankd.features.domain_train --out src/gankd/features/domain.safetensors

Tasks (one linear head each on the shared 256-d features; heads are not shipped): emoji
sub-group (102) and base emoji (2040, so skin-tone variants share a class), glyph character (62)
and font family (17), and digit (10). A seeded tenth of each set is held out to report accuracy.
Augmentation (scale, shift, brightness, contrast, noise) keeps the features stable under the
small distortions generated images have. Trained in bf16 autocast; the shipped weights are float32.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from gankd.data.dataset import ImageDataset
from gankd.data.spec import open_source
from gankd.features.domain import INPUT_SIZE, DomainNet
from gankd.progress import progress

TASKS = {  # task -> (data set spec, label field)
    "emoji_subgroup": ("emoji", "subgroup"),
    "emoji_base": ("emoji", "base"),
    "glyph_char": ("glyphs", "char"),
    "glyph_family": ("glyphs", "family"),
    "digit": ("digits", "digit"),
}


def load_tasks() -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """All images as uint8 [N, 3, 64, 64], labels [N, tasks] (-1 where a task does not apply), class counts."""
    images, columns, counts = [], [], []
    specs = sorted({spec for spec, _ in TASKS.values()})
    offsets, n_total = {}, 0
    for spec in specs:
        source = open_source(spec)
        data = ImageDataset(source, INPUT_SIZE, channels=3, upscale=True)
        images.append(torch.stack([data.uint8(i) for i in range(len(data))]))
        offsets[spec] = (n_total, source)
        n_total += len(source)
    for spec, field in TASKS.values():
        start, source = offsets[spec]
        values = [str(source.labels(i)[field]) for i in range(len(source))]
        classes = {v: k for k, v in enumerate(sorted(set(values)))}
        column = torch.full((n_total,), -1, dtype=torch.long)
        column[start:start + len(values)] = torch.tensor([classes[v] for v in values])
        columns.append(column)
        counts.append(len(classes))
    return torch.cat(images), torch.stack(columns, 1), counts


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random scale (0.8-1.15), shift (up to 8 %), brightness, contrast and pixel noise."""
    n = x.shape[0]
    rand = lambda *shape: torch.rand(*shape, generator=generator)  # noqa: E731
    scale = 0.8 + 0.35 * rand(n)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / scale
    theta[:, :, 2] = (rand(n, 2) - 0.5) * 0.16
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    x = x + (rand(n, 1, 1, 1) - 0.5) * 0.2
    mean = x.mean((1, 2, 3), keepdim=True)
    x = (x - mean) * (0.8 + 0.4 * rand(n, 1, 1, 1)) + mean
    x = x + torch.randn(x.shape, generator=generator) * 0.05 * rand(n, 1, 1, 1)
    return x.clamp(-1, 1)


def train(epochs: int = 12, batch: int = 128, lr: float = 2e-3, seed: int = 0) -> tuple[DomainNet, dict]:
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    images, labels, counts = load_tasks()
    order = torch.randperm(len(images), generator=generator)
    held = order[: len(order) // 10]
    train_idx = order[len(order) // 10:]
    net = DomainNet().to(memory_format=torch.channels_last)  # with bf16 autocast: 2x faster on CPU
    heads = nn.ModuleList(nn.Linear(net.dim, c) for c in counts)
    params = [*net.parameters(), *heads.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=5e-4)
    steps = epochs * (len(train_idx) // batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    start = time.time()
    for _ in progress(range(epochs), "training the domain encoder", unit="epoch"):
        net.train()
        perm = train_idx[torch.randperm(len(train_idx), generator=generator)]
        for b in range(len(perm) // batch):
            idx = perm[b * batch:(b + 1) * batch]
            x = augment(images[idx].float() / 127.5 - 1, generator).contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", torch.bfloat16):
                feats = net(x)[0].float()
            loss = sum(F.cross_entropy(head(feats), labels[idx, t], ignore_index=-1, reduction="sum")
                       for t, head in enumerate(heads)) / batch
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    with torch.no_grad():
        feats = torch.cat([net(images[held[i:i + 256]].float() / 127.5 - 1)[0] for i in range(0, len(held), 256)])
    accuracy = {}
    for t, (task, head) in enumerate(zip(TASKS, heads)):
        mask = labels[held, t] >= 0
        pred = head(feats[mask]).argmax(1)
        accuracy[task] = round(float((pred == labels[held, t][mask]).float().mean()), 4)
    facts = {"tasks": {task: n for task, n in zip(TASKS, counts)}, "held_out_accuracy": accuracy,
             "epochs": epochs, "batch": batch, "lr": lr, "seed": seed, "images": len(images),
             "train_seconds": round(time.time() - start)}
    return net, facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from safetensors.torch import save_file

    net, facts = train(args.epochs, seed=args.seed)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, args.out,
              metadata={"gankd": json.dumps(facts)})
    print(json.dumps(facts, indent=1))


if __name__ == "__main__":
    main()
