#pragma once
/// The tuner: which variant of which tactic runs each op. Heuristically, the lowest-ranked claim
/// among the applicable tactics; measured (TensorRT's tactic selection), every candidate of
/// every applicable tactic prepared at the largest batch, timed as it will run — captured into a
/// CUDA graph and replayed — and the fastest kept, in a persistent cache keyed by GPU, cuDNN
/// version, precision, batch and the op's shape.
#include <cudnn.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "strata/core/error.hpp"
#include "strata/cuda/device.hpp"
#include "strata/cuda/engine_options.hpp"
#include "strata/cuda/graph_capture.hpp"
#include "strata/cuda/resources.hpp"
#include "strata/cuda/tactic.hpp"
#include "strata/cuda/tactics/registry.hpp"
#include "strata/cuda/tuning_cache.hpp"

namespace strata::cuda {

/// Whether an engine of options `o` joins DenseNet-style layers into one op each
/// (fold_bottleneck_convs): at a max_batch of bottleneck_min_batch on, and on compute capability
/// 9.0 on at one of up to bottleneck_cluster_max_batch where EngineOptions::bottleneck_clusters asks.
[[nodiscard]] inline bool joins_bottlenecks(const EngineOptions& o) {
  return o.max_batch >= bottleneck_min_batch ||
         (o.bottleneck_clusters && o.max_batch <= bottleneck_cluster_max_batch && device_arch() >= 90);
}

/// `net`'s DenseNet-style layers joined as an engine of options `o` joins them
/// (joins_bottlenecks): for the cluster form at small batches also on maps of up to
/// bottleneck_cluster_max_map_bytes, else of up to bottleneck_max_map_bytes.
inline void join_bottlenecks(NetDesc& net, const EngineOptions& o) {
  if (!joins_bottlenecks(o)) {
    return;
  }
  fold_bottleneck_convs(net, o.max_batch < bottleneck_min_batch ? bottleneck_cluster_max_map_bytes
                                                                : bottleneck_max_map_bytes);
}

/// `net` (after fold_for_per_op_path) with the ops an engine of options `o` joins for its
/// max_batch, in the engine's order: side convs (not where `branches`: two streams then run such
/// pairs side by side), squeeze-excite ops to the depthwise convs before them (fold_tailed_gates;
/// first: the gates it takes are not the projections' to compute; at max batches from
/// tail_min_batch on every map's, where EngineOptions::tail_sums asks) or to their gated convs
/// (fold_excited_gates) — none of these where every batch runs the fused kernel (`all_fused`) —,
/// inverted-residual blocks' projections where a kernel would run them with their blocks — at
/// large batches expand_depthwise's plain form, at max batches up to expand_dw::cluster_max_batch
/// its cluster form (EngineOptions::block_clusters), at either depthwise_band with a depthwise
/// conv that has no expansion — or where EngineOptions::force names the joined op
/// (fold_projected_depthwise), then
/// DenseNet's layers (join_bottlenecks). The engine, strata_bench's --force-each and the
/// tests fold through this one sequence.
inline void fold_for_max_batch(NetDesc& net, const EngineOptions& o, bool branches, bool all_fused = false) {
  if (!all_fused) {
    if (o.stem_joins) {  // (before the squeeze-excite joins: the depthwise conv keeps its own)
      fold_stem_depthwise(net);
    }
    if (o.max_batch <= side_conv_max_batch && !branches) {
      fold_side_convs(net);
    }
    if (o.max_batch <= tail_max_batch) {
      fold_tailed_gates(net);
    } else if (o.tail_sums && o.max_batch >= tail_min_batch) {
      fold_tailed_gates(net, 0);
    }
    if (o.max_batch <= excite_max_batch) {
      fold_excited_gates(net);
    }
  }
  if (o.max_batch >= project_min_batch) {  // (where expand_depthwise would run the three as one)
    // (and any join EngineOptions::force names: a form the heuristic does not claim, forced)
    fold_projected_depthwise(net, [&](const OpDesc& joined) {
      return (joined.expand ? tactics::expand_dw::claimed(joined, o.max_batch) &&
                                  tactics::expand_dw::projection_claimed(joined)
                            : tactics::band::projection_claimed(joined)) ||  // (MobileNetV2's features.1)
             o.force.count(joined.label) > 0;
    });
  } else if (o.block_clusters && o.max_batch <= tactics::expand_dw::cluster_max_batch) {
    // Small batches: where the heuristic runs the three as one there — expand_depthwise's
    // cluster form (thread-block clusters: compute capability 9.0 on; no device at all, as when
    // the rtc tests fold a plan, folds as on one) — or depthwise_band's fuse 2 (MobileNetV2's
    // features.1); not where the force names the ops apart (the expansion+depthwise op or the
    // projection). Elsewhere the projections stay ops of their own, which measured tuning times.
    const int arch = device_arch();
    const bool clusters = arch == 0 || arch >= 90;
    fold_projected_depthwise(net, [&](const OpDesc& joined) {
      return ((joined.expand ? clusters && tactics::expand_dw::cluster_fits(joined)
                             : tactics::band::projection_claimed(joined)) &&
              o.force.count(joined.project_conv_label) == 0 && o.force.count(joined.project->label) == 0) ||
             o.force.count(joined.label) > 0;
    });
  } else {  // (only the joins the force names)
    fold_projected_depthwise(net, [&](const OpDesc& joined) { return o.force.count(joined.label) > 0; });
  }
  join_bottlenecks(net, o);
}

/// Net's ops in precision P as the per-op path runs them for options `o` with `branches`: the
/// description folded as the engine folds it (fold_for_per_op_path, then fold_for_max_batch), for
/// callers that name or inspect the joined ops without building an engine (strata_bench's
/// --force-each, the tests). (The engine itself generates any fused kernel between the two.)
template <class Net, DType P>
[[nodiscard]] NetDesc per_op_ops(const EngineOptions& o, bool branches = false) {
  NetDesc net = NetStorage<Net, P>::describe();
  fold_for_per_op_path(net);
  fold_for_max_batch(net, o, branches);
  return net;
}

/// The tuning cache's key of `op` at `batch`: GPU, cuDNN version, precision, and the op's
/// exact shape in storage terms.
[[nodiscard]] inline std::string tuning_key(const OpDesc& op, int batch, DType p,
                                            const std::string& gpu, bool tf32 = false) {
  std::ostringstream os;
  os << gpu << "|cudnn" << cudnnGetVersion() << "|" << dtype_name(p)
     << (tf32 && p == DType::f32 ? "+tf32" : "") << "|n" << batch << ","
     << op_kind_name(op.kind);
  if (op.kind == OpKind::conv) {
    const ConvGeom& cg = op.conv;
    os << ",c" << cg.xc << ",h" << cg.h << ",w" << cg.w << ",k" << cg.kd << ",r" << cg.kh << "x"
       << cg.kw << ",s" << cg.sh << "x" << cg.sw << ",p" << cg.ph << "x" << cg.pw << ",d" << cg.dh
       << "x" << cg.dw << ",g" << cg.groups << (cg.packed ? ",packed" : ",strided");
  } else {
    if (op.kind == OpKind::conv_transpose) {
      const LayerDesc& d = op.layer;
      os << ",r" << d.kernel.h << "x" << d.kernel.w << ",s" << d.stride.h << "x" << d.stride.w
         << ",p" << d.padding.h << "x" << d.padding.w << ",d" << d.dilation.h << "x"
         << d.dilation.w << ",g" << d.groups;
    }
    os << ",in" << op.in_shape.c << "x" << op.in_shape.h << "x" << op.in_shape.w << ",out"
       << op.out_shape.c << "x" << op.out_shape.h << "x" << op.out_shape.w;
  }
  os << ",act" << static_cast<int>(op.act.kind) << (op.has_residual ? ",add" : "")
     << (op.has_bias ? "" : ",nobias");
  if (op.gap) {  // a folded global average pool: every candidate's time includes it
    os << ",gap" << op.gap->in_shape.h << "x" << op.gap->in_shape.w;
    if (op.gap->in_act.kind != Act::none) {  // (an activation deferred into the pool's read)
      os << ",gap_in_act" << static_cast<int>(op.gap->in_act.kind) << ":" << op.gap->in_act.alpha << ":"
         << op.gap->in_act.beta;
    }
  }
  if (op.gate) {  // a folded channel gate: every candidate's time includes it
    os << ",gate";
  }
  if (op.expand) {  // a folded expansion (a 1×1 of the same map, or the stem): likewise
    const OpDesc& e = *op.expand;
    os << ",expand" << e.conv.xc << (e.conv.s2d ? "s2d" : "") << (e.has_bias ? "" : "nobias") << ",act"
       << static_cast<int>(e.act.kind);
  }
  if (op.squeeze) {  // a folded squeeze-excite gate's pool and first conv: likewise
    const OpDesc& q = *op.squeeze;
    os << ",squeeze" << q.gap->in_shape.h << "x" << q.gap->in_shape.w << ":" << q.conv.k
       << (q.has_bias ? "" : "nobias") << ",act" << static_cast<int>(q.act.kind);
  }
  if (op.norm) {  // a folded batch norm (its input's slots and layout): likewise
    const OpDesc& b = *op.norm;
    os << ",norm" << b.in_cp << (b.in_slice ? "of" + std::to_string(b.in_slice->strides.pixel) : "")
       << ",act" << static_cast<int>(b.act.kind);
  }
  if (op.bottleneck) {  // a folded bottleneck (a 1×1 conv with its batch norm): likewise
    const OpDesc& b = *op.bottleneck;
    const OpDesc& bn = *b.norm;
    os << ",bottleneck" << b.conv.xc << (b.has_bias ? "" : "nobias") << ",act" << static_cast<int>(b.act.kind)
       << ",norm" << bn.in_cp << (bn.in_slice ? "of" + std::to_string(bn.in_slice->strides.pixel) : "")
       << ",act" << static_cast<int>(bn.act.kind);
  }
  if (op.softmax) {  // a folded final softmax: every candidate's time includes it
    os << "," << op_kind_name(op.softmax->kind);
  }
  if (op.excite) {  // a folded squeeze-excite op (pooling the gated map): likewise
    const OpDesc& q = *op.excite;
    os << ",excite" << q.squeeze->conv.k << (q.squeeze->has_bias ? "" : "nobias") << ",act"
       << static_cast<int>(q.squeeze->act.kind) << ":" << static_cast<int>(q.in_act.kind) << ":"
       << static_cast<int>(q.act.kind) << (q.has_bias ? "" : "nobias");
  }
  if (op.tail) {  // a squeeze-excite op joined after the conv (pooling its result): likewise
    const OpDesc& q = *op.tail;
    os << ",tail" << q.squeeze->conv.k << (q.squeeze->has_bias ? "" : "nobias") << ",act"
       << static_cast<int>(q.squeeze->act.kind) << ":" << static_cast<int>(q.in_act.kind) << ":"
       << static_cast<int>(q.act.kind) << (q.has_bias ? "" : "nobias");
  }
  if (op.project) {  // a projection joined after the conv (a 1×1 of its result): likewise
    const OpDesc& q = *op.project;
    os << ",project" << q.conv.kd << (q.has_bias ? "" : "nobias") << ",act"
       << static_cast<int>(q.act.kind) << (q.has_residual ? ",add" : "");
  }
  if (op.side) {  // a side conv (the input's, stride's and output size's the same): likewise
    os << ",side" << op.side->conv.kd << (op.side->has_bias ? "" : "nobias") << ",act"
       << static_cast<int>(op.side->act.kind);
  }
  // A result written into a concat's slice, or an input read from one, runs with other strides.
  if (op.slice) {
    os << ",slice" << op.slice->strides.pixel << ":" << op.slice->c0 << ":" << op.slice->write;
  }
  if (op.in_slice) {
    os << ",in_slice" << op.in_slice->strides.pixel << ":" << op.in_slice->c0;
  }
  if (op.in_act.kind != Act::none) {
    os << ",in_act" << static_cast<int>(op.in_act.kind) << ":" << op.in_act.alpha << ":"
       << op.in_act.beta;
  }
  if (op.pool) {
    const LayerDesc& d = op.pool->layer;
    os << "," << op_kind_name(op.pool->kind) << d.kernel.h << "x" << d.kernel.w << ",s"
       << d.stride.h << "x" << d.stride.w << ",p" << d.padding.h << "x" << d.padding.w
       << (d.ceil_mode ? ",ceil" : "") << (d.count_include_pad ? ",cip" : "");
  }
  return os.str();
}

/// The variant EngineOptions::force names for each op of `net` (nothing for the others),
/// checked: every label names an op of `net` (an error lists them otherwise), and names a tactic
/// of this build that can run that op.
template <DType P>
[[nodiscard]] std::vector<std::optional<Variant>> forced_variants(
    const NetDesc& net, const std::map<std::string, Variant>& force) {
  std::vector<std::optional<Variant>> out(net.ops.size());
  for (const auto& [label, v] : force) {
    const auto op = std::find_if(net.ops.begin(), net.ops.end(),
                                 [&](const OpDesc& o) { return o.label == label; });
    if (op == net.ops.end()) {
      const auto joined = std::find_if(net.ops.begin(), net.ops.end(), [&](const OpDesc& o) {
        return o.side != nullptr && (o.side->label == label || side_main(o).label == label);
      });
      STRATA_CHECK(joined == net.ops.end(),
                   "cuda::Engine: EngineOptions::force names layer '"
                       << label << "', which at a max_batch of at most " << side_conv_max_batch
                       << " runs joined to the conv beside it as one op, '" << joined->label
                       << "' (fold_side_convs): force that op");
      // (a squeeze-excite op joined to a conv: its own label, its pool's, fc1's with and without
      // the pool, fc2's)
      const auto names_squeeze_excite = [&](const OpDesc& q) {
        return q.label == label || q.squeeze->label == label || q.squeeze->gap->label == label ||
               q.squeeze->label.substr(q.squeeze->gap->label.size() + 1) == label ||
               squeeze_main(q).label == label;
      };
      const auto excited = std::find_if(net.ops.begin(), net.ops.end(), [&](const OpDesc& o) {
        return o.excite && (names_squeeze_excite(*o.excite) || o.excite_conv_label == label);
      });
      STRATA_CHECK(excited == net.ops.end(),
                   "cuda::Engine: EngineOptions::force names layer '"
                       << label << "', which at a max_batch of at most " << excite_max_batch
                       << " runs joined to "
                       << (excited->excite_conv_label == label ? "the squeeze-excite op whose gate it applies"
                                                               : "the gated conv after it")
                       << " as one op, '" << excited->label << "' (fold_excited_gates): force that op");
      const auto tailed = std::find_if(net.ops.begin(), net.ops.end(), [&](const OpDesc& o) {
        return o.tail && (names_squeeze_excite(*o.tail) || o.tail_conv_label == label);
      });
      STRATA_CHECK(tailed == net.ops.end(),
                   "cuda::Engine: EngineOptions::force names layer '"
                       << label << "', which at a max_batch of at most " << tail_max_batch
                       << " runs joined to "
                       << (tailed->tail_conv_label == label ? "the squeeze-excite op after it"
                                                            : "the depthwise conv before it")
                       << " as one op, '" << tailed->label << "' (fold_tailed_gates): force that op");
      const auto gated = std::find_if(net.ops.begin(), net.ops.end(), [&](const OpDesc& o) {
        return o.gate && (o.gate->label == label || gate_conv(o).label == label);
      });
      STRATA_CHECK(gated == net.ops.end(),
                   "cuda::Engine: EngineOptions::force names layer '"
                       << label << "', which runs joined to its channel gate's multiply as one "
                                   "op, '"
                       << gated->label << "' (fold_gated_convs): force that op");
      const auto projected = std::find_if(net.ops.begin(), net.ops.end(), [&](const OpDesc& o) {
        return o.project && (o.project->label == label || o.project_conv_label == label ||
                             (o.expand && (o.expand->label == label ||
                                           expand_main(project_main(o)).label == label)));
      });
      STRATA_CHECK(projected == net.ops.end(),
                   "cuda::Engine: EngineOptions::force names layer '"
                       << label << "', which at this max_batch runs joined to "
                       << (projected->project->label != label ? "the rest of its inverted-residual block"
                           : projected->expand                   ? "the expansion and depthwise conv before it"
                                                                 : "the depthwise conv before it")
                       << " as one op, '" << projected->label << "' (fold_projected_depthwise): force that op");
      const auto expanded = std::find_if(net.ops.begin(), net.ops.end(), [&](const OpDesc& o) {
        return o.expand && (o.expand->label == label || expand_main(o).label == label);
      });
      STRATA_CHECK(expanded == net.ops.end(),
                   "cuda::Engine: EngineOptions::force names layer '"
                       << label << "', which runs joined to "
                       << (expanded->expand->label == label ? "the depthwise conv after it"
                           : joined_stem(*expanded)          ? "the network's stem"
                                                             : "its expansion")
                       << " as one op, '" << expanded->label
                       << (joined_stem(*expanded) ? "' (fold_stem_depthwise, EngineOptions::stem_joins)"
                                                      : "' (fold_expanded_depthwise)")
                       << ": force that op");
      const auto squeezed = std::find_if(net.ops.begin(), net.ops.end(), [&](const OpDesc& o) {
        return o.squeeze && (o.squeeze->gap->label == label || o.squeeze->label == label ||
                             o.squeeze->label.substr(o.squeeze->gap->label.size() + 1) == label ||
                             squeeze_main(o).label == label);
      });
      STRATA_CHECK(squeezed == net.ops.end(),
                   "cuda::Engine: EngineOptions::force names layer '"
                       << label << "', which runs joined to the rest of its squeeze-excite gate "
                                   "(the pool and the two 1x1 convs) as one op, '"
                       << squeezed->label << "' (fold_squeeze_excite): force that op");
      const auto normed = std::find_if(net.ops.begin(), net.ops.end(), [&](const OpDesc& o) {
        return o.norm && (o.norm->label == label || o.norm_conv_label == label);
      });
      STRATA_CHECK(normed == net.ops.end(),
                   "cuda::Engine: EngineOptions::force names layer '"
                       << label << "', which runs joined to "
                       << (normed->norm->label != label ? "the batch norm before it"
                           : normed->kind == OpKind::dense ? "the global average pool and dense layer after it"
                                                           : "the 1x1 conv after it")
                       << " as one op, '" << normed->label << "' ("
                       << (normed->kind == OpKind::dense ? "fold_normed_pooled_dense" : "fold_normed_convs")
                       << "): force that op");
      const auto bottlenecked = std::find_if(net.ops.begin(), net.ops.end(), [&](const OpDesc& o) {
        return o.bottleneck && (o.bottleneck->label == label || o.bottleneck_conv_label == label ||
                                o.bottleneck->norm->label == label || o.bottleneck->norm_conv_label == label);
      });
      STRATA_CHECK(bottlenecked == net.ops.end(),
                   "cuda::Engine: EngineOptions::force names layer '"
                       << label << "', which at this max_batch (" << bottleneck_min_batch
                       << " or more; up to " << bottleneck_cluster_max_batch
                       << " with EngineOptions::bottleneck_clusters) runs joined to "
                       << (bottlenecked->bottleneck_conv_label == label ? "the 1x1 conv before it"
                                                                        : "the conv after it")
                       << " as one op, '" << bottlenecked->label << "' (fold_bottleneck_convs): force that op");
      std::ostringstream names;
      for (const OpDesc& o : net.ops) {
        names << (&o == &net.ops.front() ? "" : ", ") << o.label;
      }
      STRATA_CHECK(false, "cuda::Engine: EngineOptions::force names layer '"
                              << label << "', which this network does not have (its ops: "
                              << names.str() << ")");
    }
    const Tactic<P>* t = find_tactic<P>(v.tactic);
    STRATA_CHECK(t != nullptr, "cuda::Engine: EngineOptions::force names tactic '"
                                   << v.tactic << "' for layer '" << label
                                   << "', and this build has no tactic of that name");
    STRATA_CHECK(t->runs(*op), "cuda::Engine: EngineOptions::force names '"
                                   << to_string(v) << "' for layer '" << label << "', which "
                                   << v.tactic << " cannot run in " << dtype_name(P));
    out[static_cast<std::size_t>(op - net.ops.begin())] = v;
  }
  return out;
}

/// Milliseconds per run of `step` on `s`, timed as the engine will run it (captured into a
/// graph, replayed back to back, median); an eager run first, so that a library may decline or
/// set itself up. None when the step fails, falls back, or cannot be captured.
[[nodiscard]] inline std::optional<float> time_step(Step& step, cudaStream_t s,
                                                    const DeviceBuffer& ws) {
  try {
    step.launch(s, ws.get(), ws.bytes());
    STRATA_CUDA_CHECK(cudaStreamSynchronize(s));
  } catch (const Error&) {
    (void)cudaGetLastError();
    return std::nullopt;
  }
  if (step.fell_back()) {
    return std::nullopt;
  }
  const auto exec =
      try_capture_graph(s, [&](cudaStream_t cs) { step.launch(cs, ws.get(), ws.bytes()); });
  if (!exec) {
    return std::nullopt;
  }
  return time_graph(*exec, s);
}

/// The most workspace a candidate may ask for, in both modes: measured tuning used to time within
/// 256 MiB while the heuristic took up to 1 GiB, so a choice the heuristic made (an algorithm
/// with a large workspace) could be missing from the timed candidates — on the H200, ResNet-18 at
/// batch 256 in f32 ran 25.0 ms with measured tuning and 22.0 ms with the heuristic (f32+TF32:
/// 18.1 against 10.0 ms), a gap this may explain (not yet measured again). Measured tuning still
/// takes at most a quarter of the free memory.
inline constexpr std::size_t max_tuning_workspace = std::size_t{1} << 30;

/// Chooses the variant of every op of `net` at `exec`'s largest batch, as `options` say — the
/// ops `forced` names (forced_variants) on that variant —, and counts what it did in `stats`.
/// `exec` (an Executor) provides the stream, the library handles and the op's buffers to time
/// on; `weights` the op's parameters.
template <DType P, class Exec>
[[nodiscard]] std::vector<Variant> choose_variants(
    const NetDesc& net, const DeviceWeights<P>& weights, Exec& exec, const EngineOptions& options,
    const std::vector<std::optional<Variant>>& forced, EngineStats& stats) {
  const int mb = options.max_batch;
  Libraries lib = exec.libraries();
  lib.cudnn_graph = options.cudnn_graph_candidates;
  std::vector<Variant> chosen;
  chosen.reserve(net.ops.size());
  if (options.tuning == Tuning::heuristic) {
    for (const OpDesc& op : net.ops) {
      const LayerScope scope(op.label);
      const std::optional<Variant>& f = forced[chosen.size()];
      chosen.push_back(f ? *f : heuristic_variant<P>(op, mb, max_tuning_workspace, lib));
    }
    return chosen;
  }
  TuningCache cache(options.tuning_cache);
  // STRATA_TUNING_TRACE=1: each candidate named on stderr before it runs, and its time after —
  // a candidate that never ends (a kernel that hangs) is then the last line.
  const char* trace_env = std::getenv("STRATA_TUNING_TRACE");
  const bool trace = trace_env != nullptr && std::string_view(trace_env) == "1";
  DeviceBuffer find_ws;  // for timing: as large as any sane candidate needs, made on first use
  // Where one op alone reads the network's input, its candidates that convert the input as they
  // load it (Step::reads_network_input: the network then has no input step) are compared with
  // the others charged the input step's time, which they leave to run before them.
  int input_reads = 0;
  for (const OpDesc& op : net.ops) {
    input_reads += (reads_network_input(op, net.input_id) ? 1 : 0) + (op.z_id == net.input_id ? 1 : 0);
  }
  // Every generated kernel a candidate to be timed will compile, compiled side by side first
  // (measured tuning of the MNIST CNN prepares 18 such programs; one after the other they took
  // 20.6 s on an H200 machine's 16 cores, session 16).
  // The cache's choice for `op` where this build can still run it.
  auto cached = [&](const OpDesc& op) -> std::optional<Variant> {
    if (auto c = cache.find(tuning_key(op, mb, P, weights.gpu(), lib.tf32))) {
      if (const Tactic<P>* t = find_tactic<P>(c->tactic); t != nullptr && t->runs(op)) {
        return c;
      }
    }
    return std::nullopt;
  };
  {
    std::vector<KernelSource> sources;
    for (std::size_t i = 0; i < net.ops.size(); ++i) {
      const OpDesc& op = net.ops[i];
      if (forced[i] || cached(op)) {
        continue;
      }
      for (const Tactic<P>* t : all_tactics<P>()) {
        if (t->compiles_kernels() && t->runs(op) && t->timed(op, mb)) {
          for (const Variant& v : t->candidates(op, mb, max_tuning_workspace, lib)) {
            for (KernelSource& k : t->kernel_sources(op_as_prepared(*t, op, v), v, exec.io(op, mb))) {
              sources.push_back(std::move(k));
            }
          }
        }
      }
    }
    (void)tactics::generated::precompile(sources, rtc::current_arch());
  }
  for (const OpDesc& op : net.ops) {
    const LayerScope scope(op.label);
    if (const std::optional<Variant>& f = forced[chosen.size()]) {
      chosen.push_back(*f);
      continue;
    }
    if (const std::optional<Variant> c = cached(op)) {
      chosen.push_back(*c);
      stats.convs_from_cache += op.kind == OpKind::conv;
      continue;
    }
    if (find_ws.get() == nullptr) {
      std::size_t free_b = 0;
      std::size_t total_b = 0;
      STRATA_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
      find_ws = DeviceBuffer(std::min<std::size_t>(max_tuning_workspace, free_b / 4));
    }
    std::vector<std::pair<const Tactic<P>*, Variant>> candidates;
    for (const Tactic<P>* t : all_tactics<P>()) {
      if (t->runs(op) && t->timed(op, mb)) {
        for (Variant& v : t->candidates(op, mb, find_ws.bytes(), lib)) {
          candidates.emplace_back(t, std::move(v));
        }
      }
    }
    if (candidates.size() <= 1) {  // nothing to choose between: no timing, nothing cached
      chosen.push_back(heuristic_variant<P>(op, mb, find_ws.bytes(), lib));
      continue;
    }
    struct Timed {
      Variant v;
      float ms = 0.0f;
      bool reads_input = false;  ///< converts the network's input itself
      bool writes_output = false;  ///< writes the caller's f32 output itself
      std::size_t trial = 0;     ///< its entry in stats.tuning_trials
    };
    std::vector<Timed> timed;
    for (const auto& [t, v] : candidates) {
      std::unique_ptr<Step> step;
      const std::size_t trial = stats.tuning_trials.size();
      stats.tuning_trials.push_back(TuningTrial{op.label, to_string(v), -1.0, {}});
      try {
        OpIo io = exec.io(op, mb);
        io.side_weights = op.side ? &weights.op(op.side->index) : nullptr;
        io.expand_weights = op.expand ? &weights.op(op.expand->index) : nullptr;
        io.squeeze_weights = op.squeeze ? &weights.op(op.squeeze->index) : nullptr;
        io.norm_weights = op.norm ? &weights.op(op.norm->index) : nullptr;
        io.bottleneck_weights = op.bottleneck ? &weights.op(op.bottleneck->index) : nullptr;
        io.bottleneck_norm_weights = op.bottleneck ? &weights.op(op.bottleneck->norm->index) : nullptr;
        io.excite.weights = op.excite ? &weights.op(op.excite->index) : nullptr;
        io.excite.squeeze_weights = op.excite ? &weights.op(op.excite->squeeze->index) : nullptr;
        io.tail.weights = op.tail ? &weights.op(op.tail->index) : nullptr;
        io.tail.squeeze_weights = op.tail ? &weights.op(op.tail->squeeze->index) : nullptr;
        io.project.weights = op.project ? &weights.op(op.project->index) : nullptr;
        step = prepare_step(*t, op, v, mb, weights.op(op.index), io, lib);
      } catch (const Error&) {
        continue;  // this variant cannot run here
      }
      if (step->workspace_bytes() > find_ws.bytes()) {
        continue;
      }
      stats.tuning_trials[trial].note = step->tuning_note();
      if (trace) {
        std::fprintf(stderr, "strata tuning: %s: %s ...", op.label.c_str(), to_string(v).c_str());
        std::fflush(stderr);
      }
      const std::optional<float> ms = time_step(*step, exec.stream(), find_ws);
      if (trace) {
        if (ms) {
          std::fprintf(stderr, " %.1f us\n", static_cast<double>(*ms) * 1000.0);
        } else {
          std::fprintf(stderr, " declined\n");
        }
        std::fflush(stderr);
      }
      if (ms) {
        timed.push_back({v, *ms, step->reads_network_input(),
                         op.net_output && step->writes_network_output(), trial});
      }
    }
    const bool some_read_input =
        std::any_of(timed.begin(), timed.end(), [](const Timed& x) { return x.reads_input; });
    if (input_reads == 1 && reads_network_input(op, net.input_id) && some_read_input) {
      const float input_ms =
          time_step(*exec.input_step_at(net, mb), exec.stream(), find_ws).value_or(0.0f);
      for (Timed& x : timed) {
        x.ms += x.reads_input ? 0.0f : input_ms;
        add_note(stats.tuning_trials[x.trial].note,
                 x.reads_input ? "reads the input itself" : "with the input step");
      }
    }
    // Likewise, where some candidates for the op whose result is the network's output write the
    // caller's output themselves, the others are charged the output step's time.
    const bool some_write_output =
        std::any_of(timed.begin(), timed.end(), [](const Timed& x) { return x.writes_output; });
    if (net.needs_output_step && some_write_output) {
      const float output_ms =
          time_step(*exec.output_step_at(net, mb), exec.stream(), find_ws).value_or(0.0f);
      for (Timed& x : timed) {
        x.ms += x.writes_output ? 0.0f : output_ms;
        add_note(stats.tuning_trials[x.trial].note,
                 x.writes_output ? "writes the output itself" : "with the output step");
      }
    }
    float best_ms = 1e30f;
    std::optional<Variant> best;
    for (const Timed& x : timed) {
      stats.tuning_trials[x.trial].us = x.ms * 1000.0;
      if (x.ms < best_ms) {
        best_ms = x.ms;
        best = x.v;
      }
    }
    chosen.push_back(best ? *best : heuristic_variant<P>(op, mb, find_ws.bytes(), lib));
    cache.put(tuning_key(op, mb, P, weights.gpu(), lib.tf32), chosen.back());
    stats.convs_timed += op.kind == OpKind::conv;
  }
  cache.save();
  return chosen;
}

}  // namespace strata::cuda
