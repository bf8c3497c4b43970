"""How the shipped `clip-gankd` teacher was made: contrastive image-text training on the built-in data.

    python -m gankd.features.clip_gankd_train --out src/gankd/features/clip_gankd.safetensors

Pairs: every emoji, glyph and digit image with a caption drawn at each step from its set's
templates (`clip_gankd.CAPTIONS`). Images at 32 px with the domain encoder's augmentation.
Captions that are equal within a batch (two "a food emoji") share the target probability, so
equal texts are not pushed apart. A seeded tenth of the images is held out and scored zero-shot
(the prompts are the templates filled with every value of a field). Trained in bf16 autocast.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
import torch.nn.functional as F

from gankd.data.dataset import ImageDataset
from gankd.data.spec import open_source
from gankd.features.clip_gankd import CAPTIONS, INPUT_SIZE, PROMPTS, build_model, shrink_tokens, tokenizer
from gankd.features.domain_train import augment
from gankd.progress import progress

# zero-shot tasks: name -> (data set, label field); the prompts are PROMPTS[set, field] of every value
ZERO_SHOT = {
    "emoji_group": ("emoji", "group"),
    "emoji_subgroup": ("emoji", "subgroup"),
    "glyph_char": ("glyphs", "char"),
    "glyph_family": ("glyphs", "family"),
    "digit": ("digits", "digit"),
}


def load_pairs() -> tuple[torch.Tensor, list[str], list[dict]]:
    """All images as uint8 [N, 3, 32, 32], the set each comes from, and its labels."""
    images, sets, labels = [], [], []
    for name in CAPTIONS:
        source = open_source(name)
        data = ImageDataset(source, INPUT_SIZE, channels=3, upscale=True)
        images.append(torch.stack([data.uint8(i) for i in range(len(data))]))
        sets += [name] * len(source)
        labels += [source.labels(i) for i in range(len(source))]
    return torch.cat(images), sets, labels


def caption_tokens(sets: list[str], labels: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens of every (image, template) [N, T, L] (rows past a set's templates repeat its first), templates per image."""
    tokenize = tokenizer()
    width = max(len(t) for t in CAPTIONS.values())
    texts = [[CAPTIONS[s][k % len(CAPTIONS[s])](l) for k in range(width)] for s, l in zip(sets, labels)]
    tokens = tokenize([t for row in texts for t in row]).view(len(texts), width, -1)
    return tokens, torch.tensor([len(CAPTIONS[s]) for s in sets])


def contrastive_loss(image: torch.Tensor, text: torch.Tensor, tokens: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE; the target of a row is spread evenly over the batch's identical captions."""
    image, text = F.normalize(image, dim=-1), F.normalize(text, dim=-1)
    logits = logit_scale.exp() * image @ text.t()
    same = (tokens[:, None, :] == tokens[None, :, :]).all(-1).float()
    target = same / same.sum(1, keepdim=True)
    return 0.5 * (torch.sum(-target * logits.log_softmax(1), 1).mean() + torch.sum(-target * logits.log_softmax(0).t(), 1).mean())


@torch.no_grad()
def zero_shot(model, images: torch.Tensor, sets: list[str], labels: list[dict], held: torch.Tensor) -> dict[str, float]:
    """Held-out accuracy of choosing the right prompt among all values of a field."""
    tokenize = tokenizer()
    model.eval()
    feats = torch.cat([model.encode_image(images[held[i:i + 512]].float() / 127.5 - 1, normalize=True)
                       for i in range(0, len(held), 512)])
    accuracy = {}
    for task, (name, field) in ZERO_SHOT.items():
        rows = [k for k, i in enumerate(held.tolist()) if sets[i] == name and str(labels[i][field])]
        values = sorted({str(labels[i][field]) for i in range(len(sets)) if sets[i] == name} - {""})
        prompts = [PROMPTS[name, field](v) for v in values]
        text = model.encode_text(tokenize(prompts), normalize=True)
        truth = torch.tensor([values.index(str(labels[held[k]][field])) for k in rows])
        accuracy[task] = round(float(((feats[rows] @ text.t()).argmax(1) == truth).float().mean()), 4)
        accuracy[f"{task}_chance"] = round(1 / len(values), 4)
    return accuracy


def train(epochs: int = 50, batch: int = 256, lr: float = 1e-3, seed: int = 0) -> tuple[dict, dict]:
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    images, sets, labels = load_pairs()
    tokens, n_templates = caption_tokens(sets, labels)
    order = torch.randperm(len(images), generator=generator)
    held, train_idx = order[: len(order) // 10], order[len(order) // 10:]
    model = build_model()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.98), eps=1e-6)
    per_epoch = len(train_idx) // batch
    steps, warmup = epochs * per_epoch, min(200, epochs * per_epoch // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * (s - warmup) / (steps - warmup))))
    start = time.time()
    for _ in progress(range(epochs), "training clip-gankd", unit="epoch"):
        model.train()
        perm = train_idx[torch.randperm(len(train_idx), generator=generator)]
        for b in range(per_epoch):
            idx = perm[b * batch:(b + 1) * batch]
            pick = (torch.rand(len(idx), generator=generator) * n_templates[idx]).long()
            text_tokens = tokens[idx, pick]
            x = augment(images[idx].float() / 127.5 - 1, generator)
            with torch.autocast("cpu", torch.bfloat16):
                image_feats = model.encode_image(x)
                text_feats = model.encode_text(text_tokens)
            loss = contrastive_loss(image_feats.float(), text_feats.float(), text_tokens, model.logit_scale)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))
    used = torch.unique(tokens)
    facts = {"zero_shot_held_out": zero_shot(model, images, sets, labels, held), "epochs": epochs, "batch": batch,
             "lr": lr, "seed": seed, "images": len(images), "held_out": len(held), "threads": torch.get_num_threads(),
             "final_loss": round(float(loss.detach()), 4), "train_seconds": round(time.time() - start),
             "token_rows": len(used)}
    return shrink_tokens(model.state_dict(), used), facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from safetensors.torch import save_file

    state, facts = train(args.epochs, seed=args.seed)
    save_file({k: v.contiguous() for k, v in state.items()}, args.out, metadata={"gankd": json.dumps(facts)})
    print(json.dumps(facts, indent=1))


if __name__ == "__main__":
    main()
