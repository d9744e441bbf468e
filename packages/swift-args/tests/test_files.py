"""File modes: atomically written files end with the umask's mode, not mkstemp's 0600."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from swift_args.args_file import write_json_atomic
from swift_args.files import apply_umask, umask_mode


@pytest.fixture
def umask() -> Iterator[None]:
    """Lets a test set the process umask; the old one comes back afterwards."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_write_json_atomic_follows_the_umask(tmp_path: Path, umask: None, mask: int, expected: int) -> None:
    os.umask(mask)
    path = tmp_path / "args.json"
    write_json_atomic(path, {"model": "m"})
    assert _mode(path) == expected
    assert [p.name for p in tmp_path.iterdir()] == ["args.json"]  # no temporary file left beside it


def test_umask_mode_reads_without_changing_the_umask(umask: None) -> None:
    os.umask(0o027)
    assert umask_mode() == 0o640
    assert os.umask(0o027) == 0o027  # still what the test set


def test_umask_without_proc_falls_back_and_restores(umask: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_proc(*_: object, **__: object) -> None:
        raise FileNotFoundError("/proc/self/status")

    monkeypatch.setattr("swift_args.files.open", no_proc, raising=False)  # as on macOS
    os.umask(0o027)
    assert umask_mode() == 0o640
    assert os.umask(0o027) == 0o027


def test_apply_umask_walks_a_directory_and_leaves_links_alone(tmp_path: Path, umask: None) -> None:
    os.umask(0o022)
    (tmp_path / "sub").mkdir()
    files = [tmp_path / "a.bin", tmp_path / "sub" / "b.json"]
    for file in files:
        file.write_text("x")
        file.chmod(0o600)
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.write_text("x")
    outside.chmod(0o600)
    (tmp_path / "link").symlink_to(outside)
    apply_umask(tmp_path)
    assert [_mode(f) for f in files] == [0o644, 0o644]
    assert _mode(outside) == 0o600  # a link out of the tree is not followed
    outside.unlink()
