"""Mutation check of the test suite: applies deliberate bugs to a temporary copy of the project, one at
a time, runs the tests that should catch each, and reports which test killed it. Every mutant must be
killed (the exit status is 0 only then).

    python scripts/mutation_check.py                 # all mutants; writes docs/mutation_check.md
    python scripts/mutation_check.py --fast          # the quick subset CI runs
    python scripts/mutation_check.py --only maximize_sign_lost

A mutant is killed when pytest reports a failing test (exit status 1) within the mutant's selection;
a collection error or an empty selection counts as survived, so a broken mutant can't pass as killed.
C++ mutants rebuild the kernel in the copy. The copy imports its own package (checked before each run).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "mutation_check.md")
KERNEL_FLAGS = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-std=c++17", "-shared", "-fPIC"]


@dataclass(frozen=True)
class Mutant:
    name: str
    what: str
    path: str      # relative to the project root
    old: str       # must occur exactly once
    new: str
    tests: tuple   # pytest arguments: node ids / files and options such as -k
    fast: bool = False


SUITE = "tests/cpu/test_suite_cpu.py"
# engine._register's body, and the same with the records registered after the state.
REGISTER_RECORDS_FIRST = (
    '        exp_avg, exp_avg_sq, kahan_comp, steps, records = new\n'
    '        self.hyperparameters = ParameterTuple(tuple(self.hyperparameters) + tuple(records))\n'
    '        self.exp_avg, self.exp_avg_sq, self.kahan_comp, self.steps = (\n'
    '            ParameterTuple(tuple(old) + tuple(added)) for old, added in zip(\n'
    '                (self.exp_avg, self.exp_avg_sq, self.kahan_comp, self.steps), (exp_avg, exp_avg_sq, kahan_comp, steps)))\n'
)
REGISTER_RECORDS_LAST = (
    '        exp_avg, exp_avg_sq, kahan_comp, steps, records = new\n'
    '        self.exp_avg, self.exp_avg_sq, self.kahan_comp, self.steps = (\n'
    '            ParameterTuple(tuple(old) + tuple(added)) for old, added in zip(\n'
    '                (self.exp_avg, self.exp_avg_sq, self.kahan_comp, self.steps), (exp_avg, exp_avg_sq, kahan_comp, steps)))\n'
    '        self.hyperparameters = ParameterTuple(tuple(self.hyperparameters) + tuple(records))\n'
)
EXAMPLES = "tests/cpu/test_examples_cpu.py"
DISTRIBUTED = "tests/cpu/test_distributed_cpu.py"

MUTANTS = (
    Mutant("rectified_term_dropped", "r_t left out of the adaptive step (portable schedule)",
           "mindspore_radam/schedule.py", "lr * r_t * ops.sqrt(bias_correction2)", "lr * ops.sqrt(bias_correction2)",
           (SUITE, "-k", "matches_float64_reference_every_step and hypermap"), fast=True),
    Mutant("kernel_rectified_term_dropped", "r_t left out of the adaptive step (fused kernel)",
           "mindspore_radam/csrc/radam_cpu.cc", "lr * r_t * std::sqrt(bias_correction2)",
           "lr * std::sqrt(bias_correction2)",
           (SUITE, "-k", "matches_float64_reference_every_step and fused")),
    Mutant("sqrt_bias_correction2_dropped", "sqrt(1 - beta2^t) left out",
           "mindspore_radam/schedule.py", "lr * r_t * ops.sqrt(bias_correction2) / bias_correction1",
           "lr * r_t / bias_correction1",
           (SUITE, "-k", "matches_float64_reference_every_step and hypermap")),
    Mutant("beta1_swapped_in_first_moment", "m = m + beta1 (g - m) instead of (1 - beta1)",
           "mindspore_radam/functional.py", "one_minus_beta1=1.0 - beta1,", "one_minus_beta1=beta1,",
           (SUITE, "-k", "matches_float64_reference_every_step"), fast=True),
    Mutant("float32_step_count", "the schedule reads t through float32",
           "mindspore_radam/schedule.py", "t = ops.cast(step, mstype.float64)",
           "t = ops.cast(ops.cast(step, mstype.float32), mstype.float64)",
           (SUITE, "-k", "step_count_exact or step_scalars_equal")),
    Mutant("threshold_ignored", "rectification at rho_t > 5 whatever threshold says",
           "mindspore_radam/schedule.py", "rect = rho_t > threshold", "rect = rho_t > float64(5.0)",
           (SUITE, "-k", "matches_float64_reference_every_step and hypermap")),
    Mutant("degenerated_to_sgd_ignored", "SGD steps even with degenerated_to_sgd=False",
           "mindspore_radam/schedule.py", "lr / bias_correction1 * float64(degenerated_to_sgd))",
           "lr / bias_correction1)",
           (SUITE, "-k", "matches_float64_reference_every_step and hypermap")),
    Mutant("decay_modes_swapped", "L2 applied as decoupled decay and vice versa",
           "mindspore_radam/functional.py", "        if decoupled_weight_decay:\n            theta_next = theta",
           "        if not decoupled_weight_decay:\n            theta_next = theta",
           (SUITE, "-k", "matches_float64_reference_every_step and hypermap")),
    Mutant("maximize_sign_lost", "maximize=True descends",
           "mindspore_radam/functional.py", "    if maximize:\n        grad = -grad", "    if maximize:\n        grad = grad",
           (SUITE, "-k", "matches_float64_reference_every_step and hypermap"), fast=True),
    Mutant("eps_inside_sqrt", "sqrt(v + eps) instead of sqrt(v) + eps",
           "mindspore_radam/functional.py", "ops.sqrt(v) + _scalar(eps, dtype)", "ops.sqrt(v + _scalar(eps, dtype))",
           (SUITE, "-k", "matches_float64_reference_every_step and hypermap")),
    Mutant("half_precision_in_param_dtype", "float16/bfloat16 updates computed in the parameter's dtype",
           "mindspore_radam/functional.py",
           "    if dtype == mstype.float16 or dtype == mstype.bfloat16:\n        return mstype.float32",
           "    if dtype == mstype.float16 or dtype == mstype.bfloat16:\n        return dtype",
           (SUITE, "-k", "half_precision_matches_rounding_reference")),
    Mutant("kahan_compensation_dropped", "the Kahan buffer never carries anything",
           "mindspore_radam/functional.py", "comp_next = compensated - (rounded - theta)",
           "comp_next = compensated * 0", (SUITE, "-m", "extended or not extended", "-k", "kahan")),
    Mutant("grads_finite_not_gating_moments", "an overflowed step still writes the moments",
           "mindspore_radam/functional.py",
           "    if gated:\n        m = ops.select(finite, m, ops.cast(exp_avg, m.dtype))",
           "    if False:\n        m = ops.select(finite, m, ops.cast(exp_avg, m.dtype))",
           (SUITE, "-k", "non_finite_steps_change_nothing")),
    Mutant("lookahead_alpha_complemented", "Lookahead pulls by 1 - alpha",
           "mindspore_radam/lookahead.py", "pulled = slow + ops.cast(alpha, slow.dtype) * (param - slow)",
           "pulled = slow + (1 - ops.cast(alpha, slow.dtype)) * (param - slow)",
           (SUITE, "-k", "lookahead_matches_reference")),
    Mutant("warmup_off_by_one", "WarmupCosineLR warms up one step too long",
           "mindspore_radam/lr_scheduler.py", "warm = t < self._warmup", "warm = t <= self._warmup",
           (SUITE, "-k", "new_scheduler_matches_reference")),
    Mutant("one_cycle_pct_start_ignored", "OneCycleLR peaks at 30% whatever pct_start says",
           "mindspore_radam/lr_scheduler.py",
           "            phases = ((float(pct_start * total_steps) - 1, \"initial_lr\", \"max_lr\"),\n"
           "                      (float(2 * pct_start * total_steps) - 2,",
           "            phases = ((float(0.3 * total_steps) - 1, \"initial_lr\", \"max_lr\"),\n"
           "                      (float(2 * 0.3 * total_steps) - 2,",
           (SUITE, "-k", "new_scheduler_matches_reference or one_cycle")),
    Mutant("example_gradient_reducer_removed", "the example's data-parallel step skips the all-reduce",
           "mindspore_radam/examples/training.py", "                grads = reducer(grads)",
           "                grads = grads", (DISTRIBUTED, "-m", "extended", "-k", "example_ranks_agree")),
    Mutant("graph_gradient_check_skipped", "graph code does not check the gradient tuple",
           "mindspore_radam/radam.py",
           "        live.note_inlined(self._live_key)\n"
           "        _validation.check_gradients(gradients, self._expected_grads, self._names)",
           "        live.note_inlined(self._live_key)",
           (SUITE, "-k", "bad_gradients_rejected_in_graph_code")),
    Mutant("checkpoint_without_step_count", "the example's checkpoint leaves out the step counts",
           "mindspore_radam/examples/training.py",
           "entries = [{\"name\": p.name, \"data\": p} for p in self.optimizer.get_parameters() if p.size > 0]",
           "entries = [{\"name\": p.name, \"data\": p} for p in self.optimizer.get_parameters() "
           "if p.size > 0 and not p.name.startswith(\"step.\")]",
           (EXAMPLES, "-m", "extended", "-k", "resume_is_bit_identical")),
    Mutant("nn_loss_scale_ignored", "nn.RAdam does not divide the gradients by loss_scale",
           "mindspore_radam/nn.py", "        if self.need_scale:  #", "        if False:  #",
           (SUITE, "-k", "nn_loss_scale_divides")),
    Mutant("nn_dynamic_lr_stuck", "nn.RAdam reads the learning rate of step 0 forever",
           "mindspore_radam/nn.py", "        self.assignadd(self.global_step, self.global_step_increase_tensor)\n",
           "", (SUITE, "-k", "nn_dynamic_learning_rates and hypermap and graph")),
    # Writes between steps (mindspore_radam.live) and the reported-bug batch.
    Mutant("set_data_detaches", "loads and set_data give Parameters new storage again",
           "mindspore_radam/_internals.py", "    param.assign_value = types.MethodType(method, param)\n    return True",
           "    return True", (SUITE, "-k", "in_process_rollback and hypermap and jit"), fast=True),
    Mutant("group_write_not_applied", "param_groups[i][key] = value only changes the dict",
           "mindspore_radam/live.py",
           "            items.update(owner._set_group_values(self._group_id, live_items))",
           "            pass",
           (SUITE, "-k", "a_value_written and hypermap and pynative and (betas or eps)")),
    Mutant("hyperparameters_baked_into_graph", "the update reads the group's values as compile-time constants",
           "mindspore_radam/radam.py",
           "    def _group_hyper(self, group_id, context):\n        return self.hyperparameters[group_id]",
           "    def _group_hyper(self, group_id, context):\n        return group_hyper(self._options[group_id])",
           (SUITE, "-k", "a_value_written and hypermap and jit and betas")),
    Mutant("structural_switch_not_recompiled", "maximize switched between calls keeps the old compiled step",
           "mindspore_radam/engine.py", "    def _recompile(self):\n        live.recompile(self)",
           "    def _recompile(self):\n        pass", (SUITE, "-k", "a_value_written and hypermap and pynative and maximize")),
    Mutant("inlined_switch_not_refused", "a switch the caller's graph can't follow is accepted silently",
           "mindspore_radam/engine.py", "        if changed and live.is_inlined(self):",
           "        if False:", (SUITE, "-k", "a_value_written and hypermap and jit and maximize")),
    Mutant("empty_group_stepped", "an empty group's step count advances",
           "mindspore_radam/engine.py", "            if not members or not self._active[lead]:",
           "            if (not members and False) or not self._active[lead]:", (SUITE, "-k", "empty_groups")),
    Mutant("float64_read_back_through_assign_add", "float64 parameters take the in-place AssignAdd path",
           "mindspore_radam/functional.py", "    if not gated and param.dtype == mstype.float32 and",
           "    if not gated and compute_dtype(param.dtype) == param.dtype and",
           (SUITE, "-k", "float64_parameters_match and lr_0.1")),
    Mutant("float32_learning_rate", "the learning rate is stored in float32",
           "mindspore_radam/radam.py", "        return Parameter(Tensor(float(learning_rate), mstype.float64), name)",
           "        return Parameter(Tensor(float(learning_rate), mstype.float32).astype(mstype.float64), name)",
           (SUITE, "-k", "float64_parameters_match and lr_0.1")),
    Mutant("complex_parameters_accepted", "unsupported parameter dtypes pass construction",
           "mindspore_radam/_validation.py", "        if param.dtype not in SUPPORTED_DTYPES:",
           "        if False:", (SUITE, "-k", "bad_input and (complex or int32)")),
    Mutant("no_sgd_fallback_still_decays", "degenerated_to_sgd=False still applies decoupled decay",
           "mindspore_radam/functional.py", "hyper[H.degenerated_to_sgd] != 0),",
           "hyper[H.degenerated_to_sgd] == hyper[H.degenerated_to_sgd]),",
           (SUITE, "-k", "matches_float64_reference_every_step and hypermap and no_sgd_fallback")),
    Mutant("kernel_no_sgd_fallback_still_decays", "the kernel decays on skipped steps",
           "mindspore_radam/csrc/radam_cpu.cc", "  const bool moves = s.rect || h[kDegeneratedToSgd] != 0.0;",
           "  const bool moves = true;",
           (SUITE, "-k", "matches_float64_reference_every_step and fused and no_sgd_fallback")),
    Mutant("lookahead_slow_weights_at_construction", "Lookahead never takes the slow weights at the first step",
           "mindspore_radam/lookahead.py", "        if self.lookahead_step == 0:", "        if self.lookahead_step < 0:",
           (SUITE, "-k", "slow_weights_start_from")),
    Mutant("lookahead_group_added_not_recompiled", "Lookahead's compiled sync ignores a group added mid-run",
           "mindspore_radam/lookahead.py", "        live.keep_in_place(self.slow_weights)\n        live.recompile(self)",
           "        live.keep_in_place(self.slow_weights)", (SUITE, "-k", "lookahead_group_added_mid_run")),
    Mutant("lazy_parameters_not_kept_in_place", "Parameters created uninitialized keep no storage on loads",
           "mindspore_radam/live.py", "    if not getattr(param, \"_radam_materialized\", True):",
           "    if True:", (SUITE, "-k", "no_init_parameters")),
    # MindSpore's semantics on the user's Parameters (mindspore_radam.live).
    Mutant("weights_patched_again", "the optimizer makes set_data write in place on the network's weights",
           "mindspore_radam/engine.py",
           "live.keep_in_place((p for p in self.get_parameters() if id(p) not in weight_ids), owner=self)",
           "live.keep_in_place(self.get_parameters(), owner=self)",
           (SUITE, "-k", "ema_swap_restores and core")),
    Mutant("storage_not_followed", "a call from Python keeps updating a weight's old storage after set_data",
           "mindspore_radam/live.py", "                f\"the existing storage.\", RuntimeWarning, stacklevel=3)\n            recompile(cell)",
           "                f\"the existing storage.\", RuntimeWarning, stacklevel=3)",
           (SUITE, "-k", "eager_step_after_set_data")),
    Mutant("name_fallback_accepted", "the loader's name fallback loads exp_avg.weight into weight",
           "mindspore_radam/live.py", "    if arguments is None or not isinstance(arguments[0], dict)",
           "    if True or arguments is None or not isinstance(arguments[0], dict)",
           (SUITE, "-k", "optimizer_only_checkpoint")),
    Mutant("group_ior_dict_only", "group |= {...} changes the dict but not the device value",
           "mindspore_radam/live.py", "        self.update(other)\n        return self",
           "        return dict.__ior__(self, other)", (SUITE, "-k", "every_mutating_path")),
    Mutant("inlined_state_load_silent", "a state load the inlined step can't pair with the weights says nothing",
           "mindspore_radam/live.py", "    if moved:\n        cell._radam_warned_storage",
           "    if False:\n        cell._radam_warned_storage", (SUITE, "-k", "state_load_into_an_inlined")),
    Mutant("scheduler_last_epoch_detaches", "our schedulers' last_epoch gets new storage on set_data",
           "mindspore_radam/lr_scheduler.py", "        live.keep_in_place([self.last_epoch])", "        pass",
           (SUITE, "-k", "scheduler_rollback_inside_a_jit_step and ours")),
    Mutant("to_float_reaches_update", "to_float on a Cell holding ours casts the float64 update",
           "mindspore_radam/live.py", "if key not in (\"fp16\", \"fp32\", \"bf16\")}", "if True}",
           (SUITE, "-k", "to_float_on_a_cell")),
    Mutant("state_reshape_accepted", "a value of another shape loaded into the optimizer's state only warns",
           "mindspore_radam/live.py", "        if isinstance(value, Tensor) and owner is not None:",
           "        if False:", (SUITE, "-k", "another_shape_for_the_optimizers_state")),
    # The group engine behind both front doors (mindspore_radam.engine).
    Mutant("state_dtype_ignored", "state_dtype='param' keeps float32 state for half-precision parameters",
           "mindspore_radam/engine.py", "    return dtype if state_dtype == \"param\" else compute_dtype(dtype)",
           "    return compute_dtype(dtype)", (SUITE, "-k", "state_dtype_param_keeps")),
    Mutant("nn_kahan_dropped", "nn.RAdam(kahan_summation=True) runs without compensation buffers",
           "mindspore_radam/nn.py", "state_dtype=state_dtype, kahan=kahan,", "state_dtype=state_dtype, kahan=False,",
           (SUITE, "-m", "extended or not extended", "-k", "nn_with_state_options and kahan")),
    Mutant("nn_betas_ignored", "nn.RAdam(betas=...) trains with the default betas",
           "mindspore_radam/nn.py", "        return _validation.check_betas(betas, \"betas\")",
           "        _validation.check_betas(betas, \"betas\")\n        return (0.9, 0.999)", (SUITE, "-k", "nn_betas_is")),
    Mutant("step_counts_renamed", "the step counts' checkpoint names change (older checkpoints lose them)",
           "mindspore_radam/engine.py", "name=f\"step.group_{group_id}\"", "name=f\"step_count.group_{group_id}\"",
           (SUITE, "-k", "release_before")),
    Mutant("tables_hard_coded", "the test tables name the implementations instead of reading the registry",
           "tests/common/harness.py", "IMPLEMENTATIONS = tuple(dispatch.IMPLEMENTATIONS)",
           "IMPLEMENTATIONS = (\"hypermap\", \"fused\")", ("tests/cpu/test_devices.py", "-k", "follows_the_registry")),
    Mutant("suite_module_not_collected", "the device folders miss the main shared suite module",
           "tests/common/devices.py", "glob(\"suite*.py\")", "glob(\"suite_*.py\")",
           ("tests/cpu/test_devices.py", "-k", "every_shared_suite_module")),
    Mutant("records_registered_last", "a checkpoint whose record is refused has written the moments first",
           "mindspore_radam/engine.py", REGISTER_RECORDS_FIRST, REGISTER_RECORDS_LAST,
           (SUITE, "-k", "refused_record_in_a_checkpoint")),
    Mutant("nn_setter_resets_structure", "an nn setter rebuilds every run from the shared options (a loaded run's "
           "maximize is lost without a recompile)",
           "mindspore_radam/nn.py", "group_options(dict(fields_of_hyper(group_hyper(options), \"nn.RAdam\"), **checked))",
           "group_options(dict(common, weight_decay=options[H.weight_decay]))",
           (SUITE, "-k", "setter_after_a_record_load")),
    Mutant("namesakes_accepted", "two different Parameters of one name are taken (their state would share "
           "checkpoint names)",
           "mindspore_radam/_validation.py", "        if other is not None:", "        if False:",
           (SUITE, "-k", "one_name")),
    # Where users train: sparse gradients, frozen Parameters; MindSpore's internals (canaries).
    Mutant("sparse_gradient_unnamed", "a sparse gradient in graph code fails without naming what to do",
           "mindspore_radam/_validation.py", "        if isinstance(shape, str):  #", "        if False:  #",
           (SUITE, "-k", "sparse_gradients_are_refused and jit")),
    Mutant("frozen_accepted_at_construction", "a requires_grad=False Parameter is accepted (and moved)",
           "mindspore_radam/_validation.py", "        if not param.requires_grad:", "        if False:",
           (SUITE, "-k", "frozen_parameters_are_refused_at_construction")),
    Mutant("frozen_between_calls_stepped", "a Parameter frozen after construction keeps being stepped",
           "mindspore_radam/engine.py", "        if frozen:\n", "        if False:\n",
           (SUITE, "-k", "frozen_between_calls or compiled_after_a_freeze")),
    Mutant("dynamic_shapes_unseen", "a graph compiled with dynamic-shape inputs runs the fused kernel (which fails "
           "inside MindSpore there)",
           "mindspore_radam/_internals.py", "                if _has_dynamic_shape(arguments):", "                if False:",
           (SUITE, "-k", "varying_batch_sizes")),
    Mutant("dynamic_shapes_demand_ignored", "fused=True in a dynamic-shape graph falls back instead of raising",
           "mindspore_radam/dispatch.py", "    if fused:\n        raise RuntimeError(\"fused=True, but this graph",
           "    if False:\n        raise RuntimeError(\"fused=True, but this graph",
           (SUITE, "-k", "cannot_run_dynamic_shapes")),
    Mutant("interleaved_runs_apart", "runs of one setting are stepped by a call each (mindcv's grouping: 56 calls)",
           "mindspore_radam/engine.py", "calls.setdefault((key, ", "calls.setdefault((group_id, key, ",
           (SUITE, "-k", "interleaved_groups_of_one_setting")),
    Mutant("interleaved_counts_left_behind", "the other runs of a call keep their step counts at 0",
           "mindspore_radam/engine.py", "            for group_id in call[1:]:\n                updated = ",
           "            for group_id in ():\n                updated = ",
           (SUITE, "-k", "interleaved_groups_of_one_setting and hypermap")),
    Mutant("lead_record_not_shared", "a record loaded into a setting's lead is not copied into its other runs",
           "mindspore_radam/engine.py", "        if lead != group_id:\n            call = (group_id,)",
           "        if True:\n            call = (group_id,)",
           (SUITE, "-k", "stepped_with_another")),
    Mutant("dynamic_portable_unrecorded", "a dynamic-shape graph's portable path is not recorded (a structural switch "
           "after it is silently dropped)",
           "mindspore_radam/dispatch.py", "    owner = live.owner(key)\n", "    owner = None\n",
           (SUITE, "-k", "structural_switch_after_a_dynamic")),
    Mutant("group_entries_of_other_parameters", "a checkpoint of an optimizer over other Parameters loads its group "
           "entries into other groups",
           "mindspore_radam/engine.py", "        if theirs and (theirs - ours or missing):", "        if False:",
           (SUITE, "-k", "over_other_parameters")),
    Mutant("executor_kind_misread", "every compile is taken for a jit function's (no GRAPH_MODE Cell)",
           "mindspore_radam/_internals.py", "    return kind == CELL_GRAPH_EXECUTOR", "    return False",
           ("tests/cpu/test_internals.py", "-k", "compiling_a_cell_graph")),
    Mutant("deepcopy_shares_map_helpers_broken", "deepcopy copies the Map/HyperMap helpers (and fails)",
           "mindspore_radam/_internals.py", "            memo[id(value)] = value", "            pass",
           (SUITE, "-k", "deepcopy")),
    Mutant("state_dict_keys_unexpected", "load_state_dict rejects the keys state_dict gives",
           "mindspore_radam/_cell.py", "if key not in loaded]", "if key not in ()]",
           (SUITE, "-k", "cell_methods")),
    # Calls from Python wait for nothing in MindSpore's pipeline.
    Mutant("frozen_flag_read_waiting", "the frozen check reads Parameter.requires_grad (waits for the pipeline)",
           "mindspore_radam/engine.py", "if not _internals.requires_grad(p)]", "if not p.requires_grad]",
           (SUITE, "-k", "does_not_wait")),
    Mutant("storage_read_waiting", "the storage check reads every weight's data_ptr (waits for the pipeline)",
           "mindspore_radam/live.py", "else _internals.storage_token(param) for param in params)",
           "else param.data_ptr() for param in params)", (SUITE, "-k", "does_not_wait")),
    Mutant("gradient_shapes_read_from_python", "a call from Python reads the gradients' shapes and dtypes",
           "mindspore_radam/_validation.py", "                         f\"optimizer.parameters order, but got {len(gradients)}\")\n"
           "    check_dense_gradients(gradients, names)\n\n\n",
           "                         f\"optimizer.parameters order, but got {len(gradients)}\")\n"
           "    check_dense_gradients(gradients, names)\n"
           "    if tuple((tuple(g.shape), g.dtype) for g in gradients) != expected:\n"
           "        _raise_first_mismatch(tuple((tuple(g.shape), g.dtype) for g in gradients), expected, names)\n\n\n",
           (SUITE, "-k", "does_not_wait")),
    Mutant("compiled_step_gradient_check_skipped", "the step compiled for calls from Python does not check shapes",
           "mindspore_radam/radam.py", "        _validation.check_gradients(gradients, self._expected_grads, self._names)\n"
           "        _validation.check_grads_finite(grads_finite)\n        return self._update_groups",
           "        return self._update_groups", (SUITE, "-k", "refused_while_the_step_compiles")),
    Mutant("storage_token_always_new", "the storage token is taken as moved whenever it is compared",
           "mindspore_radam/_internals.py", "    if token is other:\n        return True\n",
           "    if token is other:\n        return False\n", ("tests/cpu/test_internals.py", "-k", "storage_token")),
    # Situations from public bug reports.
    Mutant("group_params_edits_accepted", "in-place edits of a group's params list are accepted (and ignored)",
           "mindspore_radam/live.py", "    append = extend = insert = remove = pop = clear = sort = reverse = _refuse\n"
           "    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse\n", "",
           (SUITE, "-k", "edit_of_a_groups_params")),
    Mutant("list_gradients_inline_unconverted", "a jit step's list of gradients reaches the update as a list",
           "mindspore_radam/radam.py", "return self._update_in_graph(tuple(gradients), grads_finite, ())",
           "return self._update_in_graph(gradients, grads_finite, ())",
           (SUITE, "-k", "gradients_as_a_list and core")),
    Mutant("gradient_container_unchecked", "a dict or a single Tensor is taken for the gradient sequence",
           "mindspore_radam/_validation.py", '        if isinstance(gradients, kind):\n            raise TypeError(',
           '        if False:\n            raise TypeError(', (SUITE, "-k", "neither_tuple_nor_list")),
    Mutant("renamed_weights_compared_by_name", "a checkpoint's state is compared with the weights' current names",
           "mindspore_radam/engine.py", '        return [state.name[len("exp_avg."):] for state in self.exp_avg]',
           '        return [p.name for p in self._engine_weights()]', (SUITE, "-k", "renamed")),
    Mutant("group_layout_ignored", "a checkpoint's group layout is not read (its numbered entries load by number)",
           "mindspore_radam/engine.py", '        layout = checkpoint.get("group_layout")\n',
           '        layout = None\n        checkpoint = {}\n', (SUITE, "-k", "another_order or another_number")),
    Mutant("views_accepted", "a Parameter holding a view at an offset or transposed is taken as its own storage",
           "mindspore_radam/_internals.py", "    if param.storage_offset() != 0 or not param.is_contiguous():\n        return True\n",
           "    if param.storage_offset() != 0 or not param.is_contiguous():\n        return False\n",
           (SUITE, "-k", "holding_a_view")),
    # Devices.
    Mutant("bfloat16_on_gpu_accepted", "bfloat16 Parameters are built on GPU",
           "mindspore_radam/dispatch.py", '    if device_target != "GPU":\n        return\n',
           '    return\n', ("tests/cpu/test_devices.py", "-k", "bfloat16_on_gpu")),
    Mutant("zero_d_select_condition", "the step quotient's select takes the 0-d condition again",
           "mindspore_radam/functional.py", "return ops.select(_full(rect, m), ", "return ops.select(rect, ",
           ("tests/cpu/test_devices.py", "-k", "select_conditions")),
    Mutant("per_tensor_float64_op", "the step quotient goes through float64 per element (same bits on CPU)",
           "mindspore_radam/functional.py", "    scaled = _scalar(step_size, dtype) * m\n",
           "    scaled = ops.cast(ops.cast(_scalar(step_size, dtype), mstype.float64) * ops.cast(m, mstype.float64), "
           "dtype)\n",
           ("tests/cpu/test_devices.py", "-k", "select_conditions")),
    Mutant("device_folders_always_collected", "a CPU run collects the GPU and Ascend folders",
           "tests/conftest.py", "    return True if _absent_device(collection_path) else None",
           "    return None", ("tests/cpu/test_devices.py", "-m", "extended", "-k", "collects_no_items")),
)


def copy_project(dest):
    ignore = shutil.ignore_patterns(".venv", ".venv-*", ".git", "build", "dist", "*.egg-info", "__pycache__",
                                    ".pytest_cache", "rank_*", "msrun_logs*", "kernel_meta", "rewritten_network")
    shutil.copytree(ROOT, dest, ignore=ignore)


def build_kernel(project):
    source = os.path.join(project, "mindspore_radam", "csrc", "radam_cpu.cc")
    libraries = [n for n in os.listdir(os.path.join(ROOT, "mindspore_radam")) if n.startswith("_radam_cpu") and n.endswith(".so")]
    if not libraries:
        raise SystemExit("mutation_check: build the kernel first (pip install -e .)")
    target = os.path.join(project, "mindspore_radam", libraries[0])
    subprocess.run([os.environ.get("CXX", "g++"), *KERNEL_FLAGS, source, "-o", target], check=True)


def apply(project, mutant):
    path = os.path.join(project, mutant.path)
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    count = text.count(mutant.old)
    if count != 1:
        raise SystemExit(f"mutation_check: mutant {mutant.name}: the text to replace occurs {count} times in "
                         f"{mutant.path} (the code changed; update the mutant)")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text.replace(mutant.old, mutant.new))


def run_tests(project, mutant, timeout):
    env = dict(os.environ, PYTHONPATH=project, GLOG_v="3")
    probe = subprocess.run([sys.executable, "-c", "import mindspore_radam; print(mindspore_radam.__file__)"],
                           cwd=project, env=env, capture_output=True, text=True)
    if not probe.stdout.strip().startswith(project):
        raise SystemExit(f"mutation_check: the copy does not import its own package: {probe.stdout}{probe.stderr}")
    command = [sys.executable, "-m", "pytest", "-x", "-n", "0", "-q", "-p", "no:cacheprovider", "-rf", *mutant.tests]
    try:
        result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "survived (timeout)", None
    failed = re.findall(r"^FAILED (\S+)", result.stdout, re.MULTILINE)
    if result.returncode == 1 and failed:
        return "killed", failed[0].split("::", 1)[-1]
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-300:]
    return f"survived (pytest exit {result.returncode}: {summary})", None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="only the quick subset (CI)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these mutants")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per mutant's test run")
    parser.add_argument("--out", default=None, help=f"write the table here (default: {DOC} for a full run)")
    args = parser.parse_args(argv)
    mutants = [m for m in MUTANTS if (not args.fast or m.fast) and (not args.only or m.name in args.only)]
    if args.only and len(mutants) != len(args.only):
        parser.error(f"unknown mutant in {args.only}; known: {', '.join(m.name for m in MUTANTS)}")
    rows, survivors = [], []
    for mutant in mutants:
        with tempfile.TemporaryDirectory(prefix="mutant-") as tmp:
            project = os.path.join(tmp, "project")
            copy_project(project)
            apply(project, mutant)
            if mutant.path.endswith(".cc"):
                build_kernel(project)
            start = time.perf_counter()
            outcome, killer = run_tests(project, mutant, args.timeout)
            seconds = time.perf_counter() - start
        rows.append((mutant, outcome, killer, seconds))
        if outcome != "killed":
            survivors.append(mutant.name)
        print(f"{mutant.name:36s} {outcome:10s} {killer or '':70s} {seconds:6.1f} s", flush=True)
    table = ["| mutant | the bug | outcome | killed by | seconds |", "|---|---|---|---|---|"]
    table += [f"| `{m.name}` | {m.what} (`{m.path}`) | {outcome} | `{killer or '-'}` | {seconds:.0f} |"
              for m, outcome, killer, seconds in rows]
    out = args.out or (DOC if not args.fast and not args.only else None)
    if out:
        header = ("# Mutation check\n\n`python scripts/mutation_check.py` applies each deliberate bug below to a "
                  "temporary copy of the project and runs the tests that should catch it (`-x`: the first failure "
                  "kills it). Every mutant must be killed. `--fast` (run by the test suite) takes the marked "
                  "quick subset.\n\n")
        with open(out, "w", encoding="utf-8") as handle:
            handle.write(header + "\n".join(table) + "\n")
    print("\n".join(table))
    if survivors:
        print(f"mutation_check: {len(survivors)} mutant(s) survived: {', '.join(survivors)}", file=sys.stderr)
        return 1
    print(f"mutation_check: all {len(rows)} mutants killed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
