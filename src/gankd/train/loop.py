"""The training loop: one function over the phases G_main, G_reg, D_main and D_reg.

Each step: G_main (adversarial loss of fakes), G_reg every `loss.pl_interval` steps when the
path-length weight is set, D_main (reals vs fakes), D_reg every `loss.r1_interval` steps (lazy
R1); then the G_ema update and the augmentation's adjustment. Every phase's loss is a dict of
named terms: the loop's own (`adv`, `adv_real`, `adv_fake`, `r1`, `pl`) plus whatever the recipe
adds; they are summed, checked for finiteness, logged as `loss/<phase>/<term>`, and optimized.
Lazy regularization scales a phase by its interval and Adam's lr and betas by interval/(interval+1)
(StyleGAN2, appendix B). The loop never asks which method runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gankd.config import TrainConfig, to_yaml
from gankd.data.augment import make_augment
from gankd.data.dataset import ImageDataset
from gankd.data.spec import open_source
from gankd.errors import TrainingError
from gankd.fileio import atomic_write
from gankd.generate import seed_latents
from gankd.losses.adversarial import PathLength, discriminator_loss, generator_loss, r1_penalty
from gankd.methods import DataInfo, Nets, PhaseData, recipe_class
from gankd.progress import progress
from gankd.runs import CONFIG, checkpoints
from gankd.train.batches import StepBatches
from gankd.train.dist import Dist
from gankd.train.evaluation import RunEvaluator
from gankd.train.log import RunLog
from gankd.train.state import load_training_state, restore, rng_state, save_training_state, seed_streams

SAMPLES = 36  # fixed latents shown in every sample grid
W_AVG_BETA = 0.995  # G.w_avg tracks the mean w, for truncation


@dataclass
class TrainResult:
    run_dir: Path
    checkpoint: Path | None
    step: int
    nets: Nets


def training_loop(cfg: TrainConfig, run_dir: Path, resume: Path | None, dist: Dist) -> TrainResult:
    """Train (or go on training from the checkpoint `resume`) until `cfg.steps`; rank 0 writes
    `run_dir` (config.yaml, metrics, samples, checkpoints)."""
    dev = dist.device
    data = ImageDataset(open_source(cfg.data), cfg.res, cfg.channels, upscale=cfg.upscale)
    c_dim, per_rank = data.cond_dim, cfg.batch // dist.world  # divisible: checked by train.run

    torch.manual_seed(cfg.seed)  # the same initial networks on every rank, whatever their number
    recipe = recipe_class(cfg.method)(cfg)
    nets = recipe.build(DataInfo(data.channels, c_dim, len(data), data))
    memory = torch.channels_last if cfg.channels_last else torch.contiguous_format
    for net in [nets.G, nets.D, nets.G_ema, *nets.frozen.values(), *nets.aux.values()]:
        net.to(dev)
        for t in [*net.parameters(), *net.buffers()]:  # Module.to(memory_format) rejects 5-D weights
            if t.dim() == 4:
                t.data = t.data.contiguous(memory_format=memory)
    nets.G.train(), nets.D.train(), nets.G_ema.eval()
    trainable = recipe.trainable(nets)
    G, D, G_ema = nets.G, nets.D, nets.G_ema

    gamma, loss_kind = cfg.r1_gamma(), cfg.loss.kind
    intervals = {"G": cfg.loss.pl_interval if cfg.loss.pl_weight else 0, "D": cfg.loss.r1_interval if gamma else 0}
    optimizers = {name: _adam(trainable[name], lr, intervals[name], cfg)
                  for name, lr in (("G", cfg.optim.g_lr), ("D", cfg.optim.d_lr))}
    augment = make_augment(cfg.augment, cfg.batch)
    path_length = PathLength(cfg.loss.pl_decay).to(dev)
    parts = {"augment": augment, "path_length": path_length, "recipe": recipe}

    conds = torch.from_numpy(np.stack([data.source.cond(i) for i in range(len(data))])).float().to(dev) \
        if c_dim else None  # the labels fakes are drawn with
    # Before seeding: building the feature extractor draws random initial weights, and whether a
    # run is evaluated must not change its training randomness.
    evaluator = RunEvaluator(cfg, run_dir, data.channels, dev, conds) if cfg.eval.every and dist.main else None

    step = images = 0
    last_checkpoint = None
    if resume is not None:
        ckpt = load_training_state(resume)
        step, images = restore(ckpt, nets, optimizers, parts, dist.rank, dist.world)
        last_checkpoint = resume
    else:
        dist.broadcast([G, D, G_ema])
        seed_streams(cfg.seed, dist.rank)

    def latents(n: int):
        z = torch.randn(n, G.cfg.z_dim, device=dev)
        return z, (conds[torch.randint(len(conds), (n,), device=dev)] if c_dim else None)

    # The grids show seeds 0-35 as `gankd generate` draws them. Not torch.randn seeded with
    # cfg.seed: that stream also initialised the networks, so those latents would equal rows of
    # the first mapping layer's weights and map far from every typical w.
    sample_z = seed_latents(range(SAMPLES), G.cfg.z_dim).to(dev)
    fixed = torch.Generator().manual_seed(cfg.seed)
    sample_c = conds[torch.randint(len(conds), (SAMPLES,), generator=fixed).to(dev)] if c_dim else None

    if dist.main:  # only now: bad data, a bad source or bad eval settings leave nothing behind
        atomic_write(run_dir / CONFIG, to_yaml(cfg).encode())
    log = RunLog(run_dir, step, enabled=dist.main)
    if dist.main and resume is None:
        log.samples(0, _generate(G_ema, sample_z, sample_c))
    batches = StepBatches(len(data), cfg.batch, cfg.seed, dist.rank, dist.world, start=step, stop=cfg.steps)
    loader = torch.utils.data.DataLoader(  # its own generator: starting it must not draw from the global one
        data, batch_sampler=batches, num_workers=0 if data.images is not None else data.workers,
        pin_memory=dev.type == "cuda", generator=torch.Generator().manual_seed(cfg.seed))
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
    all_params = [p for net in (G, D, *nets.aux.values()) for p in net.parameters()]

    def train_only(name: str) -> None:
        for p in all_params:
            p.requires_grad_(False)
        for p in trainable[name]:
            p.requires_grad_(True)

    values: dict[str, float] = {}

    def styles(z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return mix_styles(G, z, c, cfg.loss.style_mixing if recipe.style_mixing(step) else 0.0)

    def optimize(name: str, phase: str, terms: dict[str, torch.Tensor], gain: int = 1) -> None:
        total = sum(terms.values())
        if dist.any(not bool(torch.isfinite(total))):
            bad = [k for k, v in terms.items() if not torch.isfinite(v)] or ["(another process)"]
            kept = f"the last good checkpoint is {last_checkpoint}" if last_checkpoint else "no checkpoint was written yet"
            raise TrainingError(f"non-finite loss in step {step + 1}, {phase} ({', '.join(bad)}); stopped, "
                                f"{kept}. Lower the learning rates or check the data")
        optimizers[name].zero_grad(set_to_none=True)
        (total * gain).backward()
        dist.average_gradients(trainable[name])
        optimizers[name].step()
        values.update({f"loss/{phase}/{k}": float(v.detach()) for k, v in terms.items()})

    logged = (time.perf_counter(), step)  # (time, step) of the last metrics line
    for real, real_c in progress(loader, "training", total=len(batches), unit="step"):
        real = real.to(dev, memory_format=memory, non_blocking=True)
        real_c = real_c.to(dev) if c_dim else None
        if cfg.mirror:
            real = random_flips(real)
        values.clear()

        # G_main: make D call fakes real.
        train_only("G")
        z, c = recipe.latents(step, *latents(per_rank))
        with autocast:
            ws = styles(z, c)
            fake, fake_features = G.synthesis(ws, return_features=True)
            fake_input = augment(fake)
            logits_fake, d_fake_features = D(fake_input, c, return_features=True)
            info = PhaseData(step, nets, real, real_c, z, c, fake, fake_features, logits_fake, d_fake_features,
                             d_fake_input=fake_input)
            adv_fake = recipe.adversarial_logits(step, logits_fake, d_fake_features)
            terms = {"adv": generator_loss(adv_fake, loss_kind), **recipe.losses("G_main", info)}
        optimize("G", "G_main", terms)
        with torch.no_grad():  # from the first latent's w
            w = ws if ws.ndim == 2 else ws[:, 0]
            G.w_avg.copy_(dist.mean(w.detach().float().mean(0)).lerp(G.w_avg, W_AVG_BETA))

        # G_reg: path-length regularization on a smaller batch, in fp32.
        if intervals["G"] and step % intervals["G"] == 0:
            z, c = latents(max(per_rank // cfg.loss.pl_batch_shrink, 1))
            ws = styles(z, c)
            ws = ws[:, None].repeat(1, G.num_ws, 1) if ws.ndim == 2 else ws
            fake = G.synthesis(ws)
            penalty = path_length(fake, ws, dist.mean)
            info = PhaseData(step, nets, real, real_c, z, c, fake)
            optimize("G", "G_reg", {"pl": penalty.mean() * cfg.loss.pl_weight, **recipe.losses("G_reg", info)},
                     gain=intervals["G"])

        # D_main: reals real, fakes fake.
        train_only("D")
        z, c = recipe.latents(step, *latents(per_rank))
        with autocast:
            with torch.no_grad():
                fake, fake_features = G.synthesis(styles(z, c), return_features=True)
            fake_input, real_input = augment(fake), augment(real)
            logits_fake, d_fake_features = D(fake_input, c, return_features=True)
            logits_real, d_real_features = D(real_input, real_c, return_features=True)
            augment.observe(logits_real)
            info = PhaseData(step, nets, real, real_c, z, c, fake, fake_features, logits_fake, d_fake_features,
                             logits_real, d_real_features, fake_input, real_input)
            adv_real = recipe.adversarial_logits(step, logits_real, d_real_features)
            adv_fake = recipe.adversarial_logits(step, logits_fake, d_fake_features)
            terms = {**discriminator_loss(adv_real, adv_fake, loss_kind), **recipe.losses("D_main", info)}
        optimize("D", "D_main", terms)

        # D_reg: lazy R1 on the augmented reals, in fp32.
        if intervals["D"] and step % intervals["D"] == 0:
            aug_real = augment(real).detach().requires_grad_(True)
            logits_real = D(aug_real, real_c)
            info = PhaseData(step, nets, real, real_c, logits_real=logits_real)
            optimize("D", "D_reg", {"r1": r1_penalty(logits_real, aug_real).mean() * (gamma / 2),
                                    **recipe.losses("D_reg", info)}, gain=intervals["D"])

        step += 1
        images += cfg.batch
        _update_ema(G_ema, G, cfg, images)
        augment.end_step(step, dist.sum)

        if step % cfg.log_every == 0 or step == cfg.steps:
            reduced = dist.sum(list(values.values()))
            scalars = {k: v / dist.world for k, v in zip(values, reduced)}
            now = time.perf_counter()
            timing = {"time/sec_per_step": (now - logged[0]) / (step - logged[1])}
            logged = (now, step)
            log.scalars(step, {**scalars, "kimg": images / 1000, "augment/p": augment.p, **timing})
        if step % cfg.sample_every == 0 or step == cfg.steps:
            log.samples(step, _generate(G_ema, sample_z, sample_c))
        if evaluator and (step % cfg.eval.every == 0 or step == cfg.steps):
            scores = evaluator(G_ema)
            log.scalars(step, scores)
            evaluator.keep_best(scores, step, nets)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            rngs = dist.gather(rng_state())
            if dist.main:
                last_checkpoint = save_training_state(run_dir, step, images, cfg, nets, optimizers, parts, rngs,
                                                      cfg.keep)
                log.status(step, cfg.steps, values)
            dist.barrier()
    log.close()
    found = checkpoints(run_dir)
    return TrainResult(run_dir, found[-1][1] if found else None, step, nets)


def mix_styles(G, z: torch.Tensor, c: torch.Tensor | None, probability: float) -> torch.Tensor:
    """w [B, w_dim] of z; with `probability`, the batch mixes in a second latent's w from a random
    layer on: [B, num_ws, w_dim] (StyleGAN2's mixing regularization). Draws no random numbers when
    `probability` is 0, so runs without mixing are as before."""
    ws = G.mapping(z, c)
    if not probability or float(torch.rand(())) >= probability:
        return ws
    cutoff = int(torch.randint(1, G.num_ws, ()))
    mixed = ws[:, None].repeat(1, G.num_ws, 1)
    mixed[:, cutoff:] = G.mapping(torch.randn_like(z), c)[:, None]
    return mixed


def random_flips(images: torch.Tensor) -> torch.Tensor:
    """Each image x-flipped with probability 1/2 (NVlabs' --mirror, drawn per step)."""
    flip = torch.rand(len(images), 1, 1, 1, device=images.device) < 0.5
    return torch.where(flip, images.flip(3), images)


def _adam(params, lr: float, reg_interval: int, cfg: TrainConfig) -> torch.optim.Adam:
    ratio = reg_interval / (reg_interval + 1) if reg_interval else 1.0
    return torch.optim.Adam(params, lr=lr * ratio, betas=(cfg.optim.beta1 ** ratio, cfg.optim.beta2 ** ratio),
                            eps=cfg.optim.eps)


@torch.no_grad()
def _update_ema(G_ema, G, cfg: TrainConfig, images: int) -> None:
    """G_ema <- beta G_ema + (1 - beta) G: beta = ema.decay per step if set, else from the half-life
    ema.kimg (ramped up early on); buffers copied."""
    half_life = cfg.ema.kimg * 1000
    if cfg.ema.rampup is not None:
        half_life = min(half_life, images * cfg.ema.rampup)
    beta = cfg.ema.decay if cfg.ema.decay is not None else 0.5 ** (cfg.batch / max(half_life, 1e-8))
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.copy_(p.detach().lerp(p_ema, beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)


@torch.no_grad()
def _generate(G, z: torch.Tensor, c: torch.Tensor | None, batch: int = 12) -> torch.Tensor:
    return torch.cat([G(z[i:i + batch], None if c is None else c[i:i + batch], noise_mode="const").float().cpu()
                      for i in range(0, len(z), batch)])
