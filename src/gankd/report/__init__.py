"""`gankd report`: one self-contained HTML page (images as data URIs, plots as inline SVG, no
scripts) of a run folder, an adapt folder or a bench folder.

A bench's page links one page per run. Those are written into `<page name>-runs/` beside the
bench's page (report-runs/<target>/<method>/<seed>.html by default), never into the run folders:
the bench folder may be read-only or another's, and the pages move together with their index.
"""

from __future__ import annotations

import os
from pathlib import Path

from gankd.errors import DataError, OutputExistsError
from gankd.fileio import atomic_write, new_file
from gankd.report.bench import BENCH_FILE, bench_page, bench_runs, command_of, evaluations_of
from gankd.report.run import run_page
from gankd.runs import ADAPT_FILE, CONFIG, is_run


def write_report(folder: str | os.PathLike, out: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Write the page of `folder` to `out` (default FOLDER/report.html); returns its path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    bench = (folder / BENCH_FILE).is_file()
    if not bench and not (folder / ADAPT_FILE).is_file() and not (is_run(folder) or (folder / CONFIG).is_file()):
        raise DataError(f"{folder}: not a run, adapt or bench folder (no {CONFIG}, checkpoints/, {ADAPT_FILE} "
                        f"or {BENCH_FILE})")
    out = new_file(Path(out) if out else folder / "report.html", force)
    if not bench:
        atomic_write(out, run_page(folder).encode())
        return out
    pages_dir = out.with_name(f"{out.stem}-runs")
    if pages_dir.exists() and not force:
        raise OutputExistsError(f"{pages_dir} exists; choose another --out or pass --force to replace its pages")
    pages = {}
    for entry in bench_runs(folder):
        name = str(entry.relative_to(folder / "runs"))
        page = pages_dir / f"{name}.html"
        back = (os.path.relpath(out, page.parent), f"back to the bench {folder.name}")
        text = run_page(entry, evaluations_of(folder, entry), command_of(folder, entry), back, name)
        atomic_write(page, text.encode())
        pages[entry] = os.path.relpath(page, out.parent)
    atomic_write(out, bench_page(folder, pages).encode())
    return out
