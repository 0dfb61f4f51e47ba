"""The report of a sweep (``report``): the trials of an Optuna study or of a folder of W&B
runs, the parameters that vary, their importance (Optuna's evaluator, or rank correlations
with few trials), written as three figures (drawn with ``fnn.plots``), a CSV, and
``summary.md`` and ``index.html`` written by hand from one ``_Page`` (what both say). Also a
study made by ``run_local`` read back: ``load_study``, ``study_trials``, ``study_metric`` and
``trial_config``.

Optuna is imported inside the functions that need it.
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from fnn.constraints import GOALS, is_number
from fnn.redact import mask
from fnn.sweep.config import METRICS, SweepConfigError, sweepable
from fnn.sweep.optuna_space import decoded
from fnn.sweep.optuna_storage import check_driver, database_url, shown, sqlite_path
from fnn.sweep.training import STATES, train_config
from fnn.sweep.wandb_backend import wandb_trials
from fnn.train import TrainConfig

if TYPE_CHECKING:
    import optuna


def report(
    source: str | os.PathLike,
    *,
    out: str | os.PathLike,
    storage: str = "sqlite:///sweeps.db",
    metric: str | None = None,
    goal: str | None = None,
    top: int = 10,
) -> dict[str, Path]:
    """Summarise a sweep into ``out``: ``parallel_coordinates.png``, ``metric_by_run.png``,
    ``importance.png`` and ``importance.csv``, ``summary.md`` (top ``top`` complete trials,
    state counts, importances) and ``index.html`` (the same, with the figures).

    ``source`` is a folder of W&B runs (e.g. ``./wandb``, read with ``wandb leet inspect``) or
    the name of an Optuna study in ``storage``. ``metric`` and ``goal`` default to the study's
    (for W&B runs: ``val_accuracy``; goal minimize for losses, else maximize).
    """
    if metric is not None and metric not in METRICS:
        raise SweepConfigError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")
    if goal is not None and goal not in GOALS.options:
        raise SweepConfigError(f"goal must be minimize or maximize; got {goal!r}")
    if Path(source).is_dir():
        metric = metric or "val_accuracy"
        trials = wandb_trials(source, metric=metric)
        if not trials:
            raise SweepConfigError(f"{source}: no readable W&B runs (offline-run-*/run-*) in it")
        params = _varying(trials, sorted(sweepable()))
        studies = {trial["sweep"] for trial in trials}
        name = studies.pop() if len(studies) == 1 and None not in studies else Path(source).name
        importances, method = _fallback_importance(trials, params)
        origin = f"W&B runs in {source}"
    else:
        study = load_study(str(source), storage)
        own_metric, own_goal = study_metric(study)
        if metric is None or metric == own_metric:
            goal = goal or own_goal
        metric = metric or own_metric or "value"
        trials = study_trials(study, metric=metric)
        if not trials:
            raise SweepConfigError(f"study {source!r} has no trials yet")
        params = _study_params(study, trials)
        name = study.study_name
        importances, method = _study_importance(study, trials, params, metric)
        origin = f"Optuna study {name!r} in {mask(storage)}"  # no password in a report
    goal = goal or ("minimize" if metric.endswith("loss") else "maximize")
    return _write_report(
        Path(out),
        name=name,
        origin=origin,
        trials=trials,
        params=params,
        metric=metric,
        goal=goal,
        importances=importances,
        method=method,
        top=top,
    )


def _study_params(study: optuna.Study, trials: list[dict]) -> list[str]:
    """The swept (non-constant) parameters of the study that vary across its trials."""
    parameters = (study.user_attrs.get("sweep") or {}).get("parameters") or {}
    swept = [name for name, spec in parameters.items() if spec["distribution"] != "constant"]
    swept = swept or sorted(
        {key for trial in study.get_trials(deepcopy=False) for key in trial.params}
    )
    return _varying(trials, swept) or swept


def _study_importance(
    study: optuna.Study, trials: list[dict], params: list[str], metric: str
) -> tuple[dict[str, float], str]:
    """Optuna's importances with 2 or more complete trials and a varying parameter; otherwise,
    or if the evaluator fails on so few trials, the correlations of ``correlation_importance``."""
    complete = _complete(trials)
    varying = _varying(complete, params)
    if len(complete) >= 2 and varying:
        try:
            return _optuna_importance(study, varying, metric)
        except (ValueError, RuntimeError, ZeroDivisionError):
            pass
    return _fallback_importance(trials, params)


def _fallback_importance(trials: list[dict], params: list[str]) -> tuple[dict[str, float], str]:
    complete = _complete(trials)
    varying = _varying(complete, params)
    if len(complete) < 3 or not varying:
        return {}, f"not computed: {len(complete)} complete trials, it needs 3 that vary"
    return correlation_importance(complete, varying), (
        f"|Spearman rho| with the metric for numeric parameters, correlation ratio eta for "
        f"categorical ones, over {len(complete)} complete trials (each in [0, 1], not normalised)"
    )


def _complete(trials: list[dict]) -> list[dict]:
    return [t for t in trials if t["state"] == "COMPLETE" and is_number(t["value"])]


def _varying(trials: list[dict], names: list[str]) -> list[str]:
    """The names that take more than one value across ``trials``; ``hidden_sizes`` only when
    the widths are not already told by ``num_layers`` and ``hidden_size``."""
    varying = [
        name
        for name in names
        if len({json.dumps(trial.get(name), sort_keys=True) for trial in trials}) > 1
    ]
    if "hidden_sizes" in varying and {"num_layers", "hidden_size"} & set(varying):
        varying.remove("hidden_sizes")
    return varying


# --- a study read back -----------------------------------------------------------------------


def load_study(name: str, storage: str) -> optuna.Study:
    """The study ``name`` in ``storage``, or one ``SweepConfigError`` naming what is there."""
    import optuna

    check_driver(storage)
    path = sqlite_path(storage)
    if path is not None and not path.exists():
        raise SweepConfigError(f"{name!r} is not a folder, and there is no storage {path}")
    names = optuna.study.get_all_study_names(database_url(storage))
    if name not in names:
        raise SweepConfigError(
            f"{name!r} is neither a folder of W&B runs nor a study in {shown(storage)} "
            f"(studies: {', '.join(names) or 'none'})"
        )
    return optuna.load_study(study_name=name, storage=database_url(storage))


def study_metric(study: optuna.Study) -> tuple[str | None, str]:
    """The metric name a study made by ``run_local`` optimises (None for another study) and its
    goal."""
    metric = (study.user_attrs.get("sweep") or {}).get("metric") or {}
    return metric.get("name"), metric.get("goal") or study.direction.name.lower()


def study_trials(study: optuna.Study, *, metric: str | None = None) -> list[dict]:
    """One dict per trial: ``number``, ``state`` (Optuna's name: COMPLETE, PRUNED, FAIL,
    RUNNING, WAITING), ``value``, each parameter by name, ``run_name``, ``epochs_run`` and
    ``error`` (a diverged trial's message). ``value`` is the study's objective, or the last
    epoch's ``metric`` when another metric is asked for."""
    own_metric = study_metric(study)[0]
    from_history = None not in (metric, own_metric) and metric != own_metric
    rows = []
    for trial in study.get_trials(deepcopy=False):
        history = trial.user_attrs.get("history") or {}
        value = (history.get(metric) or [None])[-1] if from_history else trial.value
        rows.append({
            "number": trial.number, "state": trial.state.name, "value": value, **trial.params,
            "run_name": trial.user_attrs.get("run_name"),
            "epochs_run": len(next(iter(history.values()), [])) if history else None,
            "error": trial.user_attrs.get("error"),
        })  # fmt: skip
    return rows


def trial_config(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> TrainConfig:
    """The whole configuration ``trial`` of a ``run_local`` study trained: the study's base
    options, the sweep's constants and the trial's values."""
    sweep = study.user_attrs.get("sweep")
    if sweep is None:
        raise SweepConfigError(f"study {study.study_name!r} was not made by fnn sweep")
    values = {}
    for name, spec in sweep["parameters"].items():
        if spec["distribution"] == "constant":
            values[name] = spec["value"]
        elif name in trial.params:
            choice = trial.params[name]
            categorical = spec["distribution"] == "categorical"
            values[name] = decoded(spec["values"], choice) if categorical else choice
    return train_config(study.user_attrs.get("base") or {}, values)


# --- importance --------------------------------------------------------------------------------


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged (as Spearman's rho needs)."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    _, inverse = np.unique(values, return_inverse=True)
    return (np.bincount(inverse, ranks) / np.bincount(inverse))[inverse]


def _correlation(x: np.ndarray, y: np.ndarray) -> float:
    if x.std() == 0 or y.std() == 0:
        return 0.0
    return float(abs(np.corrcoef(x, y)[0, 1]))


def correlation_importance(trials: list[dict], params: list[str]) -> dict[str, float]:
    """Per parameter over the complete trials with a value: |Spearman rho| with the metric for
    numeric parameters, the correlation ratio eta (Pearson r between the metric and its mean
    per category) for the others. Each in [0, 1]; not normalised."""
    done = _complete(trials)
    y = np.array([t["value"] for t in done], dtype=np.float64)
    importances = {}
    for name in params:
        column = [t.get(name) for t in done]
        if all(is_number(v) for v in column):
            x = np.array(column, dtype=np.float64)
            importances[name] = _correlation(_ranks(x), _ranks(y))
            continue
        keys = [json.dumps(v, sort_keys=True) for v in column]
        means = {key: y[[k == key for k in keys]].mean() for key in set(keys)}
        importances[name] = _correlation(np.array([means[k] for k in keys]), y)
    return dict(sorted(importances.items(), key=lambda item: -item[1]))


def _optuna_importance(
    study: optuna.Study, params: list[str], metric: str | None
) -> tuple[dict[str, float], str]:
    import optuna

    own = study_metric(study)[0]
    target = None
    if None not in (metric, own) and metric != own:

        def target(trial):
            return ((trial.user_attrs.get("history") or {}).get(metric) or [math.nan])[-1]

    try:
        import sklearn  # noqa: F401  (fANOVA's random forest)

        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        method = "fANOVA (Optuna's FanovaImportanceEvaluator, seed 0)"
    except ImportError:
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
        method = "PED-ANOVA (Optuna's default evaluator; fANOVA needs scikit-learn)"
    importances = optuna.importance.get_param_importances(
        study, evaluator=evaluator, params=params, target=target
    )
    return dict(importances), f"{method}, normalised to sum 1"


# --- writing the report ------------------------------------------------------------------------


def _page(name, origin, trials, params, metric, goal, importances, method, top) -> _Page:
    ranked = sorted(_complete(trials), key=lambda t: t["value"], reverse=goal == "maximize")
    rows = [
        [str(rank), str(t["number"]), f"{t['value']:.4f}", *(_cell(t.get(p)) for p in params)]
        + [_cell(t.get("run_name"))]
        for rank, t in enumerate(ranked[:top], start=1)
    ]
    counts = ", ".join(
        f"{n} {state.lower()}"
        for state in STATES
        if (n := sum(t["state"] == state for t in trials))
    )
    return _Page(
        title=f"Sweep {name}",
        facts=[
            f"Source: {origin}",
            f"Metric: {metric} ({goal}); trials: {len(trials)} ({counts})",
        ],
        ranked_title=f"Top {len(rows)} complete trials by {metric}",
        ranked=(["rank", "trial", metric, *params, "run"], rows),
        method=method,
        importances=[[param, f"{value:.4f}"] for param, value in importances.items()],
    )


def _write_report(
    out: Path,
    *,
    name: str,
    origin: str,
    trials: list[dict],
    params: list[str],
    metric: str,
    goal: str,
    importances: dict[str, float],
    method: str,
    top: int,
) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = _figures(out, name, trials, params, metric, goal, importances)
    paths["importance_table"] = out / "importance.csv"
    paths["importance_table"].write_text(
        "parameter,importance\n" + "".join(f"{k},{v!r}\n" for k, v in importances.items())
    )
    page = _page(name, origin, trials, params, metric, goal, importances, method, top)
    paths["summary"] = out / "summary.md"
    paths["summary"].write_text(_markdown(page))
    paths["index"] = out / "index.html"
    paths["index"].write_text(_html(page))
    return paths


# --- the report's files ------------------------------------------------------------------------


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
    numbers = (
        [t["number"] for t in trials] if all(is_number(t.get("number")) for t in trials) else None
    )
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
            numbers=numbers,
            unit="trial" if numbers else "run",
        ),
        "importance": plots.importance_bar(
            importances, files["importance"], title=f"Sweep {name}: hyperparameter importance"
        ),
    }
