"""What the viewer can do with each model family, through the functions the commands use: a latent
generator samples seeds (`gankd generate`'s sampler), blends two seeds in w and projects an
uploaded image (`gankd project`'s inversion); a translation model translates an upload (as `gankd
translate`); an aging model renders an upload at any value of its range (as `gankd age`).

Each action returns a uint8 image [H, W, C] and a few facts to show beside it."""

from __future__ import annotations

import math

import numpy as np
import torch

from gankd.checkpoint import Checkpoint, load_checkpoint
from gankd.errors import GankdError
from gankd.images import to_uint8
from gankd.seeds import check_seed

MAX_PROJECTION_STEPS = 1000
MAX_TRUNCATION = 2.0


def decoded(data: bytes, channels: int, resolution: int) -> torch.Tensor:
    """An uploaded image as a model's input [1, C, R, R] in [-1, 1]: centre crop and antialiased
    resize, channels converted, as training data is prepared."""
    from gankd.data.dataset import convert_channels, crop_resize
    from gankd.data.folder import decode_image

    pixels = crop_resize(convert_channels(decode_image(data, "the uploaded image"), channels), resolution)
    return torch.tensor(pixels).permute(2, 0, 1)[None].float() / 127.5 - 1


def check_range(name: str, value: float, low: float, high: float) -> None:
    if not (math.isfinite(value) and low <= value <= high):
        raise GankdError(f"{name} must be in {low:g}..{high:g}, not {value:g}")


class Served:
    """A loaded checkpoint with the actions of its family (`actions`: names of methods)."""

    actions: tuple[str, ...] = ()

    def __init__(self, name: str, ckpt: Checkpoint, device: str):
        self.name, self.arch, self.device = name, ckpt.meta["arch"], torch.device(device)
        self.config = ckpt.config

    def describe(self) -> dict:
        """What the page needs to show this model's controls."""
        return {"name": self.name, "family": self.family, "arch": self.arch, "resolution": self.config.resolution,
                "actions": list(self.actions)}

    def upload(self, data: bytes, channels: int) -> torch.Tensor:
        return decoded(data, channels, self.config.resolution).to(self.device)


class LatentModel(Served):
    family, actions = "latent", ("sample", "project")

    def __init__(self, name: str, ckpt: Checkpoint, device: str):
        super().__init__(name, ckpt, device)
        self.G, self.prior = ckpt.generator().to(self.device), ckpt.prior()
        self.classes = 0 if self.prior.conditions else self.G.cfg.c_dim  # classes the user must choose among

    def describe(self) -> dict:
        return {**super().describe(), "classes": self.classes}

    def labels(self, class_index: int | None, n: int) -> torch.Tensor | None:
        from gankd.generate import class_labels

        c = class_labels(self.G, self.prior, class_index if self.classes else None, n)
        return None if c is None else c.to(self.device)

    @torch.no_grad()
    def sample(self, seed: int, truncation: float = 1.0, class_index: int | None = None, toward: int | None = None,
               t: float = 0.0) -> tuple[np.ndarray, dict]:
        """The seed's image, as `gankd generate --seeds SEED --trunc TRUNCATION` draws it; with
        `toward`, the image at t of the straight line in w from this seed to that one."""
        from gankd.families.latent import render

        check_seed(seed)
        check_range("truncation", truncation, 0, MAX_TRUNCATION)
        check_range("t", t, 0, 1)
        if toward is None or t == 0:
            image = next(render(self.G, [seed], self.prior, self.labels(class_index, 1), truncation, "const"))
        else:
            check_seed(toward, "the seed to blend toward")
            ws = self.styles([seed, toward], self.labels(class_index, 2))
            image = self.G.synthesis(self.G.w_avg.lerp(ws[:1].lerp(ws[1:], t), truncation), noise_mode="const")
        return to_uint8(image)[0], {"seed": seed}

    def styles(self, seeds: list[int], c: torch.Tensor | None) -> torch.Tensor:
        """w of each seed under the checkpoint's prior, before truncation."""
        inputs = {k: v.to(self.device) for k, v in self.prior.inputs(seeds, self.G).items()}
        return inputs["ws"] if "ws" in inputs else self.G.mapping(inputs["z"], inputs.get("c", c))

    def project(self, image: bytes, steps: int = 100) -> tuple[np.ndarray, dict]:
        """The generator's closest image to the upload (`gankd project`'s W+ inversion with the
        domain perceptual distance), and the pixel error before and after."""
        from gankd.features import load_extractor
        from gankd.inversion import project

        check_range("steps", steps, 1, MAX_PROJECTION_STEPS)
        target = self.upload(image, self.G.cfg.img_channels)
        result = project(self.G, target, load_extractor("domain", None, "clean", str(self.device)), steps)
        return to_uint8(result.images)[0], {"pixel_l1": [result.start["pixel_l1"][0], result.end["pixel_l1"][0]]}


class TranslationModel(Served):
    family, actions = "translation", ("translate",)

    def __init__(self, name: str, ckpt: Checkpoint, device: str):
        super().__init__(name, ckpt, device)
        from gankd.translate import direction_role

        directions = ("ab", "ba") if "G_BA" in ckpt.roles else ("ab",)
        self.generators = {d: ckpt.network(direction_role(ckpt, d)).to(self.device) for d in directions}

    def describe(self) -> dict:
        return {**super().describe(), "directions": list(self.generators)}

    @torch.no_grad()
    def translate(self, image: bytes, direction: str = "ab") -> tuple[np.ndarray, dict]:
        """The upload translated A to B (`ab`) or, by a CycleGAN model, B to A (`ba`)."""
        from gankd.families.translation import translate

        if direction not in self.generators:
            raise GankdError(f"direction must be one of {', '.join(self.generators)}, not {direction!r}")
        source = self.upload(image, self.config.in_channels)
        return to_uint8(translate(self.generators[direction], source))[0], {"direction": direction}


class AgingModel(Served):
    family, actions = "aging", ("age",)

    def __init__(self, name: str, ckpt: Checkpoint, device: str):
        super().__init__(name, ckpt, device)
        self.G = ckpt.network("G").to(self.device)

    def describe(self) -> dict:
        cfg = self.config
        return {**super().describe(), "range": [cfg.min_age, cfg.max_age], "step": cfg.age_step}

    @torch.no_grad()
    def age(self, image: bytes, value: float) -> tuple[np.ndarray, dict]:
        """The upload rendered at `value`, and the model's own estimate of the value it shows."""
        from gankd.families.aging import render

        check_range("value", value, self.config.min_age, self.config.max_age)
        output = render(self.G, self.upload(image, self.config.channels), torch.tensor([value]))[:, 0]
        return to_uint8(output)[0], {"value": value, "estimate": float(self.G.expected(self.G.classify(output)))}


SERVED = {cls.family: cls for cls in (LatentModel, TranslationModel, AgingModel)}


def load_models(ckpts: list[str], device: str) -> list[Served]:
    """Every checkpoint loaded onto `device` before anything is served: a bad one stops here."""
    models = []
    for name in ckpts:
        ckpt = load_checkpoint(name)
        models.append(SERVED[ckpt.architecture.family](str(name), ckpt, device))
    return models
