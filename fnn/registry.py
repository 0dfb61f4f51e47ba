"""Case-insensitive name lookup shared by the registries (activations, losses, initialisers,
optimizers): an unknown name is a ``ValueError`` that lists the valid ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")


def lookup(registry: Mapping[str, T], name: str, kind: str) -> T:
    """Return ``registry[name.lower()]`` or raise ``ValueError`` naming the valid choices."""
    if not isinstance(name, str):
        raise ValueError(f"{kind} must be a name (one of {', '.join(registry)}), got {name!r}")
    try:
        return registry[name.lower()]
    except KeyError:
        raise ValueError(f"unknown {kind} {name!r}; valid choices: {', '.join(registry)}") from None
