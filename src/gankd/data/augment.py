"""Differentiable augmentation of everything D sees, reals and fakes alike, in plain torch (CPU or GPU).

- DiffAugment (Zhao et al., 2020): color (brightness, saturation, contrast), translation by up to
  1/8 of the image with zero fill, cutout of a half-size square; always applied.
- ADA (Karras et al., 2020): geometric and color transforms, each applied with probability p; p
  follows the overfitting heuristic r_t = E[sign(D(real))] toward a target. Geometric transforms are
  one affine warp per image resampled bilinearly with reflection padding (NVlabs resamples
  through 2x-upsampled, filtered images; this simpler warp aliases slightly more).

Randomness comes from torch's global generator, which checkpoints save and restore.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from gankd.config import AugmentSettings, ConfigError

DIFFAUGMENT_OPS = ("color", "translation", "cutout")
ADA_OPS = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac",
           "brightness", "contrast", "lumaflip", "hue", "saturation")
ADA_GROUPS = {"bgc": ADA_OPS, "bg": ADA_OPS[:7], "c": ADA_OPS[7:]}


class Augment:
    """No augmentation; the interface the loop uses."""

    p = 0.0

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return images

    def observe(self, logits_real: torch.Tensor) -> None:
        """See D's logits on (augmented) reals; ADA adapts p from them."""

    def end_step(self, step: int, sum_over_ranks) -> None:
        """Called after every step with the number of steps done."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class DiffAugment(Augment):
    def __init__(self, ops: list[str]):
        self.ops = ops
        self.p = 1.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for op in self.ops:
            x = getattr(self, f"_{op}")(x)
        return x

    @staticmethod
    def _color(x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        x = x + (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean
        mean = x.mean(dim=[1, 2, 3], keepdim=True)
        return (x - mean) * (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean

    @staticmethod
    def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
        b, _, h, w = x.shape
        sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
        ty = torch.randint(-sy, sy + 1, (b, 1, 1), device=x.device)
        tx = torch.randint(-sx, sx + 1, (b, 1, 1), device=x.device)
        ys = (torch.arange(h, device=x.device)[None, :, None] + ty + 1).clamp(0, h + 1)
        xs = (torch.arange(w, device=x.device)[None, None, :] + tx + 1).clamp(0, w + 1)
        padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)
        batch = torch.arange(b, device=x.device)[:, None, None]
        return padded[batch, ys, xs].permute(0, 3, 1, 2)  # NHWC storage: channels_last

    @staticmethod
    def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
        b, _, h, w = x.shape
        ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
        oy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device) - ch // 2
        ox = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device) - cw // 2
        ys = torch.arange(h, device=x.device)[None, :, None]
        xs = torch.arange(w, device=x.device)[None, None, :]
        inside = (ys >= oy) & (ys < oy + ch) & (xs >= ox) & (xs < ox + cw)
        return x * (~inside)[:, None].to(x.dtype)


class ADA(Augment):
    """Adaptive augmentation: each op fires per image with probability p (rotations 1-sqrt(1-p) twice)."""

    # Strengths from the ADA paper's appendix.
    XINT, SCALE_STD, ROTATE_MAX, ANISO_STD, XFRAC_STD = 0.125, 0.2, 1.0, 0.2, 0.125
    BRIGHTNESS_STD, CONTRAST_STD, HUE_MAX, SATURATION_STD = 0.2, 0.5, 1.0, 1.0

    def __init__(self, ops: list[str], p: float, target: float, interval: int, speed_kimg: float, batch: int):
        self.ops, self.p, self.target, self.interval = set(ops), p, target, interval
        self.step_size = batch * interval / (speed_kimg * 1000)
        self.signs, self.count = 0.0, 0

    def observe(self, logits_real: torch.Tensor) -> None:
        self.signs += float(logits_real.detach().float().sign().sum())
        self.count += logits_real.numel()

    def end_step(self, step: int, sum_over_ranks) -> None:
        if step % self.interval:
            return
        signs, count = sum_over_ranks([self.signs, float(self.count)])
        if count:
            self.p = max(self.p + math.copysign(self.step_size, signs / count - self.target), 0.0)
        self.signs, self.count = 0.0, 0

    def state_dict(self) -> dict:
        return {"p": self.p, "signs": self.signs, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.p, self.signs, self.count = state["p"], state["signs"], state["count"]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.p <= 0:
            return x
        x = self._geometric(x)
        return self._color(x) if x.shape[1] in (1, 3, 4) else x

    def _fires(self, b: int, device, p: float | None = None) -> torch.Tensor:
        return torch.rand(b, device=device) < (self.p if p is None else p)

    def _geometric(self, x: torch.Tensor) -> torch.Tensor:
        b, dev = x.shape[0], x.device
        eye = torch.eye(3, device=dev).expand(b, 3, 3)
        m = eye.clone()  # maps output coordinates ([-1, 1]) to input coordinates
        ones, zeros = torch.ones(b, device=dev), torch.zeros(b, device=dev)

        def pick(fires, value, identity):
            return torch.where(fires, value, identity)

        if "xflip" in self.ops:
            m = m @ _scale(pick(self._fires(b, dev), 1 - 2 * torch.randint(0, 2, (b,), device=dev).float(), ones), ones)
        if "rotate90" in self.ops:
            quarter = torch.randint(0, 4, (b,), device=dev).float() * (math.pi / 2)
            m = m @ _rotate(pick(self._fires(b, dev), quarter, zeros))
        if "xint" in self.ops:
            size = x.shape[-1]
            t = torch.round((torch.rand(b, 2, device=dev) * 2 - 1) * self.XINT * size) * 2 / size
            fires = self._fires(b, dev)[:, None]
            m = m @ _translate(*pick(fires, t, torch.zeros_like(t)).unbind(1))
        if "scale" in self.ops:
            s = torch.exp2(torch.randn(b, device=dev) * self.SCALE_STD)
            s = pick(self._fires(b, dev), s, ones)
            m = m @ _scale(1 / s, 1 / s)
        p_rot = 1 - math.sqrt(max(1 - min(self.p, 1.0), 0.0))
        if "rotate" in self.ops:
            theta = (torch.rand(b, device=dev) * 2 - 1) * math.pi * self.ROTATE_MAX
            m = m @ _rotate(pick(self._fires(b, dev, p_rot), theta, zeros))
        if "aniso" in self.ops:
            s = pick(self._fires(b, dev), torch.exp2(torch.randn(b, device=dev) * self.ANISO_STD), ones)
            m = m @ _scale(1 / s, s)
        if "rotate" in self.ops:
            theta = (torch.rand(b, device=dev) * 2 - 1) * math.pi * self.ROTATE_MAX
            m = m @ _rotate(pick(self._fires(b, dev, p_rot), theta, zeros))
        if "xfrac" in self.ops:
            t = torch.randn(b, 2, device=dev) * self.XFRAC_STD * 2
            m = m @ _translate(*pick(self._fires(b, dev)[:, None], t, torch.zeros_like(t)).unbind(1))
        if torch.equal(m, eye):
            return x
        grid = F.affine_grid(m[:, :2].to(x.dtype), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    def _color(self, x: torch.Tensor) -> torch.Tensor:
        b, dev = x.shape[0], x.device
        c = torch.eye(4, device=dev).expand(b, 4, 4).clone()  # acts on (r, g, b, 1)
        ones, zeros = torch.ones(b, device=dev), torch.zeros(b, device=dev)
        luma = torch.tensor([1.0, 1.0, 1.0, 0.0], device=dev) / math.sqrt(3)
        if "brightness" in self.ops:
            shift = torch.where(self._fires(b, dev), torch.randn(b, device=dev) * self.BRIGHTNESS_STD, zeros)
            c = _translate3(shift) @ c
        if "contrast" in self.ops:
            s = torch.where(self._fires(b, dev), torch.exp2(torch.randn(b, device=dev) * self.CONTRAST_STD), ones)
            c = _scale3(s) @ c
        if "lumaflip" in self.ops:
            flip = torch.where(self._fires(b, dev), torch.randint(0, 2, (b,), device=dev).float(), zeros)
            c = (torch.eye(4, device=dev) - 2 * torch.outer(luma, luma) * flip[:, None, None]) @ c
        if "hue" in self.ops:
            theta = torch.where(self._fires(b, dev), (torch.rand(b, device=dev) * 2 - 1) * math.pi * self.HUE_MAX, zeros)
            c = _rotate_about(luma[:3], theta) @ c
        if "saturation" in self.ops:
            s = torch.where(self._fires(b, dev), torch.exp2(torch.randn(b, device=dev) * self.SATURATION_STD), ones)
            outer = torch.outer(luma, luma)
            c = (outer + (torch.eye(4, device=dev) - outer) * s[:, None, None]) @ c
        if torch.equal(c, torch.eye(4, device=dev).expand(b, 4, 4)):
            return x
        c = c.to(x.dtype)
        if x.shape[1] == 1:  # grey: the mean of the RGB rows acts on grey replicated to RGB
            row = c[:, :3].mean(dim=1)
            return x * row[:, :3].sum(dim=1)[:, None, None, None] + row[:, 3][:, None, None, None]
        rgb = torch.einsum("bij,bjhw->bihw", c[:, :3, :3], x[:, :3]) + c[:, :3, 3][:, :, None, None]
        return torch.cat([rgb, x[:, 3:]], dim=1) if x.shape[1] == 4 else rgb


def _mat3(rows) -> torch.Tensor:
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def _scale(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    o, z = torch.ones_like(sx), torch.zeros_like(sx)
    return _mat3([[sx, z, z], [z, sy, z], [z, z, o]])


def _rotate(theta: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(theta), torch.sin(theta)
    o, z = torch.ones_like(theta), torch.zeros_like(theta)
    return _mat3([[c, -s, z], [s, c, z], [z, z, o]])


def _translate(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    o, z = torch.ones_like(tx), torch.zeros_like(tx)
    return _mat3([[o, z, tx], [z, o, ty], [z, z, o]])


def _translate3(shift: torch.Tensor) -> torch.Tensor:
    m = torch.eye(4, device=shift.device).repeat(shift.shape[0], 1, 1)
    m[:, :3, 3] = shift[:, None]
    return m


def _scale3(s: torch.Tensor) -> torch.Tensor:
    m = torch.eye(4, device=s.device).repeat(s.shape[0], 1, 1)
    m[:, :3, :3] *= s[:, None, None]
    return m


def _rotate_about(axis: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Rotation by theta about a unit axis (Rodrigues), as 4x4 matrices."""
    k = torch.tensor([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]], device=theta.device)
    s, c = torch.sin(theta)[:, None, None], torch.cos(theta)[:, None, None]
    r = torch.eye(3, device=theta.device) + s * k + (1 - c) * (k @ k)
    m = torch.eye(4, device=theta.device).repeat(theta.shape[0], 1, 1)
    m[:, :3, :3] = r
    return m


def make_augment(settings: AugmentSettings, batch: int) -> Augment:
    """The augmentation a config asks for; `policy` "default" picks the method's usual ops."""
    if settings.kind == "none":
        return Augment()
    if settings.kind == "diffaugment":
        ops = _ops(settings.policy, DIFFAUGMENT_OPS, {"default": DIFFAUGMENT_OPS})
        return DiffAugment(ops)
    ops = _ops(settings.policy, ADA_OPS, {"default": ADA_OPS, **ADA_GROUPS})
    return ADA(ops, settings.p, settings.target, settings.interval, settings.speed_kimg, batch)


def _ops(policy: str, known: tuple[str, ...], groups: dict) -> list[str]:
    if policy in groups:
        return list(groups[policy])
    ops = [op.strip() for op in policy.split(",") if op.strip()]
    unknown = [op for op in ops if op not in known]
    if unknown or not ops:
        raise ConfigError(f"augment.policy: unknown ops {', '.join(unknown) or '(none given)'}; "
                          f"choose from {', '.join(known)} or {', '.join(groups)}")
    return ops
