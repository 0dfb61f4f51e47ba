"""Batch-size timing: how fast one epoch of training runs at each batch size, how close that is
to the machine's matmul roofline and to the epoch's matrix products alone (the floor of any
NumPy implementation), and (optionally) the same workload in PyTorch's eager loop and as a
jitted JAX + optax step, timed in the same process, interleaved."""

from __future__ import annotations

import dataclasses
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import fnn
import fnn.train
from fnn import fused
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


def _row(batch_size, times, peer_times, samples, flops, roofline) -> dict[str, Any]:
    """One batch size's figures: fnn's median epoch, its spread and rates, and per peer its
    median epoch and fnn's ratio to it (``ratio_to_gemm`` is fnn over the GEMM floor)."""
    epoch = float(np.median(times))
    row = {
        "batch_size": batch_size,
        "epoch_seconds": epoch,
        "epoch_min": min(times),
        "epoch_max": max(times),
        "steps_per_second": -(-samples // batch_size) / epoch,
        "samples_per_second": samples / epoch,
        "gflops": flops * samples / epoch / 1e9,
        "roofline_fraction": flops * samples / epoch / 1e9 / roofline,
    }
    for name, seconds in peer_times.items():
        row[f"{name}_epoch_seconds"] = float(np.median(seconds))
        row[f"ratio_to_{name}"] = epoch / row[f"{name}_epoch_seconds"]
    return row


def _seconds(work: Callable[[], Any]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo on Linux), else the machine type."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine() or "unknown"


def blas_threads() -> str:
    """Each BLAS library loaded, its thread count and the package that ships it, as
    threadpoolctl reports them: ``openblas 2 threads (numpy)``, then for instance SciPy's,
    which numba's import loads (it stays idle: NumPy's products do not call it)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (pip install threadpoolctl)"
    pools = []
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            package = package_of(pool.get("filepath"))
            shipped = f" ({package})" if package else ""
            pools.append(f"{pool['internal_api']} {pool['num_threads']} threads{shipped}")
    return ", ".join(pools) or "none"


def package_of(filepath: str | None) -> str | None:
    """The installed package a file belongs to: the folder after the last ``site-packages``
    (or ``dist-packages``) in its path, without the ``.libs`` of a wheel's bundled libraries;
    None for a file outside them (a system library, conda's ``lib/``)."""
    parts = Path(filepath or "").parts[:-1]
    found = [i for i, part in enumerate(parts) if part in ("site-packages", "dist-packages")]
    if not found or found[-1] + 1 >= len(parts):
        return None
    return parts[found[-1] + 1].removesuffix(".libs")


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
) -> Callable[[np.ndarray, np.ndarray, int], Any]:
    """One epoch of the public loop (``grads -> opt.step``: the update and its application)
    per call, returning the final params."""

    def run(x: np.ndarray, y: np.ndarray, batch_size: int) -> Any:
        params = fnn.init_mlp(sizes, seed=0, dtype=dtype)
        opt = fnn.optimizers.get(optimizer, learning_rate=learning_rate)
        state = opt.init(params)
        for start in range(0, len(x), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            loss, grads = fnn.grads(params, xb, yb, activation=activation)
            params, state = opt.step(grads, state, params, loss=loss)
        return params

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


def _train_defaults() -> dict[str, Any]:
    """``fnn train``'s default hyperparameters, which the peers' optimizers are given too."""
    return {field.name: field.default for field in dataclasses.fields(fnn.train.TrainConfig)}


def torch_optimizer(torch, name: str, parameters, **hparams):
    """The ``torch.optim`` optimizer that computes what fnn's optimizer ``name`` computes with
    ``hparams`` (as ``TrainConfig.optimizer_hparams()`` gives them; fnn's defaults
    otherwise), or None for Eve. NAdam with momentum_decay -> infinity is fnn's constant-mu
    NAdam."""
    if name not in TORCH_EQUIVALENTS:
        return None
    hp = {**_train_defaults(), **hparams}
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


def gemm_epoch(sizes, *, dtype: str) -> Callable[[np.ndarray, np.ndarray, int], None]:
    """An epoch of the training step's matrix products alone, through NumPy, on the same
    batches: per step the forward products, the weight gradients and the hidden-input
    gradients (11 products for W), without activations, loss or optimizer."""

    def run(x: np.ndarray, y: np.ndarray, batch_size: int) -> None:
        params = fnn.init_mlp(sizes, seed=0, dtype=dtype)
        weights = [params[f"layer_{i}"]["w"] for i in range(len(sizes) - 1)]
        for start in range(0, len(x), batch_size):
            h = x[start : start + batch_size]
            inputs = [h]
            for w in weights:
                h = h @ w
                inputs.append(h)
            delta = h
            for i in range(len(weights) - 1, -1, -1):
                inputs[i].T @ delta
                if i:
                    delta = delta @ weights[i].T

    return run


JAX_INSTALL = 'pip install "jax[cpu]" optax'


def jax_epoch(
    sizes, *, activation: str, optimizer: str, learning_rate: float, dtype: str
) -> Callable[[np.ndarray, np.ndarray, int], None] | None:
    """The same epoch as a jitted JAX + optax step (``jax.jit`` of value_and_grad, the optax
    update and ``optax.apply_updates``, no donation), or None when JAX, optax or an equivalent
    optimizer (Eve has none) is missing. Starts from fnn's initial parameters."""
    try:
        import jax
        import jax.numpy as jnp
        import optax
    except ImportError:
        return None
    hp = _train_defaults()
    transforms = {
        "sgd": lambda: optax.sgd(learning_rate),
        "momentum": lambda: optax.sgd(learning_rate, momentum=hp["momentum"]),
        "nag": lambda: optax.sgd(learning_rate, momentum=hp["momentum"], nesterov=True),
        "rmsprop": lambda: optax.rmsprop(learning_rate, decay=hp["beta"], eps=hp["epsilon"]),
        "adam": lambda: optax.adam(learning_rate, hp["beta1"], hp["beta2"], hp["epsilon"]),
        "nadam": lambda: optax.nadam(learning_rate, hp["beta1"], hp["beta2"], hp["epsilon"]),
    }
    functions = {"identity": lambda z: z, "sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh,
                 "relu": jax.nn.relu}  # fmt: skip
    if optimizer not in transforms or activation not in functions:
        return None
    act, opt = functions[activation], transforms[optimizer]()

    def loss_fn(params, xb, yb):
        h = xb
        for w, b in params[:-1]:
            h = act(h @ w + b)
        w, b = params[-1]
        return optax.softmax_cross_entropy_with_integer_labels(h @ w + b, yb).mean()

    @jax.jit
    def step(params, state, xb, yb):
        value, grads = jax.value_and_grad(loss_fn)(params, xb, yb)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    def run(x: np.ndarray, y: np.ndarray, batch_size: int) -> None:
        start = fnn.init_mlp(sizes, seed=0, dtype=dtype)
        params = [
            (jnp.asarray(start[f"layer_{i}"]["w"]), jnp.asarray(start[f"layer_{i}"]["b"]))
            for i in range(len(sizes) - 1)
        ]
        state = opt.init(params)
        labels = y.astype(np.int32)
        for first in range(0, len(x), batch_size):
            batch = slice(first, first + batch_size)
            params, state, _ = step(params, state, x[batch], labels[batch])
        jax.block_until_ready(params)

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
    vs_jax: bool = False,
    floor: bool = True,
    extra_peers: dict[str, Callable[[np.ndarray, np.ndarray, int], None]] | None = None,
    dataset: str | None = "fashion_mnist",
    data_dir=None,
    on_row: Callable[[dict], None] | None = None,
) -> dict[str, Any]:
    """Time one epoch of ``samples`` per batch size (median of ``repeats`` after a warm-up;
    fnn, the GEMM floor (with ``floor``), torch, JAX and any ``extra_peers`` (name -> epoch
    function, as a benchmark script's own reference loop) interleaved), and return rows and
    machine facts as a JSON-ready dict."""
    sizes = list(sizes)
    x, y, source = workload(dataset, samples, sizes[0], sizes[-1], dtype, data_dir)
    hparams = dict(
        activation=activation, optimizer=optimizer, learning_rate=learning_rate, dtype=dtype
    )
    ours = fnn_epoch(sizes, **hparams)
    peers = {
        "gemm": gemm_epoch(sizes, dtype=dtype) if floor else None,
        "torch": torch_epoch(sizes, **hparams) if vs_torch else None,
        "jax": jax_epoch(sizes, **hparams) if vs_jax else None,
        **(extra_peers or {}),
    }
    peers = {name: epoch for name, epoch in peers.items() if epoch is not None}
    start = time.perf_counter()  # the first step imports numba and compiles (or loads) its loop
    ours(x[: batch_sizes[0]], y[: batch_sizes[0]], batch_sizes[0])
    first_step = time.perf_counter() - start
    roofline = matmul_roofline(dtype)
    flops = flops_per_sample(sizes)
    rows = []
    for batch_size in batch_sizes:
        warm = min(len(x), 20 * batch_size + len(x) % batch_size)  # the last, short batch too
        for epoch_of in (ours, *peers.values()):
            epoch_of(x[:warm], y[:warm], batch_size)
        times: list[float] = []
        peer_times: dict[str, list[float]] = {name: [] for name in peers}
        for _ in range(repeats):
            times.append(_seconds(lambda b=batch_size: ours(x, y, b)))
            for name, epoch_of in peers.items():
                time.sleep(PAUSE)
                peer_times[name].append(_seconds(lambda b=batch_size, e=epoch_of: e(x, y, b)))
            if peers:
                time.sleep(PAUSE)
        rows.append(_row(batch_size, times, peer_times, len(x), flops, roofline))
        if on_row is not None:
            on_row(rows[-1])
    return {
        "sizes": sizes,
        **hparams,
        "samples": len(x),
        "data": source,
        "repeats": repeats,
        "flops_per_sample": flops,
        "roofline_gflops": roofline,
        "blas": blas_threads(),
        "machine": f"{cpu_name()}, {platform.python_version()}, numpy {np.__version__}",
        "updates": fused.describe(),
        "first_step_seconds": first_step,
        "torch": "torch" in peers,
        "jax": "jax" in peers,
        "rows": rows,
    }
