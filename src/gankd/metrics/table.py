"""The table `gankd evaluate` prints: one row per metric, named with its extractor."""

from __future__ import annotations

READING = ("Lower is better for FID and KID; higher for precision, recall and intra-LPIPS (diversity); "
           "copying C_T below -3 flags copies of the shots.")


def metric_rows(report: dict) -> list[tuple[str, str, str]]:
    """(metric id, value, details) per metric of a report."""
    rows = []
    for name, m in report["metrics"].items():
        value = m["value"]
        if name == "kid":
            text, details = f"{value:.5f} ± {m['std']:.5f}", f"{m['subsets']} subsets of {m['subset_size']}"
        elif name == "intra_lpips":
            empty = sum(1 for c in m["clusters"] if c is None)
            text = f"{value:.4f}"
            details = f"{m['samples']} samples in {len(m['sizes'])} clusters" + (f", {empty} with < 2" if empty else "")
        elif name == "copying":
            text = f"{value:+.2f}"
            details = (f"C_T; nearest-training distance ratio {m['ratio']:.3f}; {m['cells_used']}/{m['cells']} cells"
                       + ("; COPYING" if m["flagged"] else ""))
        else:
            text, details = f"{value:.4f}", ""
        rows.append((m["id"], text, details))
    return rows


def markdown_table(reports: dict[str, dict]) -> list[str]:
    """The lines of a markdown table with one row of scores per `generator name: report` (columns:
    the first report's metric ids)."""
    ids = [metric_id for metric_id, _, _ in metric_rows(next(iter(reports.values())))]
    lines = ["| generator | " + " | ".join(ids) + " |", "|" + " --- |" * (len(ids) + 1)]
    return lines + [f"| {name} | " + " | ".join(value for _, value, _ in metric_rows(report)) + " |"
                    for name, report in reports.items()]


def print_table(report: dict) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    title = (f"{report['target']} vs {report['reference']} ({report['reference_images']} images), "
             f"{report['samples']} samples at {report['resolution']} px, {report['resize']} resize")
    table = Table(title=escape(title))
    table.add_column("metric", no_wrap=True)
    table.add_column("value", no_wrap=True)
    table.add_column("details", overflow="fold")
    for row in metric_rows(report):
        table.add_row(*map(escape, row))  # ids such as fid[domain:...] are not markup
    console = Console()
    console.print(table)
    console.print(f"{report['out']}/metrics.json" + (f", {report['copying_picture']}" if "copying_picture" in report else ""))
