"""The device gate of the suites fails, never silently skips, where a device is required."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

from tests.common import devices
from tests.common.devices import require

DEVICE_TARGET = "CPU"
pytestmark = require(DEVICE_TARGET)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

BREAK_PROBE = '''
import mindspore.hal
def _broken(*args, **kwargs):
    raise RuntimeError("device probe broken on purpose")
mindspore.hal.is_available = _broken
'''


def collect(target, tmp_path, break_probe=False, **env_vars):
    env = {key: value for key, value in os.environ.items() if key != devices.REQUIRE_ENV}
    env.update(GLOG_v="3", PYTHONPATH=ROOT, **env_vars)
    if break_probe:
        (tmp_path / "sitecustomize.py").write_text(BREAK_PROBE)
        env["PYTHONPATH"] = str(tmp_path) + os.pathsep + ROOT
    return subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-n", "0", "-q", "-p", "no:cacheprovider", target],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_cpu_suite_fails_when_the_device_probe_breaks(tmp_path):
    result = collect("tests/cpu/test_suite_cpu.py", tmp_path, break_probe=True)
    assert result.returncode != 0
    assert "device probe broken on purpose" in result.stdout and "fails rather than skipping" in result.stdout


def test_cpu_suite_collects_with_a_working_probe(tmp_path):
    """Control for the test above: the same collection succeeds without the broken probe."""
    result = collect("tests/cpu/test_suite_cpu.py", tmp_path)
    assert result.returncode == 0, result.stdout[-2000:]


def test_missing_gpu_skips_by_default_and_fails_when_required(tmp_path):
    if devices.probe("GPU")[0]:
        pytest.skip("this machine has a GPU: the missing-device behaviour can't be observed")
    assert collect("tests/gpu/test_suite_gpu.py", tmp_path).returncode == 0
    required = collect("tests/gpu/test_suite_gpu.py", tmp_path, **{devices.REQUIRE_ENV: "GPU"})
    assert required.returncode != 0 and "no GPU device" in required.stdout


@pytest.mark.extended
def test_a_run_without_gpu_or_ascend_collects_no_items_of_theirs(tmp_path):
    """The default run shows CPU items only; the device folders come back where the device is required
    (control: then they are collected, and fail for want of the device)."""
    absent = [name for name, device in (("gpu", "GPU"), ("ascend", "Ascend")) if not devices.probe(device)[0]]
    if not absent:
        pytest.skip("this machine has both devices")
    result = collect("tests", tmp_path)
    assert result.returncode == 0, result.stdout[-2000:]
    items = [line for line in result.stdout.splitlines() if "::" in line]
    assert items and not any(line.startswith(tuple(f"tests/{name}/" for name in absent)) for line in items)
    assert any(line.startswith("tests/cpu/test_suite_cpu.py::") for line in items)
    folder = absent[0]
    required = collect(f"tests/{folder}/test_suite_{folder}.py", tmp_path,
                       **{devices.REQUIRE_ENV: {"gpu": "GPU", "ascend": "Ascend"}[folder]})
    assert required.returncode != 0 and "fails rather than skipping" in required.stdout
    whole = collect("tests", tmp_path, **{devices.REQUIRE_ENV: {"gpu": "GPU", "ascend": "Ascend"}[folder]})
    assert whole.returncode != 0 and f"tests/{folder}/" in whole.stdout


def test_every_shared_suite_module_is_collected():
    """Every tests/common/suite*.py reaches the device folders (found by name, no import list to edit)."""
    from tests.common.devices import shared_tests
    folder = pathlib.Path(__file__).parent.parent / "common"
    modules = {path.stem for path in folder.glob("suite*.py")}
    tests = shared_tests()
    assert {test.__module__.rsplit(".", 1)[1] for test in tests.values()} == modules
    # control: the main suite's reference comparison is among them
    assert "test_matches_float64_reference_every_step" in tests


REGISTER_TWIN = '''
from mindspore_radam import dispatch
dispatch.IMPLEMENTATIONS["twin"] = dispatch.Implementation(dispatch.IMPLEMENTATIONS["hypermap"].update, {"fused": False})
'''


def _implementation_tables(result):
    """{test function: the implementation names among its parameter ids} from a collection's output."""
    tables = {}
    for line in result.stdout.splitlines():
        if "[" not in line:
            continue
        function, ids = line.split("[", 1)
        tokens = set(ids.rstrip("]").replace("-", " ").split())
        tables.setdefault(function, set()).update(tokens & {"hypermap", "fused", "twin"})
    return {function: names for function, names in tables.items() if names}


def test_every_implementation_table_follows_the_registry(tmp_path):
    """An implementation registered in mindspore_radam.dispatch alone reaches every table that crosses the
    implementations (a third one, registered before collection, appears in each)."""
    (tmp_path / "sitecustomize.py").write_text(REGISTER_TWIN)
    env = {key: value for key, value in os.environ.items() if key != devices.REQUIRE_ENV}
    env.update(GLOG_v="3", PYTHONPATH=str(tmp_path) + os.pathsep + ROOT)
    result = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-n", "0", "-q", "-m", "", "-p",
                             "no:cacheprovider", "tests/cpu/test_suite_cpu.py"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:]
    tables = _implementation_tables(result)
    assert len(tables) > 20, sorted(tables)
    missed = sorted(function for function, names in tables.items() if "twin" not in names)
    assert not missed, f"tables that name implementations but not the registered third one: {missed}"


def _bf16_and_f32():
    import numpy as np  # pylint: disable=import-outside-toplevel
    from mindspore import Parameter, Tensor  # pylint: disable=import-outside-toplevel
    import mindspore.common.dtype as mstype  # pylint: disable=import-outside-toplevel
    return [Parameter(Tensor(np.ones((2, 3), np.float32), mstype.float32), name="w_f32"),
            Parameter(Tensor(np.ones((3,), np.float32), mstype.bfloat16), name="w_bf16")]


@pytest.mark.parametrize("door", ("core", "core-added", "nn"))
def test_bfloat16_on_gpu_is_refused_naming_what_works(monkeypatch, door):
    """Through the device seam (this build can't select a GPU): bfloat16 Parameters on GPU raise TypeError
    naming the Parameter and what works, before anything is built; control: float32/float16 build there, and
    bfloat16 builds on the CPU."""
    import mindspore.common.dtype as mstype  # pylint: disable=import-outside-toplevel
    from mindspore_radam import RAdam, dispatch  # pylint: disable=import-outside-toplevel
    from mindspore_radam.nn import RAdam as NNRAdam  # pylint: disable=import-outside-toplevel
    build = {"core": lambda p: RAdam(p, lr=0.1), "core-added": lambda p: RAdam(p[:1], lr=0.1).add_param_group(
        {"params": p[1:]}), "nn": lambda p: NNRAdam(p, learning_rate=0.1)}[door]
    build(_bf16_and_f32())  # control: on the CPU, bfloat16 is updated
    monkeypatch.setattr(dispatch, "current_device", lambda: "GPU")
    with pytest.raises(TypeError, match=r"'w_bf16' is bfloat16.*float16 or float32 on GPU.*Ascend or CPU"):
        build(_bf16_and_f32())
    params = _bf16_and_f32()
    params[1].set_dtype(mstype.float16)
    built = RAdam(params, lr=0.1) if door != "nn" else NNRAdam(params, learning_rate=0.1)
    assert set(built.implementations) == {dispatch.PORTABLE}  # the kernel is CPU's


GRAPH_AUDIT = pathlib.Path(ROOT) / "scripts" / "graph_audit.py"


def test_compiled_graphs_keep_gpu_select_conditions_and_no_per_tensor_float64():
    """scripts/graph_audit.py over both doors, called from Python and inlined, every dtype, grads_finite and
    Kahan: every Select's condition has its output's shape (GPU), and no float64 op runs per tensor unless
    the Parameter is float64 (Ascend's AI CPU). Its rules are checked on nodes written here (control)."""
    result = subprocess.run([sys.executable, str(GRAPH_AUDIT), "--json"], cwd=ROOT, capture_output=True, text=True,
                            timeout=600, env=dict(os.environ, GLOG_v="3", PYTHONPATH=ROOT))
    assert result.returncode in (0, 1), result.stderr[-3000:]
    findings = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(findings) == set(_audit_module().CASES)
    broken = {case: rules for case, found in findings.items() for rules in [found["rules"]] if any(rules.values())}
    assert not broken, f"compiled graphs break device rules: {broken}"
    assert all(found["nodes"] > 20 and found["float64_scalar_ops"] > 0 for found in findings.values())


def _audit_module():
    import importlib.util  # pylint: disable=import-outside-toplevel
    spec = importlib.util.spec_from_file_location("graph_audit", GRAPH_AUDIT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_graph_audit_rules_catch_what_they_name(tmp_path):
    """Control for the audit: a 0-d Select condition over a tensor, and a float64 op over a float32
    parameter's shape, written in MindSpore's IR format, are both reported; a scalar float64 op is counted."""
    audit = _audit_module()
    ir = tmp_path / "graph_build_0_1.ir"
    ir.write_text(
        "  %1(CNode_1) = PrimFunc_Select(%0, %2, %3) primitive_attrs: {}\n"
        "      : (<Tensor[Bool], ()>, <Tensor[Float32], (2, 3)>, <Tensor[Float32], (2, 3)>) -> (<Tensor[Float32], (2, 3)>)\n"
        "  %4(CNode_2) = PrimFunc_Mul(%1, %5) primitive_attrs: {}\n"
        "      : (<Tensor[Float64], (2, 3)>, <Tensor[Float64], ()>) -> (<Tensor[Float64], (2, 3)>)\n"
        "  %6(CNode_3) = PrimFunc_Pow(%7, %8) primitive_attrs: {}\n"
        "      : (<Tensor[Float64], ()>, <Tensor[Float64], ()>) -> (<Tensor[Float64], ()>)\n")
    nodes = audit.parse_ir(str(ir))
    assert [node[0] for node in nodes] == ["Select", "Mul", "Pow"]
    rules, scalar64 = audit.check_nodes(nodes, float64_params=False, record=(10,))
    assert len(rules["gpu_select_condition"]) == 1 and len(rules["per_tensor_float64"]) == 1 and scalar64 == 1
    assert audit.check_nodes(nodes, float64_params=True, record=(10,))[0]["per_tensor_float64"] == []
