"""``SUMMARY.md``: every number and figure of a study's results, with observations computed
from them (nothing in it is typed by hand)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fnn.study.context import describe


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.2%}"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _image(path: str, alt: str) -> str:
    return f"![{alt}]({path})"


def _by_value(trials: list[dict], name: str) -> list[tuple[Any, float, int]]:
    """Mean value of the completed trials for each setting of ``name``, best first."""
    groups: dict[str, list[float]] = {}
    for trial in trials:
        if trial["state"] == "COMPLETE" and trial.get(name) is not None:
            groups.setdefault(str(trial[name]), []).append(trial["value"])
    rows = [(key, float(np.mean(v)), len(v)) for key, v in groups.items()]
    return sorted(rows, key=lambda row: -row[1])


def _sweep_section(title: str, result: dict[str, Any]) -> list[str]:
    """One sweep: its size, best trial, report figures, importances, top trials, observations."""
    states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(result["states"].items()))
    lines = [f"### {title}", ""]
    lines.append(
        f"`{result['yaml']}`, method {result['method']}, study `{result['study']}`: "
        f"{len(result['trials'])} trials ({states})."
        + (f" The space has {result['space']:,} points." if result["space"] else "")
    )
    best = result["best"]
    if best:
        lines.append(
            f"Best: trial {best['trial']}, val accuracy **{_pct(best['val_accuracy'])}**: "
            f"{describe(best['config'])}."
        )
    lines += ["", _image(result["report"]["parallel_coordinates"], "parallel coordinates"),
              _image(result["report"]["importance"], "importance"), ""]  # fmt: skip
    ranked = sorted(result["importances"].items(), key=lambda kv: -kv[1])
    if ranked:
        lines += _table(["parameter", "importance"], [[k, f"{v:.3f}"] for k, v in ranked])
        lines.append("")
    if result["top"]:
        lines += ["Top 10 completed trials:", ""]
        lines += _table(
            ["#", "val accuracy", "configuration"],
            [[i, _pct(row["val_accuracy"]), describe(row)]
             for i, row in enumerate(result["top"], start=1)],
        )  # fmt: skip
        lines.append("")
    observations = _sweep_observations(result, [name for name, _ in ranked[:3]])
    if observations:
        lines += ["Observations (means over completed trials):", "", *observations, ""]
    lines.append(f"Full report: [{result['report']['summary']}]({result['report']['summary']}).")
    return lines + [""]


def _sweep_observations(result: dict[str, Any], names: list[str]) -> list[str]:
    """The mean val accuracy by each setting of each parameter in ``names`` (when it took two
    settings or more), and the trials that diverged."""
    observations = []
    for name in names:
        means = _by_value(result["trials"], name)
        if len(means) >= 2:
            listed = ", ".join(f"{key} {_pct(mean)} (n={n})" for key, mean, n in means)
            observations.append(f"- Mean val accuracy by `{name}`: {listed}.")
    failed = [t for t in result["trials"] if t["state"] == "FAIL"]
    if failed:
        observations.append(
            f"- {len(failed)} trial(s) diverged: "
            + "; ".join(describe_trial(t) for t in failed[:3])
            + "."
        )
    return observations


def describe_trial(trial: dict[str, Any]) -> str:
    keys = ("optimizer", "learning_rate", "activation", "weight_init", "weight_decay")
    return ", ".join(f"{k} {trial[k]}" for k in keys if k in trial)


def write_summary(out: Path, results: dict[str, Any]) -> Path:
    """``out/SUMMARY.md``: every number of ``results`` and every figure, with observations
    that are computed from the results (nothing in it is typed by hand). A section missing
    from ``results`` is left out."""
    lines = _introduction(out, results)
    if "samples" in results:
        lines += _samples_section(results["samples"])
    if "optimizers" in results:
        lines += _optimizers_section(results["optimizers"])
    if "sweeps" in results:
        lines += _search_section(results["sweeps"])
    if "final" in results:
        lines += _test_section(out, results["final"])
    if "sweeps" in results:
        lines += _losses_section(results["sweeps"])
    if "mnist" in results:
        lines += _mnist_section(results["mnist"])
    if "presets" in results:
        lines += _presets_section(results["presets"])
    if "torch" in results:
        lines += _torch_section(results["torch"])
    lines += _time_section(results["seconds"])
    path = out / "SUMMARY.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _introduction(out: Path, results: dict[str, Any]) -> list[str]:
    """The title, the machine and date, how to regenerate, and where the W&B runs are."""
    m = results["machine"]
    lines = [
        f"# fnn study ({results['budget']} budget)",
        "",
        f"Run on {results['date']}: {m['processor']}, {m['system']}, Python {m['python']}, "
        f"NumPy {m['numpy']} ({m['blas']}). Total time "
        f"{results['seconds'].get('total', 0) / 60:.1f} min"
        + (f"; every training set capped at {results['train_subset']} samples"
           if results.get("train_subset") else "")
        + ". Regenerate with `fnn study --budget "
        f"{results['budget']} --out {out.name}`; the numbers are in "
        "[results.json](results.json).",
        "",
    ]  # fmt: skip
    if (out / "wandb").is_dir():
        lines += [
            f"Every training is a W&B run in the group `study_{results['budget']}`, kept in "
            f"`wandb/` (offline runs upload with `wandb sync {out.name}/wandb/offline-run-*`).",
            "",
        ]
    return lines


def _samples_section(samples: dict[str, str]) -> list[str]:
    """1. One image per class of each data set."""
    return [
        "## 1. One image per class",
        "",
        *[_image(path, name) for name, path in samples.items()],
        "",
    ]


def _optimizers_section(o: dict[str, Any]) -> list[str]:
    """2. The optimizers' table and curves; the best, the worst and the fastest to 85 %."""
    rows = o["rows"]
    lines = [
        "## 2. Optimizers",
        "",
        f"Every optimizer on the same network ({o['network']}, batch 64, "
        f"{rows[0]['epochs']} epochs, {o['samples']:,} training samples), each at its usual "
        "learning rate.",
        "",
        *_table(
            ["optimizer", "lr", "val accuracy", "val loss", "updates to 85 %", "seconds"],
            [[r["name"], f"{r['learning_rate']:g}", _pct(r["val_accuracy"]),
              f"{r['val_loss']:.4f}", r["updates_to_85"] or "never", f"{r['seconds']:.1f}"]
             for r in rows],
        ),
        "",
        _image(o["figure"], "optimizer curves"),
        "",
    ]  # fmt: skip
    reached = [r for r in rows if r["updates_to_85"]]
    fastest = min(reached, key=lambda r: r["updates_to_85"]) if reached else None
    lines += [
        f"- Highest val accuracy: {rows[0]['name']} ({_pct(rows[0]['val_accuracy'])}); "
        f"lowest: {rows[-1]['name']} ({_pct(rows[-1]['val_accuracy'])}); the spread is "
        f"{(rows[0]['val_accuracy'] - rows[-1]['val_accuracy']) * 100:.2f} points.",
    ]
    if fastest:
        lines.append(
            f"- Fewest updates to 85 % val accuracy: {fastest['name']} "
            f"({fastest['updates_to_85']:,} updates)."
        )
    lines.append("")
    return lines


def _search_section(s: dict[str, Any]) -> list[str]:
    """3. The search strategy and why, then the cross-entropy and the wide sweeps."""
    ce = s["ce"]
    lines = [
        "## 3. Hyperparameter search",
        "",
        "Strategy: Bayesian optimisation (Optuna's TPE sampler, the local stand-in for W&B's "
        "`bayes`) with Hyperband pruning (eta 3, rungs at epochs 1, 3 and 9)."
        + (f" The assignment's grid has {ce['space']:,} points, far more than any budget; "
           if ce["space"] else " ")
        + "random search spends most trials in poor regions (sigmoid with SGD at lr 1e-4 "
        "barely moves in 10 epochs); TPE starts with random trials and then samples "
        "where good trials cluster, and Hyperband stops weak trials after one or three "
        "epochs, so more configurations fit the same time.",
        "",
    ]  # fmt: skip
    lines += _sweep_section("Cross-entropy (the assignment's space)", ce)
    lines += _sweep_section("Beyond the assignment's space: wider nets", s["wide"])
    return lines


def _test_section(out: Path, f: dict[str, Any]) -> list[str]:
    """4. The best configuration retrained and tested: figures, per-class table, hardest
    classes and most confused pairs."""
    worst = sorted(f["per_class"], key=lambda row: row["recall"])[:3]
    return [
        "## 4. Best configuration on the test set",
        "",
        f"Best by val accuracy: trial {f['from']['trial']} of the {f['from']['sweep']} sweep "
        f"({_pct(f['from']['val_accuracy'])}): {f['description']}. Retrained on train + "
        f"validation ({f['train_samples']:,} samples, {f['seconds']:.0f} s) and tested once: "
        f"**test accuracy {_pct(f['test_accuracy'])}** (loss {f['test_loss']:.4f}). "
        f"Checkpoint: `{f['checkpoint']}` (`fnn evaluate {out.name}/{f['checkpoint']}`).",
        "",
        _image(f["figures"][0], "confusion matrix"),
        _image(f["figures"][1], "misclassified examples"),
        "",
        *_table(["class", "precision", "recall", "support"],
                [[r["class"], f"{r['precision']:.3f}", f"{r['recall']:.3f}", r["support"]]
                 for r in f["per_class"]]),
        "",
        "- Hardest classes (lowest recall): "
        + ", ".join(f"{r['class']} {r['recall']:.1%}" for r in worst) + ".",
        "- Most confused (true → predicted): "
        + ", ".join(f"{p['true']} → {p['predicted']} ({p['count']})"
                    for p in f["most_confused"][:3]) + ".",
        "",
    ]  # fmt: skip


def _losses_section(s: dict[str, Any]) -> list[str]:
    """5. Cross-entropy against squared error: the table, the figures, the verdict and the
    squared-error sweep."""
    summary = s["loss"]["summary"]
    ce_s, mse_s = summary["cross-entropy"], summary["squared error"]
    lines = ["## 5. Cross-entropy against squared error", ""]
    lines += _table(
        ["loss", "completed trials", "best val accuracy", "median", "trials ≥ 85 %"],
        [[k, v["n"], _pct(v["best"]), _pct(v["median"]), v["above_85"]]
         for k, v in summary.items()],
    )  # fmt: skip
    lines += ["", *[_image(p, "loss comparison") for p in s["loss"]["figures"]], ""]
    lines += ["Verdict: " + loss_verdict(ce_s, mse_s), ""]
    lines += _sweep_section("Squared error (same space, same budget)", s["mse"])
    return lines


def _mnist_section(mnist: dict[str, Any]) -> list[str]:
    """6. The three configurations carried to MNIST."""
    lines = ["## 6. Three configurations on MNIST", ""]
    lines += _table(
        ["choice", "why", "configuration", "val accuracy", "test accuracy", "seconds"],
        [[r["label"], r["reason"], r["description"], _pct(r["val_accuracy"]),
          f"**{_pct(r['test_accuracy'])}**", f"{r['seconds']:.0f}"]
         for r in mnist["rows"]],
    )  # fmt: skip
    lines.append("")
    return lines


def _presets_section(p: dict[str, Any]) -> list[str]:
    """7. The course baselines and their accuracy."""
    lines = [
        "## 7. Course baselines (`configs/presets/`)",
        "",
        f"Each preset trained on {p['dataset']} with `fnn train --config <preset> -d "
        f"{p['dataset']}`.",
        "",
    ]
    lines += _table(
        ["preset", "configuration", "val accuracy", "test accuracy", "seconds"],
        [[f"`{r['preset']}`", r["description"], _pct(r["val_accuracy"]),
          _pct(r["test_accuracy"]), f"{r['seconds']:.0f}"] for r in p["rows"]],
    )  # fmt: skip
    lines.append("")
    return lines


def _torch_section(t: dict[str, Any]) -> list[str]:
    """8. fnn against PyTorch: the largest differences and the overlay, or why it was skipped."""
    lines = ["## 8. fnn against PyTorch", ""]
    if "skipped" in t:
        return lines + [f"Skipped: {t['skipped']}.", ""]
    return lines + [
        f"{t['description']} (dropout off, float64), trained by fnn and by PyTorch eager "
        f"from the same initial weights on the same {t['updates']:,} batches "
        f"({t['samples']:,} samples): the largest difference of a minibatch loss is "
        f"**{t['max_loss_difference']:.1e}** and of a final weight "
        f"{t['max_weight_difference']:.1e}." + (f" ({t['note']}.)" if t.get("note") else ""),
        "",
        _image(t["figure"], "loss overlay"),
        "",
    ]


def _time_section(seconds: dict[str, float]) -> list[str]:
    """The minutes each section took, and the total."""
    rows = [[k, f"{v / 60:.1f}"] for k, v in seconds.items()]
    return ["## Time per section", "", *_table(["section", "minutes"], rows)]


def loss_verdict(ce: dict[str, Any], mse: dict[str, Any]) -> str:
    """A verdict that follows from the two sweeps' numbers."""
    if not ce["n"] or not mse["n"]:
        return "not enough completed trials to compare."
    best_gap = (ce["best"] - mse["best"]) * 100
    median_gap = (ce["median"] - mse["median"]) * 100
    if best_gap > 0 and median_gap > 0:
        return (
            f"cross-entropy is better: its best trial is {best_gap:.2f} points and its median "
            f"{median_gap:.2f} points higher. With softmax outputs the squared error's gradient "
            "p_j (e_j - sum_k e_k p_k) vanishes when a prediction is confidently wrong, while "
            "cross-entropy's p - y does not, so squared error learns more slowly per epoch."
        )
    if best_gap < 0 and median_gap < 0:
        return (
            f"squared error is better here: its best trial is {-best_gap:.2f} points and its "
            f"median {-median_gap:.2f} points higher."
        )
    return (
        f"mixed: the best trials differ by {best_gap:+.2f} points (cross-entropy minus squared "
        f"error) and the medians by {median_gap:+.2f}; neither loss is clearly better."
    )
