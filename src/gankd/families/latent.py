"""The latent family: the path from a random latent to an image, for StyleGAN2 and BigGAN.

Fakes come from z (and a label c for conditional data) through G's mapping (with style mixing at
probability `loss.style_mixing`, where the recipe allows it and G has several style inputs) and
synthesis; D judges augmented fakes and reals. Phases: G_main (non-saturating or hinge), G_reg
(path length, lazy), D_main (+ LeCam with `loss.lecam`), D_reg (R1, lazy). A step is one D step;
G's phases run every `loss.d_steps` steps (BigGAN: 4 D steps per G step). G's running w average
(for truncation) follows each G_main; G_ema follows G after each G step (half-life `ema.kimg` or
a fixed `ema.decay`). Reals are x-flipped at random with
`mirror`. Every sample (grids, evaluation here and in `gankd evaluate`, `gankd generate`, the
comparison pictures) goes through `render`: seeds -> the recipe's prior (NVlabs' seeded z by
default) -> G.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from gankd.data.dataset import ImageDataset
from gankd.data.spec import open_source
from gankd.errors import ConfigError
from gankd.families.base import Family, Phase
from gankd.images import to_uint8
from gankd.metrics import NEEDS_TRUTH
from gankd.losses.adversarial import LeCam, PathLength, discriminator_loss, generator_loss, r1_penalty
from gankd.methods.base import DataInfo, PhaseData
from gankd.priors import Normal, Prior

SAMPLES = 36  # fixed latents shown in every sample grid
W_AVG_BETA = 0.995  # G.w_avg tracks the mean w, for truncation


@torch.no_grad()
def render(G, seeds, prior: Prior | None = None, c: torch.Tensor | None = None, truncation: float = 1.0,
           noise_mode: str = "random", batch_size: int = 64) -> Iterator[torch.Tensor]:
    """G's images (float, about [-1, 1]) for `seeds`, a batch at a time: each seed's inputs from the
    prior (default: NVlabs' seeded z), labels from the prior or from `c` (one row per seed). Random
    noise is seeded by each batch's first seed, outside the caller's random streams, so equal seeds
    and batch size give equal images in every command."""
    prior, seeds = prior or Normal(), list(seeds)
    device = next(G.parameters()).device
    for start in range(0, len(seeds), batch_size):
        part = seeds[start:start + batch_size]
        inputs = {k: v.to(device) for k, v in prior.inputs(part, G).items()}
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(part[0])
            if "ws" in inputs:
                yield G.synthesis(G.w_avg.lerp(inputs["ws"], truncation), noise_mode=noise_mode)
            else:
                labels = inputs.get("c", None if c is None else c[start:start + len(part)].to(device))
                yield G(inputs["z"], labels, truncation_psi=truncation, noise_mode=noise_mode)


def mix_styles(G, z: torch.Tensor, c: torch.Tensor | None, probability: float) -> torch.Tensor:
    """w [B, w_dim] of z; with `probability`, the batch mixes in a second latent's w from a random
    layer on: [B, num_ws, w_dim] (StyleGAN2's mixing regularization). Draws no random numbers when
    `probability` is 0, so runs without mixing are as before."""
    ws = G.mapping(z, c)
    if not probability or G.num_ws < 2 or float(torch.rand(())) >= probability:
        return ws
    cutoff = int(torch.randint(1, G.num_ws, ()))
    mixed = ws[:, None].repeat(1, G.num_ws, 1)
    mixed[:, cutoff:] = G.mapping(torch.randn_like(z), c)[:, None]
    return mixed


def random_flips(images: torch.Tensor) -> torch.Tensor:
    """Each image x-flipped with probability 1/2 (NVlabs' --mirror, drawn per step)."""
    flip = torch.rand(len(images), 1, 1, 1, device=images.device) < 0.5
    return torch.where(flip, images.flip(3), images)


@torch.no_grad()
def update_ema(G_ema, G, cfg, images: int) -> None:
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


class LatentFamily(Family):
    name = "latent"

    @staticmethod
    def dataset(cfg) -> ImageDataset:
        return ImageDataset(open_source(cfg.data), cfg.res, cfg.channels, upscale=cfg.upscale)

    @staticmethod
    def data_info(data: ImageDataset) -> DataInfo:
        return DataInfo(data.channels, data.cond_dim, len(data), data)

    @staticmethod
    def check(cfg) -> None:
        try:  # channels and labels come from the data later
            cfg.arch_config(img_channels=3, c_dim=0)
        except ValueError as err:
            raise ConfigError(f"arch: {err}") from None
        paired = [m for m in cfg.eval.metrics.split(",") if m.strip() in NEEDS_TRUTH]
        if cfg.eval.every and paired:
            raise ConfigError(f"eval.metrics: {', '.join(paired)} need ground truth, which a generator's samples "
                              "do not have (translation models only)")

    def __init__(self, cfg, nets, recipe, data, augment, dist, memory):
        self.cfg, self.nets, self.recipe, self.augment, self.dist, self.memory = cfg, nets, recipe, augment, dist, memory
        self.dev, self.per_rank = dist.device, cfg.batch // dist.world  # divisible: checked by train.run
        self.c_dim = data.cond_dim
        self.conds = torch.from_numpy(np.stack([data.cond(i) for i in range(len(data))])).float().to(self.dev) \
            if self.c_dim else None  # the labels fakes are drawn with
        self.path_length = PathLength(cfg.loss.pl_decay).to(self.dev)
        self.lecam = LeCam(cfg.loss.lecam_decay).to(self.dev)
        self.gamma = cfg.r1_gamma()
        # The grids show seeds 0-35 as `gankd generate` draws them. Not torch.randn seeded with
        # cfg.seed: that stream also initialised the networks, so those latents would equal rows of
        # the first mapping layer's weights and map far from every typical w.
        fixed = torch.Generator().manual_seed(cfg.seed)
        self.sample_c = self.conds[torch.randint(len(self.conds), (SAMPLES,), generator=fixed).to(self.dev)] \
            if self.c_dim else None
        self._ws = None

    def phases(self) -> list[Phase]:
        loss = self.cfg.loss
        return [Phase("G_main", "G", loss.d_steps),
                Phase("G_reg", "G", loss.pl_interval * loss.d_steps if loss.pl_weight else 0, True, False),
                Phase("D_main", "D"), Phase("D_reg", "D", loss.r1_interval if self.gamma else 0, True, False)]

    def parts(self) -> dict:
        return {"path_length": self.path_length, "lecam": self.lecam}

    def batch(self, item: dict) -> dict:
        real = item["image"].to(self.dev, memory_format=self.memory, non_blocking=True)
        real_c = item["c"].to(self.dev) if self.c_dim else None
        if self.cfg.mirror:
            real = random_flips(real)
        return {"real": real, "real_c": real_c}

    def latents(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        z = torch.randn(n, self.nets.G.cfg.z_dim, device=self.dev)
        return z, (self.conds[torch.randint(len(self.conds), (n,), device=self.dev)] if self.c_dim else None)

    def styles(self, step: int, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return mix_styles(self.nets.G, z, c, self.cfg.loss.style_mixing if self.recipe.style_mixing(step) else 0.0)

    def terms(self, phase: str, step: int, batch: dict) -> tuple[dict[str, torch.Tensor], PhaseData]:
        return getattr(self, f"_{phase.lower()}")(step, batch["real"], batch["real_c"])

    def _g_main(self, step, real, real_c):
        """Make D call fakes real."""
        nets, recipe, augment = self.nets, self.recipe, self.augment
        z, c = recipe.latents(step, *self.latents(self.per_rank))
        self._ws = ws = self.styles(step, z, c)
        fake, fake_features = nets.G.synthesis(ws, return_features=True)
        fake_input = augment(fake)
        logits_fake, d_fake_features = nets.D(fake_input, c, return_features=True)
        info = PhaseData(step, nets, real, real_c, z, c, fake, fake_features, logits_fake, d_fake_features,
                         d_fake_input=fake_input)
        adv_fake = recipe.adversarial_logits(step, logits_fake, d_fake_features)
        return {"adv": generator_loss(adv_fake, self.cfg.loss.kind)}, info

    def _g_reg(self, step, real, real_c):
        """Path-length regularization on a smaller batch, in fp32."""
        G = self.nets.G
        z, c = self.latents(max(self.per_rank // self.cfg.loss.pl_batch_shrink, 1))
        ws = self.styles(step, z, c)
        ws = ws[:, None].repeat(1, G.num_ws, 1) if ws.ndim == 2 else ws
        fake = G.synthesis(ws)
        penalty = self.path_length(fake, ws, self.dist.mean)
        return {"pl": penalty.mean() * self.cfg.loss.pl_weight}, PhaseData(step, self.nets, real, real_c, z, c, fake)

    def _d_main(self, step, real, real_c):
        """Reals real, fakes fake."""
        nets, recipe, augment = self.nets, self.recipe, self.augment
        z, c = recipe.latents(step, *self.latents(self.per_rank))
        with torch.no_grad():
            fake, fake_features = nets.G.synthesis(self.styles(step, z, c), return_features=True)
        fake_input, real_input = augment(fake), augment(real)
        logits_fake, d_fake_features = nets.D(fake_input, c, return_features=True)
        logits_real, d_real_features = nets.D(real_input, real_c, return_features=True)
        augment.observe(logits_real)
        info = PhaseData(step, nets, real, real_c, z, c, fake, fake_features, logits_fake, d_fake_features,
                         logits_real, d_real_features, fake_input, real_input)
        adv_real = recipe.adversarial_logits(step, logits_real, d_real_features)
        adv_fake = recipe.adversarial_logits(step, logits_fake, d_fake_features)
        terms = discriminator_loss(adv_real, adv_fake, self.cfg.loss.kind)
        loss = self.cfg.loss
        if loss.lecam:  # its averages follow D from the start; the term counts from lecam_start on
            warm = step >= loss.lecam_start
            penalty = self.lecam(adv_real, adv_fake, self.dist.mean, warm)
            if warm:
                terms["lecam"] = loss.lecam * penalty
        return terms, info

    def _d_reg(self, step, real, real_c):
        """Lazy R1 on the augmented reals, in fp32."""
        aug_real = self.augment(real).detach().requires_grad_(True)
        logits_real = self.nets.D(aug_real, real_c)
        info = PhaseData(step, self.nets, real, real_c, logits_real=logits_real)
        return {"r1": r1_penalty(logits_real, aug_real).mean() * (self.gamma / 2)}, info

    def after(self, phase: str) -> None:
        if phase == "G_main":
            with torch.no_grad():  # from the first latent's w
                G, ws = self.nets.G, self._ws
                w = ws if ws.ndim == 2 else ws[:, 0]
                G.w_avg.copy_(self.dist.mean(w.detach().float().mean(0)).lerp(G.w_avg, W_AVG_BETA))

    def end_step(self, step: int, images: int) -> None:
        if (step - 1) % self.cfg.loss.d_steps == 0:  # G changed in this step
            update_ema(self.nets.G_ema, self.nets.G, self.cfg, images)

    @staticmethod
    def evaluation_sets(cfg):
        """`eval.ref` (a split folder: its eval/ images) or else the data; and the data."""
        from gankd.data.splits import load_split

        train = open_source(cfg.data)
        if not cfg.eval.ref:
            return train, train
        if (Path(cfg.eval.ref) / "manifest.json").is_file():
            return load_split(cfg.eval.ref)[1], train
        return open_source(cfg.eval.ref), train

    def grid(self) -> torch.Tensor:
        return torch.cat([images.float().cpu() for images in render(
            self.nets.G_ema, range(SAMPLES), self.recipe.prior(), self.sample_c, noise_mode="const", batch_size=12)])

    def evaluation_images(self, n: int, noise: str) -> torch.Tensor:
        """G_ema on seeds 0..n-1, as `gankd evaluate` samples a checkpoint; labels cycle through the
        data's, deterministically."""
        c = self.conds[torch.arange(n, device=self.dev) % len(self.conds)] if self.conds is not None else None
        return torch.cat([torch.from_numpy(to_uint8(images)).permute(0, 3, 1, 2)
                          for images in render(self.nets.G_ema, range(n), self.recipe.prior(), c, noise_mode=noise)])
