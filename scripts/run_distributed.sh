#!/usr/bin/env bash
# Data-parallel LeNet5 training with MindSpore's own launcher: N workers on this machine (CPU:
# MCCL over loopback), gradients averaged across ranks, rank 0's initial parameters broadcast.
#
#   scripts/run_distributed.sh 2                         # the example's defaults
#   scripts/run_distributed.sh 2 --mode graph --epochs 5 # any train_lenet5.py option
#
# Rank 0's output (progress, then "ranks agree: yes" and "test accuracy: X.XXXX") is in
# $LOG_DIR/worker_0.log; those two lines are printed at the end. A run whose ranks ended with
# different parameters fails. MASTER_PORT picks the port (default: a free one); LOG_DIR the log folder.
set -euo pipefail
workers=${1:?usage: scripts/run_distributed.sh N [train_lenet5.py options]}
shift
here=$(cd "$(dirname "$0")" && pwd)
python=$(command -v python || command -v python3)
export PATH="$(dirname "$python"):$PATH"  # msrun starts a bare `python`: the venv's must come first
port=${MASTER_PORT:-$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
log_dir=${LOG_DIR:-msrun_logs}
status=0
msrun --worker_num="$workers" --local_worker_num="$workers" --master_addr=127.0.0.1 --master_port="$port" \
  --join=True --cluster_time_out=120 --log_dir="$log_dir" \
  "$here/train_lenet5.py" --distributed "$@" >"$log_dir.msrun.txt" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
  echo "run_distributed.sh: msrun failed with status $status; errors from $log_dir:" >&2
  grep -h -E "error:|ERROR|Error:" "$log_dir"/*.log 2>/dev/null | head -n 20 >&2 || true
  exit "$status"
fi
grep -a -E "^(ranks agree|test accuracy): " "$log_dir/worker_0.log" | tail -n 2
