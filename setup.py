"""mindspore-radam: an exact, validated RAdam optimizer for MindSpore."""
import re
from pathlib import Path

from setuptools import Extension, find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "mindspore_radam" / "__init__.py").read_text()).group(1)

# The fused CPU kernel: a plain shared library with a C ABI that MindSpore loads as an AOT custom op
# (it is never imported by Python). It is built for the target's baseline instruction set (no
# -march=native), so a wheel runs on any CPU of its architecture; on x86-64 it carries AVX2 and
# AVX-512 variants of its loop and picks the widest the running CPU has. -ffp-contract=off (no
# FMA) keeps every variant bit-identical to the portable path. Optional: without a compiler the
# package installs and uses the portable path.
FUSED_CPU_KERNEL = Extension(
    "mindspore_radam._radam_cpu",
    sources=["mindspore_radam/csrc/radam_cpu.cc"],
    language="c++",
    extra_compile_args=["-O3", "-ffp-contract=off", "-fno-math-errno", "-std=c++17"],
    optional=True,
)

setup(
    name="mindspore-radam",
    version=VERSION,
    description="Rectified Adam for MindSpore: a drop-in for mindspore.experimental.optim.RAdam, "
                "exact to a float64 reference",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(include=["mindspore_radam", "mindspore_radam.*"]),
    ext_modules=[FUSED_CPU_KERNEL],
    python_requires=">=3.9",
    # MindSpore 2.7-2.10 (mindspore_radam/_versions.py); their wheels are built against NumPy 1.x but do
    # not say so, and numpy 2 breaks them.
    install_requires=["mindspore>=2.7.0,<2.11", "numpy<2"],
    extras_require={
        # pytest-xdist: the suite runs on every core (2 workers halve its time on a 2-core machine).
        "test": ["pytest>=7", "pytest-xdist>=3"],
        # The LeNet5 examples: the digits data set ships inside scikit-learn; plots; progress bars.
        "examples": ["scikit-learn", "matplotlib", "tqdm"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
