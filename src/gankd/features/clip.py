"""The `clip` extractor: an open_clip image encoder (default ViT-B-32 with OpenAI's weights).

`embed` returns encode_image's raw output, *not* L2-normalised: FID-style statistics (means and
covariances) are taken of the embeddings as the encoder gives them; normalise them yourself for
cosine similarities.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import open_clip
import torch
from open_clip.constants import HF_WEIGHTS_NAME

from gankd.data.cache import cache_dir, file_digest
from gankd.errors import GankdError
from gankd.features.base import Extractor
from gankd.features.weights import load_exactly, load_state_dict, offline, weights_file

ENV_VAR = "GANKD_CLIP_WEIGHTS"


def clip_weights(arch: str, tag: str, given: str | os.PathLike | None) -> Path:
    """`given`, $GANKD_CLIP_WEIGHTS or gankd's cache, else open_clip's download from the Hugging Face hub.

    Every open_clip tag has a hub copy (a plain state dict), which open_clip itself prefers. Its plain
    URLs are not used: OpenAI's files there are TorchScript archives, which weights_only cannot read.
    """
    model_id, hub_name = os.path.split(open_clip.get_pretrained_cfg(arch, tag).get("hf_hub", ""))
    hub_name = hub_name or HF_WEIGHTS_NAME
    filename = f"open_clip-{arch}-{tag}{Path(hub_name).suffix}"
    try:
        return weights_file("clip", filename, None, ENV_VAR, given)
    except GankdError:
        if given is not None or os.environ.get(ENV_VAR):
            raise
        if not model_id:
            tags = ", ".join(open_clip.list_pretrained_tags_by_model(arch)) or "none"
            raise GankdError(f"clip weights: open_clip has no {arch} weights tagged {tag!r} (its tags: {tags}); "
                             f"set ${ENV_VAR} or pass --weights PATH") from None
    try:
        return Path(open_clip.download_pretrained({"hf_hub": f"{model_id}/{hub_name}"}))
    except Exception as err:  # noqa: BLE001 - offline, no huggingface_hub, HTTP errors: all get the same hint
        why = "downloads are off (offline)" if offline() else type(err).__name__
        raise GankdError(f"clip weights for {arch}/{tag} are not in the Hugging Face cache and could not be "
                         f"fetched ({why}): download https://huggingface.co/{model_id}/resolve/main/{hub_name} "
                         f"and put it at {cache_dir() / 'weights' / filename}, set ${ENV_VAR}, or pass --weights PATH"
                         ) from None


def untrained_model(arch: str, tag: str) -> torch.nn.Module:
    """open_clip's model for `arch`, set up as `tag`'s weights expect (QuickGELU, normalisation)."""
    cfg = open_clip.get_pretrained_cfg(arch, tag)

    def not_untrained_warning(record: logging.LogRecord) -> bool:
        return "initialized randomly" not in record.getMessage()  # true but moot: the weights come next

    logging.getLogger().addFilter(not_untrained_warning)
    try:
        return open_clip.create_model(arch, pretrained=None, pretrained_text=False,
                                      force_quick_gelu=bool(cfg.get("quick_gelu")), force_preprocess_cfg=cfg)
    finally:
        logging.getLogger().removeFilter(not_untrained_warning)


class Clip(Extractor):
    kind = "clip"

    def __init__(self, arch: str = "ViT-B-32", weights: str | Path | None = None, tag: str = "openai"):
        """`weights`: an open_clip/OpenAI-style state dict, of the whole model (then `embed_text` works)
        or of the image tower only (other keys are ignored). `tag` says which training run the weights come from: it sets the
        activation and normalisation even when `weights` is given."""
        super().__init__()
        if open_clip.get_model_config(arch) is None:
            raise GankdError(f"clip: open_clip has no architecture {arch!r}; see open_clip.list_models()")
        path = clip_weights(arch, tag, weights)
        state = {k.removeprefix("module."): v for k, v in load_state_dict(path, "clip").items()}
        if not any(k.startswith("visual.") for k in state):  # an image tower saved on its own
            state = {f"visual.{k}": v for k, v in state.items()}
        self.model = untrained_model(arch, tag)
        tower = torch.nn.ModuleDict({"visual": self.model.visual})
        load_exactly(tower, {k: v for k, v in state.items() if k.startswith("visual.")}, "clip", path)
        own = self.model.state_dict()
        self.has_text = set(own) <= set(state)  # the whole model: texts can be embedded too (KD-DLGAN's prompts)
        if self.has_text:
            load_exactly(self.model, {k: state[k] for k in own}, "clip", path)
        self.arch = arch  # its tokenizer embeds texts
        self.model.eval().requires_grad_(False)
        self.weights_hash = file_digest(path)
        size = self.model.visual.image_size
        height, width = (size, size) if isinstance(size, int) else size
        if height != width:
            raise GankdError(f"clip: {arch} takes {height}x{width} images; gankd's extractors take square ones")
        self.input_size = height
        preprocess = open_clip.get_model_preprocess_cfg(self.model)
        self.register_buffer("mean", torch.tensor(preprocess["mean"]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(preprocess["std"]).view(1, 3, 1, 1), persistent=False)

    def _embed(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(((images + 1) / 2 - self.mean) / self.std, normalize=False)

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        """Text embeddings [N, D] (not normalised), with the architecture's own tokenizer."""
        if not self.has_text:
            raise GankdError(f"clip: these {self.arch} weights hold only the image tower; embedding texts needs "
                             "the whole model's weights (open_clip's file)")
        tokens = open_clip.get_tokenizer(self.arch)(texts).to(self.device)
        with torch.inference_mode():
            return self.model.encode_text(tokens, normalize=False).float()
