"""The page of a bench folder (`gankd bench fewshot|limited|compress|aging`): its results tables
(results.md), its pictures, its protocol and commands, and a link to the page of each run."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from gankd.bench.common import BENCH_FILE
from gankd.report import html
from gankd.report.run import read_json, run_folder
from gankd.runs import ADAPT_FILE, CONFIG, checkpoints


def bench_runs(bench: Path) -> list[Path]:
    """The runs under BENCH/runs, oldest path first: adapt folders (fewshot) and run folders."""
    folders = {path.parent for path in (bench / "runs").rglob(CONFIG)}
    return sorted({f.parent if f.name == "run" and (f.parent / ADAPT_FILE).is_file() else f for f in folders})


def evaluations_of(bench: Path, entry: Path) -> list[Path]:
    """The final evaluation a bench keeps apart from the run (compress, aging: evals/ mirrors runs/)."""
    path = bench / "evals" / entry.relative_to(bench / "runs") / "metrics.json"
    return [path] if path.is_file() else []


def command_of(bench: Path, entry: Path) -> str | None:
    """The line of the bench's commands.txt whose --out is `entry` (wherever the bench has moved since)."""
    file = bench / "commands.txt"
    tail = entry.relative_to(bench).parts
    for line in file.read_text().splitlines() if file.is_file() else []:
        try:
            words = shlex.split(line)
        except ValueError:  # not a shell line
            continue
        if "--out" in words[:-1] and Path(words[words.index("--out") + 1]).parts[-len(tail):] == tail:
            return line
    return None


def bench_page(bench: Path, pages: dict[Path, str]) -> str:
    """The page of `bench`, linking each run's page (`run folder: href`)."""
    results = bench / "results.md"
    pictures = "".join(html.figure(path.read_bytes(), path.name) for path in sorted(bench.glob("*.png")))
    rows = []
    for entry, href in pages.items():
        saved = checkpoints(run_folder(entry))
        rows.append(f"<tr><td>{html.link(href, str(entry.relative_to(bench / 'runs')))}</td>"
                    f"<td class=\"num\">{saved[-1][0] if saved else '-'}</td></tr>")
    runs = f"<table><tr><th>run (its page)</th><th>last checkpoint</th></tr>\n{''.join(rows)}</table>"
    commands = bench / "commands.txt"
    lines = commands.read_text().splitlines() if commands.is_file() else []
    protocol = read_json(bench / BENCH_FILE)
    sections = [
        ("Results", html.markdown(results.read_text()) if results.is_file()
         else "<p>no results.md yet: a bench writes its tables when every run is done</p>"),
        ("Pictures", pictures),
        (f"Runs ({len(pages)})", runs if pages else "<p>no runs yet</p>"),
        ("Protocol (bench.json)", html.pre(json.dumps(protocol, indent=1))),
        (f"Commands of the runs ({len(lines)})", html.pre("\n".join(lines), "wrap") if lines else ""),
    ]
    return html.page(f"bench {bench.name}", f"{bench}: {len(pages)} runs", sections)
