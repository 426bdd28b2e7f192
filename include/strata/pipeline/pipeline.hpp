#pragma once
/// The pipeline type: `input<C,H,W> | layer | layer ...`. Each `|` checks the new stage against
/// the current output at compile time; the finished type exposes its stages, parameters, the
/// lowered graph, the memory plan and summary().
#include <algorithm>
#include <cstdint>
#include <iostream>

#include "strata/pipeline/graph.hpp"
#include "strata/pipeline/infer.hpp"
#include "strata/pipeline/memory_plan.hpp"
#include "strata/pipeline/summary.hpp"

namespace strata {

/// What a declaration becomes after its first error, so that the stages after it raise no
/// further errors (one error, no cascade).
struct PipelineError {
  template <class R>
  friend constexpr PipelineError operator|(PipelineError, R) {
    return {};
  }
  friend constexpr PipelineError operator|(PipelineError, TanhFunction) { return {}; }
};

/// A network: input tensor type `In`, then the stages `Ns...` in order (stage i is Ns[i]).
template <TensorSpec In, class... Ns>
struct Pipeline {
  using Body = Chain<Ns...>;
  /// The type of the network's input, per image.
  static constexpr TensorSpec input_spec = In;
  /// The type of the network's output, per image.
  static constexpr TensorSpec output_spec = Infer<Body, In>::out;
  /// The number of top-level stages.
  static constexpr int num_stages = sizeof...(Ns);

  // Explicit types (not auto) keep these lazy: an intermediate pipeline built by `|` never
  // computes its graph or plan.
  static constexpr GraphCounts capacity = detail::graph_capacity<Body, In>;
  using GraphType = Graph<capacity>;
  using PlanType = MemoryPlan<std::max(capacity.tensors, 1)>;
  /// The lowered graph: rows, parameters (state_dict names), tensors and fused ops.
  static constexpr GraphType graph = build_graph<Body, In>();
  /// The memory plan for f32 NCHW (the CPU reference and the f32 CUDA engine).
  static constexpr PlanType plan = plan_memory(graph, DType::f32, Layout::nchw);
  /// The memory plan for another element type and layout.
  template <DType D, Layout L>
  static constexpr PlanType plan_for = plan_memory(graph, D, L);
  /// Learnable parameters (PyTorch's sum of p.numel() for p in parameters()).
  static constexpr std::int64_t param_count = graph.learnable_params();
  /// Floating-point operations per image (2 per multiply-add).
  static constexpr std::int64_t flops = graph.flops();

  /// The output type of top-level stage `i` (0-based).
  [[nodiscard]] static constexpr TensorSpec stage_output(int i) {
    for (int r = 0, s = 0; r < graph.num_rows; ++r) {
      if (graph.rows[r].depth == 0 && s++ == i) {
        return graph.rows[r].out;
      }
    }
    return In;
  }

  /// Prints a torchinfo-like table: stage, layer, output shape, parameters, FLOPs.
  static void summary(std::ostream& os = std::cout) {
    print_summary(os, graph, In, plan.activation_bytes);
  }

  /// pipeline | tanh (a function: see activation.hpp).
  friend constexpr auto operator|(Pipeline p, TanhFunction) { return p | Tanh{}; }

  template <class R>
  friend constexpr auto operator|(Pipeline, R) {
    if constexpr (is_chain_v<R>) {
      return []<class... Bs>(Chain<Bs...>) { return (Pipeline{} | ... | Bs{}); }(R{});
    } else if constexpr (!Node<R>) {
      [[maybe_unused]] diag::not_a_layer<R> error;
      return PipelineError{};
    } else {
      using I = Infer<R, output_spec>;
      if constexpr (I::problem != Problem::none) {
        diag::report<num_stages, I>();
        return PipelineError{};
      } else {
        return Pipeline<In, Ns..., R>{};
      }
    }
  }
};

/// The start of every declaration: one image of C channels, H rows, W columns (the batch is a
/// run-time value). Layout and dtype say how the caller's input is stored.
template <int C, int H, int W, Layout L = Layout::nchw, DType D = DType::f32>
inline constexpr Pipeline<TensorSpec{chw(C, H, W), L, D}> input = [] {
  static_assert(C > 0 && H > 0 && W > 0, "input: channels, height and width must be positive");
  static_assert(D != DType::tf32,
                "input: tf32 is an engine precision (cuda::Engine<Net, DType::tf32>), not a tensor "
                "type; declare the input f32");
  return Pipeline<TensorSpec{chw(C, H, W), L, D}>{};
}();

template <class T>
inline constexpr bool is_pipeline_v = false;
template <TensorSpec In, class... Ns>
inline constexpr bool is_pipeline_v<Pipeline<In, Ns...>> = true;

/// A complete network declaration.
template <class T>
concept Network = is_pipeline_v<std::remove_cvref_t<T>>;

}  // namespace strata
