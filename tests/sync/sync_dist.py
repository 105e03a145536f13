"""Installing a plugin as a distribution of its own, for one test: a ``*.dist-info`` folder with
an ``entry_points.txt`` in a folder put on ``sys.path`` (and ``PYTHONPATH`` for subprocesses),
which is how ``importlib.metadata`` finds any installed package."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from vault import plugins


def make_distribution(
    root: Path, name: str, entry_points: Mapping[str, str], modules: Mapping[str, str]
) -> Path:
    """Write modules (``module name -> source``) and a dist-info naming ``entry_points`` in the
    ``vault`` group; returns the folder to put on the path."""
    root.mkdir(parents=True, exist_ok=True)
    for module, source in modules.items():
        (root / f"{module}.py").write_text(source, encoding="utf-8")
    info = root / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n", encoding="utf-8"
    )
    lines = "\n".join(f"{ep} = {target}" for ep, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[vault]\n{lines}\n", encoding="utf-8")
    (info / "RECORD").write_text("", encoding="utf-8")
    return root


def reset_plugins() -> None:
    plugins._manager = None
    plugins._load_errors.clear()


@contextmanager
def on_path(*folders: Path) -> Iterator[None]:
    """Put ``folders`` on ``sys.path`` and rediscover the plugins; undo both afterwards."""
    added = [str(f) for f in folders]
    sys.path[:0] = added
    reset_plugins()
    try:
        yield
    finally:
        for folder in added:
            sys.path.remove(folder)
        for module in list(sys.modules):
            file = getattr(sys.modules[module], "__file__", None) or ""
            if any(file.startswith(folder) for folder in added):
                del sys.modules[module]
        reset_plugins()
