"""The reference's dataset syntax: `ID_OR_PATH[:subset1/subset2|all][#N]`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from swift_args import ArgumentError

_SAMPLE = re.compile(r"^(.*)#(\d+)$")


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
    """Parse one --dataset value; Windows drive letters (`C:\\data.jsonl`) are not subsets."""
    raw = text.strip()
    hub = None
    if raw[:4].upper() in ("HF::", "MS::"):
        hub, raw = raw[:2].upper(), raw[4:]
    sample = None
    match = _SAMPLE.match(raw)
    if match:
        raw, sample = match.group(1), int(match.group(2))
    subsets: tuple[str, ...] = ()
    head, colon, tail = raw.rpartition(":")
    if colon and len(head) != 1:  # a one-letter head is a Windows drive, not a dataset name
        raw, subsets = head, tuple(s for s in tail.split("/") if s)
    if not raw:
        raise ArgumentError(f"--dataset '{text}': no dataset id or path before ':' or '#'")
    if sample is not None and sample == 0:
        raise ArgumentError(f"--dataset '{text}': #0 selects no rows; drop the suffix to use the whole dataset")
    return DatasetSpec(name=raw, hub=hub, subsets=subsets, sample=sample)
