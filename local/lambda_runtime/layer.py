"""Where a function's imports come from, locally as on Lambda: its code folder, then each layer of the template
(its content folder, then the packages `sam build` installs from the folder's requirements.txt), then what the
Lambda runtime itself provides (boto3, after the layers, as /var/runtime is) — never the development venv.

The packages are installed once with `pip install --target` by the interpreter that runs the stack (or the
one named, as for `python -m bench.cold_start --python python3.13`), into a cache folder named after a hash
of the requirements file, the interpreter's version and platform, and reused until one of them changes.
They are shipped as `make deploy` ships them: bytecode compiled with hash-checked invalidation
(`as_deployed`), and every file dated as Lambda unpacks SAM's zip (1980-01-01), a date no timestamp-checked
bytecode matches. The content folder (shared/, the product) is used where it is, so an edit takes effect
without a rebuild. `python -m local.lambda_runtime.layer` builds whatever is missing and prints the folders.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import importlib.metadata
import os
import platform
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_REQUIREMENTS = Path(__file__).resolve().parent / "lambda-runtime-requirements.txt"
LAYER_REQUIREMENTS = "requirements.txt"
"""The file `sam build` installs into a layer built with a python BuildMethod, in the layer's ContentUri."""


ZIP_EPOCH = 315532800
"""1980-01-01T00:00:00Z: SAM writes its zips without dates, so every file of a deployed function or layer is
dated so on Lambda (aws/aws-lambda-builders#924)."""
BUILD_RECIPE = "pip --no-compile; checked-hash bytecode; dated ZIP_EPOCH"
"""Part of a build's cache key: a build made another way is made again."""


class LayerError(RuntimeError):
    pass


def cache_root() -> Path:
    """The venv running the stack holds the builds (`make clean` removes them with it); outside a venv, the
    user's cache folder."""
    if sys.prefix != sys.base_prefix:
        return Path(sys.prefix) / "newsdesk-layers"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "newsdesk" / "layers"


INTERPRETER = (
    "import platform, sys, sysconfig\n"
    "print(sys.implementation.cache_tag, sysconfig.get_platform(), platform.libc_ver())"
)
"""Prints what a compiled package (pydantic-core, cryptography) and bytecode fit: version, platform, C library."""


@functools.cache
def interpreter_tag(python: str) -> str:
    if python == sys.executable:
        return f"{sys.implementation.cache_tag} {sysconfig.get_platform()} {platform.libc_ver()}"
    done = subprocess.run([python, "-c", INTERPRETER], capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise LayerError(f"{python} does not run: {done.stderr.strip()[-500:]}")
    return done.stdout.strip()


def build_key(requirements: Path, python: str | None = None) -> str:
    digest = hashlib.sha256(requirements.read_bytes())
    digest.update(interpreter_tag(python or sys.executable).encode())
    digest.update(BUILD_RECIPE.encode())
    return digest.hexdigest()[:16]


def packages(requirements: Path, *, root: Path | None = None, python: str | None = None) -> Path:
    """The folder holding what `pip install --target` installs from `requirements` for `python` (the
    interpreter running this by default), built on first use. Processes asking at once (pytest-xdist workers)
    wait for one build instead of each making their own."""
    root = root or cache_root()
    python = python or sys.executable
    name = requirements.parent.name if requirements.stem == "requirements" else requirements.stem
    target = root / f"{name.removesuffix('-requirements')}-{build_key(requirements, python)}"
    if target.is_dir():  # a build appears whole (renamed into place) or not at all
        return target
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / f"{target.name}.lock"):
        if not target.is_dir():
            _build(requirements, target, python)
    return target


def runtime_packages(python: str | None = None) -> Path:
    """What the Lambda runtime provides beside the interpreter
    (local/lambda_runtime/lambda-runtime-requirements.txt)."""
    return packages(RUNTIME_REQUIREMENTS, python=python)


def layer_path(layer_dirs: Iterable[Path], python: str | None = None) -> list[Path]:
    """Each layer's content folder, then its installed requirements; then the runtime's own packages."""
    path: list[Path] = []
    for layer_dir in layer_dirs:
        path.append(layer_dir)
        if (layer_dir / LAYER_REQUIREMENTS).is_file():
            path.append(packages(layer_dir / LAYER_REQUIREMENTS, python=python))
    return [*path, runtime_packages(python)]


@dataclass(frozen=True)
class ProductPath:
    folders: list[Path]
    """Where this process imports the product and its packages from, in order."""
    imported_before: dict[str, Path]
    """Layer packages this process had imported from elsewhere (pytest's plugins), at the layer's version."""


def use_in_this_process(layer_dirs: Sequence[Path]) -> ProductPath:
    """Put the layers' folders ahead of the venv's site-packages in this process (which keeps the venv for
    pytest and moto), so that the product's packages are imported from the layer. A package imported from
    the venv before that must be at the layer's version, or the product would run on one the layer lacks."""
    folders = layer_path(layer_dirs)
    wanted = [str(folder) for folder in folders]
    sys.path[:] = [entry for entry in sys.path if entry not in wanted]
    site_dirs = {*site.getsitepackages(), site.getusersitepackages()}
    first_site = next((i for i, entry in enumerate(sys.path) if entry in site_dirs), len(sys.path))
    sys.path[first_site:first_site] = wanted
    importlib.invalidate_caches()
    imported_before, mismatches = {}, []
    # The runtime's own folder is left out: pytest's plugins may load a newer urllib3 than Lambda's, which
    # only a function without layers would use, and such functions run in workers to be faithful.
    layers = [folder for folder in folders if folder != runtime_packages()]
    for module, dist, version, origin, layer_version in _imported_elsewhere(layers):
        imported_before[module] = origin
        if version != layer_version:
            mismatches.append(f"{dist} {version} from {origin} (the layer has {layer_version})")
    if mismatches:
        raise LayerError(
            "imported before the layer was on the path, at versions the layer does not ship: " + "; ".join(mismatches)
        )
    return ProductPath(folders, imported_before)


def _imported_elsewhere(folders: Sequence[Path]) -> Iterator[tuple[str, str, str | None, Path, str]]:
    """(module, distribution, version in use, folder, layer's version) for each module of the layer's packages
    that is imported already, from a folder outside the layers (another template's layer build counts as one)."""
    seen: set[str] = set()
    layers = [*folders, cache_root()]
    for folder in folders:
        for dist in importlib.metadata.distributions(path=[str(folder)]):
            for module in _top_level_modules(dist) - seen:
                seen.add(module)  # the first folder that has a module is the one it is imported from
                origin = getattr(sys.modules.get(module), "__file__", None)
                if not origin or any(Path(origin).is_relative_to(ours) for ours in layers):
                    continue
                # The folder the module came from (site-packages), where its own dist-info lies.
                home = Path(origin).parent.parent if Path(origin).name == "__init__.py" else Path(origin).parent
                found = next(iter(importlib.metadata.distributions(name=dist.name, path=[str(home)])), None)
                yield module, dist.name, found.version if found else None, home, dist.version


def _top_level_modules(dist: importlib.metadata.Distribution) -> set[str]:
    modules = set()
    for file in dist.files or []:
        top = file.parts[0]
        if top.endswith((".dist-info", ".data")) or top in ("..", "bin", "__pycache__"):
            continue
        modules.add(top.split(".", 1)[0] if len(file.parts) == 1 else top)
    return modules


@contextlib.contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(requirements: Path, target: Path, python: str) -> None:
    for leftover in target.parent.glob(f".{target.name}-*"):  # a build that was killed half-way
        shutil.rmtree(leftover, ignore_errors=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    shown = requirements.relative_to(ROOT) if requirements.is_relative_to(ROOT) else requirements
    _say(f"installing the packages of {shown} into {target} (once per change of that file: about a minute)")
    began = time.monotonic()
    pip = [
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        "--no-compile",
    ]
    done = subprocess.run(  # noqa: S603 - our own interpreter's pip, on our own requirements file
        [*pip, "--progress-bar", "off", "--target", str(building), "--requirement", str(requirements)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        raise LayerError(f"pip could not install {shown}:\n{done.stderr.strip()[-3000:]}")
    as_deployed(building, python)
    building.rename(target)
    _say(f"installed {shown} in {time.monotonic() - began:.0f} s")


def as_deployed(folder: Path, python: str | None = None) -> None:
    """The folder as Lambda finds it after `make deploy`: bytecode for every module, checked against its
    source's hash rather than its date (the Makefile's `bytecode` step, the same command), then every file
    dated ZIP_EPOCH as SAM's zip leaves it. Bytecode checked by date, what pip writes, never matches that date:
    Lambda would compile every module at every cold start, since it cannot write bytecode into /opt or
    /var/task either."""
    compile_all = ["-m", "compileall", "-q", "-f", "-j", "0", "--invalidation-mode", "checked-hash", str(folder)]
    done = subprocess.run([python or sys.executable, *compile_all], capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise LayerError(f"compiling {folder} failed:\n{(done.stdout + done.stderr).strip()[-3000:]}")
    dated_as_zipped(folder)


def dated_as_zipped(folder: Path) -> None:
    """Every file and folder in `folder` dated ZIP_EPOCH, as Lambda unpacks SAM's zip (links left as they are)."""
    for path in [folder, *folder.rglob("*")]:
        os.utime(path, (ZIP_EPOCH, ZIP_EPOCH), follow_symlinks=False)


def _say(message: str) -> None:
    sys.stderr.write(f"layer: {message}\n")
    sys.stderr.flush()


def main() -> int:
    from local.stack import project_template

    try:
        for folder in layer_path(project_template().layer_dirs):
            sys.stdout.write(f"{folder}\n")
    except LayerError as error:
        _say(str(error))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
