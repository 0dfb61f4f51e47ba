"""Running the study: every section in turn into one folder, ``results.json`` rewritten after
each section (without the bulky histories and predictions), then ``SUMMARY.md``."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fnn.study.context import BUDGETS, Context, StudyError
from fnn.study.search import run_sweeps
from fnn.study.sections import best_of, compare_optimizers, final, mnist, presets, samples
from fnn.study.summary import write_summary
from fnn.study.torch_parity import versus_torch

SECTIONS = ("samples", "optimizers", "sweeps", "final", "mnist", "presets", "torch")


def machine() -> dict[str, str]:
    from fnn.bench import blas_threads

    return {
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas_threads(),
        "system": platform.platform(terse=True),
    }


def _check_out(out: Path, budget: str, train_subset: int | None, overwrite: bool) -> None:
    """``StudyError`` when ``out`` holds a study made with other settings (and no ``overwrite``)."""
    try:
        earlier = json.loads((out / "results.json").read_text())
    except (OSError, ValueError):
        return
    settings = (earlier.get("budget"), earlier.get("train_subset"))
    if settings != (budget, train_subset) and not overwrite:
        raise StudyError(
            f"{out} holds a study of budget {settings[0]} (train_subset {settings[1]}); choose "
            "another --out, or --overwrite to replace it"
        )


def run(
    out: str | Path = "study",
    *,
    budget: str = "quick",
    data_dir: str | None = None,
    tracker: str = "wandb",
    train_subset: int | None = None,
    seed: int = 0,
    project: str = "fnn",
    say: Callable[[str], None] = print,
    progress: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run every section into ``out`` and write ``results.json`` (after each section) and
    ``SUMMARY.md``; returns the results. ``train_subset`` caps every training set (for a fast
    smoke test of the whole pipeline). A folder holding a study of the same budget is
    continued (its sweeps resume); one of another budget is replaced only with ``overwrite``."""
    if budget not in BUDGETS:
        raise StudyError(f"budget must be one of {', '.join(BUDGETS)}; got {budget!r}")
    out = Path(out)
    _check_out(out, budget, train_subset, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    ctx = Context(out, BUDGETS[budget], data_dir, tracker, train_subset, seed, project, say,
                  progress)  # fmt: skip
    results: dict[str, Any] = {
        "budget": budget,
        "train_subset": train_subset,
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "seconds": {},
    }
    started = time.perf_counter()
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("samples", lambda: samples(ctx)),
        ("optimizers", lambda: compare_optimizers(ctx)),
        ("sweeps", lambda: run_sweeps(ctx)),
        ("final", lambda: final(ctx, results["sweeps"])),
        ("mnist", lambda: mnist(ctx, results["sweeps"])),
        ("presets", lambda: presets(ctx)),
        ("torch", lambda: versus_torch(ctx, best_of(results["sweeps"])[1]["config"])),
    ]
    for index, (name, section) in enumerate(steps, start=1):
        say(f"[{index}/{len(steps)}] {name}")
        begun = time.perf_counter()
        results[name] = section()
        results["seconds"][name] = time.perf_counter() - begun
        _write_json(out / "results.json", results)
    results["seconds"]["total"] = time.perf_counter() - started
    _write_json(out / "results.json", results)
    path = write_summary(out, results)
    say(f"wrote {path} ({results['seconds']['total'] / 60:.1f} min)")
    return results


def _write_json(path: Path, results: dict[str, Any]) -> None:
    def default(value):
        if isinstance(value, np.integer | np.floating):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, tuple):
            return list(value)
        raise TypeError(f"not JSON: {type(value).__name__}")

    clean = {k: _drop_arrays(v) for k, v in results.items()}
    path.write_text(json.dumps(clean, indent=1, default=default) + "\n")


def _drop_arrays(value: Any) -> Any:
    """Results without the bulky parts (predictions, histories) for results.json."""
    if isinstance(value, dict):
        return {k: _drop_arrays(v) for k, v in value.items() if k not in ("history", "test")}
    if isinstance(value, list):
        return [_drop_arrays(v) for v in value]
    return value
