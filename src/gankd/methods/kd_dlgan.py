"""KD-DLGAN (Cui et al., CVPR 2023): a GAN trained from scratch on limited data whose discriminator
also learns to predict a frozen vision-language teacher's view of the images it judges.

Facts from the authors' code (cuikaiwen18/KD_DLGAN), where the paper is silent:
- A head D^f on D's pooled penultimate vector `phi`: two spectral-normed linear layers (hidden
  1024), no nonlinearity, out = the teacher's embedding size. Trained with D.
- Every term is in D's loss, on the augmented images D sees this step (detached fakes); the
  generator's loss has no KD term. The teacher runs without gradient.
- AGKD (`agkd`): mean_i |I(x_i) - D^f(x_i)|_2 over reals and over fakes; crossed (`agkd_cross`):
  |I(real_i) - D^f(fake_i)| + |I(fake_i) - D^f(real_i)|, every step in the code (`cross_p` < 1
  applies it with that probability, the paper's description). Weight 10.
- CGKD (`cgkd`): C = rows L2-normalised of (embedding @ T^T), T the prompts' text embeddings;
  sum over the batch of |C_teacher - C_student|^2, on reals and fakes. Weight 10.
- The extra CGKD term (`cgkd_div`), `diversity`: "code" is the code's: 10 * the summed squared
  difference of the teacher's fake rows and a random permutation of them (self-pairs masked); it
  reads no trained network, so it moves nothing (logged as the code adds it). "paper" is the
  paper's diversity-preserving reading, gankd's rendering: D^f's differences between a row and a
  permuted row must equal the teacher's, so the student keeps how the fakes differ. "off": none.
- The teacher sees D's augmented images, enlarged by an integer factor with nearest neighbours
  when its input size is a multiple of theirs (the code: x7 from 32 to 224 px), else resized by
  the extractor; gankd keeps the teacher's own input normalisation (the code feeds CLIP [-1, 1]).
Prompts: `prompts` (texts separated by |); else one per value of the data's label field (or, for
unlabelled built-in data, of the first of the set's prompt fields with two values or more) in the
set's prompt phrase (`clip_gankd.PROMPTS`); user folders need `prompts`.
The base (DiffAugment translation,cutout + LeCam 0.3, hinge) comes in as the method's defaults.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gankd.errors import ConfigError, GankdError
from gankd.methods.base import DataInfo, Nets, PhaseData, load_module_state, module_state, Recipe

DIVERSITY = ("code", "paper", "off")


class EmbeddingHead(nn.Module):
    """D^f: phi -> hidden -> the teacher's embedding size, two spectral-normed linear layers, no nonlinearity."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int):
        super().__init__()
        self.net = nn.Sequential(spectral_norm(nn.Linear(in_dim, hidden)), spectral_norm(nn.Linear(hidden, out_dim)))

    def forward(self, phi: torch.Tensor) -> torch.Tensor:
        return self.net(phi)


def teacher_view(teacher, images: torch.Tensor) -> torch.Tensor:
    """The teacher's embedding of what D saw (nearest-neighbour enlarged by an integer factor when it fits)."""
    size = images.shape[-1]
    if teacher.input_size > size and teacher.input_size % size == 0:
        images = F.interpolate(images.float(), scale_factor=teacher.input_size // size, mode="nearest")
    return teacher.embed(images).clone()  # a normal tensor: the losses save it for backward


def rows_normalised(embeddings: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """Each image's similarities to the prompts, L2-normalised per row."""
    return F.normalize(embeddings @ text.t(), dim=1)


def agkd_terms(teacher_real, teacher_fake, student_real, student_fake) -> tuple[torch.Tensor, torch.Tensor]:
    """(same-image term, crossed term), each a sum of two means of per-sample L2 distances."""
    dist = lambda a, b: (a - b).norm(dim=1).mean()  # noqa: E731
    same = dist(teacher_real, student_real) + dist(teacher_fake, student_fake)
    crossed = dist(teacher_real, student_fake) + dist(teacher_fake, student_real)
    return same, crossed


def cgkd_term(teacher: torch.Tensor, student: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    return (rows_normalised(teacher, text) - rows_normalised(student, text)).square().sum()


def diversity_term(kind: str, teacher: torch.Tensor, student: torch.Tensor, text: torch.Tensor,
                   perm: torch.Tensor) -> torch.Tensor:
    """The code's permutation term (teacher rows only: no gradient) or the paper reading (differences matched)."""
    keep = (perm != torch.arange(len(perm), device=perm.device)).float()[:, None]
    c_t = rows_normalised(teacher, text)
    if kind == "code":
        return ((c_t - c_t[perm]) * keep).square().sum()
    c_s = rows_normalised(student, text)
    return (((c_s - c_s[perm]) - (c_t - c_t[perm])) * keep).square().sum()


class KDDLGAN(Recipe):
    name = "kd-dlgan"
    defaults = {"loss.kind": "hinge", "augment.kind": "diffaugment", "augment.policy": "translation,cutout",
                "loss.lecam": 0.3}

    @dataclass
    class Options:
        teacher: str = "clip-gankd"  # a feature extractor with text embeddings: clip-gankd or clip:ARCH/TAG
        weights: str = ""  # the teacher's weights file ("" = its default lookup)
        agkd: float = 10.0  # 0: off
        cross_p: float = 1.0  # probability of the crossed AGKD term per step (the code: always)
        cgkd: float = 10.0  # 0: off (the diversity term too)
        diversity: str = "code"  # code, paper or off
        prompts: str = ""  # texts separated by |; "" = from the data's labels
        hidden: int = 1024  # D^f's hidden width

    def __init__(self, cfg):
        super().__init__(cfg)
        o = self.options
        if o.diversity not in DIVERSITY:
            raise ConfigError(f"{self.name}.diversity must be one of {', '.join(DIVERSITY)}, not {o.diversity!r}")
        if o.agkd < 0 or o.cgkd < 0 or not 0 <= o.cross_p <= 1 or o.hidden < 1:
            raise ConfigError(f"{self.name}: agkd and cgkd must be 0 or more, cross_p in [0, 1], hidden at least 1")

    def teachers(self) -> list[str]:
        return [self.options.teacher]

    def build(self, data: DataInfo) -> Nets:
        from gankd.features import load_extractor

        nets = super().build(data)
        try:
            teacher = copy.deepcopy(load_extractor(self.options.teacher, self.options.weights or None))
        except GankdError as err:
            how = str(err).replace("--weights PATH", f"{self.name}.weights=PATH")
            raise ConfigError(f"{self.name}.teacher {self.options.teacher}: {how}") from None
        if not hasattr(teacher, "embed_text"):
            raise ConfigError(f"{self.name}.teacher: {self.options.teacher} embeds no texts; use clip-gankd or clip:ARCH/TAG")
        nets.frozen["teacher"] = teacher.eval().requires_grad_(False)
        self.prompts = self.prompt_texts(data)
        self.text = teacher.embed_text(self.prompts).clone() if self.options.cgkd else None
        probe = torch.zeros(2, data.img_channels, self.cfg.res, self.cfg.res)
        labels = torch.zeros(2, data.c_dim) if data.c_dim else None
        with torch.no_grad():
            phi = nets.D.eval()(probe, labels, return_features=True)[1]["phi"]
        nets.D.train()
        dim = teacher.embed(torch.zeros(1, 3, teacher.input_size, teacher.input_size)).shape[1]
        nets.aux["kd_head"] = self.head = EmbeddingHead(phi.shape[1], self.options.hidden, dim)
        return nets

    def prompt_texts(self, data: DataInfo) -> list[str]:
        from gankd.features.clip_gankd import prompts_for

        if self.options.prompts:
            texts = [t.strip() for t in self.options.prompts.split("|") if t.strip()]
            if len(texts) < 2:
                raise ConfigError(f"{self.name}.prompts: give two texts or more, separated by |")
            return texts
        source = getattr(data.dataset, "source", None)
        name, label = getattr(source, "name", ""), getattr(source, "class_field", None)
        texts = prompts_for(name, label, [source.labels(i) for i in range(len(source))]) if source else None
        if texts is None:
            raise ConfigError(f"{self.name}: no prompts for this data ({name or 'a folder'}"
                              f"{', label ' + label if label else ''}): give {self.name}.prompts='text|text|...'")
        return texts

    def trainable(self, nets: Nets) -> dict[str, list[nn.Parameter]]:
        params = super().trainable(nets)
        return {"G": params["G"], "D": params["D"] + list(self.head.parameters())}

    def losses(self, phase: str, data: PhaseData) -> dict[str, torch.Tensor]:
        o = self.options
        if phase != "D_main" or not (o.agkd or o.cgkd):
            return {}
        teacher = data.nets.frozen["teacher"]
        t_real = teacher_view(teacher, data.d_real_input.detach())
        t_fake = teacher_view(teacher, data.d_fake_input.detach())
        s_real = self.head(data.d_real_features["phi"]).float()
        s_fake = self.head(data.d_fake_features["phi"]).float()
        terms = {}
        if o.agkd:
            same, crossed = agkd_terms(t_real, t_fake, s_real, s_fake)
            terms["agkd"] = o.agkd * same
            if o.cross_p and (o.cross_p == 1 or float(torch.rand(())) < o.cross_p):
                terms["agkd_cross"] = o.agkd * crossed
        if o.cgkd:
            text = self.text.to(t_real.device)
            terms["cgkd"] = o.cgkd * (cgkd_term(t_real, s_real, text) + cgkd_term(t_fake, s_fake, text))
            if o.diversity != "off":
                perm = torch.randperm(len(t_fake), device=t_fake.device)
                terms["cgkd_div"] = o.cgkd * diversity_term(o.diversity, t_fake, s_fake, text, perm)
        return terms

    def state_dict(self) -> dict:
        return module_state("kd_head", self.head)

    def load_state_dict(self, state: dict) -> None:
        load_module_state("kd_head", self.head, state)

