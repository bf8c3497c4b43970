"""Priors: where a latent generator's inputs come from when it samples.

A prior turns seeds into a generator's inputs. The default, `normal`, is the z of NVlabs'
generate.py (numpy's RandomState(seed)). A recipe may learn another (DIP's mixture over features)
and return it from `Recipe.prior()`; the training loop then stores it in every checkpoint, and
`gankd generate`, `gankd evaluate`, evaluation during training and the comparison pictures all
sample through it (`families.latent.render`). `latents` holds fixed latents, such as the W+ codes
`gankd project` writes: seed i renders row i.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch

from gankd.errors import GankdError


class Prior:
    """Seeds -> inputs of a latent generator: {"z": [N, z_dim]} (with "c" [N, c_dim] if the prior
    conditions too) or {"ws": [N, num_ws, w_dim]}."""

    kind = ""
    conditions = False  # its inputs carry the generator's labels (or a w that already holds them)

    def inputs(self, seeds: list[int], G) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """(tensors, JSON values) that `from_state` rebuilds the prior from."""
        return {}, {}

    @classmethod
    def from_state(cls, tensors: dict[str, torch.Tensor], values: dict) -> "Prior":
        return cls()


def seed_latents(seeds, z_dim: int) -> torch.Tensor:
    """One z per seed from numpy's RandomState, as NVlabs' generate.py draws them."""
    return torch.from_numpy(np.stack([np.random.RandomState(s).randn(z_dim) for s in seeds])).float()


class Normal(Prior):
    kind = "normal"

    def inputs(self, seeds, G):
        return {"z": seed_latents(seeds, G.cfg.z_dim)}


class Latents(Prior):
    """Fixed latents [N, num_ws, w_dim] with a name each; seed i is row i."""

    kind = "latents"
    conditions = True

    def __init__(self, ws: torch.Tensor, names: list[str]):
        self.ws, self.names = ws.float(), names

    def inputs(self, seeds, G):
        if tuple(self.ws.shape[1:]) != (G.num_ws, G.cfg.w_dim):
            raise GankdError(f"the latents are {self.ws.shape[1]} styles of {self.ws.shape[2]} values; this generator "
                             f"takes {G.num_ws} of {G.cfg.w_dim}")
        outside = [s for s in seeds if not 0 <= s < len(self.ws)]
        if outside:
            raise GankdError(f"seed {outside[0]} names no latent: there are {len(self.ws)} (seeds 0-{len(self.ws) - 1})")
        return {"ws": self.ws[list(seeds)]}

    def state(self):
        return {"ws": self.ws}, {"names": self.names}

    @classmethod
    def from_state(cls, tensors, values):
        return cls(tensors["ws"], values["names"])

    @classmethod
    def read(cls, path: str | os.PathLike) -> "Latents":
        """The latents.safetensors `gankd project` writes (w [N, num_ws, w_dim], file names)."""
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                w = f.get_tensor("w")
                names = json.loads((f.metadata() or {}).get("gankd", "{}")).get("files")
        except Exception as err:  # safetensors raises several types for missing, foreign or damaged files
            raise GankdError(f"{path}: not a latents file of `gankd project` ({str(err).splitlines()[0][:100]})") \
                from None
        if w.dim() != 3:
            raise GankdError(f"{path}: w has shape {tuple(w.shape)}, not [images, styles, w_dim]")
        return cls(w, names or [f"latent{i:04d}" for i in range(len(w))])


class Mixture(Prior):
    """DIP's prior: z as `normal` draws it, and a conditioning vector e from a mixture fitted to the
    training images' features: component k with probability weights[k], then means[k] + L_k eps
    (L_k the Cholesky factor of its covariance; k-means centres have none and are used as they
    are). Both come from a generator of their own seeded by the seed (numpy's default_rng((seed,
    1))), so a seed's e does not depend on the batch. With `normalize`, e is put back on the unit
    sphere, where the training features lie. `values` name the extractor that made the features
    (`gankd generate --prior-image` computes an image's e with it)."""

    kind = "mixture"
    conditions = True

    def __init__(self, weights: torch.Tensor, means: torch.Tensor, scale_tril: torch.Tensor | None, values: dict):
        self.weights, self.means, self.scale_tril, self.values = weights.double(), means.double(), \
            (None if scale_tril is None else scale_tril.double()), values

    def conditioning(self, seeds: list[int]) -> torch.Tensor:
        """e [N, dim], one per seed."""
        out = []
        for seed in seeds:
            rng = np.random.default_rng((seed, 1))
            k = int(rng.choice(len(self.weights), p=(self.weights / self.weights.sum()).numpy()))
            e = self.means[k].numpy().copy()
            if self.scale_tril is not None:
                e += self.scale_tril[k].numpy() @ rng.standard_normal(len(e))
            out.append(e)
        e = torch.from_numpy(np.stack(out))
        if self.values.get("normalize"):
            e = torch.nn.functional.normalize(e, dim=1)
        return e.float()

    def inputs(self, seeds, G):
        if G.cfg.c_dim != self.means.shape[1]:
            raise GankdError(f"the prior draws {self.means.shape[1]} values; this generator takes {G.cfg.c_dim}")
        return {"z": seed_latents(seeds, G.cfg.z_dim), "c": self.conditioning(seeds)}

    def state(self):
        tensors = {"weights": self.weights, "means": self.means}
        if self.scale_tril is not None:
            tensors["scale_tril"] = self.scale_tril
        return tensors, self.values

    @classmethod
    def from_state(cls, tensors, values):
        return cls(tensors["weights"], tensors["means"], tensors.get("scale_tril"), values)


class Variations(Prior):
    """Fixed conditioning vectors e [M, dim] (real images' features: `gankd generate --prior-image`)
    under each of `seeds`' z: position p renders seeds[p % S] with e[p // S], S = len(seeds)."""

    kind = "variations"
    conditions = True

    def __init__(self, e: torch.Tensor, seeds: list[int]):
        self.e, self.seeds = e.float(), list(seeds)

    def __len__(self) -> int:
        return len(self.e) * len(self.seeds)

    def inputs(self, positions, G):
        if G.cfg.c_dim != self.e.shape[1]:
            raise GankdError(f"the images' features have {self.e.shape[1]} values; this generator takes {G.cfg.c_dim}")
        seeds = [self.seeds[p % len(self.seeds)] for p in positions]
        return {"z": seed_latents(seeds, G.cfg.z_dim), "c": self.e[[p // len(self.seeds) for p in positions]]}


PRIORS = {p.kind: p for p in (Normal, Latents, Mixture)}
