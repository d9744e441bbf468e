"""The third-party messages swift silences are exactly the listed ones: the rest still reach the user."""

from __future__ import annotations

import logging
import warnings

from swift_args.quiet import silence_known_noise


def test_only_the_listed_bitsandbytes_line_is_dropped(caplog):
    silence_known_noise()
    silence_known_noise()  # a second command in one process adds no second filter
    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    assert len(logger.filters) == 1
    with caplog.at_level(logging.WARNING, logger=logger.name):
        logger.warning("Failed to load CPU gemm_4bit_forward from kernels-community: %s. Please ...", "No module")
        logger.warning("CUDA kernels could not be loaded")
    assert [r.getMessage() for r in caplog.records] == ["CUDA kernels could not be loaded"]


def test_only_the_listed_deprecation_warning_is_ignored():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        silence_known_noise()
        warnings.warn("`is_gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning)
        warnings.warn("`other_thing` is deprecated", FutureWarning)
    assert [str(w.message) for w in caught] == ["`other_thing` is deprecated"]
