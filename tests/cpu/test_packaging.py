"""Release checks of the CPU kernel and the distributions: the library is portable (AVX2/AVX-512 code
only in the run-time-dispatched variants, no FMA), and a built wheel and sdist install in fresh
virtual environments and run the kernel there.

The fresh venvs borrow MindSpore and NumPy from this environment through a path entry (a second
2.5 GB MindSpore install per test would dominate CI); our package itself is installed into each
venv from the wheel or the sdist, and the smoke test checks that it is that copy which runs.
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile

import pytest

from mindspore_radam import _fused
from tests.common.devices import require

DEVICE_TARGET = "CPU"
pytestmark = require(DEVICE_TARGET)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SMOKE = r'''
import os, sys
import numpy as np
import mindspore as ms
from mindspore import Parameter, Tensor
import mindspore_radam
from mindspore_radam import _fused
assert mindspore_radam.__file__.startswith(sys.prefix), (mindspore_radam.__file__, sys.prefix)
assert _fused.available(), _fused.unavailable_reason()
rng = np.random.default_rng(0)
arrays = [rng.standard_normal(n).astype(np.float32) for n in (1, 1000, 4099)]
grads = [[rng.standard_normal(a.shape).astype(np.float32) for a in arrays] for _ in range(8)]
results = {}
for name in ("hypermap",) + _fused.supported_variants():
    if name != "hypermap":
        _fused.force_variant(name)
    params = [Parameter(Tensor(a.copy()), name=f"p{i}") for i, a in enumerate(arrays)]
    optimizer = mindspore_radam.RAdam(params, lr=0.01, weight_decay=0.1, fused=name != "hypermap")
    for g in grads:
        optimizer(tuple(Tensor(x) for x in g))
    results[name] = np.concatenate([p.asnumpy() for p in params])
for name, values in results.items():
    assert values.tobytes() == results["hypermap"].tobytes(), name
net = ms.nn.Dense(3, 2)
model_optimizer = mindspore_radam.nn.RAdam(net.trainable_params())
print("smoke ok", _fused.supported_variants(), model_optimizer.implementations)
'''


def _disassembly(path):
    if shutil.which("objdump") is None:
        pytest.fail("objdump (binutils) is needed to check the kernel library; it comes with the C++ compiler")
    text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-C", path], capture_output=True, text=True,
                          check=True).stdout
    functions, current = {}, None
    for line in text.splitlines():
        header = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if header:
            current = header.group(1)
            functions[current] = []
        elif current is not None and re.match(r"^\s+[0-9a-f]+:\s", line):
            functions[current].append(line.split(":", 1)[1].split())
    return functions


def test_kernel_library_is_portable():
    """Only the AVX2 and AVX-512 variants (picked at run time) hold AVX instructions; no function holds
    an FMA (which would round differently from the portable path)."""
    if not _fused.available():
        pytest.fail(f"the fused kernel should have been built at install: {_fused.unavailable_reason()}")
    functions = _disassembly(_fused.library_path())
    vex = {name: [i for i in body if i and i[0].startswith("v")] for name, body in functions.items()}
    outside = {name: found[:3] for name, found in vex.items() if found and "Avx2::" not in name and "Avx512::" not in name}
    assert not outside, f"AVX instructions outside the dispatched variants: {outside}"
    zmm = {name for name, body in functions.items() if any("zmm" in " ".join(i) for i in body)}
    assert zmm and all("Avx512::" in name for name in zmm), zmm
    ymm = {name for name, body in functions.items() if any("ymm" in " ".join(i) for i in body)}
    assert any("Avx2::" in name for name in ymm) and all("Avx2::" in n or "Avx512::" in n for n in ymm)
    fma = [name for name, body in functions.items() if any(i and "fmadd" in i[0] or i and "fmsub" in i[0] for i in body)]
    assert not fma, fma


def _fresh_venv(path):
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    python = os.path.join(str(path), "bin", "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # MindSpore and NumPy from this environment (a path entry: its .pth files, such as our own
    # editable install's finder, are not run).
    borrowed = sysconfig.get_paths()["purelib"]
    with open(os.path.join(site, "borrowed_mindspore.pth"), "w", encoding="utf-8") as handle:
        handle.write(borrowed + "\n")
    return python


def _smoke(python, tmp_path):
    result = subprocess.run([python, "-c", SMOKE], capture_output=True, text=True, cwd=str(tmp_path), timeout=600,
                            env=dict(os.environ, GLOG_v="3", PYTHONPATH=""))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "smoke ok" in result.stdout


@pytest.fixture(scope="module")
def distributions(tmp_path_factory):
    """A wheel (pip wheel) and an sdist (setup.py sdist) built from this checkout."""
    out = tmp_path_factory.mktemp("dist")
    build = tmp_path_factory.mktemp("build")
    shutil.copytree(ROOT, build / "src", ignore=shutil.ignore_patterns(
        ".venv", ".venv-*", ".git", "build", "dist", "*.egg-info", "*.so", "__pycache__", ".pytest_cache"))
    src = str(build / "src")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), src],
                   check=True, capture_output=True, text=True)
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d", str(out)], cwd=src, check=True,
                   capture_output=True, text=True)
    wheel = glob.glob(str(out / "*.whl"))
    sdist = glob.glob(str(out / "*.tar.gz"))
    assert len(wheel) == 1 and len(sdist) == 1, os.listdir(out)
    return wheel[0], sdist[0]


@pytest.mark.extended
def test_wheel_holds_the_kernel_and_license(distributions):
    names = zipfile.ZipFile(distributions[0]).namelist()
    assert any(re.match(r"mindspore_radam/_radam_cpu.*\.so$", n) for n in names), names
    assert any(n.endswith("LICENSE") for n in names) and "mindspore_radam/nn.py" in names
    assert "mindspore_radam/examples/model_api.py" in names


@pytest.mark.extended
def test_sdist_holds_the_kernel_source_and_license(distributions):
    names = [n.split("/", 1)[1] for n in tarfile.open(distributions[1]).getnames() if "/" in n]
    for needed in ("mindspore_radam/csrc/radam_cpu.cc", "LICENSE", "README.md", "setup.py", "mindspore_radam/nn.py"):
        assert needed in names, needed
    assert not any(n.endswith(".so") for n in names)


@pytest.mark.extended
def test_wheel_installs_in_a_fresh_venv_and_runs_every_variant(distributions, tmp_path):
    python = _fresh_venv(tmp_path / "venv")
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", distributions[0]], check=True)
    _smoke(python, tmp_path)


@pytest.mark.extended
def test_sdist_builds_and_installs_in_a_fresh_venv(distributions, tmp_path):
    python = _fresh_venv(tmp_path / "venv")
    has_setuptools = subprocess.run([python, "-c", "import setuptools"], capture_output=True).returncode == 0
    isolation = ["--no-build-isolation"] if has_setuptools else []  # Python 3.11 venvs ship setuptools
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", *isolation, distributions[1]], check=True)
    _smoke(python, tmp_path)
