"""D3T-GAN (Wu et al. 2022, arXiv 2205.06032): few-shot transfer with a data-dependent
transformation and multi-level discriminator distillation. No public code exists; METHODS.md §1
gives what the paper says and what is decided here (marked [decide] below).

Start: G_t, D_t are the source's G and D (as `finetune`); frozen copies G_s, D_s are teachers.

- Data-dependent transformation: each training shot x_i is inverted into G_s (`gankd.inversion`),
  giving w_i and the transformed sample G_s(w_i), once, at the first step (kept in checkpoints).
- Generator transfer, in G_main:
  `mmd`: MMD² (RBF, several bandwidths) between D_s features of generated samples G_t(z) and of
  the transformed samples [decide: D_s's `mmd_layer` tap, default its penultimate vector phi];
  `pair`: |G_t(w_i) - x_i|_1 + perceptual distance, tying the shots' latents to the shots [decide].
  The perceptual distance of the inversion and of the pair term is, by default, LPIPS-style on the
  frozen D_s's feature maps (`source_d`): never the evaluation extractor, which judges and must
  not teach (a registry extractor may be chosen, but not the run's `eval.features`).
- Discriminator transfer, in D_main: `kd_real`, `kd_fake`: sum_l lambda_l ||D_t^l - D_s^l||² on the
  inputs D_t saw (augmented reals and fakes), D_s frozen [decide: lambda_l uniform, per-element mean].

Every part switches off with a zero weight, and layers are lists, for the paper's ablations:
no-MMD (mmd_weight=0), no-DKD (kd_weight=0), single-level (kd_layers=b4), real only (kd_on=real).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from gankd.errors import ConfigError
from gankd.features import PERCEPTUAL, load_extractor
from gankd.features.discriminator import NAME as DISCRIMINATOR, DiscriminatorDistance
from gankd.inversion import SPACES, project
from gankd.losses.distill import feature_kd, mmd2_rbf
from gankd.methods.base import DataInfo, Nets, PhaseData
from gankd.methods.finetune import Finetune


def split_names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


class D3T(Finetune):
    name = "d3t"

    @dataclass
    class Options(Finetune.Options):
        invert_space: str = "w+"  # w or w+
        invert_steps: int = 200
        perceptual: str = DISCRIMINATOR  # perceptual distance of the inversion and the pair term
        perceptual_weight: float = 1.0
        mmd_weight: float = 1.0  # 0: the no-MMD ablation
        mmd_layer: str = "phi"  # the D_s feature tap the MMD compares
        mmd_bandwidths: str = "0.5,1,2,4"  # multiples of the median pairwise squared distance
        pair_weight: float = 1.0
        kd_weight: float = 1.0  # 0: the no-DKD ablation
        kd_layers: str = "blocks"  # D taps: "blocks" (every residual block) or a list such as b8,b4,phi
        kd_on: str = "real,fake"

    def __init__(self, cfg):
        super().__init__(cfg)
        o = self.options
        if o.invert_space not in SPACES:
            raise ConfigError(f"d3t.invert_space must be one of {', '.join(SPACES)}, not {o.invert_space!r}")
        choices = (DISCRIMINATOR, *PERCEPTUAL)
        if o.perceptual.partition(":")[0] not in choices:
            raise ConfigError(f"d3t.perceptual must be one of {', '.join(choices)}, not {o.perceptual!r}")
        if not set(split_names(o.kd_on)) <= {"real", "fake"} or not split_names(o.kd_on):
            raise ConfigError(f"d3t.kd_on must be real, fake or real,fake, not {o.kd_on!r}")
        try:
            self.bandwidths = tuple(float(b) for b in split_names(o.mmd_bandwidths))
        except ValueError:
            raise ConfigError(f"d3t.mmd_bandwidths must be numbers like 0.5,1,2, not {o.mmd_bandwidths!r}") from None
        self.w_shots: torch.Tensor | None = None  # the inverted shots, from the first step on
        self.shots: torch.Tensor | None = None
        self.transformed_features: torch.Tensor | None = None

    def build(self, data: DataInfo) -> Nets:
        nets = super().build(data)
        nets.frozen["G_s"] = copy.deepcopy(nets.G).eval().requires_grad_(False)
        nets.frozen["D_s"] = copy.deepcopy(nets.D).eval().requires_grad_(False)
        nets.frozen["perceptual"] = DiscriminatorDistance(nets.frozen["D_s"]) if self.options.perceptual == DISCRIMINATOR \
            else copy.deepcopy(load_extractor(self.options.perceptual))
        self.shots = torch.stack([data.dataset[i]["image"] for i in range(data.size)])
        self.shot_c = torch.stack([data.dataset[i]["c"] for i in range(data.size)]) if data.c_dim else None
        taps = [k for k in nets.D(self.shots[:1], self.labels(0, 1), return_features=True)[1]]
        blocks = [k for k in taps if k.startswith("b")][1:]  # the first b* tap is from-RGB
        self.kd_layers = blocks if self.options.kd_layers == "blocks" else split_names(self.options.kd_layers)
        unknown = [k for k in [*self.kd_layers, self.options.mmd_layer] if k not in taps]
        if unknown:
            raise ConfigError(f"d3t: the discriminator has no feature {unknown[0]!r}; it has {', '.join(taps)}")
        return nets

    def labels(self, start: int, stop: int) -> torch.Tensor | None:
        """The shots' own labels (DIP: their features) for D, or None for unconditional data."""
        return None if self.shot_c is None else self.shot_c[start:stop].to(self.shots.device)

    def teachers(self) -> list[str]:
        return [] if self.options.perceptual == DISCRIMINATOR else [self.options.perceptual]

    def _transformed(self, nets: Nets) -> None:
        """Invert the shots into G_s (once; deterministic); keep D_s's features of G_s(w_i) and the
        shots' perceptual vectors, which never change."""
        device = next(nets.G.parameters()).device
        self.shots = self.shots.to(device)
        if self.w_shots is None:
            self.w_shots = project(nets.frozen["G_s"], self.shots, nets.frozen["perceptual"], self.options.invert_steps,
                                   self.options.invert_space, self.options.perceptual_weight,
                                   label=f"d3t: inverting {len(self.shots)} shots").w
        self.w_shots = self.w_shots.to(device)
        D_s, group = nets.frozen["D_s"], nets.frozen["D_s"].cfg.mbstd_group
        self.shot_perceptual = nets.frozen["perceptual"].perceptual(self.shots)
        with torch.no_grad():  # in groups of D's minibatch-stddev size, whatever the number of shots
            transformed = nets.frozen["G_s"].synthesis(self.w_shots, noise_mode="const")
            self.transformed_features = torch.cat([
                D_s(transformed[i:i + group], self.labels(i, i + group), return_features=True)[1][self.options.mmd_layer].float()
                for i in range(0, len(transformed), group)])

    def losses(self, phase: str, data: PhaseData) -> dict[str, torch.Tensor]:
        o, nets = self.options, data.nets
        if self.transformed_features is None:
            with torch.autocast(self.shots.device.type, enabled=False):  # inversion in fp32, whatever the run
                self._transformed(nets)
        terms = {}
        if phase == "G_main":
            if o.mmd_weight:
                generated = nets.frozen["D_s"](data.fake, data.gen_c, return_features=True)[1][o.mmd_layer]
                terms["mmd"] = o.mmd_weight * mmd2_rbf(generated, self.transformed_features, self.bandwidths)
            if o.pair_weight:
                recon = nets.G.synthesis(self.w_shots, noise_mode="const").float()
                perceptual = nets.frozen["perceptual"]
                dist = (perceptual.perceptual(recon, grad=True) - self.shot_perceptual).pow(2).sum(1)
                terms["pair"] = o.pair_weight * ((recon - self.shots).abs().flatten(1).mean(1)
                                                 + o.perceptual_weight * dist).mean()
        elif phase == "D_main" and o.kd_weight:
            for kind in split_names(o.kd_on):
                inputs, student = ((data.d_real_input, data.d_real_features) if kind == "real"
                                   else (data.d_fake_input, data.d_fake_features))
                c = data.real_c if kind == "real" else data.gen_c
                with torch.no_grad():
                    teacher = nets.frozen["D_s"](inputs, c, return_features=True)[1]
                terms[f"kd_{kind}"] = o.kd_weight * feature_kd(student, teacher, self.kd_layers)
        return terms

    def state_dict(self) -> dict:
        return {} if self.w_shots is None else {"w_shots": self.w_shots.detach().cpu()}

    def load_state_dict(self, state: dict) -> None:
        # A copy in freshly allocated memory: tensors read from a file may sit at an alignment for
        # which CPU kernels take another path and round differently, and resume must be exact.
        self.w_shots = state["w_shots"].clone() if "w_shots" in state else None
