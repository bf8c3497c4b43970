"""Networks, and the registry that checkpoints use to rebuild them from their configs.

An architecture is a config class, the network class of each role a checkpoint may hold, the
model family that trains and samples it (gankd.families), and what `gankd info` says about a
config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gankd.nets import biggan
from gankd.nets.aging import AgingConfig, AgingDiscriminator, AgingGenerator
from gankd.nets.biggan import BigGANConfig
from gankd.nets.stylegan2 import Discriminator, Generator, StyleGAN2Config
from gankd.nets.translation import PatchDiscriminator, TranslationConfig, Translator


@dataclass(frozen=True)
class Architecture:
    config: type
    networks: dict[str, type]  # role -> class
    family: str
    describe: Callable[[object], dict]


def describe_stylegan2(cfg: StyleGAN2Config) -> dict:
    shown = ("conv_clamp", "d_architecture", "d_cond", "d_cmap_layers", "mbstd_group")  # when not the default
    extras = {k: getattr(cfg, k) for k in shown if getattr(cfg, k) != StyleGAN2Config.__dataclass_fields__[k].default}
    return {"resolution": cfg.resolution, "image channels": cfg.img_channels, "conditioning dims": cfg.c_dim,
            "z/w dims": f"{cfg.z_dim}/{cfg.w_dim}", "mapping layers": cfg.n_mlp,
            "channels": {f"{2 ** r}": cfg.channels(2 ** r) for r in range(2, cfg.log_size + 1)}, **extras}


def describe_biggan(cfg: BigGANConfig) -> dict:
    return {"resolution": cfg.resolution, "image channels": cfg.img_channels, "conditioning dims": cfg.c_dim,
            "z dims": cfg.z_dim, "channels G/D": f"{4 * cfg.ch}/{4 * cfg.d_ch}",
            **({"label embedding": cfg.shared_dim} if cfg.c_dim else {})}


def describe_translation(cfg: TranslationConfig) -> dict:
    return {"resolution": cfg.resolution, "channels in/out": f"{cfg.in_channels}/{cfg.out_channels}",
            "generator": f"{cfg.generator}, ngf {cfg.ngf}, {cfg.norm} norm" + (", dropout" if cfg.dropout else ""),
            "PatchGAN": f"{cfg.d_layers} layers, ndf {cfg.ndf}, sees "
                             + ("input and output" if cfg.d_input == "pair" else "the output alone"),
            "condition dims": cfg.cond_dim}


def describe_aging(cfg: AgingConfig) -> dict:
    return {"resolution": cfg.resolution, "image channels": cfg.channels,
            "ages": f"{cfg.min_age:g}-{cfg.max_age:g} in {cfg.classes} classes of {cfg.age_step:g}",
            "generator": f"ngf {cfg.ngf}, {cfg.enc_blocks}+{cfg.dec_blocks} blocks, {cfg.inject} decoder",
            "age embedding": f"residual {cfg.residual}, basis {cfg.basis} ({cfg.interpolate}), estimator {cfg.estimator}",
            "PatchGAN": f"{cfg.d_layers} layers, ndf {cfg.ndf}"}


ARCHITECTURES = {
    "stylegan2": Architecture(StyleGAN2Config, {"G": Generator, "G_ema": Generator, "D": Discriminator}, "latent",
                              describe_stylegan2),
    "biggan": Architecture(BigGANConfig, {"G": biggan.Generator, "G_ema": biggan.Generator, "D": biggan.Discriminator},
                           "latent", describe_biggan),
    "translation": Architecture(TranslationConfig, {"G": Translator, "G_AB": Translator, "G_BA": Translator,
                                                    "D": PatchDiscriminator, "D_A": PatchDiscriminator,
                                                    "D_B": PatchDiscriminator}, "translation", describe_translation),
    "aging": Architecture(AgingConfig, {"G": AgingGenerator, "D": AgingDiscriminator}, "aging", describe_aging),
}

__all__ = ["ARCHITECTURES", "Architecture", "BigGANConfig", "Discriminator", "Generator", "PatchDiscriminator", "StyleGAN2Config",
           "TranslationConfig", "Translator"]
