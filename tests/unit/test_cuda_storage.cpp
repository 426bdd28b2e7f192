// The CUDA backend's storage rules (strata/cuda/storage.hpp), on the host: channel padding per
// precision, which conv reads its input space-to-depth, the conv geometry as executed, and the
// weight layouts — the space-to-depth rewrite checked against a naive stride-2 convolution.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include <strata/cuda/storage.hpp>
#include <strata/models/mnist_cnn.hpp>
#include <strata/models/resnet.hpp>

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
