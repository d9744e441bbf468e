"""Datasets from the Hugging Face hub (`HF::`, --use_hf) or ModelScope (`MS::`, the default hub)."""

from __future__ import annotations

from collections.abc import Iterator

from swift_args import ArgumentError

from swift_data.datasets.readers import RawRow
from swift_data.datasets.spec import DatasetSpec

_OFFLINE_HINT = "download it elsewhere and pass the local file or folder to --dataset"


REDOWNLOAD = "force_redownload"


def read_hub_dataset(spec: DatasetSpec, use_hf: bool, streaming: bool,
                     download_mode: str = "reuse_dataset_if_exists") -> Iterator[RawRow]:
    """Rows of a hub dataset; --download_mode force_redownload fetches it again instead of using the cache."""
    hub = spec.hub or ("HF" if use_hf else "MS")
    subsets = [s for s in spec.subsets if s != "all"] or [None]
    for subset in subsets:
        if hub == "HF":
            dataset = _load_hf(spec.name, subset, streaming, download_mode)
        else:
            dataset = _load_ms(spec.name, subset, streaming, download_mode)
        for index, row in enumerate(dataset):
            yield RawRow(f"{hub}::{spec.name}[{index}]", dict(row))


def _load_hf(name: str, subset: str | None, streaming: bool, download_mode: str):
    import datasets

    if download_mode == REDOWNLOAD:
        _require_hf_hub(name)
    try:
        return datasets.load_dataset(name, subset, split="train", streaming=streaming, download_mode=download_mode)
    except (ConnectionError, OSError) as exc:
        raise ArgumentError(
            f"cannot load dataset '{name}': the Hugging Face hub is unreachable and it is not cached "
            f"({type(exc).__name__}); {_OFFLINE_HINT}"
        ) from None
    except Exception as exc:  # DatasetNotFoundError and friends
        raise ArgumentError(f"cannot load dataset '{name}' from the Hugging Face hub: {str(exc).splitlines()[0]}") from None


def _require_hf_hub(name: str) -> None:
    """Fail unless the hub answers for `name`.

    When the hub is unreachable, `datasets` quietly serves its cached copy even under
    force_redownload, so the user would train on the very data they asked to replace.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import OfflineModeIsEnabled

    try:
        HfApi().dataset_info(name)
    except OfflineModeIsEnabled:
        raise ArgumentError(
            f"--download_mode force_redownload: cannot download dataset '{name}' again while offline "
            "(HF_HUB_OFFLINE / HF_DATASETS_OFFLINE is set); unset it, or drop the option to use the cached copy"
        ) from None
    except (ConnectionError, OSError) as exc:
        raise ArgumentError(
            f"--download_mode force_redownload: cannot download dataset '{name}' again: the Hugging Face hub is "
            f"unreachable ({type(exc).__name__}); drop the option to use the cached copy"
        ) from None
    except Exception as exc:  # RepositoryNotFoundError, gated repos...
        raise ArgumentError(
            f"--download_mode force_redownload: dataset '{name}' on the Hugging Face hub: {str(exc).splitlines()[0]}"
        ) from None


def _load_ms(name: str, subset: str | None, streaming: bool, download_mode: str):
    try:
        from modelscope import MsDataset
    except ImportError as exc:
        raise ArgumentError(
            f"loading dataset '{name}' from ModelScope needs modelscope[datasets] ({exc.name} is missing): "
            "pip install 'modelscope[datasets]', or use HF::" + name
        ) from None
    try:
        from modelscope.utils.constant import DownloadMode

        return MsDataset.load(name, subset_name=subset or "default", split="train", use_streaming=streaming,
                              download_mode=DownloadMode(download_mode))
    except (ConnectionError, OSError) as exc:
        raise ArgumentError(
            f"cannot load dataset '{name}': ModelScope is unreachable and it is not cached ({type(exc).__name__}); "
            f"{_OFFLINE_HINT}"
        ) from None
    except Exception as exc:
        raise ArgumentError(f"cannot load dataset '{name}' from ModelScope: {str(exc).splitlines()[0]}") from None
