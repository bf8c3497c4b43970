"""DIP, the data instance prior (Mangla et al., WACV 2022): a GAN conditioned on a frozen network's
features of each training image, sampled at test time from a mixture fitted to those features.

DIP is a conditioning, not a method of its own: `<method>+dip` (`scratch+dip`, `finetune+dip`,
`freezed+dip`, `cdc+dip`, `d3t+dip`, `kd-dlgan+dip`) is the method with the instance prior on top,
built by `with_dip`; its settings are `dip.*`. The paper has no public code; gankd decides:
- e_i = C(x_i) for every training image at the training resolution, C a frozen extractor of the
  registry (`dip.extractor`, default gankd's CLIP image tower, a teacher and so never the run's
  judge), L2-normalised (`dip.normalize`); cached with the extractor's id like reference features.
- e replaces the data's labels (`ImageDataset.condition_on`): G takes it where a conditional G
  takes a label (StyleGAN2: embedded and concatenated to z before the mapping, as NVlabs'
  conditional model; BigGAN: the shared linear embedding conditional BN reads), and D is a
  projection discriminator D(x, e) = psi(phi(x)) + <W e, phi(x)> (`dip.project=false`: W held at
  zero, so D does not see e: the ablation, StyleGAN2 only). A pretrained unconditional source
  takes e on through layers that start at zero.
- The loss is the base method's (its adversarial loss and terms): each real is judged with its own
  e; each fake is made from, and judged with, the e of a training image drawn uniformly, the
  expectation of the paper's objective (priors of real images) drawn independently of the reals D
  sees in the same step, as conditional GANs draw labels.
- `dip.consistency`: weight of mean |C(G(z, e)) - e|^2 in G's loss (the paper's optional feature
  consistency; 0, off, by default).
- Sampling: a Gaussian mixture fitted to {e_i} (scikit-learn; `dip.covariance` full by default;
  components `dip.components`, 0: min(10, n // 10), at least 1) or k-means centres (`dip.fit=kmeans`;
  0: min(100, n // 10)), stored in every checkpoint (`priors.Mixture`): `gankd generate`,
  `gankd evaluate`, evaluation during training and the pictures sample through it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from gankd.errors import ConfigError, DataError, GankdError
from gankd.methods.base import DataInfo, Nets, PhaseData, Recipe, composed
from gankd.priors import Mixture

FITS = ("gmm", "kmeans")
COVARIANCES = ("full", "diag", "spherical", "tied")
STATE = "dip.prior."  # the recipe-state keys of the fitted prior


@dataclass
class DIPOptions:
    """The `dip.*` settings of any `<method>+dip`."""

    extractor: str = "clip-gankd"  # the frozen network whose features condition the GAN
    weights: str = ""  # a weights file for it
    normalize: bool = True  # L2-normalise each e
    fit: str = "gmm"  # gmm (few-shot, limited data) or kmeans (large sets)
    components: int = 0  # mixture components or k-means centres; 0: from the number of images
    covariance: str = "full"  # of the mixture: full, diag, spherical or tied
    project: bool = True  # a projection discriminator; false: D does not see e (ablation)
    consistency: float = 0.0  # weight of |C(G(z, e)) - e|^2 in G's loss


def fit_prior(features: np.ndarray, options: DIPOptions, seed: int, values: dict) -> Mixture:
    """The mixture DIP samples e from, fitted to the training features only."""
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture

    n, dim = features.shape
    auto = max(1, min(100 if options.fit == "kmeans" else 10, n // 10))
    k = options.components or auto
    if k > n:
        raise ConfigError(f"dip.components={k} is more than the {n} training images")
    x = features.astype(np.float64)
    if options.fit == "kmeans":
        km = KMeans(k, n_init=10, random_state=seed).fit(x)
        weights, means, tril = np.bincount(km.labels_, minlength=k).astype(np.float64), km.cluster_centers_, None
    else:
        gmm = GaussianMixture(k, covariance_type=options.covariance, random_state=seed).fit(x)
        cov = gmm.covariances_
        cov = {"full": lambda: cov, "tied": lambda: np.broadcast_to(cov, (k, dim, dim)),
               "diag": lambda: np.stack([np.diag(c) for c in cov]),
               "spherical": lambda: np.stack([np.eye(dim) * c for c in cov])}[options.covariance]()
        weights, means, tril = gmm.weights_, gmm.means_, np.linalg.cholesky(cov)
    values = {**values, "fit": options.fit, "components": k, "images": n,
              "covariance": options.covariance if options.fit == "gmm" else None}
    return Mixture(torch.from_numpy(np.asarray(weights)), torch.from_numpy(np.asarray(means)),
                   None if tril is None else torch.from_numpy(np.ascontiguousarray(tril)), values)


def prior_extractor(options: DIPOptions):
    """The frozen extractor that gives DIP its features, or one clear line."""
    from gankd.features import load_extractor

    try:
        return load_extractor(options.extractor, options.weights or None)
    except GankdError as err:
        how = str(err).replace("--weights PATH", "dip.weights=PATH")
        raise ConfigError(f"dip.extractor {options.extractor}: {how}") from None


def embed_images(extractor, images: torch.Tensor, normalize: bool, where, cache: bool = True) -> np.ndarray:
    """Features of uint8 images [N, C, R, R] (cached, with `cache`), L2-normalised if asked; an
    image whose features are not finite is named (`where(i)`)."""
    from gankd.metrics.reference import cached_features, embed_all

    features = cached_features(extractor, images, 64)[0] if cache else embed_all(extractor, images, 64).numpy()
    bad = np.flatnonzero(~np.isfinite(features).all(1))
    if len(bad):
        raise DataError(f"{where(int(bad[0]))}: its {extractor.kind} features are not finite; DIP cannot "
                        "condition on this image")
    if normalize:
        features = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    return features.astype(np.float32)


class InstancePrior:
    """The DIP part of a `<method>+dip` recipe; it comes before the method in the class's bases, so
    each hook adds to the method's own (see the module's docstring)."""

    base: type[Recipe]

    @classmethod
    def option_sections(cls) -> dict[str, type]:
        return {**cls.base.option_sections(), "dip": DIPOptions}

    def __init__(self, cfg):
        self.dip = DIPOptions(**cfg.options.get("dip", {}))
        o = self.dip
        if o.fit not in FITS or o.covariance not in COVARIANCES:
            raise ConfigError(f"dip.fit must be one of {', '.join(FITS)} and dip.covariance one of "
                              f"{', '.join(COVARIANCES)}, not {o.fit!r} and {o.covariance!r}")
        if o.components < 0 or o.consistency < 0:
            raise ConfigError("dip.components and dip.consistency must be 0 or more")
        super().__init__(cfg)  # checks the teachers, this extractor among them, against the judge
        self.mixture: Mixture | None = None
        self.held: set[int] = set()  # D's projection held at W = 0 (dip.project=false): D(x, e) = psi(phi(x))

    def teachers(self) -> list[str]:
        return [*super().teachers(), self.dip.extractor]

    def build(self, data: DataInfo) -> Nets:
        extractor = prior_extractor(self.dip)
        dataset = data.dataset
        images = torch.stack([dataset.uint8(i) for i in range(len(dataset))])
        features = embed_images(extractor, images, self.dip.normalize, dataset.source.where)
        dataset.condition_on(features)
        values = {"extractor": self.dip.extractor, "extractor_id": extractor.id, "normalize": self.dip.normalize}
        self.mixture = fit_prior(features, self.dip, self.cfg.seed, values)
        nets = super().build(replace(data, c_dim=features.shape[1]))
        if not self.dip.project:
            head = getattr(nets.D, "project", None)
            if head is None:
                raise ConfigError("dip.project=false holds a StyleGAN2 projection head at zero; this discriminator "
                                  "has none (BigGAN's spectral norm cannot be zero)")
            with torch.no_grad():
                for p in head.parameters():
                    p.zero_()
            self.held = {id(p) for p in head.parameters()}
        if self.dip.consistency:
            nets.frozen["dip_extractor"] = copy.deepcopy(extractor).eval().requires_grad_(False)
        return nets

    def trainable(self, nets: Nets) -> dict[str, list]:
        params = super().trainable(nets)
        return {name: [p for p in group if id(p) not in self.held] for name, group in params.items()}

    def losses(self, phase: str, data: PhaseData) -> dict[str, torch.Tensor]:
        terms = super().losses(phase, data)
        if phase == "G_main" and self.dip.consistency:
            e = data.nets.frozen["dip_extractor"].embed(data.fake, grad=True)
            e = F.normalize(e, dim=1) if self.dip.normalize else e
            terms["dip_consistency"] = self.dip.consistency * (e - data.gen_c.float()).square().sum(1).mean()
        return terms

    def prior(self) -> Mixture:
        return self.mixture

    def state_dict(self) -> dict:
        return {**super().state_dict(), **{STATE + k: v.clone() for k, v in self.mixture.state()[0].items()}}

    def load_state_dict(self, state: dict) -> None:
        """The stored prior replaces the one fitted at build (equal but for library versions)."""
        mine = {k[len(STATE):]: v.clone() for k, v in state.items() if k.startswith(STATE)}
        self.mixture = Mixture.from_state(mine, self.mixture.values)
        super().load_state_dict({k: v for k, v in state.items() if not k.startswith(STATE)})


@lru_cache(maxsize=None)
def with_dip(base: type[Recipe]) -> type[Recipe]:
    """The recipe class `<base>+dip` (latent methods: DIP conditions latent generators)."""
    return composed(InstancePrior, base, "dip", "latent", "with DIP's instance prior (`dip.*`)")
