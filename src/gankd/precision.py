"""What `precision: auto` and `channels_last: none` (the defaults) mean on the device a run trains on.

- A CPU that computes bf16 natively (AVX512-BF16 or AMX-BF16): bf16 autocast with channels_last
  (NHWC) memory, the pair oneDNN's bf16 convolutions are fast with (docs/performance.md: 1.4-2.2x
  faster steps on this project's 2-core CPU, more for wider networks). Other CPUs convert bf16 in
  software, which gains nothing to pay for the rounding (not measured here): fp32.
- CUDA: fp32. The papers these methods come from report fp32 numbers (StyleGAN2-ADA's fp16 is
  limited to its highest-resolution layers, with clamping), the GPU configs reproduce them, and a
  GPU is not held back by fp32 as a CPU is; ask for precision=bf16 to trade exactness for speed.

The run stores the resolved values (config.yaml, every checkpoint), so a resume on another machine
computes what the run computed, and a report says what ran.
"""

from __future__ import annotations

from pathlib import Path

import torch

PRECISIONS = ("auto", "fp32", "bf16")
NATIVE_BF16 = ("avx512_bf16", "amx_bf16")  # CPU flags, as torch and /proc/cpuinfo name them


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware: torch's capability report (torch >= 2.5), else
    the flags Linux lists."""
    if hasattr(torch.cpu, "get_capabilities"):
        capabilities = torch.cpu.get_capabilities()
        return any(capabilities.get(flag, False) for flag in NATIVE_BF16)
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return any(flag in flags for flag in NATIVE_BF16)


def resolved(precision: str, channels_last: bool | None, device: torch.device) -> tuple[str, bool]:
    """(precision, channels_last) to train with: `auto` as above; channels_last `None` follows the
    precision (on with bf16)."""
    if precision == "auto":
        precision = "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"
    return precision, precision == "bf16" if channels_last is None else channels_last
