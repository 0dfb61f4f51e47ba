"""Batch-size timing: how fast one epoch of training runs at each batch size, how close that is
to the machine's matmul roofline, and (optionally) the same workload in PyTorch's eager loop."""

from __future__ import annotations

import dataclasses
import platform
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import fnn
import fnn.train
from fnn.data import DataError

DEFAULT_BATCH_SIZES = (16, 32, 64, 128, 256, 512, 1024)
# Between interleaved fnn and torch epochs: lets each library's idle BLAS/OpenMP worker threads
# stop spinning, so neither run pays for the other's threads.
PAUSE = 0.2


def flops_per_sample(sizes: Sequence[int]) -> int:
    """Multiply-adds x 2 of one training sample through an MLP with layer widths ``sizes``:
    the forward pass, the weight gradients, and the gradients of the hidden inputs (the input
    layer's gradient is never formed). Elementwise work is not counted."""
    products = [fan_in * fan_out for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True)]
    return 2 * (2 * sum(products) + sum(products[1:]))


def matmul_roofline(dtype: str = "float32", n: int = 2048, repeats: int = 3) -> float:
    """GFLOP/s of one large square GEMM: the ceiling that the training loop's matmuls meet."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n)).astype(dtype)
    b = rng.random((n, n)).astype(dtype)
    a @ b
    best = min(_seconds(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _seconds(work: Callable[[], Any]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def blas_threads() -> str:
    """The BLAS library and its thread count, as threadpoolctl reports them."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (pip install threadpoolctl)"
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    return ", ".join(f"{p['internal_api']} {p['num_threads']} threads" for p in pools) or "none"


def workload(
    dataset: str | None, samples: int, n_in: int, n_out: int, dtype: str, data_dir=None
) -> tuple[np.ndarray, np.ndarray, str]:
    """``samples`` training images of ``dataset`` (real when available) or synthetic data of
    the same shape; the third value says which."""
    if dataset:
        try:
            (x, y), _ = fnn.data.load(dataset, data_dir=data_dir, download=False, progress=False)
            x = fnn.data.preprocess(x, dtype)
            if x.shape[1] == n_in:
                reps = -(-samples // len(x))
                return np.tile(x, (reps, 1))[:samples], np.tile(y, reps)[:samples], dataset
        except DataError:
            pass
    rng = np.random.default_rng(0)
    return (
        rng.random((samples, n_in), dtype=np.dtype(dtype)),
        rng.integers(0, n_out, samples),
        "synthetic",
    )


def fnn_epoch(
    sizes, *, activation: str, optimizer: str, learning_rate: float, dtype: str
) -> Callable[[np.ndarray, np.ndarray, int], None]:
    """One epoch of the public loop (``grads -> opt.update -> apply_updates``) per call."""

    def run(x: np.ndarray, y: np.ndarray, batch_size: int) -> None:
        params = fnn.init_mlp(sizes, seed=0, dtype=dtype)
        opt = fnn.optimizers.get(optimizer, learning_rate=learning_rate)
        state = opt.init(params)
        for start in range(0, len(x), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            loss, grads = fnn.grads(params, xb, yb, activation=activation)
            updates, state = opt.update(grads, state, params, loss=loss)
            params = fnn.apply_updates(params, updates)

    return run


TORCH_ACTIVATIONS = {"identity": "Identity", "sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "ReLU"}
TORCH_EQUIVALENTS = ("sgd", "momentum", "nag", "rmsprop", "adam", "nadam")  # Eve has none


def torch_mlp(torch, sizes, activation: str, dtype: str, params=None):
    """The MLP of layer widths ``sizes`` as a ``torch.nn.Sequential`` of Linear layers with
    ``activation`` between them; with ``params`` (an fnn pytree) its weights are copied in."""
    act = getattr(torch.nn, TORCH_ACTIVATIONS[activation])
    modules: list = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layer = torch.nn.Linear(fan_in, fan_out, dtype=getattr(torch, dtype))
        if params is not None:
            with torch.no_grad():
                layer.weight.copy_(torch.from_numpy(params[f"layer_{i}"]["w"].T.copy()))
                layer.bias.copy_(torch.from_numpy(params[f"layer_{i}"]["b"].copy()))
        modules.append(layer)
        if i < len(sizes) - 2:
            modules.append(act())
    return torch.nn.Sequential(*modules)


def torch_optimizer(torch, name: str, parameters, **hparams):
    """The ``torch.optim`` optimizer that computes what fnn's optimizer ``name`` computes with
    ``hparams`` (as ``TrainConfig.optimizer_hparams()`` gives them; fnn's defaults
    otherwise), or None for Eve. NAdam with momentum_decay -> infinity is fnn's constant-mu
    NAdam."""
    if name not in TORCH_EQUIVALENTS:
        return None
    hp = {field.name: field.default for field in dataclasses.fields(fnn.train.TrainConfig)}
    hp.update(hparams)
    lr, wd, betas = hp["learning_rate"], hp["weight_decay"], (hp["beta1"], hp["beta2"])
    if name in ("sgd", "momentum", "nag"):
        momentum = 0.0 if name == "sgd" else hp["momentum"]
        return torch.optim.SGD(
            parameters, lr=lr, momentum=momentum, nesterov=name == "nag", weight_decay=wd
        )
    if name == "rmsprop":
        return torch.optim.RMSprop(
            parameters, lr=lr, alpha=hp["beta"], eps=hp["epsilon"], weight_decay=wd
        )
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr, betas=betas, eps=hp["epsilon"], weight_decay=wd)
    return torch.optim.NAdam(
        parameters, lr=lr, betas=betas, eps=hp["epsilon"], weight_decay=wd, momentum_decay=1e9
    )


def torch_epoch(
    sizes, *, activation: str, optimizer: str, learning_rate: float, dtype: str
) -> Callable[[np.ndarray, np.ndarray, int], None] | None:
    """The same epoch in PyTorch's eager loop, or None when torch (or the optimizer) is missing."""
    try:
        import torch
    except ImportError:
        return None
    if optimizer not in TORCH_EQUIVALENTS or activation not in TORCH_ACTIVATIONS:
        return None

    def run(x: np.ndarray, y: np.ndarray, batch_size: int) -> None:
        model = torch_mlp(torch, sizes, activation, dtype)
        opt = torch_optimizer(torch, optimizer, model.parameters(), learning_rate=learning_rate)
        loss_fn = torch.nn.CrossEntropyLoss()
        inputs, labels = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
        for start in range(0, len(x), batch_size):
            opt.zero_grad()
            loss = loss_fn(
                model(inputs[start : start + batch_size]), labels[start : start + batch_size]
            )
            loss.backward()
            opt.step()

    return run


def run(
    sizes: Sequence[int] = (784, 128, 128, 128, 10),
    *,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    activation: str = "tanh",
    optimizer: str = "adam",
    learning_rate: float = 1e-3,
    dtype: str = "float32",
    samples: int = 60_000,
    repeats: int = 3,
    vs_torch: bool = False,
    dataset: str | None = "fashion_mnist",
    data_dir=None,
    on_row: Callable[[dict], None] | None = None,
) -> dict[str, Any]:
    """Time one epoch of ``samples`` per batch size (median of ``repeats`` after a warm-up;
    fnn and torch interleaved), and return rows and machine facts as a JSON-ready dict."""
    sizes = list(sizes)
    x, y, source = workload(dataset, samples, sizes[0], sizes[-1], dtype, data_dir)
    hparams = dict(
        activation=activation, optimizer=optimizer, learning_rate=learning_rate, dtype=dtype
    )
    ours = fnn_epoch(sizes, **hparams)
    theirs = torch_epoch(sizes, **hparams) if vs_torch else None
    roofline = matmul_roofline(dtype)
    flops = flops_per_sample(sizes)
    rows = []
    for batch_size in batch_sizes:
        warm = min(len(x), 20 * batch_size)
        ours(x[:warm], y[:warm], batch_size)
        if theirs is not None:
            theirs(x[:warm], y[:warm], batch_size)
        times, torch_times = [], []
        for _ in range(repeats):
            times.append(_seconds(lambda b=batch_size: ours(x, y, b)))
            if theirs is not None:
                time.sleep(PAUSE)
                torch_times.append(_seconds(lambda b=batch_size: theirs(x, y, b)))
                time.sleep(PAUSE)
        epoch = float(np.median(times))
        steps = -(-len(x) // batch_size)
        row = {
            "batch_size": batch_size,
            "epoch_seconds": epoch,
            "epoch_min": min(times),
            "epoch_max": max(times),
            "steps_per_second": steps / epoch,
            "samples_per_second": len(x) / epoch,
            "gflops": flops * len(x) / epoch / 1e9,
            "roofline_fraction": flops * len(x) / epoch / 1e9 / roofline,
        }
        if torch_times:
            row["torch_epoch_seconds"] = float(np.median(torch_times))
            row["ratio_to_torch"] = epoch / row["torch_epoch_seconds"]
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return {
        "sizes": sizes,
        **hparams,
        "samples": len(x),
        "data": source,
        "repeats": repeats,
        "flops_per_sample": flops,
        "roofline_gflops": roofline,
        "blas": blas_threads(),
        "machine": f"{platform.machine()}, {platform.python_version()}, numpy {np.__version__}",
        "torch": theirs is not None,
        "rows": rows,
    }
