"""Training configuration: dataclasses, YAML files and dotted `key=value` overrides.

A run's config is data. Every setting has a dotted key (`batch`, `loss.r1_gamma`, `arch.channel_base`,
and `<method>.<option>` for the chosen recipe's own options); a YAML file and command-line
overrides set the same keys, later ones winning. An unknown key is an error listing the valid ones.
The resolved config is written into the run folder and every checkpoint, so a run can be resumed
or reproduced from either.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from gankd.errors import ConfigError, unknown
from gankd.nets import ARCHITECTURES, BigGANConfig, StyleGAN2Config, TranslationConfig
from gankd.precision import PRECISIONS
from gankd.seeds import check_seed


# Set from the data (`--res`, the images' channels and labels), not from arch.* keys.
DERIVED_ARCH = ("resolution", "img_channels", "c_dim")


# StyleGAN2's own settings under arch.*, with defaults sized for 32-64 px on a CPU.
ARCH_DEFAULTS = {"n_mlp": 2, "channel_base": 8192, "channel_max": 256}
ArchSettings = dataclasses.make_dataclass("ArchSettings", [
    (f.name, f.type, field(default=ARCH_DEFAULTS.get(f.name, f.default)))
    for f in dataclasses.fields(StyleGAN2Config) if f.name not in (*DERIVED_ARCH, "blur_kernel")])
# BigGAN's settings under biggan.* (BigGAN-PyTorch's CIFAR defaults), used when architecture=biggan.
BigGANSettings = dataclasses.make_dataclass("BigGANSettings", [
    (f.name, f.type, field(default=f.default)) for f in dataclasses.fields(BigGANConfig) if f.name not in DERIVED_ARCH])
# The image-to-image networks' settings under translation.* (pix2pix's defaults; CycleGAN's recipe
# brings its own); resolution and channels come from the data.
DERIVED_TRANSLATION = ("resolution", "in_channels", "out_channels", "cond_dim")
TranslationSettings = dataclasses.make_dataclass("TranslationSettings", [
    (f.name, f.type, field(default=f.default))
    for f in dataclasses.fields(TranslationConfig) if f.name not in DERIVED_TRANSLATION])


@dataclass
class LossSettings:
    kind: str = "nonsat"  # nonsat (non-saturating logistic, pix2pix's "vanilla"), hinge or lsgan (least squares)
    d_steps: int = 1  # D steps per G step (BigGAN: 4); a step is one D step, G and its regularizer run every d_steps
    lecam: float = 0.0  # LeCam regularization weight (Tseng et al. 2021; 0 = off)
    lecam_decay: float = 0.9  # decay of LeCam's moving averages of D's real and fake outputs (the reference's)
    lecam_start: int = 0  # steps before the term counts (the averages copy D's latest means); reference: 1000 G steps
    r1_gamma: float | None = None  # None: NVlabs' heuristic 0.0002 * res^2 / batch
    r1_interval: int = 16  # lazy R1: every this many steps, scaled up by it
    pl_weight: float = 0.0  # path-length regularization (0 = off)
    pl_interval: int = 4
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    style_mixing: float = 0.0  # probability that a batch mixes two latents' styles (StyleGAN2: 0.9)


@dataclass
class AugmentSettings:
    kind: str = "none"  # none, diffaugment or ada
    policy: str = "default"  # comma-separated ops; default: color,translation,cutout (diffaugment), bgc (ada)
    p: float = 0.0  # ada: initial probability (diffaugment applies always)
    target: float = 0.6  # ada: target E[sign(D(real))]
    interval: int = 4  # ada: steps between adjustments
    speed_kimg: float = 500.0  # ada: thousands of images for p to move by 1


@dataclass
class OptimSettings:
    g_lr: float = 0.0025
    d_lr: float = 0.0025
    beta1: float = 0.0
    beta2: float = 0.99
    eps: float = 1e-8
    decay_from: float | None = None  # fraction of the steps after which the rates fall linearly to 0 (pix2pix/CycleGAN: 0.5)


@dataclass
class EMASettings:
    kimg: float = 10.0  # half-life of G_ema in thousands of images
    rampup: float | None = 0.05  # half-life at most this fraction of the images seen so far
    decay: float | None = None  # a fixed per-step decay instead (rosinality/CDC 0.99778, FreezeD 0.999)


@dataclass
class EvalSettings:
    every: int = 0  # evaluate G_ema every this many steps (0 = never); rank 0, fixed seeds 0..n-1
    metrics: str = "kid,fid"  # any of fid, kid, pr, intra_lpips, copying (docs/metrics.md)
    features: str = "domain"
    n: int = 1000  # generated samples per evaluation
    ref: str = ""  # reference: split folder (its eval/), folder or spec; "" = the training data
    best: str = ""  # "kid" or "fid": keep best.safetensors (G_ema, D) at the lowest value; "" = off
    noise: str = "random"  # noise of the generated samples: random (as the papers), const or none


@dataclass
class TrainConfig:
    data: str = ""
    res: int = 32
    channels: int | None = None  # None: the data's own
    upscale: bool | None = None  # enlarge images smaller than res? None: built-in sets yes, folders no
    mirror: bool = False  # x-flip each training image with probability 1/2 (NVlabs' --mirror)
    architecture: str = "stylegan2"  # of a latent model: stylegan2 (arch.* settings) or biggan (biggan.*)
    method: str = "scratch"
    source: str | None = None  # checkpoint to start from (finetune, freezed, ...)
    steps: int = 10000
    batch: int = 32  # global: split across torchrun processes
    seed: int = 0
    precision: str = "auto"  # auto, fp32 or bf16 (autocast; regularizers stay fp32); auto: gankd.precision
    channels_last: bool | None = None  # NHWC memory; None: with bf16. A run stores the resolved values
    device: str = "auto"  # auto, cpu, cuda, cuda:1, ...
    threads: int | None = None  # CPU threads (torch.set_num_threads); None: torch's default. Recorded per checkpoint
    log_every: int = 10
    logger: str = "tensorboard"  # tensorboard, wandb, tensorboard,wandb or none (gankd.train.loggers)
    sample_every: int = 500
    checkpoint_every: int = 1000
    keep: int = 3  # checkpoints kept (the oldest are deleted)
    arch: ArchSettings = field(default_factory=ArchSettings)
    biggan: BigGANSettings = field(default_factory=BigGANSettings)
    translation: TranslationSettings = field(default_factory=TranslationSettings)
    loss: LossSettings = field(default_factory=LossSettings)
    augment: AugmentSettings = field(default_factory=AugmentSettings)
    optim: OptimSettings = field(default_factory=OptimSettings)
    ema: EMASettings = field(default_factory=EMASettings)
    eval: EvalSettings = field(default_factory=EvalSettings)
    options: dict = field(default_factory=dict)  # the recipe's own options: {section: {name: value}}, keys `<section>.<name>`

    # Keys that may change when a run is resumed: they do not change the numbers it computes
    # (evaluation draws no random numbers from the training's generators).
    RESUMABLE = ("steps", "log_every", "logger", "sample_every", "checkpoint_every", "keep", "device", "threads",
                 *(f"eval.{f.name}" for f in dataclasses.fields(EvalSettings)))

    def flat(self) -> dict:
        """All settings as {dotted key: value}."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "options":
                out.update({f"{section}.{k}": v for section, values in value.items() for k, v in values.items()})
            elif dataclasses.is_dataclass(value):
                out.update({f"{f.name}.{g.name}": getattr(value, g.name) for g in dataclasses.fields(value)})
            else:
                out[f.name] = value
        return out

    def to_dict(self) -> dict:
        return {k: (v if k != "options" else {s: dict(o) for s, o in v.items()}) for k, v in dataclasses.asdict(self).items()}

    def arch_config(self, img_channels: int, c_dim: int) -> StyleGAN2Config | BigGANConfig:
        """The latent model's architecture config: `architecture` picks the class, its section the settings."""
        settings = self.biggan if self.architecture == "biggan" else self.arch
        return ARCHITECTURES[self.architecture].config(resolution=self.res, img_channels=img_channels, c_dim=c_dim,
                                                       **dataclasses.asdict(settings))

    def translation_config(self, in_channels: int, out_channels: int, cond_dim: int = 0) -> TranslationConfig:
        return TranslationConfig(resolution=self.res, in_channels=in_channels, out_channels=out_channels,
                                 cond_dim=cond_dim, **dataclasses.asdict(self.translation))

    def r1_gamma(self) -> float:
        return self.loss.r1_gamma if self.loss.r1_gamma is not None else 0.0002 * self.res ** 2 / self.batch


def resolve(file: str | Path | None = None, overrides: list[str] | dict | None = None,
            base: dict | None = None) -> TrainConfig:
    """Defaults <- `base` (a stored config) <- YAML file <- overrides, checked and typed."""
    from gankd.methods import recipe_class

    cfg = TrainConfig()
    settings: dict = {}
    if base:
        settings.update(_flatten(base))
    if file is not None:
        settings.update(_flatten(read_yaml(Path(file))))
    if isinstance(overrides, dict):
        settings.update(_flatten(overrides))
    else:
        settings.update(_parse_overrides(overrides or []))
    method = str(settings.get("method", cfg.method))
    recipe = recipe_class(method)  # unknown method: error naming the known ones
    settings = {**_flatten(recipe.defaults), **settings}  # the method's defaults, under everything given
    sections = recipe.option_sections()  # {section: Options class}: the method's, and DIP's when composed
    options = {section: {f.name: f.default for f in dataclasses.fields(cls)} for section, cls in sections.items()}
    if "options" in settings:  # a stored config keeps options as one mapping (before 0.9: one section, flat)
        stored = settings.pop("options")
        nested = stored if all(isinstance(v, dict) for v in stored.values()) else {next(iter(sections)): stored}
        settings.update({f"{section}.{k}": v for section, values in nested.items() for k, v in values.items()})
    hints = _field_types(cfg) | {f"{section}.{k}": t for section, cls in sections.items()
                                 for k, t in typing.get_type_hints(cls).items()}
    for key, raw in settings.items():
        if key in hints:
            value = _coerce(key, raw, hints[key])
        elif key.partition(".")[0] in ("arch", "biggan") and key.partition(".")[2] in DERIVED_ARCH or \
                key.startswith("translation.") and key[12:] in DERIVED_TRANSLATION:
            raise ConfigError(f"{key} is set by the data and --res, not by a key")
        else:
            raise ConfigError(unknown("setting", key, hints))
        section, _, name = key.rpartition(".")
        if section in sections:
            options[section][name] = value
        elif section:
            setattr(getattr(cfg, section), name, value)
        else:
            setattr(cfg, name, value)
    cfg.options = options
    _check(cfg)
    return cfg


def _check(cfg: TrainConfig) -> None:
    latent = tuple(name for name, a in ARCHITECTURES.items() if a.family == "latent")
    choices = {"loss.kind": ("nonsat", "hinge", "lsgan"), "augment.kind": ("none", "diffaugment", "ada"),
               "architecture": latent,
               "precision": PRECISIONS}
    flat = cfg.flat()
    for key, allowed in choices.items():
        if flat[key] not in allowed:
            raise ConfigError(f"{key} must be one of {', '.join(allowed)}, not {flat[key]!r}")
    positive = ("steps", "batch", "log_every", "sample_every", "checkpoint_every", "keep",
                "loss.r1_interval", "loss.pl_interval", "loss.d_steps", "loss.pl_batch_shrink", "augment.interval")
    for key in positive:
        if flat[key] < 1:
            raise ConfigError(f"{key} must be at least 1, got {flat[key]}")
    if cfg.threads is not None and cfg.threads < 1:
        raise ConfigError(f"threads must be at least 1 (or none: torch's default), got {cfg.threads}")
    check_seed(cfg.seed, "seed")
    above_zero, unit, at_least_zero = (lambda v: v > 0, "above 0"), (lambda v: 0 <= v <= 1, "in [0, 1]"), \
        (lambda v: v is None or v >= 0, "0 or more")
    rules = {"optim.g_lr": above_zero, "optim.d_lr": above_zero, "optim.eps": above_zero, "ema.kimg": above_zero,
             "optim.beta1": (lambda v: 0 <= v < 1, "in [0, 1)"), "optim.beta2": (lambda v: 0 <= v < 1, "in [0, 1)"),
             "augment.p": unit, "augment.target": unit, "augment.speed_kimg": above_zero, "loss.style_mixing": unit,
             "ema.decay": (lambda v: v is None or 0 <= v < 1, "in [0, 1)"),
             "optim.decay_from": (lambda v: v is None or 0 <= v < 1, "in [0, 1)"),
             "loss.r1_gamma": at_least_zero, "loss.pl_weight": at_least_zero, "loss.lecam": at_least_zero, "loss.lecam_start": at_least_zero,
             "loss.lecam_decay": (lambda v: 0 <= v < 1, "in [0, 1)"), "ema.rampup": at_least_zero}
    for key, (ok, must) in rules.items():
        if not ok(flat[key]):
            raise ConfigError(f"{key} must be {must}, got {flat[key]}")
    from gankd.devices import device_named
    from gankd.features import check_judge
    from gankd.metrics import parse_metrics
    from gankd.nets.stylegan2 import NOISE_MODES
    from gankd.train.loggers import logger_names

    device_named(cfg.device)
    logger_names(cfg.logger)
    parse_metrics(cfg.eval.metrics)
    check_judge(cfg.eval.features)
    if cfg.eval.noise not in NOISE_MODES:
        raise ConfigError(f"eval.noise must be one of {', '.join(NOISE_MODES)}, not {cfg.eval.noise!r}")
    if cfg.eval.every < 0 or cfg.eval.n < 2:
        raise ConfigError("eval.every must be 0 (off) or more, and eval.n at least 2")
    if cfg.eval.best not in ("", "kid", "fid") or cfg.eval.best and cfg.eval.best not in cfg.eval.metrics.split(","):
        raise ConfigError(f"eval.best must be kid or fid and one of eval.metrics ({cfg.eval.metrics}), "
                          f"not {cfg.eval.best!r}")
    from gankd.families import FAMILIES
    from gankd.methods import recipe_class

    FAMILIES[recipe_class(cfg.method).family].check(cfg)  # the networks' own settings, res included
    if not cfg.data:
        raise ConfigError("no training data: pass --data DIR|SPEC (or data: in the config file)")


def _field_types(cfg: TrainConfig) -> dict[str, object]:
    out = {}
    top = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(cfg):
        if f.name == "options":
            continue
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out.update({f"{f.name}.{k}": t for k, t in typing.get_type_hints(type(value)).items()})
        else:
            out[f.name] = top[f.name]
    return out


def _coerce(key: str, value, hint):
    """Type a YAML or command-line value as the setting's declared type."""
    import yaml

    args = typing.get_args(hint)
    optional = (typing.get_origin(hint) in (typing.Union, types.UnionType)) and type(None) in args
    kind = next(a for a in args if a is not type(None)) if optional else hint
    if isinstance(value, str) and kind is not str:
        try:
            value = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            pass
    if value is None or (kind is not str and isinstance(value, str) and value.lower() == "none"):
        if optional:
            return None
        raise ConfigError(f"{key} cannot be empty")
    typed = _TYPED[kind](value)
    if typed is None:
        name = {int: "an integer", float: "a finite number", bool: "true or false", str: "text"}[kind]
        raise ConfigError(f"{key} must be {name}{' or none' if optional else ''}, not {value!r}")
    return typed


def _as_int(value):
    value = _as_float(value) if isinstance(value, str) else value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        return None
    return int(value)


def _as_float(value):
    if isinstance(value, str):  # YAML reads 1e-3 as text
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None  # inf and nan are no setting's value: they only poison a run
    return float(value)


_TYPED = {bool: lambda v: v if isinstance(v, bool) else None, int: _as_int, float: _as_float, str: str}


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and key != "options":
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _parse_overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"expected key=value, got {item!r}")
        out[key.strip()] = value
    return out


def read_yaml(path: Path) -> dict:
    """A YAML mapping of settings; a key given twice is refused (YAML would silently keep the last)."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    raise ConfigError(f"{path}: {key!r} appears twice (line {key_node.start_mark.line + 1}); "
                                      "give each setting once")
                seen.add(key)
            return super().construct_mapping(node, deep)

    try:
        tree = yaml.load(path.read_text(), Loader=StrictLoader)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: not a readable YAML file ({str(err).splitlines()[0]})") from None
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    return tree


def to_yaml(cfg: TrainConfig) -> str:
    import yaml

    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
