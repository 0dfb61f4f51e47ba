"""Hidden-layer activations, each beside its derivative written in terms of its own output
(as scikit-learn's ``neural_network._base`` does), so backprop needs no pre-activations."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from fnn.registry import lookup


class Activation(NamedTuple):
    """``forward(z) -> h`` and ``backward(delta, h) -> delta * f'(z)`` given ``h = f(z)``."""

    forward: Callable[[np.ndarray], np.ndarray]
    backward: Callable[[np.ndarray, np.ndarray], np.ndarray]


def identity(z: np.ndarray) -> np.ndarray:
    """f(z) = z."""
    return z


def sigmoid(z: np.ndarray) -> np.ndarray:
    """f(z) = 1 / (1 + exp(-z)), computed as exp(-log(1 + exp(-z))) so that |z| = 1000 does
    not overflow and tiny tail values (sigma(-30) ~ 9e-14) keep their relative accuracy."""
    return np.exp(-np.logaddexp(0.0, -z))


def tanh(z: np.ndarray) -> np.ndarray:
    """f(z) = tanh(z)."""
    return np.tanh(z)


def relu(z: np.ndarray) -> np.ndarray:
    """f(z) = max(z, 0)."""
    return np.maximum(z, 0)


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """softmax(z)_k = exp(z_k - max z) / sum_j exp(z_j - max z) (shift-invariant, no overflow)."""
    shifted = logits - logits.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)


ACTIVATIONS: dict[str, Activation] = {
    "identity": Activation(identity, lambda delta, h: delta),
    # sigma'(z) = sigma(z) (1 - sigma(z))
    "sigmoid": Activation(sigmoid, lambda delta, h: delta * h * (1 - h)),
    # tanh'(z) = 1 - tanh(z)^2
    "tanh": Activation(tanh, lambda delta, h: delta * (1 - h * h)),
    # relu'(z) = 1 if z > 0 else 0 (0 at the kink, as PyTorch); h > 0 exactly when z > 0
    "relu": Activation(relu, lambda delta, h: delta * (h > 0)),
}


def get(name: str) -> Activation:
    """The activation called ``name`` (case-insensitive: ``"ReLU"`` works)."""
    return lookup(ACTIVATIONS, name, "activation")
