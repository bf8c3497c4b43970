"""Seeds as users give them: one valid range (numpy's, 0 to 2**32 - 1) for every command, and seed
lists such as `0-15`, `1,5,9` or `0-3,10`."""

from __future__ import annotations

from gankd.errors import GankdError

SEED_LIMIT = 2**32
MAX_SEEDS = 1_000_000  # per command: enough for a 50k FID set, small enough to list in memory


def check_seed(seed: int, what: str = "seed", count: int = 1) -> None:
    """Refuse a seed (or the run of `count` seeds starting there) outside 0 .. 2**32 - 1."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0 or seed + count > SEED_LIMIT:
        span = f" .. {seed} + {count - 1}" if count > 1 else ""
        raise GankdError(f"{what} must be in 0..{SEED_LIMIT - 1}, got {seed}{span}")


def parse_seeds(text: str) -> list[int]:
    """'0-7', '1,5,9' or '0-3,10' -> list of seeds, at most MAX_SEEDS."""
    usage = f"bad seeds {text!r}: use a range like 0-15, a list like 1,5,9, or both"
    ranges = []
    try:
        for part in filter(None, text.split(",")):
            lo, _, hi = part.partition("-")
            lo, hi = int(lo), int(hi) if hi else int(lo)
            if hi < lo:
                raise GankdError(f"{usage} ({part} runs backwards)")
            if hi >= SEED_LIMIT:
                raise GankdError(f"{usage} (a seed must be below 2**32)")
            ranges.append(range(lo, hi + 1))
    except ValueError:
        raise GankdError(usage) from None
    count = sum(len(r) for r in ranges)
    if not count:
        raise GankdError("no seeds given")
    if count > MAX_SEEDS:
        raise GankdError(f"seeds {text!r} name {count:,} images; at most {MAX_SEEDS:,} per command")
    return [seed for r in ranges for seed in r]
