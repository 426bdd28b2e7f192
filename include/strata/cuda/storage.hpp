#pragma once
/// How the CUDA backend stores a network's tensors and weights, per precision: f32 runs NCHW;
/// f16/bf16 run NHWC with channels zero-padded to a multiple of 8 (tensor cores), and a 16-bit
/// stride-2 first conv with fewer than 8 input channels reads its input space-to-depth. Pure
/// constexpr/host code with no CUDA header, so the rules are tested with a plain host compiler.
///
/// `NetStorage<Net, P>::describe()` turns the compile-time graph into `NetDesc`, a run-time,
/// network-independent description (storage shapes, conv geometry, arena offsets per image)
/// from which the tactics, the tuner and the executor work without naming the network's type.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <optional>
#include <type_traits>
#include <vector>

#include "strata/core/dtype.hpp"
#include "strata/core/error.hpp"
#include "strata/core/shape.hpp"
#include "strata/pipeline/pipeline.hpp"

namespace strata::cuda {

/// The activation layout the CUDA backend uses for precision `p`: NCHW for f32 (cuDNN's FMA
/// algorithms), NHWC for the tensor-core precisions (f16, bf16, tf32).
[[nodiscard]] constexpr Layout storage_layout(DType p) {
  return p == DType::f32 ? Layout::nchw : Layout::nhwc;
}

/// Channel slots per pixel for `c` channels in precision `p`: c (f32), c rounded up to 8
/// (NHWC: every pixel's channels 16-byte aligned in 16-bit, 32 in tf32, as tensor cores want).
[[nodiscard]] constexpr int channel_slots(int c, DType p) {
  return storage_layout(p) == Layout::nhwc ? (c + 7) / 8 * 8 : c;
}

/// Geometry of one convolution in storage terms (as executed: space-to-depth changes the
/// kernel, stride and padding).
struct ConvGeom {
  int c = 0, cp = 0;   ///< input channels, and slots per pixel
  int h = 0, w = 0;    ///< input height, width
  int k = 0, kp = 0;   ///< output channels, and slots per pixel
  int oh = 0, ow = 0;  ///< output height, width
  int groups = 1;
  /// Channel dims padded (c→cp, k→kp) and packed; otherwise true dims with padded strides (a
  /// grouped 16-bit conv whose channels are not multiples of 8).
  bool packed = true;
  int xc = 0;   ///< input channels as the library sees them (cp when packed, else c)
  int kd = 0;   ///< filter rows (kp when packed, else k)
  int fcg = 0;  ///< filter input channels per group (xc / groups)
  int kh = 0, kw = 0, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  bool s2d = false;  ///< the input is stored space-to-depth

  /// Multiply-adds per output element (the direct kernel's dot-product length).
  [[nodiscard]] constexpr int window() const { return kh * kw * fcg; }
};

/// A max/avg pool that reads only a conv's output, run as part of that conv (the conv+pool
/// fusion): tactics that can pool in their epilogue write the pooled map directly, so the
/// unpooled map never reaches memory; the others write it to its arena slot, then pool.
struct PoolEpilogue {
  int index = 0;              ///< the pool's op index in the network
  std::string label;          ///< "max_pool3"
  OpKind kind = OpKind::max_pool;
  LayerDesc layer{};
  Shape out_shape{};          ///< the pooled map
  int out_cp = 0;
  std::int64_t out_offset = 0;  ///< arena offset per image of the pooled map
};

/// A global average pool whose output only the next dense layer reads, run as part of that dense
/// layer (fold_pooled_dense, per-op path): what the stand-alone pool reads (gap_op). The dense
/// layer's own input fields stay the pooled vector's, where a tactic that does not read the map
/// itself has the pool write it first.
struct GapPrologue {
  int index = 0;              ///< the pool's op index in the network
  std::string label;          ///< "avgpool"
  LayerDesc layer{};
  Shape in_shape{};           ///< the map it averages
  int in_cp = 0;
  std::int64_t in_offset = 0;  ///< arena offset per image of the map
  int in_id = -1;
  /// An activation deferred into the pool's read (defer_activations: the producer's, which a
  /// library could not fuse), applied to each value and rounded to the storage type before it
  /// is summed; none where the map is as stored.
  ActDesc in_act{};
};

/// A channel gate's multiply (x · gate, the gate (C,1,1) a squeeze-excite branch's result) whose
/// output only the next conv reads, a 1×1 conv, run as part of that conv (fold_gated_convs,
/// per-op path): what the stand-alone multiply reads (gate_op). The conv's own input fields stay
/// the product's, where a tactic that does not fold the gate itself has the multiply write it
/// first. The memory plan keeps x and the gate live through the conv (gate_folds_into_conv).
struct GatePrologue {
  int index = 0;               ///< the multiply's op index in the network
  std::string label;           ///< "features.2.0.block.multiply2+mul"
  LayerDesc layer{};
  std::int64_t x_offset = 0;   ///< arena offset per image of the gated map (the conv's shape)
  int x_id = -1;
  std::int64_t gate_offset = 0;  ///< arena offset per image of the gate (in_cp slots)
  int gate_id = -1;
};

/// A final softmax/log_softmax run as part of the dense layer whose output only it reads
/// (fold_final_softmax, per-op path): what the stand-alone op would have been (softmax_op).
struct SoftmaxEpilogue {
  int index = 0;              ///< the softmax's op index in the network
  std::string label;          ///< "softmax12"
  OpKind kind = OpKind::softmax;
  LayerDesc layer{};
  Shape out_shape{};
  int out_cp = 0;
  std::int64_t out_offset = 0;
  int out_id = -1;
};

/// Element strides of a tensor as stored: channel `c` of pixel `p` of image `n` is at
/// n·image + p·pixel + c·channel.
struct ElemStrides {
  std::int64_t image = 0;
  std::int64_t pixel = 0;
  std::int64_t channel = 0;
};

/// Where an op whose result is a concat branch writes it: a channel slice of the concat's output
/// (the memory plan's `view_of`). The slice starts `c0` channels into every pixel of the output,
/// whatever c0 is: the output keeps one dense layout (NHWC: pad8 of the total channels per
/// pixel), which every consumer reads as usual. The writer writes `write` slots per pixel — its
/// own `c` channels, and the last slice also the output's padding slots, as zeros — so slices
/// never overlap. Tactics that write through strides do it in place; for the others
/// prepare_step (tactics/registry.hpp) runs the op into the arena's staging area and a strided
/// copy writes the slice.
struct OutSlice {
  int c0 = 0;                    ///< the slice's first channel (feature, in a flat concat)
  int c = 0;                     ///< channels the op produces
  int write = 0;                 ///< channel slots written per pixel (see above)
  std::int64_t elem_offset = 0;  ///< elements from an image's start to the slice's first one
  ElemStrides strides;           ///< the slice's strides (those of the concat's output)
  /// A (C,H,W) result landing in a flat concat's features, in flatten order (c, y, x): NHWC
  /// storage must be rearranged, so only a strided copy writes it there.
  bool flatten = false;
  /// 16-bit NHWC: the slice starts on a 16-byte boundary and holds whole groups of 8 slots, so a
  /// vectorised writer may write it (always true in f32).
  bool aligned = false;
};

/// One op of the network in storage terms, independent of the network's type.
struct OpDesc {
  int index = 0;
  std::string label;          ///< "layer1.0.conv2+bn2+add+relu"
  OpKind kind = OpKind::conv;
  LayerDesc layer{};
  ActDesc act{};
  /// The activation of this op's producer, applied as this op reads its input (the producer
  /// stores its result before the activation; see defer_activations): by the tactic itself
  /// (Tactic::reads_input_act), else in place just before it (prepare_step).
  ActDesc in_act{};
  /// The label of the op that applies this op's activation as it reads this op's result (set by
  /// defer_activations; this op's `act` is then none), or empty.
  std::string act_applied_by;
  Shape in_shape{};           ///< the stored input (the producer's shape: flatten is a view)
  Shape out_shape{};
  int in_cp = 0;              ///< channel slots of the input
  int out_cp = 0;             ///< channel slots of the output
  bool has_residual = false;  ///< a tensor `z` is added before the activation
  bool has_bias = true;       ///< conv/dense: a bias of its own or a folded batch norm's
  std::int64_t in_offset = 0;   ///< arena offsets per image (× batch at batch N)
  std::int64_t z_offset = -1;
  std::int64_t out_offset = 0;
  /// A final softmax/log_softmax writes the caller's f32 output itself (no output step).
  bool writes_user_output = false;
  /// The op's result is the network's output: the output step converts it into the caller's
  /// f32 output, unless the op's step writes that itself (Step::writes_network_output).
  bool net_output = false;
  ConvGeom conv{};            ///< conv ops only
  int dense_kin = 0;          ///< dense ops: input slots per image (flatten order permuted)
  /// conv ops only: the pool fused into this op (out_shape/out_offset stay the unpooled map's;
  /// the op's result is the pool's output).
  std::optional<PoolEpilogue> pool;
  /// dense ops only (per-op path; fold_pooled_dense), and the first conv of a folded
  /// squeeze-excite gate (OpDesc::squeeze): the global average pool before this layer, run as
  /// part of this op; in_shape/in_offset/in_id stay the pooled vector's.
  std::optional<GapPrologue> gap;
  /// conv ops only (per-op path; fold_gated_convs): the channel gate's multiply before this 1×1
  /// conv, run as part of this op; in_shape/in_offset/in_id stay the product's. A tactic that
  /// folds the gate into the weights says so (Tactic::fuses_gate: OpIo::gate_x, OpIo::gate);
  /// prepare_step otherwise runs the multiply first.
  std::optional<GatePrologue> gate;
  /// dense ops only (per-op path; fold_final_softmax): the network's final softmax/log_softmax
  /// run as part of this op, into the caller's output (writes_user_output); out_shape/out_offset
  /// stay the dense layer's.
  std::optional<SoftmaxEpilogue> softmax;
  /// conv ops only (per-op path; fold_side_convs): a 1×1 conv over the same input whose output
  /// pixels are this conv's windows' centres — ResNet's downsample, beside its block's first
  /// conv — run as part of this op (label "main & side"). A tactic that computes both says so
  /// (Tactic::fuses_side: OpIo::side_y, side_weights); prepare_step otherwise runs the side conv
  /// first, on the heuristic's choice for it, then this one.
  std::shared_ptr<const OpDesc> side;
  /// Depthwise conv ops only (per-op path, 16-bit NHWC; fold_expanded_depthwise): the 1×1
  /// expansion conv whose result only this conv reads — an inverted-residual block's first two
  /// layers — run as part of this op (label "<expansion>+<depthwise>"); in_shape/in_offset/in_id
  /// stay the expanded map's. A tactic that computes both says so (Tactic::fuses_expand:
  /// OpIo::expand_x, expand_weights) and the expanded map is then never stored; prepare_step
  /// otherwise runs the expansion first, on the heuristic's choice for it, into the expanded
  /// map's slot. The memory plan keeps the expansion's input live through this op
  /// (expansion_folds_into_depthwise).
  std::shared_ptr<const OpDesc> expand;
  /// A squeeze-excite gate's second 1×1 conv only (per-op path, 16-bit NHWC;
  /// fold_squeeze_excite): its first one — with the global average pool before it as that op's
  /// own folded pool (its `gap`) — run as part of this op (label "<pool>+<fc1>+<fc2>");
  /// in_shape/in_offset/in_id stay the first conv's output's. A tactic that computes all three
  /// says so (Tactic::fuses_squeeze: OpIo::squeeze_x, squeeze_weights) and the pooled and
  /// squeezed vectors are then never stored; prepare_step otherwise runs the pool and the first
  /// conv first, on the heuristic's choices, into their slots (OpIo::squeeze_pooled, io.x).
  std::shared_ptr<const OpDesc> squeeze;
  /// A 1×1 conv only (per-op path, 16-bit NHWC; fold_normed_convs): the batch norm and its
  /// activation whose result only this conv reads — DenseNet's norm1+relu1 before each layer's
  /// conv1, over the block's running concatenation — run as part of this op (label
  /// "<norm>+<conv>", the shared scope written once); in_shape/in_offset/in_id stay the
  /// normalized map's. A tactic that computes both says so (Tactic::fuses_norm: OpIo::norm_x,
  /// norm_weights) and the normalized map is then never stored; prepare_step otherwise runs the
  /// batch norm first (Strata's pointwise kernel) into the conv's input slot.
  /// Also a dense op with a folded global average pool (fold_normed_pooled_dense: DenseNet's norm5
  /// and ReLU before its head): the batch norm whose map only that pool reads; the tactic
  /// normed_head runs the two as one kernel into the dense layer's input slot, gap_dense fuse 1
  /// all three as one kernel into the output, and prepare_step otherwise runs the batch norm
  /// first into the pool's map (OpIo::gap_in).
  std::shared_ptr<const OpDesc> norm;
  std::string norm_conv_label;  ///< with `norm`: the conv's own label (norm_main)
  /// A size-keeping k×k conv only (per-op path at large batches, 16-bit NHWC;
  /// fold_bottleneck_convs): the 1×1 conv with its folded batch norm (its own `norm`) whose
  /// result only this conv reads — DenseNet's norm1+relu1+conv1+norm2+relu2 before each layer's
  /// conv2 — run as part of this op (label "<bottleneck>+<conv>", the shared scope written once);
  /// in_shape/in_offset/in_id stay the bottleneck's output's. A tactic that computes both says so
  /// (Tactic::fuses_bottleneck: OpIo::bottleneck_*) and the bottleneck's output is then never
  /// stored; prepare_step otherwise runs the bottleneck first, on the heuristic's choice for it,
  /// into this conv's input slot.
  std::shared_ptr<const OpDesc> bottleneck;
  std::string bottleneck_conv_label;  ///< with `bottleneck`: the conv's own label (bottleneck_main)
  /// A conv with a folded channel gate only (per-op path at batch 1, 16-bit NHWC;
  /// fold_excited_gates): the squeeze-excite op that computes the gate — the second 1×1 conv with
  /// its folded pool and first conv (its own `squeeze`), pooling the very map the gate multiplies
  /// — run as part of this op (label "<pool>+<fc1>+<fc2>+<multiply>+<conv>", the shared scope
  /// written once). A tactic that computes all of it says so (Tactic::fuses_excite:
  /// OpIo::excite) and the gate is then never stored; prepare_step otherwise runs the
  /// squeeze-excite op first, on the heuristic's choice for it, into the gate's slot (io.gate).
  std::shared_ptr<const OpDesc> excite;
  std::string excite_conv_label;  ///< with `excite`: the gated conv's own label (excite_main)
  /// A depthwise conv only (per-op path at batch 1, 16-bit NHWC; fold_tailed_gates): the
  /// squeeze-excite op after it — the second 1×1 conv with its folded pool and first conv, pooling
  /// this op's result — run as part of this op, *after* it (label "<conv>+<pool>+<fc1>+<fc2>",
  /// the shared scope written once). A tactic that computes it says so (Tactic::fuses_tail:
  /// OpIo::tail; depthwise_band's last block of an image computes the gate from its blocks'
  /// channel sums); prepare_step otherwise runs the conv, then the squeeze-excite op on the
  /// heuristic's choice for it: the same launches as before.
  std::shared_ptr<const OpDesc> tail;
  std::string tail_conv_label;  ///< with `tail`: the conv's own label (tail_main)
  /// A depthwise conv with a folded expansion, or with no fold (per-op path at large batches,
  /// project_min_batch, and at the smallest, EngineOptions::block_clusters; 16-bit NHWC;
  /// fold_projected_depthwise): the 1×1 projection conv after it
  /// whose input only this op's result is — an inverted-residual block's last layer, with its
  /// residual add — run as part of this op, *after* it (label "<expansion>+<depthwise>+
  /// <projection>", the shared scope written once). This op's own fields stay the depthwise
  /// conv's; the block's output is the projection's (project->out_offset, out_id). A tactic that
  /// computes all three says so (Tactic::fuses_project: OpIo::project) and the depthwise conv's
  /// result is then never stored; prepare_step otherwise runs this op, then the projection on the
  /// heuristic's choice for it: the same launches as before.
  std::shared_ptr<const OpDesc> project;
  std::string project_conv_label;  ///< with `project`: the depthwise op's own label (project_main)
  /// The op's result (the pooled map, for a conv with a fused pool) is a concat's channel slice.
  std::optional<OutSlice> slice;
  /// The op's input is a channel slice of a concat's output left in place (graph.hpp,
  /// identity_stays: a DenseNet layer reads the block's running concatenation inside the next
  /// layer's output): where it lies, as its writers see it (c0, elem_offset, strides). Only
  /// tactics that say so (Tactic::reads_slice) run such an op.
  std::optional<OutSlice> in_slice;
  /// The network's tensor ids of the input, the residual (or -1) and the output (the graph's
  /// numbering; the pooled map's for a conv with a fused pool).
  int in_id = -1;
  int z_id = -1;
  int out_id = -1;
};

/// Whether conv geometry `g` is a 1×1 of one group, stride 1 and no padding over packed slots,
/// not read space-to-depth: a GEMM over the map's pixels as stored (what the per-op folds of
/// 1×1 convs ask of them).
[[nodiscard]] constexpr bool pointwise_geom(const ConvGeom& g) {
  return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0 &&
         g.groups == 1 && g.packed && !g.s2d;
}

/// Whether Strata's depthwise kernel (kernels::depthwise, 16-bit NHWC storage) runs conv `op`:
/// one filter per channel (groups = input channels = output channels), a square kernel of 3, 5
/// or 7 taps, equal strides of 1 or 2, any padding and dilation, no fused pool, and an input
/// patch that fits 48 KiB of shared memory (depthwise_smem_bytes).
[[nodiscard]] constexpr std::int64_t depthwise_smem_bytes(const ConvGeom& cg) {
  const std::int64_t rows = 7 * cg.sh + (cg.kh - 1) * cg.dh + 1;  // an 8×8 output tile's patch
  const std::int64_t cols = 7 * cg.sw + (cg.kw - 1) * cg.dw + 1;
  return static_cast<std::int64_t>(cg.kh) * cg.kw * 32 * 4 + rows * cols * 32 * 2;
}
[[nodiscard]] constexpr bool depthwise_runs(const OpDesc& op) {
  const ConvGeom& cg = op.conv;
  return op.kind == OpKind::conv && !op.pool && !cg.s2d && cg.groups > 1 && cg.groups == cg.c &&
         cg.k == cg.c && cg.kh == cg.kw && (cg.kh == 3 || cg.kh == 5 || cg.kh == 7) &&
         cg.sh == cg.sw && (cg.sh == 1 || cg.sh == 2) && depthwise_smem_bytes(cg) <= (48 << 10);
}

/// Whether Strata's 1x1-conv-of-a-pixel kernel (kernels::pixel_conv1x1, 16-bit storage) runs
/// conv `op`: a 1×1 conv, one group, no padding, of a 1×1 map (a squeeze-excite gate's two
/// layers), without a residual.
[[nodiscard]] constexpr bool pixel_conv1x1_runs(const OpDesc& op) {
  const ConvGeom& cg = op.conv;
  return op.kind == OpKind::conv && !op.pool && !op.has_residual && !cg.s2d && cg.packed &&
         cg.groups == 1 && cg.kh == 1 && cg.kw == 1 && cg.ph == 0 && cg.pw == 0 && cg.h == 1 &&
         cg.w == 1 && cg.oh == 1 && cg.ow == 1;
}

/// Whether tactics that fuse only ReLU into a convolution or GEMM (cuDNN's legacy fused call,
/// cuBLASLt's epilogues) would need a separate pass for activation `a`.
[[nodiscard]] constexpr bool needs_activation_pass(const ActDesc& a) {
  return a.kind != Act::none && a.kind != Act::relu;
}

/// An op run as part of `host` (a fused pool, a folded softmax) as it would stand alone: it reads
/// `host`'s own output (its shape, slots and arena slot).
template <class Epilogue>
[[nodiscard]] OpDesc epilogue_op(const OpDesc& host, const Epilogue& e) {
  OpDesc d;
  d.index = e.index;
  d.label = e.label;
  d.kind = e.kind;
  d.layer = e.layer;
  d.in_shape = host.out_shape;
  d.out_shape = e.out_shape;
  d.in_cp = host.out_cp;
  d.out_cp = e.out_cp;
  d.in_offset = host.out_offset;
  d.out_offset = e.out_offset;
  return d;
}

/// The stand-alone pool op of a conv op's fused pool: it reads the conv's (unpooled) output.
[[nodiscard]] inline OpDesc pool_op(const OpDesc& conv) {
  OpDesc d = epilogue_op(conv, conv.pool.value());
  d.slice = conv.slice;
  return d;
}

/// The stand-alone softmax op of a dense op's folded softmax: it reads the dense layer's output
/// and writes the caller's output.
[[nodiscard]] inline OpDesc softmax_op(const OpDesc& dense) {
  OpDesc d = epilogue_op(dense, dense.softmax.value());
  d.writes_user_output = true;
  d.in_id = dense.out_id;
  d.out_id = dense.softmax->out_id;
  return d;
}

/// The stand-alone global average pool of a dense op's folded pool (OpDesc::gap): it reads the
/// map and writes the dense layer's input.
[[nodiscard]] inline OpDesc gap_op(const OpDesc& dense) {
  const GapPrologue& g = dense.gap.value();
  OpDesc d;
  d.index = g.index;
  d.label = g.label;
  d.kind = OpKind::global_avg_pool;
  d.layer = g.layer;
  d.in_shape = g.in_shape;
  d.in_cp = g.in_cp;
  d.in_offset = g.in_offset;
  d.in_id = g.in_id;
  d.in_act = g.in_act;
  d.out_shape = dense.in_shape;
  d.out_cp = dense.in_cp;
  d.out_offset = dense.in_offset;
  d.out_id = dense.in_id;
  d.has_bias = false;
  return d;
}

/// The stand-alone multiply of a conv's folded gate (OpDesc::gate): it reads the map and the gate
/// and writes the conv's input slot.
[[nodiscard]] inline OpDesc gate_op(const OpDesc& conv) {
  const GatePrologue& g = conv.gate.value();
  OpDesc d;
  d.index = g.index;
  d.label = g.label;
  d.kind = OpKind::multiply;
  d.layer = g.layer;
  d.in_shape = conv.in_shape;
  d.in_cp = conv.in_cp;
  d.in_offset = g.x_offset;
  d.in_id = g.x_id;
  d.has_residual = true;  // (the gate, read as the second operand)
  d.z_offset = g.gate_offset;
  d.z_id = g.gate_id;
  d.out_shape = conv.in_shape;
  d.out_cp = conv.in_cp;
  d.out_offset = conv.in_offset;
  d.out_id = conv.in_id;
  d.has_bias = false;
  return d;
}

/// `joined` as it was before the fold that joined `part` to it (OpDesc::excite, tail, norm,
/// bottleneck: the joins that keep the main op's own label in `own_label`).
[[nodiscard]] inline OpDesc unjoined(const OpDesc& joined, std::shared_ptr<const OpDesc> OpDesc::*part,
                                     std::string OpDesc::*own_label) {
  OpDesc c = joined;
  (c.*part).reset();
  c.label = joined.*own_label;
  (c.*own_label).clear();
  return c;
}

/// The gated conv of an op with a folded squeeze-excite op (OpDesc::excite) as it was before
/// that fold (the squeeze-excite op, *op.excite, runs first, into the gate's slot).
[[nodiscard]] inline OpDesc excite_main(const OpDesc& joined) {
  return unjoined(joined, &OpDesc::excite, &OpDesc::excite_conv_label);
}

/// The depthwise conv of an op with a squeeze-excite op joined after it (OpDesc::tail) as it was
/// before the fold: the op prepare_step runs first where the tactic does not compute the tail.
[[nodiscard]] inline OpDesc tail_main(const OpDesc& joined) {
  return unjoined(joined, &OpDesc::tail, &OpDesc::tail_conv_label);
}

/// The depthwise conv (with its folded expansion) of an op with the projection joined after it
/// (OpDesc::project) as it was before the fold: the op prepare_step runs first where the tactic
/// does not compute the projection.
[[nodiscard]] inline OpDesc project_main(const OpDesc& joined) {
  return unjoined(joined, &OpDesc::project, &OpDesc::project_conv_label);
}

/// The conv of an op with a folded gate as it was before the fold (gate_op runs first; before
/// it, a folded squeeze-excite op's, excite_main).
[[nodiscard]] inline OpDesc gate_conv(const OpDesc& joined) {
  OpDesc c = joined.excite ? excite_main(joined) : joined;
  c.label = c.label.substr(c.gate->label.size() + 1);
  c.gate.reset();
  return c;
}

/// The positions of a conv's fused pool window rounded up to a power of 2 (1 without a pool):
/// the rows or lanes a kernel gives one pooled output when it computes each position on its own
/// and reduces them with shuffles.
[[nodiscard]] inline int pool_window_lanes(const OpDesc& conv) {
  if (!conv.pool) {
    return 1;
  }
  const int n = conv.pool->layer.kernel.h * conv.pool->layer.kernel.w;
  int l = 1;
  while (l < n) {
    l *= 2;
  }
  return l;
}

/// The whole network in storage terms: its ops, the input and output conversions, the arena.
struct NetDesc {
  DType precision = DType::f32;
  Layout layout = Layout::nchw;
  std::vector<OpDesc> ops;
  Shape in_shape{};                 ///< as declared (the caller's f32 input)
  Layout in_layout = Layout::nchw;  ///< the caller's layout
  std::int64_t input_offset = 0;    ///< where the converted input lives (per image)
  int input_id = -1;                ///< the network's tensor id of the input (OpDesc::in_id)
  int s2d_op = -1;                  ///< the op that reads the input space-to-depth, or -1
  Shape s2d_shape{};                ///< the space-to-depth input's shape when s2d_op >= 0
  Shape out_storage{};              ///< the stored output tensor
  Shape out_shape{};                ///< as declared (the caller's f32 output)
  std::int64_t output_offset = 0;
  bool needs_output_step = true;    ///< the last op does not write the caller's output itself
  std::int64_t arena_per_image = 0;  ///< the memory plan's arena, then the staging area
  /// Where an op writing a concat's slice through a tactic that cannot write strided output puts
  /// its result first (per image, after the memory plan's tensors; see OutSlice).
  std::int64_t staging_offset = 0;
  std::int64_t staging_bytes = 0;
  /// Whether the whole network may run as one fused kernel (fused_network.hpp), and why not.
  bool fused_fits = false;
  std::string fused_reason;
  std::int64_t flops_per_image = 0;
  /// The last op is a softmax/log_softmax writing the caller's output from a dense layer's
  /// output that nothing else reads (the op before it): fold_final_softmax may join the two.
  bool final_softmax_folds = false;

  /// The op of network index `i` (an op may carry the next one fused, so positions and
  /// indices differ), also where a fold has joined it into another (OpDesc::expand, project,
  /// tail, side, squeeze, norm, bottleneck, excite: a stem joined to the depthwise conv after it
  /// is still the op that reads the input space-to-depth, NetDesc::s2d_op).
  [[nodiscard]] const OpDesc& op_at(int i) const {
    // (a joined op keeps its main op's index; the ops joined into it keep theirs)
    const auto find = [i](const auto& self, const OpDesc& op) -> const OpDesc* {
      if (op.index == i) {
        return &op;
      }
      for (const OpDesc* sub : {op.expand.get(), op.project.get(), op.tail.get(), op.side.get(), op.squeeze.get(),
                                op.norm.get(), op.bottleneck.get(), op.excite.get()}) {
        if (const OpDesc* f = sub != nullptr ? self(self, *sub) : nullptr; f != nullptr) {
          return f;
        }
      }
      return nullptr;
    };
    for (const OpDesc& op : ops) {
      if (const OpDesc* f = find(find, op); f != nullptr) {
        return *f;
      }
    }
    STRATA_CHECK(false, "NetDesc: no op with index " << i);
    return ops.front();
  }
};

/// A producer whose activation a reader applies (OpDesc::act_applied_by, defer_activations)
/// names that reader by its label: where a fold relabels the reader `from` as `to`, so does it.
inline void rename_applier(NetDesc& n, const std::string& from, const std::string& to) {
  for (OpDesc& o : n.ops) {
    if (o.act_applied_by == from) {
      o.act_applied_by = to;
    }
  }
}

/// For the per-op path: the network's final softmax/log_softmax joined to the dense layer before
/// it (NetDesc::final_softmax_folds) as one op, "dense11+softmax12", which a tactic may run as
/// one kernel (Tactic::fuses_softmax) and prepare_step otherwise runs as the dense layer, then
/// Strata's softmax kernel — the same two launches as before. Not where either op's activation
/// is deferred into a read (defer_activations). The fused-network kernel keeps the ops apart.
inline void fold_final_softmax(NetDesc& n) {
  // (the network's shape, final_softmax_folds; whether it is folded already; the activations)
  if (!n.final_softmax_folds || n.ops.size() < 2 ||
      (n.ops.back().kind != OpKind::softmax && n.ops.back().kind != OpKind::log_softmax)) {
    return;
  }
  OpDesc& dense = n.ops[n.ops.size() - 2];
  const OpDesc& sm = n.ops.back();
  if (!dense.act_applied_by.empty() || sm.in_act.kind != Act::none) {
    return;
  }
  dense.softmax = SoftmaxEpilogue{sm.index, sm.label,     sm.kind,     sm.layer,
                                  sm.out_shape, sm.out_cp, sm.out_offset, sm.out_id};
  const std::string before = dense.label;
  dense.label += "+" + sm.label;
  rename_applier(n, before, dense.label);
  if (dense.norm) {  // (fold_normed_pooled_dense's: the layer's own label, as norm_main gives it)
    dense.norm_conv_label += "+" + sm.label;
  }
  dense.writes_user_output = true;
  n.ops.pop_back();
}

/// Whether op `o` reads tensor `t` (the network's tensor id), in any role: its input, its
/// residual, a folded pool's map, a folded gate's map or gate, a side conv's input or residual,
/// a folded expansion's input, a folded squeeze-excite gate's map, a folded batch norm's input,
/// what a folded bottleneck or squeeze-excite op reads, a joined projection's residual.
[[nodiscard]] inline bool reads_tensor(const OpDesc& o, int t) {
  return t >= 0 && (o.in_id == t || o.z_id == t || (o.gap && o.gap->in_id == t) ||
         (o.gate && (o.gate->x_id == t || o.gate->gate_id == t)) ||
         (o.side && (o.side->in_id == t || o.side->z_id == t)) ||
         (o.expand && o.expand->in_id == t) || (o.squeeze && o.squeeze->gap->in_id == t) ||
         (o.norm && o.norm->in_id == t) || (o.bottleneck && reads_tensor(*o.bottleneck, t)) ||
         (o.excite && reads_tensor(*o.excite, t)) || (o.tail && reads_tensor(*o.tail, t)) ||
         (o.project && o.project->z_id == t));
}

/// Whether tensor `t` is read by an op of `n` other than `reader`, or by `reader` in another role
/// than its input (as its residual) — what keeps a producer from being joined to `reader`.
[[nodiscard]] inline bool read_besides(const NetDesc& n, int t, const OpDesc& reader) {
  return reader.z_id == t || std::any_of(n.ops.begin(), n.ops.end(), [&](const OpDesc& o) {
           return &o != &reader && reads_tensor(o, t);
         });
}

/// For the per-op path: a global average pool whose output only the dense layer after it reads
/// (ResNet's, MobileNet's, EfficientNet's, DenseNet's head: avgpool, flatten, fc) joined to that
/// layer as one op, "avgpool+fc" (OpDesc::gap), which a tactic may run as one kernel
/// (Tactic::fuses_gap) and prepare_step otherwise runs as the pool, then the dense layer — the
/// same two launches as before. An activation deferred into the pool's read (the conv before it:
/// MobileNetV2's ReLU6, EfficientNet's SiLU) goes with it (GapPrologue::in_act). Not where one is
/// deferred into the dense layer's read, nor where
/// either op reads or writes a concat's slice, nor where the pool reads the network's input (the
/// executor's input step is for ops whose own input that is). The fused-network kernel keeps
/// the ops apart.
inline void fold_pooled_dense(NetDesc& n) {
  for (std::size_t i = 0; i + 1 < n.ops.size(); ++i) {
    const OpDesc& pool = n.ops[i];
    OpDesc& dense = n.ops[i + 1];
    if (pool.kind != OpKind::global_avg_pool || dense.kind != OpKind::dense || dense.gap ||
        dense.in_id != pool.out_id ||
        dense.in_act.kind != Act::none || pool.act.kind != Act::none ||
        !pool.act_applied_by.empty() || pool.slice || pool.in_slice || dense.in_slice ||
        pool.writes_user_output || pool.pool || pool.in_id == n.input_id) {
      continue;
    }
    const bool read_elsewhere = std::any_of(n.ops.begin(), n.ops.end(), [&](const OpDesc& o) {
      return &o != &dense && reads_tensor(o, pool.out_id);
    });
    if (read_elsewhere) {
      continue;
    }
    dense.gap = GapPrologue{pool.index,    pool.label,     pool.layer, pool.in_shape,
                            pool.in_cp,    pool.in_offset, pool.in_id, pool.in_act};
    dense.label = pool.label + "+" + dense.label;
    rename_applier(n, pool.label, dense.label);
    n.ops.erase(n.ops.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

/// A byte range of the arena per image, [begin, end) (× the batch at a batch).
struct ArenaRange {
  std::int64_t begin = 0;
  std::int64_t end = 0;
  [[nodiscard]] bool overlaps(const ArenaRange& o) const { return begin < o.end && o.begin < end; }
};

/// The bytes per image of a tensor of shape `s`, `cp` slots a pixel, `elem`-byte elements, at
/// arena offset `offset`.
[[nodiscard]] inline ArenaRange arena_range(std::int64_t offset, const Shape& s, int cp, int elem) {
  return ArenaRange{offset, offset + std::int64_t{s.h} * s.w * cp * elem};
}

/// For the per-op path, 16-bit NHWC: a channel gate's multiply (a squeeze-excite block's x · gate)
/// whose product only the 1×1 conv after it reads (gate_folds_into_conv: EfficientNet's
/// projections) joined to that conv as one op, "<multiply>+<conv>" (OpDesc::gate), which a
/// tactic may run by folding the gate into the conv's weights, per image (Tactic::fuses_gate) —
/// the product, the size of the block's largest tensor, is then never written nor read — and
/// prepare_step otherwise runs as the multiply, then the conv: the same two launches as before.
/// Not where an activation is deferred into either read or applied after the product, nor where
/// either op reads or writes a concat's slice, nor where the multiply reads the network's input,
/// nor where anything but the conv's input reads the product (the conv's residual included);
/// and only where the memory plan kept the map and the gate clear of the conv's output.
inline void fold_gated_convs(NetDesc& n) {
  if (!is_16bit(n.precision) || n.layout != Layout::nhwc) {
    return;
  }
  const int elem = dtype_size(n.precision);
  for (std::size_t i = 0; i + 1 < n.ops.size(); ++i) {
    const OpDesc& mul = n.ops[i];
    OpDesc& conv = n.ops[i + 1];
    const ConvGeom& cg = conv.conv;
    if (mul.kind != OpKind::multiply || conv.kind != OpKind::conv || conv.gate || conv.gap ||
        conv.side || conv.pool || conv.slice || conv.in_id != mul.out_id ||
        mul.in_act.kind != Act::none || mul.act.kind != Act::none ||
        !mul.act_applied_by.empty() || conv.in_act.kind != Act::none || mul.slice ||
        mul.in_slice || conv.in_slice || mul.writes_user_output || mul.net_output ||
        mul.in_id == n.input_id || !pointwise_geom(cg)) {
      continue;
    }
    // The product read by the conv as its input only: not as its residual too (a multiply then
    // `residual(conv<C, 1> | ...)`, whose add fuses into the conv), nor by any other op, in
    // whatever role (input, residual, a folded pool's map, a folded gate's map or gate).
    const bool read_elsewhere = read_besides(n, mul.out_id, conv);
    // The map and the gate clear of the conv's output (the memory plan's rule keeps them live
    // through the conv; checked here, since the fused step reads them as it writes).
    const ArenaRange y = arena_range(conv.out_offset, conv.out_shape, conv.out_cp, elem);
    const ArenaRange x = arena_range(mul.in_offset, mul.in_shape, mul.in_cp, elem);
    const ArenaRange g = arena_range(mul.z_offset, Shape{mul.in_shape.c, 1, 1}, mul.in_cp, elem);
    if (read_elsewhere || y.overlaps(x) || y.overlaps(g)) {
      continue;
    }
    conv.gate = GatePrologue{mul.index, mul.label,     mul.layer, mul.in_offset,
                             mul.in_id, mul.z_offset, mul.z_id};
    conv.label = mul.label + "+" + conv.label;
    n.ops.erase(n.ops.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

/// For the per-op path, 16-bit NHWC: a 1×1 expansion conv (one group, stride 1, no padding, no
/// residual) whose result only the depthwise conv after it reads (dilation 1) — the first two
/// layers of MobileNetV2's and EfficientNet's inverted-residual blocks — joined to that conv as
/// one op, "<expansion>+<depthwise>" (OpDesc::expand), which a tactic may run as one kernel
/// keeping the expanded map (six times the block's input) on chip (Tactic::fuses_expand), and
/// prepare_step otherwise runs as the expansion, then the depthwise conv: the same two launches
/// as before. The expansion's activation, or the one deferred into the depthwise conv's read
/// (defer_activations), goes with it. Not where either op reads or writes a concat's slice, nor
/// where the expansion reads the network's input or has a deferred activation of its own, nor
/// where anything but the depthwise conv reads the expanded map (its residual included); and only
/// where the memory plan kept the expansion's input clear of the depthwise conv's output
/// (expansion_folds_into_depthwise).
inline void fold_expanded_depthwise(NetDesc& n) {
  if (!is_16bit(n.precision) || n.layout != Layout::nhwc) {
    return;
  }
  const int elem = dtype_size(n.precision);
  for (std::size_t i = 0; i + 1 < n.ops.size(); ++i) {
    const OpDesc& e = n.ops[i];
    OpDesc& d = n.ops[i + 1];
    const ConvGeom& eg = e.conv;
    const ConvGeom& dg = d.conv;
    const bool expansion = e.kind == OpKind::conv && !e.has_residual && !e.pool && !e.gap &&
                           !e.gate && !e.side && !e.expand && !e.slice && !e.in_slice &&
                           e.in_act.kind == Act::none && !e.net_output && !e.writes_user_output &&
                           e.in_id != n.input_id && pointwise_geom(eg) && eg.cp % 8 == 0 &&
                           eg.fcg == eg.cp && eg.kd == eg.kp &&
                           e.in_cp == eg.cp && e.out_cp == eg.kp;
    if (!expansion || !depthwise_runs(d) || dg.dh != 1 || dg.dw != 1 || d.gate || d.side ||
        d.expand || d.slice ||
        d.in_slice || d.in_id != e.out_id || dg.cp != eg.kp || d.in_cp != dg.cp ||
        (!e.act_applied_by.empty() && e.act_applied_by != d.label)) {
      continue;
    }
    const bool read_elsewhere = read_besides(n, e.out_id, d);
    const ArenaRange y = arena_range(d.out_offset, d.out_shape, d.out_cp, elem);
    const ArenaRange x = arena_range(e.in_offset, e.in_shape, e.in_cp, elem);
    if (read_elsewhere || y.overlaps(x)) {
      continue;
    }
    d.expand = std::make_shared<const OpDesc>(e);
    d.label = e.label + "+" + d.label;
    n.ops.erase(n.ops.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

/// Whether conv op `e` is a network's stem read space-to-depth from the network's input (tensor
/// `input_id`): a 3×3 or 4×4 conv of stride 2 over 3 channels, stored as a 2×2 conv of stride 1
/// over 2×2 blocks of 12 real slots of 16 (is_s2d), one group, nothing else folded into it.
[[nodiscard]] inline bool stem_expansion(const OpDesc& e, int input_id) {
  const ConvGeom& g = e.conv;
  return e.kind == OpKind::conv && e.in_id == input_id && g.s2d && g.c == 12 && g.cp == 16 && g.kh == 2 &&
         g.kw == 2 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0 && g.dh == 1 && g.dw == 1 &&
         g.groups == 1 && g.packed && g.fcg == g.cp && g.kd == g.kp && e.out_cp == g.kp && !e.has_residual &&
         !e.pool && !e.gap && !e.gate && !e.side && !e.expand && !e.slice && !e.in_slice &&
         e.in_act.kind == Act::none && !e.net_output && !e.writes_user_output && e.z_offset < 0;
}

/// Whether op `op` carries the network's stem joined before it (fold_stem_depthwise): its
/// OpDesc::expand reads the input space-to-depth.
[[nodiscard]] inline bool joined_stem(const OpDesc& op) {
  return op.expand != nullptr && op.expand->conv.s2d;
}

/// Whether op `op` reads the network's input (tensor `input_id`) as its input, or through a
/// folded stem (fold_stem_depthwise): the engine hands such an op the caller's input
/// (OpIo::net_input), and the plan needs its input step unless the op's step converts it itself.
[[nodiscard]] inline bool reads_network_input(const OpDesc& op, int input_id) {
  return op.in_id == input_id || (op.expand && op.expand->in_id == input_id);
}

/// For the per-op path, 16-bit NHWC, where EngineOptions::stem_joins asks: the network's stem
/// (stem_expansion: a 3×3/2 conv over the input's 3 channels, MobileNetV2's and EfficientNet's)
/// whose result only the depthwise conv after it reads (dilation 1, over the stem's output map)
/// — those networks' features.0 and features.1's first layer — joined to that conv as one op,
/// "<stem>+<depthwise>" (OpDesc::expand, as fold_expanded_depthwise's), which expand_depthwise
/// may run as one kernel reading the caller's input itself (space-to-depth as the input step
/// would; the stem's map, the largest of either network, never stored), and prepare_step
/// otherwise runs as the stem, then the depthwise conv: the same launches as before. The stem's
/// activation, or the one deferred into the depthwise conv's read, goes with it.
inline void fold_stem_depthwise(NetDesc& n) {
  if (!is_16bit(n.precision) || n.layout != Layout::nhwc) {
    return;
  }
  for (std::size_t i = 0; i + 1 < n.ops.size(); ++i) {
    const OpDesc& e = n.ops[i];
    OpDesc& d = n.ops[i + 1];
    const ConvGeom& eg = e.conv;
    const ConvGeom& dg = d.conv;
    if (!stem_expansion(e, n.input_id) || !depthwise_runs(d) || dg.dh != 1 || dg.dw != 1 || d.gate ||
        d.side || d.expand || d.tail || d.project || d.slice || d.in_slice || d.in_id != e.out_id ||
        dg.cp != eg.kp || d.in_cp != dg.cp || dg.h != eg.oh || dg.w != eg.ow ||
        (!e.act_applied_by.empty() && e.act_applied_by != d.label) || read_besides(n, e.out_id, d)) {
      continue;
    }
    d.expand = std::make_shared<const OpDesc>(e);
    d.label = e.label + "+" + d.label;
    n.ops.erase(n.ops.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

/// The depthwise conv of an op with a folded expansion as it was before the fold (the expansion,
/// *op.expand, runs first).
[[nodiscard]] inline OpDesc expand_main(const OpDesc& joined) {
  OpDesc d = joined;
  d.expand.reset();
  d.label = joined.label.substr(joined.expand->label.size() + 1);
  return d;
}

/// Whether squeeze_excite's kernel holds a squeeze-excite gate of `channels` channel slots
/// squeezed to `squeezed` slots (its shared memory: the pooled vector and the squeezed one, f32).
inline constexpr int squeeze_excite_max_channels = 4096;
inline constexpr int squeeze_excite_max_squeezed = 1024;

/// For the per-op path, 16-bit NHWC: a squeeze-excite gate — a global average pool whose result
/// only a 1×1 conv of the 1×1 map reads (fc1), whose result only another such conv reads (fc2):
/// EfficientNet's and MobileNetV3's `avgpool | fc1 | act | fc2 | sigmoid` — joined to the second
/// conv as one op, "<pool>+<fc1>+<fc2>" (OpDesc::squeeze, holding fc1 with the pool as its
/// `gap`), which a tactic may run as one kernel (Tactic::fuses_squeeze: squeeze_excite, which
/// measured tuning times; at batch 1 the three launches were 12 µs a gate on an H200, the work
/// a few thousand multiply-adds) and prepare_step otherwise runs as the pool, fc1 and fc2: the
/// same three launches as before. fc1's
/// activation, or the one deferred into fc2's read, goes with it. Not where the pool reads the
/// network's input or has an activation of its own or deferred into its read, nor where any of
/// the three reads or writes a concat's slice, nor where anything else reads the pooled or the
/// squeezed vector; and only where the memory plan kept the map clear of the gate.
inline void fold_squeeze_excite(NetDesc& n) {
  if (!is_16bit(n.precision) || n.layout != Layout::nhwc) {
    return;
  }
  const int elem = dtype_size(n.precision);
  const auto plain = [](const OpDesc& o) {
    return !o.gap && !o.gate && !o.side && !o.expand && !o.squeeze && !o.norm && !o.bottleneck && !o.softmax &&
           !o.slice && !o.in_slice && !o.writes_user_output && !o.net_output;
  };
  for (std::size_t i = 0; i + 2 < n.ops.size(); ++i) {
    const OpDesc& pool = n.ops[i];
    const OpDesc& fc1 = n.ops[i + 1];
    OpDesc& fc2 = n.ops[i + 2];
    if (pool.kind != OpKind::global_avg_pool || !plain(pool) || pool.pool ||
        pool.in_act.kind != Act::none || pool.act.kind != Act::none ||
        !pool.act_applied_by.empty() || pool.in_id == n.input_id || !pixel_conv1x1_runs(fc1) ||
        !plain(fc1) || fc1.in_id != pool.out_id || fc1.in_act.kind != Act::none ||
        fc1.in_cp != pool.in_cp || fc1.conv.cp != pool.in_cp ||
        (!fc1.act_applied_by.empty() && fc1.act_applied_by != fc2.label) ||
        !pixel_conv1x1_runs(fc2) || !plain(fc2) || fc2.in_id != fc1.out_id ||
        fc2.in_cp != fc1.out_cp || fc2.conv.cp != fc1.conv.kp || !fc2.act_applied_by.empty() ||
        pool.in_cp % 8 != 0 || fc1.conv.kp % 8 != 0 || fc2.conv.kp % 8 != 0 ||
        pool.in_cp > squeeze_excite_max_channels || fc1.conv.kp > squeeze_excite_max_squeezed) {
      continue;
    }
    const bool read_elsewhere = std::any_of(n.ops.begin(), n.ops.end(), [&](const OpDesc& o) {
      return (&o != &fc1 && reads_tensor(o, pool.out_id)) ||
             (&o != &fc2 && reads_tensor(o, fc1.out_id));
    });
    const ArenaRange y = arena_range(fc2.out_offset, fc2.out_shape, fc2.out_cp, elem);
    const ArenaRange x = arena_range(pool.in_offset, pool.in_shape, pool.in_cp, elem);
    if (read_elsewhere || y.overlaps(x)) {
      continue;
    }
    OpDesc first = fc1;
    first.gap = GapPrologue{pool.index,    pool.label,     pool.layer, pool.in_shape,
                            pool.in_cp,    pool.in_offset, pool.in_id};
    first.label = pool.label + "+" + fc1.label;
    fc2.squeeze = std::make_shared<const OpDesc>(std::move(first));
    fc2.label = fc2.squeeze->label + "+" + fc2.label;
    n.ops.erase(n.ops.begin() + static_cast<std::ptrdiff_t>(i),
                n.ops.begin() + static_cast<std::ptrdiff_t>(i + 2));
  }
}

/// The second conv of an op with a folded squeeze-excite gate as it was before the fold (the
/// pool and the first conv, *op.squeeze, run first).
[[nodiscard]] inline OpDesc squeeze_main(const OpDesc& joined) {
  OpDesc d = joined;
  d.squeeze.reset();
  d.label = joined.label.substr(joined.squeeze->label.size() + 1);
  return d;
}

/// The length of the dotted scope labels `a` and `b` share (up to and including its last '.',
/// within a's first part: before any '+').
[[nodiscard]] inline std::size_t shared_scope(std::string_view a, std::string_view b) {
  std::size_t scope = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size() && a[i] == b[i] && a[i] != '+'; ++i) {
    if (a[i] == '.') {
      scope = i + 1;
    }
  }
  return scope;
}
/// "<a>+<b>" with the dotted scope the two labels share written once:
/// "features.denseblock1.denselayer1.norm1+relu1" and "features.denseblock1.denselayer1.conv1"
/// give "features.denseblock1.denselayer1.norm1+relu1+conv1" (the labels as they are where they
/// share no scope).
[[nodiscard]] inline std::string join_scoped(const std::string& a, const std::string& b) {
  return a + "+" + b.substr(shared_scope(a, b));
}

/// The arena bytes per image that batch norm `bn` reads: its input, or, where it reads a
/// concat's channel slice in place (OpDesc::in_slice), the whole of that concat's image.
[[nodiscard]] inline ArenaRange norm_input_range(const OpDesc& bn, int elem) {
  if (bn.in_slice) {
    return ArenaRange{bn.in_offset, bn.in_offset + bn.in_slice->strides.image * elem};
  }
  return arena_range(bn.in_offset, bn.in_shape, bn.in_cp, elem);
}

/// The arena bytes per image that op `o`'s result occupies: all of the concat whose channel slice
/// it writes, else its pooled map where a pool is fused, else its map.
[[nodiscard]] inline ArenaRange result_range(const OpDesc& o, int elem) {
  const std::int64_t at = o.pool ? o.pool->out_offset : o.out_offset;
  if (o.slice) {
    return ArenaRange{at, at + o.slice->strides.image * elem};
  }
  return o.pool ? arena_range(o.pool->out_offset, o.pool->out_shape, o.pool->out_cp, elem)
                : arena_range(o.out_offset, o.out_shape, o.out_cp, elem);
}

/// Whether Strata's normed 1×1 kernel (tactics/normed_conv.hpp) could run conv `op` once a batch
/// norm is folded into it: a 1×1 conv of one group, stride 1, no padding, packed 16-bit slots in
/// 8s, as many filter rows as output slots, no residual or deferred activation (a fused pool
/// and a concat slice written are the tactic's to take or leave).
[[nodiscard]] inline bool normed_conv_shape(const OpDesc& op) {
  const ConvGeom& g = op.conv;
  return op.kind == OpKind::conv && !op.has_residual && op.in_act.kind == Act::none &&
         pointwise_geom(g) && g.cp % 8 == 0 && g.fcg == g.cp &&
         g.kd == g.kp && g.kp % 8 == 0 && op.in_cp == g.cp && g.h == g.oh && g.w == g.ow;
}

/// Whether `bn` is a batch norm op of `n` that a fold may join to the op after it: it carries no
/// folds of its own, adds no residual, has no activation deferred into its read nor its own
/// deferred, writes no concat slice nor the network's output, does not read the network's input,
/// keeps its shape and slots, and reads any concat slice with unit channel stride, aligned.
[[nodiscard]] inline bool joinable_norm(const NetDesc& n, const OpDesc& bn) {
  return bn.kind == OpKind::batch_norm && !bn.has_residual && bn.in_act.kind == Act::none &&
         bn.act_applied_by.empty() && !bn.slice && !bn.writes_user_output && !bn.net_output &&
         bn.in_id != n.input_id && bn.in_cp == bn.out_cp && bn.in_shape.c == bn.out_shape.c &&
         bn.in_shape.h == bn.out_shape.h && bn.in_shape.w == bn.out_shape.w &&
         (!bn.in_slice || (bn.in_slice->strides.channel == 1 && bn.in_slice->aligned));
}

/// For the per-op path, 16-bit NHWC: a batch norm (with its activation: DenseNet's norm1+relu1,
/// or a pre-activation block's bn+relu) whose result only the 1×1 conv after it reads
/// (normed_conv_shape) joined to that conv as one op, "<norm>+<conv>" (OpDesc::norm), which a
/// tactic may run as one kernel normalizing the input as it loads it (Tactic::fuses_norm) — the
/// normalized map, as large as the batch norm's input, is then never written nor read — and
/// prepare_step otherwise runs as the batch norm, then the conv: the same two launches as
/// before. The batch norm may read a concat's channel slice in place (DenseNet's running
/// concatenation), and the conv may have a fused pool and write a concat's slice (DenseNet's
/// transitions). Not where an activation is deferred into either read, nor where the batch norm
/// adds a residual or reads the network's input, nor where anything but the conv reads its
/// result; and only where the memory plan kept the batch norm's input (all of a concat it reads
/// in place) clear of what the conv writes (its map, its pooled map, all of a concat whose slice
/// that is; the compile-time plan arranges that: norm_folds_into_conv).
inline void fold_normed_convs(NetDesc& n) {
  if (!is_16bit(n.precision) || n.layout != Layout::nhwc) {
    return;
  }
  const int elem = dtype_size(n.precision);
  for (std::size_t i = 0; i + 1 < n.ops.size(); ++i) {
    const OpDesc& bn = n.ops[i];
    OpDesc& conv = n.ops[i + 1];
    // (a batch norm op carries no folds of its own; of the conv's, only a gate's or a
    // squeeze-excite gate's may precede this one, and a side conv's follows it)
    if (!joinable_norm(n, bn) || !normed_conv_shape(conv) || conv.in_id != bn.out_id || conv.gate || conv.squeeze ||
        conv.side || conv.norm || conv.in_slice || conv.in_cp != bn.out_cp ||
        (conv.slice && conv.slice->flatten)) {
      continue;
    }
    const bool read_elsewhere = read_besides(n, bn.out_id, conv);
    // What the conv writes: its map (unpooled, where a pool is fused) and its result.
    const ArenaRange x = norm_input_range(bn, elem);
    const ArenaRange y = arena_range(conv.out_offset, conv.out_shape, conv.out_cp, elem);
    if (read_elsewhere || y.overlaps(x) || result_range(conv, elem).overlaps(x)) {
      continue;
    }
    conv.norm = std::make_shared<const OpDesc>(bn);
    conv.norm_conv_label = conv.label;
    conv.label = join_scoped(bn.label, conv.label);
    n.ops.erase(n.ops.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

/// For the per-op path, 16-bit NHWC: a batch norm (with its activation: DenseNet's norm5 and the
/// ReLU after it) whose result only a network head's global average pool reads, that pool joined
/// to its dense layer (fold_pooled_dense: "avgpool+fc"), joined to that op too as one op,
/// "<norm>+<avgpool>+<fc>" (OpDesc::norm on a dense op), which a tactic may run as one kernel
/// normalizing the map as it averages it, then the dense layer (normed_head: the normalized map,
/// as large as the batch norm's input, is never written nor read), and prepare_step otherwise
/// runs as the batch norm into the pool's map, then the pool and the dense layer, as before. Not
/// where an activation is deferred into either read, nor where the batch norm adds a residual or
/// reads the network's input, nor where anything but the pool reads its result; and only where
/// what the joined op writes (the pooled vector's slot, its result) is clear of the batch norm's
/// input.
inline void fold_normed_pooled_dense(NetDesc& n) {
  if (!is_16bit(n.precision) || n.layout != Layout::nhwc) {
    return;
  }
  const int elem = dtype_size(n.precision);
  for (std::size_t i = 0; i + 1 < n.ops.size(); ++i) {
    const OpDesc& bn = n.ops[i];
    OpDesc& d = n.ops[i + 1];
    // (the pool reads the batch norm's result: its map, the same shape and slots)
    if (!joinable_norm(n, bn) || d.kind != OpKind::dense || !d.gap || d.gap->in_id != bn.out_id ||
        d.norm || d.in_slice || d.in_act.kind != Act::none || d.gap->in_act.kind != Act::none) {
      continue;
    }
    const ArenaRange x = norm_input_range(bn, elem);
    const ArenaRange pooled = arena_range(d.in_offset, d.in_shape, d.in_cp, elem);
    if (read_besides(n, bn.out_id, d) || pooled.overlaps(x) || result_range(d, elem).overlaps(x)) {
      continue;
    }
    d.norm = std::make_shared<const OpDesc>(bn);
    d.norm_conv_label = d.label;
    d.label = join_scoped(bn.label, d.label);
    n.ops.erase(n.ops.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

/// The conv of an op with a folded batch norm as it was before the fold (the batch norm,
/// *op.norm, runs first), under its own label.
[[nodiscard]] inline OpDesc norm_main(const OpDesc& joined) {
  return unjoined(joined, &OpDesc::norm, &OpDesc::norm_conv_label);
}

/// The largest map a bottleneck fold is made for (fold_bottleneck_convs): the bytes of one
/// image's bottleneck output with a border for the k×k conv's padding, each pixel's slots padded
/// by 8 — what tactics/bottleneck_conv.hpp keeps in shared memory (DenseNet-121's 14×14 and 7×7
/// maps of 128 channels: 69,632 and 22,032 bytes; its 28×28 ones, 244,800, are not folded).
inline constexpr std::int64_t bottleneck_max_map_bytes = 96 << 10;
/// The largest such map where the joins are made for bottleneck_conv's cluster form
/// (EngineOptions::bottleneck_clusters), which holds a pixel group's rows a block and takes a
/// large image in bands: DenseNet-121's 28×28 and 56×56 maps (244,800 and 915,008 bytes) too.
inline constexpr std::int64_t bottleneck_cluster_max_map_bytes = 1 << 20;
/// The least max_batch at which the engine makes bottleneck folds: the joined kernel takes whole
/// images a block, so it is claimed only where a batch fills the GPU with them.
inline constexpr int bottleneck_min_batch = 32;
/// The largest max_batch at which the engine also makes bottleneck folds on GPUs of compute
/// capability 9.0 on when asked (EngineOptions::bottleneck_clusters): bottleneck_conv's cluster
/// form takes an image a thread-block cluster, for small batches (where the joined op is not run
/// by it, it runs as the two ops, each on the variant the heuristic gives it alone).
inline constexpr int bottleneck_cluster_max_batch = 8;

/// For the per-op path at large batches (bottleneck_min_batch), 16-bit NHWC: a 1×1 conv with a
/// folded batch norm (fold_normed_convs; DenseNet's norm1+relu1+conv1, with norm2+relu2 folded
/// into it) whose result only the conv after it reads, that conv a size-keeping one (stride 1,
/// dilation 1, odd kernel of at most 7 with half of it as padding, one group) — a DenseNet layer —
/// joined to that conv as one op, "<bottleneck>+<conv>" (OpDesc::bottleneck), which a tactic may
/// run as one kernel keeping the bottleneck's output on chip (Tactic::fuses_bottleneck), and
/// prepare_step otherwise runs as the two ops, as before. Only for maps whose bottleneck output
/// with its border fits `max_map_bytes` an image, of 32 to 256 output slots in 32s; not
/// where either op has a fused pool, a residual or a deferred activation, nor where anything but
/// the conv reads the bottleneck's output; and only where what the conv writes is clear of what the
/// batch norm reads: other bytes of the arena, or other channels of the same concat (a DenseNet
/// layer reads the block's running concatenation in place and writes the next channels of it).
inline void fold_bottleneck_convs(NetDesc& n, std::int64_t max_map_bytes = bottleneck_max_map_bytes) {
  if (!is_16bit(n.precision) || n.layout != Layout::nhwc) {
    return;
  }
  const int elem = dtype_size(n.precision);
  for (std::size_t i = 0; i + 1 < n.ops.size(); ++i) {
    const OpDesc& b = n.ops[i];
    OpDesc& c = n.ops[i + 1];
    if (b.kind != OpKind::conv || !b.norm || b.pool || b.slice || b.gate || b.squeeze || b.side ||
        b.expand || b.bottleneck || b.net_output || b.writes_user_output || b.has_residual || b.in_act.kind != Act::none ||
        !b.act_applied_by.empty() || b.conv.kp % 32 != 0 || b.conv.kp > 256 || b.conv.k != b.conv.kp) {
      continue;
    }
    const ConvGeom& g = c.conv;
    const bool same_size = c.kind == OpKind::conv && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 &&
                           g.kh % 2 == 1 && g.kw % 2 == 1 && g.kh <= 7 && g.kw <= 7 &&
                           g.ph == g.kh / 2 && g.pw == g.kw / 2 && g.groups == 1 && g.packed &&
                           !g.s2d && g.fcg == g.cp && g.kd == g.kp && g.h == g.oh && g.w == g.ow;
    if (!same_size || c.in_id != b.out_id || c.in_cp != b.out_cp || g.cp != b.conv.kp || c.has_residual ||
        c.pool || c.gap || c.gate || c.side || c.expand || c.squeeze || c.norm || c.bottleneck ||
        c.softmax || c.in_slice || c.in_act.kind != Act::none || c.writes_user_output ||
        (c.slice && (c.slice->flatten || c.slice->strides.channel != 1))) {
      continue;
    }
    const std::int64_t map = std::int64_t{g.h + g.kh - 1} * (g.w + g.kw - 1) * (b.conv.kp + 8) * elem;
    if (map > max_map_bytes) {
      continue;
    }
    const bool read_elsewhere = read_besides(n, b.out_id, c);
    // What the joined kernel reads (the batch norm's input) against what it writes (the conv's
    // result): the same concat's other channels, or other bytes.
    const OpDesc& bn = *b.norm;
    bool clear = false;
    if (bn.in_slice && c.slice && bn.in_offset == c.out_offset &&
        bn.in_slice->strides.pixel == c.slice->strides.pixel &&
        bn.in_slice->strides.image == c.slice->strides.image) {
      const int r0 = bn.in_slice->c0;
      const int r1 = r0 + bn.in_cp;
      const int w0 = c.slice->c0;
      const int w1 = w0 + c.slice->write;
      clear = w1 <= r0 || r1 <= w0;
    } else {
      clear = !norm_input_range(bn, elem).overlaps(result_range(c, elem));
    }
    if (read_elsewhere || !clear) {
      continue;
    }
    c.bottleneck = std::make_shared<const OpDesc>(b);
    c.bottleneck_conv_label = c.label;
    c.label = join_scoped(b.label, c.label);
    n.ops.erase(n.ops.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

/// The conv of an op with a folded bottleneck as it was before the fold (the bottleneck,
/// *op.bottleneck, runs first), under its own label.
[[nodiscard]] inline OpDesc bottleneck_main(const OpDesc& joined) {
  return unjoined(joined, &OpDesc::bottleneck, &OpDesc::bottleneck_conv_label);
}

/// The least max_batch at which the engine joins an inverted-residual block's projection to the
/// block's expansion and depthwise conv (fold_projected_depthwise) for expand_depthwise's plain
/// form, which takes a tile of an image a block and is claimed with a thousand blocks or more.
/// (At max batches up to expand_dw::cluster_max_batch the engine joins them for its cluster form
/// instead, EngineOptions::block_clusters; between the two, plans stay as they were.)
inline constexpr int project_min_batch = 32;

/// For the per-op path at large batches (project_min_batch) and the smallest
/// (EngineOptions::block_clusters), 16-bit NHWC: the 1×1 projection conv
/// (one group, stride 1, no padding; with its residual add, if any) whose input only a depthwise
/// conv with a folded expansion (or one with no other fold: MobileNetV2's features.1) writes and
/// only it reads — MobileNetV2's inverted-residual blocks — joined after that op
/// (OpDesc::project), "<expansion>+<depthwise>+<projection>", which a
/// tactic may run as one kernel, the depthwise conv's result — as large as the expanded map over
/// the stride — never stored (Tactic::fuses_project), and prepare_step otherwise runs as the two
/// ops, as before. Not where either writes a concat's slice or the network's output, the depthwise
/// conv adds a residual, an activation is deferred into the projection's read, or the projection
/// has any other fold; and only where what the joined kernel writes (the block's output) is clear
/// of what it reads (the expansion's input, the residual): the memory plan's rule
/// (projection_folds_into_depthwise) keeps them apart. With `keep`, only the joins it accepts
/// (given the joined op): the engine joins only those its kernel would run as one at its
/// max_batch, so that the others keep their projection as an op of its own, which measured
/// tuning times and EngineOptions::force names.
inline void fold_projected_depthwise(NetDesc& n, const std::function<bool(const OpDesc&)>& keep = {}) {
  if (!is_16bit(n.precision) || n.layout != Layout::nhwc) {
    return;
  }
  const int elem = dtype_size(n.precision);
  for (std::size_t i = 0; i + 1 < n.ops.size(); ++i) {
    OpDesc& d = n.ops[i];
    const OpDesc& q = n.ops[i + 1];
    const ConvGeom& g = q.conv;
    // (without an expansion: a depthwise conv of nothing else folded, MobileNetV2's features.1)
    const bool plain_dw = !d.expand && depthwise_runs(d) && !d.gate && !d.side && !d.squeeze &&
                          !d.norm && !d.bottleneck && !d.excite && !d.gap && !d.softmax &&
                          !d.in_slice && d.in_id != n.input_id;  // (as the memory plan's rule)
    if ((!d.expand && !plain_dw) || d.project || d.tail || d.slice || d.pool || d.net_output ||
        d.writes_user_output || d.has_residual || d.z_offset >= 0 || !d.act_applied_by.empty() ||
        q.kind != OpKind::conv || q.in_id != d.out_id || q.in_cp != d.out_cp || g.cp != d.out_cp ||
        !pointwise_geom(g) || g.fcg != g.cp || g.kd != g.kp || q.out_cp != g.kp ||
        q.pool || q.gap || q.gate || q.side || q.expand || q.squeeze || q.norm || q.bottleneck ||
        q.excite || q.tail || q.project || q.softmax || q.slice || q.in_slice ||
        q.in_act.kind != Act::none || q.writes_user_output || q.net_output ||
        !q.act_applied_by.empty()) {
      continue;
    }
    const ArenaRange y = arena_range(q.out_offset, q.out_shape, q.out_cp, elem);
    const OpDesc& in = d.expand ? *d.expand : d;  // (the block's input: what the kernel stages)
    const ArenaRange x = arena_range(in.in_offset, in.in_shape, in.in_cp, elem);
    // (a joined stem's kernel reads the caller's input, not the input step's slot; run apart, the
    // stem reads that slot before the projection writes)
    const bool x_clear = joined_stem(d) || !y.overlaps(x);
    const bool z_clear = q.z_offset < 0 || !y.overlaps(arena_range(q.z_offset, q.out_shape, q.out_cp, elem));
    if (read_besides(n, d.out_id, q) || !x_clear || !z_clear) {
      continue;
    }
    OpDesc joined = d;
    joined.project = std::make_shared<const OpDesc>(q);
    joined.project_conv_label = d.label;
    joined.label = join_scoped(d.label, q.label);
    if (keep && !keep(joined)) {
      continue;
    }
    d = std::move(joined);
    n.ops.erase(n.ops.begin() + static_cast<std::ptrdiff_t>(i + 1));
  }
}

/// The largest max_batch at which the engine joins squeeze-excite ops to the gated convs after
/// them (fold_excited_gates): the batch at which splitk_conv computes the gate in its clusters.
inline constexpr int excite_max_batch = 1;

/// For the per-op path at batch 1 (excite_max_batch), 16-bit NHWC: a squeeze-excite op (a second
/// 1×1 conv with its folded pool and first conv, fold_squeeze_excite) whose result only the
/// folded gate of the conv after it reads (fold_gated_convs), pooling the very map that gate
/// multiplies — EfficientNet's pool, fc1, fc2 and projection — joined to that conv as one op
/// (OpDesc::excite), which a tactic may run as one kernel (Tactic::fuses_excite: splitk_conv's
/// clusters each pool their slice of the map and compute its gate) and prepare_step otherwise
/// runs as the squeeze-excite op, then the gated conv: the same launches as before. Not where
/// the squeeze-excite op writes a concat's slice or the network's output, or has its activation
/// applied by another op.
inline void fold_excited_gates(NetDesc& n) {
  if (!is_16bit(n.precision) || n.layout != Layout::nhwc) {
    return;
  }
  for (std::size_t i = 0; i + 1 < n.ops.size(); ++i) {
    const OpDesc& q = n.ops[i];
    OpDesc& c = n.ops[i + 1];
    if (!q.squeeze || !q.squeeze->gap || q.slice || q.in_slice || q.net_output ||
        q.writes_user_output || !q.act_applied_by.empty() || c.kind != OpKind::conv || !c.gate ||
        c.excite || c.gate->gate_id != q.out_id || c.gate->x_id != q.squeeze->gap->in_id ||
        q.out_cp != c.in_cp || q.squeeze->gap->in_cp != c.in_cp || q.conv.k != c.conv.c ||
        read_besides(n, q.out_id, c)) {
      continue;
    }
    c.excite = std::make_shared<const OpDesc>(q);
    c.excite_conv_label = c.label;
    c.label = join_scoped(q.label, c.label);
    n.ops.erase(n.ops.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

/// The largest max_batch at which the engine joins a squeeze-excite op to the depthwise conv
/// before it (fold_tailed_gates), and the least map (pixels) it does so for: the maps whose
/// gates the projection's clusters do not compute (splitk_conv fuse 4 takes those of up to a
/// block's 128 KiB of the map: EfficientNet-B0's 28x28 ones and smaller).
inline constexpr int tail_max_batch = 1;
inline constexpr int tail_min_pixels = 56 * 56;
/// The least max_batch from which the engine joins them again, on maps of any size, where
/// EngineOptions::tail_sums asks (the default since session 65): at large batches the
/// squeeze-excite kernel's pool reads the whole map back (EfficientNet-B0 at batch 256: its
/// sixteen gates about 560 of 5,270 µs, H100, session 63), which the depthwise conv's blocks can
/// sum as they store it (depthwise_band fuse 3).
inline constexpr int tail_min_batch = 32;

/// For the per-op path at batch 1 (tail_max_batch), 16-bit NHWC: a squeeze-excite op (a second
/// 1×1 conv with its folded pool and first conv, fold_squeeze_excite) right after the depthwise
/// conv (one Strata's kernels run, depthwise_runs) whose result it pools, on a map of
/// `min_pixels` (tail_min_pixels: EfficientNet-B0's 112×112 and 56×56 gates; 0 at large batches
/// where EngineOptions::tail_sums asks, fold_for_max_batch) or more — joined to that conv as one op (OpDesc::tail), which a tactic may run as one
/// kernel (Tactic::fuses_tail: depthwise_band) and prepare_step otherwise runs as the conv, then
/// the squeeze-excite op: the same launches as before. Not where either writes a concat's slice
/// or the network's output, the conv adds a residual or pools, or another op applies either's
/// activation. Made before fold_excited_gates (which then leaves those gates alone).
inline void fold_tailed_gates(NetDesc& n, std::int64_t min_pixels = tail_min_pixels) {
  if (!is_16bit(n.precision) || n.layout != Layout::nhwc) {
    return;
  }
  for (std::size_t i = 0; i + 1 < n.ops.size(); ++i) {
    OpDesc& d = n.ops[i];
    const OpDesc& q = n.ops[i + 1];
    if (!depthwise_runs(d) || d.tail || d.slice || d.net_output || d.writes_user_output ||
        d.z_offset >= 0 || !d.act_applied_by.empty() ||
        std::int64_t{d.out_shape.h} * d.out_shape.w < min_pixels || !q.squeeze ||
        !q.squeeze->gap || q.squeeze->gap->in_id != d.out_id || q.squeeze->gap->in_cp != d.out_cp ||
        q.slice || q.in_slice || q.net_output || q.writes_user_output || !q.act_applied_by.empty()) {
      continue;
    }
    d.tail = std::make_shared<const OpDesc>(q);
    d.tail_conv_label = d.label;
    d.label = join_scoped(d.label, q.label);
    n.ops.erase(n.ops.begin() + static_cast<std::ptrdiff_t>(i + 1));
  }
}

/// The folds of the per-op path (fold_pooled_dense, fold_gated_convs, fold_expanded_depthwise,
/// fold_squeeze_excite, fold_normed_convs, fold_normed_pooled_dense, fold_final_softmax), as the
/// engine makes them.
inline void fold_for_per_op_path(NetDesc& n) {
  fold_pooled_dense(n);
  fold_gated_convs(n);
  fold_expanded_depthwise(n);
  fold_squeeze_excite(n);
  fold_normed_convs(n);
  fold_normed_pooled_dense(n);
  fold_final_softmax(n);
}

/// What op `op` reads and writes of the arena, as byte ranges per image for elements of `elem`
/// bytes: its input, its residual, a folded pool's map, a folded gate's map and gate; its
/// output, a fused pool's map, and a folded pool's or gate's result (the op's input, which the
/// pool or multiply kernel writes where the tactic does not fold it itself).
struct ArenaAccess {
  std::vector<ArenaRange> reads;
  std::vector<ArenaRange> writes;
};
[[nodiscard]] inline ArenaAccess arena_access(const OpDesc& op, int elem) {
  const auto range = [&](std::int64_t offset, const Shape& s, int cp) {
    return arena_range(offset, s, cp, elem);
  };
  ArenaAccess a;
  a.reads.push_back(range(op.in_offset, op.in_shape, op.in_cp));
  if (op.z_offset >= 0) {
    a.reads.push_back(range(op.z_offset, op.out_shape, op.out_cp));
  }
  if (op.gap) {
    a.reads.push_back(range(op.gap->in_offset, op.gap->in_shape, op.gap->in_cp));
    a.writes.push_back(range(op.in_offset, op.in_shape, op.in_cp));
  }
  if (op.gate) {  // the map and the gate; the product's slot, where the multiply runs first
    a.reads.push_back(range(op.gate->x_offset, op.in_shape, op.in_cp));
    a.reads.push_back(range(op.gate->gate_offset, Shape{op.in_shape.c, 1, 1}, op.in_cp));
    a.writes.push_back(range(op.in_offset, op.in_shape, op.in_cp));
  }
  a.writes.push_back(range(op.out_offset, op.out_shape, op.out_cp));
  if (op.pool) {
    a.writes.push_back(range(op.pool->out_offset, op.pool->out_shape, op.pool->out_cp));
  }
  if (op.expand) {  // the expansion's input; the expanded map's slot, where it runs first
    a.reads.push_back(range(op.expand->in_offset, op.expand->in_shape, op.expand->in_cp));
    a.writes.push_back(range(op.in_offset, op.in_shape, op.in_cp));
  }
  if (op.squeeze) {  // the map; the pooled vector's slot, where the pool and fc1 run first
    const OpDesc& q = *op.squeeze;
    a.reads.push_back(range(q.gap->in_offset, q.gap->in_shape, q.gap->in_cp));
    a.writes.push_back(range(q.in_offset, q.in_shape, q.in_cp));
    a.writes.push_back(range(op.in_offset, op.in_shape, op.in_cp));
  }
  if (op.norm) {  // the batch norm's input (all of a concat it reads in place); its result's slot
    a.reads.push_back(norm_input_range(*op.norm, elem));
    a.writes.push_back(range(op.in_offset, op.in_shape, op.in_cp));
    if (op.gap) {  // (before a folded pool: the pool's map, where the batch norm runs first)
      a.writes.push_back(range(op.gap->in_offset, op.gap->in_shape, op.gap->in_cp));
    }
  }
  if (op.bottleneck) {  // what the bottleneck reads and writes (its output: this op's input slot)
    const ArenaAccess b = arena_access(*op.bottleneck, elem);
    a.reads.insert(a.reads.end(), b.reads.begin(), b.reads.end());
    a.writes.insert(a.writes.end(), b.writes.begin(), b.writes.end());
  }
  if (op.side) {
    const ArenaAccess b = arena_access(*op.side, elem);
    a.reads.insert(a.reads.end(), b.reads.begin(), b.reads.end());
    a.writes.insert(a.writes.end(), b.writes.begin(), b.writes.end());
  }
  if (op.excite) {  // what the squeeze-excite op reads and writes (its result: the gate's slot)
    const ArenaAccess b = arena_access(*op.excite, elem);
    a.reads.insert(a.reads.end(), b.reads.begin(), b.reads.end());
    a.writes.insert(a.writes.end(), b.writes.begin(), b.writes.end());
  }
  if (op.tail) {  // likewise, after the conv (it pools the conv's result)
    const ArenaAccess b = arena_access(*op.tail, elem);
    a.reads.insert(a.reads.end(), b.reads.begin(), b.reads.end());
    a.writes.insert(a.writes.end(), b.writes.begin(), b.writes.end());
  }
  if (op.project) {  // likewise, after the conv (it reads the conv's result, writes the block's)
    const ArenaAccess b = arena_access(*op.project, elem);
    a.reads.insert(a.reads.end(), b.reads.begin(), b.reads.end());
    a.writes.insert(a.writes.end(), b.writes.begin(), b.writes.end());
  }
  return a;
}

/// Whether op i of `n` may run beside op i + 1, on a stream of its own, the next op after them
/// waiting for both (EngineOptions::concurrent_branches): op i + 1 does not read op i's result,
/// neither writes what the other reads or writes (the memory plan reuses the arena), and neither
/// does anything the plan cannot see — an activation applied in place to its input (in_act), a
/// concat slice read or written (strided, staged), the caller's output. ResNet's downsample and
/// its block's first conv are such a pair: both read the block's input, and the block's second
/// conv reads both results.
[[nodiscard]] inline bool runs_beside_next(const NetDesc& n, std::size_t i) {
  if (i + 1 >= n.ops.size()) {
    return false;
  }
  const OpDesc& a = n.ops[i];
  const OpDesc& b = n.ops[i + 1];
  const auto plain = [](const OpDesc& o) {
    return o.in_act.kind == Act::none && !o.slice && !o.in_slice && !o.writes_user_output &&
           !o.softmax && !o.side && !o.gate && !o.expand && !o.squeeze && !o.norm && !o.bottleneck &&
           !o.excite && !o.tail && !o.project;
  };
  if (!plain(a) || !plain(b) || reads_tensor(b, a.out_id) || reads_tensor(a, b.out_id)) {
    return false;
  }
  const int elem = dtype_size(n.precision);
  const ArenaAccess x = arena_access(a, elem);
  const ArenaAccess y = arena_access(b, elem);
  const auto any = [](const std::vector<ArenaRange>& p, const std::vector<ArenaRange>& q) {
    for (const ArenaRange& r : p) {
      for (const ArenaRange& s : q) {
        if (r.overlaps(s)) {
          return true;
        }
      }
    }
    return false;
  };
  return !any(x.writes, y.reads) && !any(x.writes, y.writes) && !any(y.writes, x.reads);
}

/// The largest max_batch at which the engine joins side convs (fold_side_convs): where the
/// downsample's own launch was measured to cost most (ResNet-18 at batch 1, H200, session 20).
inline constexpr int side_conv_max_batch = 1;

/// For the per-op path at batch 1 (side_conv_max_batch): each 16-bit 1×1 conv that may run beside
/// the next op (runs_beside_next), the next op a conv over the same input, with odd windows of
/// the same stride whose centres are the 1×1 conv's pixels (padding half the window, same output
/// size) — ResNet-18's three downsamples and their blocks' first convs, ResNet-50's layer1.0
/// (two 1×1 convs) — joined to that conv as one op, "<conv> & <downsample>" (OpDesc::side), so
/// that one kernel may compute both (the side conv's filter is the centre tap's slice of the
/// reduction). Neither may have a residual, a fused pool, a deferred activation or a concat
/// slice; neither reads the network's input or writes its output.
inline void fold_side_convs(NetDesc& n) {
  if (!is_16bit(n.precision)) {  // (splitk_conv, which computes both, runs 16-bit storage)
    return;
  }
  for (std::size_t i = 0; i + 1 < n.ops.size(); ++i) {
    const OpDesc& d = n.ops[i];
    const OpDesc& m = n.ops[i + 1];
    const auto plain = [](const OpDesc& o) {
      return o.kind == OpKind::conv && !o.has_residual && !o.pool && !o.gap && !o.softmax &&
             !o.side && !o.gate && !o.expand && !o.squeeze && !o.norm && !o.bottleneck && !o.slice &&
             !o.in_slice && o.in_act.kind == Act::none &&
             o.act_applied_by.empty() && !o.net_output && !o.writes_user_output &&
             o.conv.groups == 1 && o.conv.packed && !o.conv.s2d;
    };
    if (!plain(d) || !plain(m) || d.in_id != m.in_id || d.in_id == n.input_id) {
      continue;
    }
    const ConvGeom& a = d.conv;
    const ConvGeom& b = m.conv;
    const bool centre = a.kh == 1 && a.kw == 1 && a.ph == 0 && a.pw == 0 && b.kh % 2 == 1 &&
                        b.kw % 2 == 1 && b.ph == (b.kh / 2) * b.dh && b.pw == (b.kw / 2) * b.dw &&
                        a.sh == b.sh && a.sw == b.sw && a.oh == b.oh && a.ow == b.ow &&
                        a.cp == b.cp && a.h == b.h && a.w == b.w;
    if (!centre || !runs_beside_next(n, i)) {
      continue;
    }
    OpDesc joined = m;
    joined.side = std::make_shared<const OpDesc>(d);
    joined.label = m.label + " & " + d.label;
    n.ops[i] = std::move(joined);
    n.ops.erase(n.ops.begin() + static_cast<std::ptrdiff_t>(i) + 1);
  }
}

/// The conv of an op with a side conv as it was before the fold (the side conv is *op.side).
[[nodiscard]] inline OpDesc side_main(const OpDesc& joined) {
  OpDesc m = joined;
  m.side.reset();
  m.label = joined.label.substr(0, joined.label.size() - joined.side->label.size() - 3);
  return m;
}

/// Whether a network is small enough to run as one fused kernel, and the reason when it is not.
struct FusedFit {
  bool fits = false;
  const char* reason = "";
};

/// Moves activations a library cannot fuse into the op that reads them (16-bit NHWC storage):
/// a conv whose activation (ReLU6, SiLU, hardswish, ...) would cost a pass of its own over its
/// output, read only by a depthwise conv that Strata's kernel runs, stores its result before the
/// activation, and the depthwise kernel applies it to its input patch as it stages it — the
/// expansion 1×1 of an inverted-residual block then runs as a plain GEMM with a bias epilogue,
/// and the largest tensor of the block is written and read once instead of twice. Likewise a
/// squeeze-excite gate's first layer's activation moves into its second layer
/// (pixel_conv1x1_runs), and the last conv's activation of MobileNetV2 or EfficientNet (ReLU6,
/// SiLU over 1,280 channels, a pass of its own after cuBLASLt's GEMM) into the global average
/// pool that alone reads it (Strata's pool kernels and the head's kernels apply it to each value
/// as they sum; fold_pooled_dense carries it). The values
/// are those of the unfused path (the activation is applied to the same stored value, and its
/// result rounded to the storage type before use). `uses[t]` is the number of readers of
/// tensor t.
inline void defer_activations(NetDesc& n, const std::vector<int>& uses) {
  for (OpDesc& b : n.ops) {
    const bool global_pool = b.kind == OpKind::global_avg_pool && !b.pool && !b.slice;
    if (!(depthwise_runs(b) || pixel_conv1x1_runs(b) || global_pool) || b.in_slice || b.in_act.kind != Act::none || b.in_id < 0 ||
        b.in_id >= static_cast<int>(uses.size()) || uses[b.in_id] != 1) {
      continue;
    }
    for (OpDesc& a : n.ops) {
      // (into a global pool only from a conv a library runs: Strata's depthwise kernels apply
      // their own activation as they store)
      if (&a != &b && a.out_id == b.in_id && a.kind == OpKind::conv && !a.pool && !a.slice &&
          !a.writes_user_output && needs_activation_pass(a.act) && !(global_pool && depthwise_runs(a))) {
        b.in_act = a.act;
        a.act = ActDesc{};
        a.act_applied_by = b.label;
        break;
      }
    }
  }
}

/// The fused-network kernel's limits: it keeps one image's work inside one thread-block cluster,
/// so it is for small networks (the MNIST CNN is 8.5 MFLOP and 0.42 M parameters).
inline constexpr std::int64_t fused_max_flops = 64'000'000;      ///< per image
inline constexpr std::int64_t fused_max_params = 4'000'000;      ///< weights read per image
inline constexpr int fused_max_ops = 64;

/// The storage rules of network `Net` in precision `P`, as constexpr functions.
template <class Net, DType P>
  requires Network<Net>
struct NetStorage {
  using Network = std::remove_cvref_t<Net>;
  static constexpr Layout layout = storage_layout(P);
  static constexpr const auto& graph = Network::graph;
  static constexpr const auto& plan = Network::template plan_for<P, layout>;

  /// Whether the network has an op of kind `k`.
  static constexpr bool has_op(OpKind k) {
    for (int i = 0; i < graph.num_ops; ++i) {
      if (graph.ops[i].kind == k) {
        return true;
      }
    }
    return false;
  }
  /// Whether a tensor is a channel slice of a concat's output.
  static constexpr bool has_slices() {
    for (int t = 0; t < graph.num_tensors; ++t) {
      if (graph.tensors[t].view_of >= 0) {
        return true;
      }
    }
    return false;
  }
  static constexpr int pad(int c) { return channel_slots(c, P); }

  /// The space-to-depth input of a stride-2 conv: 4·C channels ((c, dy, dx) order), blocks of
  /// the zero-padded input, as many as the ⌈k/2⌉-tap stride-1 conv needs.
  static constexpr Shape s2d_shape(const Op& op) {
    const Shape is = Network::input_spec.shape;
    const int oh = op.out_spec.shape.h;
    const int ow = op.out_spec.shape.w;
    return chw(4 * is.c, oh - 1 + (op.layer.kernel.h + 1) / 2,
               ow - 1 + (op.layer.kernel.w + 1) / 2);
  }

  /// Whether conv `op` reads the network input stored space-to-depth: an NHWC first layer with
  /// stride 2 and fewer than 8 input channels (ResNet's 7×7 stem) becomes a stride-1 conv with
  /// ⌈k/2⌉ taps over 4·C channels of 2×2 pixel blocks — the same sums, 4× the channels per tap,
  /// which suits tensor cores far better than C padded to 8.
  static constexpr bool is_s2d(const Op& op) {
    if (P == DType::f32 || op.kind != OpKind::conv || op.in != graph.input ||
        graph.tensors[graph.input].uses != 1 || Network::input_spec.layout != Layout::nchw) {
      return false;
    }
    const LayerDesc& d = op.layer;
    const Shape is = Network::input_spec.shape;
    if (d.stride.h != 2 || d.stride.w != 2 || d.dilation.h != 1 || d.dilation.w != 1 ||
        d.groups != 1 || is.c >= 8 || d.kernel.h < 2 || d.kernel.w < 2) {
      return false;
    }
    const Shape s = s2d_shape(op);
    return static_cast<std::int64_t>(pad(s.c)) * s.h * s.w * dtype_size(P) <=
           plan.tensors[graph.input].bytes;
  }

  /// The op that reads the input space-to-depth, or -1.
  static constexpr int s2d_op() {
    for (int i = 0; i < graph.num_ops; ++i) {
      if (is_s2d(graph.ops[i])) {
        return i;
      }
    }
    return -1;
  }

  /// The storage shape of tensor t: a concat's output as declared; what a copy writes into its
  /// slice as the copy's input is stored; otherwise its producer's output (before any flatten),
  /// or the input.
  static constexpr Shape storage_shape(int t) {
    const TensorEntry& e = graph.tensors[t];
    if (e.assembled) {
      return e.spec.shape;
    }
    const int p = e.producer;
    if (p < 0) {
      const int k = s2d_op();
      return k >= 0 ? s2d_shape(graph.ops[k > 0 ? k : 0]) : Network::input_spec.shape;  // (clang's
      // -Warray-bounds saw graph.ops[-1] where no op reads space-to-depth)
    }
    if (graph.ops[p].kind == OpKind::copy) {
      return storage_shape(graph.ops[p].in);
    }
    return graph.ops[p].out_spec.shape;
  }
  static constexpr std::int64_t storage_bytes(int t) {
    const Shape s = storage_shape(t);
    return static_cast<std::int64_t>(pad(s.c)) * s.h * s.w * dtype_size(P);
  }
  /// Whether every tensor's storage fits its slot in the memory plan (the plan pads as stored).
  /// A concat's slice has no slot of its own: it is written into its output's, or through the
  /// staging area (OutSlice).
  static constexpr bool fits_plan() {
    for (int t = 0; t < graph.num_tensors; ++t) {
      if (graph.tensors[t].view_of < 0 && storage_bytes(t) > plan.tensors[t].bytes) {
        return false;
      }
    }
    return true;
  }

  /// Where tensor t, a channel slice of a concat's output (view_of >= 0), lies in that output,
  /// and how its writer writes it (see OutSlice).
  static constexpr OutSlice slice_of(int t) {
    const TensorEntry& e = graph.tensors[t];
    const Shape b = graph.tensors[e.view_of].spec.shape;  // the concat's output
    const Shape src = storage_shape(t);
    const int hw = src.h * src.w;
    OutSlice s;
    s.c0 = e.channel_offset;
    s.c = src.c;
    s.flatten = hw != b.h * b.w;  // only into a flat concat's features
    if (layout == Layout::nchw) {  // an image's slice is contiguous: only the image stride differs
      s.strides = {static_cast<std::int64_t>(b.c) * b.h * b.w, 1, hw};
      s.elem_offset = static_cast<std::int64_t>(s.c0) * b.h * b.w;
      s.write = s.c;
      s.aligned = true;
      return s;
    }
    const int slots = pad(b.c);
    s.elem_offset = s.c0;
    if (s.flatten) {  // feature (c·hw + p) of the flat output
      s.strides = {slots, 1, hw};
      s.write = s.c;
      return s;
    }
    s.strides = {static_cast<std::int64_t>(hw) * slots, slots, 1};
    // The last slice also zeroes the output's padding slots.
    s.write = s.c0 + s.c == b.c ? slots - s.c0 : s.c;
    s.aligned = s.c0 % 8 == 0 && s.write % 8 == 0;
    return s;
  }
  /// Bytes per image of the staging area: the largest result written into a slice.
  static constexpr std::int64_t staging_bytes() {
    std::int64_t most = 0;
    for (int t = 0; t < graph.num_tensors; ++t) {
      // (a slice an op writes as its result, not one assembled from slices)
      const int p = graph.tensors[t].producer;
      if (graph.tensors[t].view_of >= 0 && p >= 0 && graph.ops[p].out == t) {
        most = std::max(most, (storage_bytes(t) + 15) / 16 * 16);
      }
    }
    return most;
  }

  static constexpr ConvGeom conv_geom(const Op& op) {
    ConvGeom g{};
    const Shape is = storage_shape(op.in);
    const LayerDesc& d = op.layer;
    g.c = is.c;
    g.cp = pad(is.c);
    g.h = is.h;
    g.w = is.w;
    g.k = d.out_channels;
    g.kp = pad(g.k);
    g.oh = op.out_spec.shape.h;
    g.ow = op.out_spec.shape.w;
    g.groups = d.groups;
    g.s2d = is_s2d(op);
    g.kh = g.s2d ? (d.kernel.h + 1) / 2 : d.kernel.h;
    g.kw = g.s2d ? (d.kernel.w + 1) / 2 : d.kernel.w;
    g.sh = g.s2d ? 1 : d.stride.h;
    g.sw = g.s2d ? 1 : d.stride.w;
    g.ph = g.s2d ? 0 : d.padding.h;
    g.pw = g.s2d ? 0 : d.padding.w;
    g.dh = d.dilation.h;
    g.dw = d.dilation.w;
    g.packed = g.groups == 1 || (g.c == g.cp && g.k == g.kp);
    g.xc = g.packed ? g.cp : g.c;
    g.kd = g.packed ? g.kp : g.k;
    g.fcg = g.xc / g.groups;
    return g;
  }

  static constexpr int dense_kin(const Op& op) {
    const Shape s = storage_shape(op.in);
    return pad(s.c) * s.h * s.w;
  }

  /// Whether op i writes the caller's output directly (a final softmax/log_softmax, in f32).
  static constexpr bool writes_user_output(int i) {
    const Op& op = graph.ops[i];
    return op.out == graph.output &&
           (op.kind == OpKind::softmax || op.kind == OpKind::log_softmax);
  }
  static constexpr bool needs_output_step() {
    return graph.num_ops == 0 || !writes_user_output(graph.num_ops - 1);
  }

  /// Whether op i is a conv whose output only the next op reads, a max/avg pool: the pool
  /// then runs as part of the conv (PoolEpilogue; the memory plan allows for it).
  static constexpr bool pool_fuses_into(int i) { return pool_fuses_into_conv(graph, i); }
  /// How many pools run fused into their conv.
  static constexpr int fused_pools() {
    int n = 0;
    for (int i = 0; i < graph.num_ops; ++i) {
      n += pool_fuses_into(i) ? 1 : 0;
    }
    return n;
  }

  /// Whether the whole network fits the fused-network kernel (see FusedFit).
  static constexpr FusedFit fused_fit() {
    if (P == DType::tf32) {
      return {false, "tf32 runs on the per-op path (cuDNN and cuBLASLt on TF32 tensor cores)"};
    }
    if (has_slices() || has_op(OpKind::copy)) {
      return {false, "concat is not run by the fused-network kernel yet (per-op path only)"};
    }
    if (has_op(OpKind::upsample)) {
      return {false, "upsample is not run by the fused-network kernel yet (per-op path only)"};
    }
    if (has_op(OpKind::adaptive_avg_pool)) {
      return {false,
              "adaptive_avg_pool is not run by the fused-network kernel yet (per-op path only)"};
    }
    if (has_op(OpKind::multiply)) {
      return {false, "multiply (a channel gate) is not run by the fused-network kernel yet "
                     "(per-op path only)"};
    }
    if (has_op(OpKind::conv_transpose)) {
      return {false,
              "conv_transpose is not run by the fused-network kernel yet (per-op path only)"};
    }
    if (graph.num_ops > fused_max_ops) {
      return {false, "more ops than the fused-network kernel takes (64)"};
    }
    if (graph.flops() > fused_max_flops) {
      return {false, "over 64 MFLOP per image: the per-op path uses the whole GPU better"};
    }
    if (graph.learnable_params() > fused_max_params) {
      return {false, "over 4 M parameters: too many weights to stream per image"};
    }
    if (s2d_op() >= 0) {
      return {false, "the first conv reads its input space-to-depth (per-op path only)"};
    }
    return {true, "fits: the whole network runs as one kernel at small batches"};
  }

  /// The network in storage terms (see NetDesc).
  [[nodiscard]] static NetDesc describe() {
    NetDesc n;
    n.precision = P;
    n.layout = layout;
    n.in_shape = Network::input_spec.shape;
    n.in_layout = Network::input_spec.layout;
    n.input_offset = plan.tensors[graph.input].offset;
    n.input_id = graph.input;
    n.s2d_op = s2d_op();
    if (n.s2d_op >= 0) {
      n.s2d_shape = s2d_shape(graph.ops[n.s2d_op]);
    }
    n.out_storage = storage_shape(graph.output);
    n.out_shape = Network::output_spec.shape;
    n.output_offset = plan.tensors[graph.output].offset;
    n.needs_output_step = needs_output_step();
    n.staging_offset = plan.activation_bytes;
    n.staging_bytes = staging_bytes();
    n.arena_per_image = plan.activation_bytes + n.staging_bytes;
    n.fused_fits = fused_fit().fits;
    n.fused_reason = fused_fit().reason;
    n.flops_per_image = graph.flops();
    if (graph.num_ops >= 2) {
      const Op& last = graph.ops[graph.num_ops - 1];
      const Op& before = graph.ops[graph.num_ops - 2];
      n.final_softmax_folds = writes_user_output(graph.num_ops - 1) && before.kind == OpKind::dense &&
                              before.out == last.in && graph.tensors[last.in].uses == 1 &&
                              graph.tensors[last.in].view_of < 0 && last.in != graph.output;
    }
    for (int i = 0; i < graph.num_ops; ++i) {
      const Op& op = graph.ops[i];
      OpDesc d;
      d.index = i;
      d.label = std::string(op.label.view());
      d.kind = op.kind;
      d.layer = op.layer;
      d.act = op.act;
      d.in_shape = storage_shape(op.in);
      d.out_shape = storage_shape(op.out);
      d.in_cp = pad(d.in_shape.c);
      d.out_cp = pad(d.out_shape.c);
      d.has_residual = op.in2 >= 0;
      d.has_bias = op.bias >= 0 || op.bn >= 0;
      d.in_offset = plan.tensors[op.in].offset;
      d.z_offset = op.in2 >= 0 ? plan.tensors[op.in2].offset : -1;
      d.out_offset = plan.tensors[op.out].offset;
      d.writes_user_output = writes_user_output(i);
      d.net_output = op.out == graph.output;
      d.in_id = op.in;
      d.z_id = op.in2;
      d.out_id = op.out;
      if (op.kind == OpKind::conv) {
        d.conv = conv_geom(op);
        if (pool_fuses_into(i)) {
          const Op& p = graph.ops[i + 1];
          d.pool = PoolEpilogue{i + 1,
                                std::string(p.label.view()),
                                p.kind,
                                p.layer,
                                p.out_spec.shape,
                                pad(p.out_spec.shape.c),
                                plan.tensors[p.out].offset};
          d.label += "+" + d.pool->label;
          d.out_id = p.out;
          if (graph.tensors[p.out].view_of >= 0) {
            d.slice = slice_of(p.out);
          }
          ++i;  // the pool runs as part of this op
        }
      } else if (op.kind == OpKind::dense) {
        d.dense_kin = dense_kin(op);
      }
      if (!d.pool && graph.tensors[op.out].view_of >= 0) {
        d.slice = slice_of(op.out);
      }
      if (graph.tensors[op.in].view_of >= 0) {
        d.in_slice = slice_of(op.in);
      }
      n.ops.push_back(std::move(d));
    }
    if (is_16bit(P) && !n.fused_fits) {  // (Strata's depthwise and pixel kernels: 16-bit; the
                                         // fused-network kernel fuses everything)
      std::vector<int> uses(static_cast<std::size_t>(graph.num_tensors));
      for (int t = 0; t < graph.num_tensors; ++t) {
        uses[static_cast<std::size_t>(t)] = graph.tensors[t].uses;
      }
      uses[static_cast<std::size_t>(graph.output)] += 1;  // the output conversion reads it too
      defer_activations(n, uses);
    }
    return n;
  }
};

/// Conv weights (O, C/g, kh, kw) in f32, PyTorch's order, rearranged as the backend stores
/// them: OIHW (f32) or (Kd, kh, kw, C/g) with output channels padded (NHWC: 16-bit, tf32); a space-to-depth
/// conv's tap (y, x) of channel ci becomes tap (y/2, x/2) of channel (ci, y%2, x%2).
[[nodiscard]] inline std::vector<float> conv_weights_stored(const ConvGeom& cg,
                                                            const LayerDesc& d, Layout layout,
                                                            const std::vector<float>& w) {
  const int kh = d.kernel.h;  // as declared
  const int kw = d.kernel.w;
  const int cpg = (cg.s2d ? cg.c / 4 : cg.c) / cg.groups;  // true input channels per group
  STRATA_CHECK(w.size() == static_cast<std::size_t>(cg.k) * cpg * kh * kw,
               "conv_weights_stored: " << w.size() << " weights, the layer has "
                                       << static_cast<std::size_t>(cg.k) * cpg * kh * kw);
  std::vector<float> out(static_cast<std::size_t>(cg.kd) * cg.kh * cg.kw * cg.fcg, 0.0f);
  for (int o = 0; o < cg.k; ++o) {
    for (int ci = 0; ci < cpg; ++ci) {
      for (int y = 0; y < kh; ++y) {
        for (int x = 0; x < kw; ++x) {
          const float v = w[((static_cast<std::size_t>(o) * cpg + ci) * kh + y) * kw + x];
          const int ty = cg.s2d ? y / 2 : y;
          const int tx = cg.s2d ? x / 2 : x;
          const int tc = cg.s2d ? (ci * 2 + y % 2) * 2 + x % 2 : ci;
          const std::size_t dst =
              layout == Layout::nchw
                  ? ((static_cast<std::size_t>(o) * cg.fcg + tc) * cg.kh + ty) * cg.kw + tx
                  : ((static_cast<std::size_t>(o) * cg.kh + ty) * cg.kw + tx) * cg.fcg + tc;
          out[dst] = v;
        }
      }
    }
  }
  return out;
}

/// Dense weights (out, in) in f32 as stored: (out padded to slots) × kin, where NHWC storage
/// permutes the columns from PyTorch's flatten order (c, h, w) to (h, w, c slot), so that
/// flatten moves no data.
[[nodiscard]] inline std::vector<float> dense_weights_stored(const OpDesc& op, DType p,
                                                             const std::vector<float>& w) {
  const Shape s = op.in_shape;
  const int hw = s.h * s.w;
  const int cinp = op.in_cp;
  const int kin = op.dense_kin;
  const int m = op.layer.out_channels;
  const int mp = channel_slots(m, p);
  const std::size_t in_features = static_cast<std::size_t>(s.c) * hw;
  STRATA_CHECK(w.size() == static_cast<std::size_t>(m) * in_features,
               "dense_weights_stored: " << w.size() << " weights, the layer has "
                                        << static_cast<std::size_t>(m) * in_features);
  std::vector<float> out(static_cast<std::size_t>(mp) * kin, 0.0f);
  for (int o = 0; o < m; ++o) {
    for (std::size_t j = 0; j < in_features; ++j) {
      const std::size_t c = j / static_cast<std::size_t>(hw);
      const std::size_t px = j % static_cast<std::size_t>(hw);
      const std::size_t col = storage_layout(p) == Layout::nchw ? j : px * cinp + c;
      out[static_cast<std::size_t>(o) * kin + col] = w[o * in_features + j];
    }
  }
  return out;
}

/// Transposed-conv weights (C, O/g, kh, kw) in f32, PyTorch's order (batch_norm folded), as
/// Strata's conv_transpose kernel reads them: (O, kh, kw, C/g) — for output channel o of group g,
/// the taps, then the group's input channels, contiguous as NHWC input pixels are.
[[nodiscard]] inline std::vector<float> conv_transpose_weights_stored(const OpDesc& op,
                                                                      const std::vector<float>& w) {
  const int c = op.in_shape.c;
  const int o_all = op.layer.out_channels;
  const int g = op.layer.groups;
  const int kh = op.layer.kernel.h;
  const int kw = op.layer.kernel.w;
  const int cpg = c / g;
  const int opg = o_all / g;
  const std::size_t taps = static_cast<std::size_t>(kh) * kw;
  STRATA_CHECK(w.size() == static_cast<std::size_t>(c) * opg * taps,
               "conv_transpose_weights_stored: " << w.size() << " weights, the layer has "
                                                 << static_cast<std::size_t>(c) * opg * taps);
  std::vector<float> out(w.size(), 0.0f);
  for (int ci = 0; ci < c; ++ci) {
    const int group = ci / cpg;
    for (int j = 0; j < opg; ++j) {
      const int o = group * opg + j;
      for (std::size_t t = 0; t < taps; ++t) {
        out[(static_cast<std::size_t>(o) * taps + t) * cpg + ci % cpg] =
            w[(static_cast<std::size_t>(ci) * opg + j) * taps + t];
      }
    }
  }
  return out;
}

/// `v` zero-extended to `n` entries (per-channel vectors padded to the channel slots).
[[nodiscard]] inline std::vector<float> padded(const std::vector<float>& v, int n) {
  std::vector<float> out(static_cast<std::size_t>(n), 0.0f);
  for (std::size_t i = 0; i < v.size() && i < out.size(); ++i) {
    out[i] = v[i];
  }
  return out;
}

}  // namespace strata::cuda
