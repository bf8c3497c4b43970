"""The `gankd` command: a thin layer over the Python API. Errors print one line and exit 2."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from gankd.errors import ConfigError, GankdError, Interrupted
from gankd.fileio import STORAGE_ERRNOS, storage_error

try:  # recent typer carries its own copy of click
    from typer._click.exceptions import UsageError
except ImportError:
    from click.exceptions import UsageError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="gankd: GANs for scarce data, by transfer and distillation.")
data_app = typer.Typer(no_args_is_help=True, help="Built-in data sets, exports and few-shot splits.")
app.add_typer(data_app, name="data")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks: methods x targets x seeds under one protocol.")
app.add_typer(bench_app, name="bench")

SPEC_HELP = "a built-in set with filters (emoji:group=animals,tone=none), a folder, or a zip"


def checked_device(name: str) -> str:
    from gankd.devices import pick_device

    return str(pick_device(name))


def say(text: str) -> None:
    typer.echo(text)


@data_app.command("list")
def data_list(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """List the built-in data sets with their label fields and counts."""
    from gankd.data.preview import list_builtins

    rows = list_builtins()
    if as_json:
        say(json.dumps(rows, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("set", "images", "label fields (distinct values)", "options", "description")
    for r in rows:
        table.add_row(r["name"], str(r["images"] or "-"),
                      ", ".join(f"{k} ({v})" if v is not None else k for k, v in r["fields"].items()),
                      ", ".join(r["options"]) or "-", r["description"])
    Console().print(table)


@data_app.command("show")
def data_show(spec: str = typer.Argument(..., help=SPEC_HELP),
              out: Optional[Path] = typer.Option(None, "--out", "-o", help="PNG to write [default: <spec>.png]"),
              n: int = typer.Option(64, help="number of images"),
              res: int = typer.Option(64, help="tile resolution"),
              seed: int = typer.Option(0, help="seed of the random choice of images"),
              force: bool = typer.Option(False, help="replace an existing file")) -> None:
    """Write a grid PNG of a data set's images."""
    from gankd.data.preview import show

    say(str(show(spec, out, n=n, resolution=res, seed=seed, force=force)))


@data_app.command("export")
def data_export(spec: str = typer.Argument(..., help=SPEC_HELP),
                out_dir: Path = typer.Argument(..., help="new folder to write"),
                res: Optional[int] = typer.Option(None, help="crop and resize to this resolution")) -> None:
    """Write a data set's images as PNGs, with labels.json (and dataset.json when conditional)."""
    from gankd.data.spec import open_source
    from gankd.data.splits import export

    source = open_source(spec)
    say(f"{export(source, out_dir, res)}: {len(source)} images")


@data_app.command("split")
def data_split(spec: str = typer.Argument(..., help=SPEC_HELP),
               out_dir: Path = typer.Argument(..., help="new folder for train/, eval/ and manifest.json"),
               shots: int = typer.Option(10, help="number of training images"),
               seed: int = typer.Option(0, help="seed of the split")) -> None:
    """Write a seeded n-shot split: the shots, the held-out evaluation images, and a checksummed manifest."""
    from gankd.data.spec import open_source
    from gankd.data.splits import make_split

    manifest = make_split(open_source(spec), shots, seed, out_dir, spec)
    say(f"{out_dir}: {manifest['shots']} training shots, {manifest['total'] - manifest['shots']} evaluation images")


@data_app.command("verify")
def data_verify(split_dir: Path = typer.Argument(..., help="a folder written by `gankd data split`")) -> None:
    """Check a split folder against its manifest (files and sha256)."""
    from gankd.data.splits import verify_split

    manifest = verify_split(split_dir)
    say(f"{split_dir}: OK, {len(manifest['files'])} files match the manifest")


@app.command()
def generate(ckpt: Path = typer.Argument(..., help="checkpoint"),
             seeds: Optional[str] = typer.Option(None, help="seeds, e.g. 0-15 or 1,5,9 [default: 0-15]"),
             latents: Optional[Path] = typer.Option(None, help="render the latents.safetensors of `gankd project` "
                                                               "instead of seeds"),
             trunc: float = typer.Option(1.0, help="truncation psi (1 = none)"),
             noise: str = typer.Option("const", help="noise mode: const, random or none"),
             class_index: Optional[int] = typer.Option(None, "--class", help="class of a conditional generator"),
             prior_image: Optional[list[Path]] = typer.Option(
                 None, help="a DIP model: variations of this real image (through its features); repeatable"),
             interpolate: int = typer.Option(0, help="with two --prior-image: this many steps from the first to the second"),
             grid: Optional[Path] = typer.Option(None, help="write a grid PNG here"),
             outdir: Optional[Path] = typer.Option(None, help="write one PNG per seed into this new folder"),
             batch: int = typer.Option(16, help="batch size"),
             device: str = typer.Option("cpu", help="torch device: cpu, cuda, cuda:N or auto", callback=checked_device),
             force: bool = typer.Option(False, help="replace an existing grid file")) -> None:
    """Generate images from a checkpoint."""
    from gankd.generate import generate as run

    for path in run(ckpt, seeds, grid_path=grid, outdir=outdir, force=force, latents=latents, truncation=trunc,
                    noise_mode=noise, class_index=class_index, batch_size=batch, device=device,
                    prior_images=prior_image, interpolate=interpolate):
        say(str(path))


@app.command()
def info(ckpt: Path = typer.Argument(..., help="checkpoint"),
         as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Describe a checkpoint (gankd, rosinality .pt or NVlabs .pkl): architecture, sizes, networks, step."""
    from gankd.checkpoint import describe

    facts = describe(ckpt)
    if as_json:
        say(json.dumps(facts, indent=1))
        return
    for key, value in facts.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items())
        say(f"{key:>18}: {value}")


@app.command()
def convert(src: Path = typer.Argument(..., help="gankd .safetensors, rosinality .pt or NVlabs .pkl"),
            dst: Path = typer.Argument(..., help="file to write: .safetensors (gankd) or .pt (rosinality)"),
            to: Optional[str] = typer.Option(None, help="gankd or rosinality [default: from DST's extension]"),
            force: bool = typer.Option(False, help="replace an existing file")) -> None:
    """Convert a checkpoint between formats, keeping G, G_ema and D and their exact weights."""
    from gankd.convert import convert as run

    say(f"{dst}: written as {run(src, dst, to=to, force=force)}")


@app.command()
def evaluate(target: str = typer.Argument(..., help="checkpoint, builtin:NAME, run folder, or folder/zip of images; "
                                                    "a translation model is run on the test inputs of --ref"),
             ref: str = typer.Option(..., help="reference: a translation task for a translation model; else a split "
                                                "folder (its eval/ images; train/ are the shots), "
                                                "a folder, " + SPEC_HELP.split(", ", 1)[1] + ", or stats .npz"),
             metrics: Optional[str] = typer.Option(None, help="comma list of fid, kid, pr, intra_lpips, copying; for a "
                                                               "translation model also l1, psnr, ssim, lpips "
                                                               "[default: fid,kid; a translation model: all of those]"),
             features: str = typer.Option("domain", help="domain, inception, clip[:ARCH] or lpips[:alex|vgg]"),
             n: int = typer.Option(5000, help="number of generated samples (seeds SEED..SEED+n-1)"),
             seed: int = typer.Option(0, help="first seed; also seeds KID subsets and k-means cells"),
             train_data: Optional[str] = typer.Option(None, "--train",
                                                      help="training images, for intra_lpips and copying"),
             lpips: Optional[str] = typer.Option(None, help="perceptual distance for intra_lpips "
                                                            "[default: domain with domain features, else lpips:alex]"),
             weights: Optional[str] = typer.Option(None, help="weights file of the feature extractor"),
             resize: str = typer.Option("clean", help="clean (antialiased, torch) or legacy (inception only)"),
             res: Optional[int] = typer.Option(None, help="resolution of an image-folder target [default: native]"),
             batch: int = typer.Option(64, help="batch size"),
             device: str = typer.Option("cpu", help="torch device: cpu, cuda, cuda:N or auto", callback=checked_device),
             out: Optional[Path] = typer.Option(None, help="new folder for metrics.json [default: eval-<target>]"),
             upscale: Optional[bool] = typer.Option(None, "--upscale/--no-upscale",
                                                    help="enlarge images below the resolution [default: built-in "
                                                         "sets yes, folders no, as in training]"),
             noise: str = typer.Option("random", help="noise of a generator's samples: random (as the papers), "
                                                      "const or none")) -> None:
    """Evaluate a generator or images against a reference: quality, diversity and memorisation."""
    from gankd.metrics.evaluate import evaluate as run
    from gankd.metrics.table import print_table

    print_table(run(target, ref, metrics, features, n, seed, train_data, lpips, weights, resize, batch, device,
                    res, out, upscale, noise))


@app.command(context_settings={"help_option_names": ["-h", "--help"]})
def adapt(settings: Optional[list[str]] = typer.Argument(None, metavar="[KEY=VALUE]...",
                                                        help="training settings, e.g. steps=1000 d3t.kd_weight=2"),
          source: Optional[str] = typer.Option(None, help="the pretrained generator (checkpoint or builtin:NAME)"),
          target: Optional[str] = typer.Option(None, help="a split folder, or a folder/spec to split"),
          shots: int = typer.Option(10, help="training images drawn from the target (when it is not a split)"),
          method: str = typer.Option("d3t", help="a few-shot method, with +dip for the instance prior (an unknown "
                                                 "name lists them all)"),
          config: Optional[Path] = typer.Option(None, "--config", help="YAML file of settings"),
          out: Optional[Path] = typer.Option(None, help="new folder [default: adapt-<method>-<target>]"),
          seed: int = typer.Option(0, help="seed of the split, the training and the evaluation"),
          eval_samples: Optional[int] = typer.Option(None, "--eval-n", help="samples of the final evaluation "
                                                                           "[default: 1000; with --resume, the folder's]"),
          resume: Optional[Path] = typer.Option(None, help="go on with an adapt folder, then evaluate")) -> None:
    """Adapt a source generator to a few-shot target: split, train with a method, evaluate."""
    from gankd.adapt import adapt as run
    from gankd.metrics.table import print_table

    print_table(run(source, target, shots, method, out, config, settings, seed, resume, eval_samples))


@app.command(context_settings={"help_option_names": ["-h", "--help"]})
def distill(settings: Optional[list[str]] = typer.Argument(None, metavar="[KEY=VALUE]...",
                                                          help="training settings, e.g. steps=4000 batch=4 distill.srp=1e4"),
            teacher: str = typer.Option(..., help="the trained translation model (checkpoint or run folder)"),
            width: int = typer.Option(16, help="the student's width (translation.ngf; the teacher's is usually 64)"),
            method: str = typer.Option("kd+srp", help="distiller: none (the student alone), kd, feature, sp, srp, "
                                                      "kd+srp (or terms joined by +)"),
            config: Optional[Path] = typer.Option(None, "--config", help="YAML file of settings"),
            out: Optional[Path] = typer.Option(None, help="new run folder [default: runs/<method>-<data>-<res>]")) -> None:
    """Compress a translation model (pix2pix, CycleGAN) into a thinner student by distillation (SRP-KD)."""
    from gankd.distill import distill as run

    result = run(teacher, width, method, out, config, settings)
    if result.checkpoint is not None:
        say(str(result.checkpoint))


# Options every bench has.
BENCH_SETTINGS = typer.Argument(None, metavar="[KEY=VALUE]...", help="settings for every run, e.g. steps=300")
BENCH_EVAL_N = typer.Option(1000, "--eval-n", help="samples per final evaluation")
BENCH_THREADS = typer.Option(None, help="CPU threads of every run, pinned in the bench folder [default: torch's now "
                                        "/ jobs; resumed: the folder's]")
BENCH_JOBS = typer.Option(1, help="runs at a time, each in its own process (2 cores: --jobs 2)")


@bench_app.command("fewshot", context_settings={"help_option_names": ["-h", "--help"]})
def bench_fewshot(settings: Optional[list[str]] = BENCH_SETTINGS,
                  methods: Optional[str] = typer.Option(None, help="comma list of methods, +dip ones too "
                                                                    "[default: every few-shot method]"),
                  targets: Optional[str] = typer.Option(None, help="comma list of built-in targets [default: all but "
                                                                    "those the bench marks as not clean]"),
                  seeds: int = typer.Option(5, help="training seeds per method and target"),
                  source: str = typer.Option("builtin:emoji32", help="the source generator"),
                  shots: int = typer.Option(10, help="training images per target"),
                  eval_samples: int = BENCH_EVAL_N,
                  out: Path = typer.Option(Path("bench-fewshot"), help="folder (an unfinished bench resumes)"),
                  threads: Optional[int] = BENCH_THREADS, jobs: int = BENCH_JOBS) -> None:
    """Few-shot benchmark: every method on every built-in target with several seeds; tables and pictures."""
    from gankd.bench.fewshot import bench_fewshot as run

    folder = run(methods, targets, seeds, source, shots, out, settings, eval_samples, threads, jobs)
    say((folder / "results.md").read_text().rstrip())
    say(f"{folder}: results.md, results.csv, commands.txt, one picture per target")


@bench_app.command("limited", context_settings={"help_option_names": ["-h", "--help"]})
def bench_limited(settings: Optional[list[str]] = BENCH_SETTINGS,
                  rows: Optional[str] = typer.Option(None, help="comma list of rows: diffaugment, lecam, kd-dlgan, "
                                                                "agkd, cgkd, kd-no-lecam, ada [default: the first five]"),
                  sets: Optional[str] = typer.Option(None, help="comma list of sets: animals100, groups10, groups20 "
                                                                "[default: all]"),
                  seeds: int = typer.Option(3, help="training seeds per row and set"),
                  eval_samples: int = BENCH_EVAL_N,
                  out: Path = typer.Option(Path("bench-limited"), help="folder (an unfinished bench resumes)"),
                  threads: Optional[int] = BENCH_THREADS, jobs: int = BENCH_JOBS) -> None:
    """Limited-data benchmark: GANs from scratch on fixed emoji subsets, DiffAugment, LeCam and KD-DLGAN."""
    from gankd.bench.limited import bench_limited as run

    folder = run(rows, sets, seeds, out, settings, eval_samples, threads, jobs)
    say((folder / "results.md").read_text().rstrip())
    say(f"{folder}: results.md, results.csv, paired.csv, commands.txt, one picture per set")


@bench_app.command("compress", context_settings={"help_option_names": ["-h", "--help"]})
def bench_compress(settings: Optional[list[str]] = BENCH_SETTINGS,
                   teachers: str = typer.Option(..., help="trained translation models by task name: "
                                                          "edges2emoji=RUN,tones=RUN"),
                   widths: str = typer.Option("16", help="comma list of student widths (translation.ngf)"),
                   rows: Optional[str] = typer.Option(None, help="comma list of distillers: none, kd, feature, sp, srp, "
                                                                 "kd+srp [default: all]"),
                   seeds: int = typer.Option(3, help="training seeds per student"),
                   out: Path = typer.Option(Path("bench-compress"), help="folder (an unfinished bench resumes)"),
                   threads: Optional[int] = BENCH_THREADS, jobs: int = BENCH_JOBS) -> None:
    """Compression benchmark: students of each teacher at each width, by each distiller; scores, speed, pictures."""
    from gankd.bench.compress import bench_compress as run

    folder = run(teachers, widths, rows, seeds, out, settings, threads, jobs)
    say((folder / "results.md").read_text().rstrip())
    say(f"{folder}: results.md, results.csv, paired.csv, speed.csv, commands.txt, one picture per task")


@bench_app.command("aging", context_settings={"help_option_names": ["-h", "--help"]})
def bench_aging(settings: Optional[list[str]] = BENCH_SETTINGS,
                tasks: Optional[str] = typer.Option(None, help="comma list of inter, tones [default: both]"),
                rows: Optional[str] = typer.Option(None, help="comma list of continuous, groups, no-residual, separate "
                                                              "[default: all]"),
                seeds: int = typer.Option(3, help="training seeds per row"),
                out: Path = typer.Option(Path("bench-aging"), help="folder (an unfinished bench resumes)"),
                threads: Optional[int] = BENCH_THREADS, jobs: int = BENCH_JOBS) -> None:
    """Aging benchmark: continuity against ground truth at held-out values (glyph weight, emoji skin tone)."""
    from gankd.bench.aging import bench_aging as run

    folder = run(tasks, rows, seeds, out, settings, threads, jobs)
    say((folder / "results.md").read_text().rstrip())
    say(f"{folder}: results.md, results.csv, paired.csv, commands.txt, one picture per task")


@app.command()
def translate(ckpt: Path = typer.Argument(..., help="translation checkpoint or run folder (pix2pix, CycleGAN)"),
              inputs: str = typer.Argument(..., help="images: a folder, zip or data spec, or a translation task "
                                                     "(its test inputs, shown with their ground truth)"),
              out: Path = typer.Option(..., help="new folder for one PNG per input and side-by-side.png"),
              direction: str = typer.Option("ab", help="ab, or ba with a CycleGAN model"),
              upscale: Optional[bool] = typer.Option(None, "--upscale/--no-upscale",
                                                     help="enlarge images below the model's resolution"),
              device: str = typer.Option("cpu", help="torch device: cpu, cuda, cuda:N or auto",
                                         callback=checked_device)) -> None:
    """Translate images with an image-to-image model."""
    from gankd.translate import translate_images

    report = translate_images(ckpt, inputs, out, direction, device, upscale)
    say(f"{report['out']}: {report['images']} translated images, side-by-side.png")


@app.command()
def age(ckpt: Path = typer.Argument(..., help="aging checkpoint or run folder (method=aging)"),
        inputs: str = typer.Argument(..., help="images: a folder, zip or data spec"),
        to: str = typer.Option(..., help="target values: a list 20,40,60 or a range FROM-TO:STEP (any value, "
                                          "not only the trained ones)"),
        out: Path = typer.Option(..., help="new folder: progressions.png, KEY.png and KEY.gif per input, ages.csv"),
        upscale: Optional[bool] = typer.Option(None, "--upscale/--no-upscale",
                                               help="enlarge images below the model's resolution"),
        device: str = typer.Option("cpu", help="torch device: cpu, cuda, cuda:N or auto", callback=checked_device)) -> None:
    """Render images at any ages (or values of the model's attribute): progression grids and GIFs.

    Example: gankd age runs/inter-aging 'inter:chars=Rg,weights=400' --to 100-900:50 --out aged
    """
    from gankd.age import age_images

    report = age_images(ckpt, inputs, out, to, device, upscale)
    say(f"{report['out']}: {report['images']} inputs at {len(report['targets'])} values; progressions.png, "
        f"a PNG strip and a GIF per input, ages.csv")


@app.command()
def export(ckpt: Path = typer.Argument(..., help="translation checkpoint or run folder (a distilled student, pix2pix, "
                                                 "CycleGAN)"),
           out: Path = typer.Option(..., help="new folder: generator.pth, generator.pt (TorchScript), generator.onnx"),
           direction: str = typer.Option("ab", help="ab, or ba with a CycleGAN model")) -> None:
    """Export a translation generator to run without gankd: original-layout weights, TorchScript, ONNX."""
    from gankd.export import export as run

    report = run(ckpt, out, direction)
    diffs = ", ".join(f"{k} {v:.2g}" if isinstance(v, float) else f"{k} {v}" for k, v in report["max_difference"].items())
    say(f"{out}: generator.pth, generator.pt, generator.onnx ({report['parameters']:,} parameters; largest "
        f"difference from gankd's forward: {diffs})")


@app.command()
def project(images: str = typer.Argument(..., help="images to invert: a split folder (its training shots), "
                                                    "a folder, " + SPEC_HELP.split(", ", 1)[1]),
            ckpt: str = typer.Option(..., help="the generator (checkpoint or builtin:NAME)"),
            out: Optional[Path] = typer.Option(None, help="new folder [default: projection-<images>]"),
            steps: int = typer.Option(200, help="optimisation steps"),
            space: str = typer.Option("w+", help="w+ (one w per layer) or w"),
            perceptual: str = typer.Option("domain", help="perceptual distance: domain or lpips[:alex|vgg]"),
            perceptual_weight: float = typer.Option(1.0, help="weight of the perceptual term (pixel L1 has 1)"),
            lr: float = typer.Option(0.05, help="Adam learning rate (cosine decay to 0)"),
            device: str = typer.Option("cpu", help="torch device: cpu, cuda, cuda:N or auto", callback=checked_device)) -> None:
    """Invert images into a generator (GAN inversion): latents, reconstructions, errors."""
    from gankd.project import run_projection

    report = run_projection(images, ckpt, out, steps, space, perceptual, perceptual_weight, lr, device)
    for when in ("start", "end"):
        errors = report[when]
        say(f"{'at the average w' if when == 'start' else f'after {steps} steps':>20}: pixel L1 "
            f"{errors['pixel_l1']:.4f}, perceptual[{report['perceptual']}] {errors['perceptual']:.4f}")
    say(f"{report['out']}: latents.safetensors, reconstructions/, side-by-side.png, projection.json")


@app.command(context_settings={"help_option_names": ["-h", "--help"]})
def train(settings: Optional[list[str]] = typer.Argument(None, metavar="[KEY=VALUE]...",
                                                        help="settings, e.g. batch=16 augment.kind=ada (see --dry-run)"),
          data: Optional[str] = typer.Option(None, help=SPEC_HELP + " (the setting data=...)"),
          res: Optional[int] = typer.Option(None, help="resolution (the setting res=...) [default: 32]"),
          config: Optional[Path] = typer.Option(None, "--config", help="YAML file of settings"),
          method: Optional[str] = typer.Option(None, help="the method (the setting method=...) [default: scratch]"),
          teacher: Optional[str] = typer.Option(None, help="the method's teacher, e.g. clip-gankd for kd-dlgan, a "
                                                           "checkpoint for pix2pix+distill (the setting "
                                                           "<section>.teacher=...)"),
          out: Optional[Path] = typer.Option(None, help="new run folder [default: runs/<method>-<data>-<res>]"),
          resume: Optional[Path] = typer.Option(None, help="go on with a run folder or one of its checkpoints"),
          dry_run: bool = typer.Option(False, "--dry-run", help="print the resolved config and exit")) -> None:
    """Train a GAN (from scratch, or a method such as finetune, freezed or kd-dlgan); runs under torchrun too.

    Prints a line every log_every steps (losses, rate, ETA), also into a log file; a bar on a terminal.

    Examples:

      gankd train --data emoji:group=food,tone=none --out runs/food steps=300 batch=8

      gankd train --resume runs/food steps=600

      gankd train --config configs/emoji32-base.yaml --dry-run
    """
    import dataclasses

    from gankd.config import to_yaml
    from gankd.errors import ConfigError
    from gankd.methods import recipe_class
    from gankd.train import resolve_run, train as run

    overrides = [*(f"data={data}",) * (data is not None), *(f"res={res}",) * (res is not None),
                 *(f"method={method}",) * (method is not None), *(settings or [])]
    if teacher is not None:
        named = method or next((s.partition("=")[2] for s in reversed(settings or []) if s.startswith("method=")),
                               "scratch")
        sections = [name for name, options in recipe_class(named).option_sections().items()
                    if "teacher" in {f.name for f in dataclasses.fields(options)}]
        if not sections:
            raise ConfigError(f"--teacher: method {named} has no teacher")
        overrides.append(f"{sections[0]}.teacher={teacher}")
    if dry_run:
        from gankd.devices import device_named
        from gankd.precision import resolved

        cfg, run_dir, point = resolve_run(config, overrides, out, resume)
        cfg.precision, cfg.channels_last = resolved(cfg.precision, cfg.channels_last, device_named(cfg.device))
        going_on = "" if point is None else f" (resuming {point.checkpoint})" if point.checkpoint else \
            " (starting again from step 0: it saved no checkpoint)"
        say(f"# run folder: {run_dir}{going_on}")
        say(to_yaml(cfg).rstrip())
        return
    result = run(config, overrides, out, resume)
    if result.checkpoint is not None and os.environ.get("RANK", "0") == "0":
        say(str(result.checkpoint))


@app.command()
def demo(out: Path = typer.Option(Path("demo-out"), help="new folder for everything the demo writes"),
         steps: int = typer.Option(None, min=1, help="adaptation steps per method [default: gankd adapt's]")) -> None:
    """The main job on built-in data: adapt the shipped emoji model to 10 animals with D3T-GAN and
    fine-tuning, evaluate both against the held-out animals, write report.md."""
    from gankd.demo import run_demo

    for line in run_demo(out, steps):
        say(line)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every failure the user can act on is one line on stderr and exit status 2 (an
    interruption that says how to resume: 130): gankd's own errors, command-line usage errors
    (typer's box would be six), and outputs that cannot be written (read-only, no permission, full
    disk). Under torchrun a settings error is printed once, by rank 0; other errors name their rank."""
    try:
        code = app(args=argv, prog_name="gankd", standalone_mode=False)
    except GankdError as err:
        message = str(err).strip().splitlines()
        kind = "" if isinstance(err, Interrupted) else "error: "
        fail(f"{kind}{message[-1] if message else type(err).__name__}", err.exit_code, shared=isinstance(err, ConfigError))
    except UsageError as err:
        if type(err).__name__ == "NoArgsIsHelpError":  # the help was printed (typer tells it by name too)
            sys.exit(2)
        hint = f" (see {err.ctx.command_path} --help)" if err.ctx is not None else ""
        fail(f"error: {err.format_message()}{hint}", 2, shared=True)
    except OSError as err:
        if err.errno not in STORAGE_ERRNOS:
            raise
        fail(f"error: {storage_error(err, Path(err.filename or '.'))}", 2)
    if isinstance(code, int) and code:  # typer's exit status (130 after Ctrl-C)
        sys.exit(code)


def fail(text: str, code: int, shared: bool = False) -> None:
    rank = os.environ.get("RANK", "0")
    if rank == "0" or not shared:
        typer.echo(f"gankd{'' if rank == '0' else f' [rank {rank}]'}: {text}", err=True)
    sys.exit(code)
