"""gankd: knowledge transfer and distillation for GANs trained on scarce data.

The Python API mirrors the CLI (`gankd data show` -> `gankd.show_data`, and so on); names are
imported on first use so that `import gankd` and `gankd --help` stay fast.
"""

from importlib import import_module

__version__ = "0.10.0"

_API = {
    # data (gankd data ...)
    "open_source": "gankd.data.spec", "ImageDataset": "gankd.data.dataset",
    "list_builtins": "gankd.data.preview", "show_data": ("gankd.data.preview", "show"),
    "export_data": ("gankd.data.splits", "export"), "make_split": "gankd.data.splits",
    "verify_split": "gankd.data.splits", "load_split": "gankd.data.splits",
    # networks and checkpoints (gankd info, gankd convert)
    "StyleGAN2Config": "gankd.nets", "Generator": "gankd.nets", "Discriminator": "gankd.nets",
    "save_checkpoint": "gankd.checkpoint", "load_checkpoint": "gankd.checkpoint",
    "describe_checkpoint": ("gankd.checkpoint", "describe"),
    "convert_checkpoint": ("gankd.convert", "convert"),
    # pretrained folders, Hugging Face Hub style (gankd save-pretrained)
    "from_pretrained": "gankd.pretrained", "save_pretrained": "gankd.pretrained",
    # training (gankd train)
    "resolve_config": ("gankd.config", "resolve"), "RECIPES": "gankd.methods",
    "Recipe": "gankd.methods", "register_recipe": ("gankd.methods", "register"),
    # sampling (gankd generate)
    "generate": "gankd.generate", "sample": "gankd.generate",
    # latent space (gankd latent mix, interpolate, truncation)
    "style_mixing": "gankd.latents", "interpolation": "gankd.latents", "truncation_sweep": "gankd.latents",
    # evaluation (gankd evaluate)
    "evaluate": "gankd.metrics.evaluate", "Evaluator": "gankd.metrics.evaluate",
    "load_extractor": "gankd.features", "EXTRACTORS": "gankd.features",
    # compression (gankd distill, gankd export)
    "distill": "gankd.distill", "export_generator": ("gankd.export", "export"),
}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'gankd' has no attribute {name!r}")
    module, attr = _API[name] if isinstance(_API[name], tuple) else (_API[name], name)
    value = getattr(import_module(module), attr)
    globals()[name] = value
    return value
