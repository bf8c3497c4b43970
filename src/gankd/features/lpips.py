"""The `lpips` extractor: LPIPS (Zhang et al. 2018), the lpips package's calibrated linear layers
(v0.1) on torchvision's ImageNet AlexNet ("alex", default) or VGG16 ("vgg").

LPIPS is meant for distances: `perceptual` gives vectors whose squared Euclidean distance equals
lpips.LPIPS' value. `embed` returns the same vectors (large, and their length depends on the image
size); FID-style statistics of them mean little. Images are compared at their own resolution,
upsampled to at least 64 px, the patch size LPIPS was calibrated on; `resize` has no effect.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import lpips
import torch
from torch import nn
from torchvision.models import AlexNet_Weights, VGG16_Weights

from gankd.data.cache import file_digest
from gankd.errors import GankdError
from gankd.features.base import Extractor, as_rgb, clean_resize, flat_perceptual
from gankd.features.weights import load_exactly, load_state_dict, weights_file

MIN_SIZE = 64
BACKBONE_URLS = {"alex": AlexNet_Weights.IMAGENET1K_V1.url, "vgg": VGG16_Weights.IMAGENET1K_V1.url}
LINEAR_WEIGHTS = Path(lpips.__file__).parent / "weights" / "v0.1"


def as_torchvision_features(backbone: nn.Module) -> nn.Module:
    """lpips' backbone slices seen as torchvision's `features`.

    Slice k holds `features[i]` under the name str(i), so this view's state-dict keys are torchvision's
    own (`features.0.weight`, ...) and loading a torchvision file into it fills the slices.
    """
    layers = {name: layer for part in backbone.children() for name, layer in part.named_children()}
    return nn.ModuleDict({"features": nn.ModuleDict(layers)})


class Lpips(Extractor):
    kind = "lpips"
    input_size = MIN_SIZE  # the minimum: see `prepare`

    def __init__(self, net: str = "alex", weights: str | os.PathLike | None = None):
        """`weights`: torchvision's ImageNet file for the backbone, or one holding only its `features.*`."""
        super().__init__()
        if net not in BACKBONE_URLS:
            raise GankdError(f"lpips net must be one of {', '.join(BACKBONE_URLS)}, not {net!r}")
        label, url = f"lpips-{net}", BACKBONE_URLS[net]
        backbone_path = weights_file(label, Path(url).name, url, "GANKD_LPIPS_WEIGHTS", weights,
                                     also_look_in=(Path(torch.hub.get_dir()) / "checkpoints",))
        linear_path = LINEAR_WEIGHTS / f"{net}.pth"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torchvision deprecates the `pretrained=` that lpips passes it
            # Nothing is loaded here: the backbone is random (pnet_rand) and the linear layers are loaded
            # below with weights_only and an exact fit (lpips' own load is strict=False).
            self.model = lpips.LPIPS(net=net, pretrained=False, pnet_rand=True, verbose=False)
        backbone = load_state_dict(backbone_path, label)
        load_exactly(as_torchvision_features(self.model.net),
                     {k: v for k, v in backbone.items() if k.startswith("features.")}, label, backbone_path)
        linear = nn.ModuleDict({f"lin{i}": lin for i, lin in enumerate(self.model.lins)})
        load_exactly(linear, load_state_dict(linear_path, label), label, linear_path)
        self.model.eval().requires_grad_(False)
        digests = file_digest(backbone_path) + file_digest(linear_path)
        self.weights_hash = hashlib.sha256(digests.encode()).hexdigest()

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """RGB in [-1, 1] at the images' own size, upsampled (clean) to at least 64 px; square."""
        images = as_rgb(images.float()).clamp(-1, 1)
        return clean_resize(images, max(MIN_SIZE, *images.shape[-2:]))

    def _perceptual(self, images: torch.Tensor) -> torch.Tensor:
        maps = self.model.net(self.model.scaling_layer(images))
        return flat_perceptual(list(maps), [lin.model[-1].weight.flatten() for lin in self.model.lins])

    def _embed(self, images: torch.Tensor) -> torch.Tensor:
        return self._perceptual(images)
