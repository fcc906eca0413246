"""Data readers and datasets: IDX, CSV and NPZ files; digits, MNIST and Fashion-MNIST.

Every reader validates what it reads and raises `DataError` (a `ValueError`) with a
one-line message that names the file and what is wrong.
"""

from .datasets import DATASET_NAMES, Dataset, cache_dir, load_dataset
from .errors import DataError
from .idx import read_idx, write_idx
from .preprocessing import one_hot, train_validation_split
from .tabular import read_csv, read_npz

__all__ = [
    "DATASET_NAMES",
    "DataError",
    "Dataset",
    "cache_dir",
    "load_dataset",
    "one_hot",
    "read_csv",
    "read_idx",
    "read_npz",
    "train_validation_split",
    "write_idx",
]
