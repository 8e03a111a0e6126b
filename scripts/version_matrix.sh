#!/usr/bin/env bash
# The version tier on each older supported MindSpore minor release (its newest patch), each in a venv
# of its own next to the checkout: MindSpore and the test extra, this package built and installed
# there (the kernel included), then `python -m pytest tests/cpu -m versions`.
#   bash scripts/version_matrix.sh            # 2.9.0 2.8.0 2.7.2
#   bash scripts/version_matrix.sh 2.8.0      # one release
set -euo pipefail
cd "$(dirname "$0")/.."
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(2.9.0 2.8.0 2.7.2)
for version in "${versions[@]}"; do
    venv=".venv-ms$version"
    echo "== MindSpore $version: $venv"
    start=$(date +%s)
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet "mindspore==$version" "numpy<2" "pytest>=7" "pytest-xdist>=3" scikit-learn tqdm
    "$venv/bin/python" -m pip install --quiet --no-deps -e .
    "$venv/bin/python" -c "import mindspore, mindspore_radam._fused as f; \
print('mindspore', mindspore.__version__, '| kernel loaded:', f.available(), f.unavailable_reason() or '')"
    "$venv/bin/python" -m pytest tests/cpu -m versions -p no:cacheprovider
    echo "== MindSpore $version: $(( $(date +%s) - start )) s"
done
