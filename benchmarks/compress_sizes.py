"""Size and CPU speed of a translation teacher's architecture at every student width, untrained.

    python benchmarks/compress_sizes.py RUN [RUN ...] [--widths 64,32,16,8] [--threads 1]
        [--out benchmarks/results/compress-sizes.json]

Parameters, multiply-accumulates and latency do not depend on the weights, so the widths the
compression bench did not train (SRP-KD's ngf 32, 16 and 8 against the teacher's 64) are measured
from freshly built generators of the teacher's config at each width, each in its own process, as
`gankd bench compress` measures its trained ones (`gankd.bench.compress.speed`: the deployable form,
batch 1 latency as the median of 50 forwards, images/s at batch 16). Cost: seconds per width.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import platform
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from gankd.bench.compress import speed
from gankd.checkpoint import load_checkpoint
from gankd.nets import Translator
from gankd.runs import checkpoint_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--widths", default="64,32,16,8")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/compress-sizes.json")
    args = parser.parse_args()
    rows = []
    for run in args.runs:
        ckpt = load_checkpoint(checkpoint_of(run))
        cfg = ckpt.network("G_AB" if "G_AB" in ckpt.roles else "G").cfg
        for width in (int(w) for w in args.widths.split(",")):
            G = Translator(dataclasses.replace(cfg, ngf=width))
            with tempfile.TemporaryDirectory() as tmp:
                file = Path(tmp) / "G.pt"
                torch.save({"config": G.cfg.to_dict(), "state": G.state_dict()}, file)
                with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as alone:
                    measured = alone.submit(speed, str(file), args.threads).result()
            rows.append({"teacher": str(run), "data": ckpt.meta["training"]["config"]["data"], **measured})
            print(json.dumps(rows[-1]))
    Path(args.out).write_text(json.dumps({"machine": platform.processor() or platform.machine(),
                                          "torch": torch.__version__, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
