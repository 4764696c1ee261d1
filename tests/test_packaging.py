"""What the installed package carries: the wheel's modules, the extras per product, a light CLI start."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import setuptools

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
#: Names that only the sample builder (tools/sample, run by `make data`) defines.
BUILDER_NAMES = ("def build_sample", "class RccArchive", "class DCGANGenerator", "def load_sources")


def wheel_packages() -> list[str]:
    """The packages setuptools puts in the wheel, found with pyproject.toml's own rule."""
    find = PYPROJECT["tool"]["setuptools"]["packages"]["find"]
    return sorted(setuptools.find_packages(where=str(ROOT), include=find["include"], exclude=find.get("exclude", ())))


def test_the_wheel_ships_the_runtime_package_and_no_sample_builder() -> None:
    packages = wheel_packages()
    assert "aiornot" in packages
    assert not [p for p in packages if p.split(".")[0] != "aiornot"], packages  # tools/ stays in the checkout
    modules = [path for package in packages for path in (ROOT / package.replace(".", "/")).glob("*.py")]
    assert {"cli.py", "detector.py", "jsonl.py"} <= {m.name for m in modules}
    offending = {m.name: name for m in modules for name in BUILDER_NAMES if name in m.read_text(encoding="utf-8")}
    assert not offending, f"sample-builder code in the wheel: {offending}"
    assert not any(re.search(r"^\s*(from|import) tools\b", m.read_text(encoding="utf-8"), re.M) for m in modules)


def test_every_product_extra_is_installed_by_make_env_and_pinned_in_the_lock() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    installed = set(re.search(r"^EXTRAS := (.+)$", makefile, re.M).group(1).split(","))
    assert installed == set(extras) - {"watermark"}  # watermark: installed --no-deps (WATERMARK_PINS)
    watermark = re.search(r"^WATERMARK_PINS := (.+)$", makefile, re.M).group(1).split()
    assert sorted(watermark) == sorted(extras["watermark"])
    conda = re.search(r"-e \.\[(.+)\]", (ROOT / "environment.yml").read_text(encoding="utf-8")).group(1)
    assert set(conda.split(",")) == installed
    lock = dict(_name_and_version(line) for line in (ROOT / "requirements/lock.txt").read_text().splitlines() if "==" in line)
    for pin in PYPROJECT["project"]["dependencies"] + [d for group in extras.values() for d in group]:
        name, version = _name_and_version(pin)
        if name != "tensorflow":  # the non-Linux twin of tensorflow-cpu, not in the Linux lock
            assert lock.get(name) == version, f"{pin} is not the lock's {name}=={lock.get(name)}"
    runtime = {re.split(r"[=\[;]", p)[0] for p in PYPROJECT["project"]["dependencies"]}
    assert not runtime & {"jupyterlab", "papermill", "nbconvert", "ipykernel", "ncnn", "fastapi", "uvicorn"}


def _name_and_version(pin: str) -> tuple[str, str]:
    """``("pywavelets", "1.9.0")`` from ``PyWavelets==1.9.0`` or ``ray[data]==2.60.0; …`` (names normalised)."""
    name, version = re.sub(r"\[.*?\]", "", pin.split(";")[0]).split("==")
    return re.sub(r"[-_.]+", "-", name.strip().lower()), version.strip()


def test_aiornot_help_imports_neither_pandas_nor_keras_nor_tensorflow() -> None:
    probe = ("import json, sys\nfrom aiornot.apps import cli\ntry:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
             "print(json.dumps(sorted(m for m in ('pandas', 'keras', 'tensorflow', 'matplotlib', 'sklearn') if m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    lines = done.stdout.strip().splitlines()
    assert "scan" in done.stdout and "model-card" in done.stdout  # the help itself was printed
    assert json.loads(lines[-1]) == []


@pytest.mark.parametrize(("module", "heavy"), [
    ("aiornot.evaluation.metrics", ("keras", "tensorflow")),  # metrics do not need the training code
    ("aiornot.reporting.plots", ("pandas", "matplotlib", "keras")),
    ("aiornot.io.display", ("pandas", "matplotlib", "keras")),  # the service imports it for the heatmap overlay
    ("aiornot.detector", ("pandas", "keras", "tensorflow", "matplotlib")),  # Keras loads with a model, not on import
    ("aiornot.io.jsonl", ("numpy", "pandas")),
])
def test_importing_a_module_loads_only_what_it_needs(module: str, heavy: tuple[str, ...]) -> None:
    probe = f"import json, sys, {module}\nprint(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
