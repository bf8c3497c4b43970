"""The page of one run: a `gankd train` run folder, or a `gankd adapt` folder (its run plus the final
evaluation and the comparison picture). What it shows: the command that made the run, the scores
with the feature extractor each was computed with, the sample grids over training, the logged
curves, and the resolved config."""

from __future__ import annotations

import json
import re
from pathlib import Path

from gankd.comparison import CAPTION
from gankd.errors import DataError
from gankd.report import html
from gankd.report.svg import line_plot
from gankd.runs import (ADAPT_FILE, CONFIG, METRICS, PICTURE, SAMPLES, checkpoints, logged_rows,
                        recorded_commands)

MAX_GRIDS = 12  # sample grids shown, evenly spaced over the run, the last always among them
MAX_POINTS = 1500  # points of a curve, evenly spaced
NAMES = {"fid": "FID", "kid": "KID", "intra_lpips": "intra-LPIPS", "copying": "copying C_T", "l1": "L1",
         "psnr": "PSNR", "ssim": "SSIM", "lpips": "LPIPS"}
PIXEL_METRICS = ("l1", "psnr", "ssim")  # computed on pixels, with no extractor


def run_folder(folder: Path) -> Path:
    """The training run of a run or adapt folder."""
    return folder / "run" if (folder / ADAPT_FILE).is_file() else folder


def run_page(folder: Path, evaluations: list[Path] = (), bench_command: str | None = None,
             back: tuple[str, str] | None = None, name: str | None = None) -> str:
    """The page of `folder`, titled `name` (default: the folder's name). A bench passes the
    evaluations it keeps elsewhere, its own line for the run (from its commands.txt) and (href,
    text) of the link to its page."""
    run = run_folder(folder)
    config = (run / CONFIG).read_text() if (run / CONFIG).is_file() else ""
    settings = _yaml(config, run / CONFIG)
    logged = logged_rows(run)
    step = max([s for s, _ in checkpoints(run)] + [row["step"] for row in logged], default=0)
    subtitle = (f"{settings.get('method', '?')} on {settings.get('data', '?')}, {settings.get('res', '?')} px, "
                f"step {step} of {settings.get('steps', '?')}")
    evaluations = [*sorted(folder.glob("eval-step-*/metrics.json"), key=lambda p: _number(p.parent.name)),
                   *evaluations]
    sections = [
        ("", html.link(*back) if back else ""),
        ("Scores", scores_table(folder, evaluations, logged, settings)),
        ("Comparison", html.figure((folder / PICTURE).read_bytes(), CAPTION) if (folder / PICTURE).is_file() else ""),
        ("Samples during training", grids(run)),
        ("Curves", curves(logged, settings)),
        ("Command", command_section(recorded_commands(run), bench_command)),
        ("Run", html.table(None, summary(folder, run, settings, step))),
        ("Config (resolved)", html.pre(config, "columns") if config else "<p>no config.yaml</p>"),
    ]
    return html.page(f"{name or folder.name}: {settings.get('method', 'run')}", subtitle, sections)


def summary(folder: Path, run: Path, settings: dict, step: int) -> list[list[str]]:
    rows = [["folder", str(folder)]]
    if (folder / ADAPT_FILE).is_file():
        plan = read_json(folder / ADAPT_FILE)
        rows += [[key, str(plan.get(key))] for key in ("source", "target", "shots", "split", "seed")]
    saved = checkpoints(run)
    rows += [["method", str(settings.get("method"))], ["data", str(settings.get("data"))],
             ["steps", f"{step} of {settings.get('steps')}"],
             ["checkpoints", f"{len(saved)}, newest {saved[-1][1].name}" if saved else "none"]]
    return rows


def command_section(recorded: list[str], bench_command: str | None) -> str:
    parts = []
    if recorded:
        parts.append(html.pre("\n".join(recorded), "wrap"))
    if bench_command and bench_command not in recorded:
        parts.append("<p>The bench's command for this run alone (its commands.txt):</p>" + html.pre(bench_command, "wrap"))
    return "".join(parts) or "<p>not recorded (the run was made before gankd recorded its commands)</p>"


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise DataError(f"{path}: not a JSON file ({err})") from None


def label(metric: str, features: str | None) -> str:
    """`FID (domain)`: the metric and the kind of feature extractor it was computed with."""
    name = NAMES.get(metric, metric)
    if metric in PIXEL_METRICS:
        return f"{name} (pixels)"
    return f"{name} ({features.split(':')[0]})" if features else name


def scores_table(folder: Path, evaluations: list[Path], logged: list[dict], settings: dict) -> str:
    """Every number of the final evaluation files, then the newest evaluation during training."""
    rows = []
    for path in evaluations:
        report = read_json(path)
        features, where = report.get("features"), _relative(path, folder)
        for metric, m in report.get("metrics", {}).items():
            recorded = m.get("id") or f"{metric}[{features}]"
            rows.append([label(metric, features), _value(m.get("value")), where, str(report.get("samples", "")),
                         recorded])
    evaluated = [row for row in logged if any(key.startswith("eval/") for key in row)]
    if evaluated:
        last = evaluated[-1]
        features = settings.get("eval", {}).get("features")
        for key, value in last.items():
            if key.startswith("eval/"):
                metric = key.removeprefix("eval/")
                rows.append([label(metric, features), _value(value), f"{METRICS}, step {last['step']}",
                             str(settings.get("eval", {}).get("n", "")), f"{key} with eval.features={features}"])
    if not rows:
        return "<p>no evaluation (eval.every=0 and no evaluation file)</p>"
    return html.table(["metric (extractor)", "value", "from", "samples", "recorded as"], rows, numeric=(1, 3))


def grids(run: Path) -> str:
    found = sorted((_number(p.stem), p) for p in (run / SAMPLES).glob("step-*.png"))
    if not found:
        return ""
    shown = [found[round(i * (len(found) - 1) / (MAX_GRIDS - 1))] for i in range(MAX_GRIDS)] \
        if len(found) > MAX_GRIDS else found
    note = f"<p>{len(shown)} of the {len(found)} grids, evenly spaced.</p>" if len(shown) < len(found) else ""
    figures = "".join(html.figure(path.read_bytes(), f"step {step}") for step, path in dict.fromkeys(shown))
    return f'{note}<div class="grids">{figures}</div>'


def curves(logged: list[dict], settings: dict) -> str:
    """One plot per training phase (its loss terms), per evaluated metric, and per other logged
    value that changes (the ADA probability, the time per step)."""
    features = settings.get("eval", {}).get("features")
    plots: dict[str, dict[str, list]] = {}
    for row in logged:
        for key, value in row.items():
            if key in ("step", "kimg") or not isinstance(value, (int, float)):
                continue
            if key.startswith("loss/"):  # loss/<phase>/<term>: one plot per phase
                group, _, name = key.rpartition("/")
            else:
                group = name = label(key[5:], features) if key.startswith("eval/") else key
            plots.setdefault(group, {}).setdefault(name, []).append((row["step"], float(value)))
    svgs = []
    for group, series in plots.items():
        flat = all(len({y for _, y in points}) == 1 for points in series.values())
        if flat and not group.startswith("loss/"):
            continue
        title = f"{group.removeprefix('loss/')} losses" if group.startswith("loss/") else group
        svgs.append(line_plot(title, {name: _thin(points) for name, points in series.items()}))
    return f'<div class="plots">{"".join(svgs)}</div>' if svgs else ""


def _value(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"


def _thin(points: list, most: int = MAX_POINTS) -> list:
    if len(points) <= most:
        return points
    return [points[round(i * (len(points) - 1) / (most - 1))] for i in range(most)]


def _yaml(text: str, path: Path) -> dict:
    import yaml

    try:
        settings = yaml.safe_load(text) if text else {}
    except yaml.YAMLError as err:
        raise DataError(f"{path}: not YAML ({str(err).splitlines()[0]})") from None
    return settings if isinstance(settings, dict) else {}


def _number(name: str) -> int:
    found = re.findall(r"\d+", name)
    return int(found[-1]) if found else -1


def _relative(path: Path, folder: Path) -> str:
    try:
        return str(path.relative_to(folder))
    except ValueError:
        return str(path)
