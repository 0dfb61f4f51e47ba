"""Weight initialisers: ``(rng, fan_in, fan_out, dtype) -> w`` of shape ``(fan_in, fan_out)``.
Biases always start at zero."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fnn.registry import lookup

Initialiser = Callable[[np.random.Generator, int, int, np.dtype], np.ndarray]

RANDOM_STDDEV = 0.05


def random_normal(rng: np.random.Generator, fan_in: int, fan_out: int, dtype) -> np.ndarray:
    """w ~ N(0, 0.05^2), independent of the layer size (the default stddev of Keras'
    ``RandomNormal``); the untuned baseline that Xavier and He improve on."""
    return (RANDOM_STDDEV * rng.standard_normal((fan_in, fan_out))).astype(dtype)


def xavier(rng: np.random.Generator, fan_in: int, fan_out: int, dtype) -> np.ndarray:
    """Glorot uniform (Glorot & Bengio 2010, eq. 16):
    w ~ U[-sqrt(6 / (fan_in + fan_out)), +sqrt(6 / (fan_in + fan_out))]."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(dtype)


def he(rng: np.random.Generator, fan_in: int, fan_out: int, dtype) -> np.ndarray:
    """He normal (He et al. 2015, "Delving Deep into Rectifiers", eq. 10):
    w ~ N(0, 2 / fan_in)."""
    return (np.sqrt(2.0 / fan_in) * rng.standard_normal((fan_in, fan_out))).astype(dtype)


INITIALISERS: dict[str, Initialiser] = {
    "random": random_normal,
    "xavier": xavier,
    "he": he,
}


def get(name: str) -> Initialiser:
    """The initialiser called ``name`` (case-insensitive: ``"Xavier"`` works)."""
    return lookup(INITIALISERS, name, "initialiser")
