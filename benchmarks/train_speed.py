"""Training and sampling speed of gankd's StyleGAN2, and of rosinality/stylegan2-pytorch at equal config.

    python benchmarks/train_speed.py [--rosinality PATH] [--res 32 256] [--out benchmarks/results/train_speed.json]

PATH is a local clone of https://github.com/rosinality/stylegan2-pytorch kept outside this repository
(never committed). Every measurement runs in its own process, so peak resident memory is per run.

Config ("equal config"): rosinality's defaults at that resolution (512 channels up to 32 px,
channel multiplier 2 above; 8 mapping layers; 512-d z and w), non-saturating loss, lazy R1 every 16
steps, path length every 4 on half the batch, G_ema, no augmentation; data are emoji. A step's cost
is measured three times (regularizers off, path length every step, R1 every step) and amortized
as main + pl/4 + r1/16, the same way for both implementations (at 256 px only the main step, one
timed step: a CPU takes minutes per step there). gankd runs its real loop
(`gankd.train.train`) and reads the per-step wall time it logs; rosinality runs its train.py loss
functions in the order of its training loop. Images/s is G_ema sampling with no gradient.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

WARMUP, TIMED = 1, 3
NEVER = 10 ** 6  # a regularization interval that never comes after step 0
DATA = "emoji:group=animals,tone=none"  # the data do not change a step's cost


def gankd_overrides(res: int, batch: int, precision: str, pl_interval: int, r1_interval: int, steps: int) -> list:
    return [f"data={DATA}", f"res={res}", f"batch={batch}", f"steps={steps}", "log_every=1", f"sample_every={NEVER}",
            f"checkpoint_every={NEVER}", f"precision={precision}", f"channels_last={precision == 'bf16'}",
            "arch.z_dim=512", "arch.w_dim=512", "arch.n_mlp=8", "arch.channel_base=32768", "arch.channel_max=512",
            "loss.pl_weight=2", f"loss.pl_interval={pl_interval}", f"loss.r1_interval={r1_interval}"]


def gankd_step(res: int, batch: int, precision: str, pl_interval: int, r1_interval: int, timed: int = TIMED) -> dict:
    """Seconds per step of gankd's training loop, median of the timed steps."""
    from gankd.train import train

    with tempfile.TemporaryDirectory() as tmp:
        train(overrides=gankd_overrides(res, batch, precision, pl_interval, r1_interval, WARMUP + timed),
              out=Path(tmp) / "run")
        lines = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()]
    return {"sec_per_step": statistics.median(line["time/sec_per_step"] for line in lines[WARMUP:])}


def gankd_sampling(res: int, batch: int, precision: str) -> dict:
    import torch

    from gankd.nets import Generator, StyleGAN2Config

    G = Generator(StyleGAN2Config(resolution=res, n_mlp=8, channel_base=32768, channel_max=512)).eval()
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    z = torch.randn(batch, 512)
    with torch.no_grad(), autocast:
        return {"images_per_sec": _rate(lambda: G(z, noise_mode="const"), batch)}


def rosinality_modules(repo: Path):
    import torch.utils.cpp_extension as ext

    ext.load = lambda *a, **k: types.SimpleNamespace()  # its CUDA kernels; on CPU it runs pure torch
    for name in ("lmdb", "tqdm"):  # its data set reader and progress bar, unused here
        if importlib.util.find_spec(name) is None:
            stub = sys.modules[name] = types.ModuleType(name)
            stub.__spec__ = importlib.machinery.ModuleSpec(name, None)
            stub.tqdm = lambda items, **kwargs: items
    sys.path.insert(0, str(repo))
    import model
    import train as their_train

    return model, their_train


def rosinality_step(repo: Path, res: int, batch: int, pl_interval: int, r1_interval: int) -> dict:
    """Seconds per step of rosinality's training step (train.py's functions, in its loop's order)."""
    import torch

    model, t = rosinality_modules(repo)
    G, D = model.Generator(res, 512, 8, channel_multiplier=2), model.Discriminator(res, channel_multiplier=2)
    G_ema = model.Generator(res, 512, 8, channel_multiplier=2).eval()
    t.accumulate(G_ema, G, 0)
    g_ratio, d_ratio = pl_interval / (pl_interval + 1), r1_interval / (r1_interval + 1)
    g_optim = torch.optim.Adam(G.parameters(), lr=0.002 * g_ratio, betas=(0.0, 0.99 ** g_ratio))
    d_optim = torch.optim.Adam(D.parameters(), lr=0.002 * d_ratio, betas=(0.0, 0.99 ** d_ratio))
    real_all = torch.rand(batch, 3, res, res) * 2 - 1
    mean_path_length = 0
    times = []
    for i in range(WARMUP + TIMED):
        start = time.perf_counter()
        real = real_all.clone()
        t.requires_grad(G, False), t.requires_grad(D, True)
        fake, _ = G(t.mixing_noise(batch, 512, 0.9, "cpu"))
        d_loss = t.d_logistic_loss(D(real), D(fake))
        D.zero_grad(), d_loss.backward(), d_optim.step()
        if i % r1_interval == 0:
            real.requires_grad = True
            real_pred = D(real)
            r1 = t.d_r1_loss(real_pred, real)
            D.zero_grad(), (10 / 2 * r1 * r1_interval + 0 * real_pred[0]).backward(), d_optim.step()
        t.requires_grad(G, True), t.requires_grad(D, False)
        fake, _ = G(t.mixing_noise(batch, 512, 0.9, "cpu"))
        g_loss = t.g_nonsaturating_loss(D(fake))
        G.zero_grad(), g_loss.backward(), g_optim.step()
        if i % pl_interval == 0:
            fake, latents = G(t.mixing_noise(batch // 2, 512, 0.9, "cpu"), return_latents=True)
            path_loss, mean_path_length, _ = t.g_path_regularize(fake, latents, mean_path_length)
            G.zero_grad(), (2 * pl_interval * path_loss + 0 * fake[0, 0, 0, 0]).backward(), g_optim.step()
        t.accumulate(G_ema, G, 0.5 ** (32 / (10 * 1000)))
        times.append(time.perf_counter() - start)
    return {"sec_per_step": statistics.median(times[WARMUP:])}


def rosinality_sampling(repo: Path, res: int, batch: int) -> dict:
    import torch

    model, _ = rosinality_modules(repo)
    G = model.Generator(res, 512, 8, channel_multiplier=2).eval()
    z = torch.randn(batch, 512)
    with torch.no_grad():
        return {"images_per_sec": _rate(lambda: G([z], randomize_noise=False), batch)}


def _rate(fn, batch: int, reps: int = 3) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return batch * reps / (time.perf_counter() - start)


def run_child(job: dict) -> dict:
    """Run one measurement in a fresh process; adds its peak resident memory."""
    proc = subprocess.Popen([sys.executable, __file__, "--job", json.dumps(job)], stdout=subprocess.PIPE,
                            env={**os.environ, "GANKD_QUIET": "1"})
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise SystemExit(f"measurement failed: {job}")
    return {**json.loads(out.decode().strip().splitlines()[-1]), "peak_rss_mb": round(usage.ru_maxrss / 1024)}


def do_job(job: dict) -> dict:
    kind = job.pop("kind")
    repo = Path(job.pop("repo")) if "repo" in job else None
    fn = {"gankd_step": gankd_step, "gankd_sampling": gankd_sampling,
          "rosinality_step": lambda **k: rosinality_step(repo, **k),
          "rosinality_sampling": lambda **k: rosinality_sampling(repo, **k)}[kind]
    return fn(**job)


def amortized(impl: str, res: int, batch: int, extra: dict) -> dict:
    """main + pl/4 + r1/16 from three runs; peak memory of the largest."""
    runs = {name: run_child({"kind": f"{impl}_step", "res": res, "batch": batch, **extra,
                             "pl_interval": pl, "r1_interval": r1})
            for name, (pl, r1) in {"main": (NEVER, NEVER), "pl": (1, NEVER), "r1": (NEVER, 1)}.items()}
    main = runs["main"]["sec_per_step"]
    sec = main + (runs["pl"]["sec_per_step"] - main) / 4 + (runs["r1"]["sec_per_step"] - main) / 16
    return {"sec_per_step": sec, "steps_per_sec": 1 / sec,
            "phases_sec": {k: v["sec_per_step"] for k, v in runs.items()},
            "peak_rss_mb": max(v["peak_rss_mb"] for v in runs.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rosinality", type=Path, help="clone of rosinality/stylegan2-pytorch (outside the repo)")
    parser.add_argument("--res", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "train_speed.json")
    parser.add_argument("--job", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        print(json.dumps(do_job(json.loads(args.job))))
        return
    import torch

    results = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                           "torch": torch.__version__, "python": platform.python_version()},
               "batch": args.batch, "warmup_steps": WARMUP, "timed_steps": TIMED, "runs": []}
    for res in args.res:
        for precision in ("fp32", "bf16"):
            row = {"implementation": "gankd", "res": res, "precision": precision}
            row.update(amortized("gankd", res, args.batch, {"precision": precision}) if res <= 64 else  # main only
                       {"phases_sec": {"main": run_child({"kind": "gankd_step", "res": res, "batch": args.batch,
                                                          "precision": precision, "pl_interval": NEVER,
                                                          "r1_interval": NEVER, "timed": 1})["sec_per_step"]}})
            sampling = run_child({"kind": "gankd_sampling", "res": res, "batch": args.batch, "precision": precision})
            row["images_per_sec"] = sampling["images_per_sec"]
            record(results, row, args.out)
        if args.rosinality and res <= 64:
            row = {"implementation": "rosinality", "res": res, "precision": "fp32",
                   **amortized("rosinality", res, args.batch, {"repo": str(args.rosinality)})}
            row["images_per_sec"] = run_child({"kind": "rosinality_sampling", "repo": str(args.rosinality),
                                               "res": res, "batch": args.batch})["images_per_sec"]
            record(results, row, args.out)
    print(args.out)


def record(results: dict, row: dict, out: Path) -> None:
    """Print a row and rewrite the JSON, so that an interrupted run keeps what it measured."""
    results["runs"].append(row)
    print(json.dumps(row), flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
