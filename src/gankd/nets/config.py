"""What every architecture config shares: a frozen dataclass that round-trips through the JSON
of a checkpoint's metadata, refusing settings it does not know."""

from __future__ import annotations

import dataclasses


class NetConfig:
    label = "network"  # names the architecture in errors

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict):
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown {cls.label} settings: {', '.join(sorted(unknown))}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def require(self, positive: tuple[str, ...] = (), non_negative: tuple[str, ...] = (),
                resolutions: tuple[int, int] | None = None) -> None:
        """ValueError naming the first setting out of range (for __post_init__)."""
        r = getattr(self, "resolution", None)
        if resolutions and not (resolutions[0] <= r <= resolutions[1] and r & (r - 1) == 0):
            raise ValueError(f"resolution must be a power of two from {resolutions[0]} to {resolutions[1]}, got {r}")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)}")
