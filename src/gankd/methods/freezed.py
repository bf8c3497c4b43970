"""FreezeD (Mo et al., 2020): fine-tune, but keep the discriminator's lowest blocks frozen."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from gankd.errors import ConfigError
from gankd.methods.base import Nets
from gankd.methods.finetune import Finetune


class FreezeD(Finetune):
    """Fine-tuning with D's first `layers` blocks (from-RGB first, then the highest-resolution
    residual blocks) left exactly as in the source."""

    name = "freezed"

    @dataclass
    class Options(Finetune.Options):
        layers: int = 2  # frozen D blocks, counted from the input

    def trainable(self, nets: Nets) -> dict[str, list[nn.Parameter]]:
        blocks = len(nets.D.convs)
        if not 0 <= self.options.layers <= blocks:
            raise ConfigError(f"freezed.layers must be in 0..{blocks} for this discriminator, "
                              f"got {self.options.layers}")
        frozen = {id(p) for p in nets.D.convs[:self.options.layers].parameters()}
        params = super().trainable(nets)
        return {"G": params["G"], "D": [p for p in params["D"] if id(p) not in frozen]}
