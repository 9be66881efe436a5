"""Render report sections (blocks) to one self-contained HTML page and to Markdown.

The HTML inlines its CSS and every plot as SVG and links nothing outside itself, so it opens
offline, can be mailed as one file, and prints (print CSS: no navigation, no page breaks inside
tables rows, figures or generations). The Markdown holds the same tables and text and links the
plots as SVG files in `report_files/` next to it.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from tunelab.report.blocks import Cell, Columns, Figure, Heading, Para, Pre, Section, Table

TEMPLATES = Path(__file__).parent / "templates"


def render_html(title: str, subtitle: str, sections: list[Section]) -> str:
    """The whole page: navigation, then each section's blocks."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    body = [(s.id, s.title, "".join(_html_block(b) for b in s.blocks)) for s in sections]
    return env.get_template("report.html.j2").render(title=title, subtitle=subtitle, sections=body,
                                                     css=(TEMPLATES / "report.css").read_text(encoding="utf-8"))


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _cell(c: Cell, tag: str = "td") -> str:
    attrs = (f' class="{_e(c.cls)}"' if c.cls else "") + (f' title="{_e(c.title)}"' if c.title else "")
    return f"<{tag}{attrs}>{_e(c.text)}</{tag}>"


def _pre(p: Pre) -> str:
    def span(kind: str, text: str, title: str) -> str:
        if not kind and not title:
            return _e(text)
        return f'<span class="{_e(kind)}"' + (f' title="{_e(title)}"' if title else "") + f">{_e(text)}</span>"

    runs = "".join(span(k, t, h) for (k, t), h in zip(p.segments, p.titles or [""] * len(p.segments)))
    return f"<pre>{runs}</pre>"


def _html_block(b: Any) -> str:
    if isinstance(b, Heading):
        return f"<h3>{_e(b.text)}</h3>\n"
    if isinstance(b, Para):
        return f'<p class="{_e(b.cls)}">{_e(b.text)}</p>\n' if b.cls else f"<p>{_e(b.text)}</p>\n"
    if isinstance(b, Table):
        head = "".join(f"<th>{_e(c)}</th>" for c in b.columns)
        rows = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>\n" for row in b.rows)
        cap = f"<caption>{_e(b.caption)}</caption>" if b.caption else ""
        return f'<div class="table-wrap"><table>{cap}<thead><tr>{head}</tr></thead><tbody>\n{rows}</tbody></table></div>\n'
    if isinstance(b, Figure):
        cap = f"<figcaption>{_e(b.caption)}</figcaption>" if b.caption else ""
        return f'<figure id="fig-{_e(b.name)}">{b.svg}{cap}</figure>\n'
    if isinstance(b, Pre):
        label = f'<div class="pre-label">{_e(b.label)}</div>' if b.label else ""
        return f'<div class="pre-block">{label}{_pre(b)}</div>\n'
    if isinstance(b, Columns):
        cols = []
        for header, pre, badges in b.items:
            marks = "".join(f'<span class="badge {_e(c.cls)}" title="{_e(c.title)}">{_e(c.text)}</span>' for c in badges)
            cols.append(f'<div class="col"><div class="col-head">{_e(header)} {marks}</div>{_pre(pre)}</div>')
        return f'<div class="columns" style="--n:{len(cols)}">{"".join(cols)}</div>\n'
    raise TypeError(f"unknown report block {type(b).__name__}")


# ---- Markdown ------------------------------------------------------------------------------------


def render_markdown(title: str, subtitle: str, sections: list[Section], files_dir: str = "report_files") -> str:
    """Markdown of the same sections; figures link `files_dir/<name>.svg` (see `figure_files`)."""
    out = [f"# {title}", "", subtitle, ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        for b in s.blocks:
            out += _md_block(b, files_dir) + [""]
    return "\n".join(out).rstrip() + "\n"


def _md_text(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_pre(p: Pre) -> list[str]:
    marks = {"mask": ("⟦", "⟧"), "new": ("{+", "+}"), "gone": ("[-", "-]")}
    text = "".join(marks.get(k, ("", ""))[0] + t + marks.get(k, ("", ""))[1] for k, t in p.segments)
    fence = "````" if "```" in text else "```"
    return [fence + "text", text.rstrip("\n"), fence]


def _md_block(b: Any, files_dir: str) -> list[str]:
    if isinstance(b, Heading):
        return [f"### {b.text}"]
    if isinstance(b, Para):
        return [f"> {b.text}" if b.cls else b.text]
    if isinstance(b, Table):
        lines = [f"*{b.caption}*", ""] if b.caption else []
        lines.append("| " + " | ".join(_md_text(c) for c in b.columns) + " |")
        lines.append("|" + "---|" * len(b.columns))
        for row in b.rows:
            lines.append("| " + " | ".join(_md_text(c.text + _md_mark(c)) for c in row) + " |")
        return lines
    if isinstance(b, Figure):
        return [f"![{b.caption or b.name}]({files_dir}/{b.name}.svg)"] + ([f"*{b.caption}*"] if b.caption else [])
    if isinstance(b, Pre):
        return ([f"**{b.label}**", ""] if b.label else []) + _md_pre(b)
    if isinstance(b, Columns):
        lines: list[str] = []
        for header, pre, badges in b.items:
            tags = " ".join(f"`{c.text}`" for c in badges)
            lines += [f"**{header}** {tags}".rstrip(), ""] + _md_pre(pre) + [""]
        return lines
    raise TypeError(f"unknown report block {type(b).__name__}")


def _md_mark(c: Cell) -> str:
    """Colour does not survive Markdown: mark better/worse with arrows instead."""
    return {"better": " ▲", "worse": " ▼"}.get(c.cls.split()[0] if c.cls else "", "")


def figure_files(sections: list[Section]) -> dict[str, str]:
    """{file name: svg text} of every figure, for report_files/."""
    return {f"{b.name}.svg": b.svg for s in sections for b in s.blocks if isinstance(b, Figure)}
