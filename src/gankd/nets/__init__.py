"""Networks, and the registry that checkpoints use to rebuild them from their configs."""

from gankd.nets.stylegan2 import Discriminator, Generator, StyleGAN2Config

# architecture name -> (config class, {network role: class})
ARCHITECTURES = {
    "stylegan2": (StyleGAN2Config, {"G": Generator, "G_ema": Generator, "D": Discriminator}),
}

__all__ = ["ARCHITECTURES", "Discriminator", "Generator", "StyleGAN2Config"]
