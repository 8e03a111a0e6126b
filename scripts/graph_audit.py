"""The portable path's compiled graphs, node by node, checked against device rules that no CPU run shows.

Compiles the portable step of both front doors, called from Python and inlined in a ``jit`` train step,
over float16/bfloat16/float32/float64 Parameters with ``grads_finite`` and Kahan summation, with
MindSpore's saved IR (``save_graphs``); lists every node of the built graphs (primitive, input and output
dtypes and shapes) and checks the rules written here, each with its source:

- ``gpu_select_condition``: a ``Select``'s condition has its output's shape. MindSpore's GPU Select
  (r2.7: ``ops/kernel/gpu/arrays/select_gpu_kernel.cc``, ``cuda_impl/cuda_ops/select_impl.cu``) sizes its
  output from the condition, so a 0-d condition over a tensor writes one element.
- ``per_tensor_float64``: no float64 op on a non-scalar Tensor unless a Parameter is float64. Ascend's AI
  Core kernels have no float64 (CANN ``hicann/ops-math``: Pow, Add, Sub, Mul, Div, Sqrt, Select, Cast lack
  DOUBLE in their AI Core dtype lists), so each such op runs on the AI CPU, per element.

It also counts the float64 scalar ops per graph (the per-group schedule: on Ascend they run on the AI CPU).
What it does not do yet: check each node against per-device kernel tables generated from MindSpore's and
CANN's sources (docs/devices.md says what was checked how).

    python scripts/graph_audit.py            # every case; exit status 1 if a rule is broken
    python scripts/graph_audit.py --json     # the findings as JSON (the tests read it)
"""
import argparse
import glob
import json
import os
import re
import shutil
import sys
import tempfile

os.environ.setdefault("GLOG_v", "3")

NODE = re.compile(r"^\s+%\d+\([^)]*\) = PrimFunc_(\w+)\(")
TYPES = re.compile(r"<Tensor\[(\w+)\], \(([^)]*)\)>")
CASES = ("core-f32", "core-f16-kahan-gated", "core-bf16", "core-f64-gated", "core-groups-decoupled",
         "nn-f32", "core-jit-inline", "nn-train-cell")


def parse_ir(path):
    """[(primitive, [(dtype, shape), ...] of inputs, [(dtype, shape)] of outputs)] of one IR file."""
    nodes, lines = [], open(path, encoding="utf-8").read().splitlines()
    for index, line in enumerate(lines):
        match = NODE.match(line)
        if not match or index + 1 >= len(lines) or "->" not in lines[index + 1]:
            continue
        inputs, outputs = lines[index + 1].split("->", 1)
        parse = lambda text: [(dtype, tuple(int(d) for d in dims.split(",") if d.strip()))  # noqa: E731
                              for dtype, dims in TYPES.findall(text)]
        nodes.append((match.group(1), parse(inputs), parse(outputs)))
    return nodes


def check_nodes(nodes, float64_params, record):
    """({rule: [violations]}, float64 scalar op count) of `nodes` (as :func:`parse_ir` gives them); `record`:
    the shape of a group's float64 hyperparameter record (read per group, not per tensor)."""
    rules = {"gpu_select_condition": [], "per_tensor_float64": []}
    scalar64 = 0
    for prim, inputs, outputs in nodes:
        if prim == "Select" and inputs and outputs and inputs[0][1] != outputs[0][1]:
            rules["gpu_select_condition"].append(f"Select condition {inputs[0][1]} for output {outputs[0][1]}")
        has64 = any(dtype == "Float64" for dtype, _ in inputs + outputs)
        per_tensor = [shape for _, shape in inputs + outputs if shape and shape != record]
        if has64 and not float64_params and per_tensor and prim not in ("Load", "Depend"):
            rules["per_tensor_float64"].append(f"{prim} {inputs} -> {outputs}")
        if has64 and not per_tensor:
            scalar64 += 1
    return rules, scalar64


def _build(case):
    """(step function, Parameters) for one case; the step runs one optimizer step."""
    import numpy as np
    import mindspore as ms
    from mindspore import Parameter, Tensor, nn, ops
    from mindspore.amp import all_finite
    import mindspore.common.dtype as mstype
    from mindspore_radam import RAdam
    from mindspore_radam.nn import RAdam as NNRAdam

    dtype = {"f16": mstype.float16, "bf16": mstype.bfloat16, "f64": mstype.float64}.get(
        next((part for part in case.split("-") if part in ("f16", "bf16", "f64")), None), mstype.float32)
    params = [Parameter(Tensor(np.full((4, 3), 0.5, np.float32)).astype(dtype), name=f"{case}_w"),
              Parameter(Tensor(np.full((3,), 0.25, np.float32)).astype(dtype), name=f"{case}_b")]
    grads = tuple(Tensor(np.full(p.shape, 0.1, np.float32)).astype(p.dtype) for p in params)
    ms.set_context(mode=ms.PYNATIVE_MODE)
    if case.startswith("nn"):
        optimizer = NNRAdam(params, learning_rate=0.01, fused=False)
    elif "groups" in case:
        optimizer = RAdam([{"params": params[:1], "weight_decay": 0.1}, {"params": params[1:]}], lr=0.01,
                          decoupled_weight_decay=True, maximize=True, fused=False)
    else:
        optimizer = RAdam(params, lr=0.01, fused=False, kahan_summation="kahan" in case)
    gated = "gated" in case
    if case == "nn-train-cell":
        ms.set_context(mode=ms.GRAPH_MODE)
        net = nn.Dense(3, 4)
        optimizer = NNRAdam(net.trainable_params(), learning_rate=0.01, fused=False)
        cell = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), optimizer)
        x, y = Tensor(np.ones((2, 3), np.float32)), Tensor(np.zeros((2, 4), np.float32))
        return lambda: cell(x, y)
    if "jit-inline" in case:
        def loss_fn():
            return (params[0] * params[0]).sum() + params[1].sum()
        grad_fn = ms.value_and_grad(loss_fn, None, optimizer.parameters)

        @ms.jit
        def train_step():
            loss, gradients = grad_fn()
            return ops.depend(loss, optimizer(gradients))
        return train_step
    return lambda: optimizer(grads, all_finite(grads)) if gated else optimizer(grads)


def audit(cases):
    """{case: {"rules": {rule: [violations]}, "float64_scalar_ops": n, "nodes": n}} for `cases`."""
    import mindspore as ms
    from mindspore_radam.functional import HYPER_FIELDS
    record = (len(HYPER_FIELDS),)  # a group's float64 hyperparameter record: read per group, not per tensor
    directory = tempfile.mkdtemp(prefix="radam_ir_")
    ms.set_context(save_graphs=1, save_graphs_path=directory)
    seen, findings = set(), {}
    try:
        for case in cases:
            _build(case)()
            files = sorted(set(glob.glob(os.path.join(directory, "**", "graph_build_*.ir"), recursive=True)) - seen)
            seen.update(files)
            nodes = [node for path in files for node in parse_ir(path)]
            rules, scalar64 = check_nodes(nodes, float64_params="f64" in case, record=record)
            findings[case] = {"rules": rules, "float64_scalar_ops": scalar64, "nodes": len(nodes)}
    finally:
        ms.set_context(save_graphs=0)
        shutil.rmtree(directory, ignore_errors=True)
    return findings


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    findings = audit(args.cases)
    broken = sum(len(v) for case in findings.values() for v in case["rules"].values())
    if args.json:
        print(json.dumps(findings))
    else:
        for case, result in findings.items():
            print(f"{case}: {result['nodes']} nodes, {result['float64_scalar_ops']} float64 scalar ops")
            for rule, violations in result["rules"].items():
                for violation in violations:
                    print(f"  {rule}: {violation}")
        print(f"{broken} rule violations")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
