"""The figure of ``fnn bench``: time per epoch and throughput against batch size."""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fnn.plots.common import _save


def bench_figure(result: dict, path: str | Path) -> Path:
    """Seconds per epoch and samples per second against batch size (log x) from
    ``fnn.bench.run``; PyTorch's eager loop beside fnn when it was measured."""
    rows = result["rows"]
    batch = [row["batch_size"] for row in rows]
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    left.plot(batch, [r["epoch_seconds"] for r in rows], "o-", label="fnn")
    left.fill_between(
        batch, [r["epoch_min"] for r in rows], [r["epoch_max"] for r in rows], alpha=0.2
    )
    right.plot(batch, [r["samples_per_second"] for r in rows], "o-", label="fnn")
    if all("torch_epoch_seconds" in r for r in rows):
        torch_seconds = [r["torch_epoch_seconds"] for r in rows]
        left.plot(batch, torch_seconds, "s--", label="PyTorch eager")
        right.plot(
            batch, [result["samples"] / s for s in torch_seconds], "s--", label="PyTorch eager"
        )
    for ax, label in ((left, "seconds per epoch"), (right, "samples per second")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(batch, [str(b) for b in batch])
        ax.set_xlabel("batch size")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    sizes = "-".join(map(str, result["sizes"]))
    fig.suptitle(
        f"MLP {sizes} {result['activation']}, {result['optimizer']}, {result['dtype']}, "
        f"{result['samples']} samples per epoch ({result['blas']})"
    )
    return _save(fig, path)
