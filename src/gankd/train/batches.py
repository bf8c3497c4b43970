"""Which images each process sees at each step: a pure function of (seed, step), so a resumed run
reads exactly the batches an uninterrupted one would, and N processes split one global batch."""

from __future__ import annotations

import torch


class StepBatches(torch.utils.data.Sampler):
    """Index lists for steps start..stop-1 on one rank: epoch e is a permutation seeded by (seed, e);
    step s takes global positions s*batch .. (s+1)*batch-1 of the concatenated epochs, and rank r
    its r-th contiguous share of them."""

    def __init__(self, size: int, batch: int, seed: int, rank: int = 0, world: int = 1,
                 start: int = 0, stop: int = 0):
        if batch % world:
            raise ValueError(f"the batch ({batch}) must divide evenly among {world} processes")
        self.size, self.batch, self.seed, self.rank, self.world = size, batch, seed, rank, world
        self.start, self.stop = start, stop
        self._epoch, self._perm = -1, None

    def __len__(self) -> int:
        return max(self.stop - self.start, 0)

    def _position(self, pos: int) -> int:
        epoch, offset = divmod(pos, self.size)
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.size, generator=gen)
        return int(self._perm[offset])

    def indices(self, step: int) -> list[int]:
        share = self.batch // self.world
        first = step * self.batch + self.rank * share
        return [self._position(pos) for pos in range(first, first + share)]

    def __iter__(self):
        for step in range(self.start, self.stop):
            yield self.indices(step)
