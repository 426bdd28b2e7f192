// The layers of deployment networks (MobileNet, Inception, U-Net) on the GPU against the CPU
// reference, in f32, f16 and bf16 at batches 1, 3 and 17, outputs poisoned before each run:
// hardswish/hardsigmoid/mish, upsample, adaptive_avg_pool, concat (channel slices at offsets and
// of sizes that are not multiples of 8, nested, flat, with a fused conv+pool branch, inside a
// residual), channel gates (squeeze-excite), conv_transpose with every option.
#include "deploy_nets.hpp"

using namespace strata_test::deploy;  // the nets, kBatches, kMax, describe; strata

TEST_CASE("hardswish, hardsigmoid, mish: fused into conv and dense epilogues, and stand-alone") {
  check_all_precisions<ActNet>(kMax, kBatches, "hardswish/hardsigmoid/mish", 41);
}

TEST_CASE("upsample: nearest and bilinear, align_corners on and off, factors (2,3) and (3,2)") {
  check_all_precisions<UpsampleNet>(kMax, kBatches, "upsample", 42);
}

TEST_CASE("adaptive_avg_pool: 7x11 to 3x5, up to 4x7, and to 1x1") {
  check_all_precisions<AdaptiveNet>(kMax, kBatches, "adaptive_avg_pool", 43);
}

TEST_CASE("concat: identity, conv, max_pool branches at unaligned channel offsets, then a conv") {
  static_assert(!cuda::NetStorage<ConcatNet, DType::f16>::fused_fit().fits);
  check_all_precisions<ConcatNet>(kMax, kBatches, "concat", 44);
  // In 16-bit the identity is copied into its slice, and the convolutions (cuDNN) write a dense
  // result into the staging area, then a strided copy writes their slices.
  const std::string f16 = describe<ConcatNet, DType::f16>(3);
  INFO(f16);
  CHECK(f16.find("strata copy into the concat's channels 0..5") != std::string::npos);
  CHECK(f16.find("then strata copy into the concat's channels 6..8") != std::string::npos);
}

TEST_CASE("concat: a dense block reads its running concatenation in place, nothing copied") {
  static_assert(!cuda::NetStorage<DenseBlockNet, DType::f16>::has_op(OpKind::copy));
  check_all_precisions<DenseBlockNet>(kMax, kBatches, "dense block", 51);
  for (const std::string& d : {describe<DenseBlockNet, DType::f16>(3), describe<DenseBlockNet, DType::f32>(3)}) {
    INFO(d);
    // (In 16-bit the three batch norms are joined to the 1x1 convs after them
    // (fold_normed_convs; the last with its pool since session 34's plan rule); at this batch no
    // tactic claims both, so the batch norm still runs as its pass.)
    CHECK(d.find("strata pointwise (reads channels 0..15 of the concat in place)") != std::string::npos);
    CHECK(d.find("strata pointwise (reads channels 0..23 of the concat in place)") != std::string::npos);
    CHECK(d.find("strata pointwise (reads channels 0..31 of the concat in place)") != std::string::npos);
    CHECK(d.find("copy0:") == std::string::npos);  // no copy op
    // A bias-free conv run by cuDNN's plain convolution needs no epilogue pass.
    for (const char* conv : {"3.1.conv5: ", "4.1.conv5: "}) {
      const std::size_t at = d.find(conv);
      REQUIRE(at != std::string::npos);
      const std::string line = d.substr(at, d.find('\n', at) - at);
      if (line.find("cudnnConvolutionForward") != std::string::npos) {
        CHECK(line.find("strata pointwise") == std::string::npos);
      }
    }
  }
}

TEST_CASE("concat: aligned slices, a conv+pool branch, a channel gate branch, in a residual, as the output") {
  check_all_precisions<ConcatAlignedNet>(kMax, kBatches, "concat aligned", 45);
}

TEST_CASE("concat: nested, and flat (dense, identity, flatten of (C,H,W) tensors)") {
  check_all_precisions<ConcatFlatNet>(kMax, kBatches, "concat flat", 46);
}

TEST_CASE("squeeze_excite / multiply: hardsigmoid and sigmoid gates, 16 and 12 channels") {
  check_all_precisions<SeNet>(kMax, kBatches, "squeeze_excite", 47);
  const std::string f16 = describe<SeNet, DType::f16>(3);
  INFO(f16);
  CHECK(f16.find("strata channel_gate (8 channels per thread)") != std::string::npos);
}

// A squeeze-excite gate's multiply folded into the 1x1 conv after it (fold_gated_convs): one op,
// "<multiply>+<conv>". lt_conv1x1's algo 2 scales the conv's weights by each image's gate and
// runs a matmul an image (the product never stored); on any other variant the multiply runs
// first, into the conv's input slot. Forced both ways on DepthwiseNet's gate (20 channels in 24
// slots, a 56x56 map, hardswish after the GEMM), SeNet's second (12 channels, 6x6) and all
// sixteen of EfficientNet-B0's (32 to 1,152 channels, residual adds), against the CPU.
TEST_CASE("a channel gate folded into the 1x1 conv after it: the weights scaled per image, or the multiply first") {
  const auto gated = [](const cuda::OpDesc& op) { return op.gate.has_value(); };
  for (const auto& [name, count, se] : {std::tuple{"DepthwiseNet", 1, 1}, {"SeNet", 1, 2}, {"EfficientNetB0", 16, 16}}) {
    cuda::NetDesc n = std::string_view(name) == "DepthwiseNet" ? cuda::NetStorage<DepthwiseNet, DType::f16>::describe()
                      : std::string_view(name) == "SeNet"      ? cuda::NetStorage<SeNet, DType::f16>::describe()
                                                               : cuda::NetStorage<models::EfficientNetB0, DType::f16>::describe();
    const std::size_t before = n.ops.size();
    cuda::fold_for_per_op_path(n);
    INFO(name);
    CHECK(std::count_if(n.ops.begin(), n.ops.end(), gated) == count);
    for (const cuda::OpDesc& op : n.ops) {
      if (op.gate) {
        CHECK(op.label == op.gate->label + "+" + cuda::gate_conv(op).label);
        CHECK(op.label.find("+mul+") != std::string::npos);
      }
    }
    // (one op fewer for each gate, for each expansion folded into its depthwise conv, and for
    // the head's pool folded into its dense layer; two for each squeeze-excite gate's pool and
    // first conv folded into its second)
    const auto heads = std::count_if(n.ops.begin(), n.ops.end(), [](const cuda::OpDesc& o) { return o.gap.has_value(); });
    const auto expands = std::count_if(n.ops.begin(), n.ops.end(), [](const cuda::OpDesc& o) { return o.expand != nullptr; });
    const auto squeezes = std::count_if(n.ops.begin(), n.ops.end(), [](const cuda::OpDesc& o) { return o.squeeze != nullptr; });
    CHECK(squeezes == se);  // (SeNet: both squeeze-excite branches fold; one multiply, before a 3x3 conv, does not)
    CHECK(before - n.ops.size() == static_cast<std::size_t>(count + heads + expands + 2 * squeezes));
  }
  // f32 keeps the multiply apart (the scaled weights are 16-bit)
  cuda::NetDesc f32 = cuda::NetStorage<DepthwiseNet, DType::f32>::describe();
  cuda::fold_for_per_op_path(f32);
  CHECK(std::none_of(f32.ops.begin(), f32.ops.end(), gated));
  using strata_test::check_forced;
  const cuda::Variant folds{"lt_conv1x1", 2};
  const cuda::Variant after{"lt_conv1x1", 0};
  const char* scaled = "strata gate_weights (the gate folded into the weights, per image)";
  const char* first = "strata channel_gate (8 channels per thread), then cublasLtMatmul";
  check_forced<DepthwiseNet, DType::f16>("gate_dw_f16", 60, folds, scaled, "channel_gate", gated);
  check_forced<DepthwiseNet, DType::bf16>("gate_dw_bf16", 61, folds, scaled, "channel_gate", gated);
  check_forced<DepthwiseNet, DType::f16>("gate_dw_after", 62, after, first, "gate_weights", gated);
  check_forced<SeNet, DType::f16>("gate_se_f16", 63, folds, scaled, "channel_gate", gated);
  check_forced<models::EfficientNetB0, DType::f16>("gate_eb0_f16", 64, folds, scaled, "channel_gate",
                                                   gated);
  check_forced<models::EfficientNetB0, DType::bf16>("gate_eb0_after", 65, after, first,
                                                    "gate_weights", gated);
  // splitk_conv fuse 2 (written in session 28): the gate applied as the kernel stages the map,
  // one launch; in a cluster of 8 (algo 8) and with the slices met in the workspace (algo 0),
  // against the CPU (DepthwiseNet: hardswish after a 40-channel projection; EfficientNet-B0's
  // sixteen at 5 images, a 64-pixel tile spanning two images on the 7x7 maps).
  const char* staged = "the gate applied as the input is staged";
  const cuda::Variant gate_cl8{"splitk_conv", 8, 0, 2};
  const cuda::Variant gate_ws{"splitk_conv", 0, 0, 2};
  check_forced<SeNet, DType::bf16>("gate_sk_se", 86, gate_ws, staged, "channel_gate", gated);
  check_forced<models::EfficientNetB0, DType::bf16>("gate_sk_eb0_bf16", 88, gate_ws, staged, "channel_gate",
                                                    gated);
  if (cuda::device_arch() >= 90) {  // (clusters)
    check_forced<DepthwiseNet, DType::f16>("gate_sk_dw", 85, gate_cl8, staged, "channel_gate", gated);
    check_forced<models::EfficientNetB0, DType::f16>("gate_sk_eb0", 87, gate_cl8, staged, "channel_gate",
                                                     gated);
  }
  // The product rounded as the channel-gate kernel stores it, then the same sums in the same
  // order: equal to the bit with the multiply as a kernel of its own before the same split-K
  // conv (fuse 0), at 5 images and at 1.
  if (cuda::device_arch() >= 90) {
    constexpr int kB = 5;
    const auto w = Weights<models::EfficientNetB0>::random(89);
    const auto in = strata_test::random_floats(
        static_cast<std::size_t>(kB) * models::EfficientNetB0::input_spec.shape.numel(), 189);
    const auto run = [&](const cuda::Variant& v, const std::string& shows, int b) {
      return strata_test::forced_output<models::EfficientNetB0, DType::f16>(w, in, kB, b, gated, 16, v, shows);
    };
    {  // the heuristic's plan at batch 1 (claimed since session 28: splitk::claimed_gate_cluster):
       // the sixteen projections one launch each, against the CPU
      cuda::EngineOptions opt;
      opt.max_batch = 1;
      opt.tuning = cuda::Tuning::heuristic;
      opt.fused_max_batch = 0;
      cuda::Engine<models::EfficientNetB0, DType::f16> e(w, opt);
      const std::string d = e.describe(1);
      INFO(d);
      std::size_t fused_ops = 0;
      for (std::size_t at = d.find(staged); at != std::string::npos; at = d.find(staged, at + 1)) {
        ++fused_ops;
      }
      CHECK(fused_ops == 16);
      // its stem on tile_conv's tiles for a small batch, reading the caller's input (session 30)
      CHECK(d.find("(sized for a small batch)") != std::string::npos);
      CHECK(d.find("\ninput: ") == std::string::npos);
      const std::vector<float> one(in.begin(), in.begin() + models::EfficientNetB0::input_spec.shape.numel());
      const auto ref = strata_test::cpu_reference<models::EfficientNetB0>(w, one, 1);
      std::vector<float> out(ref.size(), std::numeric_limits<float>::quiet_NaN());
      e.infer(one, out, 1);
      const double err = strata_test::rel_error(out, ref, out.size());
      MESSAGE("EfficientNet-B0 f16 heuristic, batch 1 (gates staged by splitk_conv): rel. error " << err);
      CHECK(err < 1e-2);
    }
    for (const int b : {kB, 1}) {
      const auto fused = run(gate_cl8, staged, b);
      CHECK(std::none_of(fused.begin(), fused.end(), [](float f) { return std::isnan(f); }));
      CHECK(fused == run(cuda::Variant{"splitk_conv", 8}, "strata channel_gate (8 channels per thread), then strata split-K conv", b));
    }
  }
}

// splitk_conv fuse 4 (session 51): at batch 1 the squeeze-excite op computing a projection's gate
// joined to it (fold_excited_gates), the projection's clusters pooling their slices of the map,
// fc1's products shared over the cluster, the slice's gate from fc2 — the gate never stored, a
// launch fewer. Forced against the CPU on an awkward block (100 channels in 104 slots: a last
// slice of 8 slots, fc1 of 6 outputs in 8 slots, ReLU then hardsigmoid, clusters of 2 and 4) and
// on EfficientNet-B0's gates in the largest cluster each one's slices allow (28x28 maps in 4 and
// 8 too); and the heuristic's plan at batch 1 (fuse 4 claimed on the 28x28, 14x14 and 7x7 gates).
namespace {
inline constexpr auto excite_block = input<24, 7, 9>
    | conv<100, 1> | batch_norm | silu
    | conv<100, 3, ConvOpts{.padding = 1, .groups = 100}> | batch_norm | silu
    | multiply(global_avg_pool | conv<6, 1> | relu | conv<100, 1> | hardsigmoid)
    | conv<36, 1> | batch_norm | flatten | dense<5>;
using ExciteBlock = std::remove_cv_t<decltype(excite_block)>;

/// The ops of Net in P as the engine has them at a max_batch of 1 (fold_for_max_batch: the
/// squeeze-excite ops joined to the depthwise convs before them or to the gated convs after them).
template <class Net, DType P>
cuda::NetDesc folded_at_batch1() {
  cuda::NetDesc net = cuda::NetStorage<Net, P>::describe();
  cuda::fold_for_per_op_path(net);
  cuda::fold_for_max_batch(net, cuda::EngineOptions{.max_batch = 1}, false);
  return net;
}

/// Each forced op's describe() line of engine `e` at `batch` (found by its label in `force`),
/// checked by `check_line`.
template <class E>
void check_forced_lines(E& e, const std::map<std::string, cuda::Variant>& force, int batch,
                        const std::function<void(const std::string&)>& check_line) {
  const std::string d = "\n" + e.describe(batch);
  INFO(d);
  for (const auto& [label, v] : force) {
    const std::size_t at = d.find("\n" + label + ": ");
    REQUIRE(at != std::string::npos);
    const std::string line = d.substr(at + 1, d.find('\n', at + 1) - at - 1);
    INFO(line);
    check_line(line);
  }
}

/// Net's output in P at batch 1 (max_batch 1, heuristic tuning, the per-op path) with each op of
/// folded_at_batch1 that `variant` gives a variant for forced onto it — at least `least` of them —
/// and each one's describe() line checked by `check_line`.
template <class Net, DType P>
std::vector<float> forced_at_batch1(const Weights<Net>& w, const std::vector<float>& in,
                                    const std::function<std::optional<cuda::Variant>(const cuda::OpDesc&)>& variant,
                                    std::size_t least, const std::function<void(const std::string&)>& check_line) {
  const cuda::NetDesc net = folded_at_batch1<Net, P>();
  cuda::EngineOptions opt;
  opt.max_batch = 1;
  opt.tuning = cuda::Tuning::heuristic;
  opt.fused_max_batch = 0;
  for (const cuda::OpDesc& op : net.ops) {
    if (const auto v = variant(op)) {
      opt.force[op.label] = *v;
    }
  }
  REQUIRE(opt.force.size() >= least);
  cuda::Engine<Net, P> e(w, opt);
  check_forced_lines(e, opt.force, 1, check_line);
  std::vector<float> out(static_cast<std::size_t>(std::remove_cvref_t<Net>::output_spec.shape.numel()),
                         std::numeric_limits<float>::quiet_NaN());
  e.infer(in, out, 1);
  return out;
}

/// f16's and bf16's outputs against the CPU's, each within its precision's bound.
void check_16bit(const std::string& what, const std::vector<float>& f16, const std::vector<float>& bf16,
                 const std::vector<float>& ref) {
  const double e16 = strata_test::rel_error(f16, ref, ref.size());
  const double eb16 = strata_test::rel_error(bf16, ref, ref.size());
  MESSAGE(what << ": rel. error f16 " << e16 << ", bf16 " << eb16);
  CHECK(e16 < 1e-2);
  CHECK(eb16 < 3e-2);
}

/// Net's heuristic plan in f16 at batch 1 (max_batch 1, the per-op path): `joined` of its
/// describe() lines say `phrase`, and its output is the CPU's `ref` within f16's bound.
template <class Net>
void check_heuristic_at_batch1(const Weights<Net>& w, const std::vector<float>& in, const std::vector<float>& ref,
                               const std::string& phrase, std::size_t joined) {
  cuda::EngineOptions opt;
  opt.max_batch = 1;
  opt.tuning = cuda::Tuning::heuristic;
  opt.fused_max_batch = 0;
  cuda::Engine<Net, DType::f16> e(w, opt);
  const std::string d = e.describe(1);
  INFO(d);
  std::size_t n = 0;
  for (std::size_t at = d.find(phrase); at != std::string::npos; at = d.find(phrase, at + 1)) {
    ++n;
  }
  CHECK(n == joined);
  std::vector<float> h(ref.size(), std::numeric_limits<float>::quiet_NaN());
  e.infer(in, h, 1);
  const double err = strata_test::rel_error(h, ref, ref.size());
  MESSAGE("f16 heuristic, batch 1 (" << joined << " joined ops: " << phrase << "): rel. error " << err);
  CHECK(err < 1e-2);
}

/// forced_at_batch1 with each joined squeeze-excite op (OpDesc::excite) that `cluster` gives a
/// size for forced onto splitk_conv fuse 4 in it, each described as fuse 4 in one step.
template <class Net, DType P>
std::vector<float> excite_forced(const Weights<Net>& w, const std::vector<float>& in,
                                 const std::function<int(const cuda::OpDesc&)>& cluster, std::size_t least) {
  return forced_at_batch1<Net, P>(
      w, in,
      [&](const cuda::OpDesc& op) -> std::optional<cuda::Variant> {
        const int cs = op.excite ? cluster(op) : 0;
        return cs > 0 ? std::optional{cuda::Variant{"splitk_conv", cs, 0, 4}} : std::nullopt;
      },
      least,
      [](const std::string& line) {
        CHECK(line.find("the squeeze-excite op's pool, fc1 and fc2 computed by each cluster") != std::string::npos);
        CHECK(line.find(", then") == std::string::npos);  // one step
      });
}
}  // namespace

TEST_CASE("a squeeze-excite op computed with its gate by the projection's clusters (splitk_conv fuse 4), batch 1") {
  if (cuda::device_arch() < 90) {
    MESSAGE("splitk_conv fuse 4 runs thread-block clusters (compute capability 9.0 on): skipped");
    return;
  }
  namespace sk = cuda::tactics::splitk;
  {
    const auto w = Weights<ExciteBlock>::random(93);
    const auto in = strata_test::random_floats(static_cast<std::size_t>(ExciteBlock::input_spec.shape.numel()), 193);
    const auto ref = strata_test::cpu_reference<ExciteBlock>(w, in, 1);
    for (const int cs : {2, 4}) {
      check_16bit("excite block, fuse 4 in clusters of " + std::to_string(cs),
                  excite_forced<ExciteBlock, DType::f16>(w, in, [&](const cuda::OpDesc&) { return cs; }, 1),
                  excite_forced<ExciteBlock, DType::bf16>(w, in, [&](const cuda::OpDesc&) { return cs; }, 1), ref);
    }
  }
  using EB0 = models::EfficientNetB0;
  const auto w = Weights<EB0>::random(94);
  const auto in = strata_test::random_floats(static_cast<std::size_t>(EB0::input_spec.shape.numel()), 194);
  const auto ref = strata_test::cpu_reference<EB0>(w, in, 1);
  const int sms = cuda::tactics::generated::device_sms().sms;
  const auto largest = [&](const cuda::OpDesc& op) {
    for (const int cs : {16, 8, 4}) {
      if (sk::fuses_excite(op, cs) && sk::offers_gate(op, 1, sms, cs)) {
        return cs;
      }
    }
    return 0;
  };
  // (thirteen: all but features.1.0's, 2.0's and 2.1's, the gates joined to their depthwise
  // convs, fold_tailed_gates)
  const auto out = excite_forced<EB0, DType::f16>(w, in, largest, 13);
  const double err = strata_test::rel_error(out, ref, ref.size());
  MESSAGE("EfficientNet-B0 f16, fuse 4 forced, batch 1: rel. error " << err);
  CHECK(err < 1e-2);
  // The heuristic's plan at batch 1: fuse 4 on the thirteen 28x28, 14x14 and 7x7 gates, fuse 2
  // on the others.
  check_heuristic_at_batch1<EB0>(w, in, ref, "computed by each cluster", 13);
}

// depthwise_band fuse 1 (session 52): at batch 1 the squeeze-excite op of a map of 56x56 or more
// joined to the depthwise conv before it (fold_tailed_gates) and computed by the same launch —
// each block's channel sums over its tile, the image's last block the pool's mean, fc1 and fc2
// into the gate's slot (first passed on an H100 in session 53, when the engine began making the
// fold).
// Against the CPU: an awkward block (100 channels in 104 slots — bands of 4 of its 52 channel pairs —, fc1
// of 6 in 8 slots, ReLU then hardsigmoid, a 5x5 stride-2 depthwise conv) forced onto fuse 1 and
// onto fuse 0 (the conv, then the squeeze-excite op), f16 and bf16; EfficientNet-B0's heuristic
// plan (fuse 1 claimed on its three 112x112 and 56x56 gates).
namespace {
/// How many times `phrase` occurs in `text` (describe()'s lines naming a form).
std::size_t occurrences(const std::string& text, const std::string& phrase) {
  std::size_t n = 0;
  for (std::size_t at = text.find(phrase); at != std::string::npos; at = text.find(phrase, at + 1)) {
    ++n;
  }
  return n;
}

/// An engine of Net of max batch `mb` (the per-op path with the joins of large batches) with every
/// op joined to a squeeze-excite op (OpDesc::tail) that `pick` accepts forced onto `v` — `want` of
/// them.
template <class Net>
cuda::EngineOptions tails_forced(int mb, const cuda::Variant& v, std::size_t want,
                                 const std::function<bool(const cuda::OpDesc&)>& pick) {
  cuda::EngineOptions opt;
  opt.max_batch = mb;
  opt.fused_max_batch = 0;
  opt.tail_sums = true;  // (the joins at large batches; fuse 0 then runs the two ops)
  const cuda::NetDesc n = cuda::per_op_ops<Net, DType::f16>(opt);
  for (const cuda::OpDesc& op : n.ops) {
    if (op.tail && pick(op)) {
      opt.force[op.label] = v;
    }
  }
  CHECK(opt.force.size() == want);
  return opt;
}

inline constexpr auto tail_block = input<24, 113, 111>
    | conv<100, 1> | batch_norm | silu
    | conv<100, 5, ConvOpts{.stride = 2, .padding = 2, .groups = 100}> | batch_norm | silu
    | multiply(global_avg_pool | conv<6, 1> | relu | conv<100, 1> | hardsigmoid)
    | conv<36, 1> | batch_norm | flatten | dense<5>;
using TailBlock = std::remove_cv_t<decltype(tail_block)>;

/// forced_at_batch1 with each op joined to a squeeze-excite op (OpDesc::tail) forced onto
/// depthwise_band fuse `fuse`; its describe() line says whether the launch computes the gate.
template <class Net, DType P>
std::vector<float> tail_forced(const Weights<Net>& w, const std::vector<float>& in, int fuse) {
  return forced_at_batch1<Net, P>(
      w, in,
      [&](const cuda::OpDesc& op) -> std::optional<cuda::Variant> {
        return op.tail ? std::optional{cuda::Variant{"depthwise_band", 0, 0, fuse}} : std::nullopt;
      },
      1,
      [&](const std::string& line) {
        CHECK((line.find("computed by each image's last block") != std::string::npos) == (fuse == 1));
      });
}
}  // namespace

TEST_CASE("a squeeze-excite op computed by the depthwise conv before it (depthwise_band fuse 1), batch 1") {
  {
    const auto w = Weights<TailBlock>::random(95);
    const auto in = strata_test::random_floats(static_cast<std::size_t>(TailBlock::input_spec.shape.numel()), 195);
    const auto ref = strata_test::cpu_reference<TailBlock>(w, in, 1);
    for (const int fuse : {1, 0}) {
      check_16bit("tail block, depthwise_band fuse " + std::to_string(fuse),
                  tail_forced<TailBlock, DType::f16>(w, in, fuse), tail_forced<TailBlock, DType::bf16>(w, in, fuse), ref);
    }
  }
  using EB0 = models::EfficientNetB0;
  const auto w = Weights<EB0>::random(96);
  const auto in = strata_test::random_floats(static_cast<std::size_t>(EB0::input_spec.shape.numel()), 196);
  const auto ref = strata_test::cpu_reference<EB0>(w, in, 1);
  check_heuristic_at_batch1<EB0>(w, in, ref, "computed by each image's last block", 3);
}

// depthwise_band fuse 3 at large batches (session 64): an engine of max batch 32 or more
// (tail_min_batch) with EngineOptions::tail_sums joins every squeeze-excite op to the depthwise
// conv before it, on maps of any size, and the heuristic claims fuse 3 wherever the kernel
// computes the op — the conv's blocks
// write their channel sums of the values as stored, a second kernel a block an image adds them
// up over thread groups and runs fc1 a warp an output, fc2 and the gate. Against the
// CPU: the awkward block at max batch 32 (its 57x56 map in 8 bands of 8x56 outputs, 4 channel
// pairs and 224 threads a block, 100 channels in 104 slots: the tiles' sums split over two thread
// groups), batches 32, 17, 3 and 1, f16 and bf16;
// EfficientNet-B0 in f16 at batches 3 and 1 of an engine of max batch 32 — fifteen of its sixteen
// gates computed so (1,152-channel fc1s, 7x7 maps of one tile, the 112x112 map's 98 tiles), all
// but features.2.0's, whose depthwise conv runs with its expansion (expand_depthwise).
TEST_CASE("a squeeze-excite op computed by the depthwise conv before it at large batches (depthwise_band fuse 3)") {
  const std::string phrase = "computed from the blocks' channel sums by a second kernel";
  const auto count = [&](const std::string& d) { return occurrences(d, phrase); };
  cuda::EngineOptions opt;
  opt.max_batch = 32;
  opt.fused_max_batch = 0;
  opt.tail_sums = true;
  {
    constexpr int mb = 32;
    const auto w = Weights<TailBlock>::random(97);
    const auto in = strata_test::random_floats(
        static_cast<std::size_t>(mb * TailBlock::input_spec.shape.numel()), 197);
    const auto ref = strata_test::cpu_reference<TailBlock>(w, in, mb);
    cuda::Engine<TailBlock, DType::f16> e16(w, opt);
    strata_test::check_batches(e16, in, ref, {32, 17, 3, 1}, "tail block, max batch 32");
    cuda::Engine<TailBlock, DType::bf16> e16b(w, opt);
    strata_test::check_batches(e16b, in, ref, {32, 17, 3, 1}, "tail block, max batch 32");
    const std::string d = e16.describe(mb);
    INFO(d);
    CHECK(count(d) == 1);
    CHECK(d.find("strata squeeze_excite") == std::string::npos);
    CHECK(d.find("computed by each image's last block") == std::string::npos);
    // With tail_sums off (on by default) the gate stays an op of its own (computed by neither form).
    cuda::EngineOptions apart = opt;
    apart.tail_sums = false;
    const std::string d0 = cuda::Engine<TailBlock, DType::f16>(w, apart).describe(mb);
    CHECK(count(d0) == 0);
    CHECK(d0.find("computed by each image's last block") == std::string::npos);
  }
  using EB0 = models::EfficientNetB0;
  const auto w = Weights<EB0>::random(98);
  const auto in = strata_test::random_floats(static_cast<std::size_t>(3 * EB0::input_spec.shape.numel()), 198);
  const auto ref = strata_test::cpu_reference<EB0>(w, in, 3);
  cuda::Engine<EB0, DType::f16> e(w, opt);
  const std::string d = e.describe(3);
  INFO(d);
  CHECK(count(d) == (cuda::tactics::expand_dw::sums_gpu_tested ? 16 : 15));  // (features.2.0: expand_depthwise fuse 3)
  strata_test::check_batches(e, in, ref, {3, 1}, "EfficientNet-B0, max batch 32");
}

// expand_depthwise fuse 3 (session 67): the expansion, the depthwise conv and the joined
// squeeze-excite op's channel sums in one kernel, then depthwise_band's gate kernel, a block an
// image. Forced on the awkward block (5x5 stride 2 to 57x56, 100 channels in 104 slots: chunks of
// 8, the last slots' sums 0) behind a 1x1 conv (an expansion reading the network's input is not
// joined: fold_expanded_depthwise), its gate's layers scaled so that the gate matters, in algos
// 0, 2 and 4 at batches 32, 17, 3 and 1, f16 and bf16, against the CPU and (f16, batch 32)
// against the same block with the gate by the squeeze-excite kernel (fuse 0); EfficientNet-B0 at
// max batch 32 (where the gate of one block barely moves the output: an integration check),
// where the heuristic claims it for features.2.0,
// and with algo 4 (the expansion's n-tiles balanced over its units; written without a GPU) forced.
inline constexpr auto expand_tail_block = input<24, 113, 111>
    | conv<24, 1> | batch_norm | relu
    | conv<100, 1> | batch_norm | silu
    | conv<100, 5, ConvOpts{.stride = 2, .padding = 2, .groups = 100}> | batch_norm | silu
    | multiply(global_avg_pool | conv<6, 1> | relu | conv<100, 1> | hardsigmoid)
    | conv<36, 1> | batch_norm | flatten | dense<5>;
using ExpandTailBlock = std::remove_cv_t<decltype(expand_tail_block)>;

/// `w` with every parameter whose state_dict name starts with `prefix` times `factor`, loaded
/// back from a safetensors file as a user's weights are. (With fan-in scaled random weights a
/// squeeze-excite gate sits near 0.5 whatever its pool reads: session 67's review found the
/// block's output 8e-4 from the CPU's with the gate's sums all 0. Its layers times 8 make the gate
/// matter: then about 6%.)
template <class Net>
Weights<Net> scaled_params(const Weights<Net>& w, std::string_view prefix, float factor) {
  std::vector<TensorToWrite> out = w.tensors();
  for (TensorToWrite& t : out) {
    if (t.dtype == StDType::f32 && t.name.starts_with(prefix)) {
      std::vector<float> v(t.data.size() / sizeof(float));
      std::memcpy(v.data(), t.data.data(), t.data.size());
      for (float& x : v) {
        x *= factor;
      }
      std::memcpy(t.data.data(), v.data(), t.data.size());
    }
  }
  const auto path = std::filesystem::temp_directory_path() /
                    ("strata_scaled_" + std::to_string(std::random_device{}()) + ".safetensors");
  write_safetensors(path, out);
  auto r = Weights<Net>::load(path);
  std::filesystem::remove(path);
  return r;
}

TEST_CASE("expand_depthwise fuse 3: the squeeze-excite op's sums in the expansion's kernel, then the gate kernel") {
  const std::string phrase = "computed from the blocks' channel sums by a second kernel";
  constexpr int mb = 32;
  {
    const auto w = scaled_params(Weights<ExpandTailBlock>::random(93), "9.", 8.0f);  // (the gate's layers)
    const auto in = strata_test::random_floats(
        static_cast<std::size_t>(mb * ExpandTailBlock::input_spec.shape.numel()), 193);
    const auto ref = strata_test::cpu_reference<ExpandTailBlock>(w, in, mb);
    const auto pick = [](const cuda::OpDesc& op) { return op.expand != nullptr; };
    // The gate by the squeeze-excite kernel after the conv (fuse 0): the same values but for the
    // order of the pool's additions.
    cuda::Engine<ExpandTailBlock, DType::f16> apart(
        w, tails_forced<ExpandTailBlock>(mb, cuda::Variant{"expand_depthwise"}, 1, pick));
    CHECK(occurrences(apart.describe(mb), phrase) == 0);
    const std::size_t out_n = static_cast<std::size_t>(mb * ExpandTailBlock::output_spec.shape.numel());
    std::vector<float> apart_out(out_n);
    apart.infer(in, apart_out, mb);
    for (const int algo : {0, 2, 4}) {  // (algo 4: the expansion's n-tiles balanced — one here)
      const cuda::Variant v{"expand_depthwise", algo, 0, 3};
      INFO(cuda::to_string(v));
      const cuda::EngineOptions opt = tails_forced<ExpandTailBlock>(mb, v, 1, pick);
      cuda::Engine<ExpandTailBlock, DType::f16> e16(w, opt);
      const std::string d = e16.describe(mb);
      INFO(d);
      CHECK(occurrences(d, "strata expand+depthwise") == 1);
      CHECK(occurrences(d, phrase) == 1);
      CHECK(d.find("strata squeeze_excite") == std::string::npos);
      strata_test::check_batches(e16, in, ref, {32, 17, 3, 1}, "expand+tail block, expand_depthwise algo " + std::to_string(algo) + " fuse 3");
      std::vector<float> out(out_n);
      e16.infer(in, out, mb);
      const double apart_err = strata_test::rel_error(out, apart_out, out_n);
      MESSAGE("algo " << algo << " fuse 3 against fuse 0 (f16, batch 32): rel. error " << apart_err);
      CHECK(apart_err < 3e-3);
      cuda::Engine<ExpandTailBlock, DType::bf16> e16b(w, opt);
      strata_test::check_batches(e16b, in, ref, {32, 17, 3, 1}, "expand+tail block, expand_depthwise algo " + std::to_string(algo) + " fuse 3");
    }
  }
  if constexpr (cuda::tactics::expand_dw::sums_gpu_tested) {
    using EB0 = models::EfficientNetB0;
    const auto w = Weights<EB0>::random(91);
    const auto in = strata_test::random_floats(static_cast<std::size_t>(3 * EB0::input_spec.shape.numel()), 191);
    const auto ref = strata_test::cpu_reference<EB0>(w, in, 3);
    cuda::EngineOptions opt;
    opt.max_batch = mb;
    opt.fused_max_batch = 0;
    opt.tail_sums = true;
    cuda::Engine<EB0, DType::f16> e(w, opt);
    const std::string d = e.describe(3);
    INFO(d);
    const std::size_t at = d.find("strata expand+depthwise 3x3 stride 2");
    REQUIRE(at != std::string::npos);
    CHECK(d.find(phrase, at) < d.find('\n', at));
    CHECK(d.find("strata squeeze_excite") == std::string::npos);
    strata_test::check_batches(e, in, ref, {3, 1}, "EfficientNet-B0, max batch 32, expand_depthwise fuse 3");
    // Algo 4 forced there: its 6 n-tiles a chunk in units of 3 (algo 0: 4 and 2).
    const cuda::EngineOptions even = tails_forced<EB0>(mb, cuda::Variant{"expand_depthwise", 4, 0, 3}, 1, [](const cuda::OpDesc& op) {
      return op.expand != nullptr;
    });
    cuda::Engine<EB0, DType::f16> e4(w, even);
    const std::string d4 = e4.describe(3);
    INFO(d4);
    CHECK(occurrences(d4, "n-tiles split evenly") == 1);
    strata_test::check_batches(e4, in, ref, {3, 1}, "EfficientNet-B0, max batch 32, expand_depthwise algo 4 fuse 3");
  }
}

namespace {
// The stem joined to the depthwise conv after it (fold_stem_depthwise, EngineOptions::stem_joins):
// an EfficientNet-like one (32 channels, SiLU, its squeeze-excite op joined after the depthwise
// conv at max batch 32) on an odd-sized input whose tiles cross every edge, and a
// MobileNetV2-like one (20 channels in 24 slots, ReLU6, the depthwise conv of stride 2).
inline constexpr auto stem_tail_block = input<3, 61, 57>
    | conv<32, 3, ConvOpts{.stride = 2, .padding = 1, .bias = false}> | batch_norm | silu
    | conv<32, 3, ConvOpts{.padding = 1, .groups = 32, .bias = false}> | batch_norm | silu
    | multiply(global_avg_pool | conv<8, 1> | silu | conv<32, 1> | sigmoid)
    | conv<16, 1> | batch_norm | global_avg_pool | flatten | dense<5>;
using StemTailBlock = std::remove_cv_t<decltype(stem_tail_block)>;
inline constexpr auto stem_plain_block = input<3, 50, 47>
    | conv<20, 3, ConvOpts{.stride = 2, .padding = 1}> | batch_norm | relu6
    | conv<20, 3, ConvOpts{.stride = 2, .padding = 1, .groups = 20}> | batch_norm | relu6
    | conv<16, 1> | batch_norm | flatten | dense<4>;
using StemPlainBlock = std::remove_cv_t<decltype(stem_plain_block)>;
// MobileNetV2's features.0 and features.1 in small: the stem, a 32-channel depthwise conv and its
// projection to 16, the three as one kernel (fuse 1) where a force names them.
inline constexpr auto stem_proj_block = input<3, 50, 47>
    | conv<32, 3, ConvOpts{.stride = 2, .padding = 1, .bias = false}> | batch_norm | relu6
    | conv<32, 3, ConvOpts{.padding = 1, .groups = 32, .bias = false}> | batch_norm | relu6
    | conv<16, 1, ConvOpts{.bias = false}> | batch_norm | flatten | dense<4>;
using StemProjBlock = std::remove_cv_t<decltype(stem_proj_block)>;

/// An engine of max batch `mb` with the stem joined and the joined op forced onto `v`.
template <class Net>
cuda::EngineOptions stem_forced(int mb, const cuda::Variant& v) {
  cuda::EngineOptions opt;
  opt.max_batch = mb;
  opt.fused_max_batch = 0;
  opt.stem_joins = true;
  const cuda::NetDesc n = cuda::per_op_ops<Net, DType::f16>(opt);
  for (const cuda::OpDesc& op : n.ops) {
    if (cuda::joined_stem(op)) {
      opt.force[op.label] = v;
    }
  }
  CHECK(opt.force.size() == 1);
  return opt;
}

/// 8-bit HWC images and the normalized NCHW floats the CPU reference reads for them.
template <class Net>
std::pair<std::vector<std::uint8_t>, std::vector<float>> u8_images(int n, const cuda::InputOptions& o,
                                                                 std::uint64_t seed) {
  constexpr Shape s = std::remove_cvref_t<Net>::input_spec.shape;
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> d(0, 255);
  std::vector<std::uint8_t> hwc(static_cast<std::size_t>(n) * s.numel());
  for (auto& x : hwc) {
    x = static_cast<std::uint8_t>(d(rng));
  }
  std::vector<float> x(hwc.size());
  for (int i = 0; i < n; ++i) {
    for (int c = 0; c < s.c; ++c) {
      for (int p = 0; p < s.h * s.w; ++p) {
        const float v = static_cast<float>(hwc[(static_cast<std::size_t>(i) * s.h * s.w + p) * s.c + c]);
        x[(static_cast<std::size_t>(i) * s.c + c) * s.h * s.w + p] =
            (v * o.scale - o.mean[static_cast<std::size_t>(c)]) / o.stddev[static_cast<std::size_t>(c)];
      }
    }
  }
  return {hwc, x};
}
}  // namespace

// expand_depthwise with a joined stem (session 68, written without a GPU): the stem's 2x2 taps of
// space-to-depth blocks staged from the caller's input (f32 NCHW, then u8 HWC with ImageNet's
// normalization), the stem as the expansion, its map never stored. Forced by label in engines of
// max batch 32 against the CPU: the two blocks above under the plain form (algo 0) with and
// without the squeeze-excite op's sums, algo 2 and algo 4; a MobileNetV2-like block with its
// projection joined after (fuse 1, algos 0 and 4), at batches 32, 17, 3 and 1, f16 and bf16; the
// joined op against the same engine with the stem apart; EfficientNet-B0 and MobileNetV2 at
// batch 3.
TEST_CASE("expand_depthwise with the stem: the caller's input staged space-to-depth, the stem as the expansion, forced") {
  constexpr int mb = 32;
  const std::string phrase = "strata stem+depthwise";
  {
    // (its gate's layers x8, so that wrong sums move the output: see scaled_params)
    REQUIRE(StemTailBlock::graph.find_param("6.1.weight") >= 0);  // (fc1 of the gate)
    const auto w = scaled_params(Weights<StemTailBlock>::random(94), "6.", 8.0f);
    const auto in = strata_test::random_floats(
        static_cast<std::size_t>(mb * StemTailBlock::input_spec.shape.numel()), 194);
    const auto ref = strata_test::cpu_reference<StemTailBlock>(w, in, mb);
    for (const cuda::Variant& v : {cuda::Variant{"expand_depthwise", 0, 0, 3}, cuda::Variant{"expand_depthwise", 0, 0, 0},
                                   cuda::Variant{"expand_depthwise", 2, 0, 3}, cuda::Variant{"expand_depthwise", 4, 0, 3}}) {
      INFO(cuda::to_string(v));
      const cuda::EngineOptions opt = stem_forced<StemTailBlock>(mb, v);
      cuda::Engine<StemTailBlock, DType::f16> e16(w, opt);
      const std::string d = e16.describe(mb);
      INFO(d);
      CHECK(occurrences(d, phrase) == 1);
      CHECK(d.find("\ninput: ") == std::string::npos);  // no input step: the kernel reads the caller's input
      CHECK(d.rfind("input: ", 0) != 0);
      CHECK((d.find("computed from the blocks' channel sums by a second kernel") != std::string::npos) == (v.fuse == 3));
      strata_test::check_batches(e16, in, ref, {32, 17, 3, 1}, "stem+tail block, " + cuda::to_string(v));
      cuda::Engine<StemTailBlock, DType::bf16> e16b(w, opt);
      strata_test::check_batches(e16b, in, ref, {32, 17, 3, 1}, "stem+tail block, " + cuda::to_string(v));
    }
    // The joined op run as the two ops (the stem on its own kernel, the input step first, if it
    // needs one) gives the same values, but for the gate's order of additions.
    cuda::EngineOptions apart_opt;
    apart_opt.max_batch = mb;
    apart_opt.fused_max_batch = 0;
    apart_opt.stem_joins = true;
    cuda::Engine<StemTailBlock, DType::f16> apart(w, apart_opt);
    CHECK(occurrences(apart.describe(mb), phrase) == 0);  // (not claimed before its GPU test)
    cuda::Engine<StemTailBlock, DType::f16> joined(w, stem_forced<StemTailBlock>(mb, cuda::Variant{"expand_depthwise", 0, 0, 3}));
    const std::size_t out_n = static_cast<std::size_t>(mb * StemTailBlock::output_spec.shape.numel());
    std::vector<float> a(out_n);
    std::vector<float> j(out_n);
    apart.infer(in, a, mb);
    joined.infer(in, j, mb);
    const double err = strata_test::rel_error(j, a, out_n);
    MESSAGE("stem joined against apart (f16, batch 32): rel. error " << err);
    CHECK(err < 3e-3);
  }
  {
    const auto w = Weights<StemPlainBlock>::random(95);
    const auto in = strata_test::random_floats(
        static_cast<std::size_t>(mb * StemPlainBlock::input_spec.shape.numel()), 195);
    const auto ref = strata_test::cpu_reference<StemPlainBlock>(w, in, mb);
    for (const int algo : {0, 4}) {
      const cuda::Variant v{"expand_depthwise", algo, 0, 0};
      INFO(cuda::to_string(v));
      const cuda::EngineOptions opt = stem_forced<StemPlainBlock>(mb, v);
      cuda::Engine<StemPlainBlock, DType::f16> e16(w, opt);
      const std::string d = e16.describe(mb);
      INFO(d);
      CHECK(occurrences(d, phrase) == 1);
      strata_test::check_batches(e16, in, ref, {32, 17, 3, 1}, "stem block, " + cuda::to_string(v));
      cuda::Engine<StemPlainBlock, DType::bf16> e16b(w, opt);
      strata_test::check_batches(e16b, in, ref, {32, 17, 3, 1}, "stem block, " + cuda::to_string(v));
    }
    // f16 input (NCHW as declared): the half values themselves.
    {
      cuda::EngineOptions opt = stem_forced<StemPlainBlock>(mb, cuda::Variant{"expand_depthwise"});
      opt.input = {.format = cuda::InputFormat::f16};
      const auto [h, vals] = strata_test::to_half(in);
      const auto ref16 = strata_test::cpu_reference<StemPlainBlock>(w, vals, mb);
      cuda::Engine<StemPlainBlock, DType::f16> e16(w, opt);
      CHECK(occurrences(e16.describe(mb), phrase) == 1);
      for (const int b : {32, 3}) {
        std::vector<float> out(static_cast<std::size_t>(b) * StemPlainBlock::output_spec.shape.numel(),
                               std::numeric_limits<float>::quiet_NaN());
        e16.infer(h, out, b);
        const double err = strata_test::rel_error(out, ref16, out.size());
        MESSAGE("stem block, f16 input, batch " << b << ": rel. error " << err);
        CHECK(err < strata_test::tolerance(DType::f16));
      }
    }
    // 8-bit HWC images normalized as they are staged (ImageNet's mean and std).
    cuda::EngineOptions opt = stem_forced<StemPlainBlock>(mb, cuda::Variant{"expand_depthwise"});
    opt.input = {.format = cuda::InputFormat::u8_hwc,
                 .scale = 1.0f / 255.0f,
                 .mean = {0.485f, 0.456f, 0.406f},
                 .stddev = {0.229f, 0.224f, 0.225f}};
    const auto [bytes, normalized] = u8_images<StemPlainBlock>(17, opt.input, 196);
    const auto ref8 = strata_test::cpu_reference<StemPlainBlock>(w, normalized, 17);
    cuda::Engine<StemPlainBlock, DType::f16> e8(w, opt);
    CHECK(occurrences(e8.describe(17), phrase) == 1);
    for (const int b : {17, 3, 1}) {
      std::vector<float> out(static_cast<std::size_t>(b) * StemPlainBlock::output_spec.shape.numel(),
                             std::numeric_limits<float>::quiet_NaN());
      e8.infer(bytes, out, b);
      const double err = strata_test::rel_error(out, ref8, out.size());
      MESSAGE("stem block, u8 HWC normalized, batch " << b << ": rel. error " << err);
      CHECK(err < strata_test::tolerance(DType::f16));
    }
  }
  // MobileNetV2's features.0 and .1 in small with the projection joined too (fuse 1: the whole
  // block as one kernel, 8x16 tiles), forced by the three's label: the fold joins what the force
  // names.
  {
    const auto w = Weights<StemProjBlock>::random(98);
    const auto in = strata_test::random_floats(
        static_cast<std::size_t>(mb * StemProjBlock::input_spec.shape.numel()), 198);
    const auto ref = strata_test::cpu_reference<StemProjBlock>(w, in, mb);
    cuda::EngineOptions opt;
    opt.max_batch = mb;
    opt.fused_max_batch = 0;
    opt.stem_joins = true;
    const cuda::NetDesc n = cuda::per_op_ops<StemProjBlock, DType::f16>(opt);
    REQUIRE(n.ops.size() >= 2);
    REQUIRE(n.ops[0].expand != nullptr);
    const std::string three = cuda::join_scoped(n.ops[0].label, n.ops[1].label);
    for (const int algo : {0, 4}) {
      opt.force.clear();
      opt.force[three] = cuda::Variant{"expand_depthwise", algo, 0, 1};
      INFO(cuda::to_string(opt.force[three]));
      cuda::Engine<StemProjBlock, DType::f16> e16(w, opt);
      const std::string d = e16.describe(mb);
      INFO(d);
      CHECK(occurrences(d, phrase) == 1);
      CHECK(d.find("the 1x1 projection after it on tensor cores too") != std::string::npos);
      strata_test::check_batches(e16, in, ref, {32, 17, 3, 1}, "stem+projection block, fuse 1 algo " + std::to_string(algo));
      cuda::Engine<StemProjBlock, DType::bf16> e16b(w, opt);
      strata_test::check_batches(e16b, in, ref, {32, 17, 3, 1}, "stem+projection block, fuse 1 algo " + std::to_string(algo));
    }
  }
  // The two networks whose stems it was written for, at batch 3.
  const auto whole = [&](auto tag, const char* name) {
    using Net = typename decltype(tag)::type;
    const auto w = Weights<Net>::random(97);
    const auto in = strata_test::random_floats(static_cast<std::size_t>(3 * Net::input_spec.shape.numel()), 197);
    const auto ref = strata_test::cpu_reference<Net>(w, in, 3);
    cuda::Engine<Net, DType::f16> e(w, stem_forced<Net>(mb, cuda::Variant{"expand_depthwise"}));
    const std::string d = e.describe(3);
    INFO(d);
    CHECK(occurrences(d, phrase) == 1);
    strata_test::check_batches(e, in, ref, {3, 1}, std::string(name) + ", the stem joined");
  };
  whole(std::type_identity<models::EfficientNetB0>{}, "EfficientNet-B0");
  whole(std::type_identity<models::MobileNetV2>{}, "MobileNetV2");
}

// depthwise_band algo 2 (session 64): math M images a block, the next image's patch copied in
// (cp.async) while this one is computed, the producer's activation applied to it in place; with
// the joined squeeze-excite op (fuse 3: the sums, then the gate kernel; fuse 1: each image's tail
// in turn, a block not an image's last going on to its next image) and without (fuse 0: the conv,
// then the squeeze-excite op). Forced
// by label in engines of max batch 32 against the CPU: the awkward block (5x5 stride 2, 57x56,
// 100 channels in 104 slots) with 2 and 4 images a block at batches 32, 17, 3 and 1 (4 images a
// block: the last block of 17 takes one), f16 and bf16; EfficientNet-B0's fifteen band convs
// with 4 images a block and fuse 3, f16, at batch 3.
TEST_CASE("depthwise_band algo 2: pipelined images, with and without the joined squeeze-excite op") {
  // An engine of max batch `mb` with every joined op of Net's (OpDesc::tail) forced onto `v` — all
  // but EfficientNet-B0's features.2.0, whose depthwise conv runs with its expansion — `want` of them.
  const auto forced = [](auto tag, int mb, const cuda::Variant& v, std::size_t want) {
    // (an expansion joined to the conv then runs as a step of its own)
    return tails_forced<typename decltype(tag)::type>(
        mb, v, want, [](const cuda::OpDesc& op) { return op.label.find("features.2.0.") == std::string::npos; });
  };
  {
    constexpr int mb = 32;
    const auto w = Weights<TailBlock>::random(99);
    const auto in = strata_test::random_floats(
        static_cast<std::size_t>(mb * TailBlock::input_spec.shape.numel()), 199);
    const auto ref = strata_test::cpu_reference<TailBlock>(w, in, mb);
    for (const int m : {2, 4}) {
      for (const int fuse : {3, 1, 0}) {
        const cuda::Variant v{"depthwise_band", 2, m, fuse};
        INFO(cuda::to_string(v));
        const cuda::EngineOptions opt = forced(std::type_identity<TailBlock>{}, mb, v, 1);
        cuda::Engine<TailBlock, DType::f16> e16(w, opt);
        const std::string d = e16.describe(mb);
        INFO(d);
        CHECK(d.find("pipelined: " + std::to_string(m) + " images a block") != std::string::npos);
        CHECK((d.find("computed by each image's last block") != std::string::npos) == (fuse == 1));
        CHECK((d.find("by a second kernel, a block an image") != std::string::npos) == (fuse == 3));
        strata_test::check_batches(e16, in, ref, {32, 17, 3, 1}, "tail block, algo 2 math " + std::to_string(m) + " fuse " + std::to_string(fuse));
        cuda::Engine<TailBlock, DType::bf16> e16b(w, opt);
        strata_test::check_batches(e16b, in, ref, {32, 17, 3, 1}, "tail block, algo 2 math " + std::to_string(m) + " fuse " + std::to_string(fuse));
      }
    }
  }
  using EB0 = models::EfficientNetB0;
  const auto w = Weights<EB0>::random(100);
  const auto in = strata_test::random_floats(static_cast<std::size_t>(3 * EB0::input_spec.shape.numel()), 200);
  const auto ref = strata_test::cpu_reference<EB0>(w, in, 3);
  const cuda::EngineOptions opt = forced(std::type_identity<EB0>{}, 32, cuda::Variant{"depthwise_band", 2, 4, 3}, 15);
  cuda::Engine<EB0, DType::f16> e(w, opt);
  const std::string d = e.describe(3);
  INFO(d);
  CHECK(occurrences(d, "pipelined: 4 images a block") == 15);
  strata_test::check_batches(e, in, ref, {3, 1}, "EfficientNet-B0, band algo 2 math 4 fuse 3");
}

// depthwise_band algos 3 and 4 (session 66): algo 0's and algo 2's kernels on the whole-map plan —
// a block every output of its image for fewer channel pairs, where algo 0's plan cuts the map
// into bands whose patches overlap. Forced by label on the joined ops whose map it fits
// (band::whole_fits) in engines of max batch 32 against the CPU: a 3x3 conv of stride 2 from
// 27x23 to 14x12 (92 channels in 96 slots) and a 5x5 conv of stride 1 on 14x12 (96 channels) —
// each 8 channel pairs a block against algo 0's 16 in two bands — each with its squeeze-excite
// op: algo 3 with
// fuses 3, 1 and 0, algo 4 with 2 and 4 images a block (fuses 3 and 0) — at batches 32, 17, 3
// and 1, f16 and bf16; EfficientNet-B0's five 14x14 band convs (features.4.1-5.2) with algo 3
// fuse 3 and algo 4 math 4 fuse 3, f16, at batch 3.
namespace {
inline constexpr auto whole_block = input<20, 27, 23>
    | conv<92, 1> | batch_norm | silu
    | conv<92, 3, ConvOpts{.stride = 2, .padding = 1, .groups = 92}> | batch_norm | silu
    | multiply(global_avg_pool | conv<6, 1> | relu | conv<92, 1> | hardsigmoid)
    | conv<40, 1> | batch_norm | silu
    | conv<96, 1> | batch_norm | silu
    | conv<96, 5, ConvOpts{.padding = 2, .groups = 96}> | batch_norm | silu
    | multiply(global_avg_pool | conv<10, 1> | silu | conv<96, 1> | sigmoid)
    | conv<36, 1> | batch_norm | flatten | dense<5>;
using WholeBlock = std::remove_cv_t<decltype(whole_block)>;
}  // namespace

TEST_CASE("depthwise_band algos 3 and 4: the whole map a block") {
  namespace band = cuda::tactics::band;
  // An engine of max batch `mb` with every joined op of Net's (OpDesc::tail) whose map the whole
  // form fits forced onto `v` — `want` of them.
  const auto forced = [](auto tag, int mb, const cuda::Variant& v, std::size_t want) {
    return tails_forced<typename decltype(tag)::type>(mb, v, want, [](const cuda::OpDesc& op) { return band::whole_fits(op); });
  };
  {
    constexpr int mb = 32;
    const auto w = Weights<WholeBlock>::random(111);
    const auto in = strata_test::random_floats(
        static_cast<std::size_t>(mb * WholeBlock::input_spec.shape.numel()), 211);
    const auto ref = strata_test::cpu_reference<WholeBlock>(w, in, mb);
    for (const cuda::Variant& v : {cuda::Variant{"depthwise_band", 3, 0, 3}, cuda::Variant{"depthwise_band", 3, 0, 1},
                                   cuda::Variant{"depthwise_band", 3, 0, 0}, cuda::Variant{"depthwise_band", 4, 2, 3},
                                   cuda::Variant{"depthwise_band", 4, 4, 3}, cuda::Variant{"depthwise_band", 4, 4, 0}}) {
      INFO(cuda::to_string(v));
      const cuda::EngineOptions opt = forced(std::type_identity<WholeBlock>{}, mb, v, 2);
      cuda::Engine<WholeBlock, DType::f16> e16(w, opt);
      const std::string d = e16.describe(mb);
      INFO(d);
      CHECK(occurrences(d, "the whole map a block") == 2);
      CHECK(occurrences(d, "by a second kernel, a block an image") == (v.fuse == 3 ? 2U : 0U));
      strata_test::check_batches(e16, in, ref, {32, 17, 3, 1}, "whole block, " + cuda::to_string(v));
      cuda::Engine<WholeBlock, DType::bf16> e16b(w, opt);
      strata_test::check_batches(e16b, in, ref, {32, 17, 3, 1}, "whole block, " + cuda::to_string(v));
    }
  }
  using EB0 = models::EfficientNetB0;
  const auto w = Weights<EB0>::random(112);
  const auto in = strata_test::random_floats(static_cast<std::size_t>(3 * EB0::input_spec.shape.numel()), 212);
  const auto ref = strata_test::cpu_reference<EB0>(w, in, 3);
  for (const cuda::Variant& v : {cuda::Variant{"depthwise_band", 3, 0, 3}, cuda::Variant{"depthwise_band", 4, 4, 3}}) {
    INFO(cuda::to_string(v));
    const cuda::EngineOptions opt = forced(std::type_identity<EB0>{}, 32, v, 5);
    cuda::Engine<EB0, DType::f16> e(w, opt);
    const std::string d = e.describe(3);
    INFO(d);
    CHECK(occurrences(d, "the whole map a block") == 5);
    strata_test::check_batches(e, in, ref, {3, 1}, "EfficientNet-B0, band " + cuda::to_string(v));
  }
}

// mma_conv1x1 (session 65): a 1x1 conv of stride 1 as a GEMM over the batch's pixels on tensor
// cores, a block 128 pixels x a chunk of the output channels. Forced on every 1x1 conv of a chain
// that reaches each path of the kernel — 24 input slots (a k-step of 16, then one of 8: 21
// channels), 104 (100 channels: the last 8 on m16n8k8), 240 and 40; output chunks of 104, 120 (240
// in two), 40 and 112; SiLU, ReLU, none and hardswish; 143 pixels an image, so no batch fills its
// last block — in an engine of max batch 32 against the CPU, batches 32, 17, 3 and 1, f16 and bf16.
namespace {
inline constexpr auto pointwise_net = input<21, 13, 11>
    | conv<100, 1> | batch_norm | silu
    | conv<240, 1> | batch_norm | relu
    | conv<40, 1> | batch_norm
    | conv<112, 1> | batch_norm | hardswish
    | flatten | dense<5>;
using PointwiseNet = std::remove_cv_t<decltype(pointwise_net)>;
}  // namespace

TEST_CASE("mma_conv1x1: 1x1 convs as GEMMs over the batch's pixels on tensor cores, forced") {
  constexpr int mb = 32;
  const auto w = Weights<PointwiseNet>::random(103);
  const auto in = strata_test::random_floats(
      static_cast<std::size_t>(mb * PointwiseNet::input_spec.shape.numel()), 203);
  const auto ref = strata_test::cpu_reference<PointwiseNet>(w, in, mb);
  cuda::EngineOptions opt;
  opt.max_batch = mb;
  opt.fused_max_batch = 0;
  const cuda::NetDesc n = cuda::per_op_ops<PointwiseNet, DType::f16>(opt);
  const auto* t = cuda::find_tactic<DType::f16>("mma_conv1x1");
  REQUIRE(t != nullptr);
  for (const cuda::OpDesc& op : n.ops) {
    if (t->applicable(op)) {
      opt.force[op.label] = cuda::Variant{"mma_conv1x1"};
    }
  }
  CHECK(opt.force.size() == 4);
  cuda::Engine<PointwiseNet, DType::f16> e16(w, opt);
  const std::string d = e16.describe(mb);
  INFO(d);
  CHECK(occurrences(d, "strata 1x1 conv on tensor cores") == 4);
  strata_test::check_batches(e16, in, ref, {32, 17, 3, 1}, "pointwise chain, mma_conv1x1");
  cuda::Engine<PointwiseNet, DType::bf16> e16b(w, opt);
  strata_test::check_batches(e16b, in, ref, {32, 17, 3, 1}, "pointwise chain, mma_conv1x1");
}

// mma_conv1x1 algo 1 (session 66): the reduction staged in k-steps of 32 through a ring of 4
// stages, a folded channel gate applied to each A fragment (the product rounded to T as the
// channel-gate kernel stores it), a residual added in the epilogue. Forced (math 0: 128 pixel rows
// a block; math 1: 64) on the chain's gated and residual 1x1 convs, which reach each path — a
// gated projection 216 -> 48 with a residual (216 slots: the last k-step a quarter zeros), a gated
// 296 -> 192 with ReLU (chunks of 96, two warps across each), 192 -> 192 with a residual and ReLU
// (no gate), and a gated 200 -> 40 (one warp across the 40 slots: 128 rows only; the last k-step
// 8 channels); 63 pixels an image, so a block's rows span up to four images and no batch fills
// its last block — against the CPU at batches 32, 17, 3 and 1, f16 and bf16; and on
// EfficientNet-B0's sixteen gated projections at 5 images.
namespace {
inline constexpr auto staged_pointwise_net = input<48, 7, 9>
    | residual(conv<216, 1> | batch_norm | silu | squeeze_excite<216, 9, silu> | conv<48, 1> | batch_norm)
    | conv<296, 1> | batch_norm | silu | squeeze_excite<296, 9, silu> | conv<192, 1> | batch_norm | relu
    | residual(conv<192, 1> | batch_norm) | relu
    | conv<200, 1> | batch_norm | silu | squeeze_excite<200, 10, silu> | conv<40, 1> | batch_norm
    | flatten | dense<5>;
using StagedPointwiseNet = std::remove_cv_t<decltype(staged_pointwise_net)>;
}  // namespace

TEST_CASE("mma_conv1x1 algo 1: the reduction staged, a folded gate and a residual, forced") {
  namespace pw = cuda::tactics::pointwise;
  constexpr int mb = 32;
  const auto w = Weights<StagedPointwiseNet>::random(107);
  const auto in = strata_test::random_floats(
      static_cast<std::size_t>(mb * StagedPointwiseNet::input_spec.shape.numel()), 207);
  const auto ref = strata_test::cpu_reference<StagedPointwiseNet>(w, in, mb);
  for (const int m : {0, 1}) {
    cuda::EngineOptions opt;
    opt.max_batch = mb;
    opt.fused_max_batch = 0;
    const cuda::NetDesc n = cuda::per_op_ops<StagedPointwiseNet, DType::f16>(opt);
    int gated = 0;
    for (const cuda::OpDesc& op : n.ops) {
      if (op.kind == OpKind::conv && pw::staged_fits(op, pw::staged_rows(m)) && (op.gate || op.has_residual)) {
        opt.force[op.label] = cuda::Variant{"mma_conv1x1", 1, m};
        gated += op.gate ? 1 : 0;
      }
    }
    INFO("math " << m);
    CHECK(gated == (m == 0 ? 3 : 2));  // (40 output slots: one warp across them, 128 rows only)
    CHECK(opt.force.size() == (m == 0 ? 4U : 3U));
    cuda::Engine<StagedPointwiseNet, DType::f16> e16(w, opt);
    const std::string d = e16.describe(mb);
    INFO(d);
    CHECK(occurrences(d, "the gate applied to the staged input") == (m == 0 ? 3U : 2U));
    CHECK(occurrences(d, "the residual added") == 2);
    CHECK(occurrences(d, "channel_gate") == 0);
    strata_test::check_batches(e16, in, ref, {32, 17, 3, 1}, "staged pointwise chain, mma_conv1x1 algo 1");
    cuda::Engine<StagedPointwiseNet, DType::bf16> e16b(w, opt);
    strata_test::check_batches(e16b, in, ref, {32, 17, 3, 1}, "staged pointwise chain, mma_conv1x1 algo 1");
  }
  using strata_test::check_forced;
  const char* shows = "the gate applied to the staged input";
  check_forced<models::EfficientNetB0, DType::f16>("staged_eb0_f16", 90, cuda::Variant{"mma_conv1x1", 1, 0}, shows,
                                                   "channel_gate",
                                                   [](const cuda::OpDesc& op) { return op.gate.has_value(); });
  check_forced<models::EfficientNetB0, DType::bf16>("staged_eb0_bf16", 91, cuda::Variant{"mma_conv1x1", 1, 1}, shows,
                                                    "channel_gate", [](const cuda::OpDesc& op) {
                                                      return op.gate.has_value() && pw::staged_fits(op, 64);
                                                    });
}

// A squeeze-excite gate — the global average pool and the two 1x1 convs of the pooled vector —
// joined as one op (fold_squeeze_excite), "<pool>+<fc1>+<fc2>". The heuristic runs small gates on
// one kernel (squeeze_excite: on compute capability 9.0 on, where batch x 8 is at most twice the
// SMs, a cluster of 8 blocks an image, every gate; else the pool split over blocks of an image
// where the batch leaves the GPU idle, the last block of the image running both convs, or a block
// an image) and, past the cluster claim, large ones (fc1 over 480 x 20) as the three kernels it
// ran before the fold (the pool and fc1 first, as steps of their own). Against the CPU: the
// heuristic in every precision at batches 1, 3, 17 (f32 keeps the three ops apart); the kernel
// forced on SeWideNet (5 images: the first pool 3 blocks an image, the second a block), at 280
// images (a block an image), on SeNet and EfficientNet-B0's sixteen gates.
TEST_CASE("a squeeze-excite gate as one op: the three kernels, or one (forced) with the pool over blocks of an image or a block an image") {
  const auto squeezed = [](const cuda::OpDesc& op) { return op.squeeze != nullptr; };
  cuda::NetDesc wide = cuda::NetStorage<SeWideNet, DType::f16>::describe();
  cuda::fold_for_per_op_path(wide);
  REQUIRE(std::count_if(wide.ops.begin(), wide.ops.end(), squeezed) == 2);
  check_all_precisions<SeWideNet>(kMax, kBatches, "squeeze_excite wide", 48);
  const std::string f16 = cuda::Engine<SeWideNet, DType::f16>(Weights<SeWideNet>::random(1),
                                                              {.max_batch = 3, .fused_max_batch = 0})
                              .describe(3);
  const std::string f16_large = cuda::Engine<SeWideNet, DType::f16>(Weights<SeWideNet>::random(1),
                                                                    {.max_batch = 200, .fused_max_batch = 0})
                                    .describe(200);
  INFO(f16);
  INFO(f16_large);
  const char* cluster8 = "as one kernel, a cluster of 8 blocks an image sharing the pool and both convs)";
  if (cuda::device_arch() >= 90) {
    // at 3 images (3 x 8 blocks, at most twice the SMs) both gates on the cluster kernel (algo 2
    // math 8, claimed: session 28)
    CHECK(f16.find(std::string("1x1 40->2056 ") + cluster8) != std::string::npos);
    CHECK(f16.find(std::string("1x1 8->16 ") + cluster8) != std::string::npos);
  }
  // Past the cluster claim (200 images: 1,600 blocks, more than twice the SMs of any GPU), and
  // at 3 images below compute capability 9.0: the 2,056-channel gate (82,240 multiply-adds in
  // fc1) as the three kernels, the 16-channel one claimed as algo 0.
  // (fc1 on the 1x1 kernel at 3 images, on cuBLASLt at 200)
  for (const std::string* d : {&f16_large, cuda::device_arch() >= 90 ? &f16_large : &f16}) {
    CHECK(d->find("2.fc2+scale_activation: strata global_avg_pool, then ") != std::string::npos);
    CHECK(d->find("strata squeeze_excite (pool 2x2x16, 1x1 16->8, 1x1 8->16 as one kernel") != std::string::npos);
    CHECK(d->find("a cluster of") == std::string::npos);
  }
  using strata_test::check_forced;
  const cuda::Variant one{"squeeze_excite"};
  const cuda::Variant apart{"pixel_conv1x1"};
  check_forced<SeWideNet, DType::f16>("se_wide_f16", 72, one,
                                      "strata squeeze_excite (pool 5x5x2056, 1x1 2056->40, 1x1 40->2056 as one kernel, 3 blocks an image)",
                                      ", then", [](const cuda::OpDesc& op) {
                                        return op.squeeze && op.squeeze->gap->in_cp == 2056;
                                      });
  check_forced<SeWideNet, DType::bf16>("se_wide_bf16", 73, one,
                                       "strata squeeze_excite (pool 2x2x16, 1x1 16->8, 1x1 8->16 as one kernel)",
                                       ", then", [](const cuda::OpDesc& op) {
                                         return op.squeeze && op.squeeze->gap->in_cp == 16;
                                       });
  {  // a batch that fills the GPU: every pool a block an image (forced through a tuning cache)
    constexpr int kBig = 280;
    const auto w = Weights<SeWideNet>::random(49);
    const auto in = strata_test::random_floats(static_cast<std::size_t>(kBig) * 24 * 25, 149);
    const auto ref = strata_test::cpu_reference<SeWideNet>(w, in, kBig);
    const std::filesystem::path cache =
        std::filesystem::temp_directory_path() / "strata_squeeze_excite_280.json";
    std::filesystem::remove(cache);
    {
      cuda::TuningCache c(cache);
      for (const cuda::OpDesc& op : wide.ops) {
        if (op.squeeze) {
          c.put(cuda::tuning_key(op, kBig, DType::f16, cuda::device_name(0)), one);
        }
      }
      c.save();
    }
    cuda::Engine<SeWideNet, DType::f16> e(w, strata_test::from_cache(kBig, cache));
    const std::string runs = e.describe(kBig);
    INFO(runs);
    CHECK(runs.find("1x1 2056->40, 1x1 40->2056 as one kernel)") != std::string::npos);
    CHECK(runs.find("1x1 16->8, 1x1 8->16 as one kernel)") != std::string::npos);
    const std::size_t out_n = static_cast<std::size_t>(SeWideNet::output_spec.shape.numel());
    std::vector<float> out(static_cast<std::size_t>(kBig) * out_n, std::numeric_limits<float>::quiet_NaN());
    e.infer(in, out, kBig);
    const double err = strata_test::rel_error(out, ref, out.size());
    MESSAGE("squeeze_excite wide f16 forced, batch " << kBig << ": rel. error " << err);
    CHECK(err < 1e-2);
    std::filesystem::remove(cache);
  }
  check_forced<SeNet, DType::f16>("se_one_f16", 66, one, "strata squeeze_excite", ", then", squeezed);
  // Algo 1 (passed on an H200 in session 27): the products' loads issued together, at
  // most 64 blocks an image. Where both forms split the pool alike (SeWideNet at batch 5: 3
  // blocks an image, then 1) the same sums in the same order: the outputs are equal to the bit
  // (heuristic tuning, the two gates forced: every other op runs alike).
  const cuda::Variant loads{"squeeze_excite", 1};
  const char* issued = "the products' loads issued together";
  check_forced<SeWideNet, DType::f16>("se_wide_a1", 74, loads, issued, ", then", squeezed);
  check_forced<models::EfficientNetB0, DType::f16>("se_eb0_a1", 75, loads, issued, ", then", squeezed);
  check_forced<models::EfficientNetB0, DType::bf16>("se_eb0_a1_bf16", 76, loads, issued, ", then", squeezed);
  {
    constexpr int kB = 5;
    const auto w = Weights<SeWideNet>::random(77);
    const auto in = strata_test::random_floats(static_cast<std::size_t>(kB) * 24 * 25, 177);
    // The output with both gates forced to `v`, whose step's description shows `shows`.
    const auto forced_out = [&](const cuda::Variant& v, const std::string& shows) {
      return strata_test::forced_output<SeWideNet, DType::f16>(w, in, kB, kB, squeezed, 2, v, shows);
    };
    CHECK(forced_out(one, "as one kernel, 3 blocks an image)") == forced_out(loads, "loads issued together"));
    // math G (written after session 27's last GPU run): G blocks an image, each pooling the whole
    // map in one block and running all of fc1, then its share of fc2's outputs — the same sums
    // as one block an image (math 1), in either form: equal to the bit.
    const auto whole = forced_out(cuda::Variant{"squeeze_excite", 0, 1},
                                  "1x1 40->2056 as one kernel, 1 block an image each pooling the whole map, 2056 of fc2's outputs a block)");
    CHECK(whole == forced_out(cuda::Variant{"squeeze_excite", 0, 16},
                              "1x1 40->2056 as one kernel, 16 blocks an image each pooling the whole map, 129 of fc2's outputs a block)"));
    CHECK(whole == forced_out(cuda::Variant{"squeeze_excite", 1, 16},
                              "16 blocks an image each pooling the whole map, 129 of fc2's outputs a block, the products' loads issued together)"));
    // (64 blocks an image for the 16-channel gate: one output each, 48 with none)
    CHECK(whole == forced_out(cuda::Variant{"squeeze_excite", 1, 64}, "1x1 8->16 as one kernel, 64 blocks an image"));
  }
  // math G against the CPU: SeNet, EfficientNet-B0's sixteen gates in f16 and bf16, both forms.
  const char* rows = "blocks an image each pooling the whole map";
  check_forced<SeNet, DType::f16>("se_rows_f16", 78, cuda::Variant{"squeeze_excite", 0, 8}, rows, ", then", squeezed);
  check_forced<models::EfficientNetB0, DType::f16>("se_eb0_rows", 79, cuda::Variant{"squeeze_excite", 1, 16}, rows,
                                                   ", then", squeezed);
  check_forced<models::EfficientNetB0, DType::bf16>("se_eb0_rows_bf16", 80, cuda::Variant{"squeeze_excite", 0, 32},
                                                    rows, ", then", squeezed);
  // algo 2 (GPU-run since session 28; claimed at small batches): a thread-block cluster of 8 or 16 blocks an
  // image, the pool's sums and fc1's outputs exchanged through distributed shared memory; against
  // the CPU on SeWideNet (a 2,056-channel gate over a 5x5 map: ranks past the 25th pixel pool
  // nothing at 16), SeNet and EfficientNet-B0's sixteen gates.
  const char* cluster = "blocks an image sharing the pool and both convs";
  check_forced<SeWideNet, DType::f16>("se_wide_cl16", 81, cuda::Variant{"squeeze_excite", 2, 16}, cluster,
                                      ", then", squeezed);
  check_forced<SeNet, DType::bf16>("se_cl8_bf16", 82, cuda::Variant{"squeeze_excite", 2, 8}, cluster, ", then",
                                   squeezed);
  check_forced<models::EfficientNetB0, DType::f16>("se_eb0_cl8", 83, cuda::Variant{"squeeze_excite", 2, 8},
                                                   cluster, ", then", squeezed);
  check_forced<models::EfficientNetB0, DType::bf16>("se_eb0_cl16_bf16", 84, cuda::Variant{"squeeze_excite", 2, 16},
                                                    cluster, ", then", squeezed);
  check_forced<SeNet, DType::bf16>("se_apart_bf16", 67, apart, "strata global_avg_pool", "squeeze_excite",
                                   squeezed);
  check_forced<models::EfficientNetB0, DType::f16>("se_eb0_f16", 68, one, "strata squeeze_excite",
                                                   ", then", squeezed);
  check_forced<models::EfficientNetB0, DType::bf16>("se_eb0_bf16", 69, one, "strata squeeze_excite",
                                                    ", then", squeezed);
}

TEST_CASE("conv_transpose: stride, output_padding, groups, dilation, folded batch_norm, activations") {
  check_all_precisions<ConvTransposeNet>(kMax, kBatches, "conv_transpose", 48);
}

// ConvTransposeNet under measured tuning (cudnn_conv_transpose's algorithms timed beside the
// direct kernel, whichever wins kept) at batches 17 and 3, against the CPU.
template <DType P>
void check_measured_deconv() {
  const auto w = Weights<ConvTransposeNet>::random(91);
  const auto in = strata_test::random_floats(17 * ConvTransposeNet::input_spec.shape.numel(), 191);
  const auto ref = strata_test::cpu_reference<ConvTransposeNet>(w, in, 17);
  cuda::EngineOptions opt;
  opt.max_batch = 17;
  opt.tuning = cuda::Tuning::measured;
  opt.fused_max_batch = 0;
  cuda::Engine<ConvTransposeNet, P> e(w, opt);
  INFO(e.describe(17));
  int timed = 0;  // cuDNN's algorithms timed (a trial of -1 µs could not run)
  for (const cuda::TuningTrial& t : e.stats().tuning_trials) {
    timed += t.variant.starts_with("cudnn_conv_transpose") && t.us >= 0 ? 1 : 0;
  }
  CHECK(timed > 0);
  strata_test::check_batches(e, in, ref, {17, 3}, "deconv measured");
}

// cudnn_conv_transpose (cuDNN's backward-data convolution, the filter rearranged at prepare, then
// Strata's epilogue): forced — as cuDNN's own first choice — on the transposed convs it applies
// to, in every precision, against the CPU. ConvTransposeNet's first two (groups 2 with dilation
// 2 and output_padding 1 — in f32 only: in NHWC its 2-channel groups short of their slots are
// not offered —; a (2, 3) kernel of stride (2, 1) without bias, into mish, 6 -> 5 channels: in
// NHWC its slots described as channels, the filter padded) take it; its third (output_padding
// not below the stride) stays on conv_transpose_direct. In the U-Net step the up-conv's output
// (12 -> 6 channels) is a concat's slice, which this tactic does not write in place: the plan
// stages it and copies. Then measured tuning, which times every algorithm cuDNN lists beside the
// direct kernel (at least one of them must run), against the CPU.
TEST_CASE("cudnn_conv_transpose: forced and timed, against the CPU") {
  using strata_test::check_forced;
  const auto deconv = [](const cuda::OpDesc& op) { return op.kind == strata::OpKind::conv_transpose; };
  const cuda::Variant own{"cudnn_conv_transpose"};
  const char* bwd = "cudnnConvolutionBackwardData, cuDNN algorithm";
  check_forced<ConvTransposeNet, DType::f32>("deconv_f32", 85, own, bwd, nullptr, deconv);
  check_forced<ConvTransposeNet, DType::f16>("deconv_f16", 86, own, bwd, nullptr, deconv);
  check_forced<ConvTransposeNet, DType::bf16>("deconv_bf16", 87, own, bwd, nullptr, deconv);
  check_forced<ConvTransposeNet, DType::tf32>("deconv_tf32", 88, own, bwd, nullptr, deconv);
  check_forced<UnetNet, DType::f16>("deconv_unet_f16", 89, own, bwd, nullptr, deconv);
  check_forced<UnetNet, DType::f32>("deconv_unet_f32", 90, own, bwd, nullptr, deconv);
  const std::string d = describe<ConvTransposeNet, DType::f16>(5);
  INFO(d);
  // The heuristic's choices: cuDNN for the second (it claims where it applies), the direct
  // kernel for the first (2-channel groups in NHWC) and the third (output_padding).
  CHECK(d.find("strata conv_transpose_direct") != std::string::npos);
  CHECK(d.find(bwd) != std::string::npos);
  check_measured_deconv<DType::f16>();
  check_measured_deconv<DType::f32>();
}

TEST_CASE("a U-Net step: max_pool, conv, conv_transpose up, concat with the skip") {
  check_all_precisions<UnetNet>(kMax, kBatches, "unet step", 49);
}

TEST_CASE("depthwise convs: 3x3, 5x5 stride 2, 7x7 dilation 2 with a residual; producers' activations applied on load") {
  static_assert(!cuda::NetStorage<DepthwiseNet, DType::f16>::fused_fit().fits);
  check_all_precisions<DepthwiseNet>(kMax, kBatches, "depthwise", 49);
  for (const std::string& d : {describe<DepthwiseNet, DType::f16>(1), describe<DepthwiseNet, DType::bf16>(17)}) {
    INFO(d);
    CHECK(d.find("strata depthwise 3x3 (the producer's activation applied once as the band is "
                 "staged, bias, act fused; bands of") != std::string::npos);
    CHECK(d.find("strata depthwise 5x5 stride 2 (the producer's activation applied once as the band "
                 "is staged") != std::string::npos);
    CHECK(d.find("strata depthwise 7x7 (the producer's activation on load, bias, add, act fused)") !=
          std::string::npos);
    // The expansion runs without an activation pass of its own.
    const std::size_t at = d.find("conv0+bn1+silu2: ");
    REQUIRE(at != std::string::npos);
    CHECK(d.substr(at, d.find('\n', at) - at).find("pointwise") == std::string::npos);
  }
  // The gate at batch 1: computed by the depthwise conv before it — an engine of max batch 1
  // joins a squeeze-excite op of a 56x56 map to it (fold_tailed_gates) and depthwise_band fuse 1
  // claims the pair, on any architecture (since session 52; before, squeeze_excite's cluster of 8
  // blocks on compute capability 9.0 on, its two layers below — which session 62's full run of
  // this file found still expected here, with the pool split over 49 blocks below 9.0).
  const std::string d1 = describe<DepthwiseNet, DType::f16>(1);
  INFO(d1);
  CHECK(d1.find("; the squeeze-excite op after it (pool, 1x1 20->6, 1x1 6->20) computed by each "
                "image's last block") != std::string::npos);
  CHECK(d1.find("strata squeeze_excite") == std::string::npos);
  // (Not under STRATA_GPU_TEST_QUICK: racecheck would instrument the libraries' kernels at
  // batch 96 for minutes.)
  // At batch 96 the 40-channel depthwise convs (96·28·28·40 outputs, over 2^21, maps under
  // 112x112): the 5x5 stride 2 and the 20-channel 3x3 (SiLU on load) take the band kernel
  // (depthwise_band), the 7x7 of dilation 2 (no kernel of Strata's at that size) runs as cuDNN
  // after its producer's activation applied in place. Batch 5 of that engine runs the same
  // choices (made at its max_batch); an engine made for batch 5 runs no library.
  if (!strata_test::quick_run()) {
    const auto w = Weights<DepthwiseNet>::random(50);
    const auto in = strata_test::random_floats(96 * 6 * 56 * 56, 150);
    const auto ref = strata_test::cpu_reference<DepthwiseNet>(w, in, 96);
    strata_test::check_engine<DepthwiseNet, DType::f16>(w, in, ref, 96, {96, 5}, "depthwise b96");
    strata_test::check_engine<DepthwiseNet, DType::bf16>(w, in, ref, 96, {96, 5}, "depthwise b96");
    const std::string d96 = describe<DepthwiseNet, DType::f16>(96);
    INFO(d96);
    CHECK(d96.find("strata pointwise (the producer's activation, in place), then cudnnConvolution") !=
          std::string::npos);
    CHECK(d96.find("strata depthwise 3x3 (the producer's activation applied once as the band is "
                   "staged, bias, act fused; bands of") != std::string::npos);
    CHECK(d96.find("strata depthwise 5x5 stride 2 (the producer's activation applied once as the "
                   "band is staged, bias, act fused; bands of") != std::string::npos);
    // the gate folded into the 40-channel 1x1 conv after it (40 output slots, 3,136 pixels)
    CHECK(d96.find("multiply6+mul+conv7+hardswish8: strata gate_weights") != std::string::npos);
    const std::string d5 = describe<DepthwiseNet, DType::f16>(5);
    INFO(d5);
    CHECK(d5.find("then cudnn") == std::string::npos);  // batch 5: the kernel throughout
    CHECK(d5.find("persistent") == std::string::npos);
  }
}

TEST_CASE("deferred activations: hardsigmoid into a padded depthwise conv; the library ways at batch 400") {
  static_assert(!cuda::NetStorage<DeferredNet, DType::f16>::fused_fit().fits);
  const auto w = Weights<DeferredNet>::random(51);
  const auto in = strata_test::random_floats(400 * 8 * 20 * 20, 151);
  const auto ref = strata_test::cpu_reference<DeferredNet>(w, in, 400);
  // (Batch 400 not under STRATA_GPU_TEST_QUICK: see the depthwise test.)
  std::vector<std::vector<int>> runs{{3, 1}};
  if (!strata_test::quick_run()) {
    runs.push_back({400, 3});
  }
  for (const std::vector<int>& batches : runs) {
    const int mb = batches.front();
    strata_test::check_engine<DeferredNet, DType::f16>(w, in, ref, mb, batches, "deferred");
    strata_test::check_engine<DeferredNet, DType::bf16>(w, in, ref, mb, batches, "deferred");
  }
  const std::string small = describe<DeferredNet, DType::f16>(3);
  const std::string large = describe<DeferredNet, DType::f16>(400);
  INFO(small);
  INFO(large);
  CHECK(small.find("strata depthwise 3x3 (the producer's activation on load") != std::string::npos);
  CHECK(large.find("in place), then cudnnConvolution") != std::string::npos);
  // The gate's second 1x1 reads the first one's SiLU in one kernel with the pool (squeeze_excite,
  // claimed: 64 x 64 multiply-adds, 50 blocks an image at batch 3, one at 400); apart, the 1x1
  // kernel applies it on load, cuBLASLt after a pass in place (forced at batch 5).
  const char* gate = "strata squeeze_excite (pool 20x20x64, 1x1 64->64, 1x1 64->64 as one kernel";
  CHECK(small.find(gate) != std::string::npos);
  CHECK(large.find(gate) != std::string::npos);
  const auto squeezed = [](const cuda::OpDesc& op) { return op.squeeze != nullptr; };
  strata_test::check_forced<DeferredNet, DType::f16>(
      "deferred_pixel", 52, cuda::Variant{"pixel_conv1x1"},
      "strata 1x1 conv of a 1x1 map (the producer's activation on load", "squeeze_excite", squeezed);
  strata_test::check_forced<DeferredNet, DType::f16>("deferred_lt", 53, cuda::Variant{"lt_conv1x1"},
                                                     "in place), then cublasLtMatmul",
                                                     "squeeze_excite", squeezed);
}

// Forces variant `algo` of the depthwise tactic on every depthwise conv of Net that it runs (algos 0
// and 1: every one) through the tuning cache, at max batch `mb`, and checks the engine against the
// CPU at `batches`.
template <class Net, DType P>
void check_depthwise_forced(int algo, int mb, const std::vector<int>& batches, std::uint64_t seed,
                            const char* tactic = "depthwise_conv") {
  using N = std::remove_cvref_t<Net>;
  const auto w = Weights<Net>::random(seed);
  const auto in = strata_test::random_floats(static_cast<std::size_t>(mb * N::input_spec.shape.numel()), seed + 100);
  const auto ref = strata_test::cpu_reference<Net>(w, in, mb);
  const auto cache = std::filesystem::temp_directory_path() /
                     ("strata_depthwise_forced_" + std::string(tactic) + std::to_string(algo) + "_" +
                      std::string(dtype_name(P)));
  std::filesystem::remove(cache);
  int forced = 0;
  {
    cuda::TuningCache c(cache);
    const cuda::Variant v{tactic, algo};
    cuda::NetDesc net = cuda::NetStorage<Net, P>::describe();
    cuda::fold_for_per_op_path(net);  // (a folded expansion then runs first, as its own step)
    for (const cuda::OpDesc& op : net.ops) {
      const cuda::Tactic<P>* t = cuda::find_tactic<P>(v.tactic);
      if (t->applicable(op)) {
        const auto offered = t->candidates(op, mb, 0, {});
        const bool offers = std::find(offered.begin(), offered.end(), v) != offered.end();
        REQUIRE((offers || algo >= 2));
        if (!offers) {
          continue;
        }
        c.put(cuda::tuning_key(op, mb, P, cuda::device_name(0)), v);
        ++forced;
      }
    }
    c.save();
  }
  REQUIRE(forced > 0);
  cuda::EngineOptions opt = strata_test::from_cache(mb, cache);
  opt.fused_max_batch = 0;
  cuda::Engine<Net, P> e(w, opt);
  const std::string d = e.describe(mb);
  INFO(d);
  // the forced variant's mark on as many depthwise lines as were forced
  const std::string mark = std::string_view(tactic) == "depthwise_band" ? "outputs of a channel pair a thread"
                           : algo == 1   ? "persistent"
                           : algo == 2 ? " output rows a thread, read"
                           : algo == 3 ? "channel pairs"
                                       : "act fused)";
  std::size_t shown = 0;
  for (std::size_t at = d.find("strata depthwise"); at != std::string::npos; at = d.find("strata depthwise", at + 1)) {
    const std::string line = d.substr(at, d.find('\n', at) - at);
    shown += line.find(mark) != std::string::npos ? 1 : 0;
  }
  CHECK(shown == static_cast<std::size_t>(forced));
  strata_test::check_batches(e, in, ref, batches, "depthwise forced algo " + std::to_string(algo));
}

// depthwise_band algo 1 (passed on an H200 in session 27): the chunk's filters staged
// through shared memory by coalesced loads, `images` images a block — the same sums in the same
// order as algo 0. Forced (EngineOptions::force, heuristic tuning otherwise) on every depthwise
// conv of Net it runs, against the CPU at `batches` (partial image groups among them), and equal
// to the bit to the engine with algo 0 forced on the same ops.
template <class Net, DType P>
void check_band_staged(int images, const std::vector<int>& batches, std::uint64_t seed) {
  using N = std::remove_cvref_t<Net>;
  const int mb = *std::max_element(batches.begin(), batches.end());
  const auto w = Weights<Net>::random(seed);
  const auto in = strata_test::random_floats(static_cast<std::size_t>(mb * N::input_spec.shape.numel()), seed + 100);
  const auto ref = strata_test::cpu_reference<Net>(w, in, mb);
  cuda::NetDesc net = cuda::NetStorage<Net, P>::describe();
  cuda::fold_for_per_op_path(net);
  const auto engine = [&](const cuda::Variant& v) {
    cuda::EngineOptions opt;
    opt.max_batch = mb;
    opt.fused_max_batch = 0;
    for (const cuda::OpDesc& op : net.ops) {
      if (cuda::tactics::band::fits_staged_filters(op)) {
        opt.force[op.label] = v;
      }
    }
    REQUIRE(!opt.force.empty());
    return std::make_unique<cuda::Engine<Net, P>>(w, opt);
  };
  const auto plain = engine(cuda::Variant{"depthwise_band"});
  const auto staged = engine(cuda::Variant{"depthwise_band", 1, images});
  const std::string d = staged->describe(mb);
  INFO(d);
  CHECK(d.find("filters staged in shared memory, " + std::to_string(images) +
               (images == 1 ? " image" : " images") + " a block") != std::string::npos);
  const std::size_t out_n = static_cast<std::size_t>(N::output_spec.shape.numel());
  for (int b : batches) {
    std::vector<float> want(static_cast<std::size_t>(b) * out_n, std::numeric_limits<float>::quiet_NaN());
    std::vector<float> got(want.size(), std::numeric_limits<float>::quiet_NaN());
    plain->infer(in, want, b);
    staged->infer(in, got, b);
    const double err = strata_test::rel_error(got, ref, got.size());
    MESSAGE("depthwise_band algo 1, " << images << " images a block, " << dtype_name(P) << " batch " << b
                                      << ": rel. error " << err);
    CHECK(err < strata_test::tolerance(P));
    CHECK(got == want);
  }
}

// (The tiled kernel with hardsigmoid on load at batch 400, its 20 = 16 + 4 columns a partial
// tile, checked in DeferredNet: see check_depthwise_forced's last call.)
TEST_CASE("the persistent tiled depthwise kernel, forced at small batches: partial tiles, dilation, residual, f(0) != 0 on load") {
  check_depthwise_forced<DepthwiseNet, DType::f16>(1, 17, {1, 3, 17}, 52);
  check_depthwise_forced<DepthwiseNet, DType::bf16>(1, 17, {1, 3, 17}, 53);
  check_depthwise_forced<DeferredNet, DType::f16>(1, 17, {1, 3, 17}, 54);
  check_depthwise_forced<DeferredNet, DType::bf16>(1, 17, {1, 3, 17}, 55);
  // Batch 120: 720 tiles of 8x16 pixels per 32-channel chunk, more than a GPU of up to 180 SMs
  // holds at once (4 blocks an SM), so blocks go on to further tiles: the double-buffered patch
  // and the in-place hardsigmoid across iterations (also under the quick run, for racecheck).
  check_depthwise_forced<DeferredNet, DType::f16>(1, 120, {120, 5}, 58);
  // both kernels forced at batch 400, where the heuristic leaves the 20x20 map to cuDNN
  if (!strata_test::quick_run()) {
    check_depthwise_forced<DeferredNet, DType::f16>(1, 400, {400, 7}, 56);
    check_depthwise_forced<DeferredNet, DType::f16>(0, 400, {400, 7}, 57);
  }
}

// depthwise_rows (algo 2: strips of 4 output rows a thread at stride 1, of 2 at stride 2) on the
// 3x3 convs of DepthwiseNet (SiLU on load, 3 channel vectors a block), on DeferredNet
// (hardsigmoid on load: f(0) != 0, the padding must stay 0; 8 vectors) and on RowsNet, whose maps
// cut the strips short (13 rows: 13 % 4 = 1; 7 rows after its 3x3 stride 2: 7 % 2 = 1 and
// 7 % 4 = 3), with 6 vectors a block, hardsigmoid, ReLU6, SiLU and hardswish on load, a residual
// added, and a GELU that stays in the last one's epilogue (its generic path: a gate reads it). The
// gate also keeps the net off the fused-network kernel, which would fuse every activation where
// declared and defer none. (DepthwiseNet's 5x5 and 7x7 convs are not the kernel's shape: the
// cache forces only what the tactic offers.)
constexpr auto rows_net = input<8, 13, 13>
    | conv<48, 1> | hardsigmoid
    | conv<48, 3, ConvOpts{.padding = 1, .groups = 48}> | relu
    | residual(conv<48, 1> | relu6 | conv<48, 3, ConvOpts{.padding = 1, .groups = 48}>)
    | conv<48, 3, ConvOpts{.stride = 2, .padding = 1, .groups = 48}> | silu
    | conv<48, 3, ConvOpts{.padding = 1, .groups = 48}> | hardswish
    | conv<48, 3, ConvOpts{.padding = 1, .groups = 48}> | gelu
    | multiply(global_avg_pool | conv<12, 1> | relu | conv<48, 1> | sigmoid)
    | conv<8, 1>;
using RowsNet = std::remove_cv_t<decltype(rows_net)>;

// Large-tap depthwise convs for depthwise_band: 5x5 at stride 1 with SiLU on load (21 channels,
// 24 slots: the pair of slots 20 and 21 straddles k; 12 pairs, so 4 pairs a block), 5x5 stride 2
// with hardsigmoid on load (f(0) != 0: the padding must stay 0) and a GELU after it (the
// epilogue's generic activation), 7x7 at stride 1 with ReLU6 on load (the 1x1 before it inside
// the residual: its only reader) and the residual added, 144 channels (72 pairs: 8 a block);
// 13x13 and 7x7 maps that cut the bands of 2-row strips and 4-column groups short. The gate keeps
// the net off the fused-network kernel. (Until session 23's run the 7x7 read the residual's
// input, which two ops read, so it had no activation on load.)
constexpr auto band_net = input<8, 13, 13>
    | conv<21, 1> | silu
    | conv<21, 5, ConvOpts{.padding = 2, .groups = 21}> | relu
    | conv<48, 1> | hardsigmoid
    | conv<48, 5, ConvOpts{.stride = 2, .padding = 2, .groups = 48}> | gelu
    | multiply(global_avg_pool | conv<8, 1> | relu | conv<48, 1> | sigmoid)
    | conv<144, 1> | relu6
    | residual(conv<144, 1> | relu6 | conv<144, 7, ConvOpts{.padding = 3, .groups = 144}>)
    | conv<8, 1>;
using BandNet = std::remove_cv_t<decltype(band_net)>;

// 21 channels (24 slots): depthwise_pairs' pair of slots 20 and 21 straddles k, so slot 21 is
// written as 0 beside a real channel; ReLU6 on load, stride 1 and 2, a 13-column map (one full
// 8-column group and a cut one).
constexpr auto odd_net = input<8, 13, 13>
    | conv<21, 1> | relu6
    | conv<21, 3, ConvOpts{.padding = 1, .groups = 21}> | relu6
    | multiply(global_avg_pool | conv<8, 1> | relu | conv<21, 1> | sigmoid)
    | conv<21, 3, ConvOpts{.stride = 2, .padding = 1, .groups = 21}> | relu6
    | conv<8, 1>;
using OddNet = std::remove_cv_t<decltype(odd_net)>;

// depthwise_pairs (algo 3: a thread 2 channels of a strip of output rows, sliding over 8 columns;
// 3x3 only): stride 1 (DepthwiseNet, whose 5x5 and 7x7 are not the kernel's shape), stride 2
// (RowsNet, OddNet, MobileNetV2, EfficientNet-B0), an odd channel count (OddNet: the pair of
// slots 20 and 21 straddles k = 21), maps that cut the strips and the 8-column groups short
// (RowsNet's 13 and 7), activations on load with f(0) != 0 (hardsigmoid: the padding must stay
// 0), a residual, GELU in the epilogue (the kernel's generic activation); MobileNetV2's 17
// depthwise convs (ReLU6 on load) and EfficientNet-B0's seven 3x3 ones (SiLU on load). (The 5x5
// forms, run forced here in session 22 before they were dropped, passed too.)
TEST_CASE("the depthwise channel-pair kernel, forced: 3x3 at strides 1 and 2, strips and column groups cut by the map") {
  check_depthwise_forced<DepthwiseNet, DType::f16>(3, 17, {1, 3, 17}, 90);
  check_depthwise_forced<DepthwiseNet, DType::bf16>(3, 17, {1, 3, 17}, 91);
  check_depthwise_forced<DeferredNet, DType::f16>(3, 120, {120, 5}, 92);
  check_depthwise_forced<RowsNet, DType::f16>(3, 17, {1, 3, 17}, 93);
  check_depthwise_forced<RowsNet, DType::bf16>(3, 17, {1, 17}, 94);
  check_depthwise_forced<OddNet, DType::f16>(3, 17, {1, 3, 17}, 97);
  check_depthwise_forced<models::MobileNetV2, DType::f16>(3, 2, {2}, 95);
  check_depthwise_forced<models::EfficientNetB0, DType::f16>(3, 2, {2}, 96);
}

// depthwise_band (the band's input staged once with the producer's activation applied, a
// channel pair of 2x4 outputs a thread), forced on every depthwise conv it takes: BandNet's three
// (SiLU, hardsigmoid and ReLU6 on load, strides 1 and 2, a residual, GELU in the epilogue, bands
// cut by the maps), DepthwiseNet's 3x3 and 5x5 stride 2 (SiLU and hardswish on load, 20 and 40
// channels; its 7x7 has dilation 2, not the kernel's), EfficientNet-B0's sixteen (3x3 and 5x5,
// SiLU on load, 7x7 to 112x112 maps, 32 to 1,152 channels) and MobileNetV2's seventeen (3x3,
// ReLU6 on load). (The 5x5 and 7x7 forms passed on an H200 in session 23, the 3x3 one in
// session 24.)
TEST_CASE("the depthwise band kernel, forced: 3x3, 5x5 and 7x7 at strides 1 and 2, activations on load, a residual") {
  // BandNet's activations on load: SiLU, hardsigmoid, clip (ReLU6) — one each.
  std::vector<Act> on_load;
  for (const cuda::OpDesc& op : cuda::NetStorage<BandNet, DType::f16>::describe().ops) {
    if (op.kind == OpKind::conv && op.conv.groups > 1) {
      on_load.push_back(op.in_act.kind);
    }
  }
  REQUIRE(on_load == std::vector<Act>{Act::silu, Act::hardsigmoid, Act::clip});
  check_depthwise_forced<BandNet, DType::f16>(0, 17, {1, 3, 17}, 98, "depthwise_band");
  check_depthwise_forced<BandNet, DType::bf16>(0, 17, {1, 17}, 99, "depthwise_band");
  check_depthwise_forced<DepthwiseNet, DType::f16>(0, 5, {1, 5}, 100, "depthwise_band");
  check_depthwise_forced<models::EfficientNetB0, DType::f16>(0, 2, {2}, 101, "depthwise_band");
  check_depthwise_forced<models::MobileNetV2, DType::f16>(0, 2, {2}, 102, "depthwise_band");
  // algo 1: filters staged, several images a block (passed on an H200 in session 27)
  check_band_staged<BandNet, DType::f16>(4, {1, 3, 17}, 103);
  check_band_staged<BandNet, DType::bf16>(2, {1, 5}, 104);
  check_band_staged<models::EfficientNetB0, DType::f16>(4, {5}, 105);
  check_band_staged<models::MobileNetV2, DType::f16>(8, {9}, 106);
}

// expand_depthwise (fold_expanded_depthwise: an inverted-residual block's 1x1 expansion joined to
// the depthwise conv that alone reads it; one kernel computes the expanded patch on tensor cores
// into shared memory, chunk by chunk, and the depthwise conv from there), forced on every joined
// op: BandNet's two (hardsigmoid on load into a 5x5 stride-2 conv — f(0) != 0 outside the map,
// where the padding must stay 0 — and ReLU6 into a 7x7 with the residual added; 21 -> 48 and
// 48 -> 144 channels, 24 and 48 slots in), MobileNetV2's sixteen and EfficientNet-B0's fifteen (ReLU6 and SiLU on
// load, 3x3 and 5x5 at strides 1 and 2, 7x7 to 112x112 maps, 96 to 1,152 channels), against the
// CPU. The depthwise kernels' forced tests above run the same joined ops with the expansion as a
// step of its own.
TEST_CASE("an expansion folded into the depthwise conv after it: one kernel, the expanded map never stored") {
  const auto expanded = [](const cuda::OpDesc& op) { return op.expand != nullptr; };
  cuda::NetDesc mv2 = cuda::NetStorage<models::MobileNetV2, DType::f16>::describe();
  cuda::fold_for_per_op_path(mv2);
  CHECK(std::count_if(mv2.ops.begin(), mv2.ops.end(), expanded) == 16);
  using strata_test::check_forced;
  const cuda::Variant fused{"expand_depthwise"};
  const char* shows = "strata expand+depthwise";
  check_forced<BandNet, DType::f16>("expand_band_f16", 110, fused, shows, ", then", expanded);
  check_forced<BandNet, DType::bf16>("expand_band_bf16", 111, fused, shows, ", then", expanded);
  check_forced<models::MobileNetV2, DType::f16>("expand_mv2_f16", 113, fused, shows, ", then", expanded);
  check_forced<models::EfficientNetB0, DType::f16>("expand_eb0_f16", 114, fused, shows, ", then",
                                                   expanded);
  check_forced<models::EfficientNetB0, DType::bf16>("expand_eb0_bf16", 115, fused, shows, ", then",
                                                    expanded);
  // The forms only forced runs take (timed in session 26: no gain worth a tuning candidate):
  // pipelined (algo 1), the chunks split over blocks (math), both.
  check_forced<BandNet, DType::f16>("expand_band_pipe", 116, cuda::Variant{"expand_depthwise", 1},
                                    "pipelined", ", then", expanded);
  check_forced<models::MobileNetV2, DType::f16>("expand_mv2_pipe2", 117,
                                                cuda::Variant{"expand_depthwise", 1, 2},
                                                "pipelined, the chunks over 2 blocks", ", then", expanded);
  check_forced<models::EfficientNetB0, DType::bf16>("expand_eb0_split2", 118,
                                                    cuda::Variant{"expand_depthwise", 0, 2},
                                                    "the chunks over 2 blocks", ", then", expanded);
  check_forced<models::EfficientNetB0, DType::f16>("expand_eb0_pipe", 119,
                                                   cuda::Variant{"expand_depthwise", 1}, "pipelined",
                                                   ", then", expanded);
}

namespace {
// Three blocks for the projection joined after them (fold_projected_depthwise, at a max_batch of
// 64): a depthwise conv without an expansion (the stem's ReLU6 deferred into its read; 32
// channels, 3x3, on depthwise_band with its projection to 24 in the same launch: tiles of 8x16
// outputs cut by the 54x54 map at both edges), then two inverted-residual blocks where
// expand_depthwise claims them: one with its residual (24 -> 90 channels in 96 slots, 3x3, back
// to 24), one without (stride 2 to 27x27, 96 channels, projected to 20 channels in 24 slots: the
// slots past them written as 0). Both expansions reduce over 24 slots: 16 on m16n8k16, the last
// 8 on m16n8k8.
inline constexpr auto project_net = input<16, 54, 54>
    | conv<32, 3, ConvOpts{.padding = 1}> | relu6
    | conv<32, 3, ConvOpts{.padding = 1, .groups = 32}> | batch_norm | relu6 | conv<24, 1> | batch_norm
    | residual(conv<90, 1> | batch_norm | relu6
               | conv<90, 3, ConvOpts{.padding = 1, .groups = 90}> | batch_norm | relu6
               | conv<24, 1, ConvOpts{.bias = false}> | batch_norm)
    | conv<96, 1> | batch_norm | relu6
    | conv<96, 3, ConvOpts{.stride = 2, .padding = 1, .groups = 96}> | batch_norm | relu6
    | conv<20, 1> | batch_norm | global_avg_pool | flatten | dense<10>;
using ProjectNet = std::remove_cv_t<decltype(project_net)>;

/// Net's outputs in P at each of `batches` from an engine of max batch `max_batch` (heuristic
/// tuning, the per-op path) with `v` forced on every op the engine joins with its projection (at
/// least `least`) — `unexpanded` on those without an expansion —, each one's describe() line
/// showing `shows` (`unexpanded_shows`).
template <class Net, DType P>
std::vector<std::vector<float>> projected_outputs(const Weights<Net>& w, const std::vector<float>& in, int max_batch,
                                                  const std::vector<int>& batches, const cuda::Variant& v,
                                                  const std::string& shows, const cuda::Variant& unexpanded,
                                                  const std::string& unexpanded_shows, std::size_t least) {
  cuda::EngineOptions opt;
  opt.max_batch = max_batch;
  opt.tuning = cuda::Tuning::heuristic;
  opt.fused_max_batch = 0;
  cuda::NetDesc net = cuda::NetStorage<Net, P>::describe();
  cuda::fold_for_per_op_path(net);
  cuda::NetDesc all = net;
  cuda::fold_for_max_batch(net, opt, false);
  for (const cuda::OpDesc& op : net.ops) {
    if (op.project && op.expand) {
      opt.force[op.label] = v;
    }
  }
  // The join without an expansion (project_net's first block, MobileNetV2's features.1), which
  // the engine makes by itself once depthwise_band's fuse 2 is GPU-tested
  // (band::projection_gpu_tested) and, until then, where the force names it.
  cuda::fold_projected_depthwise(all);
  std::size_t plain = 0;
  for (const cuda::OpDesc& op : all.ops) {
    if (op.project && !op.expand) {
      opt.force[op.label] = unexpanded;
      ++plain;
    }
  }
  REQUIRE(opt.force.size() >= least);
  REQUIRE(plain == 1);
  cuda::Engine<Net, P> e(w, opt);
  check_forced_lines(e, opt.force, batches.front(), [&](const std::string& line) {
    CHECK((line.find(shows) != std::string::npos || line.find(unexpanded_shows) != std::string::npos));
  });
  std::vector<std::vector<float>> outs;
  const std::size_t out_n = static_cast<std::size_t>(std::remove_cvref_t<Net>::output_spec.shape.numel());
  for (const int b : batches) {
    outs.emplace_back(static_cast<std::size_t>(b) * out_n, std::numeric_limits<float>::quiet_NaN());
    e.infer(in, outs.back(), b);
  }
  return outs;
}

/// project_net's joined blocks on expand_depthwise with the projection (fuse 1) and without it
/// (fuse 0: the projection a step of its own after the kernel), in P, against the CPU and each
/// other at batches 1, 3, 17 and the maximum, 64 (1 and 3 under STRATA_GPU_TEST_QUICK).
template <DType P>
void check_projected_blocks(std::uint64_t seed) {
  const std::vector<int> batches = strata_test::test_batches({1, 3, 17, 64});
  const auto w = Weights<ProjectNet>::random(seed);
  const auto in = strata_test::random_floats(static_cast<std::size_t>(64 * ProjectNet::input_spec.shape.numel()), seed + 1);
  const auto ref = strata_test::cpu_reference<ProjectNet>(w, in, 64);
  const auto joined = projected_outputs<ProjectNet, P>(w, in, 64, batches, cuda::Variant{"expand_depthwise", 0, 0, 1},
                                                       "the 1x1 projection after it on tensor cores too",
                                                       cuda::Variant{"depthwise_band", 0, 0, 2},
                                                       "the 1x1 projection after it on tensor cores in the same block", 3);
  const auto apart = projected_outputs<ProjectNet, P>(w, in, 64, batches, cuda::Variant{"expand_depthwise"},
                                                      ", then", cuda::Variant{"depthwise_band"}, ", then", 3);
  const double bound = P == DType::bf16 ? 3e-2 : 1e-2;
  for (std::size_t i = 0; i < batches.size(); ++i) {
    const double e1 = strata_test::rel_error(joined[i], ref, joined[i].size());
    const double e0 = strata_test::rel_error(apart[i], ref, apart[i].size());
    const double e10 = strata_test::rel_error(joined[i], apart[i], joined[i].size());
    MESSAGE("project_net " << dtype_name(P) << ", batch " << batches[i] << ": rel. error fuse 1 " << e1
                           << ", fuse 0 " << e0 << ", fuse 1 against fuse 0 " << e10);
    CHECK(e1 < bound);
    CHECK(e0 < bound);
    CHECK(e10 < bound);
  }
}
}  // namespace

// expand_depthwise fuse 1 (fold_projected_depthwise: at a max_batch of 32 or more, an
// inverted-residual block's projection joined after its expansion and depthwise conv; one kernel
// computes the three, the depthwise conv's output kept in shared memory a chunk of channels at a
// time and multiplied into the projection's f32 sums; and depthwise_band fuse 2, a depthwise conv
// without an expansion and its projection): project_net's three blocks (f16, bf16), and every op
// of MobileNetV2 the engine joins at a max_batch of 256 (features.1 on depthwise_band fuse 2;
// features.2 to .6: 16, 24 and 32 input channels, 24 and 32 output channels, strides 1 and 2,
// residual or not), against the CPU at batches 5 and 1 (1 under STRATA_GPU_TEST_QUICK).
TEST_CASE("an inverted-residual block as one kernel: expansion, depthwise conv and projection (expand_depthwise fuse 1; depthwise_band fuse 2 without an expansion)") {
  check_projected_blocks<DType::f16>(150);
  check_projected_blocks<DType::bf16>(151);
  using Net = models::MobileNetV2;
  const auto w = Weights<Net>::random(152);
  const auto in = strata_test::random_floats(static_cast<std::size_t>(5 * Net::input_spec.shape.numel()), 153);
  const auto ref = strata_test::cpu_reference<Net>(w, in, 5);
  // (batch 1 alone under STRATA_GPU_TEST_QUICK: racecheck instruments cuDNN's and cuBLAS's kernels too)
  const auto outs = projected_outputs<Net, DType::f16>(w, in, 256, strata_test::quick_run() ? std::vector<int>{1} : std::vector<int>{5, 1}, cuda::Variant{"expand_depthwise", 0, 0, 1},
                                                       "the 1x1 projection after it on tensor cores too",
                                                       cuda::Variant{"depthwise_band", 0, 0, 2},
                                                       "the 1x1 projection after it on tensor cores in the same block", 6);
  for (const auto& out : outs) {
    const double err = strata_test::rel_error(out, ref, out.size());
    MESSAGE("MobileNetV2 f16, expand_depthwise fuse 1 and depthwise_band fuse 2 forced, batch " << out.size() / 1000 << ": rel. error " << err);
    CHECK(err < 1e-2);
  }
}

namespace {
constexpr const char* kClusterMark = "(a cluster: the projection's sums exchanged on chip)";

/// Net's outputs in P at each of `batches` from an engine of max batch `mb` (heuristic tuning,
/// the per-op path) that joins inverted-residual blocks at small batches (EngineOptions::
/// block_clusters; not where `clusters` is false), with expand_depthwise's cluster form in shape
/// `code` forced on every block it fits (0: the heuristic's choices). The blocks are the joins
/// fold_projected_depthwise makes with an expansion (at least `least`). On compute capability
/// 9.0 on, checks which run the cluster form at every batch: where the engine joins them by
/// itself (max batches up to cluster_max_batch, where the heuristic claims them) all of them,
/// else the forced ones — none without `clusters` or a shape.
template <class Net, DType P>
std::vector<std::vector<float>> cluster_outputs(const Weights<Net>& w, const std::vector<float>& in, int mb,
                                                const std::vector<int>& batches, int code, std::size_t least,
                                                bool clusters = true) {
  namespace ed = cuda::tactics::expand_dw;
  cuda::EngineOptions opt;
  opt.max_batch = mb;
  opt.tuning = cuda::Tuning::heuristic;
  opt.fused_max_batch = 0;
  opt.block_clusters = clusters;
  cuda::NetDesc all = cuda::NetStorage<Net, P>::describe();
  cuda::fold_for_per_op_path(all);
  cuda::fold_projected_depthwise(all);
  std::size_t blocks = 0;
  std::size_t forced = 0;
  for (const cuda::OpDesc& op : all.ops) {
    if (op.project && op.expand) {
      ++blocks;
      if (code != 0 && ed::cluster_plan(op, code).nc > 0) {
        opt.force[op.label] = cuda::Variant{"expand_depthwise", 3, code, 1};
        ++forced;
      }
    }
  }
  REQUIRE(blocks >= least);
  REQUIRE((code == 0 || forced > 0));
  const bool hopper = cuda::device_arch() >= 90;
  if (!hopper) {
    opt.force.clear();  // (the cluster form needs 9.0: the blocks run as their ops)
  }
  // The engine's joins: every block where it joins them itself, else the forced ones.
  cuda::NetDesc net = cuda::NetStorage<Net, P>::describe();
  cuda::fold_for_per_op_path(net);
  cuda::fold_for_max_batch(net, opt, false);
  const auto joined = static_cast<std::size_t>(std::count_if(
      net.ops.begin(), net.ops.end(), [](const cuda::OpDesc& op) { return op.project && op.expand; }));
  const std::size_t want = !hopper ? 0 : clusters && mb <= ed::cluster_max_batch ? blocks : forced;
  CHECK(joined == want);
  cuda::Engine<Net, P> e(w, opt);
  std::vector<std::vector<float>> outs;
  const std::size_t out_n = static_cast<std::size_t>(std::remove_cvref_t<Net>::output_spec.shape.numel());
  for (const int b : batches) {
    const std::string d = e.describe(b);
    INFO(d);
    std::size_t shown = 0;
    for (std::size_t at = d.find(kClusterMark); at != std::string::npos; at = d.find(kClusterMark, at + 1)) {
      ++shown;
    }
    if (shown != want) {  // (which joined op runs otherwise)
      for (const cuda::OpDesc& op : net.ops) {
        const std::size_t at = ("\n" + d).find("\n" + op.label + ": ");
        if (op.project && op.expand && at != std::string::npos) {
          const std::string line = d.substr(at, d.find('\n', at) - at);
          if (line.find(kClusterMark) == std::string::npos) {
            MESSAGE("shape " << code << ", batch " << b << ", not in the cluster form: " << line.substr(0, 400));
          }
        }
      }
    }
    CHECK(shown == want);
    outs.emplace_back(static_cast<std::size_t>(b) * out_n, std::numeric_limits<float>::quiet_NaN());
    e.infer(in, outs.back(), b);
  }
  return outs;
}

/// ProjectNet's two inverted-residual blocks in the cluster form, in P: the heuristic's shapes (an
/// engine of max batch cluster_max_batch, at 1 and that) and every shape forced (tiles of 8x8,
/// 4x8 and 4x4; chunks of 16, 32 and 48 of its 96 slots: clusters of 2 to 6 blocks; an engine of
/// max batch 17, where the heuristic keeps the ops apart), against the CPU and the engine that
/// keeps the ops apart, at batches 1, 3 and 17 (1 and 3 under STRATA_GPU_TEST_QUICK).
template <DType P>
void check_cluster_blocks(std::uint64_t seed) {
  const std::vector<int> batches = strata_test::test_batches({1, 3, 17});
  const int mb = *std::max_element(batches.begin(), batches.end());
  const auto w = Weights<ProjectNet>::random(seed);
  const auto in = strata_test::random_floats(static_cast<std::size_t>(mb * ProjectNet::input_spec.shape.numel()), seed + 1);
  const auto ref = strata_test::cpu_reference<ProjectNet>(w, in, mb);
  const auto apart = cluster_outputs<ProjectNet, P>(w, in, mb, batches, 0, 0, false);
  const double bound = P == DType::bf16 ? 3e-2 : 1e-2;
  std::vector<int> codes{0};
  for (const int t : {1, 2, 3}) {
    for (const int nc : {16, 32, 48}) {
      codes.push_back(1000 * t + nc);
    }
  }
  {  // as the heuristic claims them, in an engine of max batch cluster_max_batch
    const int cm = cuda::tactics::expand_dw::cluster_max_batch;
    const std::vector<int> small{1, cm};
    const auto outs = cluster_outputs<ProjectNet, P>(w, in, cm, small, 0, 2);
    const auto ref_small = strata_test::cpu_reference<ProjectNet>(w, in, cm);
    for (std::size_t i = 0; i < small.size(); ++i) {
      const double e1 = strata_test::rel_error(outs[i], ref_small, outs[i].size());
      MESSAGE("project_net " << dtype_name(P) << ", the cluster form as claimed at max batch " << cm << ", batch "
                             << small[i] << ": rel. error " << e1);
      CHECK(e1 < bound);
    }
  }
  for (const int code : codes) {
    const auto outs = cluster_outputs<ProjectNet, P>(w, in, mb, batches, code, 2);
    for (std::size_t i = 0; i < batches.size(); ++i) {
      const double e1 = strata_test::rel_error(outs[i], ref, outs[i].size());
      const double e0 = strata_test::rel_error(apart[i], ref, apart[i].size());
      const double e10 = strata_test::rel_error(outs[i], apart[i], outs[i].size());
      MESSAGE("project_net " << dtype_name(P) << ", cluster shape " << (code == 0 ? std::string("(heuristic)") : std::to_string(code))
                             << ", batch " << batches[i] << ": rel. error " << e1 << ", apart " << e0
                             << ", against apart " << e10);
      CHECK(e1 < bound);
      CHECK(e10 < bound);
    }
  }
}
}  // namespace

// expand_depthwise algo 3 (the cluster form; EngineOptions::block_clusters): at small batches an
// inverted-residual block's expansion, depthwise conv and projection as one kernel, a tile's
// chunks of expanded channels split over a thread-block cluster and the projection's partial
// sums exchanged in distributed shared memory. project_net's blocks in f16 and bf16 in every
// shape; MobileNetV2 as the heuristic runs it at max batch 1 (its sixteen blocks: 24 to 320
// output channels, strides 1 and 2, residual or not, 56x56 to 7x7 maps) and in two forced shapes
// at batches 1 and 4 (chunks of 16: 3 to 4 chunks a block in its late stages), against the CPU.
TEST_CASE("an inverted-residual block as one cluster kernel at small batches (expand_depthwise algo 3)") {
  check_cluster_blocks<DType::f16>(160);
  check_cluster_blocks<DType::bf16>(161);
  using Net = models::MobileNetV2;
  const auto w = Weights<Net>::random(162);
  const auto in = strata_test::random_floats(static_cast<std::size_t>(4 * Net::input_spec.shape.numel()), 163);
  const auto ref = strata_test::cpu_reference<Net>(w, in, 4);
  const std::vector<int> batches = strata_test::quick_run() ? std::vector<int>{1} : std::vector<int>{1, 4};
  for (const int code : {0, 3016, 2032}) {
    // (shape 0: an engine of max batch 1, where the heuristic claims every block; forced shapes at 4)
    const auto outs = cluster_outputs<Net, DType::f16>(w, in, code == 0 ? 1 : 4,
                                                       code == 0 ? std::vector<int>{1} : batches, code, 16);
    for (const auto& out : outs) {
      const double err = strata_test::rel_error(out, ref, out.size());
      MESSAGE("MobileNetV2 f16, the cluster form " << (code == 0 ? std::string("as claimed") : "in shape " + std::to_string(code))
                                                 << ", batch " << out.size() / 1000 << ": rel. error " << err);
      CHECK(err < 1e-2);
    }
  }
}

TEST_CASE("the depthwise strip kernel, forced: 3x3 at strides 1 and 2, strips cut by the map, f(0) != 0 on load") {
  check_depthwise_forced<DepthwiseNet, DType::f16>(2, 17, {1, 3, 17}, 80);
  check_depthwise_forced<DepthwiseNet, DType::bf16>(2, 17, {1, 3, 17}, 81);
  check_depthwise_forced<DeferredNet, DType::f16>(2, 120, {120, 5}, 82);
  check_depthwise_forced<RowsNet, DType::f16>(2, 17, {1, 3, 17}, 83);
  check_depthwise_forced<RowsNet, DType::bf16>(2, 17, {1, 17}, 84);
  // All 17 of MobileNetV2's depthwise convs (ReLU6 on load; maps 112 to 7, 32 to 960 channels:
  // 4 to 15 vectors a block), as the heuristic runs them at batch 256.
  check_depthwise_forced<models::MobileNetV2, DType::f16>(2, 2, {2}, 85);
  // EfficientNet-B0's 3x3 ones (SiLU on load, strides 1 and 2, 32 to 1152 channels: 4 to 16
  // vectors a block).
  check_depthwise_forced<models::EfficientNetB0, DType::f16>(2, 2, {2}, 86);
}

TEST_CASE("MobileNetV2's and EfficientNet-B0's stems with tiles for a small batch (tile_conv math 2)") {
  // The 3x3/2 stem over 224x224 (112x112 outputs, no pool) with tiles for one image on this GPU's
  // SMs (tile::choose_for), from the input step's map, on mma.sync and on wgmma where the GPU has
  // it, against the CPU at batches 1 and 5 (forced; passed on an H200 in session 29).
  using strata_test::check_forced;
  const auto stem = [](const cuda::OpDesc& op) { return op.conv.s2d; };
  const char* small = "(sized for a small batch)";
  {  // claimed by the heuristic at batches <= tile::small_batch (session 30), reading the
     // caller's input: MobileNetV2 at 4 images and at 1, against the CPU
    constexpr int kB = cuda::tactics::tile::small_batch;
    using Net = models::MobileNetV2;
    const auto w = Weights<Net>::random(133);
    const auto in = strata_test::random_floats(static_cast<std::size_t>(kB) * Net::input_spec.shape.numel(), 233);
    const auto ref = strata_test::cpu_reference<Net>(w, in, kB);
    cuda::EngineOptions opt;
    opt.max_batch = kB;
    opt.tuning = cuda::Tuning::heuristic;
    opt.fused_max_batch = 0;
    cuda::Engine<Net, DType::f16> e(w, opt);
    for (const int b : {kB, 1}) {
      const std::string d = e.describe(b);
      INFO(d);
      const std::size_t at = d.find("features.0.conv0");
      REQUIRE(at != std::string::npos);
      const std::string line = d.substr(at, d.find('\n', at) - at);
      CHECK(line.find("strata tiled tensor-core conv") != std::string::npos);
      CHECK(line.find(small) != std::string::npos);
      CHECK(line.find("reads the caller's input") != std::string::npos);
      CHECK(line.find(cuda::tactics::mma::wgmma_device() ? "(wgmma" : "(mma.sync") != std::string::npos);
      CHECK(d.find("\ninput: ") == std::string::npos);  // no input step
      CHECK(d.rfind("input: ", 0) != 0);
      std::vector<float> out(static_cast<std::size_t>(b) * 1000, std::numeric_limits<float>::quiet_NaN());
      e.infer(in, out, b);
      const double err = strata_test::rel_error(out, ref, out.size());
      MESSAGE("MobileNetV2 f16 heuristic, batch " << b << " (stem on tile_conv math 2): rel. error " << err);
      CHECK(err < strata_test::tolerance(DType::f16));
    }
  }
  check_forced<models::MobileNetV2, DType::f16>("tile_small_mv2", 131, cuda::Variant{"tile_conv", 0, 2, 0}, small,
                                                nullptr, stem);
  if (cuda::tactics::mma::wgmma_device()) {
    check_forced<models::EfficientNetB0, DType::f16>("tile_small_eb0", 132, cuda::Variant{"tile_conv", 3, 2, 0},
                                                     small, "mma.sync", stem);
  }
}

namespace {
// A network's last conv with ReLU6 (MobileNetV2's features.18) or SiLU (EfficientNet's head),
// read only by the global average pool: too large for the fused-network kernel, so 16-bit
// storage defers the activation into the pool's read (defer_activations).
constexpr auto relu6_head = input<64, 32, 32> | conv<1024, 1> | batch_norm | relu6 | global_avg_pool |
                            flatten | dense<10>;
constexpr auto silu_head = input<64, 32, 32> | conv<1024, 1> | batch_norm | silu | global_avg_pool |
                           flatten | dense<10>;
using Relu6Head = std::remove_cv_t<decltype(relu6_head)>;
using SiluHead = std::remove_cv_t<decltype(silu_head)>;
static_assert(!cuda::NetStorage<Relu6Head, DType::f16>::fused_fit().fits);
static_assert(!cuda::NetStorage<SiluHead, DType::bf16>::fused_fit().fits);
}  // namespace

// The activation applied by the pool as it sums (the conv stores the batch norm's output): in an
// engine of max batch 1 the head as one kernel (gap_dense, forced), and in one of max
// batch 65 the pool kernel — at 1 and 3 with an image's pixels split over blocks, at 65 a block
// an image (global_avg_pool_rows_kernel) — followed by the dense layer; against the CPU in every
// precision (f32 and tf32 keep the activation with the conv).
TEST_CASE("a last conv's ReLU6 or SiLU applied by the global average pool as it reads (the head, the pool kernels)") {
  const cuda::NetDesc n = cuda::NetStorage<Relu6Head, DType::f16>::describe();
  REQUIRE(n.ops[0].act.kind == Act::none);
  REQUIRE(n.ops[1].in_act.kind == Act::clip);
  {
    cuda::EngineOptions opt;
    opt.max_batch = 65;
    cuda::Engine<Relu6Head, DType::f16> e(Weights<Relu6Head>::random(160), opt);
    for (const int b : {1, 3, 65}) {
      const std::string d = e.describe(b);
      INFO(d);
      CHECK(d.find("applied as it") != std::string::npos);
    }
  }
  {  // the head as one kernel: gap_dense with the ReLU6 in its source
    const auto w = Weights<Relu6Head>::random(163);
    const auto in = strata_test::random_floats(static_cast<std::size_t>(Relu6Head::input_spec.shape.numel()), 164);
    const auto ref = strata_test::cpu_reference<Relu6Head>(w, in, 1);
    // (forced: the heuristic claims gap_dense at batch 1 for maps up to 7x7x2048, this one is
    // 32x32x1024)
    cuda::NetDesc folded = cuda::NetStorage<Relu6Head, DType::f16>::describe();
    cuda::fold_for_per_op_path(folded);
    std::string head;
    for (const cuda::OpDesc& op : folded.ops) {
      if (op.gap) {
        head = op.label;
      }
    }
    REQUIRE(!head.empty());
    cuda::EngineOptions opt;
    opt.max_batch = 1;
    opt.force[head] = cuda::Variant{"gap_dense", 8, 0, 0};
    cuda::Engine<Relu6Head, DType::f16> e(w, opt);
    const std::string d = e.describe(1);
    INFO(d);
    CHECK(d.find("the producer's activation applied as it is averaged") != std::string::npos);
    strata_test::check_batches(e, in, ref, {1}, "relu6 head, gap_dense");
  }
  strata_test::check_all_precisions<Relu6Head>(65, {1, 3, 65}, "relu6 head", 161);
  strata_test::check_all_precisions<SiluHead>(65, {1, 3, 65}, "silu head", 162);
}
