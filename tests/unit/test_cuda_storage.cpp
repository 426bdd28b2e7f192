// The CUDA backend's storage rules (strata/cuda/storage.hpp), on the host: channel padding per
// precision, which conv reads its input space-to-depth, the conv geometry as executed, and the
// weight layouts — the space-to-depth rewrite checked against a naive stride-2 convolution.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <strata/cuda/batch_split.hpp>
#include <strata/cuda/engine_options.hpp>
#include <strata/cuda/storage.hpp>
#include <strata/models/mnist_cnn.hpp>
#include <strata/models/resnet.hpp>
#include <strata/strata.hpp>

using namespace strata;
using cuda::NetStorage;

namespace {
using Mnist = models::MnistCnn;
using Stem = decltype(input<3, 32, 32> | conv<4, 5, ConvOpts{.stride = 2, .padding = 2}>);
}  // namespace

TEST_CASE("channel slots: f32 keeps C, 16-bit rounds C up to 8") {
  static_assert(cuda::channel_slots(3, DType::f32) == 3);
  static_assert(cuda::channel_slots(3, DType::f16) == 8);
  static_assert(cuda::channel_slots(64, DType::bf16) == 64);
  static_assert(cuda::channel_slots(65, DType::f16) == 72);
  static_assert(cuda::storage_layout(DType::f32) == Layout::nchw);
  static_assert(cuda::storage_layout(DType::f16) == Layout::nhwc);
}

TEST_CASE("tf32: f32 elements stored as the tensor-core precisions store them (NHWC, 8 slots)") {
  static_assert(dtype_size(DType::tf32) == 4);
  static_assert(!is_16bit(DType::tf32) && !is_16bit(DType::f32) && is_16bit(DType::bf16));
  static_assert(dtype_name(DType::tf32) == "tf32");
  static_assert(cuda::storage_layout(DType::tf32) == Layout::nhwc);
  static_assert(cuda::channel_slots(3, DType::tf32) == 8);
  static_assert(cuda::channel_slots(64, DType::tf32) == 64);
  using T = NetStorage<models::ResNet18, DType::tf32>;
  static_assert(T::fits_plan());
  // Twice the 16-bit arena (same slots, 4-byte elements); the stem reads its input
  // space-to-depth as in 16-bit; never the fused-network kernel (MNIST included).
  static_assert(T::plan.activation_bytes ==
                2 * NetStorage<models::ResNet18, DType::f16>::plan.activation_bytes);
  static_assert(T::s2d_op() == 0);
  static_assert(!NetStorage<Mnist, DType::tf32>::fused_fit().fits);
  const cuda::NetDesc n = T::describe();
  CHECK(n.precision == DType::tf32);
  CHECK(n.layout == Layout::nhwc);
  CHECK_FALSE(n.fused_fits);
  CHECK(std::string(n.fused_reason).find("tf32") != std::string::npos);
  // No downsample is joined to its block's first conv (splitk_conv, which computes both, is
  // 16-bit), and no activation is deferred to a reader.
  cuda::NetDesc folded = n;
  cuda::fold_side_convs(folded);
  CHECK(std::none_of(folded.ops.begin(), folded.ops.end(), [](const cuda::OpDesc& op) { return op.side != nullptr; }));
  CHECK(std::all_of(n.ops.begin(), n.ops.end(), [](const cuda::OpDesc& op) { return op.in_act.kind == Act::none; }));
  for (const cuda::OpDesc& op : n.ops) {
    if (op.kind == OpKind::conv) {
      CHECK(op.conv.cp % 8 == 0);
      CHECK(op.conv.kp % 8 == 0);
    }
  }
}

TEST_CASE("every tensor's storage fits the memory plan's slot") {
  static_assert(NetStorage<Mnist, DType::f32>::fits_plan());
  static_assert(NetStorage<Mnist, DType::f16>::fits_plan());
  static_assert(NetStorage<models::ResNet18, DType::f16>::fits_plan());
  static_assert(NetStorage<models::ResNet50, DType::bf16>::fits_plan());
  static_assert(NetStorage<models::ResNet50, DType::f32>::fits_plan());
}

TEST_CASE("ResNet's 7x7 stride-2 stem reads its input space-to-depth in 16-bit only") {
  using S16 = NetStorage<models::ResNet18, DType::f16>;
  using S32 = NetStorage<models::ResNet18, DType::f32>;
  static_assert(S16::s2d_op() == 0);
  static_assert(S32::s2d_op() == -1);
  constexpr cuda::ConvGeom g = S16::conv_geom(S16::graph.ops[0]);
  // 224 + 2·3 padding, 7 taps of stride 2 → 4 taps of stride 1 over 115 blocks of 2×2 pixels.
  static_assert(g.s2d && g.c == 12 && g.cp == 16 && g.h == 115 && g.w == 115);
  static_assert(g.kh == 4 && g.kw == 4 && g.sh == 1 && g.ph == 0 && g.oh == 112 && g.k == 64);
  constexpr cuda::ConvGeom f = S32::conv_geom(S32::graph.ops[0]);
  static_assert(!f.s2d && f.c == 3 && f.cp == 3 && f.kh == 7 && f.sh == 2 && f.ph == 3);
}

TEST_CASE("the MNIST CNN in storage terms") {
  using S = NetStorage<Mnist, DType::f16>;
  const cuda::NetDesc n = S::describe();
  // Both pools run fused into their convs: 7 network ops, 5 executed ops.
  static_assert(S::fused_pools() == 2);
  REQUIRE(n.ops.size() == static_cast<std::size_t>(Mnist::graph.num_ops - 2));
  CHECK(n.s2d_op == -1);  // stride 1: no space-to-depth
  CHECK(n.ops[0].conv.c == 1);
  CHECK(n.ops[0].conv.cp == 8);
  CHECK(n.ops[0].conv.window() == 72);
  // The first dense layer reads 64 channels × 7 × 7 pixels, 64 slots per pixel.
  const auto dense = std::find_if(n.ops.begin(), n.ops.end(),
                                  [](const cuda::OpDesc& o) { return o.kind == OpKind::dense; });
  REQUIRE(dense != n.ops.end());
  CHECK(dense->dense_kin == 64 * 7 * 7);
  // The final softmax writes the caller's output: no output step.
  CHECK(n.ops.back().writes_user_output);
  CHECK_FALSE(n.needs_output_step);
  CHECK(n.arena_per_image == Mnist::plan_for<DType::f16, Layout::nhwc>.activation_bytes);
  for (const cuda::OpDesc& op : n.ops) {
    const std::string own(Mnist::graph.ops[op.index].label.view());
    CHECK(op.label == (op.pool ? own + "+" + op.pool->label : own));
  }
}

namespace {
/// A folded op rebuilt to stand alone (gap_op, softmax_op) is the op describe() gave.
void check_stands_as(const cuda::OpDesc& got, const cuda::OpDesc& want) {
  CHECK(got.index == want.index);
  CHECK(got.label == want.label);
  CHECK(got.kind == want.kind);
  CHECK(got.in_shape == want.in_shape);
  CHECK(got.out_shape == want.out_shape);
  CHECK(got.in_cp == want.in_cp);
  CHECK(got.out_cp == want.out_cp);
  CHECK(got.in_offset == want.in_offset);
  CHECK(got.out_offset == want.out_offset);
  CHECK(got.in_id == want.in_id);
  CHECK(got.out_id == want.out_id);
}
}  // namespace

TEST_CASE("ops that may run beside the next one: ResNet's downsamples beside their block's first conv") {
  for (const DType p : {DType::f32, DType::f16}) {
    cuda::NetDesc n = p == DType::f32 ? NetStorage<models::ResNet18, DType::f32>::describe()
                                      : NetStorage<models::ResNet18, DType::f16>::describe();
    cuda::fold_for_per_op_path(n);
    std::vector<std::string> pairs;
    for (std::size_t i = 0; i < n.ops.size(); ++i) {
      if (cuda::runs_beside_next(n, i)) {
        pairs.push_back(n.ops[i].label + " | " + n.ops[i + 1].label);
      }
    }
    INFO(dtype_name(p));
    REQUIRE(pairs.size() == 3);
    CHECK(pairs[0] == "layer2.0.downsample.conv0+bn1 | layer2.0.conv1+bn1+relu");
    CHECK(pairs[1] == "layer3.0.downsample.conv0+bn1 | layer3.0.conv1+bn1+relu");
    CHECK(pairs[2] == "layer4.0.downsample.conv0+bn1 | layer4.0.conv1+bn1+relu");
    CHECK_FALSE(cuda::runs_beside_next(n, n.ops.size() - 1));
  }
  // A chain (MNIST's CNN): nothing.
  const cuda::NetDesc m = NetStorage<Mnist, DType::f16>::describe();
  for (std::size_t i = 0; i < m.ops.size(); ++i) {
    CHECK_FALSE(cuda::runs_beside_next(m, i));
  }
  // Arena ranges: an op's input, residual and output, per image.
  cuda::OpDesc op;
  op.in_offset = 100;
  op.in_shape = Shape{3, 2, 5};
  op.in_cp = 8;
  op.out_offset = 1000;
  op.out_shape = Shape{4, 2, 2};
  op.out_cp = 8;
  op.z_offset = 2000;
  const cuda::ArenaAccess a = cuda::arena_access(op, 2);
  REQUIRE(a.reads.size() == 2);
  CHECK(a.reads[0].begin == 100);
  CHECK(a.reads[0].end == 100 + 2 * 5 * 8 * 2);
  CHECK(a.reads[1].begin == 2000);
  CHECK(a.reads[1].end == 2000 + 2 * 2 * 8 * 2);
  REQUIRE(a.writes.size() == 1);
  CHECK(a.writes[0].end == 1000 + 64);
  CHECK(a.reads[0].overlaps(cuda::ArenaRange{259, 300}));
  CHECK_FALSE(a.reads[0].overlaps(cuda::ArenaRange{260, 300}));
}

TEST_CASE("at batch 1 a downsample joins its block's first conv as one op (fold_side_convs)") {
  cuda::NetDesc n = NetStorage<models::ResNet18, DType::f16>::describe();
  cuda::fold_for_per_op_path(n);
  const cuda::NetDesc before = n;
  cuda::fold_side_convs(n);
  REQUIRE(n.ops.size() == before.ops.size() - 3);
  std::vector<std::string> joined;
  for (const cuda::OpDesc& op : n.ops) {
    if (op.side) {
      joined.push_back(op.label);
      // The conv as it was, its side conv as it was: side_main and *side give them back.
      const cuda::OpDesc m = cuda::side_main(op);
      CHECK_FALSE(m.side);
      CHECK(m.label + " & " + op.side->label == op.label);
      CHECK(op.side->conv.kh == 1);
      CHECK(op.side->in_id == op.in_id);
      CHECK(op.side->conv.oh == op.conv.oh);
      // Its arena access is both convs': the side conv's result is written too.
      const cuda::ArenaAccess a = cuda::arena_access(op, 2);
      const cuda::ArenaAccess main_only = cuda::arena_access(m, 2);
      CHECK(a.writes.size() == main_only.writes.size() + 1);
      CHECK(a.writes.back().begin == op.side->out_offset);
    }
  }
  REQUIRE(joined.size() == 3);
  CHECK(joined[0] == "layer2.0.conv1+bn1+relu & layer2.0.downsample.conv0+bn1");
  CHECK(joined[1] == "layer3.0.conv1+bn1+relu & layer3.0.downsample.conv0+bn1");
  CHECK(joined[2] == "layer4.0.conv1+bn1+relu & layer4.0.downsample.conv0+bn1");
  // Nothing beside anything after it; a second fold changes nothing.
  for (std::size_t i = 0; i < n.ops.size(); ++i) {
    CHECK_FALSE(cuda::runs_beside_next(n, i));
  }
  const std::size_t ops = n.ops.size();
  cuda::fold_side_convs(n);
  CHECK(n.ops.size() == ops);
  // ResNet-50: only layer1.0's two 1×1 convs over the same pixels (the later blocks' downsamples
  // are strided where their first conv is not).
  cuda::NetDesc r50 = NetStorage<models::ResNet50, DType::f16>::describe();
  cuda::fold_for_per_op_path(r50);
  const std::size_t r50_ops = r50.ops.size();
  cuda::fold_side_convs(r50);
  REQUIRE(r50.ops.size() == r50_ops - 1);
  const auto j = std::find_if(r50.ops.begin(), r50.ops.end(), [](const cuda::OpDesc& o) { return o.side != nullptr; });
  REQUIRE(j != r50.ops.end());
  CHECK(j->label == "layer1.0.conv1+bn1+relu & layer1.0.downsample.conv0+bn1");
  // f32 and a chain: nothing.
  cuda::NetDesc f32 = NetStorage<models::ResNet18, DType::f32>::describe();
  cuda::fold_for_per_op_path(f32);
  const std::size_t f32_ops = f32.ops.size();
  cuda::fold_side_convs(f32);
  CHECK(f32.ops.size() == f32_ops);
  cuda::NetDesc m = NetStorage<Mnist, DType::f16>::describe();
  const std::size_t m_ops = m.ops.size();
  cuda::fold_side_convs(m);
  CHECK(m.ops.size() == m_ops);
}

TEST_CASE("the per-op path folds a global average pool into the dense layer that alone reads it") {
  for (const DType p : {DType::f32, DType::f16}) {
    const cuda::NetDesc before = p == DType::f32 ? NetStorage<models::ResNet18, DType::f32>::describe()
                                                 : NetStorage<models::ResNet18, DType::f16>::describe();
    INFO(dtype_name(p));
    cuda::NetDesc n = before;
    cuda::fold_for_per_op_path(n);
    REQUIRE(n.ops.size() == before.ops.size() - 1);
    const cuda::OpDesc& d = n.ops.back();
    CHECK(d.label == "avgpool+fc");
    CHECK(d.kind == OpKind::dense);
    REQUIRE(d.gap.has_value());
    CHECK_FALSE(d.softmax.has_value());
    CHECK_FALSE(d.writes_user_output);
    // The dense layer keeps its own input and output; the stand-alone pool is what describe()
    // gave.
    const cuda::OpDesc& pool0 = before.ops[before.ops.size() - 2];
    const cuda::OpDesc& dense0 = before.ops.back();
    CHECK(d.in_offset == dense0.in_offset);
    CHECK(d.in_id == dense0.in_id);
    CHECK(d.out_offset == dense0.out_offset);
    CHECK(d.index == dense0.index);
    CHECK(d.dense_kin == dense0.dense_kin);
    // Its result is the network's output (gap_dense may write the caller's output itself); no
    // other op's is.
    CHECK(d.net_output);
    CHECK(std::count_if(n.ops.begin(), n.ops.end(), [](const cuda::OpDesc& o) { return o.net_output; }) == 1);
    CHECK(n.needs_output_step);
    const cuda::OpDesc g = cuda::gap_op(d);
    CHECK(g.kind == OpKind::global_avg_pool);
    check_stands_as(g, pool0);
    // Once is all.
    cuda::fold_for_per_op_path(n);
    CHECK(n.ops.size() == before.ops.size() - 1);
  }
  // With a final softmax both fold: "global_avg_pool<i>+dense<j>+softmax<k>". A pooled vector
  // that another op also reads (a squeeze-excite gate's) does not.
  {
    using Both = decltype(input<8, 4, 4> | conv<16, 3, ConvOpts{.padding = 1}> | relu | global_avg_pool
                          | flatten | dense<5> | softmax);
    cuda::NetDesc n = NetStorage<Both, DType::f16>::describe();
    const std::size_t ops = n.ops.size();
    cuda::fold_for_per_op_path(n);
    REQUIRE(n.ops.size() == ops - 2);
    CHECK(n.ops.back().gap.has_value());
    CHECK(n.ops.back().softmax.has_value());
    CHECK(n.ops.back().label.starts_with(n.ops.back().gap->label + "+"));
    CHECK(n.ops.back().label.ends_with("+" + n.ops.back().softmax->label));
    CHECK_FALSE(n.ops.back().net_output);  // (the softmax's result is the output)
    CHECK(n.ops.back().writes_user_output);
  }
  {  // a ReLU after the head's dense layer runs in it: the op's result is still the output
    using HeadAct = decltype(input<8, 4, 4> | conv<16, 1> | relu | global_avg_pool | flatten | dense<5> | relu);
    cuda::NetDesc n = NetStorage<HeadAct, DType::f16>::describe();
    cuda::fold_for_per_op_path(n);
    CHECK(n.ops.back().gap.has_value());
    CHECK(n.ops.back().act.kind == Act::relu);
    CHECK(n.ops.back().net_output);
  }
  {
    using Gate = decltype(input<8, 4, 4> | conv<16, 1> | relu
                          | multiply(global_avg_pool | conv<4, 1> | relu | conv<16, 1> | sigmoid)
                          | global_avg_pool | flatten | dense<3>);
    cuda::NetDesc n = NetStorage<Gate, DType::f16>::describe();
    const std::size_t gaps_before = static_cast<std::size_t>(std::count_if(
        n.ops.begin(), n.ops.end(), [](const cuda::OpDesc& o) { return o.kind == OpKind::global_avg_pool; }));
    cuda::fold_for_per_op_path(n);
    const std::size_t gaps_after = static_cast<std::size_t>(std::count_if(
        n.ops.begin(), n.ops.end(), [](const cuda::OpDesc& o) { return o.kind == OpKind::global_avg_pool; }));
    // the head's into its dense layer, the gate's into its squeeze-excite op (fold_squeeze_excite)
    CHECK(gaps_after == gaps_before - 2);
    CHECK(n.ops.back().gap.has_value());
  }
  {  // a pool of the network's input stays an op of its own (it needs the input step)
    using Direct = decltype(input<64, 7, 7> | global_avg_pool | flatten | dense<10>);
    cuda::NetDesc n = NetStorage<Direct, DType::f16>::describe();
    const std::size_t ops = n.ops.size();
    cuda::fold_for_per_op_path(n);
    CHECK(n.ops.size() == ops);
    CHECK_FALSE(n.ops.back().gap.has_value());
  }
}

TEST_CASE("the per-op path folds a final softmax into the dense layer it alone reads") {
  for (const DType p : {DType::f32, DType::f16}) {
    cuda::NetDesc n = p == DType::f32 ? NetStorage<Mnist, DType::f32>::describe()
                                      : NetStorage<Mnist, DType::f16>::describe();
    INFO(dtype_name(p));
    REQUIRE(n.final_softmax_folds);
    const cuda::NetDesc before = n;
    cuda::fold_final_softmax(n);
    REQUIRE(n.ops.size() == before.ops.size() - 1);
    const cuda::OpDesc& d = n.ops.back();
    CHECK(d.label == "dense11+softmax12");
    CHECK(d.kind == OpKind::dense);
    REQUIRE(d.softmax.has_value());
    CHECK(d.softmax->kind == OpKind::softmax);
    CHECK(d.writes_user_output);
    // The dense layer keeps its own output; the stand-alone softmax is what describe() gave.
    const cuda::OpDesc& dense0 = before.ops[before.ops.size() - 2];
    const cuda::OpDesc& sm0 = before.ops.back();
    CHECK(d.out_offset == dense0.out_offset);
    CHECK(d.out_shape == dense0.out_shape);
    CHECK(d.index == dense0.index);
    CHECK(d.dense_kin == dense0.dense_kin);
    const cuda::OpDesc sm = cuda::softmax_op(d);
    check_stands_as(sm, sm0);
    CHECK(sm.writes_user_output);
    CHECK(n.needs_output_step == before.needs_output_step);
    // Once is all: a second fold changes nothing.
    cuda::fold_final_softmax(n);
    CHECK(n.ops.size() == before.ops.size() - 1);
  }
  // log_softmax folds alike; a softmax over a conv's channels and a network ending in a dense
  // layer do not fold.
  {
    using Log = decltype(input<3, 2, 2> | flatten | dense<6> | relu | dense<4> | log_softmax);
    cuda::NetDesc n = NetStorage<Log, DType::f16>::describe();
    REQUIRE(n.final_softmax_folds);
    cuda::fold_final_softmax(n);
    REQUIRE(n.ops.back().softmax.has_value());
    CHECK(n.ops.back().softmax->kind == OpKind::log_softmax);
    INFO(n.ops.back().label);
    CHECK(n.ops.back().label.ends_with("+" + n.ops.back().softmax->label));
    CHECK(n.ops.back().softmax->label.starts_with("log_softmax"));
  }
  {
    using Channels = decltype(input<3, 4, 4> | conv<5, 3, ConvOpts{.padding = 1}> | softmax);
    cuda::NetDesc n = NetStorage<Channels, DType::f16>::describe();
    CHECK_FALSE(n.final_softmax_folds);
    const std::size_t ops = n.ops.size();
    cuda::fold_final_softmax(n);
    CHECK(n.ops.size() == ops);
  }
  {
    using Plain = decltype(input<3, 2, 2> | flatten | dense<6> | relu | dense<4>);
    CHECK_FALSE(NetStorage<Plain, DType::f16>::describe().final_softmax_folds);
  }
}

TEST_CASE("a max/avg pool that only reads a conv's output runs fused into that conv") {
  using S = NetStorage<Mnist, DType::f16>;
  constexpr auto& g = Mnist::graph;
  constexpr auto& plan = Mnist::plan_for<DType::f16, Layout::nhwc>;
  static_assert(S::pool_fuses_into(0) && S::pool_fuses_into(2));
  static_assert(!S::pool_fuses_into(1) && !S::pool_fuses_into(4));  // a pool; a dense
  const cuda::NetDesc n = S::describe();
  const cuda::OpDesc& c0 = n.ops[0];
  REQUIRE(c0.pool.has_value());
  CHECK(c0.label == "conv0+bn1+relu2+max_pool3");
  CHECK(c0.pool->index == 1);
  CHECK(c0.pool->kind == OpKind::max_pool);
  // The conv keeps its unpooled map's shape and slot; the op's result is the pool's output,
  // where the next op reads it.
  CHECK(c0.out_shape == chw(32, 28, 28));
  CHECK(c0.out_offset == plan.tensors[g.ops[0].out].offset);
  CHECK(c0.pool->out_shape == chw(32, 14, 14));
  CHECK(c0.pool->out_cp == 32);
  CHECK(c0.pool->out_offset == plan.tensors[g.ops[1].out].offset);
  CHECK(n.ops[1].in_offset == c0.pool->out_offset);
  CHECK(n.ops[1].label == "conv4+bn5+relu6+max_pool7");
  CHECK(&n.op_at(2) == &n.ops[1]);
  CHECK_THROWS_AS((void)n.op_at(1), Error);  // index 1 runs inside op 0
  // The stand-alone pool of the fused pair reads the unpooled map.
  const cuda::OpDesc p = cuda::pool_op(c0);
  CHECK(p.kind == OpKind::max_pool);
  CHECK(p.label == "max_pool3");
  CHECK(p.in_shape == c0.out_shape);
  CHECK(p.in_offset == c0.out_offset);
  CHECK(p.out_offset == c0.pool->out_offset);
  CHECK(p.layer.kernel.h == 2);
  CHECK(p.layer.stride.w == 2);

  // ResNet's stem: conv1+bn1+relu, then maxpool (3x3, stride 2, padding 1).
  using R = NetStorage<models::ResNet18, DType::f16>;
  static_assert(R::pool_fuses_into(0) && R::fused_pools() == 1);
  CHECK(R::describe().ops[0].label == "conv1+bn1+relu+maxpool");
  // A pool whose input is also read elsewhere (a residual branch) is not fused.
  using Shared = decltype(input<4, 8, 8> | conv<8, 3, ConvOpts{.padding = 1}> |
                          residual(max_pool<3, PoolOpts{.stride = 1, .padding = 1}>));
  static_assert(!NetStorage<Shared, DType::f16>::pool_fuses_into(0));
}

TEST_CASE("space-to-depth weights give the same sums as the stride-2 convolution") {
  using S = NetStorage<Stem, DType::f16>;
  static_assert(S::s2d_op() == 0);
  constexpr Op op = S::graph.ops[0];
  constexpr cuda::ConvGeom g = S::conv_geom(op);
  constexpr int C = 3, H = 32, W = 32, K = 4, R = 5, pad = 2;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> x(C * H * W), w(K * C * R * R);
  for (float& v : x) v = u(rng);
  for (float& v : w) v = u(rng);
  const std::vector<float> ws = cuda::conv_weights_stored(g, op.layer, Layout::nhwc, w);
  REQUIRE(ws.size() == static_cast<std::size_t>(g.kd * g.kh * g.kw * g.fcg));
  // The space-to-depth input: channel (c·2 + dy)·2 + dx of block (Y, X) is pixel
  // (2Y + dy − pad, 2X + dx − pad) of channel c; 0 outside.
  auto s2d = [&](int ch, int by, int bx) {
    const int c = ch / 4, dy = (ch / 2) % 2, dx = ch % 2;
    const int y = 2 * by + dy - pad, xx = 2 * bx + dx - pad;
    return (ch < 4 * C && y >= 0 && y < H && xx >= 0 && xx < W) ? x[(c * H + y) * W + xx] : 0.0f;
  };
  double worst = 0;
  for (int k = 0; k < K; ++k) {
    for (int oy = 0; oy < g.oh; ++oy) {
      for (int ox = 0; ox < g.ow; ++ox) {
        double ref = 0;  // the declared conv: stride 2, padding 2, 5×5 taps
        for (int c = 0; c < C; ++c) {
          for (int ky = 0; ky < R; ++ky) {
            for (int kx = 0; kx < R; ++kx) {
              const int y = 2 * oy + ky - pad, xx = 2 * ox + kx - pad;
              if (y >= 0 && y < H && xx >= 0 && xx < W) {
                ref += double(w[((k * C + c) * R + ky) * R + kx]) * x[(c * H + y) * W + xx];
              }
            }
          }
        }
        double got = 0;  // stride 1, no padding, ⌈5/2⌉ taps, over the stored weights (K, kh, kw, C/g)
        for (int ty = 0; ty < g.kh; ++ty) {
          for (int tx = 0; tx < g.kw; ++tx) {
            for (int ch = 0; ch < g.fcg; ++ch) {
              got += double(ws[((k * g.kh + ty) * g.kw + tx) * g.fcg + ch]) * s2d(ch, oy + ty, ox + tx);
            }
          }
        }
        worst = std::max(worst, std::abs(got - ref));
      }
    }
  }
  CHECK(worst < 1e-9);
}

TEST_CASE("dense weights in NHWC storage follow the pixel-major, channel-slot order") {
  cuda::OpDesc op;
  op.kind = OpKind::dense;
  op.layer.out_channels = 2;
  op.in_shape = chw(3, 1, 2);
  op.in_cp = 8;
  op.dense_kin = 16;
  // PyTorch's flatten order: feature j = c·2 + pixel.
  std::vector<float> w(2 * 6);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i + 1);
  const std::vector<float> s = cuda::dense_weights_stored(op, DType::f16, w);
  REQUIRE(s.size() == 8 * 16);  // outputs padded to 8 rows
  CHECK(s[0 * 8 + 0] == 1.0f);   // out 0, pixel 0, channel 0 ← j = 0
  CHECK(s[1 * 8 + 0] == 2.0f);   // out 0, pixel 1, channel 0 ← j = 1
  CHECK(s[0 * 8 + 2] == 5.0f);   // out 0, pixel 0, channel 2 ← j = 4
  CHECK(s[16 + 1 * 8 + 1] == 10.0f);  // out 1, pixel 1, channel 1 ← j = 3
  CHECK(s[0 * 8 + 3] == 0.0f);   // a padding slot
  CHECK(s[2 * 16] == 0.0f);      // a padding row
  const std::vector<float> f = cuda::dense_weights_stored(op, DType::f32, w);
  CHECK(f.size() == 2 * 16);
}

namespace {
// 6 + 3 + 6 + 4 = 19 channels: slices at 0, 6, 9, 15 (16-bit: 24 slots per pixel).
using ConcatNet = decltype(input<5, 9, 9> | conv<6, 1> |
                        concat(identity, conv<3, 3, ConvOpts{.padding = 1}> | batch_norm | relu,
                               max_pool<3, PoolOpts{.stride = 1, .padding = 1}>,
                               conv<4, 1> | sigmoid) |
                        conv<7, 3, ConvOpts{.padding = 1}>);
// A flat concat: a lone flatten (copied) and a conv's output, flattened, of a (5,2,2) tensor.
using FlatConcatNet = decltype(input<3, 2, 2> | conv<5, 1> | relu |
                            concat(flatten, conv<2, 1> | flatten) | dense<3>);
}  // namespace

TEST_CASE("concat: each branch's writer knows its channel slice of the output") {
  using S = NetStorage<ConcatNet, DType::f16>;
  static_assert(S::has_slices() && S::fits_plan());
  const cuda::NetDesc n = S::describe();
  std::vector<cuda::OutSlice> slices;
  std::vector<std::string> writers;
  for (const cuda::OpDesc& op : n.ops) {
    if (op.slice) {
      slices.push_back(*op.slice);
      writers.push_back(op.label);
    }
  }
  REQUIRE(slices.size() == 4);
  // Branches in op order: conv+bn+relu (1), max_pool (2), conv+sigmoid (3), then the identity's
  // copy, added when the block is lowered.
  CHECK(writers == std::vector<std::string>{"1.1.conv0+bn1+relu2", "1.max_pool2",
                                            "1.3.conv0+sigmoid1", "1.copy0"});
  const int c0[] = {6, 9, 15, 0};
  const int c[] = {3, 6, 4, 6};
  const int write[] = {3, 6, 24 - 15, 6};  // the last slice also zeroes the padding slots 19..23
  for (std::size_t i = 0; i < 4; ++i) {
    INFO(writers[i]);
    CHECK(slices[i].c0 == c0[i]);
    CHECK(slices[i].c == c[i]);
    CHECK(slices[i].write == write[i]);
    CHECK(slices[i].elem_offset == c0[i]);
    CHECK(slices[i].strides.pixel == 24);
    CHECK(slices[i].strides.channel == 1);
    CHECK(slices[i].strides.image == 24 * 81);
    CHECK_FALSE(slices[i].flatten);
    CHECK_FALSE(slices[i].aligned);  // no slice both starts and ends on a multiple of 8
  }
  // The consumer reads the whole output: 19 channels in 24 slots.
  CHECK(n.ops.back().in_shape == chw(19, 9, 9));
  CHECK(n.ops.back().in_cp == 24);
  // Every writer's result fits the staging area, placed after the memory plan's arena.
  constexpr auto& plan = ConcatNet::plan_for<DType::f16, Layout::nhwc>;
  CHECK(n.staging_offset == plan.activation_bytes);
  CHECK(n.staging_bytes == 8 * 81 * 2);
  CHECK(n.arena_per_image == plan.activation_bytes + n.staging_bytes);

  // f32 (NCHW): a slice of an image is contiguous; only the image stride is the output's.
  const cuda::NetDesc f = NetStorage<ConcatNet, DType::f32>::describe();
  for (const cuda::OpDesc& op : f.ops) {
    if (op.slice) {
      CHECK(op.slice->strides.image == 19 * 81);
      CHECK(op.slice->strides.pixel == 1);
      CHECK(op.slice->strides.channel == 81);
      CHECK(op.slice->elem_offset == op.slice->c0 * 81);
      CHECK(op.slice->write == op.slice->c);
      CHECK(op.slice->aligned);
    }
  }
  // Aligned slices: 8 + 16 channels.
  using Aligned = decltype(input<8, 4, 4> | concat(conv<8, 1>, conv<16, 1>));
  for (const cuda::OpDesc& op : NetStorage<Aligned, DType::bf16>::describe().ops) {
    REQUIRE(op.slice);
    CHECK(op.slice->aligned);
    CHECK(op.slice->strides.pixel == 24);
  }
}

TEST_CASE("a dense block: the layers read the running concatenation in place, as a slice") {
  // concat(identity, ...) twice over a 3x5 map: the first conv, each layer's conv write their 8
  // channels of one 24-channel tensor; the relu and the batch norm read channels 0..7 and 0..15
  // of it where they lie.
  using Net = decltype(input<8, 3, 5> | conv<8, 1> | concat(identity, relu | conv<8, 1>) |
                       concat(identity, batch_norm | relu | conv<8, 1>));
  using S = NetStorage<Net, DType::f16>;
  static_assert(S::has_slices() && S::fits_plan() && !S::has_op(OpKind::copy));
  const cuda::NetDesc n = S::describe();
  REQUIRE(n.ops.size() == 5);
  const int out_c0[] = {0, -1, 8, -1, 16};  // -1: a dense result
  const int in_c0[] = {-1, 0, -1, 0, -1};   // -1: a dense input
  for (std::size_t i = 0; i < 5; ++i) {
    const cuda::OpDesc& op = n.ops[i];
    INFO(op.label);
    CHECK(op.slice.has_value() == (out_c0[i] >= 0));
    CHECK(op.in_slice.has_value() == (in_c0[i] >= 0));
    if (op.slice) {
      CHECK(op.slice->c0 == out_c0[i]);
      CHECK(op.slice->strides.pixel == 24);
      CHECK(op.slice->aligned);
    }
    if (op.in_slice) {
      CHECK(op.in_slice->c0 == in_c0[i]);
      CHECK(op.in_slice->elem_offset == 0);
      CHECK(op.in_slice->strides.pixel == 24);
      CHECK(op.in_slice->strides.channel == 1);
      CHECK(op.in_slice->strides.image == 24 * 15);
    }
  }
  CHECK(n.ops[1].in_shape == chw(8, 3, 5));
  CHECK(n.ops[3].in_shape == chw(16, 3, 5));
  // The staging area holds the largest slice an op writes (8 channels), not the 16-channel
  // running concatenation, which no op writes as its result.
  CHECK(n.staging_bytes == 8 * 15 * 2);
  // f32 (NCHW): each image's slice is contiguous, the image stride the whole tensor's.
  for (const cuda::OpDesc& op : NetStorage<Net, DType::f32>::describe().ops) {
    if (op.in_slice) {
      CHECK(op.in_slice->strides.image == 24 * 15);
      CHECK(op.in_slice->strides.channel == 15);
      CHECK(op.in_slice->strides.pixel == 1);
    }
  }
  // An identity that a conv reads is copied as before (the conv reads dense inputs only).
  using ConvReads = decltype(input<8, 3, 5> | conv<8, 1> | concat(identity, conv<8, 1>));
  static_assert(NetStorage<ConvReads, DType::f16>::has_op(OpKind::copy));
}

TEST_CASE("concat: a conv's fused pool writes the slice; flattened tensors fill a flat concat") {
  using Pooled = decltype(input<4, 6, 6> |
                          concat(identity, conv<5, 3, ConvOpts{.padding = 1}> |
                                               max_pool<3, PoolOpts{.stride = 1, .padding = 1}>));
  const cuda::NetDesc p = NetStorage<Pooled, DType::f16>::describe();
  REQUIRE(p.ops[0].pool.has_value());
  REQUIRE(p.ops[0].slice.has_value());  // the pooled map is the slice, not the conv's own map
  CHECK(p.ops[0].slice->c0 == 4);
  CHECK(p.ops[0].slice->c == 5);
  CHECK(p.ops[0].slice->write == 16 - 4);
  CHECK(cuda::pool_op(p.ops[0]).slice->c0 == 4);

  const cuda::NetDesc n = NetStorage<FlatConcatNet, DType::f16>::describe();
  std::vector<cuda::OutSlice> s;
  for (const cuda::OpDesc& op : n.ops) {
    if (op.slice) {
      s.push_back(*op.slice);
    }
  }
  REQUIRE(s.size() == 2);
  // conv<2, 1> | flatten: 8 features from 20 on, feature = c·4 + pixel.
  CHECK(s[0].flatten);
  CHECK(s[0].c0 == 20);
  CHECK(s[0].strides.image == 32);  // 28 features in 32 slots
  CHECK(s[0].strides.pixel == 1);
  CHECK(s[0].strides.channel == 4);
  // The lone flatten is a copy of the (5,2,2) tensor as stored (8 slots per pixel).
  CHECK(s[1].flatten);
  CHECK(s[1].c0 == 0);
  CHECK(s[1].c == 5);
  const cuda::OpDesc& copy = n.ops[2];
  CHECK(copy.kind == OpKind::copy);
  CHECK(copy.in_shape == chw(5, 2, 2));
  CHECK(copy.in_cp == 8);
  CHECK(n.ops.back().in_shape.c == 28);
  CHECK(n.ops.back().in_cp == 32);
}

TEST_CASE("the fused-network kernel refuses the deployment layers by name") {
  CHECK(std::string(NetStorage<ConcatNet, DType::f16>::fused_fit().reason).find("concat") == 0);
  using Up = decltype(input<2, 4, 4> | upsample<2>);
  CHECK(std::string(NetStorage<Up, DType::f16>::fused_fit().reason).find("upsample") == 0);
  using Ct = decltype(input<2, 4, 4> | conv_transpose<3, 2>);
  CHECK(std::string(NetStorage<Ct, DType::f32>::fused_fit().reason).find("conv_transpose") == 0);
  using Se = decltype(input<8, 4, 4> | squeeze_excite<8, 2>);
  CHECK(std::string(NetStorage<Se, DType::f32>::fused_fit().reason).find("multiply") == 0);
  using Ad = decltype(input<2, 4, 4> | adaptive_avg_pool<2>);
  CHECK(std::string(NetStorage<Ad, DType::f32>::fused_fit().reason).find("adaptive_avg_pool") == 0);
  using Act3 = decltype(input<2, 4, 4> | conv<3, 1> | mish | hardswish | hardsigmoid);
  CHECK(NetStorage<Act3, DType::f16>::fused_fit().fits);  // the activations it runs
}

TEST_CASE("conv_transpose weights are stored (O, kh, kw, C/g) for Strata's gather kernel") {
  // C = 4 in 2 groups, O = 6 (3 per group), 1x2 taps; PyTorch's order (C, O/g, kh, kw).
  cuda::OpDesc op;
  op.kind = OpKind::conv_transpose;
  op.in_shape = chw(4, 3, 3);
  op.layer.out_channels = 6;
  op.layer.groups = 2;
  op.layer.kernel = HW{1, 2};
  std::vector<float> w(4 * 3 * 2);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i);
  const std::vector<float> s = cuda::conv_transpose_weights_stored(op, w);
  REQUIRE(s.size() == w.size());
  // Output 4 = group 1, j = 1; tap 1; input channel 3 (2nd of its group) ← w[3][1][0][1].
  CHECK(s[(4 * 2 + 1) * 2 + 1] == w[(3 * 3 + 1) * 2 + 1]);
  // Output 0 = group 0, j = 0; tap 0; input channel 1 ← w[1][0][0][0].
  CHECK(s[(0 * 2 + 0) * 2 + 1] == w[(1 * 3 + 0) * 2 + 0]);
  op.layer.out_channels = 5;  // weights of another layer
  CHECK_THROWS_AS((void)cuda::conv_transpose_weights_stored(op, w), Error);
}

TEST_CASE("input normalization folds to x·a + b per channel, as the input kernels apply it") {
  const strata::cuda::InputOptions imagenet{.format = strata::cuda::InputFormat::u8_hwc,
                                            .scale = 1.0f / 255.0f,
                                            .mean = {0.485f, 0.456f, 0.406f},
                                            .stddev = {0.229f, 0.224f, 0.225f}};
  CHECK(imagenet.normalizes());
  const std::vector<float> ab = strata::cuda::input_affine(imagenet, 3);
  REQUIRE(ab.size() == 6);
  for (int c = 0; c < 3; ++c) {
    for (const int byte : {0, 17, 255}) {
      const float want = (static_cast<float>(byte) / 255.0f - imagenet.mean[c]) / imagenet.stddev[c];
      CHECK(std::fma(static_cast<float>(byte), ab[2 * c], ab[2 * c + 1]) ==
            doctest::Approx(want).epsilon(1e-6));
    }
  }
  // Scale only (no mean/stddev), and nothing at all.
  const strata::cuda::InputOptions scale{.scale = 0.5f};
  CHECK(scale.normalizes());
  CHECK(strata::cuda::input_affine(scale, 2) == std::vector<float>{0.5f, 0.0f, 0.5f, 0.0f});
  CHECK_FALSE(strata::cuda::InputOptions{}.normalizes());
  const strata::cuda::InputOptions stddev_only{.stddev = {2.0f}};
  CHECK(stddev_only.normalizes());
  CHECK(strata::cuda::input_affine(stddev_only, 1) == std::vector<float>{0.5f, -0.0f});
  CHECK(strata::cuda::input_format_size(strata::cuda::InputFormat::u8_hwc) == 1);
  CHECK(std::string(strata::cuda::input_format_name(strata::cuda::InputFormat::f16)) == "f16");
}

TEST_CASE("an EnginePool's batch shares: contiguous, as equal as possible, none empty or too big") {
  using strata::cuda::BatchShare;
  using strata::cuda::split_batch;
  CHECK(split_batch(256, 2, 128) == std::vector<BatchShare>{{0, 128}, {128, 128}});
  CHECK(split_batch(7, 3, 4) == std::vector<BatchShare>{{0, 3}, {3, 2}, {5, 2}});
  CHECK(split_batch(2, 4, 8) == std::vector<BatchShare>{{0, 1}, {1, 1}});  // no empty share
  CHECK(split_batch(5, 1, 5) == std::vector<BatchShare>{{0, 5}});
  for (int engines = 1; engines <= 5; ++engines) {
    for (int batch = 1; batch <= engines * 6; ++batch) {
      const auto shares = split_batch(batch, engines, 6);
      int next = 0;
      for (const BatchShare& s : shares) {
        CHECK(s.first == next);
        CHECK(s.count >= 1);
        CHECK(s.count <= 6);
        CHECK(s.count - shares.back().count <= 1);
        next += s.count;
      }
      CHECK(next == batch);
    }
  }
  try {
    (void)split_batch(13, 2, 6);
    FAIL("no error for a batch above the pool's maximum");
  } catch (const strata::Error& e) {
    const std::string m = e.what();
    CHECK(m.find("13") != std::string::npos);
    CHECK(m.find("[1, 12]") != std::string::npos);
  }
  CHECK_THROWS_AS((void)split_batch(0, 2, 6), strata::Error);
}

TEST_CASE("an expansion conv's ReLU6/SiLU moves into the depthwise conv that alone reads it") {
  // An inverted-residual block: 1x1 expansion + ReLU6, 3x3 depthwise + SiLU, 1x1 projection;
  // then a residual whose body is a 1x1 conv + SiLU read only by a depthwise conv (the add reads
  // the block's input), then a 5x5 stride-2 depthwise conv on the sum.
  using Block = decltype(input<8, 224, 224> | conv<32, 1> | batch_norm | relu6 |
                         conv<32, 3, ConvOpts{.padding = 1, .groups = 32}> | batch_norm | silu |
                         conv<16, 1> | batch_norm |
                         residual(conv<16, 1> | silu | conv<16, 3, ConvOpts{.padding = 1, .groups = 16}>) |
                         conv<16, 5, ConvOpts{.stride = 2, .padding = 2, .groups = 16}> | relu6 |
                         global_avg_pool | flatten | dense<4>);
  const cuda::NetDesc h = NetStorage<Block, DType::f16>::describe();
  REQUIRE_FALSE(h.fused_fits);  // (the fused-network kernel applies every activation itself)
  REQUIRE(h.ops.size() >= 6);
  const cuda::OpDesc& expand = h.ops[0];
  const cuda::OpDesc& dw = h.ops[1];
  REQUIRE(cuda::depthwise_runs(dw));
  CHECK(expand.act.kind == Act::none);  // stored before its activation
  CHECK(expand.act_applied_by == dw.label);  // (said by describe() and profiles)
  CHECK(dw.in_act.kind == Act::clip);   // which the depthwise conv applies as it reads
  CHECK(dw.in_act.alpha == 0.0f);
  CHECK(dw.in_act.beta == 6.0f);
  CHECK(dw.act.kind == Act::silu);      // its own activation stays
  CHECK(h.ops[2].in_act.kind == Act::none);  // the projection reads the depthwise's output as is
  // Inside the residual: the SiLU conv's output is read only by the depthwise conv: deferred.
  const cuda::OpDesc& inner = h.ops[3];
  CHECK(inner.act.kind == Act::none);
  CHECK(h.ops[4].in_act.kind == Act::silu);
  CHECK(h.ops[4].has_residual);
  // The stride-2 5x5 depthwise conv reads the residual sum (an add fused into a conv whose
  // activation is none): nothing to defer.
  CHECK(cuda::depthwise_runs(h.ops[5]));
  CHECK(h.ops[5].in_act.kind == Act::none);
  CHECK(h.ops[5].act.kind == Act::clip);
  // f32 (NCHW, cuDNN's depthwise) keeps every activation where it was declared.
  const cuda::NetDesc f = NetStorage<Block, DType::f32>::describe();
  for (const cuda::OpDesc& op : f.ops) {
    CHECK(op.in_act.kind == Act::none);
  }
  CHECK(f.ops[0].act.kind == Act::clip);
  // A conv read by two ops keeps its activation.
  cuda::NetDesc two = h;
  two.ops[0].act = ActDesc{Act::silu};
  two.ops[1].in_act = ActDesc{};
  std::vector<int> uses(64, 1);
  uses[two.ops[1].in_id] = 2;
  cuda::defer_activations(two, uses);
  CHECK(two.ops[0].act.kind == Act::silu);
  CHECK(two.ops[1].in_act.kind == Act::none);
  uses[two.ops[1].in_id] = 1;
  cuda::defer_activations(two, uses);
  CHECK(two.ops[0].act.kind == Act::none);
  CHECK(two.ops[1].in_act.kind == Act::silu);
}

TEST_CASE("the last conv's ReLU6/SiLU moves into the global average pool that alone reads it, and into the head's fold") {
  // MobileNetV2's and EfficientNet's last conv (1x1 to 1,280 channels, batch norm, ReLU6 or SiLU:
  // cuBLASLt's GEMM and an activation pass), read only by the global average pool.
  using Head = decltype(input<64, 32, 32> | conv<1024, 1> | batch_norm | relu6 | global_avg_pool | flatten |
                        dense<10>);
  cuda::NetDesc h = NetStorage<Head, DType::f16>::describe();
  REQUIRE_FALSE(h.fused_fits);
  REQUIRE(h.ops.size() == 3);
  const cuda::OpDesc last = h.ops[0];
  CHECK(last.act.kind == Act::none);  // stored before its activation
  CHECK(h.ops[1].kind == OpKind::global_avg_pool);
  CHECK(h.ops[1].in_act.kind == Act::clip);  // which the pool applies as it reads
  CHECK(h.ops[1].in_act.beta == 6.0f);
  CHECK(last.act_applied_by == h.ops[1].label);
  // Joined with the dense layer ("avgpool+fc"), the pool's read keeps it; the stand-alone pool
  // of the fold (gap_op) applies it too; the producer names the joined op.
  cuda::fold_pooled_dense(h);
  REQUIRE(h.ops.size() == 2);
  const cuda::OpDesc& head = h.ops[1];
  REQUIRE(head.gap.has_value());
  CHECK(head.gap->in_act.kind == Act::clip);
  CHECK(head.gap->in_act.alpha == 0.0f);
  CHECK(head.in_act.kind == Act::none);  // (the dense layer reads the pooled vector as it is)
  CHECK(cuda::gap_op(head).in_act.kind == Act::clip);
  CHECK(h.ops[0].act_applied_by == head.label);
  // With a softmax after the dense layer (folded into the head: the network's output), the
  // producer names the op as finally labelled.
  using SoftHead = decltype(input<64, 32, 32> | conv<1024, 1> | batch_norm | relu6 | global_avg_pool | flatten |
                            dense<10> | softmax);
  cuda::NetDesc soft = NetStorage<SoftHead, DType::f16>::describe();
  cuda::fold_for_per_op_path(soft);
  REQUIRE(soft.ops.size() == 2);
  REQUIRE(soft.ops[1].softmax.has_value());
  CHECK(soft.ops[1].gap->in_act.kind == Act::clip);
  CHECK(soft.ops[0].act_applied_by == soft.ops[1].label);
  // SiLU likewise (EfficientNet); ReLU stays with the conv (the GEMM's epilogue applies it).
  using SiluHead = decltype(input<64, 32, 32> | conv<1024, 1> | silu | global_avg_pool | flatten | dense<10>);
  const cuda::NetDesc sh = NetStorage<SiluHead, DType::bf16>::describe();
  REQUIRE_FALSE(sh.fused_fits);
  CHECK(sh.ops[0].act.kind == Act::none);
  CHECK(sh.ops[1].in_act.kind == Act::silu);
  using ReluHead = decltype(input<64, 32, 32> | conv<1024, 1> | relu | global_avg_pool | flatten | dense<10>);
  const cuda::NetDesc rh = NetStorage<ReluHead, DType::f16>::describe();
  REQUIRE_FALSE(rh.fused_fits);
  CHECK(rh.ops[0].act.kind == Act::relu);
  CHECK(rh.ops[1].in_act.kind == Act::none);
  // A depthwise conv's activation stays with it (Strata's kernel applies it as it stores); a
  // conv whose output another op reads too keeps its own; f32 keeps every activation.
  using DwHead = decltype(input<64, 32, 32> | conv<1024, 1> | relu |
                          conv<1024, 3, ConvOpts{.padding = 1, .groups = 1024}> | relu6 | global_avg_pool |
                          flatten | dense<10>);
  const cuda::NetDesc dh = NetStorage<DwHead, DType::f16>::describe();
  REQUIRE_FALSE(dh.fused_fits);
  REQUIRE(cuda::depthwise_runs(dh.ops[1]));
  CHECK(dh.ops[1].act.kind == Act::clip);
  CHECK(dh.ops[2].in_act.kind == Act::none);
  using TwoReaders = decltype(input<64, 32, 32> | conv<1024, 1> | hardswish |
                              multiply(global_avg_pool | conv<1024, 1> | sigmoid) | global_avg_pool | flatten |
                              dense<10>);
  const cuda::NetDesc tr = NetStorage<TwoReaders, DType::f16>::describe();
  REQUIRE_FALSE(tr.fused_fits);
  REQUIRE(tr.ops[1].kind == OpKind::global_avg_pool);
  CHECK(tr.ops[0].act.kind == Act::hardswish);
  CHECK(tr.ops[1].in_act.kind == Act::none);
  const cuda::NetDesc f = NetStorage<Head, DType::f32>::describe();
  CHECK(f.ops[0].act.kind == Act::clip);
  CHECK(f.ops[1].in_act.kind == Act::none);
}

TEST_CASE("a squeeze-excite gate's first activation moves into its second layer") {
  using Gated = decltype(input<16, 224, 224> | conv<32, 3, ConvOpts{.padding = 1}> |
                         multiply(global_avg_pool | conv<8, 1> | silu | conv<32, 1> | sigmoid) |
                         global_avg_pool | flatten | dense<4>);
  const cuda::NetDesc n = NetStorage<Gated, DType::bf16>::describe();
  REQUIRE_FALSE(n.fused_fits);
  int fc1 = -1;
  for (std::size_t i = 0; i < n.ops.size(); ++i) {
    if (cuda::pixel_conv1x1_runs(n.ops[i]) && n.ops[i].conv.k == 8) {
      fc1 = static_cast<int>(i);
    }
  }
  REQUIRE(fc1 >= 0);
  REQUIRE(fc1 + 1 < static_cast<int>(n.ops.size()));
  const cuda::OpDesc& fc2 = n.ops[static_cast<std::size_t>(fc1) + 1];
  CHECK(cuda::pixel_conv1x1_runs(fc2));
  CHECK(n.ops[static_cast<std::size_t>(fc1)].act.kind == Act::none);
  CHECK(fc2.in_act.kind == Act::silu);
  CHECK(fc2.act.kind == Act::sigmoid);
  CHECK_FALSE(cuda::pixel_conv1x1_runs(n.ops[0]));  // a 3x3 conv
}

TEST_CASE("a gate's multiply folds into the 1x1 conv that alone reads it (fold_gated_convs), 16-bit only") {
  // A squeeze-excite block as EfficientNet's: expansion, depthwise, gate, projection (with a
  // residual add); then a gate before a 3x3 conv and one before a strided 1x1 conv (no fold).
  using Block = decltype(input<16, 28, 28> | residual(conv<64, 1> | batch_norm | silu |
                         conv<64, 3, ConvOpts{.padding = 1, .groups = 64}> | batch_norm | silu |
                         multiply(global_avg_pool | conv<8, 1> | silu | conv<64, 1> | sigmoid) |
                         conv<16, 1> | batch_norm) |
                         multiply(global_avg_pool | conv<4, 1> | relu | conv<16, 1> | sigmoid) |
                         conv<16, 3, ConvOpts{.padding = 1}> |
                         multiply(global_avg_pool | conv<4, 1> | relu | conv<16, 1> | sigmoid) |
                         conv<8, 1, ConvOpts{.stride = 2}> | global_avg_pool | flatten | dense<4>);
  // The plan's rule: the first multiply's inputs (the depthwise conv's map and the gate) stay
  // live through the projection, which reads them when the gate is folded.
  constexpr auto& g = Block::graph;
  int mul = -1;
  int gates = 0;
  for (int i = 0; i < g.num_ops; ++i) {
    if (g.ops[i].kind == OpKind::multiply) {
      mul = mul < 0 ? i : mul;
      gates += gate_folds_into_conv(g, i) ? 1 : 0;
    }
  }
  REQUIRE(mul >= 0);
  CHECK(gates == 1);
  CHECK(gate_folds_into_conv(g, mul));
  const auto plan = plan_memory(g, DType::f16, Layout::nhwc);
  CHECK(plan.tensors[g.ops[mul].in].last == mul + 1);
  CHECK(plan.tensors[g.ops[mul].in2].last == mul + 1);
  CHECK_FALSE(plan.overlap(g.ops[mul].in, g.ops[mul + 1].out));
  CHECK_FALSE(plan.overlap(g.ops[mul].in2, g.ops[mul + 1].out));

  const cuda::NetDesc before = NetStorage<Block, DType::f16>::describe();
  cuda::NetDesc n = before;
  cuda::fold_for_per_op_path(n);
  // the gate, the head's pool into the dense layer (the expansion reads the network's input),
  // and each of the three squeeze-excite gates' pool and first conv (fold_squeeze_excite)
  REQUIRE(n.ops.size() == before.ops.size() - 2 - 3 * 2);
  std::vector<const cuda::OpDesc*> folded;
  for (const cuda::OpDesc& op : n.ops) {
    if (op.gate) {
      folded.push_back(&op);
    }
  }
  REQUIRE(folded.size() == 1);
  const cuda::OpDesc& d = *folded[0];
  const cuda::OpDesc& mul0 = before.op_at(mul);
  const cuda::OpDesc& conv0 = before.op_at(mul + 1);
  CHECK(d.label == mul0.label + "+" + conv0.label);
  CHECK(d.label == "0.multiply6+mul+0.conv7+bn8+add");
  CHECK(d.has_residual);
  // The conv keeps its own input (the product's slot) and output; the stand-alone multiply and
  // conv are what describe() gave.
  CHECK(d.in_offset == conv0.in_offset);
  CHECK(d.out_offset == conv0.out_offset);
  CHECK(d.gate->x_offset == mul0.in_offset);
  CHECK(d.gate->gate_offset == mul0.z_offset);
  const cuda::OpDesc m = cuda::gate_op(d);
  check_stands_as(m, mul0);
  CHECK(m.z_offset == mul0.z_offset);
  CHECK(m.z_id == mul0.z_id);
  // It reads the map and the gate (the fold's and runs_beside_next's one notion of a read),
  // and the product only as its input.
  CHECK(cuda::reads_tensor(d, mul0.in_id));
  CHECK(cuda::reads_tensor(d, mul0.z_id));
  CHECK(cuda::reads_tensor(d, mul0.out_id));
  CHECK_FALSE(cuda::reads_tensor(d, d.out_id));
  CHECK_FALSE(cuda::reads_tensor(d, -1));
  const cuda::OpDesc c = cuda::gate_conv(d);
  CHECK(c.label == conv0.label);
  CHECK_FALSE(c.gate.has_value());
  // What it touches: its input, residual and output, the map and the gate, and the product's
  // slot (written where the multiply runs first); the map and the gate clear of the output.
  const cuda::ArenaAccess a = cuda::arena_access(d, 2);
  REQUIRE(a.reads.size() == 4);
  CHECK(a.reads[2].begin == mul0.in_offset);
  CHECK(a.reads[2].end == mul0.in_offset + 28 * 28 * 64 * 2);
  CHECK(a.reads[3].begin == mul0.z_offset);
  CHECK(a.reads[3].end == mul0.z_offset + 64 * 2);
  REQUIRE(a.writes.size() == 2);
  CHECK(a.writes[0].begin == conv0.in_offset);
  CHECK(a.writes[1].begin == conv0.out_offset);
  CHECK_FALSE(a.writes[1].overlaps(a.reads[2]));
  CHECK_FALSE(a.writes[1].overlaps(a.reads[3]));
  // Once is all; f32 (NCHW) and bf16's NHWC: only 16-bit NHWC folds.
  cuda::fold_for_per_op_path(n);
  CHECK(n.ops.size() == before.ops.size() - 2 - 3 * 2);
  cuda::NetDesc f32 = NetStorage<Block, DType::f32>::describe();
  cuda::fold_for_per_op_path(f32);
  CHECK(std::none_of(f32.ops.begin(), f32.ops.end(), [](const cuda::OpDesc& o) { return o.gate.has_value(); }));
  cuda::NetDesc bf16 = NetStorage<Block, DType::bf16>::describe();
  cuda::fold_for_per_op_path(bf16);
  CHECK(std::count_if(bf16.ops.begin(), bf16.ops.end(), [](const cuda::OpDesc& o) { return o.gate.has_value(); }) == 1);
  // A product the conv also reads as its residual (the add of `residual(conv<16, 1> | ...)`
  // fused into the conv): the scaled weights would leave that read without its product, so no
  // fold; likewise a product that a later op reads too.
  using Both = decltype(input<16, 28, 28> | conv<16, 1> | silu |
                        multiply(global_avg_pool | conv<4, 1> | relu | conv<16, 1> | sigmoid) |
                        residual(conv<16, 1> | batch_norm) | flatten | dense<3>);
  cuda::NetDesc both = NetStorage<Both, DType::f16>::describe();
  const auto conv_of_product = std::find_if(both.ops.begin(), both.ops.end(), [](const cuda::OpDesc& o) {
    return o.kind == OpKind::conv && o.has_residual;
  });
  REQUIRE(conv_of_product != both.ops.end());
  CHECK(conv_of_product->z_id == conv_of_product->in_id);  // the product, twice
  cuda::fold_for_per_op_path(both);
  CHECK(std::none_of(both.ops.begin(), both.ops.end(), [](const cuda::OpDesc& o) { return o.gate.has_value(); }));
  using Twice = decltype(input<16, 28, 28> | conv<16, 1> | silu |
                         multiply(global_avg_pool | conv<4, 1> | relu | conv<16, 1> | sigmoid) |
                         residual(conv<16, 1> | relu | conv<16, 1>) | flatten | dense<3>);
  cuda::NetDesc twice = NetStorage<Twice, DType::f16>::describe();
  cuda::fold_for_per_op_path(twice);
  CHECK(std::none_of(twice.ops.begin(), twice.ops.end(), [](const cuda::OpDesc& o) { return o.gate.has_value(); }));
}

// EfficientNet's block on an SxS map: expansion, depthwise conv, gate (pool, fc1, fc2), projection
// with a residual.
template <int S>
using SeBlock = decltype(input<16, S, S> | residual(conv<64, 1> | batch_norm | silu |
                         conv<64, 3, ConvOpts{.padding = 1, .groups = 64}> | batch_norm | silu |
                         multiply(global_avg_pool | conv<8, 1> | silu | conv<64, 1> | sigmoid) |
                         conv<16, 1> | batch_norm) | flatten | dense<4>);

TEST_CASE("a squeeze-excite op folds into the gated conv after it (fold_excited_gates), 16-bit NHWC at batch 1") {
  // EfficientNet's block at 14x14 (SeBlock); then a gate whose pool reads another map than the one
  // it multiplies (no fold).
  using Block = SeBlock<14>;
  cuda::NetDesc n = NetStorage<Block, DType::f16>::describe();
  cuda::fold_for_per_op_path(n);
  const std::size_t folded_once = n.ops.size();
  const auto gated = std::find_if(n.ops.begin(), n.ops.end(), [](const cuda::OpDesc& o) { return o.gate.has_value(); });
  REQUIRE(gated != n.ops.end());
  REQUIRE(gated != n.ops.begin());
  const cuda::OpDesc q = *(gated - 1);  // the squeeze-excite op: fc2 with its pool and fc1
  const cuda::OpDesc conv = *gated;
  REQUIRE(q.squeeze != nullptr);
  CHECK(conv.gate->gate_id == q.out_id);
  cuda::fold_excited_gates(n);
  REQUIRE(n.ops.size() == folded_once - 1);
  const auto joined = std::find_if(n.ops.begin(), n.ops.end(), [](const cuda::OpDesc& o) { return o.excite != nullptr; });
  REQUIRE(joined != n.ops.end());
  const cuda::OpDesc& d = *joined;
  // "<pool>+<fc1>+<fc2>+<multiply>+<conv>", the scope they share written once
  CHECK(d.label == cuda::join_scoped(q.label, conv.label));
  CHECK(d.label == "0.6.global_avg_pool0+0.6.conv1+silu2+0.6.conv3+sigmoid4+multiply6+mul+0.conv7+bn8+add");
  CHECK(d.excite->label == q.label);
  CHECK(d.excite->out_id == conv.gate->gate_id);
  CHECK(d.excite_conv_label == conv.label);
  // Undone: the gated conv under its own label, and the conv alone (its gate and the
  // squeeze-excite op both run first).
  const cuda::OpDesc e = cuda::excite_main(d);
  CHECK(e.label == conv.label);
  CHECK(e.excite == nullptr);
  CHECK(e.gate.has_value());
  CHECK(cuda::gate_conv(d).label == cuda::gate_conv(conv).label);
  CHECK_FALSE(cuda::gate_conv(d).gate.has_value());
  CHECK(cuda::gate_conv(d).excite == nullptr);
  // It reads what the squeeze-excite op read (the map) and the gate; what it writes includes the
  // squeeze-excite op's slots (the pooled and squeezed vectors, the gate), where it runs first.
  CHECK(cuda::reads_tensor(d, q.squeeze->gap->in_id));
  const cuda::ArenaAccess a = cuda::arena_access(d, 2);
  const cuda::ArenaAccess qa = cuda::arena_access(q, 2);
  const cuda::ArenaAccess ca = cuda::arena_access(conv, 2);
  REQUIRE(a.writes.size() == ca.writes.size() + qa.writes.size());
  CHECK(a.writes.back().begin == qa.writes.back().begin);
  CHECK(std::any_of(a.writes.begin(), a.writes.end(), [&](const cuda::ArenaRange& r) { return r.begin == q.out_offset; }));
  // Once is all; f32 and a gate another op reads too keep the two ops apart.
  cuda::fold_excited_gates(n);
  CHECK(n.ops.size() == folded_once - 1);
  cuda::NetDesc f32 = NetStorage<Block, DType::f32>::describe();
  cuda::fold_for_per_op_path(f32);
  cuda::fold_excited_gates(f32);
  CHECK(std::none_of(f32.ops.begin(), f32.ops.end(), [](const cuda::OpDesc& o) { return o.excite != nullptr; }));
  cuda::NetDesc shared = NetStorage<Block, DType::f16>::describe();
  cuda::fold_for_per_op_path(shared);
  shared.ops.back().z_id = q.out_id;  // (as if the head read the gate too)
  cuda::fold_excited_gates(shared);
  CHECK(std::none_of(shared.ops.begin(), shared.ops.end(), [](const cuda::OpDesc& o) { return o.excite != nullptr; }));
  // A gate whose pool reads the block's input while it multiplies the depthwise conv's map: no fold.
  cuda::NetDesc other = NetStorage<Block, DType::f16>::describe();
  cuda::fold_for_per_op_path(other);
  for (cuda::OpDesc& o : other.ops) {
    if (o.gate) {
      o.gate->x_id = o.in_id + 1000;
    }
  }
  cuda::fold_excited_gates(other);
  CHECK(std::none_of(other.ops.begin(), other.ops.end(), [](const cuda::OpDesc& o) { return o.excite != nullptr; }));
}

TEST_CASE("a squeeze-excite op folds into the depthwise conv before it on maps of 56x56 on (fold_tailed_gates), 16-bit only") {
  // An inverted-residual block at 56x56 (the expansion joined to the depthwise conv first) and
  // the same at 28x28 (no fold: the projection's clusters compute those gates, fold_excited_gates).
  using Block = SeBlock<56>;
  cuda::NetDesc n = NetStorage<Block, DType::f16>::describe();
  cuda::fold_for_per_op_path(n);
  const std::size_t folded_once = n.ops.size();
  const auto se = std::find_if(n.ops.begin(), n.ops.end(), [](const cuda::OpDesc& o) { return o.squeeze != nullptr; });
  REQUIRE(se != n.ops.end());
  REQUIRE(se != n.ops.begin());
  const cuda::OpDesc q = *se;         // the squeeze-excite op: fc2 with its pool and fc1
  const cuda::OpDesc dw = *(se - 1);  // the depthwise conv
  REQUIRE(dw.conv.groups == 64);
  CHECK(q.squeeze->gap->in_id == dw.out_id);
  cuda::fold_tailed_gates(n);
  REQUIRE(n.ops.size() == folded_once - 1);
  const auto joined = std::find_if(n.ops.begin(), n.ops.end(), [](const cuda::OpDesc& o) { return o.tail != nullptr; });
  REQUIRE(joined != n.ops.end());
  const cuda::OpDesc& d = *joined;
  // "<conv>+<pool>+<fc1>+<fc2>", the scope they share written once
  CHECK(d.label == cuda::join_scoped(dw.label, q.label));
  CHECK(d.label == "0.conv3+bn4+silu5+6.global_avg_pool0+0.6.conv1+silu2+0.6.conv3+sigmoid4");
  CHECK((d.expand == nullptr) == (dw.expand == nullptr));
  CHECK(d.tail->label == q.label);
  CHECK(d.tail_conv_label == dw.label);
  // Undone: the depthwise conv under its own label (the squeeze-excite op runs after it).
  const cuda::OpDesc m = cuda::tail_main(d);
  CHECK(m.label == dw.label);
  CHECK(m.tail == nullptr);
  // It reads what the conv reads; what it writes includes the squeeze-excite op's slots (the
  // pooled and squeezed vectors, the gate).
  CHECK(cuda::reads_tensor(d, dw.in_id));
  CHECK(cuda::reads_tensor(d, dw.out_id));  // (the pool reads the conv's result)
  const cuda::ArenaAccess a = cuda::arena_access(d, 2);
  const cuda::ArenaAccess qa = cuda::arena_access(q, 2);
  const cuda::ArenaAccess da = cuda::arena_access(dw, 2);
  REQUIRE(a.writes.size() == da.writes.size() + qa.writes.size());
  CHECK(std::any_of(a.writes.begin(), a.writes.end(), [&](const cuda::ArenaRange& r) { return r.begin == q.out_offset * 2; }) ==
        std::any_of(qa.writes.begin(), qa.writes.end(), [&](const cuda::ArenaRange& r) { return r.begin == q.out_offset * 2; }));
  CHECK_FALSE(cuda::runs_beside_next(n, static_cast<std::size_t>(joined - n.ops.begin())));
  // The gated projection after it keeps its gate and takes no squeeze-excite op (none left).
  const cuda::OpDesc& proj = *(joined + 1);
  REQUIRE(proj.gate.has_value());
  CHECK(proj.gate->gate_id == q.out_id);
  cuda::fold_excited_gates(n);
  CHECK(n.ops.size() == folded_once - 1);
  CHECK(std::none_of(n.ops.begin(), n.ops.end(), [](const cuda::OpDesc& o) { return o.excite != nullptr; }));
  // Once is all; f32 keeps the ops apart; so does a 28x28 map (fold_excited_gates takes it).
  cuda::fold_tailed_gates(n);
  CHECK(n.ops.size() == folded_once - 1);
  cuda::NetDesc f32 = NetStorage<Block, DType::f32>::describe();
  cuda::fold_for_per_op_path(f32);
  cuda::fold_tailed_gates(f32);
  CHECK(std::none_of(f32.ops.begin(), f32.ops.end(), [](const cuda::OpDesc& o) { return o.tail != nullptr; }));
  using Small = SeBlock<28>;
  cuda::NetDesc small = NetStorage<Small, DType::f16>::describe();
  cuda::fold_for_per_op_path(small);
  const std::size_t small_ops = small.ops.size();
  cuda::fold_tailed_gates(small);
  CHECK(small.ops.size() == small_ops);
  cuda::fold_excited_gates(small);
  CHECK(small.ops.size() == small_ops - 1);
}

TEST_CASE("a projection joins the expansion and depthwise conv before it at large batches (fold_projected_depthwise)") {
  // An inverted-residual block with its residual, then one without (stride 2, 64 -> 24): both
  // projections join; so does a 1x1 after a depthwise conv without an expansion (of a 3x3 conv's
  // output, as MobileNetV2's features.1 is of its stem's).
  using Blocks = decltype(input<16, 20, 20> | conv<16, 3, ConvOpts{.padding = 1}> | relu |
                          residual(conv<96, 1> | batch_norm | relu6 |
                                   conv<96, 3, ConvOpts{.padding = 1, .groups = 96}> | batch_norm | relu6 |
                                   conv<16, 1> | batch_norm) |
                          conv<64, 1> | relu6 | conv<64, 3, ConvOpts{.stride = 2, .padding = 1, .groups = 64}> | relu6 |
                          conv<24, 1> | conv<24, 3, ConvOpts{.padding = 1}> |
                          conv<24, 3, ConvOpts{.padding = 1, .groups = 24}> | conv<8, 1> |
                          global_avg_pool | flatten | dense<4>);
  constexpr auto& g = Blocks::graph;
  std::vector<int> folds;
  for (int i = 0; i < g.num_ops; ++i) {
    if (projection_folds_into_depthwise(g, i, DType::f16, Layout::nhwc)) {
      folds.push_back(i);
    }
    CHECK_FALSE(projection_folds_into_depthwise(g, i, DType::f32, Layout::nhwc));
    CHECK_FALSE(projection_folds_into_depthwise(g, i, DType::f16, Layout::nchw));
  }
  REQUIRE(folds.size() == 3);
  CHECK(g.ops[folds[2]].layer.groups == 24);  // (the unexpanded one)
  // The plan's rule: each block's input (the expansion's, else the depthwise conv's) stays live
  // through its projection, which the joined kernel writes while it reads that input; without the
  // fold (f32) the second block's input dies at its expansion.
  const auto plan = plan_memory(g, DType::f16, Layout::nhwc);
  for (const int d : folds) {
    const int x = d == folds[2] ? g.ops[d].in : g.ops[d - 1].in;
    CHECK(plan.tensors[x].last >= d + 1);
    CHECK_FALSE(plan.overlap(x, g.ops[d + 1].out));
  }
  const auto f32_plan = plan_memory(g, DType::f32, Layout::nchw);
  CHECK(f32_plan.tensors[g.ops[folds[1] - 1].in].last == folds[1] - 1);

  cuda::NetDesc small = NetStorage<Blocks, DType::f16>::describe();
  cuda::fold_for_per_op_path(small);
  cuda::NetDesc n = small;
  cuda::fold_projected_depthwise(n);  // (the engine's at a max_batch of project_min_batch on)
  REQUIRE(n.ops.size() == small.ops.size() - 3);
  std::vector<const cuda::OpDesc*> joined;
  for (const cuda::OpDesc& op : n.ops) {
    if (op.project) {
      joined.push_back(&op);
    }
  }
  REQUIRE(joined.size() == 3);
  CHECK(joined[0]->label == "2.conv0+bn1+clip2+2.conv3+bn4+clip5+conv6+bn7+add");
  for (std::size_t j = 0; j < 3; ++j) {
    const cuda::OpDesc& d = *joined[j];
    const auto at = std::find_if(small.ops.begin(), small.ops.end(),
                                 [&](const cuda::OpDesc& o) { return o.label == d.project_conv_label; });
    REQUIRE(at != small.ops.end());
    REQUIRE(at + 1 != small.ops.end());
    const cuda::OpDesc& d0 = *at;       // the expansion + depthwise op as it was
    const cuda::OpDesc& q0 = *(at + 1);  // the projection
    CHECK(d.label == cuda::join_scoped(d0.label, q0.label));
    const cuda::OpDesc m = cuda::project_main(d);
    check_stands_as(m, d0);
    CHECK_FALSE(m.project);
    CHECK((m.expand != nullptr) == (j < 2));
    check_stands_as(*d.project, q0);
    // The joined op's own fields stay the depthwise conv's; the block's output is the projection's.
    CHECK(d.out_offset == d0.out_offset);
    CHECK(d.z_offset < 0);
    CHECK(d.project->in_id == d0.out_id);
    CHECK(d.project->has_residual == (j == 0));
    // It reads the block's input (also as the residual) and writes the block's output, clear of it.
    const cuda::OpDesc& in = d.expand ? *d.expand : d;
    CHECK(cuda::reads_tensor(d, in.in_id));
    CHECK(cuda::reads_tensor(d, q0.z_id) == (q0.z_id >= 0));
    const cuda::ArenaAccess a = cuda::arena_access(d, 2);
    const cuda::ArenaRange x = cuda::arena_range(in.in_offset, in.in_shape, in.in_cp, 2);
    const cuda::ArenaRange y = cuda::arena_range(q0.out_offset, q0.out_shape, q0.out_cp, 2);
    CHECK(std::any_of(a.writes.begin(), a.writes.end(),
                      [&](const cuda::ArenaRange& r) { return r.begin == y.begin && r.end == y.end; }));
    CHECK_FALSE(x.overlaps(y));
  }
  for (std::size_t i = 0; i + 1 < n.ops.size(); ++i) {
    if (n.ops[i].project || n.ops[i + 1].project) {
      CHECK_FALSE(cuda::runs_beside_next(n, i));
    }
  }
  // Once is all; f32 (NCHW) joins nothing.
  const std::size_t ops = n.ops.size();
  cuda::fold_projected_depthwise(n);
  CHECK(n.ops.size() == ops);
  cuda::NetDesc f32 = NetStorage<Blocks, DType::f32>::describe();
  cuda::fold_for_per_op_path(f32);
  cuda::fold_projected_depthwise(f32);
  CHECK(std::none_of(f32.ops.begin(), f32.ops.end(), [](const cuda::OpDesc& o) { return o.project != nullptr; }));
  // A depthwise conv of the network's input and its 1x1: neither the plan's rule nor the fold.
  using First = decltype(input<16, 20, 20> | conv<16, 3, ConvOpts{.padding = 1, .groups = 16}> | conv<8, 1> |
                         global_avg_pool | flatten | dense<4>);
  CHECK_FALSE(projection_folds_into_depthwise(First::graph, 0, DType::f16, Layout::nhwc));
  cuda::NetDesc first = NetStorage<First, DType::f16>::describe();
  cuda::fold_for_per_op_path(first);
  REQUIRE(first.ops.size() >= 2);
  REQUIRE(first.ops[0].in_id == first.input_id);
  cuda::fold_projected_depthwise(first);
  CHECK(std::none_of(first.ops.begin(), first.ops.end(), [](const cuda::OpDesc& o) { return o.project != nullptr; }));
}

TEST_CASE("an expansion folds into the depthwise conv that alone reads it (fold_expanded_depthwise), 16-bit only") {
  // An inverted-residual block (ReLU6 expansion 16 -> 96, 3x3 depthwise, projection, the add);
  // a SiLU expansion into a 5x5 stride-2 depthwise conv; a strided 1x1 before a depthwise conv
  // (no fold: the kernel's expansion keeps the map).
  using Block = decltype(input<16, 20, 20> | conv<16, 3, ConvOpts{.padding = 1}> | relu |
                         residual(conv<96, 1> | batch_norm | relu6 |
                                  conv<96, 3, ConvOpts{.padding = 1, .groups = 96}> | batch_norm | relu6 |
                                  conv<16, 1> | batch_norm) |
                         conv<64, 1> | silu | conv<64, 5, ConvOpts{.stride = 2, .padding = 2, .groups = 64}> | silu |
                         conv<32, 1, ConvOpts{.stride = 2}> | conv<32, 3, ConvOpts{.padding = 1, .groups = 32}> |
                         global_avg_pool | flatten | dense<4>);
  // The plan's rule: each expansion's input stays live through its depthwise conv, which reads it
  // when the expansion is folded (the residual's input is live to the add anyway).
  constexpr auto& g = Block::graph;
  std::vector<int> folds;
  for (int i = 0; i < g.num_ops; ++i) {
    if (expansion_folds_into_depthwise(g, i, DType::f16, Layout::nhwc)) {
      folds.push_back(i);
    }
    // only where the engine folds: 16-bit NHWC (not f32, nor the CPU's NCHW)
    CHECK_FALSE(expansion_folds_into_depthwise(g, i, DType::f32, Layout::nhwc));
    CHECK_FALSE(expansion_folds_into_depthwise(g, i, DType::f16, Layout::nchw));
  }
  REQUIRE(folds.size() == 2);  // (not the strided 1x1)
  const auto plan = plan_memory(g, DType::f16, Layout::nhwc);
  const int second = folds[1];
  CHECK(plan.tensors[g.ops[second].in].last == second + 1);
  CHECK_FALSE(plan.overlap(g.ops[second].in, g.ops[second + 1].out));
  CHECK_FALSE(plan.overlap(g.ops[folds[0]].in, g.ops[folds[0] + 1].out));
  const auto f32_plan = plan_memory(g, DType::f32, Layout::nchw);
  CHECK(f32_plan.tensors[g.ops[second].in].last == second);

  const cuda::NetDesc before = NetStorage<Block, DType::f16>::describe();
  cuda::NetDesc n = before;
  cuda::fold_for_per_op_path(n);
  // two expansions, and the head's pool into the dense layer
  REQUIRE(n.ops.size() == before.ops.size() - 3);
  std::vector<const cuda::OpDesc*> joined;
  for (const cuda::OpDesc& op : n.ops) {
    if (op.expand) {
      joined.push_back(&op);
    }
  }
  REQUIRE(joined.size() == 2);
  CHECK(joined[0]->label == "2.conv0+bn1+clip2+2.conv3+bn4+clip5");
  CHECK(joined[1]->label == "conv3+silu4+conv5+silu6");
  const cuda::OpDesc& e0 = before.op_at(folds[1]);
  const cuda::OpDesc& d0 = before.op_at(folds[1] + 1);
  const cuda::OpDesc& d = *joined[1];
  CHECK(d.label == e0.label + "+" + d0.label);
  // The depthwise conv keeps its own input (the expanded map's slot, where the expansion writes
  // when it runs first) and output; the expansion stands as describe() gave it, its SiLU with it.
  CHECK(d.in_offset == d0.in_offset);
  CHECK(d.out_offset == d0.out_offset);
  CHECK(d.conv.sh == 2);
  CHECK(d.conv.kh == 5);
  check_stands_as(*d.expand, e0);
  CHECK(d.expand->act.kind == e0.act.kind);
  CHECK(d.expand->act.kind == Act::silu);
  CHECK(d.act.kind == Act::silu);
  const cuda::OpDesc m = cuda::expand_main(d);
  check_stands_as(m, d0);
  CHECK_FALSE(m.expand);
  CHECK(m.in_act.kind == d0.in_act.kind);
  // It reads the expansion's input; it writes the expanded map's slot (where the expansion runs
  // first) and its output, clear of that input.
  CHECK(cuda::reads_tensor(d, e0.in_id));
  CHECK(cuda::reads_tensor(d, d0.in_id));
  CHECK_FALSE(cuda::reads_tensor(d, d.out_id));
  const cuda::ArenaAccess a = cuda::arena_access(d, 2);
  REQUIRE(a.reads.size() == 2);
  CHECK(a.reads[1].begin == e0.in_offset);
  CHECK(a.reads[1].end == e0.in_offset + 20 * 20 * 16 * 2);
  REQUIRE(a.writes.size() == 2);
  CHECK(a.writes[0].begin == d0.out_offset);
  CHECK(a.writes[0].end == d0.out_offset + 10 * 10 * 64 * 2);
  CHECK(a.writes[1].begin == d0.in_offset);
  CHECK(a.writes[1].end == d0.in_offset + 20 * 20 * 64 * 2);
  CHECK_FALSE(a.writes[0].overlaps(a.reads[1]));
  // Nor beside another op (it may write the expanded map's slot).
  for (std::size_t i = 0; i + 1 < n.ops.size(); ++i) {
    if (n.ops[i].expand || n.ops[i + 1].expand) {
      CHECK_FALSE(cuda::runs_beside_next(n, i));
    }
  }
  // Once is all; f32 (NCHW) keeps them apart, bf16 folds.
  cuda::fold_for_per_op_path(n);
  CHECK(n.ops.size() == before.ops.size() - 3);
  cuda::NetDesc f32 = NetStorage<Block, DType::f32>::describe();
  cuda::fold_for_per_op_path(f32);
  CHECK(std::none_of(f32.ops.begin(), f32.ops.end(), [](const cuda::OpDesc& o) { return o.expand != nullptr; }));
  cuda::NetDesc bf16 = NetStorage<Block, DType::bf16>::describe();
  cuda::fold_for_per_op_path(bf16);
  CHECK(std::count_if(bf16.ops.begin(), bf16.ops.end(), [](const cuda::OpDesc& o) { return o.expand != nullptr; }) == 2);
  // An expanded map that the depthwise conv's residual also reads, and an expansion of the
  // network's input (the input step's business): no fold.
  using Skip = decltype(input<8, 10, 10> | conv<16, 3, ConvOpts{.padding = 1}> | conv<32, 1> | relu |
                        residual(conv<32, 3, ConvOpts{.padding = 1, .groups = 32}>) | flatten | dense<3>);
  constexpr auto& gs = Skip::graph;
  for (int i = 0; i < gs.num_ops; ++i) {
    CHECK_FALSE(expansion_folds_into_depthwise(gs, i, DType::f16, Layout::nhwc));
  }
  using First = decltype(input<16, 10, 10> | conv<96, 1> | relu6 |
                         conv<96, 3, ConvOpts{.padding = 1, .groups = 96}> | flatten | dense<3>);
  // (nor in the plan: the expansion of the network's input, a dilated depthwise conv)
  using Dilated = decltype(input<16, 10, 10> | conv<16, 3, ConvOpts{.padding = 1}> | conv<32, 1> |
                           conv<32, 3, ConvOpts{.padding = 2, .dilation = 2, .groups = 32}> | flatten | dense<3>);
  CHECK_FALSE(expansion_folds_into_depthwise(First::graph, 0, DType::f16, Layout::nhwc));
  CHECK_FALSE(expansion_folds_into_depthwise(Dilated::graph, 1, DType::f16, Layout::nhwc));
  for (cuda::NetDesc x : {NetStorage<Skip, DType::f16>::describe(), NetStorage<First, DType::f16>::describe(),
                          NetStorage<Dilated, DType::f16>::describe()}) {
    cuda::fold_for_per_op_path(x);
    CHECK(std::none_of(x.ops.begin(), x.ops.end(), [](const cuda::OpDesc& o) { return o.expand != nullptr; }));
  }
}

TEST_CASE("which depthwise convs Strata's kernel takes: square 3/5/7 taps, stride 1/2, a patch within 48 KiB") {
  auto dw = [](int k, int s, int d, int c) {
    cuda::OpDesc op;
    op.kind = OpKind::conv;
    cuda::ConvGeom& g = op.conv;
    g.c = c;
    g.k = c;
    g.groups = c;
    g.kh = g.kw = k;
    g.sh = g.sw = s;
    g.dh = g.dw = d;
    return op;
  };
  CHECK(cuda::depthwise_runs(dw(3, 1, 1, 96)));
  CHECK(cuda::depthwise_runs(dw(5, 2, 1, 20)));   // channels not a multiple of 8 too
  CHECK(cuda::depthwise_runs(dw(7, 2, 1, 40)));   // patch 21x21x32 halves + 49x32 floats
  CHECK(cuda::depthwise_smem_bytes(dw(7, 2, 1, 40).conv) == 21 * 21 * 64 + 49 * 128);
  CHECK_FALSE(cuda::depthwise_runs(dw(7, 1, 3, 40)));  // 26x26 patch: over 48 KiB
  CHECK_FALSE(cuda::depthwise_runs(dw(4, 1, 1, 40)));  // even taps
  CHECK_FALSE(cuda::depthwise_runs(dw(3, 3, 1, 40)));  // stride 3
  auto mult2 = dw(3, 1, 1, 16);
  mult2.conv.k = 32;  // two filters per channel: not depthwise in the kernel's sense
  CHECK_FALSE(cuda::depthwise_runs(mult2));
  auto pooled = dw(3, 1, 1, 16);
  pooled.pool = cuda::PoolEpilogue{};
  CHECK_FALSE(cuda::depthwise_runs(pooled));
}

TEST_CASE("fused_auto: batch 1 on the fused kernel only for a fitting network, plain f32 input and a GPU with clusters") {
  const cuda::InputOptions f32{};
  const cuda::InputOptions u8{.format = cuda::InputFormat::u8_hwc};
  const cuda::InputOptions normalized{.mean = {0.5f}, .stddev = {0.25f}};
  REQUIRE_FALSE(f32.normalizes());
  REQUIRE(normalized.normalizes());
  using cuda::fused_auto;
  using cuda::resolved_fused_max_batch;
  CHECK(resolved_fused_max_batch(fused_auto, 16, true, f32, 9) == cuda::fused_auto_batches);
  CHECK(resolved_fused_max_batch(fused_auto, 16, true, f32, 10) == cuda::fused_auto_batches);
  CHECK(resolved_fused_max_batch(fused_auto, 1, true, f32, 9) == 1);
  CHECK(resolved_fused_max_batch(fused_auto, 16, false, f32, 9) == 0);      // does not fit
  CHECK(resolved_fused_max_batch(fused_auto, 16, true, u8, 9) == 0);        // 8-bit input
  CHECK(resolved_fused_max_batch(fused_auto, 16, true, normalized, 9) == 0);
  CHECK(resolved_fused_max_batch(fused_auto, 16, true, f32, 8) == 0);       // no clusters
  CHECK(resolved_fused_max_batch(0, 16, true, f32, 9) == 0);                // off stays off
  CHECK(resolved_fused_max_batch(6, 16, false, u8, 7) == 6);                // explicit: as given
  CHECK(cuda::EngineOptions{}.fused_max_batch == fused_auto);
}

TEST_CASE("a squeeze-excite gate's pool and first 1x1 conv fold into its second (fold_squeeze_excite), 16-bit NHWC only") {
  // MobileNetV3's gate (ReLU fused into fc1, hardsigmoid) on 16 channels, torchvision's default
  // on 12 (ReLU, sigmoid), then a head whose pool folds into its dense layer instead.
  using Net = decltype(input<4, 6, 6> | conv<16, 1> | hardswish |
                       squeeze_excite<16, 8, relu, hardsigmoid> | conv<12, 3, ConvOpts{.padding = 1}> |
                       squeeze_excite<12, 4> | global_avg_pool | flatten | dense<3>);
  const cuda::NetDesc before = NetStorage<Net, DType::f16>::describe();
  cuda::NetDesc n = before;
  cuda::fold_for_per_op_path(n);
  std::vector<const cuda::OpDesc*> se;
  for (const cuda::OpDesc& op : n.ops) {
    if (op.squeeze) {
      se.push_back(&op);
    }
  }
  REQUIRE(se.size() == 2);
  // two ops fewer a gate, one for the head
  CHECK(n.ops.size() == before.ops.size() - 5);
  for (const cuda::OpDesc* op : se) {
    const cuda::OpDesc& q = *op->squeeze;
    REQUIRE(q.gap.has_value());
    const cuda::OpDesc& pool = before.op_at(q.gap->index);
    const cuda::OpDesc& fc1 = before.op_at(q.index);
    const cuda::OpDesc& fc2 = before.op_at(op->index);
    CHECK(pool.kind == OpKind::global_avg_pool);
    CHECK(op->label == pool.label + "+" + fc1.label + "+" + fc2.label);
    CHECK(cuda::squeeze_main(*op).label == fc2.label);
    // The pooled and squeezed vectors' slots are the pool's and fc1's outputs; the map is the
    // pool's input, a 6x6 one.
    CHECK(q.in_offset == pool.out_offset);
    CHECK(op->in_offset == fc1.out_offset);
    CHECK(q.gap->in_offset == pool.in_offset);
    CHECK(q.gap->in_id == pool.in_id);
    CHECK(q.gap->in_shape.h * q.gap->in_shape.w == 36);
    CHECK(cuda::reads_tensor(*op, pool.in_id));
    CHECK_FALSE(cuda::reads_tensor(*op, pool.out_id));  // (the pooled vector: written, in the fallback)
    // What it reads and writes of the arena: the map; the two vectors' slots (where the pool and
    // fc1 run first) and the gate.
    const cuda::ArenaAccess a = cuda::arena_access(*op, 2);
    const auto has = [](const std::vector<cuda::ArenaRange>& v, const cuda::ArenaRange& r) {
      return std::any_of(v.begin(), v.end(), [&](const cuda::ArenaRange& x) {
        return x.begin == r.begin && x.end == r.end;
      });
    };
    CHECK(has(a.reads, cuda::arena_range(pool.in_offset, pool.in_shape, pool.in_cp, 2)));
    CHECK(has(a.writes, cuda::arena_range(fc1.in_offset, fc1.in_shape, fc1.in_cp, 2)));
    CHECK(has(a.writes, cuda::arena_range(fc2.out_offset, fc2.out_shape, fc2.out_cp, 2)));
  }
  CHECK(se[0]->squeeze->conv.k == 8);
  CHECK(se[0]->squeeze->act.kind == Act::relu);  // (fc1's ReLU stays in fc1: nothing deferred)
  CHECK(se[0]->in_act.kind == Act::none);
  CHECK(se[0]->act.kind == Act::hardsigmoid);
  CHECK(se[1]->act.kind == Act::sigmoid);
  CHECK(se[1]->squeeze->conv.k == 4);
  CHECK(se[1]->squeeze->gap->in_shape.c == 12);
  CHECK(se[1]->squeeze->gap->in_cp == 16);
  CHECK(n.ops.back().gap.has_value());  // (the head's pool: fold_pooled_dense)
  // Neither op beside another (EngineOptions::concurrent_branches)
  for (std::size_t i = 0; i < n.ops.size(); ++i) {
    if (n.ops[i].squeeze || (i + 1 < n.ops.size() && n.ops[i + 1].squeeze)) {
      CHECK_FALSE(cuda::runs_beside_next(n, i));
    }
  }
  // f32 and the CPU's layout keep the three ops apart; folding twice changes nothing.
  cuda::NetDesc f32 = NetStorage<Net, DType::f32>::describe();
  cuda::fold_for_per_op_path(f32);
  CHECK(std::none_of(f32.ops.begin(), f32.ops.end(), [](const cuda::OpDesc& o) { return o.squeeze != nullptr; }));
  cuda::NetDesc twice = n;
  cuda::fold_squeeze_excite(twice);
  CHECK(twice.ops.size() == n.ops.size());
}

TEST_CASE("a batch norm folds into the 1x1 conv that alone reads it (fold_normed_convs), 16-bit NHWC only") {
  // A dense block (the batch norm reads the running concatenation in place), a batch norm whose
  // result a 3x3 conv reads, one (after a pool: not folded into a conv's weights) a pooled 1x1
  // reads, one whose result is also the residual, and one over a dense tensor before a plain 1x1.
  using Net = decltype(input<8, 4, 6> | conv<8, 1> |
                       concat(identity, batch_norm | relu | conv<16, 1> | relu | conv<8, 3, ConvOpts{.padding = 1}>) |
                       batch_norm | relu | conv<8, 3, ConvOpts{.padding = 1}> | max_pool<2> |
                       batch_norm | relu6 | conv<8, 1> | max_pool<2> |
                       residual(batch_norm | conv<8, 1>) |
                       batch_norm | hardswish | conv<12, 1>);
  const cuda::NetDesc before = NetStorage<Net, DType::f16>::describe();
  cuda::NetDesc n = before;
  cuda::fold_for_per_op_path(n);
  std::vector<const cuda::OpDesc*> joined;
  for (const cuda::OpDesc& op : n.ops) {
    if (op.norm) {
      joined.push_back(&op);
    }
  }
  // The dense block's, the pooled 1x1's and the last; not before the 3x3, nor the 1x1 that adds a
  // residual. The memory plan keeps each such batch norm's input live through its conv and the
  // conv's pool (norm_folds_into_conv), so what the conv writes lies clear of it.
  const cuda::OpDesc& bn_last = before.ops[before.ops.size() - 2];
  const cuda::OpDesc& conv_last = before.ops.back();
  REQUIRE(bn_last.kind == OpKind::batch_norm);
  REQUIRE(joined.size() == 3U);
  REQUIRE(n.ops.size() == before.ops.size() - joined.size());
  const cuda::OpDesc& a = *joined[0];
  const cuda::OpDesc& bn = before.ops[1];
  const cuda::OpDesc& conv = before.ops[2];
  REQUIRE(bn.kind == OpKind::batch_norm);
  REQUIRE(bn.in_slice.has_value());
  CHECK(a.label == "1.1.bn0+relu1+conv2+relu3");  // the concat's branch, "1.1.", written once
  CHECK(bn.label == "1.1.bn0+relu1");
  check_stands_as(*a.norm, bn);
  CHECK(a.norm->act.kind == Act::relu);
  CHECK(a.norm->in_slice.has_value());
  // The conv keeps its own input (the normalized map's slot, where the batch norm writes when it
  // runs first) and output; it reads the concat the batch norm reads, and writes that slot.
  CHECK(a.in_offset == conv.in_offset);
  CHECK(a.out_offset == conv.out_offset);
  CHECK(cuda::reads_tensor(a, bn.in_id));
  CHECK(cuda::reads_tensor(a, conv.in_id));
  const cuda::OpDesc m = cuda::norm_main(a);
  check_stands_as(m, conv);
  CHECK_FALSE(m.norm);
  CHECK(m.norm_conv_label.empty());
  const cuda::ArenaAccess acc = cuda::arena_access(a, 2);
  const cuda::ArenaRange concat = cuda::norm_input_range(bn, 2);
  CHECK(concat.end - concat.begin == bn.in_slice->strides.image * 2);
  CHECK(std::any_of(acc.reads.begin(), acc.reads.end(), [&](const cuda::ArenaRange& r) {
    return r.begin == concat.begin && r.end == concat.end;
  }));
  const cuda::OpDesc& pooled = *joined[1];
  REQUIRE(pooled.pool.has_value());
  CHECK(pooled.norm->act.kind == Act::clip);  // relu6
  CHECK(pooled.label == "bn6+clip7+conv8+max_pool9");
  const cuda::OpDesc& last = *joined[2];
  CHECK(last.norm->act.kind == Act::hardswish);
  CHECK(last.conv.kp == 16);
  CHECK_FALSE(last.norm->in_slice.has_value());
  CHECK(last.label == cuda::join_scoped(bn_last.label, conv_last.label));
  // The fold still checks the plan it is given: a conv whose output lay over its batch norm's
  // input would stay apart (the batch norm writing its own map first).
  cuda::NetDesc moved = before;
  moved.ops.back().out_offset = moved.ops[moved.ops.size() - 2].in_offset;
  cuda::fold_normed_convs(moved);
  CHECK(moved.ops.back().norm == nullptr);
  CHECK(std::count_if(moved.ops.begin(), moved.ops.end(), [](const cuda::OpDesc& o) { return o.norm != nullptr; }) == 2);
  // Once is all; f32 (NCHW) folds nothing.
  cuda::fold_normed_convs(n);
  CHECK(std::count_if(n.ops.begin(), n.ops.end(), [](const cuda::OpDesc& o) { return o.norm != nullptr; }) ==
        static_cast<std::ptrdiff_t>(joined.size()));
  cuda::NetDesc f32 = NetStorage<Net, DType::f32>::describe();
  cuda::fold_for_per_op_path(f32);
  CHECK(std::none_of(f32.ops.begin(), f32.ops.end(), [](const cuda::OpDesc& o) { return o.norm != nullptr; }));
  // Labels: the scope both share written once.
  CHECK(cuda::join_scoped("features.denseblock1.denselayer1.norm1+relu1",
                          "features.denseblock1.denselayer1.conv1+norm2+relu2") ==
        "features.denseblock1.denselayer1.norm1+relu1+conv1+norm2+relu2");
  CHECK(cuda::join_scoped("a.bn+relu", "b.conv") == "a.bn+relu+b.conv");
  CHECK(cuda::join_scoped("bn0+relu1", "conv2") == "bn0+relu1+conv2");
}

TEST_CASE("a batch norm folds into the head whose global average pool alone reads it (fold_normed_pooled_dense)") {
  // DenseNet's head: the last block's concatenation, a batch norm and ReLU, the global average
  // pool and the classifier (the pool joined to the classifier first: fold_pooled_dense).
  using Net = decltype(input<8, 6, 6> | conv<16, 1> | concat(identity, conv<8, 3, ConvOpts{.padding = 1}>) |
                       batch_norm | relu | global_avg_pool | flatten | dense<10>);
  const cuda::NetDesc before = NetStorage<Net, DType::f16>::describe();
  cuda::NetDesc n = before;
  cuda::fold_for_per_op_path(n);
  const cuda::OpDesc& head = n.ops.back();
  const cuda::OpDesc& bn = *std::find_if(before.ops.begin(), before.ops.end(),
                                         [](const cuda::OpDesc& o) { return o.kind == OpKind::batch_norm; });
  const cuda::OpDesc& pool = *std::find_if(before.ops.begin(), before.ops.end(),
                                           [](const cuda::OpDesc& o) { return o.kind == OpKind::global_avg_pool; });
  REQUIRE(head.kind == OpKind::dense);
  REQUIRE(head.gap.has_value());
  REQUIRE(head.norm != nullptr);
  check_stands_as(*head.norm, bn);
  CHECK(head.norm->act.kind == Act::relu);
  CHECK(head.gap->in_id == bn.out_id);  // (the pool's map: where the batch norm writes when it runs first)
  CHECK(head.label == bn.label + "+" + pool.label + "+" + before.ops.back().label);
  CHECK(cuda::norm_main(head).label == pool.label + "+" + before.ops.back().label);
  CHECK_FALSE(cuda::norm_main(head).norm);
  CHECK(cuda::reads_tensor(head, bn.in_id));
  CHECK(std::none_of(n.ops.begin(), n.ops.end(), [](const cuda::OpDesc& o) { return o.kind == OpKind::batch_norm; }));
  // What the joined op writes (the pooled vector's slot, the classifier's output) is clear of the
  // batch norm's input; with the pooled slot moved over it, the batch norm stays apart.
  const cuda::ArenaRange x = cuda::norm_input_range(bn, 2);
  CHECK_FALSE(cuda::arena_range(head.in_offset, head.in_shape, head.in_cp, 2).overlaps(x));
  cuda::NetDesc moved = before;
  cuda::fold_pooled_dense(moved);
  moved.ops.back().in_offset = bn.in_offset;
  cuda::fold_normed_pooled_dense(moved);
  CHECK(moved.ops.back().norm == nullptr);
  // Once is all; f32 (NCHW) folds nothing of the kind.
  cuda::NetDesc twice = n;
  cuda::fold_normed_pooled_dense(twice);
  CHECK(twice.ops.size() == n.ops.size());
  cuda::NetDesc f32 = NetStorage<Net, DType::f32>::describe();
  cuda::fold_for_per_op_path(f32);
  CHECK(std::none_of(f32.ops.begin(), f32.ops.end(), [](const cuda::OpDesc& o) { return o.norm != nullptr; }));
  // A batch norm whose map another op reads too (made so here: the first conv's residual) stays apart.
  cuda::NetDesc shared = before;
  cuda::fold_pooled_dense(shared);
  shared.ops.front().z_id = bn.out_id;
  cuda::fold_normed_pooled_dense(shared);
  CHECK(shared.ops.back().norm == nullptr);
}
