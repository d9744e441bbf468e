"""Finding and reading datasets: local files and folders, built-ins, hub ids."""

from swift_data.datasets.builtin import BUILTIN_DATASETS
from swift_data.datasets.load import DataOptions, load_dataset_rows
from swift_data.datasets.readers import RawRow
from swift_data.datasets.spec import DatasetSpec, parse_dataset_spec

__all__ = ["BUILTIN_DATASETS", "DataOptions", "DatasetSpec", "RawRow", "load_dataset_rows", "parse_dataset_spec"]
