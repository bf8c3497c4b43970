"""The `clip-gankd` teacher: a small CLIP (open_clip's classes and BPE tokenizer) that gankd trains
on its own image-text pairs and ships, so that methods distilling a vision-language model
(KD-DLGAN) run offline. It is a teacher, never a judge: no metric uses it.

Its language is the captions of `CAPTIONS` (emoji names, sub-groups and groups; glyph characters,
families, weights and styles; digit values). Token rows the captions never use were never trained;
the shipped file keeps only the used rows (`token_ids`) and the others load as zeros.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg
from open_clip.tokenizer import SimpleTokenizer

from gankd.data.cache import file_digest
from gankd.errors import GankdError
from gankd.features.base import Extractor
from gankd.features.weights import load_exactly, load_state_dict, weights_file

SHIPPED = Path(__file__).with_name("clip_gankd.safetensors")
ENV_VAR = "GANKD_CLIP_GANKD_WEIGHTS"
INPUT_SIZE = 32
CONTEXT = 32
EMBED_DIM = 128
VISION = CLIPVisionCfg(layers=6, width=192, head_width=64, patch_size=4, image_size=INPUT_SIZE)
TEXT = CLIPTextCfg(context_length=CONTEXT, width=128, heads=2, layers=4)
TOKEN_KEY = "token_embedding.weight"
MEAN, STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)  # the images arrive in [-1, 1]: no other normalisation


def build_model() -> CLIP:
    return CLIP(EMBED_DIM, VISION, TEXT)


def tokenizer() -> SimpleTokenizer:
    return SimpleTokenizer(context_length=CONTEXT)


def _letter(char: str) -> str:
    """The tokenizer lower-cases: case must be said in words."""
    if char.isdigit():
        return f"the digit {char}"
    return f"capital letter {char.lower()}" if char.isupper() else f"small letter {char}"


def _weight(weight: int) -> str:
    return "bold" if int(weight) >= 600 else "regular"


# (data set, label field) -> the prompt of a value: the captions below use them, zero-shot scoring and
# KD-DLGAN's class prompts too; PROMPT_FIELDS says which fields prompt unlabelled data of a set (the
# first with two values or more in the data)
PROMPTS: dict[tuple[str, str], Callable[[object], str]] = {
    ("emoji", "name"): lambda v: f"an emoji of {v}",
    ("emoji", "subgroup"): lambda v: f"a {v} emoji",
    ("emoji", "group"): lambda v: f"an emoji from the {v} group",
    ("glyphs", "char"): _letter,
    ("glyphs", "family"): lambda v: f"a glyph in {v}",
    ("digits", "digit"): lambda v: f"a handwritten digit {v}",
}
PROMPT_FIELDS = {"emoji": ("subgroup", "name"), "glyphs": ("char", "family"), "digits": ("digit",)}


def prompts_for(dataset: str, label: str | None, labels: list[dict]) -> list[str] | None:
    """Prompts for images of a built-in set with these labels: one per value of the class field
    `label`, or else of the set's first prompt field with two values or more; None: none fits."""
    for field in (label,) if label else PROMPT_FIELDS.get(dataset, ()):
        values = sorted({str(l[field]) for l in labels} - {""})
        if (dataset, field) in PROMPTS and len(values) >= 2:
            return [PROMPTS[dataset, field](v) for v in values]
    return None


def _subgroup(labels: dict) -> str:
    return labels["subgroup"] or labels["group"]  # a few emoji (components) have no sub-group


# data set -> caption templates; training draws one per image and step
CAPTIONS: dict[str, tuple[Callable[[dict], str], ...]] = {
    "emoji": (
        lambda l: PROMPTS["emoji", "name"](l["name"]),
        lambda l: PROMPTS["emoji", "subgroup"](_subgroup(l)),
        lambda l: PROMPTS["emoji", "group"](l["group"]),
        lambda l: f"an emoji of {l['base_name']}, a {_subgroup(l)} emoji from the {l['group']} group",
    ),
    "glyphs": (
        lambda l: f"{_letter(l['char'])} in {l['family']}",
        lambda l: PROMPTS["glyphs", "char"](l["char"]),
        lambda l: PROMPTS["glyphs", "family"](l["family"]),
        lambda l: f"a {_weight(l['weight'])} {l['style']} glyph",
        lambda l: f"{_letter(l['char'])} in {l['family']}, {_weight(l['weight'])} {l['style']}",
    ),
    "digits": (
        lambda l: PROMPTS["digits", "digit"](l["digit"]),
        lambda l: f"the digit {l['digit']}",
    ),
}


class ClipGankd(Extractor):
    """Image embeddings (`embed`) and text embeddings (`embed_text`), neither normalised."""

    kind = "clip-gankd"
    input_size = INPUT_SIZE

    def __init__(self, weights: str | Path | None = None):
        super().__init__()
        path = Path(SHIPPED if weights is None else weights_file("clip-gankd", SHIPPED.name, None, ENV_VAR, weights))
        if weights is None and not path.is_file():
            raise GankdError(f"clip-gankd weights: {path} is missing from this install; make them with "
                             f"`python -m gankd.features.clip_gankd_train --out {path}` or pass --weights PATH")
        self.model = build_model()
        load_exactly(self.model, expand_tokens(load_state_dict(path, "clip-gankd"), self.model), "clip-gankd", path)
        self.model.eval().requires_grad_(False)
        self.weights_hash = file_digest(path)
        self.tokenize = tokenizer()

    def _embed(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(images, normalize=False)

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        with torch.inference_mode():
            return self.model.encode_text(self.tokenize(texts).to(self.device), normalize=False).float()


def shrink_tokens(state: dict[str, torch.Tensor], used: torch.Tensor) -> dict[str, torch.Tensor]:
    """The state to ship: only the token rows in `used`, with their ids."""
    state = dict(state)
    state[TOKEN_KEY] = state[TOKEN_KEY][used].clone()
    state["token_ids"] = used.clone()
    return state


def expand_tokens(state: dict[str, torch.Tensor], model: CLIP) -> dict[str, torch.Tensor]:
    """A shipped state back to the model's shapes (rows not shipped are zeros), as float32."""
    state = {k: v.float() for k, v in state.items()}
    if "token_ids" in state:
        ids = state.pop("token_ids").long()
        full = torch.zeros_like(model.state_dict()[TOKEN_KEY])
        full[ids] = state[TOKEN_KEY]
        state[TOKEN_KEY] = full
    return state
