#pragma once
/// CpuEngine<Net>: the reference executor. Runs the lowered op list over NCHW f32 inside one
/// arena laid out by the network's static memory plan, for any batch up to the maximum it was
/// built for. Allocates only at construction. The oracle every other backend is checked against.
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "strata/core/error.hpp"
#include "strata/cpu/kernels.hpp"
#include "strata/weights/fold.hpp"
#include "strata/weights/weights.hpp"

namespace strata {

/// The CPU reference engine for network `Net`.
template <class Net>
  requires Network<Net>
class CpuEngine {
 public:
  using Network = std::remove_cvref_t<Net>;
  static_assert(Network::input_spec.dtype == DType::f32,
                "CpuEngine: the CPU reference reads f32 input; declare input<C, H, W> with DType::f32");
  static constexpr std::int64_t input_numel = Network::input_spec.shape.numel();
  static constexpr std::int64_t output_numel = Network::output_spec.shape.numel();

  /// Folds and keeps the weights, and allocates the arena for `max_batch` images.
  CpuEngine(const Weights<Net>& weights, int max_batch) : max_batch_(max_batch) {
    STRATA_CHECK(max_batch >= 1, "CpuEngine: max_batch must be at least 1, got " << max_batch);
    const auto& g = Network::graph;
    params_.reserve(static_cast<std::size_t>(g.num_ops));
    for (int i = 0; i < g.num_ops; ++i) {
      params_.push_back(fold_op_params(g.ops[i], weights.all()));
    }
    arena_.assign(static_cast<std::size_t>(Network::plan.arena_bytes(max_batch) / 4), 0.0f);
  }

  /// Runs `batch` images: `in` holds batch × C×H×W floats in the declared input layout
  /// (NCHW, or NHWC when the input was declared so), `out` receives batch × output floats.
  void forward(std::span<const float> in, std::span<float> out, int batch) {
    STRATA_CHECK(batch >= 1 && batch <= max_batch_,
                 "CpuEngine::forward: batch " << batch << " is outside [1, " << max_batch_
                                              << "], the maximum this engine was built for");
    STRATA_CHECK(static_cast<std::int64_t>(in.size()) >= batch * input_numel,
                 "CpuEngine::forward: input holds " << in.size() << " floats, batch " << batch
                                                    << " needs " << batch * input_numel);
    STRATA_CHECK(static_cast<std::int64_t>(out.size()) >= batch * output_numel,
                 "CpuEngine::forward: output holds " << out.size() << " floats, batch " << batch
                                                     << " needs " << batch * output_numel);
    const auto& g = Network::graph;
    float* x = tensor(g.input, batch);
    if constexpr (Network::input_spec.layout == Layout::nhwc) {
      const Shape s = Network::input_spec.shape;
      for (int n = 0; n < batch; ++n) {
        for (int c = 0; c < s.c; ++c) {
          for (int p = 0; p < s.h * s.w; ++p) {
            x[(static_cast<std::int64_t>(n) * s.c + c) * s.h * s.w + p] =
                in[(static_cast<std::size_t>(n) * s.h * s.w + p) * s.c + c];
          }
        }
      }
    } else {
      std::memcpy(x, in.data(), static_cast<std::size_t>(batch * input_numel) * sizeof(float));
    }
    for (int i = 0; i < g.num_ops; ++i) {
      run_op(i, batch);
    }
    std::memcpy(out.data(), tensor(g.output, batch),
                static_cast<std::size_t>(batch * output_numel) * sizeof(float));
  }

  [[nodiscard]] int max_batch() const { return max_batch_; }
  /// The arena (for tests of the memory plan).
  [[nodiscard]] std::span<const float> arena() const { return arena_; }

 private:
  /// Where tensor `t` starts at batch `batch`; a concat's slice starts at its channel offset
  /// within its base's first image (NCHW: a slice of an image is contiguous).
  float* tensor(int t, int batch) {
    const TensorEntry& e = Network::graph.tensors[t];
    const int base = e.view_of >= 0 ? e.view_of : t;
    const Shape s = Network::graph.tensors[base].spec.shape;
    return arena_.data() + Network::plan.offset(base, batch) / 4 +
           static_cast<std::int64_t>(e.channel_offset) * s.h * s.w;
  }
  /// Floats from one image of tensor `t` to the next: its base's per-image size for a slice.
  static constexpr std::int64_t image_stride(int t) {
    const TensorEntry& e = Network::graph.tensors[t];
    return Network::graph.tensors[e.view_of >= 0 ? e.view_of : t].spec.shape.numel();
  }

  void run_op(int i, int batch) {
    const Op& op = Network::graph.ops[i];
    const OpParams& p = params_[static_cast<std::size_t>(i)];
    const std::int64_t in_n = image_stride(op.in);
    const std::int64_t in2_n = op.in2 >= 0 ? image_stride(op.in2) : 0;
    const std::int64_t out_n = image_stride(op.out);
    const float* in = tensor(op.in, batch);
    const float* in2 = op.in2 >= 0 ? tensor(op.in2, batch) : nullptr;
    float* out = tensor(op.out, batch);
#if defined(_OPENMP)
#pragma omp parallel for schedule(static)
#endif
    for (int n = 0; n < batch; ++n) {
      const float* xi = in + n * in_n;
      const float* ri = in2 != nullptr ? in2 + n * in2_n : nullptr;
      float* yo = out + n * out_n;
      switch (op.kind) {
        case OpKind::conv: cpu::conv(op, xi, p.weight.data(), p.bias.data(), ri, yo); break;
        case OpKind::dense: cpu::dense(op, xi, p.weight.data(), p.bias.data(), yo); break;
        case OpKind::batch_norm: cpu::scale_shift(op, xi, p.weight.data(), p.bias.data(), yo); break;
        case OpKind::activation:
        case OpKind::add: cpu::pointwise(op, xi, ri, yo); break;
        case OpKind::max_pool:
        case OpKind::avg_pool: cpu::pool(op, xi, yo); break;
        case OpKind::global_avg_pool: cpu::global_avg_pool(op, xi, yo); break;
        case OpKind::softmax:
        case OpKind::log_softmax: cpu::softmax(op, xi, yo); break;
        case OpKind::upsample: cpu::upsample(op, xi, yo); break;
        case OpKind::adaptive_avg_pool: cpu::adaptive_avg_pool(op, xi, yo); break;
        case OpKind::copy: cpu::copy(op, xi, yo); break;
        case OpKind::multiply: cpu::channel_scale(op, xi, ri, yo); break;
        case OpKind::conv_transpose:
          cpu::conv_transpose(op, xi, p.weight.data(), p.bias.data(), yo);
          break;
      }
    }
  }

  int max_batch_;
  std::vector<OpParams> params_;
  std::vector<float> arena_;
};

}  // namespace strata
