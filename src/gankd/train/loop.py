"""The training loop: one function over the phases a model family declares, for every method.

Each step runs the family's due phases in order (for StyleGAN2's latent family: G_main, G_reg
every `loss.pl_interval` steps, D_main, D_reg every `loss.r1_interval` steps); then the family's
end of step (G_ema) and the augmentation's adjustment. Every phase's loss is a dict of named
terms: the family's own (`adv`, `adv_real`, `adv_fake`, `r1`, `pl`) plus whatever the recipe adds;
they are summed, checked for finiteness, logged as `loss/<phase>/<term>`, and optimized by the
phase's optimizer, one per key of the recipe's `trainable`. Lazy regularization scales a phase by
its interval and Adam's lr and betas by interval/(interval+1) (StyleGAN2, appendix B). The loop
never asks which family or method runs.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from gankd.config import TrainConfig, to_yaml
from gankd.data.augment import make_augment
from gankd.errors import TrainingError
from gankd.families import FAMILIES
from gankd.fileio import atomic_write
from gankd.methods import Nets, recipe_class
from gankd.precision import resolved
from gankd.progress import progress
from gankd.runs import CONFIG, checkpoints, record_command
from gankd.train.batches import StepBatches
from gankd.train.dist import Dist
from gankd.train.evaluation import RunEvaluator
from gankd.train.log import RunLog
from gankd.train.state import load_training_state, restore, rng_state, save_training_state, seed_streams

@dataclass
class TrainResult:
    run_dir: Path
    checkpoint: Path | None
    step: int
    nets: Nets


def training_loop(cfg: TrainConfig, run_dir: Path, resume: Path | None, dist: Dist) -> TrainResult:
    """Train (or go on training from the checkpoint `resume`) until `cfg.steps`; rank 0 writes
    `run_dir` (config.yaml, metrics, samples, checkpoints). `cfg` gets the precision resolved for
    the device, which the run stores."""
    dev = dist.device
    cfg.precision, cfg.channels_last = resolved(cfg.precision, cfg.channels_last, dev)
    family_class = FAMILIES[recipe_class(cfg.method).family]
    data = family_class.dataset(cfg)

    torch.manual_seed(cfg.seed)  # the same initial networks on every rank, whatever their number
    recipe = recipe_class(cfg.method)(cfg)
    described = family_class.data_info(data)
    nets = recipe.build(described)
    memory = torch.channels_last if cfg.channels_last else torch.contiguous_format
    for net in nets.all():
        net.to(dev)
    lay_out(nets, memory)
    nets.train_mode()
    trainable = recipe.trainable(nets)

    augment = make_augment(cfg.augment, cfg.batch)
    family = family_class(cfg, nets, recipe, data, augment, dist, memory)
    phases = family.phases()
    lazy = {p.optimizer: p.every for p in phases if p.lazy}
    optimizers = {name: _adam(params, getattr(cfg.optim, f"{name.lower()}_lr"), lazy.get(name, 0), cfg)
                  for name, params in trainable.items()}
    parts = {"augment": augment, **family.parts(), "recipe": recipe}

    # Before seeding: building the feature extractor draws random initial weights, and whether a
    # run is evaluated must not change its training randomness.
    evaluator = RunEvaluator(cfg, run_dir, family_class, described.out_channels or described.img_channels, dev) \
        if cfg.eval.every and dist.main else None

    step = images = 0
    last_checkpoint = None
    if resume is not None:
        ckpt = load_training_state(resume)
        step, images = restore(ckpt, nets, optimizers, parts, dist.rank, dist.world)
        last_checkpoint = resume
    else:
        dist.broadcast(list(nets.trained().values()))
        seed_streams(cfg.seed, dist.rank)

    if dist.main:  # only now: bad data, a bad source or bad eval settings leave nothing behind
        atomic_write(run_dir / CONFIG, to_yaml(cfg).encode())
        record_command(run_dir)
    log = RunLog(run_dir, step, cfg.logger, cfg.to_dict(), enabled=dist.main)
    if dist.main and resume is None:
        log.samples(0, family.grid())
    batches = StepBatches(len(data), cfg.batch, cfg.seed, dist.rank, dist.world, start=step, stop=cfg.steps)
    loader = torch.utils.data.DataLoader(  # its own generator: starting it must not draw from the global one
        data, batch_sampler=batches, num_workers=0 if data.in_memory else data.workers,
        pin_memory=dev.type == "cuda", generator=torch.Generator().manual_seed(cfg.seed))
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
    all_params = [p for net in nets.learning() for p in net.parameters()]

    def train_only(name: str) -> None:
        for p in all_params:
            p.requires_grad_(False)
        for p in trainable[name]:
            p.requires_grad_(True)

    values: dict[str, float] = {}

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
    for item in progress(loader, "training", total=len(batches), unit="step"):
        batch = family.batch(item)
        values.clear()
        if cfg.optim.decay_from is not None:
            set_rates(optimizers, learning_rate_factor(step, cfg))
        for phase in phases:
            if not phase.due(step):
                continue
            train_only(phase.optimizer)
            with autocast if phase.autocast else contextlib.nullcontext():
                terms, info = family.terms(phase.name, step, batch)
                terms.update(recipe.losses(phase.name, info))
            optimize(phase.optimizer, phase.name, terms, gain=phase.gain)
            family.after(phase.name)

        step += 1
        images += cfg.batch
        family.end_step(step, images)
        augment.end_step(step, dist.sum)

        if step % cfg.log_every == 0 or step == cfg.steps:
            reduced = dist.sum(list(values.values()))
            scalars = {k: v / dist.world for k, v in zip(values, reduced)}
            now = time.perf_counter()
            timing = {"time/sec_per_step": (now - logged[0]) / (step - logged[1])}
            logged = (now, step)
            log.scalars(step, {**scalars, "kimg": images / 1000, "augment/p": augment.p, **timing})
            log.status(step, cfg.steps, scalars)
        if step % cfg.sample_every == 0 or step == cfg.steps:
            log.samples(step, family.grid())
        if evaluator and (step % cfg.eval.every == 0 or step == cfg.steps):
            lay_out(nets, torch.contiguous_format)  # as a loaded checkpoint is: `gankd evaluate`'s numbers exactly
            scores = evaluator(family)
            lay_out(nets, memory)
            log.scalars(step, scores)
            evaluator.keep_best(scores, step, nets)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            rngs = dist.gather(rng_state())
            if dist.main:
                last_checkpoint = save_training_state(run_dir, step, images, cfg, nets, optimizers, parts, rngs,
                                                      cfg.keep)
            dist.barrier()
    log.close()
    found = checkpoints(run_dir)
    return TrainResult(run_dir, found[-1][1] if found else None, step, nets)


def _adam(params, lr: float, reg_interval: int, cfg: TrainConfig) -> torch.optim.Adam:
    ratio = reg_interval / (reg_interval + 1) if reg_interval else 1.0
    optimizer = torch.optim.Adam(params, lr=lr * ratio, betas=(cfg.optim.beta1 ** ratio, cfg.optim.beta2 ** ratio),
                                 eps=cfg.optim.eps)
    for group in optimizer.param_groups:
        group["base_lr"] = group["lr"]
    return optimizer


def learning_rate_factor(step: int, cfg: TrainConfig) -> float:
    """1 until `optim.decay_from` of the steps, then linearly down to 0 at the last step (pix2pix's and
    CycleGAN's `linear` policy: the rate of step s is lr * (1 - max(0, s - start) / (steps - start)))."""
    start = int(cfg.optim.decay_from * cfg.steps)
    return 1.0 - max(0, step - start) / max(cfg.steps - start, 1)


def set_rates(optimizers: dict, factor: float) -> None:
    for optimizer in optimizers.values():
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor


def lay_out(nets: Nets, memory: torch.memory_format) -> None:
    """Every 4-D parameter and buffer of the networks in `memory` layout (channels_last makes bf16
    convolutions fast on CPUs; Module.to(memory_format) would reject StyleGAN2's 5-D weights)."""
    for net in nets.all():
        for t in [*net.parameters(), *net.buffers()]:
            if t.dim() == 4:
                t.data = t.data.contiguous(memory_format=memory)
