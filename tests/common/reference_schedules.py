"""Float64 reference learning rates for mindspore_radam.lr_scheduler, one Python function per
schedule, written from torch.optim.lr_scheduler.OneCycleLR's algorithm and from the formulas of
the other two (Hugging Face's get_cosine_schedule_with_warmup, fastai's fit_flat_cos). They share
no code with the package. Each returns the rate after `t` scheduler steps."""
import math


def _cos(start, end, pct):
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1.0)


def _linear(start, end, pct):
    return (end - start) * pct + start


def one_cycle(t, max_lr, total_steps, pct_start=0.3, anneal_strategy="cos", div_factor=25.0,
              final_div_factor=1e4, three_phase=False):
    initial = max_lr / div_factor
    rates = {"initial": initial, "max": max_lr, "min": initial / final_div_factor}
    if three_phase:
        phases = [(float(pct_start * total_steps) - 1, "initial", "max"),
                  (float(2 * pct_start * total_steps) - 2, "max", "initial"),
                  (total_steps - 1, "initial", "min")]
    else:
        phases = [(float(pct_start * total_steps) - 1, "initial", "max"), (total_steps - 1, "max", "min")]
    anneal = _cos if anneal_strategy == "cos" else _linear
    start_step = 0
    for i, (end_step, start, end) in enumerate(phases):
        if t <= end_step or i == len(phases) - 1:
            return anneal(rates[start], rates[end], (t - start_step) / (end_step - start_step))
        start_step = end_step
    raise AssertionError("unreachable")


def warmup_cosine(t, base_lr, warmup_steps, total_steps, eta_min=0.0, warmup_start_factor=0.0):
    if t < warmup_steps:
        return base_lr * (warmup_start_factor + (1.0 - warmup_start_factor) * t / warmup_steps)
    if t >= total_steps:
        return eta_min
    progress = (t - warmup_steps) / (total_steps - warmup_steps)
    return eta_min + (base_lr - eta_min) * 0.5 * (1.0 + math.cos(math.pi * progress))


def flat_cosine(t, base_lr, flat_steps, total_steps, eta_min=0.0):
    if t <= flat_steps:
        return base_lr
    if t >= total_steps:
        return eta_min
    progress = (t - flat_steps) / (total_steps - flat_steps)
    return eta_min + (base_lr - eta_min) * 0.5 * (1.0 + math.cos(math.pi * progress))
