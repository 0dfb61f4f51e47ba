"""The ``fnn`` command line (Typer): every command is a thin layer over the library."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from fnn import activations, losses
from fnn.gradcheck import gradcheck as run_gradcheck
from fnn.model import init_mlp

app = typer.Typer(
    help="fnn: train and compare MLPs and optimizers, in pure NumPy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()


def _parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise typer.BadParameter("expected at least two positive sizes: n_in,...,n_out")
    return sizes


def _choice(value: str, registry: dict, kind: str) -> str:
    if value.lower() not in registry:
        raise typer.BadParameter(f"unknown {kind} {value!r}; valid: {', '.join(registry)}")
    return value.lower()


@app.callback()
def main_callback() -> None:
    """fnn: train and compare MLPs and optimizers, in pure NumPy."""


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
    batch_size: Annotated[int, typer.Option(min=1, help="Samples in the checked batch.")] = 8,
    eps: Annotated[float, typer.Option(help="Finite-difference step (> 0).")] = 1e-6,
    seed: Annotated[int, typer.Option(help="Seed for weights and data.")] = 0,
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
    console.print(f"worst: {worst_overall:.2e}")


def main() -> None:
    app()
