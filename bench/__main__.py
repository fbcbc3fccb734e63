"""`python -m bench`: run every benchmark module of bench/ (one that defines `run`) and print its table."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from types import ModuleType


def benchmark_modules() -> list[ModuleType]:
    """The modules of this package that define `run() -> list[dict]`, by name."""
    found = []
    for info in pkgutil.iter_modules([str(Path(__file__).resolve().parent)]):
        if info.ispkg or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__package__ or 'bench'}.{info.name}")
        if callable(getattr(module, "run", None)):
            found.append(module)
    return found


def main() -> None:
    for index, module in enumerate(benchmark_modules()):
        rows = module.run()
        if index:
            print()
        print(module.format_table(rows), flush=True)


if __name__ == "__main__":
    main()
