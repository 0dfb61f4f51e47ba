"""The report's files: ``summary.md`` and ``index.html`` written by hand from one ``_Page``
(what both say), and the three figures drawn with ``fnn.plots``.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, NamedTuple

from fnn.constraints import is_number


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return "-".join(map(str, value))
    return str(value)


FIGURES = {  # key -> (file, caption)
    "parallel_coordinates": ("parallel_coordinates.png", "Parallel coordinates"),
    "metric_by_run": ("metric_by_run.png", "Metric by trial"),
    "importance": ("importance.png", "Hyperparameter importance"),
}


class _Page(NamedTuple):
    """What summary.md and index.html both say."""

    title: str
    facts: list[str]
    ranked_title: str
    ranked: tuple[list[str], list[list[str]]]  # header, rows
    method: str
    importances: list[list[str]]


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *map(line, rows)])


def _markdown(page: _Page) -> str:
    lines = [f"# {page.title}", "", *(f"- {fact}" for fact in page.facts), ""]
    lines += [f"## {page.ranked_title}", ""]
    lines += [_markdown_table(*page.ranked) if page.ranked[1] else "No complete trial yet.", ""]
    lines += ["## Parameter importance", "", f"Method: {page.method}.", ""]
    if page.importances:
        lines += [_markdown_table(["parameter", "importance"], page.importances), ""]
    lines += ["## Figures", ""]
    lines += [f"![{caption}]({file})" for file, caption in FIGURES.values()]
    return "\n".join(lines) + "\n"


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


HTML_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border: 1px solid #ccc; padding: .25rem .6rem; text-align: right; }}
th {{ background: #f3f3f3; }}
img {{ max-width: 100%; }}
</style></head>
<body>
{body}
</body></html>
"""


def _html(page: _Page) -> str:
    body = [f"<h1>{html.escape(page.title)}</h1>", "<ul>"]
    body += [f"<li>{html.escape(fact)}</li>" for fact in page.facts] + ["</ul>"]
    body += [f"<h2>{html.escape(page.ranked_title)}</h2>"]
    body += [_html_table(*page.ranked) if page.ranked[1] else "<p>No complete trial yet.</p>"]
    body += ["<h2>Parameter importance</h2>", f"<p>Method: {html.escape(page.method)}.</p>"]
    if page.importances:
        body += [_html_table(["parameter", "importance"], page.importances)]
    body += ["<h2>Figures</h2>"]
    body += [
        f'<figure><img src="{file}" alt="{caption}"><figcaption>{caption}</figcaption></figure>'
        for file, caption in FIGURES.values()
    ]
    return HTML_PAGE.format(title=html.escape(page.title), body="\n".join(body))


def _figures(
    out: Path,
    name: str,
    trials: list[dict],
    params: list[str],
    metric: str,
    goal: str,
    importances: dict[str, float],
) -> dict[str, Path]:
    """The three PNGs. Only complete trials carry a metric: a pruned trial's value is from
    fewer epochs, so it is drawn as grey (missing) rather than ranked with the others."""
    from fnn import plots

    scores = [t["value"] if t["state"] == "COMPLETE" else None for t in trials]
    rows = []
    for trial, score in zip(trials, scores, strict=True):
        values = {p: trial.get(p) for p in params}  # numbers stay numbers for numeric axes
        row = {p: v if is_number(v) else _cell(v) or None for p, v in values.items()}
        rows.append({**row, metric: score})
    files = {key: out / file for key, (file, _) in FIGURES.items()}
    return {
        "parallel_coordinates": plots.parallel_coordinates(
            rows,
            params,
            metric,
            files["parallel_coordinates"],
            title=f"Sweep {name}: {metric} by hyperparameter",
            goal=goal,
        ),
        "metric_by_run": plots.metric_by_run(
            scores,
            files["metric_by_run"],
            metric=metric,
            goal=goal,
            title=f"Sweep {name}: {metric} by trial",
        ),
        "importance": plots.importance_bar(
            importances, files["importance"], title=f"Sweep {name}: hyperparameter importance"
        ),
    }
