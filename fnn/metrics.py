"""Evaluation of a trained MLP: loss and accuracy over a whole data set in bounded memory, the
confusion matrix, per-class precision and recall, and a JSON-ready report of them."""

from __future__ import annotations

from typing import Any

import numpy as np

from fnn import losses, model
from fnn.model import forward
from fnn.tree import Params


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """``(C, C)`` int64 counts: entry ``[t, p]`` is the number of samples of true class ``t``
    predicted as ``p`` (rows = true class, columns = predicted)."""
    labels = np.asarray(labels, dtype=np.int64).ravel()
    predictions = np.asarray(predictions, dtype=np.int64).ravel()
    if labels.shape != predictions.shape:
        raise ValueError(
            f"labels ({labels.size}) and predictions ({predictions.size}) differ in length"
        )
    for name, values in (("labels", labels), ("predictions", predictions)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(
                f"{name} must lie in [0, {num_classes - 1}], "
                f"got values in [{values.min()}, {values.max()}]"
            )
    flat = np.bincount(labels * num_classes + predictions, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64, copy=False)


def precision_recall(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per class ``c``: precision = C[c, c] / sum_t C[t, c] (of the samples predicted ``c``),
    recall = C[c, c] / sum_p C[c, p] (of the samples of class ``c``). A class that is never
    predicted has precision 0, a class without samples has recall 0 (not nan)."""
    confusion = np.asarray(confusion)
    correct = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0)
    support = confusion.sum(axis=1)
    precision = np.divide(correct, predicted, out=np.zeros_like(correct), where=predicted > 0)
    recall = np.divide(correct, support, out=np.zeros_like(correct), where=support > 0)
    return precision, recall


def most_confused(confusion: np.ndarray, k: int = 5) -> list[tuple[int, int, int]]:
    """The ``k`` largest off-diagonal entries as ``(true, predicted, count)``, largest first
    (ties in row-major order); entries with count 0 are left out."""
    off_diagonal = np.array(confusion, dtype=np.int64)
    np.fill_diagonal(off_diagonal, 0)
    flat = off_diagonal.ravel()
    order = np.argsort(-flat, kind="stable")[:k]
    num_classes = off_diagonal.shape[1]
    return [
        (int(index // num_classes), int(index % num_classes), int(flat[index]))
        for index in order
        if flat[index] > 0
    ]


def evaluate(
    params: Params,
    x: np.ndarray,
    y: np.ndarray,
    *,
    activation: str = "tanh",
    loss: str | losses.Loss = "cross_entropy",
    batch_size: int = 10_000,
) -> dict[str, Any]:
    """Loss, accuracy, predictions, confusion matrix, precision and recall of ``params`` on
    ``(x, y)``, running the forward pass ``batch_size`` samples at a time to bound memory.

    ``y`` holds integer labels ``(N,)`` or one-hot rows ``(N, C)``. The loss is the mean over
    all N samples: sum_chunks n_chunk * mean_chunk / N, i.e. ``fnn.loss_value`` on the full set.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    x, y = np.asarray(x), np.asarray(y)
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(
            f"x and y must hold the same, non-zero number of samples; got {len(x)} and {len(y)}"
        )
    loss_fn = losses.get(loss)

    total_loss, chunk_predictions = 0.0, []
    for start in range(0, len(x), batch_size):
        logits = forward(params, x[start : start + batch_size], activation=activation)
        if start == 0:
            num_classes = logits.shape[1]
            targets = model.targets(y, len(y), num_classes, logits.dtype)
            labels = targets.argmax(axis=1) if targets.ndim == 2 else targets
        chunk_loss, _ = loss_fn(logits, targets[start : start + batch_size])
        chunk_loss = losses.mean_value(chunk_loss)
        total_loss += chunk_loss * len(logits)
        chunk_predictions.append(logits.argmax(axis=1))

    predictions = np.concatenate(chunk_predictions).astype(np.int64)
    confusion = confusion_matrix(labels, predictions, num_classes)
    precision, recall = precision_recall(confusion)
    return {
        "loss": total_loss / len(x),
        "accuracy": float(np.mean(predictions == labels)),
        "predictions": predictions,
        "confusion": confusion,
        "precision": precision,
        "recall": recall,
    }


def report(metrics: dict[str, Any], class_names: list[str], *, top: int = 5) -> dict[str, Any]:
    """The result of ``evaluate`` as plain JSON types, with class names: loss, accuracy,
    per-class precision/recall/support, the confusion matrix as nested lists and the ``top``
    most-confused (true, predicted) pairs."""
    confusion = np.asarray(metrics["confusion"])
    if len(class_names) != confusion.shape[0]:
        raise ValueError(
            f"{len(class_names)} class names for a {confusion.shape[0]}-class confusion matrix"
        )
    support = confusion.sum(axis=1)
    return {
        "loss": float(metrics["loss"]),
        "accuracy": float(metrics["accuracy"]),
        "per_class": [
            {
                "class": str(name),
                "precision": float(metrics["precision"][index]),
                "recall": float(metrics["recall"][index]),
                "support": int(support[index]),
            }
            for index, name in enumerate(class_names)
        ],
        "confusion": confusion.astype(int).tolist(),
        "most_confused": [
            {"true": str(class_names[true]), "predicted": str(class_names[pred]), "count": count}
            for true, pred, count in most_confused(confusion, top)
        ],
    }
