"""The parts every report page is made of: escaped text, tables, embedded PNGs, preformatted
text, a little markdown (the benches' results.md), and the page around them. No scripts and no
external files: a page is one file that can be mailed or archived."""

from __future__ import annotations

import base64
from html import escape
from urllib.parse import quote

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; color: #1d2330; max-width: 1060px; margin: 0 auto; padding: 12px 20px 40px; }
h1 { font-size: 22px; margin: 6px 0 2px; }
h2 { font-size: 17px; margin: 26px 0 8px; border-bottom: 1px solid #dde2ea; }
.sub { color: #5b6472; margin: 0 0 10px; }
a { color: #1f5fbf; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
th, td { border: 1px solid #dde2ea; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f5f9; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.scroll { overflow-x: auto; }
pre { background: #f6f8fa; border: 1px solid #e3e7ee; padding: 8px 10px; overflow-x: auto; font-size: 12px; }
pre.wrap { white-space: pre-wrap; word-break: break-all; }
pre.columns { column-count: 3; column-gap: 24px; white-space: pre-wrap; word-break: break-all; }
figure { margin: 0; }
figcaption { font-size: 12px; color: #5b6472; text-align: center; }
img { max-width: 100%; border: 1px solid #e3e7ee; }
figure > img { image-rendering: pixelated; }
.grids { display: flex; flex-wrap: wrap; gap: 10px; }
.grids img { width: 164px; image-rendering: auto; }
.plots { display: flex; flex-wrap: wrap; gap: 8px; }
svg { background: #fff; border: 1px solid #e3e7ee; }
"""


def page(title: str, subtitle: str, sections: list[tuple[str, str]]) -> str:
    """A whole HTML page: the title, one line under it, then each (heading, body HTML) section that
    has a body (no heading for an empty one)."""
    body = "".join((f"<h2>{escape(heading)}</h2>\n" if heading else "") + f"{html}\n" for heading, html in sections
                   if html)
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head>\n<body>\n<h1>{escape(title)}</h1>\n<p class=\"sub\">{escape(subtitle)}</p>\n"
            f"{body}</body></html>\n")


def png(data: bytes, alt: str) -> str:
    """An <img> holding a PNG file's bytes as a data URI."""
    return f'<img src="data:image/png;base64,{base64.b64encode(data).decode()}" alt="{escape(alt)}">'


def figure(data: bytes, caption: str) -> str:
    return f"<figure>{png(data, caption)}<figcaption>{escape(caption)}</figcaption></figure>"


def table(header: list[str] | None, rows: list[list[str]], numeric: tuple[int, ...] = ()) -> str:
    """A table of plain-text cells (escaped here), with a header row unless None; columns in
    `numeric` are right-aligned."""
    head = "<tr>" + "".join(f"<th>{_breakable(h)}</th>" for h in header) + "</tr>\n" if header else ""
    cell = ('<td class="num">', "<td>")
    body = "".join("<tr>" + "".join(f"{cell[i not in numeric]}{escape(str(c))}</td>" for i, c in enumerate(row))
                   + "</tr>\n" for row in rows)
    return f'<div class="scroll"><table>{head}{body}</table></div>'


def _breakable(text: str) -> str:
    """Escaped, with places to break a long metric id (`kid[domain:804d56a9,noise=random]`)."""
    return escape(text).replace("[", "[<wbr>").replace(",", ",<wbr>")


def pre(text: str, kind: str = "") -> str:
    """Preformatted text; kind `wrap` (long command lines) or `columns` (a long config)."""
    return f'<pre class="{kind}">{escape(text)}</pre>' if kind else f"<pre>{escape(text)}</pre>"


def link(path: str, text: str) -> str:
    """A link to a relative file path (percent-encoded: run names hold `+`, user paths spaces)."""
    return f'<a href="{escape(quote(path))}">{escape(text)}</a>'


def markdown(text: str) -> str:
    """The markdown gankd writes itself (results.md): headings, paragraphs and pipe tables."""
    blocks, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(set(c) <= set("-: ") for c in cells):  # the separator row
                    rows.append(cells)
                i += 1
            blocks.append(table(rows[0], rows[1:]))
            continue
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")) + 2, 6)
            blocks.append(f"<h{level}>{escape(line.lstrip('#').strip())}</h{level}>")
        elif line:
            blocks.append(f"<p>{escape(line)}</p>")
        i += 1
    return "\n".join(blocks)
