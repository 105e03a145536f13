"""The demo's "Try next" lines run as printed, in a shell where the vault's venv is not
activated: they name this environment's `vault` (or plain `vault` when that is the one on PATH)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from click.testing import CliRunner

from vault.cli import cli


def test_the_try_next_lines_run_as_printed(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--dir", str(target), "--customers", "30"])
    assert result.exit_code == 0, result.output
    lines = result.output.split("Try next:\n", 1)[1].splitlines()
    assert lines[0].lstrip().startswith("export VAULT_HOME=")
    script = "set -e\n" + "\n".join(line.strip() for line in lines) + "\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    env["PATH"] = "/usr/bin:/bin"  # no venv on PATH: the lines must not rely on one
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert done.returncode == 0, (script, done.stdout, done.stderr)
    assert "OK:" in done.stdout and "Customer " in done.stdout
    assert "****" in done.stdout  # the last line: the support agent's masked view
