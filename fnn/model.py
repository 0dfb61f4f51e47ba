"""The multilayer perceptron: parameter layout, forward pass and hand-written backprop.

``params = {"layer_0": {"w": (fan_in, fan_out), "b": (fan_out,)}, "layer_1": ...}`` in forward
order; hidden layers compute ``h = act(h @ w + b)``, the last layer is linear (logits).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from einops import rearrange

from fnn import activations, init, losses
from fnn.tree import Layout, Params, ravel


@functools.lru_cache(maxsize=64)
def _mlp_layout(shapes: tuple[tuple[int, int], ...], dtype: np.dtype) -> Layout:
    """The layout of an MLP's params (and grads) with weight ``shapes`` (one per size)."""
    template = {
        f"layer_{i}": {"w": np.empty(shape, dtype), "b": np.empty(shape[1], dtype)}
        for i, shape in enumerate(shapes)
    }
    return ravel(template)[1]


def init_mlp(
    sizes: Sequence[int],
    *,
    init: str = "xavier",
    seed: int | np.random.Generator = 0,
    dtype=np.float32,
) -> Params:
    """Parameters of an MLP with layer widths ``sizes = [n_in, h1, ..., n_out]``.

    ``init`` is ``"random"``, ``"xavier"`` or ``"he"`` (see ``fnn.init``); biases are zero.
    ``seed`` is an int or a ``np.random.Generator``; layers draw from it in forward order.
    """
    sizes = list(sizes)
    valid = all(
        isinstance(s, int | np.integer) and not isinstance(s, bool) and s >= 1 for s in sizes
    )
    if len(sizes) < 2 or not valid:
        raise ValueError(f"sizes must be >= 2 positive integers [n_in, ..., n_out], got {sizes}")
    initialiser = _init_module.get(init)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    shapes = tuple(zip(sizes[:-1], sizes[1:], strict=True))
    layout = _mlp_layout(shapes, dtype)
    params = layout.unravel(np.zeros(layout.size, dtype))  # one flat array, in ravel's order
    for i, (fan_in, fan_out) in enumerate(shapes):  # layers draw from rng in forward order
        params[f"layer_{i}"]["w"][...] = initialiser(rng, fan_in, fan_out, dtype)
    return params


_init_module = init  # the keyword argument ``init`` shadows the module inside init_mlp


def layers(params: Params) -> list[dict[str, np.ndarray]]:
    """The layers of ``params`` in forward order; ``ValueError`` if the layout is wrong."""
    return [{"w": w, "b": b} for w, b in _weights(params)]


def _weights(params: Params) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(w, b), ...]`` in forward order, read by name (``params["layer_0"]["w"]``), after
    checking the names, that the shapes chain and that every leaf has one float dtype."""
    if not isinstance(params, dict) or not params:
        raise ValueError(
            "params must be a non-empty dict {'layer_0': {'w': ..., 'b': ...}, ...} "
            f"(see fnn.init_mlp), got {type(params).__name__}"
        )
    weights, fan_in = [], None
    for i in range(len(params)):
        layer = params.get(f"layer_{i}")
        if layer is None:
            raise ValueError(
                f"params must have keys layer_0..layer_{len(params) - 1}, got {sorted(params)}"
            )
        if not isinstance(layer, dict) or len(layer) != 2 or "w" not in layer or "b" not in layer:
            raise ValueError(f"params['layer_{i}'] must be a dict with keys 'w' and 'b'")
        w, b = np.asarray(layer["w"]), np.asarray(layer["b"])
        if w.ndim != 2 or b.shape != w.shape[1:]:
            raise ValueError(
                f"params['layer_{i}']: w must be (fan_in, fan_out) and b (fan_out,), "
                f"got w {w.shape} and b {b.shape}"
            )
        if fan_in is not None and w.shape[0] != fan_in:
            raise ValueError(
                f"layer_{i - 1} outputs {fan_in} features but layer_{i} expects {w.shape[0]}"
            )
        weights.append((w, b))
        fan_in = w.shape[1]
    dtype = weights[0][0].dtype
    one_float = dtype == np.float32 or dtype == np.float64
    for i, (w, b) in enumerate(weights):  # one dtype, as init_mlp makes them (decided: no mixing)
        if not one_float or w.dtype != dtype or b.dtype != dtype:
            raise ValueError(
                f"params must all be float32 or all float64 (as fnn.init_mlp makes them), got "
                f"layer_0/w {dtype}, layer_{i}/w {w.dtype} and layer_{i}/b {b.dtype}; convert "
                "with fnn.tree_map(lambda a: a.astype(np.float32), params)"
            )
    return weights


def _inputs(weights: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> np.ndarray:
    """``x`` as a ``(batch, features)`` matrix in the parameters' dtype."""
    x = np.asarray(x)
    flat = rearrange(x, "b ... -> b (...)") if x.ndim > 2 else x
    w = weights[0][0]
    if flat.ndim != 2 or flat.shape[1] != w.shape[0]:
        raise ValueError(
            f"x of shape {x.shape} does not fit the first layer's weights of shape "
            f"{w.shape}: expected (batch, {w.shape[0]})"
        )
    return flat.astype(w.dtype, copy=False)


def targets(y: np.ndarray, batch: int, num_classes: int, dtype) -> np.ndarray:
    """``y`` checked as what a loss takes: integer labels ``(batch,)`` in [0, num_classes) or
    target distributions ``(batch, num_classes)`` (one-hot rows: non-negative, summing to 1),
    the latter in ``dtype``. The one check of labels, for ``grads``, ``loss_value`` and
    ``metrics.evaluate``."""
    if batch == 0:
        raise ValueError("x is an empty batch: the mean loss over 0 samples is undefined")
    y = np.asarray(y)
    if y.ndim == 2:
        if y.shape != (batch, num_classes):
            raise ValueError(
                f"one-hot y of shape {y.shape} does not match (batch, classes) = "
                f"({batch}, {num_classes})"
            )
        if y.min() < 0 or not np.allclose(y.sum(axis=1), 1.0):
            raise ValueError("one-hot y rows must be non-negative and sum to 1")
        return y.astype(dtype, copy=False)
    if y.shape != (batch,):
        raise ValueError(f"labels y of shape {y.shape} do not match the batch of {batch} inputs")
    if y.dtype.kind not in "iu":
        if y.dtype.kind == "b" or not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise ValueError("labels y must be integers (or one-hot rows)")
        y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(
            f"labels must lie in [0, {num_classes - 1}], got values in [{y.min()}, {y.max()}]"
        )
    return y


def forward(params: Params, x: np.ndarray, *, activation: str = "tanh") -> np.ndarray:
    """Logits ``(batch, n_out)`` for inputs ``x`` of shape ``(batch, n_in)`` or
    ``(batch, 28, 28)`` (flattened); no softmax (see ``fnn.softmax``). Pure: ``params`` and
    ``x`` are only read."""
    weights = _weights(params)
    act = activations.get(activation)
    h = _inputs(weights, x)
    for w, b in weights[:-1]:
        z = h @ w
        z += b
        h = act.forward(z, out=z)
    w, b = weights[-1]
    logits = h @ w
    logits += b
    return logits


def grads(
    params: Params,
    x: np.ndarray,
    y: np.ndarray,
    *,
    activation: str = "tanh",
    loss: str | losses.Loss = "cross_entropy",
    dropout: float = 0.0,
    rng: np.random.Generator | None = None,
) -> tuple[float, Params]:
    """Mean loss over the batch and its gradient with respect to every parameter.

    Backprop (Rumelhart, Hinton & Williams 1986) with ``delta_L = dL/dlogits`` from the loss
    and, for layer l with input ``h_l``:  ``dL/dw_l = h_l^T delta_l``, ``dL/db_l = sum_b delta_l``,
    ``delta_{l-1} = (delta_l w_l^T) * act'(z_{l-1})`` with ``act'`` taken from the stored
    outputs. The gradient with respect to ``x`` itself is never formed.

    ``loss`` is a name (``fnn.losses.LOSSES``) or a function ``fn(logits, targets) -> (mean
    loss, dloss/dlogits)`` (the contract in ``fnn.losses``; ``fnn.gradcheck`` checks one).

    ``dropout = p > 0`` applies inverted dropout (Srivastava et al. 2014) to every hidden
    layer's output: ``h <- h * mask / (1 - p)`` with ``mask ~ Bernoulli(1 - p)`` drawn from
    ``rng``; the same mask scales the backward pass. Evaluation (``forward``) never drops.

    Pure: the arguments are only read (``rng`` advances, as any generator that is drawn
    from), and the gradients are a new tree of views of one flat buffer.
    """
    weights = _weights(params)
    act = activations.get(activation)
    loss_fn = losses.get(loss)
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    if dropout and rng is None:
        raise ValueError("dropout needs a random generator: grads(..., dropout=p, rng=rng)")
    h = _inputs(weights, x)
    target = targets(y, h.shape[0], weights[-1][0].shape[1], h.dtype)

    inputs, activated, masks = [h], [], []
    for w, b in weights[:-1]:
        z = h @ w
        z += b
        h = act.forward(z, out=z)
        activated.append(h)
        if dropout:
            keep = rng.random(h.shape, dtype=h.dtype) >= dropout
            masks.append(keep / h.dtype.type(1 - dropout))
            h = h * masks[-1]
        inputs.append(h)
    w, b = weights[-1]
    logits = h @ w
    logits += b
    value, delta = loss_fn(logits, target)
    if type(delta) is not np.ndarray or delta.shape != logits.shape or delta.dtype != h.dtype:
        delta = np.asarray(delta, dtype=h.dtype)  # a user's loss function may return a list
        if delta.shape != logits.shape:
            raise ValueError(f"the loss gradient must have the logits' shape {logits.shape}, "
                             f"got {delta.shape}")  # fmt: skip
    value = losses.mean_value(value)

    # The gradients are written into one new flat array, which the optimizers read whole.
    layout = _mlp_layout(tuple(w.shape for w, _ in weights), h.dtype)
    gradients = layout.unravel(np.empty(layout.size, h.dtype))
    ones = np.ones(len(target), h.dtype)
    for i in range(len(weights) - 1, -1, -1):
        layer = gradients[f"layer_{i}"]
        np.matmul(inputs[i].T, delta, out=layer["w"])
        np.matmul(ones, delta, out=layer["b"])  # the sum over the batch, as a BLAS call
        if i > 0:
            delta = delta @ weights[i][0].T
            if dropout:
                delta *= masks[i - 1]
            delta = act.backward(delta, activated[i - 1])  # overwrites both: no longer needed
    return value, gradients


def loss_value(
    params: Params,
    x: np.ndarray,
    y: np.ndarray,
    *,
    activation: str = "tanh",
    loss: str | losses.Loss = "cross_entropy",
) -> float:
    """Mean loss of ``params`` on ``(x, y)``, without gradients."""
    logits = forward(params, x, activation=activation)
    target = targets(y, logits.shape[0], logits.shape[1], logits.dtype)
    value, _ = losses.get(loss)(logits, target)
    return losses.mean_value(value)
