"""MNIST, Fashion-MNIST and CIFAR-10: find (or download) the canonical files, read them, and
turn them into seeded, stratified train/validation/test splits of flat float arrays plus
minibatches.

- ``catalog``: the data sets, their class names and image sides, ``DataError``;
- ``download``: where files are looked for, and the checked downloads into the cache;
- ``idx``: MNIST and Fashion-MNIST's IDX files; ``cifar``: CIFAR-10's binary archive;
- ``sources``: ``load``, from those files or from tensorflow-datasets;
- ``tfds``: a real tensorflow-datasets copy prepared from the IDX files (``prepare_tfds``), read;
- ``pixels``: uint8 images to float rows; ``splits``: splits, subsets, classes, ``prepare``
  and ``batches``.

Everything public is re-exported here, so ``fnn.data.prepare`` and ``fnn.data.DataError``
are what the rest of fnn uses. The download settings (``SYSTEM_DIR``, ``MIRRORS``, ``SHA256``,
``CIFAR_URL``, ``CIFAR_SHA256``) are read in ``fnn.data.download`` when used: change or patch
them there, not here.
"""

from fnn.data.catalog import (
    CLASS_NAMES,
    DATASETS,
    IMAGE_SIDE,
    NUM_CLASSES,
    DataError,
    class_indices,
    class_names,
)
from fnn.data.cifar import (
    CIFAR_FOLDER,
    CIFAR_RECORD,
    CIFAR_SHAPE,
    CIFAR_TEST,
    CIFAR_TRAIN,
    read_cifar_archive,
)
from fnn.data.download import (
    CIFAR_ARCHIVE,
    CIFAR_SHA256,
    CIFAR_URL,
    MIRRORS,
    SHA256,
    SYSTEM_DIR,
    cache_dir,
)
from fnn.data.idx import FILES, IDX_UINT8, IMAGE_SHAPE, read_idx
from fnn.data.pixels import preprocess, standardise
from fnn.data.sources import SOURCES, load
from fnn.data.splits import (
    Splits,
    batches,
    fingerprint,
    prepare,
    stratified_split,
    stratified_subset,
)
from fnn.data.tfds import CONTENT_SHA256, prepare_tfds, tfds_dir

__all__ = [
    "CIFAR_ARCHIVE",
    "CIFAR_FOLDER",
    "CIFAR_RECORD",
    "CIFAR_SHA256",
    "CIFAR_SHAPE",
    "CIFAR_TEST",
    "CIFAR_TRAIN",
    "CIFAR_URL",
    "CLASS_NAMES",
    "CONTENT_SHA256",
    "DATASETS",
    "FILES",
    "IDX_UINT8",
    "IMAGE_SHAPE",
    "IMAGE_SIDE",
    "MIRRORS",
    "NUM_CLASSES",
    "SHA256",
    "SOURCES",
    "SYSTEM_DIR",
    "DataError",
    "Splits",
    "batches",
    "cache_dir",
    "class_indices",
    "class_names",
    "fingerprint",
    "load",
    "prepare",
    "prepare_tfds",
    "preprocess",
    "read_cifar_archive",
    "read_idx",
    "standardise",
    "stratified_split",
    "stratified_subset",
    "tfds_dir",
]
