"""The reference's dataset syntax: `ID_OR_PATH[:subset1/subset2|all][#N]`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from swift_args import ArgumentError


@dataclass(frozen=True)
class DatasetSpec:
    """One entry of --dataset: where the data is, which subsets, how many rows."""

    name: str  # the id or path, without hub prefix, subsets or sample count
    hub: str | None  # "HF", "MS" or None (decided later: local, built-in, or the default hub)
    subsets: tuple[str, ...]  # () means the default subset(s); ("all",) means every subset
    sample: int | None  # the #N suffix

    @property
    def label(self) -> str:
        return self.name + (":" + "/".join(self.subsets) if self.subsets else "")


def parse_dataset_spec(text: str) -> DatasetSpec:
    """Parse one --dataset value; Windows drive letters (`C:\\data.jsonl`) are not subsets.

    A '#' or ':' in the name of an existing local file or folder (`run#2/`, `notes#draft.jsonl`)
    is part of the name, unless the text before it names an existing path too.
    """
    raw = text.strip()
    hub = None
    if raw[:4].upper() in ("HF::", "MS::"):
        hub, raw = raw[:2].upper(), raw[4:]
    raw, sample = _split_sample(raw, text, local=hub is None)
    raw, subsets = _split_subsets(raw, local=hub is None)
    if not raw:
        raise ArgumentError(f"--dataset '{text}': no dataset id or path before ':' or '#'")
    if sample is not None and sample == 0:
        raise ArgumentError(f"--dataset '{text}': #0 selects no rows; drop the suffix to use the whole dataset")
    return DatasetSpec(name=raw, hub=hub, subsets=subsets, sample=sample)


def _split_sample(raw: str, text: str, local: bool) -> tuple[str, int | None]:
    head, hash_, tail = raw.rpartition("#")
    if not hash_ or "/" in tail or "\\" in tail:  # a '#' in a directory name: `/data/run#1/train.jsonl`
        return raw, None
    if local and _is_local_path(raw) and not _is_local_path(head):
        return raw, None
    if not (tail.isascii() and tail.isdecimal()):
        raise ArgumentError(
            f"--dataset '{text}': the #N suffix must be a positive integer (the number of rows to sample), "
            f"got '{tail}'"
        )
    return head, int(tail)


def _split_subsets(raw: str, local: bool) -> tuple[str, tuple[str, ...]]:
    head, colon, tail = raw.rpartition(":")
    if not colon or len(head) == 1:  # a one-letter head is a Windows drive, not a dataset name
        return raw, ()
    if local and Path(raw).expanduser().exists() and not Path(head).expanduser().exists():
        return raw, ()
    return head, tuple(s for s in tail.split("/") if s)


def _is_local_path(raw: str) -> bool:
    return Path(_split_subsets(raw, local=False)[0]).expanduser().exists()
