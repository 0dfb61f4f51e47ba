"""``fnn bench`` and ``fnn gradcheck``: how fast, and how exact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from fnn import activations, data, losses
from fnn.cli.base import (
    UsageFailure,
    _choice,
    _parse_sizes,
    app,
    console,
)
from fnn.cli.options import DataDir, accepts
from fnn.cli.training import figure_path
from fnn.constraints import POSITIVE_INT, ConstraintError, OneOf, Widths
from fnn.gradcheck import TOLERANCE
from fnn.gradcheck import gradcheck as run_gradcheck
from fnn.model import init_mlp
from fnn.train import CONSTRAINTS


@app.command()
def bench(
    sizes: Annotated[
        str, typer.Option("--sizes", help="Layer widths.", callback=_parse_sizes)
    ] = "784,128,128,128,10",
    batch_sizes: Annotated[
        str, typer.Option("--batch_sizes", help="Comma-separated batch sizes.")
    ] = "16,32,64,128,256,512,1024",
    activation: Annotated[
        str, typer.Option("--activation", "-a", help=f"Hidden activation: {accepts('activation')}.")
    ] = "tanh",
    optimizer: Annotated[
        str, typer.Option("--optimizer", "-o", help=f"Optimizer: {accepts('optimizer')}.")
    ] = "adam",
    dtype: Annotated[str, typer.Option("--dtype", help="float32|float64")] = "float32",
    samples: Annotated[int, typer.Option("--samples", help="Samples per epoch.")] = 60_000,
    repeats: Annotated[int, typer.Option("--repeats", help="Timed epochs per batch size.")] = 3,
    vs: Annotated[
        str | None,
        typer.Option(
            "--vs",
            help="Peers to time in the same run: torch (PyTorch's eager loop), jax (a jitted "
            "JAX + optax step), or torch,jax.",
        ),
    ] = None,
    dataset: Annotated[
        str,
        typer.Option("--dataset", "-d", help="Real data if found (else synthetic), or synthetic."),
    ] = "fashion_mnist",
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a PNG.")] = None,
) -> None:
    """Time one training epoch per batch size, against the matmul roofline (and PyTorch, JAX).

    The updates run fused (numba) when it is installed, else as NumPy's passes; the last line
    says which, and FNN_FUSED=0 times NumPy's passes."""
    from fnn import bench as benchmark

    if plot is not None:
        plot = figure_path(plot, "bench.png", "--plot")
    settings = _bench_settings(vs, batch_sizes=batch_sizes, samples=samples, repeats=repeats,
                               dtype=dtype, activation=activation, optimizer=optimizer,
                               dataset=dataset)  # fmt: skip
    peers, batches, dtype = settings["peers"], settings["batch_sizes"], settings["dtype"]
    activation, optimizer = settings["activation"], settings["optimizer"]
    table, add_row = _bench_table(sizes, activation, optimizer, dtype, peers)
    with console.status("timing...", spinner="dots") if not as_json else _nothing():
        result = benchmark.run(
            sizes,
            batch_sizes=batches,
            activation=activation.lower(),
            optimizer=optimizer.lower(),
            dtype=dtype,
            samples=samples,
            repeats=repeats,
            vs_torch="torch" in peers,
            vs_jax="jax" in peers,
            dataset=dataset.lower() if dataset.lower() in data.DATASETS else None,
            data_dir=data_dir,
            on_row=None if as_json else add_row,
        )
    if plot is not None:
        from fnn import plots

        plots.bench_figure(result, plot)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    console.print(table)
    _bench_footer(result, peers, plot)


def _bench_settings(vs: str | None, **given: Any) -> dict[str, Any]:
    """``fnn bench``'s options checked with the training settings' own rules
    (``fnn.train.CONSTRAINTS``) and bench's; ``UsageFailure`` for the first bad one."""
    peers = [] if vs is None else [p.strip().lower() for p in vs.split(",") if p.strip()]
    if not set(peers) <= {"torch", "jax"} or (vs is not None and not peers):
        raise UsageFailure("--vs must be torch, jax or torch,jax")
    rules = {  # the training settings' own rules (fnn.train.CONSTRAINTS), and bench's
        "batch_sizes": Widths(), "samples": POSITIVE_INT, "repeats": POSITIVE_INT,
        "dtype": CONSTRAINTS["dtype"], "activation": CONSTRAINTS["activation"],
        "optimizer": CONSTRAINTS["optimizer"],
        "dataset": OneOf(lambda: (*CONSTRAINTS["dataset"].options, "synthetic", "none")),
    }  # fmt: skip
    try:
        checked = {name: rules[name].check(f"--{name}", value) for name, value in given.items()}
    except ConstraintError as error:
        raise UsageFailure(str(error)) from None
    return {**checked, "batch_sizes": list(checked["batch_sizes"]), "peers": peers}


def _bench_table(sizes, activation: str, optimizer: str, dtype: str, peers: list[str]):
    """The results table and the function that adds a row to it as each batch size ends."""
    table = Table(
        title=f"fnn bench: MLP {sizes}, {activation}, {optimizer}, {dtype}",
        caption="s/epoch: median; roof: share of the matmul roofline; gemm s: the epoch's "
        "matrix products alone; x gemm"
        + "".join(f", x {p}" for p in peers)
        + ": fnn's epoch over theirs",
    )
    columns = ["batch", "s/epoch", "min-max", "steps/s", "samples/s", "GFLOP/s", "roof",
               "gemm s", "x gemm"]  # fmt: skip
    for peer in peers:
        columns += [f"{peer} s", f"x {peer}"]
    for column in columns:
        table.add_column(column, justify="right")

    def add_row(row: dict) -> None:
        cells = [
            str(row["batch_size"]),
            f"{row['epoch_seconds']:.3f}",
            f"{row['epoch_min']:.2f}-{row['epoch_max']:.2f}",
            f"{row['steps_per_second']:,.0f}",
            f"{row['samples_per_second']:,.0f}",
            f"{row['gflops']:.1f}",
            f"{row['roofline_fraction']:.0%}",
        ]
        for peer in ("gemm", *peers):
            if f"{peer}_epoch_seconds" in row:
                cells += [f"{row[f'{peer}_epoch_seconds']:.3f}", f"{row[f'ratio_to_{peer}']:.2f}"]
            else:
                cells += ["-", "-"]
        table.add_row(*cells)

    return table, add_row


def _bench_footer(result: dict[str, Any], peers: list[str], plot: Path | None) -> None:
    """The machine and data under the table, and a line per peer that could not run."""
    from fnn.bench import JAX_INSTALL

    console.print(
        f"data: {result['data']}, {result['samples']} samples; "
        f"{result['flops_per_sample'] / 1e6:.2f} MFLOP per sample; matmul roofline "
        f"{result['roofline_gflops']:.0f} GFLOP/s; BLAS: {result['blas']}; {result['machine']}; "
        f"updates {result['updates']}, first step {result['first_step_seconds']:.2f} s"
    )
    if "torch" in peers and not result["torch"]:
        console.print(
            "torch: not installed (pip install torch) or no equivalent of this optimizer; "
            "no comparison",
            soft_wrap=True,
        )
    if "jax" in peers and not result["jax"]:
        console.print(
            f"jax: not installed ({JAX_INSTALL}) or no equivalent of this optimizer; no comparison",
            soft_wrap=True,
            markup=False,
        )
    for warning in bench_warnings(result):
        console.print(f"warning: {warning}", highlight=False, markup=False)
    if plot is not None:
        console.print(f"figure: {plot}")


WIDE_SPREAD = 1.5  # max/min of the timed epochs above which a row's median is not to be trusted


def bench_warnings(result: dict[str, Any]) -> list[str]:
    """What makes a bench run's figures doubtful: a wide spread between repeats, or a share of
    the roofline above 100 % (the roofline itself was measured during a slow moment)."""
    warnings = []
    spread = [row for row in result["rows"] if row["epoch_max"] > WIDE_SPREAD * row["epoch_min"]]
    if spread:
        batches = ", ".join(str(row["batch_size"]) for row in spread)
        warnings.append(f"the repeats differ by more than {WIDE_SPREAD}x at batch {batches}: the "
                        "machine was busy; rerun with more --repeats when it is idle")  # fmt: skip
    if any(row["roofline_fraction"] > 1 for row in result["rows"]):
        warnings.append("a row exceeds 100 % of the roofline: the roofline was measured while "
                        "the machine was slow; rerun when it is idle")  # fmt: skip
    return warnings


def _nothing():
    import contextlib

    return contextlib.nullcontext()


@app.command()
def gradcheck(
    sizes: Annotated[
        str, typer.Option(help="Layer widths n_in,h1,...,n_out.", callback=_parse_sizes)
    ] = "20,16,12,10",
    activation: Annotated[
        str,
        typer.Option(
            help=f"Hidden activation: {', '.join(activations.ACTIVATIONS)}; 'all' checks each.",
        ),
    ] = "all",
    loss: Annotated[
        str,
        typer.Option(help=f"Loss: {', '.join(losses.LOSSES)}; 'all' checks each."),
    ] = "all",
    batch_size: Annotated[
        int, typer.Option("--batch_size", min=1, help="Samples in the checked batch.")
    ] = 8,
    eps: Annotated[float, typer.Option(help="Finite-difference step (> 0).")] = 1e-6,
    seed: Annotated[int, typer.Option(min=0, help="Seed for weights and data.")] = 0,
) -> None:
    """Compare the hand-written gradients with central differences (float64), per leaf."""
    if eps <= 0:
        raise typer.BadParameter(f"must be > 0, got {eps}", param_hint="--eps")
    names = (
        list(activations.ACTIVATIONS)
        if activation == "all"
        else [_choice(activation, activations.ACTIVATIONS, "activation")]
    )
    loss_names = list(losses.LOSSES) if loss == "all" else [_choice(loss, losses.LOSSES, "loss")]
    rng = np.random.default_rng(seed)
    params = init_mlp(sizes, seed=rng, dtype=np.float64)
    x = rng.standard_normal((batch_size, sizes[0]))
    y = rng.integers(0, sizes[-1], batch_size)

    table = Table(title=f"max relative gradient error, sizes {sizes}, batch {batch_size}")
    table.add_column("activation")
    table.add_column("loss")
    table.add_column("worst leaf")
    table.add_column("max rel. error", justify="right")
    worst_overall = 0.0
    for name in names:
        for loss_name in loss_names:
            errors = run_gradcheck(params, x, y, activation=name, loss=loss_name, eps=eps)
            leaf, worst = max(errors.items(), key=lambda item: item[1])
            worst_overall = max(worst_overall, worst)
            table.add_row(name, loss_name, leaf, f"{worst:.2e}")
    console.print(table)
    verdict = "PASS" if worst_overall <= TOLERANCE else "FAIL"
    console.print(f"worst: {worst_overall:.2e}: {verdict} (tolerance {TOLERANCE:g})")
    if verdict == "FAIL":
        raise typer.Exit(1)
