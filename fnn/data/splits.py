"""From a data set to training inputs: seeded, stratified train/validation splits and training
subsets, a chosen subset of the classes, ``prepare`` (all of it at once, giving ``Splits``),
the shuffled minibatches of one epoch, and the ``fingerprint`` a checkpoint records.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from fnn.data.catalog import NUM_CLASSES, DataError, _dataset_key, class_indices
from fnn.data.pixels import preprocess, standardise
from fnn.data.sources import load


class Splits(NamedTuple):
    """Preprocessed splits: ``x_*`` float ``(N, features)`` (MNIST-like: pixels in [0, 1];
    CIFAR-10: standardised per channel), ``y_*`` int64 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def _keep_classes(images, labels, chosen: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Only the samples of ``chosen`` classes, relabelled 0..k-1 in ``chosen``'s order."""
    mapping = np.full(NUM_CLASSES, -1, dtype=np.int64)
    mapping[chosen] = np.arange(len(chosen))
    new = mapping[labels]
    keep = new >= 0
    return images[keep], new[keep]


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D (N,), got shape {labels.shape}")
    return labels


def _sample_per_class(labels: np.ndarray, counts: dict, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices: ``counts[c]`` samples of each class ``c``, drawn without replacement."""
    chosen = [
        rng.choice(np.flatnonzero(labels == cls), size=count, replace=False)
        for cls, count in counts.items()
    ]
    return np.sort(np.concatenate([np.empty(0, np.intp), *chosen]))


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int | np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``(train_indices, val_indices)``, each sorted: a seeded random ``round(fraction * n_c)``
    of each class c goes to validation (at least 1, and at most n_c - 1, when n_c >= 2)."""
    labels = _check_labels(labels)
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    classes, sizes = np.unique(labels, return_counts=True)
    val_counts = {}
    for cls, size in zip(classes.tolist(), sizes.tolist(), strict=True):
        count = round(fraction * size)
        val_counts[cls] = min(max(count, 1), size - 1) if size >= 2 else count
    val = _sample_per_class(labels, val_counts, np.random.default_rng(seed))
    in_val = np.zeros(len(labels), bool)
    in_val[val] = True
    return np.flatnonzero(~in_val), val


def stratified_subset(labels: np.ndarray, size: int, seed: int | np.random.Generator) -> np.ndarray:
    """Sorted indices of a seeded random subset of exactly ``size`` samples with the class
    proportions of ``labels`` (largest-remainder rounding); all indices if ``size >= N``."""
    labels = _check_labels(labels)
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if size >= len(labels):
        return np.arange(len(labels))
    classes, sizes = np.unique(labels, return_counts=True)
    quotas = sizes * size / len(labels)
    counts = np.floor(quotas).astype(int)
    largest_remainders = np.argsort(-(quotas - counts), kind="stable")
    counts[largest_remainders[: size - counts.sum()]] += 1
    per_class = dict(zip(classes.tolist(), counts.tolist(), strict=True))
    return _sample_per_class(labels, per_class, np.random.default_rng(seed))


def batches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    *,
    buffer: np.ndarray | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of ``(x_batch, y_batch)`` in a random order drawn from ``rng``: every sample
    once, the last batch partial. The batches are views of one shuffled copy of ``x``, written
    into ``buffer`` (an array like ``x``) when given: a training loop passes the same buffer
    every epoch, once the previous epoch's batches are no longer needed."""
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if buffer is not None and (buffer.shape != x.shape or buffer.dtype != x.dtype):
        raise ValueError(
            f"buffer must have x's shape {x.shape} and dtype {x.dtype}, got {buffer.shape} "
            f"and {buffer.dtype}"
        )
    order = rng.permutation(len(x))
    # One gather per epoch: slicing it is free, unlike a fancy-index gather per batch. Into a
    # reused buffer it also skips the page faults of a fresh allocation of the whole training
    # set, which cost from 0.05 s to 0.5 s per epoch (Fashion-MNIST, float32) on one machine.
    # mode="clip" (order is in range anyway) lets np.take write into ``buffer`` directly.
    xs = x[order] if buffer is None else np.take(x, order, axis=0, out=buffer, mode="clip")
    ys = y[order]
    return ((xs[i : i + batch_size], ys[i : i + batch_size]) for i in range(0, len(xs), batch_size))


def prepare(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    val_fraction: float = 0.1,
    train_subset: int | None = None,
    seed: int = 0,
    dtype=np.float32,
    source: str = "idx",
    download: bool = True,
    progress: bool = True,
    classes: Sequence[str] | None = None,
    resize: int | None = None,
) -> Splits:
    """Load ``name``, optionally keep only ``classes`` (relabelled 0..k-1 in that order) and a
    stratified ``train_subset`` of the training set, hold out a stratified ``val_fraction`` of
    it for validation, and preprocess all three splits (``resize``: area averaging to that
    side). CIFAR-10 is then standardised per channel with the training split's statistics.
    The test set is the standard one (of the kept classes). Same ``seed``, same subset and
    split."""
    if np.dtype(dtype).kind != "f":
        raise ValueError(f"dtype must be a float type (float32 or float64), got {dtype}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if train_subset is not None and train_subset < 1:
        raise ValueError(f"train_subset must be >= 1 (or None for all), got {train_subset}")
    chosen = class_indices(name, classes)
    (x_train, y_train), (x_test, y_test) = load(
        name, data_dir=data_dir, source=source, download=download, progress=progress
    )
    if classes is not None:
        x_train, y_train = _keep_classes(x_train, y_train, chosen)
        x_test, y_test = _keep_classes(x_test, y_test, chosen)
    subset_rng, split_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2)
    )
    if train_subset is not None and train_subset > len(y_train):
        kept = " of the chosen classes" if classes is not None else ""
        raise DataError(
            f"train_subset {train_subset:,} is more than the {len(y_train):,} training images"
            f"{kept} of {_dataset_key(name)}: give at most {len(y_train):,}, or leave it out"
        )
    if train_subset is not None:
        keep = stratified_subset(y_train, train_subset, subset_rng)
        x_train, y_train = x_train[keep], y_train[keep]
    train, val = stratified_split(y_train, val_fraction, split_rng)
    xs = [preprocess(x, dtype, size=resize) for x in (x_train[train], x_train[val], x_test)]
    if _dataset_key(name) == "cifar10":
        xs = standardise(*xs, channels=x_train.shape[-1])
    return Splits(xs[0], y_train[train], xs[1], y_train[val], xs[2], y_test)


def fingerprint(splits: Splits) -> dict[str, Any]:
    """What identifies the data a run trains on: the SHA-256 of every split's arrays (their
    dtype, shape and bytes, in ``Splits`` order) and the number of examples in train,
    validation and test. Other files, another data set under the same name, or another
    preprocessing give another hash."""
    digest = hashlib.sha256()
    for array in splits:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    return {"sha256": digest.hexdigest(),
            "examples": [len(splits.y_train), len(splits.y_val), len(splits.y_test)]}  # fmt: skip
