"""One dataclass per command, composed from the reference's argument groups."""

from swift_args.schema.base import ModelLoadingArguments
from swift_args.schema.export import ExportArguments, MergeLoraArguments
from swift_args.schema.serving import (
    AppArguments,
    DeployArguments,
    EvalArguments,
    InferArguments,
    SampleArguments,
    WebUIArguments,
)
from swift_args.schema.training import PtArguments, RlhfArguments, TrainArguments

__all__ = [
    "AppArguments",
    "DeployArguments",
    "EvalArguments",
    "ExportArguments",
    "InferArguments",
    "MergeLoraArguments",
    "ModelLoadingArguments",
    "PtArguments",
    "RlhfArguments",
    "SampleArguments",
    "TrainArguments",
    "WebUIArguments",
]
