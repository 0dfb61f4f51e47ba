"""What fnn knows about each data set (its name, folder, classes and image side) and what
every reader shares: the one-line ``DataError`` and the checks that images and labels agree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from fnn.registry import lookup

DATASETS: dict[str, str] = {
    "mnist": "mnist",
    "fashion_mnist": "fashion-mnist",
    "cifar10": "cifar-10",
}

CLASS_NAMES: dict[str, list[str]] = {
    "mnist": [str(digit) for digit in range(10)],
    "fashion_mnist": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
    "cifar10": [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ],
}

IMAGE_SIDE = {"mnist": 28, "fashion_mnist": 28, "cifar10": 32}
NUM_CLASSES = 10

_FIX = "delete it and run again to download a fresh copy, or point FNN_DATA_DIR at a good copy"


class DataError(Exception):
    """The data could not be found, downloaded or read; the message is one line for the user."""


def _dataset_key(name: str) -> str:
    key = name.lower().replace("-", "_") if isinstance(name, str) else name
    lookup(DATASETS, key, "dataset")
    return key


def _checked(images: np.ndarray, labels: np.ndarray, origin: str) -> tuple[np.ndarray, np.ndarray]:
    if len(images) != len(labels):
        raise DataError(f"{origin} disagree: {len(images)} images but {len(labels)} labels; {_FIX}")
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataError(
            f"{origin}: labels range over {labels.min()}..{labels.max()}, not 0..9; {_FIX}"
        )
    return images, labels


def _one_line(error: BaseException, limit: int = 200) -> str:
    name = type(error).__name__
    if name == "error":  # zlib.error
        name = f"{type(error).__module__}.error"
    text = " ".join(str(error).split())
    # requests nests urllib3's story; the OS error ("[Errno 111] Connection refused") is the news.
    os_error = re.search(r"\[Errno -?\d+\][^'\")]*", text)
    text = os_error.group().strip() if os_error else text.split(" for url: ")[0]
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return f"{name}: {text}" if text else name


def class_indices(name: str, classes: Sequence[str] | None) -> list[int]:
    """The class indices of ``classes`` (names, case-insensitive, or index numbers) in
    ``name``'s class list; all classes when None. ``ValueError`` for an unknown one."""
    names = CLASS_NAMES[_dataset_key(name)]
    if classes is None:
        return list(range(len(names)))
    lowered = [known.lower() for known in names]
    chosen = []
    for item in classes:
        text = str(item).strip().lower()
        if text.isdigit() and int(text) < len(names):
            index = int(text)
        elif text in lowered:
            index = lowered.index(text)
        else:
            raise ValueError(f"unknown class {item!r} of {name}; valid: {', '.join(names)}")
        if index in chosen:
            raise ValueError(f"class {names[index]!r} is given twice")
        chosen.append(index)
    if len(chosen) < 2:
        raise ValueError(f"choose at least two classes of {name}; got {len(chosen)}")
    return chosen


def class_names(name: str, classes: Sequence[str] | None = None) -> list[str]:
    """The names of ``name``'s classes as the model numbers them (a ``classes`` subset in its
    given order)."""
    names = CLASS_NAMES[_dataset_key(name)]
    return [names[index] for index in class_indices(name, classes)]
