"""Pretrained folders, as models are kept on the Hugging Face Hub: what a trained model is, said once
for people (the model card) and for programs (config.json), beside its weights.

    DIR/model.safetensors  the networks and the prior, in gankd's checkpoint format (no training state)
    DIR/config.json        architecture, its config, networks, and what it was trained on and how
    DIR/README.md          the model card: YAML front matter (library_name: gankd, tags, datasets,
                           license), the data, the command and settings, the metrics, how to use it

Such a folder stands for its model file wherever a checkpoint is read (`gankd.runs`), and
`hf:OWNER/NAME` names one on the Hub. `from_pretrained` returns what `load_checkpoint` does.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import yaml

from gankd import __version__
from gankd.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from gankd.errors import CheckpointError, GankdError, OutputExistsError
from gankd.fileio import atomic_write, check_new_dir
from gankd.models import resolve_checkpoint
from gankd.runs import ADAPT_FILE, CHECKPOINTS, CONFIG as RUN_CONFIG, METRICS, MODEL, logged_rows

CONFIG, CARD = "config.json", "README.md"
REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
SET_BY_SAVE = ("format", "version", "arch", "config", "roles", "prior", "training", "source format")
USAGE = {  # family -> the command that renders its outputs
    "latent": "gankd generate {dir} --seeds 0-15 --out samples.png",
    "translation": "gankd translate {dir} IMAGES --out translated",
    "aging": "gankd age {dir} IMAGES --to 20,40,60 --out aged",
}


def from_pretrained(name: str | os.PathLike) -> Checkpoint:
    """A pretrained folder (or any checkpoint, run folder or `builtin:NAME`) as the `Checkpoint` that
    `load_checkpoint` gives: `.generator()` is the network to sample from, `.config` its settings,
    `.prior()` where its samples come from, `.meta` the facts. A name that is no local path but has
    the form OWNER/NAME is a Hugging Face Hub repository (downloaded unless offline); a local
    folder never touches the network."""
    if Path(name).exists() or not REPO_ID.fullmatch(str(name)):
        return load_checkpoint(name)
    return load_checkpoint(download(str(name)) / MODEL)


def download(repo_id: str) -> Path:
    """The Hub repository's pretrained folder in the Hugging Face cache: downloaded, or with
    HF_HUB_OFFLINE=1 (or GANKD_OFFLINE=1) only what the cache already holds."""
    from gankd.features.weights import offline

    if not REPO_ID.fullmatch(repo_id):
        raise CheckpointError(f"{repo_id!r} is not a Hugging Face repository id (OWNER/NAME)")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise CheckpointError(f"{repo_id}: reading from the Hugging Face Hub needs huggingface_hub "
                              "(pip install huggingface_hub), or download the folder and give its path") from None
    try:
        return Path(snapshot_download(repo_id, allow_patterns=[MODEL, CONFIG, CARD], local_files_only=offline()))
    except Exception as err:  # noqa: BLE001 - offline misses, HTTP and repository errors: all one line
        if offline():
            raise CheckpointError(f"Hugging Face repository {repo_id}: not in the Hugging Face cache, and downloads "
                                  "are off (HF_HUB_OFFLINE=1)") from None
        said = str(err).strip().splitlines()[0][:160] if str(err).strip() else "no reason given"
        raise CheckpointError(f"Hugging Face repository {repo_id}: cannot download it ({type(err).__name__}: "
                              f"{said})") from None


def save_pretrained(ckpt: str | os.PathLike, out: str | os.PathLike, force: bool = False,
                    metrics: list[str | os.PathLike] | None = None, license: str | None = None) -> Path:
    """Write the pretrained folder `out` of a checkpoint (a run folder: its newest): its networks and
    prior, config.json and the model card. The card's metrics are the run's own evaluation at the
    checkpoint's step (metrics.jsonl), the final evaluation of a `gankd adapt` folder holding the run,
    and the `gankd evaluate` metrics.json files given."""
    path = resolve_checkpoint(ckpt)
    model = load_checkpoint(path)
    reports = [read_report(Path(p)) for p in metrics or []]  # bad input is refused before writing
    out = Path(out)
    if not (force and out.is_dir()):
        try:
            check_new_dir(out)
        except OutputExistsError as err:
            if force:  # not a folder
                raise
            raise OutputExistsError(f"{err}, or pass --force to replace its model files") from None
    out.mkdir(parents=True, exist_ok=True)  # without new_dir's mark: the folder is published as it is
    facts = {k: v for k, v in model.meta.items() if k not in SET_BY_SAVE}
    save_checkpoint(out / MODEL, {role: model.network(role) for role in model.roles}, force=force,
                    prior=model.prior() if "prior" in model.meta else None, **facts)
    training = model.meta.get("training", {}).get("config")
    config = {"library_name": "gankd", "gankd_version": __version__, "architecture": model.meta["arch"],
              "family": model.architecture.family, "config": model.meta["config"], "networks": model.roles,
              **facts, **({"training": training} if training else {})}
    atomic_write(out / CONFIG, (json.dumps(config, indent=1) + "\n").encode())
    results = run_metrics(path, model.meta) + [row for report in reports for row in report_rows(report)]
    atomic_write(out / CARD, model_card(model, out, training, results, license).encode())
    return out


def read_report(path: Path) -> dict:
    """A metrics.json of `gankd evaluate`, with its path."""
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise GankdError(f"{path}: not a readable metrics.json ({getattr(err, 'strerror', None) or err})") \
            from None
    if not isinstance(report, dict) or not isinstance(report.get("metrics"), dict):
        raise GankdError(f"{path}: not a metrics.json of gankd evaluate (no metrics)")
    return {**report, "file": str(path)}


def report_rows(report: dict) -> list[dict]:
    """One row per metric of a metrics.json: its id (metric[extractor]), value(s), samples, reference."""
    rows = []
    for name, result in report["metrics"].items():
        values = {k: v for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        value = result["value"] if "value" in values else ", ".join(f"{k} {v:.4g}" for k, v in values.items())
        rows.append({"metric": result.get("id", f"{name}[{report.get('features', '?')}]"), "value": value,
                     "samples": report.get("samples"), "reference": report.get("reference"), "from": report["file"]})
    return rows


def run_metrics(path: Path, meta: dict) -> list[dict]:
    """The evaluations of the checkpoint's own step by the run that wrote it: metrics.jsonl's `eval/*`
    values (extractor and samples from the run's eval.* settings), and the final evaluation
    (eval-step-N/metrics.json) of a `gankd adapt` folder around the run."""
    run, step = path.parent.parent, meta.get("step")
    if path.parent.name != CHECKPOINTS or step is None:
        return []
    rows = []
    settings = meta.get("training", {}).get("config", {}).get("eval", {})
    for logged in logged_rows(run):
        if logged.get("step") == step:
            rows += [{"metric": f"{key[5:]}[{settings.get('features', '?')}]", "value": value,
                      "samples": settings.get("n"), "reference": settings.get("ref") or meta.get("data"),
                      "from": str(run / METRICS)} for key, value in logged.items() if key.startswith("eval/")]
    final = run.parent / f"eval-step-{step}" / "metrics.json"
    if (run.parent / ADAPT_FILE).is_file() and final.is_file():
        rows += report_rows(read_report(final))
    return rows


def model_card(model: Checkpoint, out: Path, training: dict | None, results: list[dict], license: str | None) -> str:
    """README.md: front matter the Hub reads, then data, command and settings, metrics, use."""
    meta, family = model.meta, model.architecture.family
    data = meta.get("data")
    front = {"library_name": "gankd", "tags": [t for t in ("gankd", "gan", meta["arch"], family, meta.get("method"),
                                                           "unconditional-image-generation" if family == "latent"
                                                           else "image-to-image") if t],
             **({"license": license} if license else {}), **({"datasets": [data]} if data else {})}
    lines = ["---", yaml.safe_dump(front, sort_keys=False).rstrip(), "---", "",
             f"# {out.name}", "",
             f"A {meta['arch']} model ({family} family, networks {', '.join(model.roles)}) saved by gankd "
             f"{__version__}.", "", "## Training data", ""]
    lines.append(f"`{data}` (gankd's data spec: a built-in set with filters, or a folder)." if data else
                 "Not recorded in the checkpoint.")
    said = [f"{meta[k]:,} {name}" for k, name in (("step", "steps"), ("images seen", "images seen"))
            if isinstance(meta.get(k), int)]
    if said:
        lines += ["", f"Trained for {' and '.join(said)}" + (f" with method `{meta['method']}`." if meta.get("method")
                                                               else ".")]
    lines += ["", "## Command and settings", ""]
    if meta.get("command"):
        lines += ["```bash", meta["command"], "```"]
    if training:
        lines += [f"The run's resolved settings; saved as `{RUN_CONFIG}`, `gankd train --config {RUN_CONFIG}` "
                  "trains it again:", "", "```yaml", yaml.safe_dump(training, sort_keys=False).rstrip(), "```"]
    if not meta.get("command") and not training:
        lines.append("Not recorded in the checkpoint.")
    lines += ["", "## Metrics", ""]
    if results:
        lines += ["| metric [extractor] | value | samples | reference | from |", "| --- | --- | --- | --- | --- |"]
        for r in results:
            value = r["value"] if isinstance(r["value"], str) else f"{r['value']:.6g}"
            cells = [r["metric"], value, r["samples"] or "-", r["reference"] or "-", r["from"]]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    else:
        lines.append("No evaluation was found for this checkpoint (`gankd evaluate`, then "
                     "`gankd save-pretrained ... --metrics metrics.json`).")
    lines += ["", "## How to use it", "", "With gankd installed:", "", "```bash",
              USAGE[family].format(dir=out.name), "```", "",
              "or `hf:OWNER/NAME` instead of the folder once it is on the Hugging Face Hub. In Python:", "",
              "```python", "import gankd", "", f'model = gankd.from_pretrained("{out.name}")  # a gankd Checkpoint',
              "G = model.generator()  # G_ema (else G), in eval mode"]
    if family == "latent":
        lines.append(f'images = gankd.sample("{out.name}", seeds=list(range(16)))  # uint8 [16, H, W, C]')
    lines += ["```", ""]
    return "\n".join(lines)
