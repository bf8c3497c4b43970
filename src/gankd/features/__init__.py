"""Feature extractors, one registry for metrics and for methods that use pretrained teachers.

A spec is `name` or `name:variant`: `domain`, `inception`, `clip-gankd` (gankd's own CLIP, a teacher), `clip` (= `clip:ViT-B-32/openai`),
`clip:ViT-L-14`, `clip:ViT-B-32/laion2b_s34b_b79k` (open_clip's architecture/tag: the tag also sets
the activation and normalisation that a `weights` file expects), `lpips` (= `lpips:alex`), `lpips:vgg`. `weights` is a file that replaces the
default one (it must fit the network).
"""

from __future__ import annotations

from functools import lru_cache

import torch

from gankd.errors import GankdError, unknown
from gankd.features.base import RESIZE_MODES, Extractor

EXTRACTORS = {
    "domain": "gankd's own encoder of emoji, glyphs and digits, shipped in the package (offline)",
    "inception": "the standard FID Inception-v3 (pt_inception-2015-12-05) through torch-fidelity",
    "clip": "an open_clip image encoder: clip:ARCH[/TAG] (default ViT-B-32/openai)",
    "clip-gankd": "gankd's own small CLIP (image and text towers) trained on the built-in data, shipped (a teacher)",
    "lpips": "LPIPS (Zhang et al. 2018): lpips:alex (default) or lpips:vgg",
}


PERCEPTUAL = ("domain", "lpips")  # the extractors with a perceptual (LPIPS-style) distance
TEACHERS_ONLY = ("clip-gankd",)  # trained by gankd to teach its methods: never a judge


def check_judge(spec: str) -> None:
    """Refuse an extractor that exists only to teach as the features of an evaluation."""
    if spec.partition(":")[0] in TEACHERS_ONLY:
        raise GankdError(f"{spec} is a teacher of gankd's methods, never an evaluation extractor: evaluate with "
                         "domain, inception or clip features")


def load_extractor(spec: str, weights: str | None = None, resize: str = "clean", device: str = "cpu") -> Extractor:
    """The extractor for `spec`, on `device`, in eval mode; cached per process. Building one draws
    random initial weights: not from the caller's random streams, so a run's networks do not depend
    on whether this process has built the extractor before."""
    with torch.random.fork_rng(devices=[]):
        return _load_extractor(spec, weights, resize, device)


@lru_cache(maxsize=8)
def _load_extractor(spec: str, weights: str | None, resize: str, device: str) -> Extractor:
    name, _, variant = spec.partition(":")
    if name not in EXTRACTORS:
        raise GankdError(unknown("feature extractor", name, EXTRACTORS))
    if resize not in RESIZE_MODES:
        raise GankdError(f"resize must be one of {', '.join(RESIZE_MODES)}, not {resize!r}")
    if resize == "legacy" and name != "inception":
        raise GankdError("the legacy resize exists only for inception features (torch-fidelity's resize)")
    if variant and name in ("domain", "inception", "clip-gankd"):
        raise GankdError(f"{name} features have no variants (got {spec!r})")
    if name == "domain":
        from gankd.features.domain import Domain

        extractor = Domain(weights)
    elif name == "inception":
        from gankd.features.inception import Inception

        extractor = Inception(weights, resize=resize)
    elif name == "clip-gankd":
        from gankd.features.clip_gankd import ClipGankd

        extractor = ClipGankd(weights)
    elif name == "clip":
        from gankd.features.clip import Clip

        arch, _, tag = (variant or "ViT-B-32").partition("/")
        extractor = Clip(arch, weights, tag or "openai")
    else:
        from gankd.features.lpips import Lpips

        extractor = Lpips(variant or "alex", weights)
    return extractor.to(device).eval()
