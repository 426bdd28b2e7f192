#pragma once
/// Every tactic the engine may use, in one list: adding a way to run an op is its own header
/// under tactics/ and one line here. Order breaks ties between equal heuristic claims.
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "strata/cuda/tactic.hpp"
#include "strata/cuda/tactics/band_depthwise.hpp"
#include "strata/cuda/tactics/bottleneck_conv.hpp"
#include "strata/cuda/tactics/conv_transpose.hpp"
#include "strata/cuda/tactics/cudnn_conv.hpp"
#include "strata/cuda/tactics/cudnn_conv_transpose.hpp"
#include "strata/cuda/tactics/cudnn_graph_conv.hpp"
#include "strata/cuda/tactics/dense_softmax.hpp"
#include "strata/cuda/tactics/depthwise_conv.hpp"
#include "strata/cuda/tactics/direct_conv.hpp"
#include "strata/cuda/tactics/expand_depthwise.hpp"
#include "strata/cuda/tactics/generated_conv.hpp"
#include "strata/cuda/tactics/halo_conv.hpp"
#include "strata/cuda/tactics/kernel_ops.hpp"
#include "strata/cuda/tactics/lt_matmul.hpp"
#include "strata/cuda/tactics/mma_conv.hpp"
#include "strata/cuda/tactics/normed_conv.hpp"
#include "strata/cuda/tactics/pixel_conv.hpp"
#include "strata/cuda/tactics/plane_conv.hpp"
#include "strata/cuda/tactics/pointwise_mma.hpp"
#include "strata/cuda/tactics/pooled_dense.hpp"
#include "strata/cuda/tactics/splitk_conv.hpp"
#include "strata/cuda/tactics/squeeze_excite.hpp"
#include "strata/cuda/tactics/stem_conv.hpp"
#include "strata/cuda/tactics/tile_conv.hpp"

namespace strata::cuda {

/// The tactics for precision P (stateless objects that live for the program).
template <DType P>
[[nodiscard]] const std::vector<const Tactic<P>*>& all_tactics() {
  static const tactics::ExpandDepthwise<P> expand_depthwise;
  static const tactics::NormedConv<P> normed_conv;
  static const tactics::NormedHead<P> normed_head;
  static const tactics::BottleneckConv<P> bottleneck_conv;
  static const tactics::HaloConv<P> halo_conv;
  static const tactics::PlaneConv<P> plane_conv;
  static const tactics::StemConv<P> stem_conv;
  static const tactics::DepthwiseBand<P> depthwise_band;
  static const tactics::DepthwiseConv<P> depthwise_conv;
  static const tactics::PixelConv1x1<P> pixel_conv1x1;
  static const tactics::SqueezeExcite<P> squeeze_excite;
  static const tactics::GeneratedConv<P> generated_conv;
  static const tactics::DirectConv<P> direct_conv;
  static const tactics::MmaConv<P> mma_conv;
  static const tactics::TileConv<P> tile_conv;
  static const tactics::PointwiseMma<P> mma_conv1x1;
  static const tactics::LtConv1x1<P> lt_conv1x1;
  static const tactics::LtIm2col<P> lt_im2col;
  static const tactics::SplitkConv<P> splitk_conv;
  static const tactics::CudnnConv<P> cudnn_conv;
  static const tactics::CudnnGraphConv<P> cudnn_graph_conv;
  static const tactics::LtDense<P> lt_dense;
  static const tactics::DenseSoftmax<P> dense_softmax;
  static const tactics::PooledDense<P> pooled_dense;
  static const tactics::GapDense<P> gap_dense;
  static const tactics::Pointwise<P> pointwise;
  static const tactics::Pool<P> pool;
  static const tactics::Softmax<P> softmax;
  static const tactics::Resize<P> upsample(OpKind::upsample);
  static const tactics::Resize<P> adaptive_pool(OpKind::adaptive_avg_pool);
  static const tactics::ChannelGate<P> channel_gate;
  static const tactics::Copy<P> copy;
  static const tactics::ConvTransposeDirect<P> conv_transpose_direct;
  static const tactics::CudnnConvTranspose<P> cudnn_conv_transpose;
  static const std::vector<const Tactic<P>*> list{
      &expand_depthwise, &depthwise_band, &depthwise_conv, &squeeze_excite, &pixel_conv1x1, &generated_conv, &direct_conv, &mma_conv,
      &mma_conv1x1, &lt_conv1x1,     &cudnn_conv,    &lt_dense,       &pointwise,   &pool,
      &softmax,        &upsample,      &adaptive_pool,  &channel_gate, &copy,
      &conv_transpose_direct, &cudnn_conv_transpose, &cudnn_graph_conv, &tile_conv, &dense_softmax, &lt_im2col, &splitk_conv,
      &pooled_dense, &gap_dense, &normed_conv, &halo_conv, &bottleneck_conv, &normed_head, &plane_conv, &stem_conv};
  return list;
}

/// The tactic named `name` for precision P, or null.
template <DType P>
[[nodiscard]] const Tactic<P>* find_tactic(std::string_view name) {
  for (const Tactic<P>* t : all_tactics<P>()) {
    if (t->name() == name) {
      return t;
    }
  }
  return nullptr;
}

/// The rank `claim` of tactic `t` competes with for `op`: its own, plus rank::extra_pass when `op`
/// has a deferred activation that `t` leaves to a pass of its own.
template <DType P>
[[nodiscard]] int claim_rank(const Tactic<P>& t, const OpDesc& op, const Claim& claim) {
  return claim.rank + (op.in_act.kind != Act::none && !t.reads_input_act() ? rank::extra_pass : 0);
}

/// The heuristic choice for `op` at `batch` within `ws_limit` workspace bytes: the claim of
/// lowest rank (claim_rank) among the applicable tactics (ties: registry order), leaving out the
/// tactic named `exclude` (one whose chosen variant could not be prepared). Throws when no
/// tactic claims the op.
template <DType P>
[[nodiscard]] Variant heuristic_variant(const OpDesc& op, int batch, std::size_t ws_limit,
                                        const Libraries& lib, std::string_view exclude = {}) {
  std::optional<Claim> best;
  std::string tried;
  for (const Tactic<P>* t : all_tactics<P>()) {
    if (!t->runs(op) || t->name() == exclude) {
      continue;
    }
    tried += tried.empty() ? "" : ", ";
    tried += t->name();
    if (auto c = t->heuristic(op, batch, ws_limit, lib)) {
      c->rank = claim_rank(*t, op, *c);
      if (!best || c->rank < best->rank) {
        best = std::move(c);
      }
    }
  }
  STRATA_CHECK(best.has_value(), "cuda::Engine: no tactic can run layer '"
                                     << op.label << "' at batch " << batch << " within "
                                     << ws_limit << " workspace bytes (applicable: "
                                     << (tried.empty() ? "none" : tried) << ")");
  return best->variant;
}

/// The op tactic `t` prepares for `op` with variant `v` (prepare_step): the conv alone where a
/// side conv or a folded gate runs as a step of its own — so that kernels compiled ahead of time
/// (Tactic::kernel_sources) are the ones prepare() asks for.
template <DType P>
[[nodiscard]] OpDesc op_as_prepared(const Tactic<P>& t, const OpDesc& op, const Variant& v) {
  if (op.tail && !t.fuses_tail(v)) {  // (the conv may have a folded expansion too)
    return op_as_prepared(t, tail_main(op), v);
  }
  if (op.project && !t.fuses_project(v)) {  // (the depthwise conv's own op, with its expansion)
    return op_as_prepared(t, project_main(op), v);
  }
  const OpDesc c = op.bottleneck && !t.fuses_bottleneck(v) ? bottleneck_main(op)
                   : op.gate && !t.fuses_gate(v)         ? gate_conv(op)  // (and any excite)
                   : op.excite && !t.fuses_excite(v)     ? excite_main(op)
                   : op.expand && !t.fuses_expand(v)   ? expand_main(op)
                   : op.squeeze && !t.fuses_squeeze(v) ? squeeze_main(op)
                   : op.norm && !t.fuses_norm(v)       ? norm_main(op)
                                                       : op;
  return c.side && !t.fuses_side(v) ? side_main(c) : c;
}

/// `op` — a fused epilogue run as the op it stands for (pool_op, softmax_op) — prepared on the
/// registry's tactic `tactic` (pool, softmax).
template <DType P>
[[nodiscard]] std::unique_ptr<Step> standalone_step(std::string_view tactic, const OpDesc& op,
                                                    int batch, const OpWeights& w, const OpIo& io,
                                                    const Libraries& lib) {
  return find_tactic<P>(tactic)->prepare(op, Variant{std::string(tactic)}, batch, w, io, lib);
}

/// `op` prepared with tactic `t` (variant `v`) at `batch` — preceded, for an op whose producer's
/// activation was deferred into its read (OpDesc::in_act) by a tactic that does not apply it, by
/// that activation applied in place; and, for a conv with a fused pool
/// that the variant does not run itself, followed by Strata's pool kernel from the unpooled map's arena
/// slot (io.y) to the pooled map (io.pooled); likewise a dense layer's folded softmax
/// (OpDesc::softmax), by Strata's softmax kernel from the dense layer's slot into io.user_out;
/// and a dense layer's folded global average pool (OpDesc::gap) is preceded by Strata's pool
/// kernel from the map (io.gap_in) into the dense layer's input slot, a gated conv's folded
/// squeeze-excite op (OpDesc::excite) by that op on the heuristic's variant into the gate's slot
/// (io.gate), a conv's folded channel
/// gate (OpDesc::gate) by Strata's channel-gate kernel from the map and the gate (io.gate_x,
/// io.gate) into the conv's input slot, a depthwise conv's folded expansion (OpDesc::expand)
/// by the expansion on the heuristic's variant into the conv's input slot, and a conv's folded
/// squeeze-excite gate (OpDesc::squeeze) by the pool and the first conv on the heuristic's
/// variants into their slots, and a conv's folded batch norm (OpDesc::norm) by Strata's
/// pointwise kernel from its input (io.norm_x) into the conv's input slot (a dense layer's
/// folded batch norm, before its folded global average pool: into the pool's map, io.gap_in).
/// Every caller prepares
/// ops through this, so a
/// tactic's timing always covers the whole op.
///
/// An op whose result is a concat's channel slice (OpDesc::slice) that tactic `t` cannot write
/// itself runs as if it had a tensor of its own, placed in the arena's staging area, followed by
/// a strided copy into the slice — so every tactic runs every concat branch correctly, and the
/// ones that write through strides (Tactic::writes_slice) skip the copy.
template <DType P>
[[nodiscard]] std::unique_ptr<Step> prepare_step(const Tactic<P>& t, const OpDesc& op,
                                                 const Variant& v, int batch, const OpWeights& w,
                                                 const OpIo& io, const Libraries& lib) {
  STRATA_CHECK(!op.in_slice || t.reads_slice(op),
               "cuda::Engine: layer '" << op.label << "' reads its input in place, from channels "
                                       << op.in_slice->c0 << " on of a concat's output, which tactic '"
                                       << t.name() << "' cannot");
  // `first` on the heuristic's variant, then `rest` on this one: a joined op as its two steps
  // (any workspace for `first`: the executor sizes its own from the plans' steps — for a side
  // conv, at batch 1 where the fold is made, cuBLASLt's in-place form needs only its own). With
  // `first_after`, `first` runs after `rest` instead (a squeeze-excite op joined after its conv).
  const auto heuristic_then = [&](const OpDesc& first, const OpWeights& fw, const OpIo& fio,
                                  const OpDesc& rest, const OpIo& rio,
                                  bool first_after = false) -> std::unique_ptr<Step> {
    const Variant fv = heuristic_variant<P>(first, batch, static_cast<std::size_t>(-1), lib);
    std::vector<std::unique_ptr<Step>> parts;
    parts.push_back(prepare_step(*find_tactic<P>(fv.tactic), first, fv, batch, fw, fio, lib));
    parts.push_back(prepare_step(t, rest, v, batch, w, rio, lib));
    if (first_after) {
      std::swap(parts[0], parts[1]);
    }
    return std::make_unique<StepSequence>(std::move(parts));
  };
  // A joined squeeze-excite op's own buffers (OpDesc::excite, OpDesc::tail): its pool reads
  // `map`, its result goes to `gate`.
  const auto excite_io = [&](const OpIo::Excite& e, const void* map, void* gate) {
    STRATA_CHECK(e.weights != nullptr && e.squeeze_weights != nullptr && e.squeezed != nullptr &&
                     e.pooled != nullptr && map != nullptr && gate != nullptr,
                 "cuda::Engine: layer '" << op.label << "' without its squeeze-excite op's buffers");
    OpIo qio;
    qio.x = e.squeezed;
    qio.squeeze_x = map;
    qio.squeeze_pooled = e.pooled;
    qio.squeeze_weights = e.squeeze_weights;
    qio.y = gate;
    qio.staging = io.staging;
    return qio;
  };
  if (op.tail && !t.fuses_tail(v)) {  // the conv, then the squeeze-excite op as the heuristic runs it
    const OpIo::Excite& e = io.tail;
    const OpIo qio = excite_io(e, io.y, e.gate);  // (the map the pool reads is the conv's result)
    OpIo cio = io;
    cio.tail = {};
    return heuristic_then(*op.tail, *e.weights, qio, tail_main(op), cio, true);
  }
  if (op.project && !t.fuses_project(v)) {  // the depthwise conv, then the projection as the heuristic runs it
    const OpIo::Project& pr = io.project;
    STRATA_CHECK(pr.weights != nullptr && pr.y != nullptr,
                 "cuda::Engine: layer '" << op.label << "' without its projection's buffers");
    OpIo pio;
    pio.x = io.y;  // (the depthwise conv's result)
    pio.z = pr.z;
    pio.y = pr.y;
    pio.staging = io.staging;
    OpIo dio = io;
    dio.project = {};
    return heuristic_then(*op.project, *pr.weights, pio, project_main(op), dio, true);
  }
  if (op.bottleneck && !t.fuses_bottleneck(v)) {  // the bottleneck as the heuristic runs it, then the conv
    STRATA_CHECK(io.bottleneck_weights != nullptr && io.bottleneck_norm_weights != nullptr &&
                     io.bottleneck_x != nullptr && io.bottleneck_norm_x != nullptr,
                 "cuda::Engine: layer '" << op.label << "' without its bottleneck's buffers");
    OpIo bio;
    bio.x = io.bottleneck_x;
    bio.norm_x = io.bottleneck_norm_x;
    bio.norm_weights = io.bottleneck_norm_weights;
    bio.y = const_cast<void*>(io.x);  // the conv's input slot
    bio.staging = io.staging;
    OpIo cio = io;
    cio.bottleneck_x = nullptr;
    cio.bottleneck_norm_x = nullptr;
    cio.bottleneck_weights = nullptr;
    cio.bottleneck_norm_weights = nullptr;
    return heuristic_then(*op.bottleneck, *io.bottleneck_weights, bio, bottleneck_main(op), cio);
  }
  if (op.excite && !t.fuses_excite(v)) {  // the squeeze-excite op as the heuristic runs it, then the gated conv
    const OpIo::Excite& e = io.excite;
    // (the map the gate multiplies is the one the pool reads; the result: the gate's slot)
    const OpIo qio = excite_io(e, io.gate_x, const_cast<void*>(io.gate));
    OpIo cio = io;
    cio.excite = {};
    return heuristic_then(*op.excite, *e.weights, qio, excite_main(op), cio);
  }
  if (op.expand && !t.fuses_expand(v)) {  // the expansion as the heuristic runs it, then the conv
    STRATA_CHECK(io.expand_weights != nullptr && io.expand_x != nullptr,
                 "cuda::Engine: layer '" << op.label << "' without its expansion's buffers");
    OpIo eio;
    eio.x = io.expand_x;
    eio.y = const_cast<void*>(io.x);  // the depthwise conv's input slot
    eio.staging = io.staging;
    // (a folded stem, fold_stem_depthwise: the caller's input, as the stem alone gets it)
    eio.net_input = io.net_input;
    eio.net_input_format = io.net_input_format;
    eio.net_input_hwc = io.net_input_hwc;
    eio.net_input_affine = io.net_input_affine;
    eio.net_input_shape = io.net_input_shape;
    OpIo dio = io;
    dio.expand_x = nullptr;
    dio.expand_weights = nullptr;
    return heuristic_then(*op.expand, *io.expand_weights, eio, expand_main(op), dio);
  }
  if (op.squeeze && !t.fuses_squeeze(v)) {  // the pool and fc1 as the heuristic runs them, then fc2
    STRATA_CHECK(io.squeeze_weights != nullptr && io.squeeze_x != nullptr &&
                     io.squeeze_pooled != nullptr,
                 "cuda::Engine: layer '" << op.label << "' without its squeeze-excite gate's buffers");
    OpIo qio;
    qio.x = io.squeeze_pooled;
    qio.gap_in = io.squeeze_x;
    qio.y = const_cast<void*>(io.x);  // fc2's input slot
    qio.staging = io.staging;
    OpIo mio = io;
    mio.squeeze_x = nullptr;
    mio.squeeze_pooled = nullptr;
    mio.squeeze_weights = nullptr;
    return heuristic_then(*op.squeeze, *io.squeeze_weights, qio, squeeze_main(op), mio);
  }
  if (op.norm && !t.fuses_norm(v)) {  // Strata's batch norm kernel, then the conv
    STRATA_CHECK(io.norm_weights != nullptr && io.norm_x != nullptr,
                 "cuda::Engine: layer '" << op.label << "' without its batch norm's buffers");
    OpIo nio;
    nio.x = io.norm_x;
    // the conv's input slot (a dense layer's folded pool's map, io.gap_in: fold_normed_pooled_dense)
    nio.y = const_cast<void*>(op.gap ? io.gap_in : io.x);
    OpIo cio = io;
    cio.norm_x = nullptr;
    cio.norm_weights = nullptr;
    std::vector<std::unique_ptr<Step>> parts;
    parts.push_back(standalone_step<P>("pointwise", *op.norm, batch, *io.norm_weights, nio, lib));
    parts.push_back(prepare_step(t, norm_main(op), v, batch, w, cio, lib));
    return std::make_unique<StepSequence>(std::move(parts));
  }
  if (op.in_act.kind != Act::none && !t.reads_input_act()) {
    OpDesc plain = op;
    plain.in_act = ActDesc{};
    std::vector<std::unique_ptr<Step>> parts;
    parts.push_back(tactics::deferred_act_step<P>(op, batch, io));
    parts.push_back(prepare_step(t, plain, v, batch, w, io, lib));
    return std::make_unique<StepSequence>(std::move(parts));
  }
  if (op.slice && !t.writes_slice(op)) {
    OpDesc dense = op;
    dense.slice.reset();
    OpIo staged = io;
    (op.pool ? staged.pooled : staged.y) = io.staging;
    const Shape result = op.pool ? op.pool->out_shape : op.out_shape;
    const int cp = op.pool ? op.pool->out_cp : op.out_cp;
    std::vector<std::unique_ptr<Step>> parts;
    parts.push_back(prepare_step(t, dense, v, batch, w, staged, lib));
    parts.push_back(tactics::slice_copy_step<P>(result, cp, *op.slice, io.staging,
                                                op.pool ? io.pooled : io.y, batch));
    return std::make_unique<StepSequence>(std::move(parts));
  }
  if (op.side && !t.fuses_side(v)) {  // the side conv as the heuristic runs it, then the conv
    STRATA_CHECK(io.side_weights != nullptr && io.side_y != nullptr,
                 "cuda::Engine: layer '" << op.label << "' without its side conv's buffers");
    OpIo sio = io;
    sio.y = io.side_y;
    sio.side_y = nullptr;
    sio.side_weights = nullptr;
    OpIo mio = io;
    mio.side_y = nullptr;
    mio.side_weights = nullptr;
    return heuristic_then(*op.side, *io.side_weights, sio, side_main(op), mio);
  }
  if (op.gap && !t.fuses_gap(v)) {  // Strata's global average pool, then the dense layer
    OpDesc dense = op;
    dense.gap.reset();
    dense.label = op.label.substr(op.gap->label.size() + 1);
    OpIo gio;
    gio.x = io.gap_in;
    gio.y = const_cast<void*>(io.x);  // the dense layer's input slot
    OpIo dio = io;
    dio.gap_in = nullptr;
    std::vector<std::unique_ptr<Step>> parts;
    parts.push_back(standalone_step<P>("pool", gap_op(op), batch, w, gio, lib));
    parts.push_back(prepare_step(t, dense, v, batch, w, dio, lib));
    return std::make_unique<StepSequence>(std::move(parts));
  }
  if (op.gate && !t.fuses_gate(v)) {  // Strata's channel-gate kernel, then the conv
    OpIo gio;
    gio.x = io.gate_x;
    gio.z = io.gate;
    gio.y = const_cast<void*>(io.x);  // the conv's input slot
    OpIo cio = io;
    cio.gate_x = nullptr;
    cio.gate = nullptr;
    std::vector<std::unique_ptr<Step>> parts;
    parts.push_back(standalone_step<P>("channel_gate", gate_op(op), batch, w, gio, lib));
    parts.push_back(prepare_step(t, gate_conv(op), v, batch, w, cio, lib));
    return std::make_unique<StepSequence>(std::move(parts));
  }
  if (op.softmax && !t.fuses_softmax(v)) {  // the dense layer, then Strata's softmax kernel
    OpDesc dense = op;
    dense.softmax.reset();
    dense.writes_user_output = false;
    dense.label = op.label.substr(0, op.label.size() - op.softmax->label.size() - 1);
    std::vector<std::unique_ptr<Step>> parts;
    parts.push_back(prepare_step(t, dense, v, batch, w, io, lib));
    OpIo sio;
    sio.x = io.y;
    sio.user_out = io.user_out;
    parts.push_back(standalone_step<P>("softmax", softmax_op(op), batch, w, sio, lib));
    return std::make_unique<StepSequence>(std::move(parts));
  }
  if (!op.pool || t.fuses_pool(v)) {
    return t.prepare(op, v, batch, w, io, lib);
  }
  std::vector<std::unique_ptr<Step>> parts;
  parts.push_back(t.prepare(op, v, batch, w, io, lib));
  OpIo pio;
  pio.x = io.y;
  pio.y = io.pooled;
  parts.push_back(standalone_step<P>("pool", pool_op(op), batch, w, pio, lib));
  return std::make_unique<StepSequence>(std::move(parts));
}

}  // namespace strata::cuda
