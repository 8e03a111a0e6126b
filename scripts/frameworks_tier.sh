#!/usr/bin/env bash
# The frameworks tier: ours inside the training frameworks' own machinery, each framework in a venv of the
# MindSpore it needs (tests/cpu/test_frameworks.py; docs/frameworks.md says what is verified where).
#   bash scripts/frameworks_tier.sh              # mindcv, mindformers and mindone
#   bash scripts/frameworks_tier.sh mindone      # one framework
# mindcv 0.3.0 runs on the newest supported MindSpore, in the project's .venv (created by .ci/run or the
# README's set-up; mindcv needs only numpy, PyYAML and tqdm). mindformers 1.9.0 needs MindSpore 2.9.0: the
# version tier's venv of it (created here if the version tier did not run). mindone 0.5.0 supports MindSpore
# up to 2.7.1 and imports ml_dtypes without declaring it: a venv of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
frameworks=("$@")
[ ${#frameworks[@]} -gt 0 ] || frameworks=(mindcv mindformers mindone)
for name in "${frameworks[@]}"; do
    start=$(date +%s)
    case "$name" in
        mindcv)
            venv=".venv"
            [ -x "$venv/bin/python" ] || { echo "frameworks_tier: run the README's set-up first (.venv)"; exit 2; }
            "$venv/bin/python" -m pip install --quiet "mindcv==0.3.0"
            ;;
        mindformers)
            venv=".venv-ms2.9.0"
            if [ ! -x "$venv/bin/python" ]; then
                python3 -m venv "$venv"
                "$venv/bin/python" -m pip install --quiet --upgrade pip
                "$venv/bin/python" -m pip install --quiet "mindspore==2.9.0" "numpy<2" "pytest>=7" "pytest-xdist>=3"
                "$venv/bin/python" -m pip install --quiet --no-deps -e .
            fi
            "$venv/bin/python" -m pip install --quiet "mindformers==1.9.0"
            ;;
        mindone)
            venv=".venv-fw-mindone"
            [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
            "$venv/bin/python" -m pip install --quiet --upgrade pip
            "$venv/bin/python" -m pip install --quiet "mindspore==2.7.1" "mindone==0.5.0" ml_dtypes "numpy<2" \
                "pytest>=7" "pytest-xdist>=3"
            "$venv/bin/python" -m pip install --quiet --no-deps -e .
            ;;
        *) echo "frameworks_tier: unknown framework $name (mindcv, mindformers, mindone)"; exit 2 ;;
    esac
    echo "== $name: $("$venv/bin/python" -c "import mindspore, $name; print('mindspore', mindspore.__version__, \
'| $name', getattr($name, '__version__', '?'))")"
    MINDSPORE_RADAM_FRAMEWORKS="$name" "$venv/bin/python" -m pytest tests/cpu/test_frameworks.py -m frameworks \
        -k "$name" -n 0 -p no:cacheprovider
    echo "== $name: $(( $(date +%s) - start )) s"
done
