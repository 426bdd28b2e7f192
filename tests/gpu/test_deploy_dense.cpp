// DenseNet's kernels on the GPU against the CPU reference and the unfused plan: a batch norm
// folded into the 1x1 conv after it (normed_conv, its transition forms), into split-K convs and
// the head's pool; halo_conv's size-keeping convs; bottleneck_conv (a layer as one kernel, and
// its cluster form). (Split from test_deploy_layers.cpp; the nets are in deploy_nets.hpp.)
#include "deploy_nets.hpp"

using namespace strata_test::deploy;  // the nets, kBatches, kMax, describe; strata

TEST_CASE("a batch norm folded into the 1x1 conv after it: applied as the conv loads its input, the normalized map never stored") {
  const auto normed = [](const cuda::OpDesc& op) { return op.norm != nullptr && op.kind == OpKind::conv; };
  cuda::NetDesc d121 = cuda::NetStorage<models::DenseNet121, DType::f16>::describe();
  cuda::fold_for_per_op_path(d121);
  // every layer's norm1+relu1, and the three transitions' (with their pools); (norm5's, into the
  // head: fold_normed_pooled_dense)
  CHECK(std::count_if(d121.ops.begin(), d121.ops.end(), normed) == 61);
  CHECK(d121.ops.back().norm != nullptr);
  const auto pooled = [](const cuda::OpDesc& op) { return op.norm != nullptr && op.pool.has_value(); };
  const auto unpooled = [](const cuda::OpDesc& op) { return op.norm != nullptr && !op.pool && op.kind == OpKind::conv; };
  using strata_test::check_forced;
  const char* shows = "strata batch norm + 1x1 conv";
  // 12x12 maps: 144 pixels an image, so blocks of 128 and 64 pixels end inside an image and past
  // the batch; 16 and 24 input slots (a partial reduction step), 16 output slots of a 32-wide block.
  // (Its last batch norm, over 32 slots before a pooled 1x1, joins its conv too since session 34's
  // plan rule: the unpooled forms are forced on the others, the pooled ones on it below.)
  check_forced<DenseBlockNet, DType::f16>("normed_dense_f16", 130, cuda::Variant{"normed_conv"}, shows,
                                          ", then", unpooled);
  check_forced<DenseBlockNet, DType::bf16>("normed_dense_bf16", 131, cuda::Variant{"normed_conv", 1},
                                           "blocks of 64 pixels", ", then", unpooled);
  check_forced<models::DenseNet121, DType::f16>("normed_d121_f16", 132, cuda::Variant{"normed_conv"},
                                                "of the concat in place", ", then", unpooled);
  check_forced<models::DenseNet121, DType::bf16>("normed_d121_bf16", 133, cuda::Variant{"normed_conv", 1},
                                                 "blocks of 64 pixels", ", then", unpooled);
  // The transitions: the average pool in the epilogue, the next block's first channels written.
  check_forced<DenseBlockNet, DType::f16>("normed_dense_pool", 155, cuda::Variant{"normed_conv", 0, 0, 1},
                                          "average pool", ", then", pooled);
  check_forced<models::DenseNet121, DType::f16>("normed_d121_pool", 137, cuda::Variant{"normed_conv", 0, 0, 1},
                                                "average pool, writing channels 0..", ", then", pooled);
  check_forced<PooledNormNet, DType::f16>("normed_pool_f16", 138, cuda::Variant{"normed_conv", 0, 0, 1},
                                          "pool", ", then", pooled);
  check_forced<PooledNormNet, DType::bf16>("normed_pool_bf16", 139, cuda::Variant{"normed_conv", 1, 0, 1},
                                           "pool", ", then", pooled);
  // The pipelined form (algo 2): its ring of 4 steps of 32 slots, and of 3 of 64 (math 1).
  const char* piped = "pipelined: 4 steps of 32";
  const char* piped64 = "pipelined: 3 steps of 64";
  check_forced<DenseBlockNet, DType::f16>("normed_dense_p_f16", 140, cuda::Variant{"normed_conv", 2}, piped,
                                          ", then", unpooled);
  check_forced<DenseBlockNet, DType::bf16>("normed_dense_p_bf16", 141, cuda::Variant{"normed_conv", 2, 1},
                                           piped64, ", then", unpooled);
  check_forced<models::DenseNet121, DType::f16>("normed_d121_p_f16", 142, cuda::Variant{"normed_conv", 2},
                                                piped, ", then", unpooled);
  check_forced<models::DenseNet121, DType::bf16>("normed_d121_p_bf16", 143, cuda::Variant{"normed_conv", 2, 1},
                                                 piped64, ", then", unpooled);
  check_forced<models::DenseNet121, DType::f16>("normed_d121_p_pool", 144, cuda::Variant{"normed_conv", 2, 0, 1},
                                                "average pool, writing channels 0..", ", then", pooled);
  check_forced<PooledNormNet, DType::f16>("normed_pool_p_f16", 145, cuda::Variant{"normed_conv", 2, 1, 1},
                                          piped64, ", then", pooled);
  check_forced<PooledNormNet, DType::bf16>("normed_pool_p_bf16", 146, cuda::Variant{"normed_conv", 2, 0, 1},
                                           piped, ", then", pooled);
  // ... and with blocks of 64 pixels (algo 3).
  check_forced<DenseBlockNet, DType::f16>("normed_dense_p64", 147, cuda::Variant{"normed_conv", 3},
                                          "blocks of 64 pixels x 32 channels, pipelined: 4 steps of 32", ", then", unpooled);
  check_forced<models::DenseNet121, DType::f16>("normed_d121_p64", 148, cuda::Variant{"normed_conv", 3, 1},
                                                "blocks of 64 pixels x 128 channels, pipelined: 3 steps of 64", ", then", unpooled);
  check_forced<PooledNormNet, DType::bf16>("normed_pool_p64", 149, cuda::Variant{"normed_conv", 3, 0, 1},
                                           "blocks of 64 pixels x 32 channels, pipelined", ", then", pooled);
  // The folded form (algo 2, math 2): the ReLU batch norm's scale folded into the filter, one
  // packed fma.relu a channel pair (the pass's rounding differs: within the CPU check's bound).
  const auto folds = [](const cuda::OpDesc& op) {
    return op.norm != nullptr && cuda::tactics::normed::fold_fits(op);
  };
  const auto folds_unpooled = [](const cuda::OpDesc& op) {
    return op.norm != nullptr && !op.pool && cuda::tactics::normed::fold_fits(op);
  };
  const char* folded = "the norm's scale folded into the filter: one fma a channel pair; blocks of 128";
  check_forced<models::DenseNet121, DType::f16>("normed_d121_fold", 171, cuda::Variant{"normed_conv", 2, 2},
                                                folded, ", then", folds_unpooled);
  check_forced<models::DenseNet121, DType::bf16>("normed_d121_fold_bf16", 172, cuda::Variant{"normed_conv", 2, 2},
                                                 folded, ", then", folds_unpooled);
  check_forced<models::DenseNet121, DType::f16>("normed_d121_fold_pool", 173, cuda::Variant{"normed_conv", 2, 2, 1},
                                                folded, ", then", [](const cuda::OpDesc& op) {
                                                  return op.norm != nullptr && op.pool.has_value();
                                                });
  check_forced<models::DenseNet121, DType::f16>("normed_d121_fold_pf", 176, cuda::Variant{"normed_conv", 1, 2, 2},
                                                "folded into the filter: one fma a channel pair; blocks of 64 pixels x 128 "
                                                "channels, its 2x2 average pool taken first",
                                                ", then", [](const cuda::OpDesc& op) {
                                                  return op.norm != nullptr && op.pool.has_value();
                                                });
  check_forced<models::DenseNet121, DType::bf16>("normed_d121_fold_pf0", 177, cuda::Variant{"normed_conv", 0, 2, 2},
                                                 "folded into the filter", ", then", [](const cuda::OpDesc& op) {
                                                   return op.norm != nullptr && op.pool.has_value();
                                                 });
  check_forced<DenseBlockNet, DType::f16>("normed_dense_fold0", 178, cuda::Variant{"normed_conv", 0, 2}, "folded into the filter",
                                          ", then", folds_unpooled);
  check_forced<models::DenseNet121, DType::f16>("normed_d121_fold64", 179, cuda::Variant{"normed_conv", 2, 3},
                                                "folded into the filter: one fma a channel pair; blocks of 128 pixels x 64",
                                                ", then", folds_unpooled);
  check_forced<models::DenseNet121, DType::bf16>("normed_d121_fold64_pool", 180, cuda::Variant{"normed_conv", 2, 3, 1},
                                                 "blocks of 128 pixels x 64 channels", ", then", [](const cuda::OpDesc& op) {
                                                   return op.norm != nullptr && op.pool.has_value();
                                                 });
  check_forced<DenseBlockNet, DType::f16>("normed_dense_fold", 174, cuda::Variant{"normed_conv", 2, 2}, folded,
                                          ", then", folds_unpooled);
  check_forced<DenseBlockNet, DType::bf16>("normed_dense_fold_bf16", 175, cuda::Variant{"normed_conv", 2, 2},
                                           folded, ", then", folds_unpooled);
  {  // (PooledNormNet's batch norms, ReLU6 and hardswish, do not fold)
    cuda::NetDesc pn = cuda::NetStorage<PooledNormNet, DType::f16>::describe();
    cuda::fold_for_per_op_path(pn);
    CHECK(std::count_if(pn.ops.begin(), pn.ops.end(), normed) == 2);
    CHECK_FALSE(std::any_of(pn.ops.begin(), pn.ops.end(), folds));
  }
  // The average pool taken first (fuse 2): the conv over the pooled pixels, each element of its
  // input the window's four normalized, averaged and rounded (forms 0 and 1; the transitions,
  // DenseBlockNet's last and PooledNormNet's second conv, not its max-pooled first).
  const auto pool_first = [](const cuda::OpDesc& op) {
    return op.norm != nullptr && cuda::tactics::normed::pool_first_fits(op);
  };
  const char* firsts = "average pool taken first, on the input";
  check_forced<models::DenseNet121, DType::f16>("normed_d121_pf", 166, cuda::Variant{"normed_conv", 0, 0, 2},
                                                firsts, ", then", pool_first);
  check_forced<models::DenseNet121, DType::bf16>("normed_d121_pf64", 167, cuda::Variant{"normed_conv", 1, 0, 2},
                                                 firsts, ", then", pool_first);
  check_forced<DenseBlockNet, DType::f16>("normed_dense_pf", 168, cuda::Variant{"normed_conv", 0, 0, 2}, firsts,
                                          ", then", pool_first);
  check_forced<PooledNormNet, DType::bf16>("normed_pool_pf", 169, cuda::Variant{"normed_conv", 1, 0, 2}, firsts,
                                           ", then", pool_first);
  check_forced<PooledNormNet, DType::f16>("normed_pool_pf_f16", 170, cuda::Variant{"normed_conv", 0, 0, 2}, firsts,
                                          ", then", pool_first);
  // The warpgroup form (algo 4, sm_90a; written in session 34 without a GPU): n32 (DenseBlockNet's
  // 16 slots of a 32-wide block) and n128 MMAs, every shape above, pooled and not.
  if (cuda::device_arch() == 90) {
    const char* wg = "loaded, wgmma; blocks of 128 pixels";
    check_forced<DenseBlockNet, DType::f16>("normed_dense_wg_f16", 156, cuda::Variant{"normed_conv", 4}, wg,
                                            ", then", unpooled);
    check_forced<DenseBlockNet, DType::bf16>("normed_dense_wg_bf16", 157, cuda::Variant{"normed_conv", 4}, wg,
                                             ", then", unpooled);
    check_forced<DenseBlockNet, DType::bf16>("normed_dense_wg_pool", 158, cuda::Variant{"normed_conv", 4, 0, 1},
                                             wg, ", then", pooled);
    check_forced<models::DenseNet121, DType::f16>("normed_d121_wg_f16", 159, cuda::Variant{"normed_conv", 4}, wg,
                                                  ", then", unpooled);
    check_forced<models::DenseNet121, DType::bf16>("normed_d121_wg_bf16", 160, cuda::Variant{"normed_conv", 4},
                                                   wg, ", then", unpooled);
    check_forced<models::DenseNet121, DType::f16>("normed_d121_wg_pool", 161, cuda::Variant{"normed_conv", 4, 0, 1},
                                                  "average pool, writing channels 0..", ", then", pooled);
    check_forced<PooledNormNet, DType::f16>("normed_pool_wg_f16", 162, cuda::Variant{"normed_conv", 4, 0, 1}, wg,
                                            ", then", pooled);
    check_forced<PooledNormNet, DType::bf16>("normed_pool_wg_bf16", 163, cuda::Variant{"normed_conv", 4, 0, 1}, wg,
                                             ", then", pooled);
    // math 1: blocks of 64 slots (two or more blocks across a layer's 128 and the transitions' 128-512)
    const char* wg64 = "loaded, wgmma; blocks of 128 pixels x 64 channels";
    check_forced<models::DenseNet121, DType::f16>("normed_d121_wg64", 164, cuda::Variant{"normed_conv", 4, 1}, wg64,
                                                  ", then", unpooled);
    check_forced<models::DenseNet121, DType::bf16>("normed_d121_wg64_pool", 165,
                                                   cuda::Variant{"normed_conv", 4, 1, 1}, wg64, ", then", pooled);
  }
  // Any other tactic runs the joined op as the batch norm's pass (reading the concat in place),
  // then the conv. (The last, pooled one reads a tensor of its own: lt_conv1x1 runs no pool.)
  check_forced<DenseBlockNet, DType::f16>("normed_dense_lt", 134, cuda::Variant{"lt_conv1x1"},
                                          "strata pointwise (reads channels 0..", nullptr, unpooled);
  // The heuristic's plan at batch 256: every joined op of blocks 1-3 (42) and the three transitions,
  // not block 4's 7x7 ones (98 blocks of 128 pixels: bottleneck_conv runs each layer whole).
  {
    const std::string d = describe<models::DenseNet121, DType::f16>(256);
    std::size_t joined = 0;
    for (std::size_t at = d.find(shows); at != std::string::npos; at = d.find(shows, at + 1)) {
      ++joined;
    }
    INFO(d);
    CHECK(joined == 43);  // (and two transitions as a pass and cuBLASLt, below)
    // the 42 layers' in the pipelined form (algo 2), the transitions' with their pools taken
    // first, in 64-pixel blocks (algo 1) the first's, as a pass and cuBLASLt (algo 6) the other two
    std::size_t piped_ops = 0;
    for (std::size_t at = d.find(piped); at != std::string::npos; at = d.find(piped, at + 1)) {
      ++piped_ops;
    }
    CHECK(piped_ops == 42);
    std::size_t firsts_ops = 0;
    const std::string first64 = "blocks of 64 pixels x 128 channels, its 2x2 average pool taken first";
    for (std::size_t at = d.find(first64); at != std::string::npos; at = d.find(first64, at + 1)) {
      ++firsts_ops;
    }
    CHECK(firsts_ops == 1);
    std::size_t pass_ops = 0;
    const std::string pass = "2x2 average pool pass (the pool taken first, into a map of the pooled pixels)";
    for (std::size_t at = d.find(pass); at != std::string::npos; at = d.find(pass, at + 1)) {
      ++pass_ops;
    }
    CHECK(pass_ops == 2);
    // (block 4's layers, 98 blocks of 128 pixels, each one bottleneck_conv kernel since session 37)
    CHECK(d.find("features.denseblock4.denselayer16.norm1+relu1+conv1+norm2+relu2+conv2: strata bottleneck + conv") !=
          std::string::npos);
  }
  // The two ways agree with each other (and each with the CPU, above) at a batch of 17.
  const auto w = Weights<DenseBlockNet>::random(135);
  const auto in = strata_test::random_floats(
      static_cast<std::size_t>(17 * DenseBlockNet::input_spec.shape.numel()), 136);
  const auto fused = strata_test::forced_output<DenseBlockNet, DType::f16>(
      w, in, 17, 17, unpooled, 2, cuda::Variant{"normed_conv"}, shows);
  const auto apart = strata_test::forced_output<DenseBlockNet, DType::f16>(
      w, in, 17, 17, unpooled, 2, cuda::Variant{"lt_conv1x1"}, "strata pointwise");
  const double err = strata_test::rel_error(fused, apart, fused.size());
  MESSAGE("dense block f16, batch 17: normed_conv against the batch norm's pass + cuBLASLt: rel. error " << err);
  CHECK(err < 5e-3);
  const auto piped17 = strata_test::forced_output<DenseBlockNet, DType::f16>(
      w, in, 17, 17, unpooled, 2, cuda::Variant{"normed_conv", 2}, piped);
  const double err2 = strata_test::rel_error(piped17, apart, piped17.size());
  MESSAGE("dense block f16, batch 17: normed_conv algo 2 against the batch norm's pass + cuBLASLt: rel. error " << err2);
  CHECK(err2 < 5e-3);
}

// splitk_conv fuse 3 (session 41, written without a GPU): the batch norm applied as the split-K
// kernel stages its input — each 8-slot chunk normalized in shared memory by the thread that
// copied it — so DenseNet's norm1+relu1+conv1 is one launch at small batches. Forced on every
// layer's joined op, against the CPU: DenseBlockNet (16 and 24 slots, one partial k-step, the
// slices met in the workspace's form, unsplit) and DenseNet-121 (the concatenation read in place,
// 64 to 992 slots in clusters of 8 — on block 1's first layers most slices empty — and of 16 with
// 8 staged k-steps); then against the batch norm's pass + the same split-K conv at batches 5 and 1.
TEST_CASE("splitk_conv fuse 3: a batch norm applied as the split-K conv stages its input; concat slices written in place") {
  using strata_test::check_forced;
  const auto joins = [](const cuda::OpDesc& op) { return cuda::tactics::splitk::fuses_norm(op); };
  const char* staged = "the batch norm applied as the input is staged";
  check_forced<DenseBlockNet, DType::f16>("sk_norm_dense_f16", 190, cuda::Variant{"splitk_conv", 0, 0, 3}, staged,
                                          ", then", joins);
  check_forced<DenseBlockNet, DType::bf16>("sk_norm_dense_bf16", 191, cuda::Variant{"splitk_conv", 0, 0, 3}, staged,
                                           ", then", joins);
  // ... and the ops writing its concatenation's slices — the first conv (channels 0..15, reading
  // the network's input) and the 3x3 convs' 8 channels each (16 input slots: 5 k-steps) — written
  // in place by the workspace form, no copy after them.
  const auto slice3 = [](const cuda::OpDesc& op) {
    return op.kind == OpKind::conv && op.conv.kh == 3 && op.slice && !op.pool;
  };
  check_forced<DenseBlockNet, DType::f16>("sk_slice_dense_f16", 197, cuda::Variant{"splitk_conv"},
                                          "of a concat, ", ", then", slice3);
  if (cuda::device_arch() < 90) {
    MESSAGE("splitk_conv fuse 3 in clusters not checked: this GPU is not of compute capability 9.0");
    return;
  }
  check_forced<models::DenseNet121, DType::f16>("sk_norm_d121_f16", 192, cuda::Variant{"splitk_conv", 8, 0, 3},
                                                staged, ", then", joins);
  check_forced<models::DenseNet121, DType::bf16>("sk_norm_d121_bf16", 193, cuda::Variant{"splitk_conv", 16, 1, 3},
                                                 staged, ", then", joins);
  // Every form writes a concat's slice itself (session 41): DenseNet-121's 3x3 convs (32 channels
  // of the block's concatenation) forced onto clusters of 8, no copy after them.
  check_forced<models::DenseNet121, DType::f16>("sk_slice_d121_f16", 196, cuda::Variant{"splitk_conv", 8},
                                                "of a concat, ", ", then", slice3);
  // Against the pass + the same split-K conv (fuse 0: the batch norm's kernel first): the same
  // normalized values, the same sums in the same order.
  constexpr int kB = 5;
  const auto w = Weights<models::DenseNet121>::random(194);
  const auto in = strata_test::random_floats(
      static_cast<std::size_t>(kB) * static_cast<std::size_t>(models::DenseNet121::input_spec.shape.numel()), 195);
  for (const int b : {kB, 1}) {
    const auto joined = strata_test::forced_output<models::DenseNet121, DType::f16>(
        w, in, kB, b, joins, 58, cuda::Variant{"splitk_conv", 8, 0, 3}, staged);
    const auto apart = strata_test::forced_output<models::DenseNet121, DType::f16>(
        w, in, kB, b, joins, 58, cuda::Variant{"splitk_conv", 8}, "then strata split-K conv");
    const double diff = strata_test::rel_error(joined, apart, joined.size());
    MESSAGE("DenseNet-121 f16 batch " << b << ", splitk_conv fuse 3 against the pass + fuse 0: rel. difference "
                                      << diff << (joined == apart ? " (equal to the bit)" : ""));
    CHECK(std::none_of(joined.begin(), joined.end(), [](float f) { return std::isnan(f); }));
    CHECK(diff < 2e-3);
  }
  // The heuristic's plan at batch 1 on 132 SMs (an H100's or H200's; the rules from measured
  // tuning on an H200, session 42): 48 joined layers in fuse 3, the other 10 in normed_conv's
  // folded form, the three transitions as normed_conv's pass + cuBLASLt; every 3x3 conv split-K
  // writing its slice — no copy into a slice and no batch norm pass of its own before a conv;
  // and its output against the CPU's in f16 and bf16 (an engine of maximum batch 1: the variants
  // are chosen for the maximum batch, so the network tests' batch-1 runs take another plan).
  if (cuda::tactics::generated::device_sms().sms == 132) {
    const auto w1 = Weights<models::DenseNet121>::random(251);
    const auto in1 = strata_test::random_floats(static_cast<std::size_t>(models::DenseNet121::input_spec.shape.numel()), 252);
    const auto ref1 = strata_test::cpu_reference<models::DenseNet121>(w1, in1, 1);
    strata_test::check_engine<models::DenseNet121, DType::f16>(w1, in1, ref1, 1, {1}, "DenseNet-121 batch-1 plan");
    strata_test::check_engine<models::DenseNet121, DType::bf16>(w1, in1, ref1, 1, {1}, "DenseNet-121 batch-1 plan");
    const std::string d = describe<models::DenseNet121, DType::f16>(1);
    INFO(d);
    const auto count = [&](const std::string& text) {
      std::size_t n = 0;
      for (std::size_t at = d.find(text); at != std::string::npos; at = d.find(text, at + 1)) {
        ++n;
      }
      return n;
    };
    CHECK(count(staged) == 48);
    CHECK(count("folded into the filter") == 10);
    CHECK(count("2x2 average pool pass (the pool taken first") == 3);
    CHECK(count("split-K conv 3x3") == 58);
    CHECK(count("copy into") == 0);
    CHECK(count("reads channels 0..") == 0);
  } else {
    MESSAGE("DenseNet-121's batch-1 plan not checked: its rules are for 132 SMs, this GPU has "
            << cuda::tactics::generated::device_sms().sms);
  }
}

TEST_CASE("normed_conv algo 5: a transition's pool taken first on the pipelined ring, form 1's output to the bit") {
  // DenseNet-121's three transitions (batch norm, ReLU, 1x1 conv, 2x2 average pool; the scale
  // folded, math 2) forced onto algo 5 and onto form 1 (which the heuristic claims), every other
  // op alike: the same arithmetic in the same order (each thread normalizes and averages the
  // window's four positions it copied as form 1's store does; the same k order of the MMAs).
  const auto transitions = [](const cuda::OpDesc& op) { return op.norm != nullptr && op.pool.has_value(); };
  const int b = strata_test::quick_run() ? 3 : 17;
  const auto w = Weights<models::DenseNet121>::random(215);
  const auto in = strata_test::random_floats(
      static_cast<std::size_t>(b) * static_cast<std::size_t>(models::DenseNet121::input_spec.shape.numel()), 216);
  const char* piped = "pipelined: 3 steps of 32 input channels in flight, its 2x2 average pool taken first";
  const char* form1 = "blocks of 64 pixels x 128 channels, its 2x2 average pool taken first";
  const auto a = strata_test::forced_output<models::DenseNet121, DType::f16>(
      w, in, b, b, transitions, 3, cuda::Variant{"normed_conv", 5, 2, 2}, piped);
  const auto f = strata_test::forced_output<models::DenseNet121, DType::f16>(
      w, in, b, b, transitions, 3, cuda::Variant{"normed_conv", 1, 2, 2}, form1);
  CHECK(std::memcmp(a.data(), f.data(), a.size() * sizeof(float)) == 0);
  const auto ab = strata_test::forced_output<models::DenseNet121, DType::bf16>(
      w, in, b, b, transitions, 3, cuda::Variant{"normed_conv", 5, 2, 2}, piped);
  const auto fb = strata_test::forced_output<models::DenseNet121, DType::bf16>(
      w, in, b, b, transitions, 3, cuda::Variant{"normed_conv", 1, 2, 2}, form1);
  CHECK(std::memcmp(ab.data(), fb.data(), ab.size() * sizeof(float)) == 0);
  // ... and against the CPU (every other op measured, as check_forced does).
  strata_test::check_forced<models::DenseNet121, DType::f16>("normed_d121_pf_pipe", 217,
                                                             cuda::Variant{"normed_conv", 5, 2, 2}, piped, ", then",
                                                             transitions);
}

TEST_CASE("normed_conv algo 6: a transition's pool taken first by a pass, then cuBLASLt's GEMM over the pooled map") {
  using strata_test::check_forced;
  const auto pool_first = [](const cuda::OpDesc& op) {
    return op.norm != nullptr && cuda::tactics::normed::pool_first_fits(op);
  };
  const char* shows = "2x2 average pool pass (the pool taken first, into a map of the pooled pixels) + cublasLtMatmul";
  // Against the CPU: DenseBlockNet's transition (its result read by the global pool, no slice),
  // PooledNormNet's second conv (a hardswish batch norm; 8 channels), in f16 and bf16.
  check_forced<DenseBlockNet, DType::f16>("normed_dense_pass", 230, cuda::Variant{"normed_conv", 6, 0, 2}, shows,
                                          ", then", pool_first);
  check_forced<DenseBlockNet, DType::bf16>("normed_dense_pass_bf16", 231, cuda::Variant{"normed_conv", 6, 0, 2},
                                           shows, ", then", pool_first);
  check_forced<PooledNormNet, DType::f16>("normed_pool_pass", 232, cuda::Variant{"normed_conv", 6, 0, 2}, shows,
                                          ", then", pool_first);
  // DenseNet-121's three transitions (256, 512, 1,024 input channels into the next block's first
  // channels), every other op on the heuristic's plan: against the CPU, and against form 0 with
  // the pool taken first (math 0), whose GEMM input is the same to the bit (the same
  // normalization, rounding and averaging order) and whose sums differ only in their order (the
  // transitions have no bias: algo 6 adds a bias rounded to T in cuBLASLt's epilogue, form 0 in f32).
  const int b = strata_test::quick_run() ? 3 : 9;
  const auto w = Weights<models::DenseNet121>::random(233);
  const auto in = strata_test::random_floats(
      static_cast<std::size_t>(b) * static_cast<std::size_t>(models::DenseNet121::input_spec.shape.numel()), 234);
  const auto ref = strata_test::cpu_reference<models::DenseNet121>(w, in, b);
  const char* form0_shows = "blocks of 128 pixels x 128 channels, its 2x2 average pool taken first, on the input";
  for (const bool bf : {false, true}) {
    const auto pass = bf ? strata_test::forced_output<models::DenseNet121, DType::bf16>(
                               w, in, b, b, pool_first, 3, cuda::Variant{"normed_conv", 6, 0, 2}, shows)
                         : strata_test::forced_output<models::DenseNet121, DType::f16>(
                               w, in, b, b, pool_first, 3, cuda::Variant{"normed_conv", 6, 0, 2}, shows);
    const auto form0 = bf ? strata_test::forced_output<models::DenseNet121, DType::bf16>(
                                w, in, b, b, pool_first, 3, cuda::Variant{"normed_conv", 0, 0, 2}, form0_shows)
                          : strata_test::forced_output<models::DenseNet121, DType::f16>(
                                w, in, b, b, pool_first, 3, cuda::Variant{"normed_conv", 0, 0, 2}, form0_shows);
    const double to_cpu = strata_test::rel_error(pass, ref, pass.size());
    const double to_form0 = strata_test::rel_error(pass, form0, pass.size());
    MESSAGE("DenseNet-121 " << std::string(bf ? "bf16" : "f16") << ", batch " << b << ", transitions on algo 6: rel. error "
                            << to_cpu << " against the CPU, " << to_form0 << " against form 0");
    CHECK(to_cpu < (bf ? 3e-2 : 1e-2));
    CHECK(to_form0 < (bf ? 1e-2 : 2e-3));
  }
}

TEST_CASE("a batch norm before the head's global average pool: the map normalized as the pool reads it") {
  // The head's op with the batch norm folded in (fold_normed_pooled_dense) on normed_head (the
  // batch norm and the pool as one kernel, then cuBLASLt), on lt_dense and gap_dense (the batch
  // norm's pass first, into the pool's map), and on gap_dense fuse 1 (the batch norm applied as
  // the map is averaged: the head one kernel), against the CPU.
  cuda::NetDesc net = cuda::NetStorage<NormHeadNet, DType::f16>::describe();
  cuda::fold_for_per_op_path(net);
  REQUIRE(net.ops.back().norm != nullptr);
  REQUIRE(net.ops.back().gap.has_value());
  const std::string head = net.ops.back().label;
  constexpr int kB = 17;
  const auto w = Weights<NormHeadNet>::random(240);
  const auto in = strata_test::random_floats(static_cast<std::size_t>(kB * NormHeadNet::input_spec.shape.numel()), 241);
  const auto ref = strata_test::cpu_reference<NormHeadNet>(w, in, kB);
  const std::size_t n_out = static_cast<std::size_t>(NormHeadNet::output_spec.shape.numel());
  const auto run = [&]<DType P>(const cuda::Variant& v, int max_batch, std::initializer_list<int> batches,
                                const char* shows) {
    cuda::EngineOptions opt{.max_batch = max_batch, .fused_max_batch = 0};
    opt.force[head] = v;
    cuda::Engine<NormHeadNet, P> e(w, opt);
    for (const int b : batches) {
      const std::string runs = e.describe(b);
      INFO(runs);
      const std::size_t at = runs.find(head + ": ");
      REQUIRE(at != std::string::npos);
      CHECK(runs.substr(at, runs.find('\n', at) - at).find(shows) != std::string::npos);
      std::vector<float> out(static_cast<std::size_t>(b) * n_out, std::numeric_limits<float>::quiet_NaN());
      e.infer(std::span<const float>(in.data(), static_cast<std::size_t>(b) * NormHeadNet::input_spec.shape.numel()),
              out, b);
      const double err = strata_test::rel_error(out, ref, out.size());
      MESSAGE("norm head " << dtype_name(P) << " " << cuda::to_string(v) << ", batch " << b << ": rel. error " << err);
      CHECK(err < (P == DType::f16 ? 1e-2 : 3e-2));
    }
  };
  const char* fused = "strata batch norm + global_avg_pool (the map normalized as it is averaged";
  run.operator()<DType::f16>(cuda::Variant{"normed_head"}, kB, {1, 3, kB}, fused);
  run.operator()<DType::bf16>(cuda::Variant{"normed_head"}, kB, {1, kB}, fused);
  run.operator()<DType::f16>(cuda::Variant{"lt_dense"}, kB, {1, kB}, "strata pointwise");
  constexpr int small = cuda::tactics::gap_dense::max_batch;  // (gap_dense's most images)
  run.operator()<DType::f16>(cuda::Variant{"gap_dense", 8}, small, {1, small}, "strata pointwise");
  const char* in_gap = "strata batch norm + global_avg_pool+dense";  // (gap_dense fuse 1)
  run.operator()<DType::f16>(cuda::Variant{"gap_dense", 8, 0, 1}, small, {1, small}, in_gap);
  run.operator()<DType::bf16>(cuda::Variant{"gap_dense", 16, 0, 1}, small, {1, 3}, in_gap);
  // Claimed above batch 1 (measured at 256), not offered to measured tuning.
  const auto* t = cuda::find_tactic<DType::f16>("normed_head");
  REQUIRE(t != nullptr);
  CHECK(t->applicable(net.ops.back()));
  CHECK(t->candidates(net.ops.back(), kB, std::size_t{1} << 30, {}).empty());
  CHECK(t->heuristic(net.ops.back(), kB, std::size_t{1} << 30, {}).has_value());
  CHECK_FALSE(t->heuristic(net.ops.back(), 1, std::size_t{1} << 30, {}).has_value());
  {  // and the heuristic's plan runs it (batch 3), not an engine's of one image
    cuda::Engine<NormHeadNet, DType::f16> e(w, cuda::EngineOptions{.max_batch = 3, .fused_max_batch = 0});
    const std::string at3 = e.describe(3);
    INFO(at3);
    CHECK(at3.find(head + ": " + fused) != std::string::npos);
    cuda::Engine<NormHeadNet, DType::f16> one(w, cuda::EngineOptions{.max_batch = 1, .fused_max_batch = 0});
    const std::string at1 = one.describe(1);
    INFO(at1);
    CHECK(at1.find(head + ": ") != std::string::npos);
    CHECK(at1.find(head + ": " + fused) == std::string::npos);
    CHECK(at1.find(head + ": " + in_gap) != std::string::npos);  // (gap_dense fuse 1's claim)
  }
  // DenseNet-121's head (norm5, its ReLU, the pool, the classifier: 1,024 channels of 7x7) forced
  // onto normed_head, every other op on the heuristic's plan: against the CPU and the heuristic's.
  const auto is_head = [](const cuda::OpDesc& op) { return op.kind == OpKind::dense && op.norm != nullptr; };
  const int b = 3;
  const auto wd = Weights<models::DenseNet121>::random(242);
  const auto ind = strata_test::random_floats(
      static_cast<std::size_t>(b) * static_cast<std::size_t>(models::DenseNet121::input_spec.shape.numel()), 243);
  const auto refd = strata_test::cpu_reference<models::DenseNet121>(wd, ind, b);
  const auto joined = strata_test::forced_output<models::DenseNet121, DType::f16>(
      wd, ind, b, b, is_head, 1, cuda::Variant{"normed_head"}, fused);
  const auto apart = strata_test::forced_output<models::DenseNet121, DType::f16>(
      wd, ind, b, b, is_head, 1, cuda::Variant{"lt_dense"}, "features.norm5+relu+global_avg_pool2+classifier: strata pointwise");
  const double to_cpu = strata_test::rel_error(joined, refd, joined.size());
  const double to_apart = strata_test::rel_error(joined, apart, joined.size());
  MESSAGE("DenseNet-121 f16, batch 3, head on normed_head: rel. error " << to_cpu << " against the CPU, " << to_apart
                                                                       << " against the pass + pool + cuBLASLt");
  CHECK(to_cpu < 1e-2);
  CHECK(to_apart < 2e-3);
  // And at batch 1 onto gap_dense fuse 1 (the heuristic's claim there) and fuse 0 (the batch
  // norm's pass, then the same kernel): each value normalized and rounded as the pass stores it
  // and summed in the same order — the outputs agree but for a normalized value rounded the other
  // way where the compilers contract x * scale + shift differently (H100, session 53: 9.7e-7 in
  // f16, 0 in bf16).
  const auto in1 = std::vector<float>(ind.begin(), ind.begin() + models::DenseNet121::input_spec.shape.numel());
  const auto ref1 = strata_test::cpu_reference<models::DenseNet121>(wd, in1, 1);
  for (const bool bf : {false, true}) {
    const auto force = [&](int fuse, const char* shows) {
      const cuda::Variant v{"gap_dense", 8, 0, fuse};
      return bf ? strata_test::forced_output<models::DenseNet121, DType::bf16>(wd, in1, 1, 1, is_head, 1, v, shows)
                : strata_test::forced_output<models::DenseNet121, DType::f16>(wd, in1, 1, 1, is_head, 1, v, shows);
    };
    const auto one = force(1, "features.norm5+relu+global_avg_pool2+classifier: strata batch norm + global_avg_pool+dense");
    const auto two = force(0, "features.norm5+relu+global_avg_pool2+classifier: strata pointwise");
    const double err = strata_test::rel_error(one, ref1, one.size());
    const double to_two = strata_test::rel_error(one, two, one.size());
    MESSAGE("DenseNet-121 " << std::string(bf ? "bf16" : "f16") << ", batch 1, head on gap_dense fuse 1: rel. error " << err
                            << " against the CPU, " << to_two << " against the pass + gap_dense");
    CHECK(err < (bf ? 3e-2 : 1e-2));
    CHECK(to_two < 1e-5);
  }
}

TEST_CASE("halo_conv: size-keeping convs of few output channels from streamed halos, into their concat slices") {
  using strata_test::check_forced;
  const auto three = [](const cuda::OpDesc& op) { return op.kind == OpKind::conv && op.conv.kh == 3; };
  const char* shows = "strata halo conv";
  // DenseBlockNet's 3x3 convs: 8 output slots (one n-tile), bias-free into a slice and with a bias
  // into the next; 12x12 maps (tiles of whole images, several a tile, the batch's last one partial).
  check_forced<DenseBlockNet, DType::f16>("halo_dense_f16", 150, cuda::Variant{"halo_conv"}, shows,
                                          ", then", three);
  check_forced<DenseBlockNet, DType::bf16>("halo_dense_bf16", 151, cuda::Variant{"halo_conv"}, shows,
                                           ", then", three);
  // DenseNet-121's 58 (128 -> 32 channels on 56x56 to 7x7 maps), each writing its 32 channels of
  // the block's concatenation.
  check_forced<models::DenseNet121, DType::f16>("halo_d121_f16", 152, cuda::Variant{"halo_conv"},
                                                "of a concat", ", then", three);
  check_forced<models::DenseNet121, DType::bf16>("halo_d121_bf16", 153, cuda::Variant{"halo_conv"},
                                                 "of a concat", ", then", three);
  // The same in blocks of 16 warps (math 1).
  const char* wide = "strata halo conv (mma.sync, 16 warps";
  check_forced<DenseBlockNet, DType::bf16>("halo_wide_dense_bf16", 181, cuda::Variant{"halo_conv", 0, 1}, wide,
                                           ", then", three);
  check_forced<models::DenseNet121, DType::f16>("halo_wide_d121_f16", 182, cuda::Variant{"halo_conv", 0, 1},
                                                wide, ", then", three);
  // By row segments (algo 2): 8 x 8 units, each halo row segment read once for the taps of its
  // column; n8 MMAs on 12x12 maps (two strips, the second half past the map), n32 on DenseNet's.
  const char* segs = "units of 8 x 8";
  check_forced<DenseBlockNet, DType::f16>("halo_seg_dense_f16", 183, cuda::Variant{"halo_conv", 2}, segs,
                                          ", then", three);
  check_forced<DenseBlockNet, DType::bf16>("halo_seg_dense_bf16", 184, cuda::Variant{"halo_conv", 2}, segs,
                                           ", then", three);
  check_forced<models::DenseNet121, DType::f16>("halo_seg_d121_f16", 185, cuda::Variant{"halo_conv", 2}, segs,
                                                ", then", three);
  check_forced<models::DenseNet121, DType::bf16>("halo_seg_d121_bf16", 186, cuda::Variant{"halo_conv", 2}, segs,
                                                 ", then", three);
  // The warpgroup form (algo 1: both operands read by wgmma from shared memory, 8 x 8 output
  // patches), on a GPU of compute capability 9.0: n8 (DenseBlockNet) and n32 (DenseNet-121) MMAs.
  if (cuda::device_arch() == 90) {
    const char* wg = "strata halo conv (wgmma";
    check_forced<DenseBlockNet, DType::f16>("halo_wg_dense_f16", 154, cuda::Variant{"halo_conv", 1}, wg,
                                            ", then", three);
    check_forced<DenseBlockNet, DType::bf16>("halo_wg_dense_bf16", 155, cuda::Variant{"halo_conv", 1}, wg,
                                             ", then", three);
    check_forced<models::DenseNet121, DType::f16>("halo_wg_d121_f16", 156, cuda::Variant{"halo_conv", 1},
                                                  wg, ", then", three);
    check_forced<models::DenseNet121, DType::bf16>("halo_wg_d121_bf16", 157, cuda::Variant{"halo_conv", 1},
                                                   wg, ", then", three);
    // DeferredNet's first conv (1x1, 8 -> 64 slots, 20x20 maps): tiles of 7 halo rows of 20
    // pixels, 560 vectors a stage, so a stage's last vectors end inside a warp — where the halo
    // copy's shuffle, under the branch that splits the warp, hung (found in session 41).
    const auto first = [](const cuda::OpDesc& op) {
      namespace halo = cuda::tactics::halo;
      if (op.kind != OpKind::conv || op.conv.kh != 1 || op.conv.kp != 64 || !halo::wg::fits(op)) {
        return false;
      }
      const halo::wg::Tile t = halo::wg::choose(op);
      return (4 * t.hr * t.hc) % 32 != 0;
    };
    check_forced<DeferredNet, DType::f16>("halo_wg_split_warp", 158, cuda::Variant{"halo_conv", 1}, wg,
                                          ", then", first);
  } else {
    MESSAGE("halo_conv algo 1 (wgmma) not checked: this GPU is not of compute capability 9.0");
  }
  // The heuristic's plan at batch 256: blocks 1-3's 42 3x3 convs here, by row segments (algo 2) —
  // block 3's after its joined bottleneck's 1x1 conv —; block 4 runs each layer as one kernel
  // (bottleneck_conv, joined at that max_batch).
  const std::string d = describe<models::DenseNet121, DType::f16>(256);
  std::size_t halos = 0;
  for (std::size_t at = d.find(shows); at != std::string::npos; at = d.find(shows, at + 1)) {
    ++halos;
  }
  INFO(d);
  CHECK(halos == 42);
  CHECK(d.find("features.denseblock1.denselayer1.conv2: strata halo conv (mma.sync, 8 warps; the filter in shared "
               "memory, tiles of 1 image(s) x 8 rows in 7 units of 8 x 8") != std::string::npos);
  CHECK(d.find("features.denseblock4.denselayer1.norm1+relu1+conv1+norm2+relu2+conv2: strata bottleneck") !=
        std::string::npos);
  // The stem writes block 1's first 64 channels itself (tile_conv, claimed since session 33).
  CHECK(d.find("features.conv0+norm0+relu0+features.pool0: strata tiled tensor-core conv") != std::string::npos);
  // No claim where the conv writes no slice: ResNet-18's layer1 3x3 convs stay on cuDNN.
  const std::string r = describe<models::ResNet18, DType::f16>(256);
  INFO(r);
  CHECK(r.find(shows) == std::string::npos);
}

namespace {
// Net in precision P, its DenseNet layers joined as an engine of max_batch `max_batch` joins them
// (with EngineOptions::bottleneck_clusters `clusters`), each joined op that `variant` gives a
// variant for forced onto it — `count` of them —, each described with `shows`, against the CPU
// at each of `batches`.
template <class Net, DType P>
void check_joined(std::uint64_t seed, int max_batch, bool clusters,
                  const std::function<std::optional<cuda::Variant>(const cuda::OpDesc&)>& variant,
                  const std::string& shows, const std::vector<int>& batches, std::size_t count) {
  using N = std::remove_cvref_t<Net>;
  cuda::EngineOptions opt;
  opt.max_batch = max_batch;
  opt.tuning = cuda::Tuning::heuristic;
  opt.fused_max_batch = 0;
  opt.bottleneck_clusters = clusters;
  REQUIRE(cuda::joins_bottlenecks(opt));
  cuda::NetDesc net = cuda::NetStorage<Net, P>::describe();
  cuda::fold_for_per_op_path(net);
  cuda::join_bottlenecks(net, opt);  // (as the engine joins them)
  for (const cuda::OpDesc& op : net.ops) {
    if (op.bottleneck) {
      if (const auto v = variant(op)) {
        opt.force[op.label] = *v;
      }
    }
  }
  REQUIRE(opt.force.size() == count);
  const int most = *std::max_element(batches.begin(), batches.end());
  const auto w = Weights<Net>::random(seed);
  const auto in = strata_test::random_floats(static_cast<std::size_t>(most) * N::input_spec.shape.numel(), seed + 100);
  const auto ref = strata_test::cpu_reference<Net>(w, in, most);
  cuda::Engine<Net, P> e(w, opt);
  const std::string d = "\n" + e.describe(most);
  INFO(d);
  for (const auto& [label, v] : opt.force) {
    const std::size_t at = d.find("\n" + label + ": strata bottleneck + conv");
    REQUIRE(at != std::string::npos);
    CHECK(d.substr(at + 1, d.find('\n', at + 1) - at - 1).find(shows) != std::string::npos);
  }
  strata_test::check_batches(e, in, ref, batches, "bottleneck_conv (" + shows + ")");
}

// The whole-image form with tiles of `g` images (g 0: bneck::choose_g's) on every joined op, at
// max_batch 32 (the fold's least).
template <class Net, DType P>
void check_bottleneck(std::uint64_t seed, int g, const std::vector<int>& batches, std::size_t count) {
  check_joined<Net, P>(
      seed, cuda::bottleneck_min_batch, false,
      [g](const cuda::OpDesc& op) {
        return cuda::Variant{"bottleneck_conv", 0, (g > 0 ? g : cuda::tactics::bneck::choose_g(op)) - 1};
      },
      "kept in shared memory; mma.sync, 16 warps; tiles of ", batches, count);
}
}  // namespace

TEST_CASE("bottleneck_conv: a DenseNet layer (batch norm, 1x1 conv, kxk conv) as one kernel, the bottleneck in shared memory") {
  // BottleneckNet: 5x5 and 3x3 convs, a ReLU batch norm and one without, 40 and 56 input slots
  // in place; tiles of 2 images (chosen) and of 1.
  check_bottleneck<BottleneckNet, DType::f16>(170, 0, {1, 3, 17, 32}, 2);
  check_bottleneck<BottleneckNet, DType::bf16>(171, 0, {1, 3, 17}, 2);
  check_bottleneck<BottleneckNet, DType::f16>(172, 1, {3, 17}, 2);
  // DenseNet-121's blocks 3 and 4 (40 layers: 14x14 maps a block of one image, 7x7 of two).
  check_bottleneck<models::DenseNet121, DType::f16>(173, 0, {1, 5}, 40);
  check_bottleneck<models::DenseNet121, DType::bf16>(174, 0, {5}, 40);
  // The heuristic's plan at batch 256 joins all 40 and claims block 4's (two 7x7 images a block);
  // block 3's joined ops run as before: the normed 1x1 conv, then halo_conv.
  const std::string d = describe<models::DenseNet121, DType::f16>(256);
  INFO(d);
  std::size_t joined = 0;
  for (std::size_t at = d.find(": strata bottleneck + conv"); at != std::string::npos;
       at = d.find(": strata bottleneck + conv", at + 1)) {
    ++joined;
  }
  CHECK(joined == 16);
  CHECK(d.find("features.denseblock4.denselayer1.norm1+relu1+conv1+norm2+relu2+conv2: strata bottleneck + conv (the "
               "batch norm, the 1x1 conv and the 3x3 conv as one kernel, the bottleneck's 128 channels kept in shared "
               "memory; mma.sync, 16 warps; tiles of 2 image(s), writing channels 512..543 of a concat") !=
        std::string::npos);
  CHECK(d.find("features.denseblock3.denselayer1.norm1+relu1+conv1+norm2+relu2+conv2: strata batch norm + 1x1 conv") !=
        std::string::npos);
  CHECK(d.find("features.denseblock4.denselayer16.norm1+relu1+conv1+norm2+relu2+conv2: strata bottleneck + conv") !=
        std::string::npos);
}

namespace {
// The cluster form with clusters of `cs` blocks in `ng` n-groups, an image in `bands` of them, on
// every joined op it fits (at the largest of `batches`, at most bottleneck_cluster_max_batch, with
// the joins asked for).
template <class Net, DType P>
void check_bottleneck_cluster(std::uint64_t seed, int cs, int ng, const std::vector<int>& batches, std::size_t count,
                              int bands = 1) {
  check_joined<Net, P>(
      seed, *std::max_element(batches.begin(), batches.end()), true,
      [cs, ng, bands](const cuda::OpDesc& op) -> std::optional<cuda::Variant> {
        if (cuda::tactics::bneck::cluster_plan(op, cs, ng, bands).cs == 0) {
          return std::nullopt;
        }
        return cuda::Variant{"bottleneck_conv", cs, ng, bands > 1 ? bands : 0};
      },
      (bands > 1 ? " rows of an image a cluster of " : "an image a cluster of ") + std::to_string(cs) +
          " blocks of 16 warps: " + std::to_string(ng) + " groups of ",
      batches, count);
}
}  // namespace

// Written in session 43 without a GPU: not yet run.
TEST_CASE("bottleneck_conv's cluster form: a DenseNet layer as one kernel, an image a thread-block cluster") {
  if (cuda::device_arch() < 90) {
    MESSAGE("bottleneck_conv's cluster form skipped: compute capability below 9.0");
    return;
  }
  // ClusterBneckNet: every form on both layers (5x5 and 3x3, partial reduction steps, an empty
  // pixel group and a halo two groups deep in clusters of 16 with 2 n-groups).
  for (const auto& [cs, ng] : {std::pair{8, 2}, std::pair{8, 4}, std::pair{16, 2}, std::pair{16, 4}}) {
    check_bottleneck_cluster<ClusterBneckNet, DType::f16>(200 + static_cast<std::uint64_t>(cs + ng), cs, ng, {1, 3, 8},
                                                          2);
  }
  check_bottleneck_cluster<ClusterBneckNet, DType::bf16>(220, 16, 2, {1, 3}, 2);
  // In bands (a 7-row map in 2 bands of 4 rows and 4 of 2: the 5x5 conv's halo computed by both
  // bands it borders, two rows deep).
  check_bottleneck_cluster<ClusterBneckNet, DType::f16>(225, 16, 2, {1, 3}, 2, 2);
  check_bottleneck_cluster<ClusterBneckNet, DType::f16>(226, 8, 4, {1, 3}, 2, 4);
  check_bottleneck_cluster<ClusterBneckNet, DType::bf16>(227, 16, 4, {2}, 2, 4);
  // DenseNet-121: blocks 2 to 4 in 4 n-groups (52 layers: 28x28 maps with a ring of 2 steps,
  // 14x14, 7x7), blocks 3 and 4 in 2 (40: block 2's partial sums do not fit); every layer in 4
  // bands in clusters of 8 (58: offered on the 56x56 and 28x28 maps, forceable on all).
  check_bottleneck_cluster<models::DenseNet121, DType::f16>(221, 16, 4, {1, 2}, 52);
  check_bottleneck_cluster<models::DenseNet121, DType::f16>(228, 8, 4, {1, 2}, 58, 4);
  check_bottleneck_cluster<models::DenseNet121, DType::f16>(222, 8, 2, {1}, 40);
  check_bottleneck_cluster<models::DenseNet121, DType::bf16>(223, 16, 2, {1}, 40);
  if (!strata_test::quick_run()) {
    check_bottleneck_cluster<models::DenseNet121, DType::f16>(224, 8, 4, {1}, 52);
  }
  // Joined but not run by it (the heuristic claims no cluster form): the joined ops run as the
  // two ops on the variants each has alone — the same output, to the bit, as without the joins.
  const auto w = Weights<models::DenseNet121>::random(225);
  const auto in = strata_test::random_floats(static_cast<std::size_t>(models::DenseNet121::input_spec.shape.numel()), 325);
  std::vector<float> apart(1000, std::numeric_limits<float>::quiet_NaN());
  std::vector<float> joined(1000, std::numeric_limits<float>::quiet_NaN());
  cuda::EngineOptions opt;
  opt.max_batch = 1;
  opt.fused_max_batch = 0;
  cuda::Engine<models::DenseNet121, DType::f16>(w, opt).infer(in, apart, 1);
  opt.bottleneck_clusters = true;
  cuda::Engine<models::DenseNet121, DType::f16> e(w, opt);
  e.infer(in, joined, 1);
  const std::string d = e.describe(1);
  INFO(d);
  std::size_t n = 0;
  for (std::size_t at = d.find("norm1+relu1+conv1+norm2+relu2+conv2: "); at != std::string::npos;
       at = d.find("norm1+relu1+conv1+norm2+relu2+conv2: ", at + 1)) {
    ++n;
  }
  CHECK(n == 58);  // (every layer)
  CHECK(joined == apart);
}

