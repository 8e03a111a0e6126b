// Fused RAdam step for float32 tensors on CPU, as a MindSpore AOT custom op.
//
// One call is a whole step of one parameter group: it increments the group's step count in place,
// computes the step's scalars in double precision with the operations, in the order, of
// mindspore_radam/schedule.py (and so of torch's Python-float arithmetic), then updates every
// tensor in a single pass over memory: it reads theta, g, m, v and writes theta, m, v (28 bytes per
// element), in place through the input pointers. The per-element arithmetic is that of
// mindspore_radam/functional.py, in the same order, so the two implementations agree bit for bit
// (build with -ffp-contract=off: no FMA).
//
// Inputs:  step (int64, 1 element, incremented in place), lr (float32, 1 element),
//          hyper (float64[kHyperSize], mindspore_radam.functional.HYPER_FIELDS),
//          finite (bool, 1 element: false skips the step, leaving everything as it was),
//          then N params, N grads, N exp_avg, N exp_avg_sq (float32).
// Output:  a float32[1] dummy that ties the op into the graph.
#include <cmath>
#include <cstdint>
#include <cstring>

namespace {

// The order of mindspore_radam.functional.HYPER_FIELDS.
enum Hyper {
  kBeta1, kBeta2, kThreshold, kWeightDecay, kEps, kOneMinusBeta1, kOneMinusBeta2, kMaximize,
  kDecoupled, kDegeneratedToSgd, kHyperSize
};

struct Scalars {
  bool rect;
  float adaptive_step, sgd_step, decay;
};

// schedule.radam_scalars, line by line, in double precision.
Scalars StepScalars(int64_t step, float lr_f32, const double *h) {
  const double t = static_cast<double>(step);
  const double lr = static_cast<double>(lr_f32);
  const double beta1_t = std::pow(h[kBeta1], t);
  const double beta2_t = std::pow(h[kBeta2], t);
  const double bias_correction1 = 1.0 - beta1_t;
  const double bias_correction2 = 1.0 - beta2_t;
  const double rho_inf = 2.0 / (1.0 - h[kBeta2]) - 1.0;
  const double rho_t = rho_inf - 2.0 * t * beta2_t / bias_correction2;
  Scalars s;
  s.rect = rho_t > h[kThreshold];
  const double r_t = std::sqrt((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t));
  s.adaptive_step = static_cast<float>(s.rect ? lr * r_t * std::sqrt(bias_correction2) / bias_correction1 : 0.0);
  s.sgd_step = static_cast<float>(!s.rect && h[kDegeneratedToSgd] != 0.0 ? lr / bias_correction1 : 0.0);
  s.decay = static_cast<float>(1.0 - lr * h[kWeightDecay]);
  return s;
}

int64_t NumElements(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= shape[i];
  return n;
}

enum DecayMode { kNoDecay, kL2, kDecoupledDecay };

// The per-element update with every branch resolved at compile time, so the loop vectorizes.
// Same operations, in the same order, as functional._radam_update_tensor.
template <bool kMaximize, DecayMode kDecayMode, bool kRect>
void UpdateLoop(const Scalars &s, const double *h, float *__restrict__ theta, const float *__restrict__ grad,
                float *__restrict__ exp_avg, float *__restrict__ exp_avg_sq, int64_t n) {
  const float step = kRect ? s.adaptive_step : s.sgd_step, decay = s.decay;
  const float beta2 = static_cast<float>(h[kBeta2]);
  const float one_minus_beta1 = static_cast<float>(h[kOneMinusBeta1]);
  const float one_minus_beta2 = static_cast<float>(h[kOneMinusBeta2]);
  const float eps = static_cast<float>(h[kEps]), weight_decay = static_cast<float>(h[kWeightDecay]);
  for (int64_t i = 0; i < n; ++i) {
    float g = kMaximize ? -grad[i] : grad[i];
    float p = theta[i];
    if (kDecayMode == kDecoupledDecay) p = p * decay;
    if (kDecayMode == kL2) g = g + weight_decay * p;
    const float m = exp_avg[i] + one_minus_beta1 * (g - exp_avg[i]);
    const float v = beta2 * exp_avg_sq[i] + one_minus_beta2 * (g * g);
    p = kRect ? p - step * m / (std::sqrt(v) + eps) : p - step * m;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    theta[i] = p;
  }
}

using LoopFn = void (*)(const Scalars &, const double *, float *, const float *, float *, float *, int64_t);

template <bool kMaximize, DecayMode kDecayMode>
LoopFn PickRect(bool rect) {
  return rect ? UpdateLoop<kMaximize, kDecayMode, true> : UpdateLoop<kMaximize, kDecayMode, false>;
}

template <bool kMaximize>
LoopFn PickDecay(DecayMode mode, bool rect) {
  switch (mode) {
    case kL2: return PickRect<kMaximize, kL2>(rect);
    case kDecoupledDecay: return PickRect<kMaximize, kDecoupledDecay>(rect);
    default: return PickRect<kMaximize, kNoDecay>(rect);
  }
}

LoopFn PickLoop(const Scalars &s, const double *h) {
  const DecayMode mode = h[kWeightDecay] == 0.0 ? kNoDecay : (h[kDecoupled] != 0.0 ? kDecoupledDecay : kL2);
  return h[kMaximize] != 0.0 ? PickDecay<true>(mode, s.rect) : PickDecay<false>(mode, s.rect);
}

}  // namespace

extern "C" int RAdamFusedStep(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                              void *stream, void *extra) {
  (void)stream;
  (void)extra;
  constexpr int kFirstTensor = 4;  // step, lr, hyper, finite
  const int n_inputs = nparam - 1;  // the last one is the output
  if (n_inputs < kFirstTensor || (n_inputs - kFirstTensor) % 4 != 0) return 1;
  if (std::strcmp(dtypes[0], "int64") != 0 || NumElements(ndims[0], shapes[0]) != 1) return 2;
  if (std::strcmp(dtypes[1], "float32") != 0 || NumElements(ndims[1], shapes[1]) != 1) return 3;
  if (std::strcmp(dtypes[2], "float64") != 0 || NumElements(ndims[2], shapes[2]) != kHyperSize) return 4;
  if (std::strcmp(dtypes[3], "bool") != 0 || NumElements(ndims[3], shapes[3]) != 1) return 6;
  for (int k = kFirstTensor; k < n_inputs; ++k) {
    if (std::strcmp(dtypes[k], "float32") != 0) return 5;
  }
  static_cast<float *>(params[nparam - 1])[0] = 0.0f;
  if (!*static_cast<const bool *>(params[3])) return 0;  // a skipped step: nothing changes
  int64_t *step = static_cast<int64_t *>(params[0]);
  const double *h = static_cast<const double *>(params[2]);
  *step += 1;
  const Scalars s = StepScalars(*step, *static_cast<const float *>(params[1]), h);
  const LoopFn update = PickLoop(s, h);
  const int n = (n_inputs - kFirstTensor) / 4;
  for (int i = 0; i < n; ++i) {
    const int p = kFirstTensor + i, g = p + n, m = p + 2 * n, v = p + 3 * n;
    update(s, h, static_cast<float *>(params[p]), static_cast<const float *>(params[g]),
           static_cast<float *>(params[m]), static_cast<float *>(params[v]), NumElements(ndims[p], shapes[p]));
  }
  return 0;
}
