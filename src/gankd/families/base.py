"""The model-family interface: how a batch becomes fakes, what D sees, and how a trained model
samples. The training loop (train/loop.py) runs a family's phases without knowing which family or
method it runs; a recipe names its family (`Recipe.family`).

A family declares its phases in order (`Phase`): each has an optimizer (a key of the recipe's
`trainable`), an interval (0: off; > 1: lazy, its loss scaled by the interval and its optimizer's
Adam settings corrected as in StyleGAN2, appendix B) and whether it runs under bf16 autocast.
For each due phase the loop asks `terms(phase, step, batch)` for the family's named loss terms and
the `PhaseData` a recipe's own terms read, adds the recipe's terms, and optimizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Phase:
    name: str  # one of methods.PHASES
    optimizer: str  # the key of recipe.trainable() it updates
    every: int = 1  # run when step % every == 0; 0: never
    lazy: bool = False  # a regularizer run every `every` steps, scaled up by `every`
    autocast: bool = True  # under bf16 autocast when precision=bf16

    def due(self, step: int) -> bool:
        return bool(self.every) and step % self.every == 0

    @property
    def gain(self) -> int:
        return self.every if self.lazy else 1


class Family:
    """Base class; see gankd.families.latent for the StyleGAN2 family."""

    name = "?"

    @staticmethod
    def dataset(cfg) -> torch.utils.data.Dataset:
        """The training data of `cfg.data` (items: dicts of tensors)."""
        raise NotImplementedError

    @staticmethod
    def check(cfg) -> None:
        """Refuse settings of this family's networks that cannot work (ConfigError), before any work."""

    @staticmethod
    def data_info(data) -> object:
        """The `DataInfo` a recipe's `build` reads."""
        raise NotImplementedError

    def phases(self) -> list[Phase]:
        raise NotImplementedError

    def parts(self) -> dict:
        """Objects with state_dict()/load_state_dict() the checkpoints keep (e.g. path-length mean)."""
        return {}

    def batch(self, item: dict) -> dict:
        """A loader item (dict of tensors) on the device, with the family's data-level randomness."""
        raise NotImplementedError

    def terms(self, phase: str, step: int, batch: dict) -> tuple[dict[str, torch.Tensor], object]:
        """(the family's named loss terms, the PhaseData a recipe's terms read) of `phase`."""
        raise NotImplementedError

    def after(self, phase: str) -> None:
        """After `phase` was optimized (running statistics such as StyleGAN2's w average)."""

    def end_step(self, step: int, images: int) -> None:
        """After every phase of a step (moving averages of the networks)."""

    def grid(self) -> torch.Tensor:
        """The images of a training sample grid, float in [-1, 1] on the CPU."""
        raise NotImplementedError

    def evaluation_images(self, n: int, noise: str) -> torch.Tensor:
        """uint8 [n, C, R, R] of the model being trained, for evaluation during training."""
        raise NotImplementedError

    @staticmethod
    def evaluation_sets(cfg):
        """(reference images, training images) that evaluation during training compares with."""
        raise NotImplementedError

    def evaluation_truth(self) -> torch.Tensor | None:
        """uint8 ground truth of each evaluation image, for the paired metrics; None: there is none."""
        return None
