// Fused RAdam step for float32 tensors on CPU, as a MindSpore AOT custom op.
//
// One call is a whole step of one parameter group: it increments the group's step count in place,
// computes the step's scalars in double precision with the operations, in the order, of
// mindspore_radam/schedule.py (and so of torch's Python-float arithmetic), then updates every
// tensor in a single pass over memory: it reads theta, g, m, v and writes theta, m, v (28 bytes per
// element), in place through the input pointers. The per-element arithmetic is that of
// mindspore_radam/functional.py, in the same order, so the two implementations agree bit for bit
// (build with -ffp-contract=off: no FMA). The library is portable: it is built for the baseline
// instruction set and carries AVX2 and AVX-512 variants of the loop that it picks at run time.
//
// Inputs:  step (int64, 1 element, incremented in place), lr (float64 or float32, 1 element),
//          hyper (float64[kHyperSize], mindspore_radam.functional.HYPER_FIELDS),
//          finite (bool, 1 element: false skips the step, leaving everything as it was),
//          then N params, N grads, N exp_avg, N exp_avg_sq (float32).
// Output:  a float32[1] dummy that ties the op into the graph.
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace {

// mindspore_radam.functional.HYPER_RECORD, same names, same order (tests/cpu/test_hyper_record.py).
enum Hyper {
  kBeta1, kBeta2, kThreshold, kWeightDecay, kEps, kOneMinusBeta1, kOneMinusBeta2, kMaximize,
  kDecoupled, kDegeneratedToSgd, kHyperSize
};

struct Scalars {
  bool rect;
  float adaptive_step, sgd_step, decay;
};

// schedule.radam_scalars, line by line, in double precision.
Scalars StepScalars(int64_t step, double lr, const double *h) {
  const double t = static_cast<double>(step);
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
  s.sgd_step = static_cast<float>(!s.rect ? lr / bias_correction1 * h[kDegeneratedToSgd] : 0.0);
  // Decoupled decay only on steps that move theta (as functional.hypermap_radam).
  const bool moves = s.rect || h[kDegeneratedToSgd] != 0.0;
  s.decay = static_cast<float>(moves ? 1.0 - lr * h[kWeightDecay] : 1.0);
  return s;
}

int64_t NumElements(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= shape[i];
  return n;
}

enum DecayMode { kNoDecay, kL2, kDecoupledDecay };

// The per-element update with every branch resolved at compile time, so the loop vectorizes.
// Same operations, in the same order, as functional._radam_update_tensor. Always inlined into one
// function per instruction set below, where it is vectorized for that set.
template <bool kMaximize, DecayMode kDecayMode, bool kRect>
inline __attribute__((always_inline)) void UpdateBody(const Scalars &s, const double *h, float *__restrict__ theta,
                                                      const float *__restrict__ grad, float *__restrict__ exp_avg,
                                                      float *__restrict__ exp_avg_sq, int64_t n) {
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

// One variant per instruction set, chosen at run time (ActiveIsa): the library runs on any x86-64
// CPU, and uses AVX2 or AVX-512 only where the CPU has them. No variant enables FMA and the build
// uses -ffp-contract=off, so all of them round exactly alike: bit-identical results.
enum Isa { kBaseline, kAvx2, kAvx512, kIsaCount };
const char *const kIsaNames[kIsaCount] = {"baseline", "avx2", "avx512"};

#define RADAM_LOOP_PARAMS                                                                                  \
  const Scalars &s, const double *h, float *__restrict__ theta, const float *__restrict__ grad,            \
      float *__restrict__ exp_avg, float *__restrict__ exp_avg_sq, int64_t n
#define RADAM_LOOP_ARGS s, h, theta, grad, exp_avg, exp_avg_sq, n

struct Baseline {  // x86-64's SSE2, or the target's baseline (NEON on aarch64)
  template <bool kMaximize, DecayMode kDecayMode, bool kRect>
  static void Run(RADAM_LOOP_PARAMS) { UpdateBody<kMaximize, kDecayMode, kRect>(RADAM_LOOP_ARGS); }
};
#if defined(__x86_64__) || defined(__i386__)
#define RADAM_X86 1
struct Avx2 {
  template <bool kMaximize, DecayMode kDecayMode, bool kRect>
  __attribute__((target("avx2"))) static void Run(RADAM_LOOP_PARAMS) {
    UpdateBody<kMaximize, kDecayMode, kRect>(RADAM_LOOP_ARGS);
  }
};
struct Avx512 {
  template <bool kMaximize, DecayMode kDecayMode, bool kRect>
  __attribute__((target("avx512f"))) static void Run(RADAM_LOOP_PARAMS) {
    UpdateBody<kMaximize, kDecayMode, kRect>(RADAM_LOOP_ARGS);
  }
};
#else
using Avx2 = Baseline;  // never chosen: IsaSupported is false for it
using Avx512 = Baseline;
#endif

using LoopFn = void (*)(const Scalars &, const double *, float *, const float *, float *, float *, int64_t);

template <class Variant, bool kMaximize, DecayMode kDecayMode>
LoopFn PickRect(bool rect) {
  return rect ? Variant::template Run<kMaximize, kDecayMode, true> : Variant::template Run<kMaximize, kDecayMode, false>;
}

template <class Variant, bool kMaximize>
LoopFn PickDecay(DecayMode mode, bool rect) {
  switch (mode) {
    case kL2: return PickRect<Variant, kMaximize, kL2>(rect);
    case kDecoupledDecay: return PickRect<Variant, kMaximize, kDecoupledDecay>(rect);
    default: return PickRect<Variant, kMaximize, kNoDecay>(rect);
  }
}

template <class Variant>
LoopFn PickVariantLoop(DecayMode mode, bool maximize, bool rect) {
  return maximize ? PickDecay<Variant, true>(mode, rect) : PickDecay<Variant, false>(mode, rect);
}

bool IsaSupported(int isa) {
  if (isa == kBaseline) return true;
#ifdef RADAM_X86
  __builtin_cpu_init();
  if (isa == kAvx2) return __builtin_cpu_supports("avx2");
  if (isa == kAvx512) return __builtin_cpu_supports("avx512f");
#endif
  return false;
}

// The widest supported set, unless MINDSPORE_RADAM_ISA names a supported one.
int DetectIsa() {
  const char *wanted = std::getenv("MINDSPORE_RADAM_ISA");
  if (wanted != nullptr) {
    for (int isa = 0; isa < kIsaCount; ++isa) {
      if (std::strcmp(wanted, kIsaNames[isa]) == 0 && IsaSupported(isa)) return isa;
    }
  }
  for (int isa = kIsaCount - 1; isa > kBaseline; --isa) {
    if (IsaSupported(isa)) return isa;
  }
  return kBaseline;
}

std::atomic<int> g_isa{-1};
std::atomic<long long> g_isa_calls[kIsaCount];  // kernel calls per variant, for tests

int ActiveIsa() {
  int isa = g_isa.load(std::memory_order_relaxed);
  if (isa < 0) {
    isa = DetectIsa();
    g_isa.store(isa, std::memory_order_relaxed);
  }
  return isa;
}

LoopFn PickLoop(const Scalars &s, const double *h) {
  const DecayMode mode = h[kWeightDecay] == 0.0 ? kNoDecay : (h[kDecoupled] != 0.0 ? kDecoupledDecay : kL2);
  const bool maximize = h[kMaximize] != 0.0;
  const int isa = ActiveIsa();
  g_isa_calls[isa].fetch_add(1, std::memory_order_relaxed);
  switch (isa) {
    case kAvx512: return PickVariantLoop<Avx512>(mode, maximize, s.rect);
    case kAvx2: return PickVariantLoop<Avx2>(mode, maximize, s.rect);
    default: return PickVariantLoop<Baseline>(mode, maximize, s.rect);
  }
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
  const bool lr_is_double = std::strcmp(dtypes[1], "float64") == 0;
  if ((!lr_is_double && std::strcmp(dtypes[1], "float32") != 0) || NumElements(ndims[1], shapes[1]) != 1) return 3;
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
  const double lr = lr_is_double ? *static_cast<const double *>(params[1])
                                 : static_cast<double>(*static_cast<const float *>(params[1]));
  const Scalars s = StepScalars(*step, lr, h);
  const LoopFn update = PickLoop(s, h);
  const int n = (n_inputs - kFirstTensor) / 4;
  for (int i = 0; i < n; ++i) {
    const int p = kFirstTensor + i, g = p + n, m = p + 2 * n, v = p + 3 * n;
    update(s, h, static_cast<float *>(params[p]), static_cast<const float *>(params[g]),
           static_cast<float *>(params[m]), static_cast<float *>(params[v]), NumElements(ndims[p], shapes[p]));
  }
  return 0;
}

// Which instruction-set variant runs the loop: for tests, benchmarks and diagnosis (ctypes).
extern "C" const char *RAdamIsaName(int isa) { return isa >= 0 && isa < kIsaCount ? kIsaNames[isa] : ""; }
extern "C" int RAdamIsaCount() { return kIsaCount; }
extern "C" int RAdamIsaSupported(int isa) { return isa >= 0 && isa < kIsaCount && IsaSupported(isa) ? 1 : 0; }
extern "C" int RAdamActiveIsa() { return ActiveIsa(); }
extern "C" long long RAdamIsaCalls(int isa) {
  return isa >= 0 && isa < kIsaCount ? g_isa_calls[isa].load(std::memory_order_relaxed) : -1;
}
// Forces variant `isa` (if supported; returns 0) or, with -1, goes back to detection. Returns -1 if
// `isa` is not supported by this CPU.
extern "C" int RAdamForceIsa(int isa) {
  if (isa == -1) {
    g_isa.store(DetectIsa(), std::memory_order_relaxed);
    return 0;
  }
  if (isa < 0 || isa >= kIsaCount || !IsaSupported(isa)) return -1;
  g_isa.store(isa, std::memory_order_relaxed);
  return 0;
}
