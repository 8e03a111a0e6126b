"""An independent float64 NumPy reference of RAdam, written from the paper's algorithm
(Liu et al. 2019, Algorithm 2) with torch.optim.RAdam's extensions (maximize, L2 or decoupled weight
decay, the SGD-with-momentum fallback). It shares no code with mindspore_radam."""
import math

import numpy as np


def step_scalars(t, beta1, beta2):
    """(1 - beta1^t, 1 - beta2^t, rho_t, r_t or None) in float64, straight from the paper."""
    rho_inf = 2.0 / (1.0 - beta2) - 1.0
    bias1 = 1.0 - beta1 ** t
    bias2 = 1.0 - beta2 ** t
    rho_t = rho_inf - 2.0 * t * beta2 ** t / bias2
    numerator = (rho_t - 4.0) * (rho_t - 2.0) * rho_inf
    denominator = (rho_inf - 4.0) * (rho_inf - 2.0) * rho_t
    r_t = math.sqrt(numerator / denominator) if denominator != 0 and numerator / denominator >= 0 else None
    return bias1, bias2, rho_t, r_t


class ReferenceRAdam:
    """Float64 RAdam over groups of NumPy arrays, one step count per group."""

    DEFAULTS = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                    decoupled_weight_decay=False, maximize=False, threshold=5.0,
                    degenerated_to_sgd=True)

    def __init__(self, groups):
        """groups: list of dicts with 'params' (list of arrays) and optional hyperparameters."""
        self.groups = []
        for group in groups:
            full = dict(self.DEFAULTS)
            full.update(group)
            full["params"] = [np.array(p, dtype=np.float64) for p in group["params"]]
            full["m"] = [np.zeros_like(p) for p in full["params"]]
            full["v"] = [np.zeros_like(p) for p in full["params"]]
            full["t"] = 0
            self.groups.append(full)

    @property
    def params(self):
        return [p for group in self.groups for p in group["params"]]

    @params.setter
    def params(self, values):
        """Replaces the parameters (flat, in order), e.g. for a Lookahead sync."""
        values = list(values)
        for group in self.groups:
            group["params"] = [values.pop(0) for _ in group["params"]]
        assert not values, "more values than parameters"

    def step(self, grads, lrs=None):
        """grads: flat list in parameter order; lrs: optional per-group learning rates."""
        grads = list(grads)
        for index, group in enumerate(self.groups):
            lr = float(group["lr"] if lrs is None else lrs[index])
            beta1, beta2 = group["betas"]
            wd = group["weight_decay"]
            group["t"] += 1
            bias1, bias2, rho_t, r_t = step_scalars(group["t"], beta1, beta2)
            for i, theta in enumerate(group["params"]):
                g = np.array(grads.pop(0), dtype=np.float64)
                if group["maximize"]:
                    g = -g
                # The authors' code skips the whole update, decoupled decay included, on steps that
                # neither rectify nor fall back to SGD.
                moves = rho_t > group["threshold"] or group["degenerated_to_sgd"]
                if wd != 0:
                    if group["decoupled_weight_decay"]:
                        if moves:
                            theta = theta * (1.0 - lr * wd)
                    else:
                        g = g + wd * theta
                m = beta1 * group["m"][i] + (1.0 - beta1) * g
                v = beta2 * group["v"][i] + (1.0 - beta2) * g * g
                m_hat = m / bias1
                if rho_t > group["threshold"]:
                    l_t = math.sqrt(bias2) / (np.sqrt(v) + group["eps"])
                    theta = theta - lr * m_hat * r_t * l_t
                elif group["degenerated_to_sgd"]:
                    theta = theta - lr * m_hat
                group["params"][i], group["m"][i], group["v"][i] = theta, m, v
        assert not grads, "more gradients than parameters"


class ReferenceSGD:
    """Float64 SGD with momentum (torch.optim.SGD semantics, dampening 0): buf = g on the first
    step, then buf = momentum * buf + g; theta -= lr * buf."""

    def __init__(self, params, lr, momentum):
        self.params = [np.array(p, dtype=np.float64) for p in params]
        self.lr, self.momentum, self.bufs = lr, momentum, None

    def step(self, grads, lrs=None):
        lr = self.lr if lrs is None else float(lrs[0])
        grads = [np.array(g, dtype=np.float64) for g in grads]
        self.bufs = grads if self.bufs is None else [self.momentum * b + g for b, g in zip(self.bufs, grads)]
        self.params = [p - lr * b for p, b in zip(self.params, self.bufs)]


class ReferenceLookahead:
    """Float64 Lookahead (Zhang et al. 2019, Algorithm 1) around a reference optimizer that has
    `.params` and `.step(grads, lrs)`: every k inner steps, slow += alpha * (fast - slow), fast = slow."""

    def __init__(self, inner, k, alpha):
        self.inner, self.k, self.alpha = inner, k, alpha
        self.slow = None  # taken at the first step, as Ranger and TF Addons do
        self.count = 0

    @property
    def params(self):
        return self.inner.params

    def step(self, grads, lrs=None):
        if self.slow is None:
            self.slow = [p.copy() for p in self.inner.params]
        self.inner.step(grads, lrs=lrs)
        self.count += 1
        if self.count % self.k:
            return
        self.slow = [s + self.alpha * (f - s) for s, f in zip(self.slow, self.inner.params)]
        self.inner.params = [s.copy() for s in self.slow]


def round_to(dtype, x):
    """`x` rounded to nearest-even in `dtype` ("float16", "bfloat16", "float32"), back in float64."""
    x = np.asarray(x, dtype=np.float64)
    if dtype == "float16":
        return x.astype(np.float16).astype(np.float64)
    single = x.astype(np.float32)
    if dtype == "float32":
        return single.astype(np.float64)
    assert dtype == "bfloat16", dtype
    bits = np.atleast_1d(single).view(np.uint32).astype(np.uint64)
    bits = (bits + np.uint64(0x7FFF) + ((bits >> np.uint64(16)) & np.uint64(1))) & np.uint64(0xFFFF0000)
    return bits.astype(np.uint32).view(np.float32).astype(np.float64).reshape(x.shape)  # ties to even


class RoundingReference(ReferenceRAdam):
    """ReferenceRAdam whose parameters (and, optionally, moments) are stored in a low-precision
    dtype: each step is computed in float64, then rounded into storage, as a half-precision run
    computes in float32 and rounds into its parameters."""

    def __init__(self, groups, param_dtype, state_dtype="float32"):
        super().__init__(groups)
        self.param_dtype, self.state_dtype = param_dtype, state_dtype

    def step(self, grads, lrs=None):
        super().step(grads, lrs)
        for group in self.groups:
            group["params"] = [round_to(self.param_dtype, p) for p in group["params"]]
            group["m"] = [round_to(self.state_dtype, m) for m in group["m"]]
            group["v"] = [round_to(self.state_dtype, v) for v in group["v"]]
