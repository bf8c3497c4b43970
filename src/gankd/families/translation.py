"""The translation family: image-to-image GANs, A -> B (pix2pix, CycleGAN, and the methods built
on them).

One direction (roles G, D): fake B = G(A); D judges (A, B) side by side (`translation.d_input=pair`,
pix2pix) or B alone. Both directions (roles G_AB, G_BA, D_A, D_B, CycleGAN): fake B = G_AB(A) and
fake A = G_BA(B), D_B judges B images and D_A judges A images. Phases: G_main (the adversarial
terms; recipes add L1, cycle and identity terms), then D_main, which judges the fakes of the same
forward pass (detached; a recipe may swap them for older ones, CycleGAN's image pool), real and
fake halves each weighted 1/2 as in the originals. Reals are x-flipped at random with `mirror`
(a pair together). Sample grids show fixed test inputs: input, output, ground truth. Outputs are
made as pix2pix makes them at test time (`translate`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankd.data.translation import TranslationDataset, open_translation
from gankd.families.base import Family, Phase
from gankd.errors import ConfigError
from gankd.losses.adversarial import discriminator_loss, generator_loss
from gankd.methods.base import DataInfo, Nets

GRID_INPUTS = 12


@dataclass
class Translated:
    """What a translation phase computed, for a recipe's terms (fake_a only with two directions;
    the generators' feature taps of the same forward passes in G_main only)."""

    step: int
    nets: Nets
    real_a: torch.Tensor
    real_b: torch.Tensor
    fake_b: torch.Tensor | None = None
    fake_a: torch.Tensor | None = None
    features_b: dict | None = None  # taps of the generator that made fake_b
    features_a: dict | None = None


def flip_together(*images: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The same random x-flips (probability 1/2 each) for every tensor of one batch."""
    flip = torch.rand(len(images[0]), 1, 1, 1, device=images[0].device) < 0.5
    return tuple(torch.where(flip, x.flip(3), x) for x in images)


class TranslationFamily(Family):
    name = "translation"

    @staticmethod
    def dataset(cfg) -> TranslationDataset:
        task = open_translation(cfg.data)
        return TranslationDataset(*task.train, task.paired, cfg.res, cfg.seed, upscale=cfg.upscale)

    @staticmethod
    def check(cfg) -> None:
        try:
            cfg.translation_config(3, 3)
        except ValueError as err:
            raise ConfigError(f"translation: {err}") from None
        if cfg.eval.every and (cfg.eval.ref or cfg.eval.best):
            raise ConfigError("eval.ref and eval.best are for generators: a translation model is evaluated on its "
                              "task's test part, and its checkpoints are all kept by step")

    @staticmethod
    def data_info(data: TranslationDataset) -> DataInfo:
        a, b = data.channels
        return DataInfo(a, 0, len(data), data, out_channels=b)

    def __init__(self, cfg, nets, recipe, data, augment, dist, memory):
        self.cfg, self.nets, self.recipe, self.dist, self.memory = cfg, nets, recipe, dist, memory
        self.dev = dist.device
        self.cycle = "G_AB" in nets.roles
        self.pair_d = next(iter(nets.roles.values())).cfg.d_input == "pair"
        task = open_translation(cfg.data)
        test = task.test or (task.train[0], task.train[1] if task.paired else task.train[0])
        shown = TranslationDataset(*test, True, cfg.res, upscale=cfg.upscale)
        picks = range(min(GRID_INPUTS, len(shown)))
        self.grid_a = torch.stack([shown[i]["a"] for i in picks]).to(self.dev)
        self.grid_b = torch.stack([shown[i]["b"] for i in picks]).to(self.dev)
        self._fakes: dict[str, torch.Tensor] = {}
        self._test = None  # (inputs, ground truth) of the task's test part, read at the first evaluation

    def phases(self) -> list[Phase]:
        return [Phase("G_main", "G"), Phase("D_main", "D")]

    def batch(self, item: dict) -> dict:
        a = item["a"].to(self.dev, memory_format=self.memory, non_blocking=True)
        b = item["b"].to(self.dev, memory_format=self.memory, non_blocking=True)
        if self.cfg.mirror:
            a, b = flip_together(a, b) if not self.cycle else (flip_together(a)[0], flip_together(b)[0])
        return {"a": a, "b": b}

    def judge(self, D, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return D(torch.cat([a, b], 1) if self.pair_d else b)

    def terms(self, phase: str, step: int, batch: dict):
        a, b, roles, kind = batch["a"], batch["b"], self.nets.roles, self.cfg.loss.kind
        if phase == "G_main":
            if self.cycle:
                (fake_b, feats_b), (fake_a, feats_a) = roles["G_AB"](a, return_features=True), \
                    roles["G_BA"](b, return_features=True)
                terms = {"adv_ab": generator_loss(self.judge(roles["D_B"], a, fake_b), kind),
                         "adv_ba": generator_loss(self.judge(roles["D_A"], b, fake_a), kind)}
                self._fakes = {"b": fake_b.detach(), "a": fake_a.detach()}
            else:
                (fake_b, feats_b), fake_a, feats_a = roles["G"](a, return_features=True), None, None
                terms = {"adv": generator_loss(self.judge(roles["D"], a, fake_b), kind)}
                self._fakes = {"b": fake_b.detach()}
            return terms, Translated(step, self.nets, a, b, fake_b, fake_a, feats_b, feats_a)
        fakes = self.recipe.discriminator_fakes(self._fakes)
        if not self.cycle:
            halves = discriminator_loss(self.judge(roles["D"], a, b), self.judge(roles["D"], a, fakes["b"]), kind)
            return {k: v / 2 for k, v in halves.items()}, Translated(step, self.nets, a, b, fakes["b"])
        terms = {}
        for side, real, other in (("a", a, b), ("b", b, a)):
            D = roles[f"D_{side.upper()}"]
            halves = discriminator_loss(self.judge(D, other, real), self.judge(D, other, fakes[side]), kind)
            terms.update({f"{k}_{side}": v / 2 for k, v in halves.items()})
        return terms, Translated(step, self.nets, a, b, fakes["b"], fakes["a"])

    def generator(self):
        return self.nets.roles["G_AB" if self.cycle else "G"]

    @staticmethod
    def evaluation_sets(cfg):
        """The task's test B images (reference) and training B images."""
        task = open_translation(cfg.data)
        if task.test is None:
            raise ConfigError(f"eval.every: {cfg.data} has no test part to evaluate on (testA/ and testB/, or test/)")
        return task.test[1], task.train[1]

    def test_part(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, uint8 ground truth) of the task's test part, as `gankd evaluate` reads them; read once."""
        from gankd.metrics.evaluate import test_pairs

        if self._test is None:
            self._test = test_pairs(self.cfg.data, self.generator().cfg, self.cfg.upscale)[:2]
        return self._test

    def evaluation_images(self, n: int, noise: str) -> torch.Tensor:
        """Every test input translated, as `gankd evaluate` translates them (`n` and `noise` do not
        apply: the test part is the sample)."""
        return translate_uint8(self.generator(), self.test_part()[0].to(self.dev))

    def evaluation_truth(self) -> torch.Tensor | None:
        return self.test_part()[1]

    def grid(self) -> torch.Tensor:
        """Rows of (input, output, ground truth) for fixed test inputs, translated as `translate` does."""
        out = translate(self.generator(), self.grid_a)
        a = self.grid_a if self.grid_a.shape[1] == out.shape[1] else self.grid_a[:, :1].expand_as(out)
        return torch.stack([a, out.to(a.device), self.grid_b], 1).flatten(0, 1).float().cpu()


@torch.no_grad()
def translate(G, images: torch.Tensor, seed: int = 0, return_features: bool = False):
    """G's outputs for `images` [N, C, R, R] in [-1, 1], one image at a time in training mode, as
    pix2pix's paper and test.py run it (batch statistics of the test image, dropout on), with
    dropout seeded; the normalisation buffers and the caller's random streams are left as they were.
    With `return_features`, (outputs, G's feature taps) (a distillation teacher's targets)."""
    saved = {k: v.clone() for k, v in G.named_buffers()}
    mode = G.training
    G.train()
    dev = images.device
    try:
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed(seed)
            each = [G(images[i:i + 1], return_features=return_features) for i in range(len(images))]
    finally:
        G.train(mode)
        for k, v in G.named_buffers():
            v.copy_(saved[k])
    if not return_features:
        return torch.cat(each)
    return torch.cat([o for o, _ in each]), {k: torch.cat([f[k] for _, f in each]) for k in each[0][1]}


def translate_uint8(G, images: torch.Tensor) -> torch.Tensor:
    """`translate`'s outputs as uint8 [N, C, R, R], the form metrics take."""
    from gankd.images import to_uint8

    return torch.from_numpy(to_uint8(translate(G, images))).permute(0, 3, 1, 2).contiguous()
