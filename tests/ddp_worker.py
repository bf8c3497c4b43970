"""Run by torchrun in test_train.py: train, then save this rank's networks to <out>/rank<r>.safetensors."""

import os
import sys

from gankd.checkpoint import save_checkpoint
from gankd.train import train

out, run_dir, *settings = sys.argv[1:]
result = train(overrides=settings, out=run_dir)
save_checkpoint(f"{out}/rank{os.environ['RANK']}.safetensors", result.nets.trained())
