"""A perceptual distance from a discriminator's own feature maps, for methods that need one while
training: gankd's evaluation extractors judge, they never teach, so a method's perceptual loss
comes from a network it already has (the frozen source discriminator) instead.

As LPIPS with uniform weights: each map (after from-RGB and after every residual block) is
unit-normalised over channels and averaged over positions (`flat_perceptual`). Only the blocks
run, not minibatch-stddev, so an image's vector never depends on the others in its batch.
"""

from __future__ import annotations

import torch
from torch import nn

from gankd.features.base import flat_perceptual

NAME = "source_d"  # how methods name it among their perceptual choices


class DiscriminatorDistance(nn.Module):
    """`perceptual(images, grad)` -> [N, P] with ||p_i - p_j||^2 the distance; D stays frozen."""

    def __init__(self, D: nn.Module):
        super().__init__()
        self.D = D.eval().requires_grad_(False)

    def perceptual(self, images: torch.Tensor, grad: bool = False) -> torch.Tensor:
        with torch.inference_mode(not grad):
            x = self.D.convs[0](images.float())
            maps = [x]
            for block in self.D.convs[1:]:
                x = block(x)
                maps.append(x)
            return flat_perceptual(maps)
