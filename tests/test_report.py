"""gankd report: self-contained pages of a run, an adaptation and a bench; what adapt writes beside them."""

import base64
import json
import re
import shlex
import shutil
from html import escape
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image

from gankd.cli import main
from gankd.comparison import CAPTION
from test_train import TINY

ARGS = [*TINY, "steps=3", "sample_every=1", "eval.every=3", "eval.n=16", "eval.metrics=kid,fid"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A tiny run made by the command: a metrics row and a sample grid every step, one evaluation."""
    folder = tmp_path_factory.mktemp("report") / "run"
    main(["train", *ARGS, "--out", str(folder)])
    return folder


def logged(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_run_records_the_command_that_made_it(run):
    assert (run / "commands.txt").read_text() == shlex.join(["gankd", "train", *ARGS, "--out", str(run)]) + "\n"


def test_run_page_is_self_contained_with_grids_curves_scores_config_and_command(run, run_cli, tmp_path):
    code, out, err = run_cli("report", run, "--out", tmp_path / "page.html")
    assert code == 0, err
    page = (tmp_path / "page.html").read_text()
    assert "<script" not in page and "href=" not in page
    sources = re.findall(r'<img src="([^"]*)"', page)
    grids = sorted((run / "samples").glob("*.png"))
    assert len(grids) == 4 and len(sources) == page.count("<img") == 4  # steps 0-3
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert [base64.b64decode(s.split(",", 1)[1]) for s in sources] == [p.read_bytes() for p in grids]
    # The G loss curve: one point per logged row; its smallest and largest values on the plot area's
    # bottom and top edges (y 172 and 26), its first and last steps on the left and right (x 52 and 330).
    values = [row["loss/G_main/adv"] for row in logged(run) if "loss/G_main/adv" in row]
    assert len(values) == 3
    plot = re.search(r"G_main losses.*?</svg>", page, re.S).group(0)
    points = [tuple(map(float, p.split(","))) for p in re.search(r'points="([^"]*)"', plot).group(1).split()]
    assert [x for x, _ in points] == [52.0, 191.0, 330.0]
    low, high = min(values), max(values)
    assert [y for _, y in points] == [round(172 - (v - low) / (high - low) * 146, 1) for v in values]
    assert {points[values.index(high)][1], points[values.index(low)][1]} == {26.0, 172.0}
    evaluation = next(row for row in logged(run) if "eval/fid" in row)
    assert f"<td>FID (domain)</td><td class=\"num\">{evaluation['eval/fid']:.4f}</td>" in page
    assert "KID (domain)" in page
    assert escape((run / "config.yaml").read_text()) in page
    assert escape((run / "commands.txt").read_text().strip()) in page


def test_report_is_not_overwritten_without_force_and_a_bad_folder_is_one_line(run, run_cli, tmp_path):
    code, out, err = run_cli("report", run)
    assert code == 0 and out.strip() == str(run / "report.html")
    first = (run / "report.html").stat().st_mtime_ns
    code, _, err = run_cli("report", run)
    assert code == 2 and "exists" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert (run / "report.html").stat().st_mtime_ns == first
    assert run_cli("report", run, "--force")[0] == 0
    code, _, err = run_cli("report", tmp_path)
    assert code == 2 and "not a run, adapt or bench folder" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli("report", tmp_path / "nothing")
    assert code == 2 and "no such folder" in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_bench_page_links_a_page_per_run_and_writes_nothing_into_the_bench(run, run_cli, tmp_path):
    bench = tmp_path / "bench"
    for seed in (0, 1):
        shutil.copytree(run, bench / "runs" / "tiny" / "scratch" / f"seed{seed}", ignore=shutil.ignore_patterns("*.html"))
    (bench / "bench.json").write_text(json.dumps({"settings": [], "threads": 1}))
    (bench / "results.md").write_text("Protocol line\n\n| target | method | fid[domain:abc] |\n| --- | --- | --- |\n"
                                      "| tiny | scratch | 12.5000 ± 0.5000 |\n")
    Image.new("RGB", (8, 4), "red").save(bench / "tiny.png")
    line = "gankd train --out /moved/bench/runs/tiny/scratch/seed1 steps=3"
    (bench / "commands.txt").write_text(line + "\n")
    (bench / "evals" / "tiny" / "scratch" / "seed1").mkdir(parents=True)
    (bench / "evals" / "tiny" / "scratch" / "seed1" / "metrics.json").write_text(json.dumps(
        {"features": "domain:abc", "samples": 8, "metrics": {"fid": {"value": 12.25, "id": "fid[domain:abc]"}}}))
    before = sorted(bench.rglob("*"))
    index = tmp_path / "pages" / "index.html"
    code, _, err = run_cli("report", bench, "--out", index)
    assert code == 0, err
    assert sorted(bench.rglob("*")) == before
    page = index.read_text()
    assert "<td>tiny</td><td>scratch</td><td>12.5000 ± 0.5000</td>" in page and page.count("<img") == 1
    links = re.findall(r'<a href="([^"]*)">([^<]*)</a>', page)
    assert [text for _, text in links] == ["tiny/scratch/seed0", "tiny/scratch/seed1"]
    pages = [index.parent / unquote(href) for href, _ in links]
    assert pages == [tmp_path / "pages" / "index-runs" / "tiny" / "scratch" / f"seed{s}.html" for s in (0, 1)]
    seed1 = pages[1].read_text()
    assert '<a href="../../../index.html">' in seed1 and "<td>FID (domain)</td><td class=\"num\">12.2500</td>" in seed1
    assert escape(line) in seed1 and escape(line) not in pages[0].read_text()
    code, _, err = run_cli("report", bench, "--out", tmp_path / "pages" / "other.html")
    assert code == 0, err  # another page name, another folder of run pages
    index.unlink()
    code, _, err = run_cli("report", bench, "--out", index)
    assert code == 2 and "index-runs exists" in err


def test_adapt_writes_the_comparison_picture_and_a_report_and_its_page_shows_them(run, run_cli, tmp_path):
    out = tmp_path / "adapt"
    code, _, err = run_cli("adapt", "--source", run, "--target", "emoji:group=flags,tone=none,subgroup=country-flag",
                           "--shots", "4", "--method", "finetune", "--eval-n", "24", "--out", out, "steps=2",
                           "eval.every=0")
    assert code == 0, err
    picture = np.asarray(Image.open(out / "comparison.png"))
    # Rows: the 4 shots (padded to 10), the source's and the adapted samples; 16 px tiles shown at 64
    # px with 2 px between them, after a 90 px label column.
    assert picture.shape == (3 * 66 + 2, 90 + 10 * 66 + 2, 3)
    report = (out / "report.md").read_text()
    assert f"![{CAPTION}](comparison.png)" in report and "\n| finetune | " in report and "kid[domain:" in report
    assert (out / "run" / "commands.txt").read_text().startswith("gankd adapt --source ")
    code, _, err = run_cli("report", out)
    assert code == 0, err
    page = (out / "report.html").read_text()
    assert page.count("<img") == len(list((out / "run" / "samples").glob("*.png"))) + 1
    assert "eval-step-2/metrics.json" in page and "copying C_T (domain)" in page
