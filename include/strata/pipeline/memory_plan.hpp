#pragma once
/// The static memory plan: every activation tensor gets an offset in one arena, chosen at
/// compile time from the tensors' lifetimes, so that no two live tensors overlap. Sizes are
/// per image; at batch N everything scales by N (offset × N), since tensors are batch-major.
#include <algorithm>
#include <cstdint>

#include "strata/pipeline/graph.hpp"

namespace strata {

/// Bytes one image's tensor of type `spec` takes when stored as `dtype` in `layout`. NHWC with
/// a tensor-core type (f16, bf16, tf32) pads channels to a multiple of 8; every size is
/// rounded up to 16 bytes so that offsets × batch stay 16-byte aligned.
[[nodiscard]] constexpr std::int64_t tensor_bytes(TensorSpec spec, DType dtype, Layout layout) {
  std::int64_t c = spec.shape.c;
  if (layout == Layout::nhwc && dtype != DType::f32) {
    c = (c + 7) / 8 * 8;
  }
  const std::int64_t bytes = c * spec.shape.h * spec.shape.w * dtype_size(dtype);
  return (bytes + 15) / 16 * 16;
}

/// Where one tensor lives (per image) and when: from op `first` to op `last`, inclusive. A
/// channel slice of a concat's output (`view_of` >= 0) has its base's offset and life; where its
/// channels start within each image is the backend's to compute (see TensorEntry).
struct TensorPlacement {
  std::int64_t offset = 0;
  std::int64_t bytes = 0;
  int first = 0;
  int last = 0;
  int view_of = -1;
};

/// The plan for one graph, one element type and one layout.
template <int N>
struct MemoryPlan {
  TensorPlacement tensors[N]{};
  int num_tensors = N;
  std::int64_t activation_bytes = 0;  ///< arena bytes per image
  std::int64_t peak_bytes = 0;        ///< most bytes live at once, per image (a lower bound)
  DType dtype = DType::f32;
  Layout layout = Layout::nchw;

  /// Arena bytes for a batch of `batch` images.
  [[nodiscard]] constexpr std::int64_t arena_bytes(int batch) const {
    return activation_bytes * batch;
  }
  /// Offset of tensor `t` in the arena for a batch of `batch` images.
  [[nodiscard]] constexpr std::int64_t offset(int t, int batch) const {
    return tensors[t].offset * batch;
  }
  /// Whether tensors `a` and `b` are ever live at the same op.
  [[nodiscard]] constexpr bool live_together(int a, int b) const {
    return tensors[a].first <= tensors[b].last && tensors[b].first <= tensors[a].last;
  }
  /// Whether tensor `t` has storage of its own (is not a channel slice of another).
  [[nodiscard]] constexpr bool owns_storage(int t) const { return tensors[t].view_of < 0; }
  /// Whether tensors `a` and `b` share any arena byte.
  [[nodiscard]] constexpr bool overlap(int a, int b) const {
    return tensors[a].offset < tensors[b].offset + tensors[b].bytes &&
           tensors[b].offset < tensors[a].offset + tensors[a].bytes;
  }
};

/// Whether conv layer `l` is a 1×1 of one group, stride 1 and no padding: a GEMM over its map's
/// pixels (the convs the folds below join to what is before or after them).
[[nodiscard]] constexpr bool pointwise_layer(const LayerDesc& l) {
  return l.kernel == HW{1} && l.stride == HW{1} && l.padding == HW{0} && l.groups == 1;
}

/// Whether op i of `g` is a conv whose output only op i + 1 reads, a max/avg pool: a backend may
/// run the pair as one op that writes the pooled map directly (conv+pool fusion; the CUDA
/// engine does). The memory plan keeps the conv's inputs live through the pool for that.
template <class G>
[[nodiscard]] constexpr bool pool_fuses_into_conv(const G& g, int i) {
  if (i < 0 || i + 1 >= g.num_ops || g.ops[i].kind != OpKind::conv) {
    return false;
  }
  const auto& conv = g.ops[i];
  const auto& next = g.ops[i + 1];
  return (next.kind == OpKind::max_pool || next.kind == OpKind::avg_pool) && next.in == conv.out &&
         g.tensors[conv.out].uses == 1 && conv.out != g.output;
}

/// Whether op i of `g` is a channel gate's multiply (x times a per-channel gate: a
/// squeeze-excite block's) whose output only op i + 1 reads, a 1×1 conv of one group, stride 1
/// and no padding — an inverted-residual block's projection: a backend may run the pair as one
/// op that folds the gate into the conv's weights, per image (the CUDA engine does: OpDesc::gate).
/// The memory plan keeps the multiply's inputs live through the conv for that.
template <class G>
[[nodiscard]] constexpr bool gate_folds_into_conv(const G& g, int i) {
  if (i < 0 || i + 1 >= g.num_ops || g.ops[i].kind != OpKind::multiply) {
    return false;
  }
  const auto& mul = g.ops[i];
  const auto& conv = g.ops[i + 1];
  const LayerDesc& l = conv.layer;
  return conv.kind == OpKind::conv && conv.in == mul.out && g.tensors[mul.out].uses == 1 &&
         mul.out != g.output && g.tensors[mul.out].view_of < 0 && mul.act.kind == Act::none &&
         pointwise_layer(l);
}

/// Whether conv layer `m` over `c` channels is a depthwise conv the CUDA engine's joined kernels
/// run: one filter per channel, as many outputs, square 3, 5 or 7 taps, stride 1 or 2, dilation 1.
[[nodiscard]] constexpr bool depthwise_layer(const LayerDesc& m, int c) {
  const int k = m.kernel.h;
  return m.groups == c && c > 1 && m.out_channels == c && m.kernel.w == k &&
         (k == 3 || k == 5 || k == 7) && m.stride.w == m.stride.h &&
         (m.stride.h == 1 || m.stride.h == 2) && m.dilation == HW{1};
}

/// Whether op i of `g` is a 1×1 conv of one group, stride 1 and no padding, without a residual,
/// not of the network's input, whose output only op i + 1 reads, a depthwise conv (one filter per
/// channel, as many outputs, square 3, 5 or 7 taps, stride 1 or 2, dilation 1), stored `dtype` in
/// `layout`: an inverted-residual block's expansion and its depthwise conv, which the CUDA engine
/// runs as one op in 16-bit NHWC, never storing the expanded map (OpDesc::expand). The memory
/// plan keeps the expansion's input live through the depthwise conv for that (only there: the
/// arena grows — MobileNetV2's and EfficientNet-B0's by 13% — and a chain of such pairs loses
/// its ping-pong layout).
template <class G>
[[nodiscard]] constexpr bool expansion_folds_into_depthwise(const G& g, int i, DType dtype,
                                                            Layout layout) {
  if (dtype_size(dtype) != 2 || layout != Layout::nhwc || i < 0 || i + 1 >= g.num_ops ||
      g.ops[i].kind != OpKind::conv) {
    return false;
  }
  const auto& e = g.ops[i];
  const auto& d = g.ops[i + 1];
  return d.kind == OpKind::conv && d.in == e.out && g.tensors[e.out].uses == 1 &&
         e.out != g.output && g.tensors[e.out].view_of < 0 && e.in != g.input && e.in2 < 0 &&
         pointwise_layer(e.layer) && depthwise_layer(d.layer, d.in_spec.shape.c);
}

/// Whether op i of `g` is a depthwise conv into which the expansion before it folds
/// (expansion_folds_into_depthwise of op i − 1) — or one without an expansion (a depthwise conv
/// of a tensor other than the network's input, without a residual: MobileNetV2's features.1) —
/// whose output, not the network's output nor a view, only op i + 1 reads, a 1×1 conv of one
/// group, stride 1 and no padding: an inverted-residual block's expansion, depthwise conv and
/// projection (MobileNetV2's), which the CUDA engine may run as one kernel at large batches, never
/// storing the depthwise conv's output (OpDesc::project). The memory plan keeps the block's input
/// (the expansion's, else the depthwise conv's) live through the
/// projection for that (in a block with a residual it is anyway: the projection adds it).
/// projected_block_input: that input tensor, or −1 where op i is no such depthwise conv.
template <class G>
[[nodiscard]] constexpr int projected_block_input(const G& g, int i, DType dtype, Layout layout) {
  if (i < 0 || i + 1 >= g.num_ops || dtype_size(dtype) != 2 || layout != Layout::nhwc) {
    return -1;
  }
  const auto& d = g.ops[i];
  const bool expanded = expansion_folds_into_depthwise(g, i - 1, dtype, layout);
  if (!expanded && !(d.kind == OpKind::conv && d.in != g.input && d.in2 < 0 &&
                     depthwise_layer(d.layer, d.in_spec.shape.c))) {
    return -1;
  }
  const auto& p = g.ops[i + 1];
  const bool joins = p.kind == OpKind::conv && p.in == d.out && g.tensors[d.out].uses == 1 &&
                     d.out != g.output && g.tensors[d.out].view_of < 0 && pointwise_layer(p.layer);
  return !joins ? -1 : expanded ? g.ops[i - 1].in : d.in;
}
template <class G>
[[nodiscard]] constexpr bool projection_folds_into_depthwise(const G& g, int i, DType dtype,
                                                             Layout layout) {
  return projected_block_input(g, i, dtype, layout) >= 0;
}

/// Whether op i of `g` is a batch norm (with its activation, if any), stored `dtype` in `layout`
/// (16-bit NHWC), of neither the network's input nor with a residual, whose result — not the
/// network's output nor a view — only op i + 1 reads (and reads as its input): what the CUDA
/// engine's batch-norm folds ask of the batch norm.
template <class G>
[[nodiscard]] constexpr bool norm_joins_next(const G& g, int i, DType dtype, Layout layout) {
  if (dtype_size(dtype) != 2 || layout != Layout::nhwc || i < 0 || i + 1 >= g.num_ops ||
      g.ops[i].kind != OpKind::batch_norm) {
    return false;
  }
  const auto& bn = g.ops[i];
  return g.ops[i + 1].in == bn.out && g.tensors[bn.out].uses == 1 && bn.out != g.output &&
         g.tensors[bn.out].view_of < 0 && bn.in != g.input && bn.in2 < 0;
}

/// Whether op i of `g` is a batch norm (with its activation, if any) whose result only op i + 1
/// reads, a 1×1 conv of one group, stride 1 and no padding, neither adding a residual, the batch
/// norm not of the network's input, stored `dtype` in `layout`: DenseNet's norm → relu → conv,
/// which the CUDA engine runs as one op in 16-bit NHWC, normalizing the conv's input as it loads
/// it (OpDesc::norm). The memory plan keeps the batch norm's input live through the conv (and
/// through the conv's fused pool) for that: without it a transition's pooled output — the next
/// block's concatenation — could be placed over the block's concatenation it reads.
template <class G>
[[nodiscard]] constexpr bool norm_folds_into_conv(const G& g, int i, DType dtype, Layout layout) {
  if (!norm_joins_next(g, i, dtype, layout)) {
    return false;
  }
  const auto& conv = g.ops[i + 1];
  const LayerDesc& l = conv.layer;
  return conv.kind == OpKind::conv && conv.in2 < 0 && pointwise_layer(l);
}

/// Whether op i of `g` is a batch norm (with its activation, if any) whose result only op i + 1
/// reads, a global average pool whose result only op i + 2 reads, a dense layer — the batch norm
/// not of the network's input, stored `dtype` in `layout`: DenseNet's norm5 → relu → pool →
/// classifier, which the CUDA engine runs as one op in 16-bit NHWC, normalizing the map as the
/// pool reads it. The memory plan keeps the batch norm's input live through the dense layer for
/// that (so that the pooled vector and the layer's output are placed clear of it).
template <class G>
[[nodiscard]] constexpr bool norm_folds_into_pooled_dense(const G& g, int i, DType dtype, Layout layout) {
  if (!norm_joins_next(g, i, dtype, layout) || i + 2 >= g.num_ops) {
    return false;
  }
  const auto& pool = g.ops[i + 1];
  const auto& dense = g.ops[i + 2];
  return pool.kind == OpKind::global_avg_pool && dense.kind == OpKind::dense && dense.in == pool.out &&
         g.tensors[pool.out].uses == 1 && pool.out != g.output;
}

/// Plans graph `g` for `dtype`/`layout`: lifetimes from the op list (with pool_fuses_into_conv's,
/// gate_folds_into_conv's, expansion_folds_into_depthwise's, projection_folds_into_depthwise's,
/// norm_folds_into_conv's and
/// norm_folds_into_pooled_dense's rules),
/// then offsets. A linear chain ping-pongs between the bottom and the top of the arena (arena = peak); anything else
/// is placed "greedy by size" (largest tensor first, each at the lowest offset clear of every
/// tensor live with it), so a residual's skip tensor keeps its place until the op that adds it.
/// A concat's output is live from its first slice's writer on; its slices take its place.
template <class G>
consteval auto plan_memory(const G& g, DType dtype, Layout layout) {
  constexpr int n = static_cast<int>(sizeof(g.tensors) / sizeof(g.tensors[0]));
  MemoryPlan<n> p{};
  p.num_tensors = g.num_tensors;
  p.dtype = dtype;
  p.layout = layout;
  bool views = false;
  for (int t = 0; t < g.num_tensors; ++t) {
    const TensorEntry& e = g.tensors[t];
    p.tensors[t].bytes = tensor_bytes(e.spec, dtype, layout);
    p.tensors[t].first = e.producer < 0 ? 0 : e.producer;
    p.tensors[t].last = t == g.output ? g.num_ops : std::max(e.last_use, p.tensors[t].first);
    p.tensors[t].view_of = e.view_of;
    views = views || e.view_of >= 0;
  }
  // A conv with a fused pool still reads its input (and residual) while it writes the pooled
  // map: they stay live through the pool's step, so that the pooled map is placed clear of them.
  // Likewise a gate's multiply folded into the 1×1 conv after it: the conv reads the multiply's
  // inputs (the map and the gate) while it writes its output; and an expansion folded into the
  // depthwise conv after it: that reads the expansion's input while it writes its output (and
  // through the projection after them, where that joins them too: it writes the block's output); and a
  // batch norm folded into the 1×1 conv after it, through the conv's fused pool if it has one,
  // or into a network's head (its global average pool and dense layer).
  // (A channel slice of a concat lives as its concat does: the concat's life is the one kept.)
  const auto keep_through = [&](int t, int step) {
    if (t >= 0) {
      const int owner = g.tensors[t].view_of >= 0 ? g.tensors[t].view_of : t;
      p.tensors[owner].last = std::max(p.tensors[owner].last, step);
    }
  };
  for (int i = 0; i < g.num_ops; ++i) {
    if (pool_fuses_into_conv(g, i) || gate_folds_into_conv(g, i) ||
        expansion_folds_into_depthwise(g, i, dtype, layout)) {
      keep_through(g.ops[i].in, i + 1);
      keep_through(g.ops[i].in2, i + 1);
    }
    if (const int block_in = projected_block_input(g, i, dtype, layout); block_in >= 0) {
      keep_through(block_in, i + 1);
    }
    if (norm_folds_into_conv(g, i, dtype, layout)) {
      keep_through(g.ops[i].in, i + 1 + (pool_fuses_into_conv(g, i + 1) ? 1 : 0));
    }
    if (norm_folds_into_pooled_dense(g, i, dtype, layout)) {
      keep_through(g.ops[i].in, i + 2);
    }
  }
  for (int step = 0; step <= g.num_ops; ++step) {
    std::int64_t live = 0;
    for (int t = 0; t < g.num_tensors; ++t) {
      if (p.owns_storage(t) && p.tensors[t].first <= step && step <= p.tensors[t].last) {
        live += p.tensors[t].bytes;
      }
    }
    p.peak_bytes = std::max(p.peak_bytes, live);
  }
  // A linear chain (each tensor read only by the op right after its producer): alternate the
  // tensors between the bottom and the top of an arena of exactly the peak size — ping-pong.
  bool chain = !views;
  for (int t = 0; t < g.num_tensors; ++t) {
    chain = chain && p.tensors[t].last <= g.tensors[t].producer + 1;
  }
  if (chain) {
    p.activation_bytes = p.peak_bytes;
    for (int t = 0; t < g.num_tensors; ++t) {
      const int step = g.tensors[t].producer + 1;  // the input is step 0
      p.tensors[t].offset = step % 2 == 0 ? 0 : p.peak_bytes - p.tensors[t].bytes;
    }
    return p;
  }
  // Otherwise greedy by size.
  int order[n]{};
  int count = 0;
  for (int t = 0; t < g.num_tensors; ++t) {
    if (p.owns_storage(t)) {
      order[count++] = t;
    }
  }
  std::sort(order, order + count, [&](int a, int b) {
    if (p.tensors[a].bytes != p.tensors[b].bytes) {
      return p.tensors[a].bytes > p.tensors[b].bytes;
    }
    return a < b;
  });
  bool placed[n]{};
  for (int i = 0; i < count; ++i) {
    const int t = order[i];
    std::int64_t offset = 0;
    bool moved = true;
    while (moved) {  // raise the offset past every placed, co-live tensor it would overlap
      moved = false;
      for (int u = 0; u < g.num_tensors; ++u) {
        if (placed[u] && p.live_together(t, u) && offset < p.tensors[u].offset + p.tensors[u].bytes &&
            p.tensors[u].offset < offset + p.tensors[t].bytes) {
          offset = p.tensors[u].offset + p.tensors[u].bytes;
          moved = true;
        }
      }
    }
    p.tensors[t].offset = offset;
    placed[t] = true;
    p.activation_bytes = std::max(p.activation_bytes, offset + p.tensors[t].bytes);
  }
  for (int t = 0; t < g.num_tensors; ++t) {
    if (!p.owns_storage(t)) {
      const TensorPlacement& base = p.tensors[p.tensors[t].view_of];
      p.tensors[t].offset = base.offset;
      p.tensors[t].first = base.first;
      p.tensors[t].last = base.last;
    }
  }
  return p;
}

}  // namespace strata
