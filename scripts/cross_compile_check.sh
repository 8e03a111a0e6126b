#!/usr/bin/env bash
# Cross-compiles the fused kernel for aarch64 with the flags setup.py uses and checks the result:
# an aarch64 shared library, a NEON-vectorized loop (fsqrt on .4s vectors), no fused multiply-add.
#   apt-get install g++-aarch64-linux-gnu   # Debian's cross compiler, once
#   bash scripts/cross_compile_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CXX=aarch64-linux-gnu-g++
OBJDUMP=aarch64-linux-gnu-objdump
if ! command -v "$CXX" > /dev/null; then
  echo "cross_compile_check: $CXX not found; install it with: apt-get install g++-aarch64-linux-gnu" >&2
  exit 2
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$CXX" -O3 -ffp-contract=off -fno-math-errno -std=c++17 -Wall -Wextra -Werror -shared -fPIC \
  mindspore_radam/csrc/radam_cpu.cc -o "$out/radam_cpu_aarch64.so"
file "$out/radam_cpu_aarch64.so" | grep -q "ARM aarch64" || { echo "not an aarch64 library" >&2; exit 1; }
vector_sqrt=$("$OBJDUMP" -d "$out/radam_cpu_aarch64.so" | grep -cE 'fsqrt\s+v[0-9]+\.4s' || true)
fma=$("$OBJDUMP" -d "$out/radam_cpu_aarch64.so" | grep -cE '\s(fmla|fmls|fmadd|fmsub|fnmadd|fnmsub)\s' || true)
echo "aarch64: $("$CXX" --version | head -1); vectorized sqrt in $vector_sqrt places; FMA instructions: $fma"
[ "$vector_sqrt" -gt 0 ] && [ "$fma" -eq 0 ]
