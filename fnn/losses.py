"""Classification losses on logits, averaged over the batch, each returning the loss and its
gradient with respect to the logits in one pass (the fused backward of softmax + loss)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fnn.activations import row_max, row_sum, softmax
from fnn.registry import lookup

# The contract of every loss, built-in or a user's function given as ``loss=fn``:
# fn(logits (B, C), targets: (B,) int labels or (B, C) rows summing to 1, in the logits' dtype)
#   -> (the mean loss over the batch as a float, dloss/dlogits of shape (B, C))
Loss = Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax(z)_k = z_k - logsumexp(z), with the max subtracted first (no overflow)."""
    shifted = logits - row_max(logits)
    return shifted - np.log(row_sum(np.exp(shifted)))


def one_hot(labels: np.ndarray, num_classes: int, dtype=np.float64) -> np.ndarray:
    """Rows of the identity matrix picked by integer ``labels``."""
    out = np.zeros((len(labels), num_classes), dtype=dtype)
    out[np.arange(len(labels)), labels] = 1
    return out


def cross_entropy(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """L = -(1/B) sum_b log softmax(z_b)[y_b];  dL/dz = (softmax(z) - onehot(y)) / B.

    ``targets`` are integer labels ``(B,)`` or one-hot rows ``(B, C)``. With s = z - max z,
    log softmax(z)_k = s_k - log sum_j exp(s_j): one exp over the logits serves both the
    loss and the gradient.
    """
    batch = logits.shape[0]
    shifted = logits - row_max(logits)
    grad = np.exp(shifted)
    sums = row_sum(grad)
    log_sums = np.log(sums)
    if targets.ndim == 1:
        rows = np.arange(batch)
        loss = float(log_sums.sum() - shifted[rows, targets].sum()) / batch
        grad /= sums * batch
        grad[rows, targets] -= 1.0 / batch
    else:
        loss = float((targets * (log_sums - shifted)).sum()) / batch
        grad /= sums
        grad -= targets
        grad /= batch
    return loss, grad


def mean_squared_error(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Squared error between the predicted distribution and the one-hot target.

    With p = softmax(z) and e = p - onehot(y):  L = (1/B) sum_b sum_k e_bk^2.
    The gradient goes through the softmax Jacobian dp_k/dz_j = p_k (delta_kj - p_j):
    dL/dz_j = (2/B) p_j (e_j - sum_k e_k p_k).
    """
    batch = logits.shape[0]
    probs = softmax(logits)
    error = probs.copy()
    if targets.ndim == 1:
        error[np.arange(batch), targets] -= 1
    else:
        error -= targets
    loss = float((error * error).sum()) / batch
    grad = probs * (error - row_sum(error * probs))
    grad *= 2.0 / batch
    return loss, grad


LOSSES: dict[str, Loss] = {
    "cross_entropy": cross_entropy,
    "mean_squared_error": mean_squared_error,
}


def mean_value(value: Any) -> float:
    """The mean loss a loss function returned, as a float; ``ValueError`` when it is not one
    number (a user's loss returning a value per sample, say)."""
    if np.ndim(value) != 0:
        raise ValueError(
            "a loss must return the mean over the batch as one number (fn(logits, targets) -> "
            f"(mean loss, dloss/dlogits)), got an array of shape {np.shape(value)}"
        )
    return float(value)


def get(loss: str | Loss) -> Loss:
    """The loss called ``loss`` (case-insensitive), or ``loss`` itself when it is a function
    with the contract above (``fn(logits, targets) -> (mean loss, dloss/dlogits)``)."""
    if callable(loss):
        return loss
    if not isinstance(loss, str):
        raise ValueError(
            f"loss must be a name (one of {', '.join(LOSSES)}) or a function "
            f"fn(logits, targets) -> (mean loss, dloss/dlogits), got {loss!r}"
        )
    return lookup(LOSSES, loss, "loss")
