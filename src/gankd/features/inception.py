"""The `inception` extractor: the standard FID Inception-v3 (pt_inception-2015-12-05) through
torch-fidelity, pool3 features (2048-d), so that FIDs are comparable to published ones.

"clean" resize: our antialiased bicubic to 299 px, then uint8. "legacy": uint8 at native size,
resized by torch-fidelity's TF1-compatible bilinear, as torch-fidelity and NVlabs do.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import torch
import torch_fidelity.feature_extractor_inceptionv3 as fidelity_inception

from gankd.data.cache import file_digest
from gankd.errors import GankdError
from gankd.features.base import RESIZE_MODES, Extractor
from gankd.features.weights import load_exactly, load_state_dict, weights_file
from gankd.images import quantize

WEIGHTS_NAME = "weights-inception-2015-12-05-6726825d.pth"
FEATURE = "2048"


def fidelity_network() -> fidelity_inception.FeatureExtractorInceptionV3:
    """torch-fidelity's network with untrained weights, in eval mode; the caller loads safely read tensors."""
    # Its fetch and load are stubbed while it runs: it would download, or unpickle the file unrestricted, itself.
    with mock.patch.object(fidelity_inception, "load_state_dict_from_url"), \
            mock.patch.object(fidelity_inception.FeatureExtractorInceptionV3, "load_state_dict"):
        return fidelity_inception.FeatureExtractorInceptionV3("inception-v3-compat", [FEATURE])


class Inception(Extractor):
    kind = "inception"
    input_size = fidelity_inception.FeatureExtractorInceptionV3.INPUT_IMAGE_SIZE  # 299

    def __init__(self, weights: str | Path | None = None, resize: str = "clean"):
        super().__init__()
        if resize not in RESIZE_MODES:
            raise GankdError(f"resize must be one of {', '.join(RESIZE_MODES)}, not {resize!r}")
        self.resize = resize
        path = weights_file("inception", WEIGHTS_NAME, fidelity_inception.URL_INCEPTION_V3, "GANKD_INCEPTION_WEIGHTS",
                            weights, also_look_in=(Path(torch.hub.get_dir()) / "checkpoints",))
        self.net = fidelity_network()
        load_exactly(self.net, load_state_dict(path, "inception"), "inception", path)
        self.weights_hash = file_digest(path)

    def _embed(self, images: torch.Tensor) -> torch.Tensor:
        # In "clean" mode the images are already 299x299, where torch-fidelity's TF1 bilinear resize is
        # the identity (source pixel = target pixel, interpolation weights exactly 0: checked bit-exact).
        return self.net(quantize(images))[0]
