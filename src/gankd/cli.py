"""The `gankd` command: a thin layer over the Python API. Errors print one line and exit 2.

Every command names the same idea the same way: the checkpoint is the first argument, the output
is --out (refused if it exists, unless --force), a count is --n, the device is --device (auto);
tests/test_cli_conventions.py walks the commands to keep it so, and docs/cli.md is made from them."""

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

HELP = {"help_option_names": ["-h", "--help"], "max_content_width": 110}
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, context_settings=HELP,
                  rich_markup_mode=None,
                  help="gankd: GANs for scarce data, by transfer and distillation.")
data_app = typer.Typer(no_args_is_help=True, context_settings=HELP,
                       help="Built-in data sets, exports and few-shot splits.")
app.add_typer(data_app, name="data")
bench_app = typer.Typer(no_args_is_help=True, context_settings=HELP,
                        help="Benchmarks: methods x targets x seeds under one protocol.")
app.add_typer(bench_app, name="bench")
latent_app = typer.Typer(no_args_is_help=True, context_settings=HELP,
                         help="Latent-space pictures: style mixing, walks, truncation sweeps.")
app.add_typer(latent_app, name="latent")

SPEC_HELP = "a built-in set with filters (emoji:group=animals,tone=none), a folder, or a zip"
IMAGES_HELP = "a folder, a zip, or a built-in set with filters (emoji:group=animals,tone=none)"


def checked_device(name: str) -> str:
    from gankd.devices import pick_device

    return str(pick_device(name))


# Options with one name and meaning in every command.
DEVICE = typer.Option("auto", help="torch device: auto (a GPU when there is one), cpu, cuda or cuda:N",
                      callback=checked_device)
FORCE = typer.Option(False, "--force", help="replace an existing output (a folder only if gankd wrote it)")
NOISE = typer.Option("const", help="noise mode: const, random or none")
CLASS = typer.Option(None, "--class", help="class of a conditional generator")
BATCH = typer.Option(16, help="images rendered at a time")


def argument(metavar: str, what: str) -> typer.models.ArgumentInfo:
    """A required positional argument, shown in capitals (CKPT, SPEC)."""
    return typer.Argument(..., metavar=metavar, help=what)


def out_option(what: str, required: bool = False) -> typer.models.OptionInfo:
    """The output of a command: always --out / -o."""
    return typer.Option(... if required else None, "--out", "-o", help=what)


def say(text: str) -> None:
    typer.echo(text)


def print_version(value: bool) -> None:
    if value:
        from gankd import __version__

        say(f"gankd {__version__}")
        raise typer.Exit()


@app.callback()
def root(version: bool = typer.Option(False, "--version", callback=print_version, is_eager=True,
                                      help="print gankd's version and exit")) -> None:
    """gankd: GANs for scarce data, by transfer and distillation."""


@data_app.command("list")
def data_list(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """List the built-in data sets with their label fields and counts.

    Examples:

    \b
      gankd data list
      gankd data list --json
    """
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
def data_show(spec: str = argument("SPEC", SPEC_HELP),
              out: Optional[Path] = out_option("PNG to write [default: <spec>.png]"),
              n: int = typer.Option(64, help="number of images"),
              res: int = typer.Option(64, help="tile resolution"),
              seed: int = typer.Option(0, help="seed of the random choice of images"),
              force: bool = FORCE) -> None:
    """Write a grid PNG of a data set's images.

    Examples:

    \b
      gankd data show emoji:group=animals,tone=none --n 48 --out animals.png
      gankd data show glyphs:char=R --res 48
    """
    from gankd.data.preview import show

    say(str(show(spec, out, n=n, resolution=res, seed=seed, force=force)))


@data_app.command("export")
def data_export(spec: str = argument("SPEC", SPEC_HELP),
                out: Path = out_option("new folder to write", required=True),
                res: Optional[int] = typer.Option(None, help="crop and resize to this resolution"),
                force: bool = FORCE) -> None:
    """Write a data set's images as PNGs, with labels.json (and dataset.json when conditional).

    Examples:

    \b
      gankd data export emoji:group=food --out food/
      gankd data export 'glyphs:char=a|b|c' --res 32 --out abc/
    """
    from gankd.data.spec import open_source
    from gankd.data.splits import export

    source = open_source(spec)
    say(f"{export(source, out, res, force)}: {len(source)} images")


@data_app.command("split")
def data_split(spec: str = argument("SPEC", SPEC_HELP),
               out: Path = out_option("new folder for train/, eval/ and manifest.json", required=True),
               shots: int = typer.Option(10, help="number of training images"),
               seed: int = typer.Option(0, help="seed of the split"),
               res: int = typer.Option(32, help="refuse images smaller than this: the resolution they will be "
                                                "trained at (0: no check; built-in sets are enlarged)"),
               force: bool = FORCE) -> None:
    """Write a seeded n-shot split: the shots, the held-out evaluation images, and a checksummed manifest.

    Images of a folder or zip smaller than --res are refused before anything is written.

    Examples:

    \b
      gankd data split emoji:group=animals,tone=none --shots 10 --out animals10/
      gankd data split photos/ --shots 10 --seed 1 --res 64 --out photos10/
    """
    from gankd.data.spec import open_source
    from gankd.data.splits import make_split

    manifest = make_split(open_source(spec), shots, seed, out, spec, resolution=res, force=force)
    say(f"{out}: {manifest['shots']} training shots, {manifest['total'] - manifest['shots']} evaluation images")


@data_app.command("verify")
def data_verify(split_dir: Path = argument("SPLIT_DIR", "a folder written by `gankd data split`")) -> None:
    """Check a split folder against its manifest (files and sha256).

    Examples:

    \b
      gankd data verify animals10/
    """
    from gankd.data.splits import verify_split

    manifest = verify_split(split_dir)
    say(f"{split_dir}: OK, {len(manifest['files'])} files match the manifest")


@app.command()
def generate(ckpt: Path = argument("CKPT", "checkpoint, run folder or builtin:NAME"),
             out: Path = out_option("FILE.png: one grid; DIR: a new folder of one PNG per image",
                                    required=True),
             seeds: Optional[str] = typer.Option(None, help="seeds, e.g. 0-15 or 1,5,9 [default: 0-15]"),
             latents: Optional[Path] = typer.Option(None, help="render the latents.safetensors of `gankd project` "
                                                               "instead of seeds"),
             trunc: float = typer.Option(1.0, help="truncation psi (1 = none)"),
             noise: str = NOISE, class_index: Optional[int] = CLASS,
             prior_image: Optional[list[Path]] = typer.Option(
                 None, help="a DIP model: variations of this real image (through its features); repeatable"),
             interpolate: int = typer.Option(0, help="with two --prior-image: this many steps from the first to the second"),
             batch: int = BATCH, device: str = DEVICE, force: bool = FORCE) -> None:
    """Generate images from a checkpoint.

    Examples:

    \b
      gankd generate builtin:emoji32 --seeds 0-35 --out emoji32.png
      gankd generate runs/animals --seeds 0-99 --trunc 0.7 --out samples/
      gankd generate runs/animals --latents projection/latents.safetensors --out recon/
    """
    from gankd.generate import generate as run

    say(str(run(ckpt, seeds, out, force=force, latents=latents, truncation=trunc, noise_mode=noise,
                class_index=class_index, batch_size=batch, device=device, prior_images=prior_image,
                interpolate=interpolate)))


@app.command()
def info(ckpt: Path = argument("CKPT", "checkpoint, run folder or builtin:NAME (gankd, rosinality .pt, "
                                                "NVlabs .pkl)"),
         as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Describe a checkpoint (gankd, rosinality .pt or NVlabs .pkl): architecture, sizes, networks, step.

    Examples:

    \b
      gankd info builtin:emoji32
      gankd info 550000.pt --json
    """
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
def convert(ckpt: Path = argument("CKPT", "gankd .safetensors, rosinality .pt or NVlabs .pkl"),
            out: Path = out_option("file to write: .safetensors (gankd) or .pt (rosinality)", required=True),
            to: Optional[str] = typer.Option(None, help="gankd or rosinality [default: from the extension of --out]"),
            force: bool = FORCE) -> None:
    """Convert a checkpoint between formats, keeping G, G_ema and D and their exact weights.

    Examples:

    \b
      gankd convert 550000.pt --out ffhq256.safetensors
      gankd convert runs/animals --out animals.pt
    """
    from gankd.convert import convert as run

    say(f"{out}: written as {run(ckpt, out, to=to, force=force)}")


@app.command()
def evaluate(target: str = argument("TARGET", "checkpoint, builtin:NAME, run folder, or folder/zip of images; "
                                                    "a translation model is run on the test inputs of --ref"),
             ref: str = typer.Option(..., help="reference: a translation task for a translation model; else a split "
                                                "folder (its eval/ images; train/ are the shots), "
                                                "a folder, a zip, a built-in set with filters, or stats .npz"),
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
             device: str = DEVICE,
             out: Optional[Path] = out_option("new folder for metrics.json [default: eval-<target>]"),
             upscale: Optional[bool] = typer.Option(None, "--upscale/--no-upscale",
                                                    help="enlarge images below the resolution [default: built-in "
                                                         "sets yes, folders no, as in training]"),
             noise: str = typer.Option("random", help="noise of a generator's samples: random (as the papers), "
                                                      "const or none"),
             force: bool = FORCE) -> None:
    """Evaluate a generator or images against a reference: quality, diversity and memorisation.

    Examples:

    \b
      gankd evaluate runs/animals --ref animals10/ --metrics fid,kid,pr --n 1000
      gankd evaluate runs/animals --ref animals10/ --features inception --weights pt_inception.pth
      gankd evaluate runs/pix2pix-edges2emoji-32 --ref edges2emoji
    """
    from gankd.metrics.evaluate import evaluate as run
    from gankd.metrics.table import print_table

    print_table(run(target, ref, metrics, features, n, seed, train_data, lpips, weights, resize, batch, device,
                    res, out, upscale, noise, force))


@app.command()
def adapt(settings: Optional[list[str]] = typer.Argument(None, metavar="[KEY=VALUE]...",
                                                        help="training settings, e.g. steps=1000 d3t.kd_weight=2"),
          source: Optional[str] = typer.Option(None, help="the pretrained generator (checkpoint or builtin:NAME)"),
          target: Optional[str] = typer.Option(None, help="a split folder, or a folder/spec to split"),
          shots: int = typer.Option(10, help="training images drawn from the target (when it is not a split)"),
          method: str = typer.Option("d3t", help="a few-shot method, with +dip for the instance prior (an unknown "
                                                 "name lists them all)"),
          config: Optional[Path] = typer.Option(None, "--config", help="YAML file of settings"),
          out: Optional[Path] = out_option("new folder [default: adapt-<method>-<target>]"),
          seed: int = typer.Option(0, help="seed of the split, the training and the evaluation"),
          eval_samples: Optional[int] = typer.Option(None, "--eval-n", help="samples of the final evaluation "
                                                                           "[default: 1000; with --resume, the folder's]"),
          resume: Optional[Path] = typer.Option(None, help="go on with an adapt folder, then evaluate")) -> None:
    """Adapt a source generator to a few-shot target: split, train with a method, evaluate.

    Examples:

    \b
      gankd adapt --source builtin:emoji32 --target emoji:group=animals,tone=none --method d3t
      gankd adapt --source ffhq256.safetensors --target faces10/ --method cdc steps=2000 device=cuda
      gankd adapt --resume adapt-d3t-animals
    """
    from gankd.adapt import adapt as run
    from gankd.metrics.table import print_table

    print_table(run(source, target, shots, method, out, config, settings, seed, resume, eval_samples))


@app.command()
def distill(settings: Optional[list[str]] = typer.Argument(None, metavar="[KEY=VALUE]...",
                                                          help="training settings, e.g. steps=4000 batch=4 distill.srp=1e4"),
            teacher: str = typer.Option(..., help="the trained translation model (checkpoint or run folder)"),
            width: int = typer.Option(16, help="the student's width (translation.ngf; the teacher's is usually 64)"),
            method: str = typer.Option("kd+srp", help="distiller: none (the student alone), kd, feature, sp, srp, "
                                                      "kd+srp (or terms joined by +)"),
            config: Optional[Path] = typer.Option(None, "--config", help="YAML file of settings"),
            out: Optional[Path] = out_option("new run folder [default: runs/<method>-<data>-<res>]; an interrupted "
                                             "one resumes with gankd train --resume")) -> None:
    """Compress a translation model (pix2pix, CycleGAN) into a thinner student by distillation (SRP-KD).

    Examples:

    \b
      gankd distill --teacher runs/pix2pix-edges2emoji-32 --width 16 --method kd+srp steps=1500
      gankd distill --teacher runs/cyclegan-tones-32 --width 8 --method none --out runs/alone8
    """
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


def bench_out(name: str) -> typer.models.OptionInfo:
    return typer.Option(Path(f"bench-{name}"), "--out", "-o", help="folder (an unfinished bench resumes)")


@bench_app.command("fewshot")
def bench_fewshot(settings: Optional[list[str]] = BENCH_SETTINGS,
                  methods: Optional[str] = typer.Option(None, help="comma list of methods, +dip ones too "
                                                                    "[default: every few-shot method]"),
                  targets: Optional[str] = typer.Option(None, help="comma list of built-in targets [default: all but "
                                                                    "those the bench marks as not clean]"),
                  seeds: int = typer.Option(5, help="training seeds per method and target"),
                  source: str = typer.Option("builtin:emoji32", help="the source generator"),
                  shots: int = typer.Option(10, help="training images per target"),
                  eval_samples: int = BENCH_EVAL_N,
                  out: Path = bench_out("fewshot"),
                  threads: Optional[int] = BENCH_THREADS, jobs: int = BENCH_JOBS) -> None:
    """Few-shot benchmark: every method on every built-in target with several seeds; tables and pictures.

    Examples:

    \b
      gankd bench fewshot --methods finetune,cdc,d3t --seeds 3 --threads 1 --jobs 2
      gankd bench fewshot --targets animals --seeds 1 steps=100
    """
    from gankd.bench.fewshot import bench_fewshot as run

    folder = run(methods, targets, seeds, source, shots, out, settings, eval_samples, threads, jobs)
    say((folder / "results.md").read_text().rstrip())
    say(f"{folder}: results.md, results.csv, commands.txt, one picture per target")


@bench_app.command("limited")
def bench_limited(settings: Optional[list[str]] = BENCH_SETTINGS,
                  rows: Optional[str] = typer.Option(None, help="comma list of rows: diffaugment, lecam, kd-dlgan, "
                                                                "agkd, cgkd, kd-no-lecam, ada [default: the first five]"),
                  sets: Optional[str] = typer.Option(None, help="comma list of sets: animals100, groups10, groups20 "
                                                                "[default: all]"),
                  seeds: int = typer.Option(3, help="training seeds per row and set"),
                  eval_samples: int = BENCH_EVAL_N,
                  out: Path = bench_out("limited"),
                  threads: Optional[int] = BENCH_THREADS, jobs: int = BENCH_JOBS) -> None:
    """Limited-data benchmark: GANs from scratch on fixed emoji subsets, DiffAugment, LeCam and KD-DLGAN.

    Examples:

    \b
      gankd bench limited --sets groups10 --seeds 3 --threads 1 --jobs 2
      gankd bench limited --rows diffaugment,kd-dlgan --sets animals100 --seeds 1 steps=200
    """
    from gankd.bench.limited import bench_limited as run

    folder = run(rows, sets, seeds, out, settings, eval_samples, threads, jobs)
    say((folder / "results.md").read_text().rstrip())
    say(f"{folder}: results.md, results.csv, paired.csv, commands.txt, one picture per set")


@bench_app.command("compress")
def bench_compress(settings: Optional[list[str]] = BENCH_SETTINGS,
                   teachers: str = typer.Option(..., help="trained translation models by task name: "
                                                          "edges2emoji=RUN,tones=RUN"),
                   widths: str = typer.Option("16", help="comma list of student widths (translation.ngf)"),
                   rows: Optional[str] = typer.Option(None, help="comma list of distillers: none, kd, feature, sp, srp, "
                                                                 "kd+srp [default: all]"),
                   seeds: int = typer.Option(3, help="training seeds per student"),
                   out: Path = bench_out("compress"),
                   threads: Optional[int] = BENCH_THREADS, jobs: int = BENCH_JOBS) -> None:
    """Compression benchmark: students of each teacher at each width, by each distiller; scores, speed, pictures.

    Examples:

    \b
      gankd bench compress --teachers edges2emoji=runs/p2p --widths 16 --seeds 3 --threads 1 --jobs 2
      gankd bench compress --teachers edges2emoji=runs/p2p,tones=runs/cg --widths 32,16,8 --rows none,kd+srp
    """
    from gankd.bench.compress import bench_compress as run

    folder = run(teachers, widths, rows, seeds, out, settings, threads, jobs)
    say((folder / "results.md").read_text().rstrip())
    say(f"{folder}: results.md, results.csv, paired.csv, speed.csv, commands.txt, one picture per task")


@bench_app.command("aging")
def bench_aging(settings: Optional[list[str]] = BENCH_SETTINGS,
                tasks: Optional[str] = typer.Option(None, help="comma list of inter, tones [default: both]"),
                rows: Optional[str] = typer.Option(None, help="comma list of continuous, groups, no-residual, separate "
                                                              "[default: all]"),
                seeds: int = typer.Option(3, help="training seeds per row"),
                out: Path = bench_out("aging"),
                threads: Optional[int] = BENCH_THREADS, jobs: int = BENCH_JOBS) -> None:
    """Aging benchmark: continuity against ground truth at held-out values (glyph weight, emoji skin tone).

    Examples:

    \b
      gankd bench aging --seeds 3 --threads 1 --jobs 2
      gankd bench aging --tasks inter --rows continuous,groups --seeds 1 steps=200
    """
    from gankd.bench.aging import bench_aging as run

    folder = run(tasks, rows, seeds, out, settings, threads, jobs)
    say((folder / "results.md").read_text().rstrip())
    say(f"{folder}: results.md, results.csv, paired.csv, commands.txt, one picture per task")


@app.command()
def translate(ckpt: Path = argument("CKPT", "translation checkpoint or run folder (pix2pix, CycleGAN)"),
              inputs: str = argument("INPUTS", "images: a folder, zip or data spec, or a translation task "
                                                     "(its test inputs, shown with their ground truth)"),
              out: Path = out_option("new folder for one PNG per input and side-by-side.png", required=True),
              direction: str = typer.Option("ab", help="ab, or ba with a CycleGAN model"),
              upscale: Optional[bool] = typer.Option(None, "--upscale/--no-upscale",
                                                     help="enlarge images below the model's resolution"),
              device: str = DEVICE, force: bool = FORCE) -> None:
    """Translate images with an image-to-image model.

    Examples:

    \b
      gankd translate runs/pix2pix-edges2emoji-32 edges2emoji --out translated/
      gankd translate runs/cyclegan-tones-32 photos/ --direction ba --out back/
    """
    from gankd.translate import translate_images

    report = translate_images(ckpt, inputs, out, direction, device, upscale, force)
    say(f"{report['out']}: {report['images']} translated images, side-by-side.png")


@app.command()
def age(ckpt: Path = argument("CKPT", "aging checkpoint or run folder (method=aging)"),
        inputs: str = argument("INPUTS", "images: a folder, zip or data spec"),
        to: str = typer.Option(..., help="target values: a list 20,40,60 or a range FROM-TO:STEP (any value, "
                                          "not only the trained ones)"),
        out: Path = out_option("new folder: progressions.png, KEY.png and KEY.gif per input, ages.csv", required=True),
        upscale: Optional[bool] = typer.Option(None, "--upscale/--no-upscale",
                                               help="enlarge images below the model's resolution"),
        device: str = DEVICE, force: bool = FORCE) -> None:
    """Render images at any ages (or values of the model's attribute): progression grids and GIFs.

    Examples:

    \b
      gankd age runs/inter-aging 'inter:chars=Rg,weights=400' --to 100-900:50 --out aged/
      gankd age runs/utkface-aging faces/ --to 10,30,50,70 --out aged/
    """
    from gankd.age import age_images

    report = age_images(ckpt, inputs, out, to, device, upscale, force)
    say(f"{report['out']}: {report['images']} inputs at {len(report['targets'])} values; progressions.png, "
        f"a PNG strip and a GIF per input, ages.csv")


@app.command()
def export(ckpt: Path = argument("CKPT", "translation checkpoint or run folder (a distilled student, pix2pix, "
                                                 "CycleGAN)"),
           out: Path = out_option("new folder: generator.pth, generator.pt (TorchScript), generator.onnx",
                                  required=True),
           direction: str = typer.Option("ab", help="ab, or ba with a CycleGAN model"),
           force: bool = FORCE) -> None:
    """Export a translation generator to run without gankd: original-layout weights, TorchScript, ONNX.

    Examples:

    \b
      gankd export runs/kd+srp-edges2emoji-32 --out deploy/
      gankd export runs/cyclegan-tones-32 --direction ba --out deploy-ba/
    """
    from gankd.export import export as run

    report = run(ckpt, out, direction, force)
    diffs = ", ".join(f"{k} {v:.2g}" if isinstance(v, float) else f"{k} {v}" for k, v in report["max_difference"].items())
    say(f"{out}: generator.pth, generator.pt, generator.onnx ({report['parameters']:,} parameters; largest "
        f"difference from gankd's forward: {diffs})")


@app.command()
def project(ckpt: str = argument("CKPT", "the generator: checkpoint, run folder or builtin:NAME"),
            images: str = argument("IMAGES", "images to invert: a split folder (its training shots), "
                                                    + IMAGES_HELP),
            out: Optional[Path] = out_option("new folder [default: projection-<images>]"),
            steps: int = typer.Option(200, help="optimisation steps"),
            space: str = typer.Option("w+", help="w+ (one w per layer) or w"),
            perceptual: str = typer.Option("domain", help="perceptual distance: domain or lpips[:alex|vgg]"),
            perceptual_weight: float = typer.Option(1.0, help="weight of the perceptual term (pixel L1 has 1)"),
            lr: float = typer.Option(0.05, help="Adam learning rate (cosine decay to 0)"),
            device: str = DEVICE, force: bool = FORCE) -> None:
    """Invert images into a generator (GAN inversion): latents, reconstructions, errors.

    Examples:

    \b
      gankd project builtin:emoji32 animals10/ --out projection/
      gankd project runs/animals photos/ --steps 500 --space w --perceptual lpips:vgg
    """
    from gankd.project import run_projection

    report = run_projection(images, ckpt, out, steps, space, perceptual, perceptual_weight, lr, device, force)
    for when in ("start", "end"):
        errors = report[when]
        say(f"{'at the average w' if when == 'start' else f'after {steps} steps':>20}: pixel L1 "
            f"{errors['pixel_l1']:.4f}, perceptual[{report['perceptual']}] {errors['perceptual']:.4f}")
    say(f"{report['out']}: latents.safetensors, reconstructions/, side-by-side.png, projection.json")


@app.command()
def train(settings: Optional[list[str]] = typer.Argument(None, metavar="[KEY=VALUE]...",
                                                        help="settings, e.g. batch=16 augment.kind=ada (see --dry-run)"),
          data: Optional[str] = typer.Option(None, help=SPEC_HELP + " (the setting data=...)"),
          res: Optional[int] = typer.Option(None, help="resolution (the setting res=...) [default: 32]"),
          config: Optional[Path] = typer.Option(None, "--config", help="YAML file of settings"),
          method: Optional[str] = typer.Option(None, help="the method (the setting method=...) [default: scratch]"),
          teacher: Optional[str] = typer.Option(None, help="the method's teacher, e.g. clip-gankd for kd-dlgan, a "
                                                           "checkpoint for pix2pix+distill (the setting "
                                                           "<section>.teacher=...)"),
          out: Optional[Path] = out_option("new run folder [default: runs/<method>-<data>-<res>]; an interrupted one "
                                           "resumes with --resume"),
          resume: Optional[Path] = typer.Option(None, help="go on with a run folder or one of its checkpoints"),
          dry_run: bool = typer.Option(False, "--dry-run", help="print the resolved config and exit")) -> None:
    """Train a GAN (from scratch, or a method such as finetune, freezed or kd-dlgan); runs under torchrun too.

    Prints a line every log_every steps (losses, rate, ETA), also into a log file; a bar on a terminal.

    Examples:

    \b
      gankd train --data emoji:group=food,tone=none --out runs/food steps=300 batch=8
      gankd train --resume runs/food steps=600
      gankd train --config configs/emoji32-base.yaml --dry-run
      gankd train --data emoji --method kd-dlgan --teacher clip-gankd augment.kind=diffaugment
      torchrun --nproc_per_node 4 -m gankd train --config configs/emoji32.yaml device=cuda
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
def demo(out: Path = typer.Option(Path("demo-out"), "--out", "-o", help="new folder for everything the demo writes"),
         steps: int = typer.Option(None, min=1, help="adaptation steps per method [default: gankd adapt's]"),
         force: bool = FORCE) -> None:
    """The main job on built-in data: adapt the shipped emoji model to 10 animals with D3T-GAN and
    fine-tuning, evaluate both against the held-out animals, write report.md.

    Examples:

    \b
      gankd demo --out demo-out
      gankd demo --steps 50 --out quick-demo
    """
    from gankd.demo import run_demo

    for line in run_demo(out, steps, force):
        say(line)


LATENT_CKPT = argument("CKPT", "a latent generator: checkpoint, run folder or builtin:NAME")


@latent_app.command("mix")
def latent_mix(ckpt: str = LATENT_CKPT,
               rows: str = typer.Option("0-3", help="seeds of the rows (the styles kept)"),
               cols: str = typer.Option("4-7", help="seeds of the columns (the styles put in)"),
               layers: Optional[str] = typer.Option(None, help="styles taken from the column: a range 0-3, a list "
                                                               "0,2,5, or none [default: the coarse ones, 0-3 or "
                                                               "the first half]"),
               out: Path = out_option("PNG to write", required=True), trunc: float = typer.Option(1.0, help="truncation psi (1 = none)"),
               noise: str = NOISE, class_index: Optional[int] = CLASS, batch: int = BATCH,
               device: str = DEVICE, force: bool = FORCE) -> None:
    """Style-mixing grid (StyleGAN2): each row's w with each column's w on some layers.

    Top row: the column seeds; left column: the row seeds; a cell: the row's w, the column's on --layers.

    Examples:

    \b
      gankd latent mix builtin:emoji32 --rows 0-3 --cols 4-7 --out mix.png
      gankd latent mix runs/emoji --rows 1,5,9 --cols 20-23 --layers 4-7 --out fine.png --force
    """
    from gankd.latents import style_mixing

    say(str(style_mixing(ckpt, rows, cols, out, layers, force, truncation=trunc, noise_mode=noise,
                         class_index=class_index, batch_size=batch, device=device)))


@latent_app.command("interpolate")
def latent_interpolate(ckpt: str = LATENT_CKPT,
                       seeds: Optional[str] = typer.Option(None, help="key seeds, e.g. 0,5,9 [default: 0-3]"),
                       latents: Optional[Path] = typer.Option(None, help="key latents: the latents.safetensors of "
                                                                         "`gankd project` (instead of --seeds)"),
                       frames: int = typer.Option(48, help="frames of the whole loop"),
                       space: str = typer.Option("w", help="w (linear in W) or z (spherical in Z; seeds only)"),
                       out: Path = out_option("file to write: .gif, .mp4 (needs the imageio-ffmpeg package) or .png",
                                              required=True),
                       fps: float = typer.Option(24.0, help="frames per second of a GIF or MP4"),
                       trunc: float = typer.Option(1.0, help="truncation psi (1 = none)"),
                       noise: str = NOISE, class_index: Optional[int] = CLASS, batch: int = BATCH,
                       device: str = DEVICE, force: bool = FORCE) -> None:
    """Loop through key latents (seeds or projected images): a GIF, an MP4 or a PNG of the frames.

    A loop from each key to the next and back to the first; the keys are frames 0, N/K, 2N/K, ...

    Examples:

    \b
      gankd latent interpolate builtin:emoji32 --seeds 0,5,9 --frames 48 --out walk.gif
      gankd latent interpolate runs/emoji --latents projection/latents.safetensors --out walk.mp4 --fps 12
      gankd latent interpolate builtin:emoji32 --seeds 1,2 --space z --frames 16 --out strip.png --force
    """
    from gankd.latents import interpolation

    say(str(interpolation(ckpt, out, seeds, latents, fps, force, frames=frames, space=space, truncation=trunc,
                          noise_mode=noise, class_index=class_index, batch_size=batch, device=device)))


@latent_app.command("truncation")
def latent_truncation(ckpt: str = LATENT_CKPT,
                      seeds: str = typer.Option("0-7", help="seeds, one row each"),
                      psi: str = typer.Option("0,0.25,0.5,0.75,1", help="truncation values, one column each "
                                                                        "(0: the average w, 1: none)"),
                      out: Path = out_option("PNG to write", required=True), noise: str = NOISE, class_index: Optional[int] = CLASS,
                      batch: int = BATCH, device: str = DEVICE, force: bool = FORCE) -> None:
    """Truncation sweep: each seed (a row) at each psi (a column), labelled.

    Examples:

    \b
      gankd latent truncation builtin:emoji32 --seeds 0-7 --out sweep.png
      gankd latent truncation runs/emoji --seeds 3,4 --psi -0.5,0,0.5,1 --out sweep.png --force
    """
    from gankd.latents import truncation_sweep

    say(str(truncation_sweep(ckpt, out, seeds, psi, force, noise_mode=noise, class_index=class_index,
                             batch_size=batch, device=device)))


@app.command("save-pretrained")
def save_pretrained(ckpt: str = argument("CKPT", "checkpoint, run folder (its newest) or builtin:NAME"),
                    out: Path = out_option("new folder: model.safetensors, config.json, README.md", required=True),
                    metrics: Optional[list[Path]] = typer.Option(None, help="a metrics.json of gankd evaluate for "
                                                                            "the model card; repeatable"),
                    license: Optional[str] = typer.Option(None, help="the model's license for the card, e.g. mit"),
                    force: bool = typer.Option(False, "--force", help="write the model files into an existing folder "
                                                                      "(a clone of a Hub repository, say)")) -> None:
    """Save a model as a pretrained folder for the Hugging Face Hub: weights, config.json, model card.

    The folder works wherever a checkpoint does (gankd generate DIR); hf:OWNER/NAME reads one
    from the Hub. The card's metrics: the run's own evaluation at that step, an adapt folder's
    final evaluation, and each --metrics file.

    Examples:

    \b
      gankd save-pretrained runs/emoji --out emoji-pretrained
      gankd save-pretrained builtin:emoji32 --out emoji32 --metrics eval-emoji32/metrics.json --force
    """
    from gankd.pretrained import save_pretrained as run

    folder = run(ckpt, out, force=force, metrics=metrics, license=license)
    say(f"{folder}: model.safetensors, config.json, README.md")


@app.command()
def serve(ckpts: list[str] = typer.Argument(..., metavar="CKPT",
                                            help="checkpoints, run folders or builtin:NAME (several: a picker on the page)"),
          host: str = typer.Option("127.0.0.1", help="address to listen on (0.0.0.0: every interface)"),
          port: int = typer.Option(7860, min=0, max=65535, help="port (0: any free port)"),
          device: str = DEVICE) -> None:
    """View models in a local web page: samples, projections, translations, aging.

    Each model shows its family's controls: a generator samples seeds at a
    truncation, blends two seeds and projects an uploaded image; a translation
    model translates an upload; an aging model renders an upload at any value
    of its range. The page needs no internet. Ctrl-C stops the server.

    Examples:

    \b
      gankd serve builtin:emoji32
      gankd serve runs/emoji runs/tones --port 0
      gankd serve runs/aging --host 0.0.0.0 --port 8080 --device cpu
    """
    from gankd.serve import serve as run

    run(ckpts, host, port, device, announce=say)


@app.command()
def report(folder: Path = argument("FOLDER", "a run folder (gankd train), an adapt folder or a bench folder"),
           out: Optional[Path] = out_option("HTML file to write [default: FOLDER/report.html]"),
           force: bool = FORCE) -> None:
    """Write one self-contained HTML page of a run, an adaptation or a bench.

    A run: scores with their extractor, sample grids, curves, command, config. A bench: its
    tables, pictures, a page per run.

    Examples:

    \b
      gankd report runs/scratch-emoji-32
      gankd report adapt-d3t-animals --out d3t.html
      gankd report bench-fewshot --out /tmp/fewshot/report.html --force
    """
    from gankd.report import write_report

    say(str(write_report(folder, out, force)))


def main(argv: list[str] | None = None) -> None:
    """Entry point: every failure the user can act on is one line on stderr and exit status 2 (an
    interruption that says how to resume: 130): gankd's own errors, command-line usage errors
    (typer's box would be six), and outputs that cannot be written (read-only, no permission, full
    disk). Under torchrun a settings error is printed once, by rank 0; other errors name their rank."""
    from gankd.runs import invoked_as

    try:
        with invoked_as(sys.argv[1:] if argv is None else argv):
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
