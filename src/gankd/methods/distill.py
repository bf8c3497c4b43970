"""Knowledge distillation of image-to-image generators: SRP-KD (Li, Jiang and Aarabi, ECCV 2020) and
the baselines it is measured against. A thin student (the teacher's generator at a smaller
`translation.ngf`) trains with its method's own objective (pix2pix or CycleGAN: adversarial, L1,
cycle and identity terms) plus terms that pull it toward a frozen teacher.

`<method>+distill` (`pix2pix+distill`, `cyclegan+distill`), built by `with_distillation`, settings
`distill.*`; `distill.terms` names the terms (`gankd distill --method kd+srp`), each per direction
of translation (suffix `_ab`, `_ba` with CycleGAN's two generators):
- `kd`, output KD: mean |G_s(x) - G_t(x)| (weight `distill.kd`; 0: the method's own reconstruction
  weight, pix2pix's L1 100 or CycleGAN's cycle 10, as gan-compression weighs its L1 to the
  teacher's outputs).
- `feature`, feature KD (gan-compression's baseline): the student's intermediate taps
  (`Translator.intermediate_taps`) through 1x1 convolutions to the teacher's channels (N(0, 0.02)
  weights, zero bias, trained with G's optimizer), mean squared error to the teacher's taps,
  summed over the taps (weight `distill.feature`, 1 as theirs).
- `sp`, similarity-preserving KD (Tung and Mori, ICCV 2019): the batch relation at the encoder's
  output (`Translator.encoder_tap`); it needs batch 2 or more.
- `srp`: the semantic relation between the positions of the encoder's output; maps larger than
  `distill.max_side` on a side are average-pooled to it first (`losses/relation.py`).
The teacher runs as gankd runs a translation model at test time (`families.translation.translate`:
each image alone, normalisation in training mode, dropout seeded by the step), so the targets are
the outputs the teacher is judged by, and a resumed run sees the same ones. The discriminators
start fresh, as the student alone's do.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from gankd.errors import CheckpointError, ConfigError
from gankd.losses.relation import batch_relation, relation_loss, spatial_relation
from gankd.methods.base import DataInfo, Nets, Recipe, composed, load_module_state, module_state

TERMS = ("kd", "feature", "sp", "srp")
DISTILLERS = ("none", "kd", "feature", "sp", "srp", "kd+srp")  # the compression bench's rows; none: no teacher
SAME = ("generator", "in_channels", "out_channels", "resolution", "cond_dim", "norm")  # teacher = student but ngf


@dataclass
class DistillOptions:
    """The `distill.*` settings of any `<method>+distill`."""

    teacher: str = ""  # the teacher's checkpoint (a translation model of the same method)
    terms: str = ""  # comma list of kd, feature, sp, srp
    kd: float = 0.0  # 0: the method's own reconstruction weight
    feature: float = 1.0
    sp: float = 1000.0
    srp: float = 10000.0
    max_side: int = 32  # the relation's positions: maps pooled to at most max_side x max_side


def parse_terms(text: str) -> list[str]:
    """The distillation terms named in `text` ("kd,srp" or "kd+srp"), checked."""
    terms = [t for t in text.replace("+", ",").split(",") if t.strip()]
    bad = [t for t in terms if t.strip() not in TERMS]
    if bad or not terms:
        raise ConfigError(f"distill.terms: give one or more of {', '.join(TERMS)}"
                          f"{f', not {bad[0]!r}' if bad else ''} (the student alone is the method without +distill)")
    return [t.strip() for t in terms]


class Distillation:
    """The distillation part of a `<method>+distill` recipe, before the method in the class's bases."""

    base: type[Recipe]

    @classmethod
    def option_sections(cls) -> dict[str, type]:
        return {**cls.base.option_sections(), "distill": DistillOptions}

    def __init__(self, cfg):
        super().__init__(cfg)
        o = self.distill = DistillOptions(**cfg.options.get("distill", {}))
        self.terms = parse_terms(o.terms)
        if not o.teacher:
            raise ConfigError(f"method {self.name} needs a teacher: distill.teacher=CKPT (a trained {self.base.name} "
                              "model)")
        if min(o.kd, o.feature, o.sp, o.srp) < 0 or o.max_side < 1:
            raise ConfigError("distill: the weights must be 0 or more and max_side at least 1")
        if "sp" in self.terms and cfg.batch < 2:
            raise ConfigError("distill.terms sp compares the images of a batch: it needs batch=2 or more")
        self.weights = {"kd": o.kd or self.reconstruction_weight(), "feature": o.feature, "sp": o.sp, "srp": o.srp}
        self.adapters = nn.ModuleDict()

    def build(self, data: DataInfo) -> Nets:
        from gankd.checkpoint import load_checkpoint
        from gankd.data.cache import file_digest

        nets = super().build(data)
        teacher = load_checkpoint(self.distill.teacher).require("translation", f"{self.name}'s distill.teacher")
        self.teacher_digest = file_digest(teacher.path)
        student_cfg = nets.roles[self.generators(nets)[0]].cfg
        differ = [k for k in SAME if getattr(teacher.config, k) != getattr(student_cfg, k)]
        if differ:
            raise CheckpointError(f"{teacher.path}: the teacher's {differ[0]} is {getattr(teacher.config, differ[0])}, "
                                  f"the student's {getattr(student_cfg, differ[0])}; a student is the teacher's "
                                  "generator at another width (translation.ngf)")
        for role in self.generators(nets):
            if role not in teacher.roles:
                raise CheckpointError(f"{teacher.path}: no {role} generator to distil from (it has "
                                      f"{', '.join(teacher.roles)}); use a {self.base.name} teacher")
            nets.frozen[f"teacher_{role}"] = T = teacher.network(role)
            if "feature" in self.terms:
                self.add_adapters(role, nets.roles[role], T)
        nets.aux.update({f"adapter_{k}": m for k, m in self.adapters.items()})
        return nets

    @staticmethod
    def generators(nets: Nets) -> list[str]:
        """The roles of the student's generators (G; or G_AB and G_BA)."""
        from gankd.nets import Translator

        return [role for role, net in nets.roles.items() if isinstance(net, Translator)]

    def add_adapters(self, role: str, student: nn.Module, teacher: nn.Module) -> None:
        """1x1 convolutions from each intermediate tap's student channels to the teacher's."""
        probe = torch.zeros(1, student.cfg.in_channels, student.cfg.resolution, student.cfg.resolution)
        cond = torch.zeros(1, student.cfg.cond_dim) if student.cfg.cond_dim else None
        with torch.no_grad():
            s, t = (net.eval()(probe, cond, return_features=True)[1] for net in (student, teacher))
        student.train()
        for tap in student.intermediate_taps:
            conv = nn.Conv2d(s[tap].shape[1], t[tap].shape[1], 1)
            nn.init.normal_(conv.weight, 0.0, 0.02)
            nn.init.zeros_(conv.bias)
            self.adapters[f"{role}_{tap}"] = conv

    def trainable(self, nets: Nets) -> dict[str, list[nn.Parameter]]:
        params = super().trainable(nets)
        return {**params, "G": params["G"] + list(self.adapters.parameters())}

    def directions(self, data) -> list[tuple[str, torch.Tensor, torch.Tensor, dict, str]]:
        """(generator role, its inputs, its outputs, its taps, term suffix) of each direction."""
        if "G_AB" not in data.nets.roles:
            return [("G", data.real_a, data.fake_b, data.features_b, "")]
        return [("G_AB", data.real_a, data.fake_b, data.features_b, "_ab"),
                ("G_BA", data.real_b, data.fake_a, data.features_a, "_ba")]

    def losses(self, phase: str, data) -> dict[str, torch.Tensor]:
        from gankd.families.translation import translate

        terms = super().losses(phase, data)
        if phase != "G_main":
            return terms
        w, side = self.weights, self.distill.max_side
        for role, inputs, outputs, taps, suffix in self.directions(data):
            teacher = data.nets.frozen[f"teacher_{role}"]
            t_out, t_taps = translate(teacher, inputs, seed=data.step, return_features=True)
            enc = teacher.encoder_tap
            if "kd" in self.terms:
                terms[f"kd{suffix}"] = w["kd"] * (outputs.float() - t_out.float()).abs().mean()
            if "feature" in self.terms:
                terms[f"feature{suffix}"] = w["feature"] * sum(
                    F.mse_loss(self.adapters[f"{role}_{tap}"](taps[tap].float()), t_taps[tap].float())
                    for tap in teacher.intermediate_taps)
            if "sp" in self.terms:
                terms[f"sp{suffix}"] = w["sp"] * relation_loss(batch_relation(t_taps[enc]), batch_relation(taps[enc]))
            if "srp" in self.terms:
                terms[f"srp{suffix}"] = w["srp"] * relation_loss(spatial_relation(t_taps[enc], side),
                                                                  spatial_relation(taps[enc], side))
        return terms

    def state_dict(self) -> dict:
        return {**super().state_dict(), **module_state("distill.adapters", self.adapters),
                "distill.teacher_sha256": self.teacher_digest}

    def load_state_dict(self, state: dict) -> None:
        """The adapters; and the teacher must be the file the run started with (else the resumed
        run would learn from other targets)."""
        if state.get("distill.teacher_sha256") != self.teacher_digest:
            raise CheckpointError(f"{self.distill.teacher}: not the teacher this run started with (its sha256 differs); "
                                  "restore that file, or start a new run")
        mine = "distill."
        load_module_state("distill.adapters", self.adapters, state)
        super().load_state_dict({k: v for k, v in state.items() if not k.startswith(mine)})


@lru_cache(maxsize=None)
def with_distillation(base: type[Recipe]) -> type[Recipe]:
    """The recipe class `<base>+distill` (translation methods: it compresses image-to-image generators)."""
    return composed(Distillation, base, "distill", "translation", "distilled from a teacher (`distill.*`)")
