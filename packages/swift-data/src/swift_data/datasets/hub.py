"""Datasets from the Hugging Face hub (`HF::`, --use_hf) or ModelScope (`MS::`, the default hub)."""

from __future__ import annotations

from collections.abc import Iterator

from swift_args import ArgumentError

from swift_data.datasets.readers import RawRow
from swift_data.datasets.spec import DatasetSpec

_OFFLINE_HINT = "download it elsewhere and pass the local file or folder to --dataset"


def read_hub_dataset(spec: DatasetSpec, use_hf: bool, streaming: bool) -> Iterator[RawRow]:
    hub = spec.hub or ("HF" if use_hf else "MS")
    subsets = [s for s in spec.subsets if s != "all"] or [None]
    for subset in subsets:
        dataset = _load_hf(spec.name, subset, streaming) if hub == "HF" else _load_ms(spec.name, subset, streaming)
        for index, row in enumerate(dataset):
            yield RawRow(f"{hub}::{spec.name}[{index}]", dict(row))


def _load_hf(name: str, subset: str | None, streaming: bool):
    import datasets

    try:
        return datasets.load_dataset(name, subset, split="train", streaming=streaming)
    except (ConnectionError, OSError) as exc:
        raise ArgumentError(
            f"cannot load dataset '{name}': the Hugging Face hub is unreachable and it is not cached "
            f"({type(exc).__name__}); {_OFFLINE_HINT}"
        ) from None
    except Exception as exc:  # DatasetNotFoundError and friends
        raise ArgumentError(f"cannot load dataset '{name}' from the Hugging Face hub: {str(exc).splitlines()[0]}") from None


def _load_ms(name: str, subset: str | None, streaming: bool):
    try:
        from modelscope import MsDataset
    except ImportError as exc:
        raise ArgumentError(
            f"loading dataset '{name}' from ModelScope needs modelscope[datasets] ({exc.name} is missing): "
            "pip install 'modelscope[datasets]', or use HF::" + name
        ) from None
    try:
        return MsDataset.load(name, subset_name=subset or "default", split="train", use_streaming=streaming)
    except (ConnectionError, OSError) as exc:
        raise ArgumentError(
            f"cannot load dataset '{name}': ModelScope is unreachable and it is not cached ({type(exc).__name__}); "
            f"{_OFFLINE_HINT}"
        ) from None
    except Exception as exc:
        raise ArgumentError(f"cannot load dataset '{name}' from ModelScope: {str(exc).splitlines()[0]}") from None
