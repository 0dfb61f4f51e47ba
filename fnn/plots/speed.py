"""The figure of ``fnn bench``: time per epoch and throughput against batch size."""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fnn.plots.common import _save

PEERS = {  # a peer's key in a bench row -> (label, marker style)
    "jax": ("JAX + optax, jitted", "^--"),
    "torch": ("PyTorch eager", "s--"),
    "gemm": ("the GEMMs alone (floor)", ":"),
}


def bench_figure(result: dict, path: str | Path) -> Path:
    """Seconds per epoch and samples per second against batch size (log x) from
    ``fnn.bench.run``: fnn (its spread shaded) and every peer that ran (``<peer>_epoch_seconds``
    in each row: JAX, PyTorch, the GEMM floor, a script's own loops)."""
    rows = result["rows"]
    batch = [row["batch_size"] for row in rows]
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    left.plot(batch, [r["epoch_seconds"] for r in rows], "o-", linewidth=2, label="fnn")
    left.fill_between(
        batch, [r["epoch_min"] for r in rows], [r["epoch_max"] for r in rows], alpha=0.2
    )
    right.plot(batch, [r["samples_per_second"] for r in rows], "o-", linewidth=2, label="fnn")
    suffix = "_epoch_seconds"
    names = [key.removesuffix(suffix) for key in rows[0] if key.endswith(suffix)]
    for name in names:
        if not all(f"{name}_epoch_seconds" in r for r in rows):
            continue
        label, style = PEERS.get(name, (name, "d--"))
        seconds = [r[f"{name}_epoch_seconds"] for r in rows]
        left.plot(batch, seconds, style, label=label)
        right.plot(batch, [result["samples"] / s for s in seconds], style, label=label)
    for ax, label in ((left, "seconds per epoch"), (right, "samples per second")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(batch, [str(b) for b in batch])
        ax.set_xlabel("batch size")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
    right.legend(fontsize=8)
    sizes = "-".join(map(str, result["sizes"]))
    fig.suptitle(
        f"MLP {sizes} {result['activation']}, {result['optimizer']}, {result['dtype']}, "
        f"{result['samples']} samples per epoch ({result['blas']})"
    )
    return _save(fig, path)
