"""Section 9 of the study: fnn against PyTorch. The best configuration, trained by fnn and by
PyTorch eager from the same initial weights on the same batches; the loss curves overlay to
float rounding."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from fnn import data, plots
from fnn.bench import TORCH_EQUIVALENTS, torch_mlp, torch_optimizer
from fnn.model import init_mlp
from fnn.study.context import Context, config_from, describe, relative, settings_of
from fnn.train import TrainConfig, build_optimizer, load_splits, train_step


def versus_torch(ctx: Context, settings: dict[str, Any]) -> dict[str, Any]:
    """Train ``settings`` (without dropout, in float64) with fnn and with PyTorch eager from the
    same initial weights on the same batches; compare the per-update losses and final weights."""
    try:
        import torch
    except ImportError:
        return {"skipped": "PyTorch is not installed (pip install torch)"}
    config, note = _overlay_config(ctx, settings)
    splits = load_splits(config)
    sizes = [splits.x_train.shape[1], *config.hidden_layers(), int(splits.y_train.max()) + 1]
    init_seed, batch_seed, _ = np.random.SeedSequence(config.seed).spawn(3)
    params = init_mlp(sizes, init=config.weight_init, seed=np.random.default_rng(init_seed),
                      dtype="float64")  # fmt: skip
    model = torch_mlp(torch, sizes, config.activation, "float64", params)
    params, our_losses, their_losses, seconds = _train_both(
        torch, config, splits, params, model, np.random.default_rng(batch_seed)
    )
    ours, theirs = np.asarray(our_losses), np.asarray(their_losses)
    description = describe(settings_of(config))
    figure = plots.overlay(
        np.arange(1, len(ours) + 1), ours, theirs, ctx.out / "torch" / "overlay.png",
        title=f"{description}, float64",
    )  # fmt: skip
    return {
        "description": description,
        "note": note,
        "updates": len(ours),
        "samples": len(splits.y_train),
        "max_loss_difference": float(np.abs(ours - theirs).max()),
        "max_weight_difference": _max_weight_difference(torch, params, model),
        "final_loss": float(ours[-1]),
        "seconds": seconds,
        "figure": relative(figure, ctx.out),
    }


def _overlay_config(ctx: Context, settings: dict[str, Any]) -> tuple[TrainConfig, str | None]:
    """``settings`` as the overlay trains them: no dropout, float64, the budget's epochs and
    samples; adam, with a note saying so, for an optimizer PyTorch does not have."""
    b = ctx.budget
    config = config_from(
        ctx, settings, dropout=0.0, dtype="float64", epochs=b.overlay_epochs,
        train_subset=b.overlay_samples,
    )  # fmt: skip
    if config.optimizer in TORCH_EQUIVALENTS:
        return config, None
    note = f"PyTorch has no {config.optimizer}; both use adam at the same learning rate"
    return dataclasses.replace(config, optimizer="adam"), note


def _train_both(
    torch, config: TrainConfig, splits: data.Splits, params: Any, model: Any, rng
) -> tuple[Any, list[float], list[float], float]:
    """Train ``params`` with fnn and ``model`` (the same weights) with torch.optim, one batch
    after the other in the same order; returns fnn's final parameters, both per-update losses
    and the seconds the loop took."""
    hparams = config.optimizer_hparams()  # weight_decay included
    theirs = torch_optimizer(torch, config.optimizer, model.parameters(), **hparams)
    schedule = None
    total = config.epochs * -(-len(splits.y_train) // config.batch_size)
    if config.lr_schedule == "cosine":
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(theirs, T_max=total, eta_min=0)
    ours = build_optimizer(config, len(splits.y_train))
    state = ours.init(params)
    step = train_step(ours, activation=config.activation, loss=config.loss)
    our_losses, their_losses = [], []
    started = time.perf_counter()
    # torch.optim keeps some state (NAdam's mu product) in the default dtype: float64 here.
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        for _ in range(config.epochs):
            for xb, yb in data.batches(splits.x_train, splits.y_train, config.batch_size, rng):
                params, state, value = step(params, state, xb, yb)
                our_losses.append(value)
                their_losses.append(_torch_step(torch, model, theirs, schedule, xb, yb, config))
    finally:
        torch.set_default_dtype(default_dtype)
    return params, our_losses, their_losses, time.perf_counter() - started


def _torch_step(torch, model, optimizer, schedule, xb, yb, config: TrainConfig) -> float:
    """One torch.optim update of ``model`` on the batch ``(xb, yb)``; returns the batch's loss
    before the update."""
    optimizer.zero_grad()
    logits = model(torch.from_numpy(xb))
    labels = torch.from_numpy(yb)
    if config.loss == "cross_entropy":
        loss = torch.nn.functional.cross_entropy(logits, labels)
    else:  # fnn's squared error: sum over classes of (softmax - one-hot)^2, batch mean
        target = torch.nn.functional.one_hot(labels, logits.shape[1]).to(logits.dtype)
        loss = ((torch.softmax(logits, dim=1) - target) ** 2).sum(dim=1).mean()
    loss.backward()
    optimizer.step()
    if schedule is not None:
        schedule.step()
    return loss.item()


def _max_weight_difference(torch, params: Any, model: Any) -> float:
    """The largest difference between a final weight of fnn's ``params`` and of ``model``."""
    layers = [module for module in model if isinstance(module, torch.nn.Linear)]
    return max(
        float(np.abs(params[f"layer_{i}"]["w"] - layer.weight.detach().numpy().T).max())
        for i, layer in enumerate(layers)
    )
