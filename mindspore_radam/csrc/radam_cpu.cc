// Fused RAdam step for float32 tensors on CPU, as a MindSpore AOT custom op.
//
// One call updates every tensor of a parameter group in a single pass over memory: it reads
// theta, g, m, v and writes theta, m, v (28 bytes per element), in place through the input
// pointers. The per-element arithmetic is that of mindspore_radam/functional.py, in the same
// order, so the two implementations agree bit for bit (build with -ffp-contract=off: no FMA).
//
// Inputs:  hyper (float32[11]), then N params, N grads, N exp_avg, N exp_avg_sq (float32).
// Output:  a float32[1] dummy that ties the op into the graph.
// hyper = [adaptive_step, sgd_step, rect, decay, beta2, one_minus_beta1, one_minus_beta2, eps,
//          weight_decay, maximize, decoupled_weight_decay]
#include <cmath>
#include <cstdint>
#include <cstring>

namespace {

enum Hyper {
  kAdaptiveStep, kSgdStep, kRect, kDecay, kBeta2, kOneMinusBeta1, kOneMinusBeta2, kEps,
  kWeightDecay, kMaximize, kDecoupled, kHyperSize
};

int64_t NumElements(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= shape[i];
  return n;
}

void UpdateTensor(const float *h, float *theta, const float *grad, float *exp_avg, float *exp_avg_sq,
                  int64_t n) {
  const float adaptive_step = h[kAdaptiveStep], sgd_step = h[kSgdStep], decay = h[kDecay];
  const float beta2 = h[kBeta2], one_minus_beta1 = h[kOneMinusBeta1], one_minus_beta2 = h[kOneMinusBeta2];
  const float eps = h[kEps], weight_decay = h[kWeightDecay];
  const bool rect = h[kRect] != 0.0f, maximize = h[kMaximize] != 0.0f, decoupled = h[kDecoupled] != 0.0f;
  const bool decay_weights = weight_decay != 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    float g = maximize ? -grad[i] : grad[i];
    float p = theta[i];
    if (decay_weights) {
      if (decoupled) {
        p = p * decay;
      } else {
        g = g + weight_decay * p;
      }
    }
    const float m = exp_avg[i] + one_minus_beta1 * (g - exp_avg[i]);
    const float v = beta2 * exp_avg_sq[i] + one_minus_beta2 * (g * g);
    p = rect ? p - adaptive_step * m / (std::sqrt(v) + eps) : p - sgd_step * m;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    theta[i] = p;
  }
}

}  // namespace

extern "C" int RAdamFusedStep(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                              void *stream, void *extra) {
  (void)stream;
  (void)extra;
  const int n_inputs = nparam - 1;  // the last one is the output
  if (n_inputs < 1 || (n_inputs - 1) % 4 != 0) return 1;
  if (NumElements(ndims[0], shapes[0]) != kHyperSize) return 2;
  const int n = (n_inputs - 1) / 4;
  for (int k = 0; k < n_inputs; ++k) {
    if (std::strcmp(dtypes[k], "float32") != 0) return 3;
  }
  const float *h = static_cast<const float *>(params[0]);
  for (int i = 0; i < n; ++i) {
    const int p = 1 + i, g = 1 + n + i, m = 1 + 2 * n + i, v = 1 + 3 * n + i;
    UpdateTensor(h, static_cast<float *>(params[p]), static_cast<const float *>(params[g]),
                 static_cast<float *>(params[m]), static_cast<float *>(params[v]), NumElements(ndims[p], shapes[p]));
  }
  static_cast<float *>(params[nparam - 1])[0] = 0.0f;
  return 0;
}
