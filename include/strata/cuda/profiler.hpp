#pragma once
/// The per-layer profiler (TensorRT's IProfiler in spirit) and the memory report. For every
/// executed op — named after the declared layers it fused, "layer1.0.conv2+bn2+add+relu" — its
/// GPU time, share of the total, FLOPs and bytes from the compile-time cost model, and the
/// achieved TFLOP/s and GB/s against measured ceilings. Printed as a table; the rows are data.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <iomanip>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "strata/cuda/check.hpp"
#include "strata/cuda/engine.hpp"
#include "strata/pipeline/memory_plan.hpp"

namespace strata::cuda {

/// The GPU's measured ceilings (0 = unknown): dense f16 tensor TFLOP/s and device-memory GB/s
/// (bytes read + written), as the benchmark measures them.
struct Ceilings {
  double tflops = 0.0;
  double gbs = 0.0;
};

/// One step of a forward: an op (or the input/output conversion), its time and cost.
struct LayerProfile {
  std::string label;         ///< "conv1+bn1+relu", or "input" / "output"
  std::string kind;          ///< "conv", "dense", ..., "convert"
  double us = 0.0;           ///< GPU time per forward, median
  double share = 0.0;        ///< of the sum over steps
  std::int64_t flops = 0;    ///< for the whole batch
  std::int64_t bytes = 0;    ///< activations read and written + weights read, whole batch
  double tflops = 0.0;       ///< achieved
  double gbs = 0.0;          ///< achieved
  double roofline = 0.0;     ///< floor time / measured time (1 = at the ceiling); 0 if unknown
};

/// A profile of one engine at one batch size.
struct ProfileReport {
  std::string network;
  std::string precision;
  int batch = 0;
  Ceilings ceilings{};
  std::vector<LayerProfile> steps;
  double total_us = 0.0;  ///< sum of the steps (each timed alone, so a little above one replay)

  /// The table: step, kind, µs, share, GFLOP, MB, TFLOP/s, GB/s, fraction of the roofline.
  void print(std::ostream& os) const {
    const auto flags = os.flags();
    os << "Per-layer profile: " << network << ", " << precision << ", batch " << batch
       << " (GPU time per step, each step replayed alone)\n";
    os << std::left << std::setw(40) << "op" << std::setw(16) << "kind" << std::right
       << std::setw(10) << "us" << std::setw(8) << "share" << std::setw(10) << "GFLOP"
       << std::setw(10) << "MB" << std::setw(9) << "TFLOP/s" << std::setw(9) << "GB/s"
       << std::setw(10) << "roofline" << "\n";
    os << std::fixed;
    for (const LayerProfile& s : steps) {
      std::string label = s.label.size() > 39 ? s.label.substr(0, 36) + "..." : s.label;
      os << std::left << std::setw(40) << label << std::setw(16) << s.kind << std::right
         << std::setprecision(1) << std::setw(10) << s.us << std::setw(7) << 100.0 * s.share
         << "%" << std::setprecision(3) << std::setw(10) << static_cast<double>(s.flops) / 1e9 << std::setw(10)
         << static_cast<double>(s.bytes) / 1e6 << std::setprecision(1) << std::setw(9) << s.tflops << std::setw(9)
         << s.gbs << std::setw(9) << (s.roofline > 0 ? 100.0 * s.roofline : 0.0) << "%\n";
    }
    os << std::setprecision(1) << "total " << total_us << " us";
    if (ceilings.tflops > 0) {
      os << "; ceilings " << ceilings.tflops << " TFLOP/s, " << ceilings.gbs << " GB/s";
    }
    os << "\n";
    os.flags(flags);
  }
};

/// Profiles `engine` at `batch`: each step's GPU time (Engine::profile), joined with the
/// compile-time cost model of its op.
template <class Net, DType P>
[[nodiscard]] ProfileReport profile_layers(Engine<Net, P>& engine, int batch,
                                           std::string network_name = {}, Ceilings ceilings = {},
                                           int iters = 50) {
  using Network = std::remove_cvref_t<Net>;
  constexpr auto& g = Network::graph;
  constexpr Layout layout = storage_layout(P);
  const auto times = engine.profile(batch, iters);
  ProfileReport r;
  r.network = std::move(network_name);
  r.precision = std::string(dtype_name(P));
  r.batch = batch;
  r.ceilings = ceilings;
  auto activation = [&](TensorSpec spec) { return tensor_bytes(spec, P, layout) * batch; };
  auto op_bytes = [&](const Op& op) {
    // (the second operand as stored: a residual the size of the output, a channel gate's C×1×1)
    std::int64_t b = activation(op.in_spec) + activation(op.out_spec) +
                     (op.in2 >= 0 ? activation(g.tensors[op.in2].spec) : 0);
    if (op.weight >= 0) {
      b += g.params[op.weight].spec.numel() * dtype_size(P);
    }
    if (op.bias >= 0 || op.bn >= 0) {  // a bias, or a folded / stand-alone scale and shift
      const std::int64_t c = op.kind == OpKind::batch_norm ? 2 * op.in_spec.shape.c
                                                           : op.layer.out_channels;
      b += c * dtype_size(P);
    }
    return b;
  };
  auto convert_bytes = [&](TensorSpec spec) {  // read f32, write the storage type (or back)
    return spec.shape.numel() * batch * 4 + tensor_bytes(spec, P, layout) * batch;
  };
  // The graph ops a step runs, by its label: one, or several in a row joined by '+' (a conv and
  // its fused pool, a dense layer and the final softmax, a global average pool and the dense
  // layer after it — "avgpool+fc"); their kind, FLOPs and bytes into `s`; the first, or null.
  const auto chain_of = [&](std::string_view label, LayerProfile& s) {
    std::vector<const Op*> run;
    for (int i = 0; i < g.num_ops && run.empty(); ++i) {
      std::string_view rest = label;
      std::vector<const Op*> chain;
      for (int j = i; j < g.num_ops; ++j) {
        std::string_view l = g.ops[j].label.view();
        const auto matches = [&](std::string_view t) {
          return rest.starts_with(t) && (rest.size() == t.size() || rest[t.size()] == '+');
        };
        if (!matches(l) && j > i) {  // joined with the scope it shares with the op before written once
          l.remove_prefix(shared_scope(g.ops[j - 1].label.view(), l));
        }
        if (!matches(l)) {
          break;
        }
        chain.push_back(&g.ops[j]);
        if (rest.size() == l.size()) {
          run = std::move(chain);
          break;
        }
        rest.remove_prefix(l.size() + 1);
      }
    }
    if (run.size() > 1) {
      // The intermediate results are not counted (ideally unstored) unless an op after the
      // step reads one too — a squeeze-excite op joined to the depthwise conv before it leaves
      // that conv's map for the multiply — which the step then writes; a final softmax writes
      // the caller's f32 output.
      const Op* last = run.back();
      const auto read_later = [&](const Op& producer) {
        for (int j = 0; j < g.num_ops; ++j) {
          const Op& reader = g.ops[j];
          if (std::find(run.begin(), run.end(), &reader) == run.end() &&
              (reader.in == producer.out || reader.in2 == producer.out)) {
            return true;
          }
        }
        return producer.out == g.output;
      };
      s.flops = 0;
      s.bytes = 0;
      for (std::size_t k = 0; k < run.size(); ++k) {
        if (k > 0) {
          s.kind += '+';
        }
        s.kind += op_kind_name(run[k]->kind);
        s.flops += run[k]->flops * batch;
        s.bytes += op_bytes(*run[k]) - (k > 0 ? activation(run[k]->in_spec) : 0) -
                   (k + 1 < run.size() && !read_later(*run[k]) ? activation(run[k]->out_spec) : 0);
      }
      if (last->kind == OpKind::softmax || last->kind == OpKind::log_softmax) {
        s.bytes += last->out_spec.shape.numel() * batch * 4 - activation(last->out_spec);
      }
    } else if (run.size() == 1) {
      const Op* op = run.front();
      s.kind = std::string(op_kind_name(op->kind));
      s.flops = op->flops * batch;
      s.bytes = op_bytes(*op);
    }
    return run.empty() ? nullptr : run.front();
  };
  // Engine::profile's steps: "input", one per op (its label), "output" when there is one; or
  // "network", the fused kernel doing all of it in one launch. A conv with a side conv
  // ("layer2.0.conv1+bn1+relu & layer2.0.downsample.conv0+bn1") counts both, their shared
  // input once (as one kernel computing both reads it).
  for (const auto& [label, us] : times) {
    LayerProfile s;
    s.label = label;
    s.us = us;
    const std::size_t amp = label.find(" & ");
    if (amp != std::string::npos) {
      LayerProfile side;
      const Op* main_op = chain_of(std::string_view(label).substr(0, amp), s);
      if (main_op != nullptr && chain_of(std::string_view(label).substr(amp + 3), side) != nullptr) {
        s.kind += " & " + side.kind;
        s.flops += side.flops;
        s.bytes += side.bytes - activation(main_op->in_spec);
      }
    } else if (chain_of(label, s) == nullptr) {
      if (label == "network") {  // the fused kernel: input and output once, every weight
        s.kind = "fused";
        s.flops = g.flops() * batch;
        s.bytes = convert_bytes(Network::input_spec) + Network::output_spec.shape.numel() * batch * 4;
        for (int i = 0; i < g.num_params; ++i) {
          s.bytes += g.params[i].spec.learnable ? g.params[i].spec.numel() * dtype_size(P) : 0;
        }
      } else {
        s.kind = "convert";
        s.bytes = convert_bytes(label == "input" ? Network::input_spec : Network::output_spec);
      }
    }
    s.tflops = s.us > 0 ? static_cast<double>(s.flops) / (s.us * 1e6) : 0.0;
    s.gbs = s.us > 0 ? static_cast<double>(s.bytes) / (s.us * 1e3) : 0.0;
    if (ceilings.tflops > 0 && ceilings.gbs > 0 && s.us > 0) {
      const double floor_us = std::max(static_cast<double>(s.flops) / (ceilings.tflops * 1e6),
                                       static_cast<double>(s.bytes) / (ceilings.gbs * 1e3));
      s.roofline = floor_us / s.us;
    }
    r.total_us += s.us;
    r.steps.push_back(std::move(s));
  }
  for (LayerProfile& s : r.steps) {
    s.share = r.total_us > 0 ? s.us / r.total_us : 0.0;
  }
  return r;
}

/// Device memory of one engine: what the plan and construction asked for, and what the device
/// actually lost (cudaMemGetInfo before and after construction, handles included).
struct MemoryReport {
  std::int64_t planned_arena = 0;    ///< Net::plan_for<P, layout>.arena_bytes(max_batch)
  std::int64_t arena = 0;            ///< allocated for activations
  std::int64_t workspace = 0;        ///< the shared cuDNN/cuBLASLt workspace
  std::int64_t weights = 0;          ///< folded, converted, padded weights
  /// Free device memory before construction − after: the whole device's, so other processes'
  /// allocations in between count too. -1 where it came out below arena + weights (someone else
  /// freed memory meanwhile): not measurable in that run.
  std::int64_t device_taken = 0;

  void print(std::ostream& os) const {
    os << "Memory: planned arena " << planned_arena << " B, arena " << arena << " B, workspace "
       << workspace << " B, weights " << weights << " B; device memory taken ";
    if (device_taken < 0) {
      os << "not measurable (other work on the device freed memory meanwhile)\n";
    } else {
      os << device_taken << " B (handles, I/O buffers and allocator granularity included)\n";
    }
  }
};

/// Builds an engine with `make()` (a callable returning Engine<Net, P>) and reports its memory.
template <class Make>
[[nodiscard]] auto build_and_measure(Make&& make) {
  STRATA_CUDA_CHECK(cudaFree(nullptr));  // create the context first: not the engine's memory
  std::size_t free_before = 0;
  std::size_t free_after = 0;
  std::size_t total = 0;
  STRATA_CUDA_CHECK(cudaMemGetInfo(&free_before, &total));
  auto engine = make();
  STRATA_CUDA_CHECK(cudaDeviceSynchronize());
  STRATA_CUDA_CHECK(cudaMemGetInfo(&free_after, &total));
  using E = decltype(engine);
  using Network = typename E::Network;
  constexpr DType p = E::precision;
  constexpr Layout layout = storage_layout(p);
  MemoryReport m;
  m.planned_arena = Network::template plan_for<p, layout>.arena_bytes(engine.max_batch());
  m.arena = static_cast<std::int64_t>(engine.stats().arena_bytes);
  m.workspace = static_cast<std::int64_t>(engine.stats().workspace_bytes);
  m.weights = static_cast<std::int64_t>(engine.stats().weight_bytes);
  m.device_taken = static_cast<std::int64_t>(free_before) - static_cast<std::int64_t>(free_after);
  if (m.device_taken < m.arena + m.weights) {
    m.device_taken = -1;
  }
  return std::pair<E, MemoryReport>(std::move(engine), m);
}

}  // namespace strata::cuda
