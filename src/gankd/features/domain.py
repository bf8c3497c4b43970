"""The `domain` extractor: a compact CNN that gankd trains on its own built-in data and ships.

It makes evaluation work offline and on CPU for the built-in domains (emoji, glyphs, digits). It
was trained to classify emoji sub-groups and base emoji, glyph characters and font families, and
digits (`features/domain_train.py`), none of which is a training signal of any gankd method, so
no method distils from the network that judges it. Its global features feed FID/KID/PR/copying;
its channel-normalised stage maps give an LPIPS-style distance with uniform weights.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from gankd.data.cache import file_digest
from gankd.features.base import Extractor, flat_perceptual
from gankd.features.weights import load_exactly, load_state_dict, weights_file

SHIPPED = Path(__file__).with_name("domain.safetensors")
WIDTHS = (32, 64, 128, 256)
INPUT_SIZE = 64


def conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class DomainNet(nn.Module):
    """Four stages at 64, 32, 16 and 8 px, each ending in a 2x average pool; 256-d pooled output."""

    def __init__(self, widths: tuple[int, ...] = WIDTHS):
        super().__init__()
        stages, c_in = [], 3
        for i, width in enumerate(widths):
            layers = conv_bn_relu(c_in, width) + ([] if i == 0 else conv_bn_relu(width, width))
            stages.append(nn.Sequential(*layers, nn.AvgPool2d(2)))
            c_in = width
        self.stages = nn.ModuleList(stages)
        self.dim = widths[-1]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(pooled features [N, 256], the four stage outputs)."""
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return x.mean((2, 3)), maps


class Domain(Extractor):
    kind = "domain"
    input_size = INPUT_SIZE

    def __init__(self, weights: str | Path | None = None):
        super().__init__()
        path = SHIPPED if weights is None else weights_file("domain", SHIPPED.name, None, "GANKD_DOMAIN_WEIGHTS", weights)
        self.net = DomainNet()
        state = load_state_dict(Path(path), "domain")
        load_exactly(self.net, {k: v.float() for k, v in state.items()}, "domain", Path(path))
        self.net.eval().requires_grad_(False)
        self.weights_hash = file_digest(path)

    def _embed(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)[0]

    def _perceptual(self, images: torch.Tensor) -> torch.Tensor:
        return flat_perceptual(self.net(images)[1])
