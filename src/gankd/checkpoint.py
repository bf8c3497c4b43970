"""gankd checkpoints: one safetensors file, weights as tensors and everything else as JSON metadata.

Tensor names are `<role>.<parameter>` (roles `G`, `G_ema`, `D`; later also optimizer and method
state). The header's metadata key `gankd` holds JSON: format version, architecture, its config,
the roles present, and training facts (step, images seen, data) when known. A safetensors file
holds no code, so loading one cannot execute anything.

`load_checkpoint` also accepts rosinality `.pt` and NVlabs `.pkl` files, imported in memory
(`gankd.interop`), so every command that takes a checkpoint takes those too.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from gankd.errors import CheckpointError
from gankd.fileio import atomic_write, new_file
from gankd.interop import FORMATS, Imported, read, sniff
from gankd.models import resolve_checkpoint
from gankd.nets import ARCHITECTURES

FORMAT, VERSION = "gankd", 1
PRIOR = "prior."  # tensor names of a stored prior


@dataclass
class Checkpoint:
    path: Path
    meta: dict
    tensors: dict[str, torch.Tensor]

    @property
    def roles(self) -> list[str]:
        return list(self.meta["roles"])

    @property
    def architecture(self):
        return ARCHITECTURES[self.meta["arch"]]

    @property
    def config(self):
        try:
            return self.architecture.config.from_dict(self.meta["config"])
        except (ValueError, TypeError) as err:
            raise CheckpointError(f"{self.path}: invalid {self.meta['arch']} config ({err})") from None

    def network(self, role: str) -> nn.Module:
        """Rebuild one network (e.g. "G_ema") with its weights, in eval mode."""
        if role not in self.roles:
            raise CheckpointError(f"{self.path}: no {role} network (it has {', '.join(self.roles)})")
        net = self.architecture.networks[role](self.config)
        prefix = f"{role}."
        state = {k[len(prefix):]: v for k, v in self.tensors.items() if k.startswith(prefix)}
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as err:
            first = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
            raise CheckpointError(f"{self.path}: {role} weights do not fit its config ({first})") from None
        return net.eval().requires_grad_(False)

    def require(self, family: str, command: str) -> "Checkpoint":
        """This checkpoint, if its model belongs to `family`; else one line naming the right command."""
        have = self.architecture.family
        if have != family:
            use = {"latent": "gankd generate", "translation": "gankd translate", "aging": "gankd age"}[have]
            raise CheckpointError(f"{self.path}: a {self.meta['arch']} model ({have} family), which {command} does not "
                                  f"take; use {use}")
        return self

    def generator(self) -> nn.Module:
        """The generator to sample from: G_ema when present, else G."""
        return self.network("G_ema" if "G_ema" in self.roles else "G")

    def prior(self):
        """The prior its samples come from (`gankd.priors`): the stored one, else the seeded normal."""
        from gankd.priors import PRIORS, Normal

        stored = self.meta.get("prior")
        if stored is None:
            return Normal()
        if stored.get("kind") not in PRIORS:
            raise CheckpointError(f"{self.path}: unknown prior {stored.get('kind')!r} (a newer gankd?)")
        tensors = {k[len(PRIOR):]: v for k, v in self.tensors.items() if k.startswith(PRIOR)}
        return PRIORS[stored["kind"]].from_state(tensors, stored.get("values", {}))


def save_checkpoint(path: str | os.PathLike, nets: dict[str, nn.Module], force: bool = False,
                    state: dict[str, torch.Tensor] | None = None, prior=None, **facts) -> Path:
    """Write networks, other named tensors (`state`: optimizer moments, RNG states, ...), the prior
    samples come from (None: the default) and JSON-serialisable facts (step, data, training state)
    atomically to one file."""
    from safetensors.torch import save

    path = new_file(path, force=force)
    configs = {json.dumps(net.cfg.to_dict(), sort_keys=True) for net in nets.values()}
    if len(configs) != 1:
        raise ValueError("all networks of a checkpoint must share one config")
    cfg = next(iter(nets.values())).cfg
    arch = next(name for name, a in ARCHITECTURES.items() if isinstance(cfg, a.config))
    meta = {"format": FORMAT, "version": VERSION, "arch": arch, "config": json.loads(configs.pop()),
            "roles": list(nets), **facts}
    tensors = {f"{role}.{k}": v.detach().cpu().clone(memory_format=torch.contiguous_format)
               for role, net in nets.items() for k, v in net.state_dict().items()}
    clashes = [k for k in state or {} if k.split(".")[0] in nets]
    if clashes:
        raise ValueError(f"state tensor names must not start with a network role: {clashes[:3]}")
    tensors.update({k: v.detach().cpu().contiguous() for k, v in (state or {}).items()})
    if prior is not None:
        prior_tensors, values = prior.state()
        meta["prior"] = {"kind": prior.kind, "values": values}
        tensors.update({PRIOR + k: v.detach().cpu().contiguous() for k, v in prior_tensors.items()})
    atomic_write(path, save(tensors, metadata={FORMAT: json.dumps(meta)}))
    return path


def read_meta(path: str | os.PathLike) -> dict:
    """The checkpoint's metadata (for a gankd file, read from the header alone)."""
    path = resolve_checkpoint(path)
    fmt = sniff(path)
    return _open(path, tensors=False).meta if fmt == "gankd" else _imported(path, read(path, fmt)).meta


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """A gankd checkpoint, a shipped model (`builtin:emoji32`), or a rosinality `.pt` / NVlabs `.pkl`
    imported in memory."""
    path = resolve_checkpoint(path)
    fmt = sniff(path)
    return _open(path, tensors=True) if fmt == "gankd" else _imported(path, read(path, fmt))


def _imported(path: Path, imported: Imported) -> Checkpoint:
    arch = next(name for name, a in ARCHITECTURES.items() if isinstance(imported.config, a.config))
    roles = [r for r in ARCHITECTURES[arch].networks if r in imported.states]
    meta = {"format": FORMAT, "version": VERSION, "arch": arch, "config": imported.config.to_dict(),
            "roles": roles, "source format": FORMATS[imported.format], **imported.facts}
    tensors = {f"{role}.{k}": v for role in roles for k, v in imported.states[role].items()}
    return Checkpoint(path, meta, tensors)


def _open(path: Path, tensors: bool) -> Checkpoint:
    from safetensors import safe_open

    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            data = {k: f.get_tensor(k) for k in f.keys()} if tensors else {}
    except Exception as err:  # safetensors raises several types for foreign or damaged files
        raise CheckpointError(f"{path}: not a readable gankd checkpoint (truncated, or another format: "
                              f"{str(err).splitlines()[0][:120]})") from None
    if FORMAT not in header:
        raise CheckpointError(f"{path}: a safetensors file, but not a gankd checkpoint (no gankd metadata)")
    try:
        meta = json.loads(header[FORMAT])
        missing = {"arch", "version", "roles", "config"} - set(meta)
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: damaged gankd metadata ({err})") from None
    if missing:
        raise CheckpointError(f"{path}: damaged gankd metadata (no {', '.join(sorted(missing))})")
    if meta["arch"] not in ARCHITECTURES:
        raise CheckpointError(f"{path}: unknown architecture {meta['arch']!r}")
    if meta["version"] > VERSION:
        raise CheckpointError(f"{path}: checkpoint format {meta['version']} is newer than this gankd ({VERSION}); "
                              "upgrade gankd")
    return Checkpoint(path, meta, data)


def describe(path: str | os.PathLike) -> dict:
    """What `gankd info` prints: format, architecture and its settings, networks, training facts."""
    meta = read_meta(path)
    ckpt = Checkpoint(Path(path), meta, {})
    cfg, architecture = ckpt.config, ckpt.architecture
    with torch.device("meta"):  # build without memory to count parameters
        params = {role: sum(p.numel() for p in architecture.networks[role](cfg).parameters()) for role in meta["roles"]}
    skip = ("format", "version", "arch", "config", "roles", "source format", "training", "prior")
    facts = {k: v for k, v in meta.items() if k not in skip}
    if "prior" in meta:
        said = [f"{k} {v}" for k, v in meta["prior"]["values"].items() if isinstance(v, (str, int, float, bool))]
        facts["samples from"] = f"its stored prior ({', '.join([meta['prior']['kind'], *said])})"
    if "training" in meta:
        facts["resumable"] = f"yes (method {meta['training']['config']['method']}; gankd train --resume {path})"
        if meta["training"].get("teachers"):  # never its judges (gankd evaluate refuses them)
            facts["trained through"] = ", ".join(meta["training"]["teachers"])
    discriminators = [r for r in meta["roles"] if r.startswith("D")]
    return {"path": str(path), "format": meta.get("source format", f"gankd v{meta['version']}"),
            "architecture": meta["arch"], **architecture.describe(cfg),
            "networks": {role: f"{n:,} parameters" for role, n in params.items()},
            "discriminator": "yes" if discriminators else "no (generator only; D-based methods need one)", **facts}
