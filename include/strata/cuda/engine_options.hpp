#pragma once
/// What a cuda::Engine is built for (EngineOptions) and what building it did (EngineStats).
#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "strata/core/dtype.hpp"
#include "strata/cuda/variant.hpp"

namespace strata::cuda {

/// How tactics are chosen for ops with several ways to run: each tactic's heuristic claim
/// (instant), or by timing every candidate inside a CUDA graph at construction (results kept in
/// EngineOptions::tuning_cache).
enum class Tuning { heuristic, measured };

/// The form of the caller's input (forward, infer, enqueue). Whatever the form, the engine
/// converts it on the GPU, in the step that writes the network's input in storage form, into
/// the precision and layout it runs in — with the normalization of InputOptions applied there,
/// so no separate normalization pass and no f32 copy of the batch exist anywhere.
enum class InputFormat {
  f32,     ///< float, in the declared layout (NCHW, or NHWC for input<..., Layout::nhwc>)
  f16,     ///< IEEE half (__half), in the declared layout
  u8_hwc,  ///< bytes, height × width × channels per image: decoded 8-bit images as they come
};

[[nodiscard]] constexpr const char* input_format_name(InputFormat f) {
  switch (f) {
    case InputFormat::f32: return "f32";
    case InputFormat::f16: return "f16";
    case InputFormat::u8_hwc: return "u8 HWC";
  }
  return "?";
}

/// Whether the caller's input in `format` is height × width × channels per image: 8-bit images
/// always, f32 and f16 when the network declares its input so (`declared`).
[[nodiscard]] constexpr bool input_is_hwc(InputFormat format, Layout declared) {
  return format == InputFormat::u8_hwc || declared == Layout::nhwc;
}

/// Bytes per input element.
[[nodiscard]] constexpr int input_format_size(InputFormat f) {
  return f == InputFormat::f32 ? 4 : f == InputFormat::f16 ? 2 : 1;
}

/// The caller's input form and its per-channel normalization, x' = (x · scale − mean[c]) /
/// stddev[c], applied on the GPU before the first layer (torchvision's preprocessing of 8-bit
/// images: scale 1/255, mean {0.485, 0.456, 0.406}, stddev {0.229, 0.224, 0.225}). mean and
/// stddev are empty (no per-channel step) or hold one value per input channel.
struct InputOptions {
  InputFormat format = InputFormat::f32;
  float scale = 1.0f;
  std::vector<float> mean{};
  std::vector<float> stddev{};

  /// Whether the input is changed at all on its way in.
  [[nodiscard]] bool normalizes() const {
    return scale != 1.0f || !mean.empty() || !stddev.empty();
  }
};

/// The per-channel normalization (x·scale − mean[c]) / stddev[c] as x·a[c] + b[c]: a, b for each
/// of `channels` channels, interleaved (what the input conversion kernels read).
[[nodiscard]] inline std::vector<float> input_affine(const InputOptions& in, int channels) {
  std::vector<float> ab(2 * static_cast<std::size_t>(channels));
  for (int c = 0; c < channels; ++c) {
    const float sd = in.stddev.empty() ? 1.0f : in.stddev[static_cast<std::size_t>(c)];
    const float mean = in.mean.empty() ? 0.0f : in.mean[static_cast<std::size_t>(c)];
    ab[2 * static_cast<std::size_t>(c)] = in.scale / sd;
    ab[2 * static_cast<std::size_t>(c) + 1] = -mean / sd;
  }
  return ab;
}

/// EngineOptions::fused_max_batch's default: the engine decides (fused_auto_batches, or 0).
inline constexpr int fused_auto = -1;
/// The batches fused_auto runs fused: measured faster than the per-op path at batch 1.
inline constexpr int fused_auto_batches = 1;

/// How the per-op path launches Strata's own kernels (EngineOptions::pdl).
enum class Pdl {
  off,    ///< as ordinary kernel launches
  on,     ///< as programmatic dependent launches, where the GPU has them (compute capability 9.0 on)
  timed,  ///< both ways timed at construction; the faster kept (ordinary below compute capability 9.0)
};

[[nodiscard]] constexpr const char* pdl_name(Pdl p) {
  switch (p) {
    case Pdl::off: return "off";
    case Pdl::on: return "on";
    case Pdl::timed: return "timed";
  }
  return "?";
}

/// What an Engine is built for.
struct EngineOptions {
  int max_batch = 1;                       ///< largest batch forward() accepts
  Tuning tuning = Tuning::heuristic;
  std::filesystem::path tuning_cache{};    ///< measured choices, read and written (optional)
  std::vector<int> capture_batches{};      ///< graphs captured at construction; others on first use
  /// Batches up to this size run as one fused kernel when the network fits (NetStorage::fused_fit);
  /// larger ones take the per-op path; 0: always per-op. The default, fused_auto, lets the engine
  /// decide: batch 1 runs the fused kernel when the network fits, the input is f32 without
  /// normalization and the GPU has thread-block clusters (compute capability 9.0 or newer);
  /// otherwise 0 (docs/cuda_backend.md: measured 2.4x faster than the per-op path for the MNIST
  /// CNN at batch 1 in 16-bit, 1.3x in f32).
  int fused_max_batch = fused_auto;
  /// 16-bit fused-network kernels: keep the tensors passed between phases in shared memory, each
  /// block its own copy written by the producing phase through distributed shared memory, instead
  /// of the arena (docs/cuda_backend.md, "The fused-network path"). Off by default: slower on an
  /// H100 (session 48: MNIST f16 at batch 1 13.4 µs against 11.3 in the arena — the broadcast
  /// stores cost more than the L2 round trips they save).
  bool fused_hold = false;
  /// Thread blocks per cluster of the fused-network kernel (one image a cluster): 0, the default,
  /// 16 where the GPU allows that non-portable size, else 8; or 1, 2, 4, 8 or 16 (16 refused by
  /// name where the GPU does not allow it). Each phase is spread over the cluster's blocks, so
  /// fewer are slower: MNIST f16 at batch 1 on an H100 (session 49) 11.3 µs at 16, 20.8 at 4,
  /// 34.9 at 2, 61.4 at 1 (a cluster barrier costs about the same at every size).
  int fused_cluster = 0;
  /// The fused-network kernel's phases separated by mbarriers — one thread of each block
  /// arriving on every block's, after a block barrier — instead of the hardware cluster barrier
  /// (about 0.65 µs each on an H100 for a cluster of 16 × 1,024 threads, session 48). Off by
  /// default: slower (MNIST f16 at batch 1 on an H100, session 49: 13.65 µs against 11.3; both
  /// pay the release fence at cluster scope that dominates a barrier).
  bool fused_mbarrier_sync = false;
  /// 16-bit fused-network kernels of a network that is a stack of convs (each with its pool)
  /// followed by dense layers and a softmax: the tiled form — the first conv over the whole
  /// cluster as in the phase kernel (each block's outputs kept in its shared memory, read by the
  /// others from there), one cluster barrier, then each block computes one rectangle
  /// of the last conv's map and everything it depends on after the first conv in its own shared
  /// memory (overlaps computed twice), then its share of the first dense layer, whose partial
  /// sums it sends to the first block (st.async, counted by an mbarrier): one cluster barrier an
  /// image instead of one a layer (docs/cuda_backend.md, "The tiled form"). Ignored where the
  /// network does not fit it (and at a cluster of 1 block). Off by default: session 49's form,
  /// which recomputed the first conv over each block's region too, was slower (MNIST f16 at batch
  /// 1 on an H100: 13.8 µs against 11.2–11.4); this one is not yet timed.
  bool fused_tiled = false;
  /// f32 engines only: let convolutions and matmuls use TF32 tensor cores (f32 storage and
  /// accumulation, inputs rounded to a 10-bit mantissa) — several times faster, about 1e-3
  /// relative error instead of 1e-6. Off by default, as in TensorRT and PyTorch's convolutions.
  /// The activations stay NCHW, where cuDNN has few TF32 kernels: an engine of precision
  /// DType::tf32 (NHWC storage, TF32 always) is the fast form of the same arithmetic.
  bool allow_tf32 = false;
  /// Measured tuning only: also time each 16-bit conv as a cuDNN operation graph (conv + bias +
  /// residual + ReLU for cuDNN's runtime-fusion engines; the tactic `cudnn_graph`), the
  /// heuristic's first engine configurations. Off by default: building those plans compiles
  /// kernels, which lengthens engine construction (ResNet-18 at batch 256: 25 s instead of 10 on
  /// an H200), for about 1-3% on ResNet-18. Strided 1×1 convs (ResNet's downsamples) are timed
  /// so either way, where the graph engines won by 2.4x (session 18).
  bool cudnn_graph_candidates = false;
  /// Measured tuning only: where its choices differ from the heuristic's, time both whole plans at
  /// max_batch (each as the CUDA graph it runs as) and keep the faster (EngineStats::plan_check_*).
  /// Each op's candidates are timed alone, and a plan of per-op winners can lose in the graph:
  /// ResNet-18 f16 at batch 256 ran 2,142 µs measured against 2,075–2,100 heuristic on an H200
  /// (session 17). Not with concurrent_branches; nothing is cached for it (two more graphs at
  /// construction). Off by default: on an H200 (session 22) it kept measured tuning's plan for
  /// ResNet-18 f16 at batch 256 (1,897 against the heuristic's 2,039 µs), as tuning alone would.
  bool plan_check = false;
  /// The caller's input form and normalization (InputOptions).
  InputOptions input{};
  /// Device input/output buffer pairs: enqueue() cycles through them, so with 2 (the default)
  /// batch k+1's upload overlaps batch k's compute and batch k−1's download. 1 halves the I/O
  /// buffers' device memory; enqueue() then waits for the previous batch's download.
  int io_slots = 2;
  /// Ops run by a variant the caller names, ahead of either tuning mode (nothing is timed or
  /// cached for them): the op's label as describe() prints it ("conv4+bn5+relu6+max_pool7",
  /// "layer1.0.conv1+bn1+relu") → the variant (parse_variant: "mma_conv algo 2 fuse 1"). Engine
  /// construction fails, naming it, on a label the network does not have, a tactic this build
  /// does not have, or one that cannot run that op; a variant the tactic then refuses fails in
  /// its preparation, named. The per-op path only (a batch that runs fused ignores it).
  std::map<std::string, Variant> force{};
  /// Hopper on (compute capability 9.0+): whether the per-op path's graph launches Strata's
  /// kernels as programmatic dependent launches (rtc::PdlScope) — each may start while the
  /// kernel before it finishes its last wave, and waits before touching memory an earlier kernel
  /// writes (the split-K conv, normed_conv's ring forms, expand_depthwise, depthwise_band's algo
  /// 1, the squeeze-excite cluster and bottleneck_conv's cluster form copy or prefetch weights
  /// first). The default, Pdl::timed, times the plan at max_batch both ways at construction and
  /// keeps PDL where it is over 1% faster (EngineStats::pdl*; decided at max_batch for every
  /// batch of the engine, before EngineOptions::plan_check compares plans): on an H200 (session 44, heuristic plans, median µs without /
  /// with) it gained on DenseNet-121 at batch 1 (570.6 / 556.9) and EfficientNet-B0 at batch 1
  /// (308.4 / 282.4), and lost on MNIST at batch 4096 (145.3 / 157.0), ResNet-18 at batch 1
  /// (118.9 / 121.7) and DenseNet-121 at batch 256 (6,811 / 6,861). Outputs are the same to the
  /// bit either way. cuDNN's and cuBLAS's kernels are launched as usual.
  Pdl pdl = Pdl::timed;
  /// The per-op path runs an op beside the next one where neither needs the other's result nor
  /// touches what the other reads or writes (runs_beside_next: ResNet's downsample and its
  /// block's first conv), on a second stream with a workspace of its own — in the graph, two
  /// branches. Off by default: on an H200 the outputs were bit-equal to one stream's but nothing
  /// got faster (ResNet-18 at batch 1 131.4 µs either way, ResNet-50 290.7 → 305.3, ResNet-18 at
  /// batch 256 2,047.7 → 2,045.8). Not with Pdl::on; with Pdl::timed, the branches and ordinary
  /// launches (nothing timed).
  bool concurrent_branches = false;
  /// Hopper on (compute capability 9.0+), max_batch up to bottleneck_cluster_max_batch (8): join
  /// each DenseNet-style layer — batch norm, 1x1 conv, size-keeping k×k conv — into one op as
  /// the large batches do (join_bottlenecks), which bottleneck_conv's cluster form can run as one
  /// kernel, an image (or a band of its rows) a thread-block cluster of 8 or 16 blocks with the
  /// bottleneck in distributed shared memory (DenseNet-121 at batch 1: 58 launches fewer);
  /// offered to measured tuning, forced by the joined op's label
  /// ("...norm1+relu1+conv1+norm2+relu2+conv2"), claimed by no heuristic. A joined op that does
  /// not run it runs as the two ops, the 1x1 conv on the heuristic's variant. Off by default:
  /// correct on an H200 but slower (session 43: DenseNet-121 at batch 1 822-935 µs with the
  /// cluster forms forced, against 570 without).
  bool bottleneck_clusters = false;
  /// At a max_batch up to tactics::expand_dw::cluster_max_batch (2): join each inverted-residual
  /// block's projection to its expansion and depthwise conv (fold_projected_depthwise) where
  /// expand_depthwise's cluster form has a shape for the three, which the heuristic then claims
  /// from compute capability 9.0 on (a tile's chunks split over a thread-block cluster, the
  /// projection's partial sums exchanged in distributed shared memory: one launch a block
  /// instead of three; no join on a GPU without clusters), and a depthwise conv without an expansion to
  /// its projection where depthwise_band's fuse 2 runs the two (MobileNetV2's features.1; at
  /// large batches the engine makes these joins anyway). A joined op no tactic runs as one kernel
  /// runs as the two ops, as before; an op named in `force` by its unjoined label stays apart.
  /// false: the plans without these joins.
  bool block_clusters = true;
  /// At a max_batch of tail_min_batch (32) or more: join each squeeze-excite op to the depthwise
  /// conv before it on maps of any size (fold_tailed_gates), which depthwise_band's fuse 3 then
  /// runs as the conv — its blocks writing their channel sums of the values as stored — and a
  /// second kernel, a block an image, computing the gate from those sums, so that the gate's pool
  /// does not read the conv's output back (EfficientNet-B0 at batch 256: its sixteen gates took
  /// about 560 of 5,270 µs, H100, session 63). A joined op no tactic runs that way runs as the two
  /// ops, as before. On by default since session 65 (H100: the GPU tests passed; EfficientNet-B0
  /// at batch 256 5,187 and 5,182 µs against 5,336 without, one lease; session 64's tail form,
  /// fuse 1, claimed there had run it in 5,942 against 5,329: its fence and counter).
  /// strata_bench --no-tail-sums turns it off.
  bool tail_sums = true;
  /// Join the network's stem — a 3×3/2 conv over the input's 3 channels read space-to-depth — to
  /// the depthwise conv after it (fold_stem_depthwise: MobileNetV2's and EfficientNet's features.0
  /// and features.1's first layer), which `expand_depthwise` can then run as one kernel that reads
  /// the caller's input itself and never stores the stem's map (the largest of either network:
  /// 112×112×32). Not claimed by the heuristic until its GPU tests have passed
  /// (tactics::expand_dw::stem_gpu_tested): forced by the joined op's label, and a joined op no
  /// tactic runs as one kernel runs as the two ops, as before — but for MobileNetV2's features.1,
  /// whose projection then joins only where the force names the three (expand_depthwise fuse 1;
  /// depthwise_band's fuse 2 takes a depthwise conv without an expansion). Off by default
  /// (written in session 68 without a GPU); strata_bench --stem-joins turns it on.
  bool stem_joins = false;
};

/// What `fused_max_batch` means for an engine with `max_batch`: fused_auto becomes
/// fused_auto_batches (at most max_batch) when the network fits the fused kernel, `input` is f32
/// without normalization and the GPU's compute capability (`cc_major`) has thread-block clusters
/// (9 or more), else 0; any other value stays as it is.
[[nodiscard]] inline int resolved_fused_max_batch(int fused_max_batch, int max_batch, bool fits,
                                                  const InputOptions& input, int cc_major) {
  if (fused_max_batch != fused_auto) {
    return fused_max_batch;
  }
  const bool fused = fits && input.format == InputFormat::f32 && !input.normalizes() &&
                     cc_major >= 9;
  return fused ? std::min(max_batch, fused_auto_batches) : 0;
}

/// One candidate that measured tuning timed for an op: the op's label, the variant (as
/// Variant's to_string writes it) and its GPU time per run in µs (negative: it could not run
/// here — the tactic declined the shape, or needed more workspace than the tuner had).
struct TuningTrial {
  std::string op;
  std::string variant;
  double us = -1.0;
  /// How `us` was counted where not as the step alone: for the one op reading the network's
  /// input, when some candidate converts the input itself, "with the input step" (the others'
  /// time plus the input step's) or "reads the input itself"; for the op whose result is the
  /// network's output, when some candidate writes the caller's output itself, "with the output
  /// step" or "writes the output itself". Before those, what the step says of itself where the
  /// variant's name does not (Step::tuning_note: a cuDNN graph configuration's engine, "engine
  /// 41"); "; " between parts.
  std::string note;
};

/// What construction did, for tests and reports.
struct EngineStats {
  int convs_timed = 0;        ///< convolutions whose tactic this construction chose by timing
  int convs_from_cache = 0;   ///< convolutions whose measured choice came from the cache file
  int convs_fused = 0;        ///< convolutions run as one cuDNN conv+bias+(add)+relu call
  int graphs_captured = 0;
  std::size_t arena_bytes = 0;
  std::size_t workspace_bytes = 0;
  std::size_t weight_bytes = 0;
  /// Strata's run-time compiled kernels for this precision (kernels::library; not the depthwise
  /// library, made ready with the first depthwise step), as first made ready in this process:
  /// compiled by NVRTC or read from the disk cache, then loaded (milliseconds).
  double kernels_compile_ms = 0.0;
  double kernels_load_ms = 0.0;
  bool kernels_from_disk = false;
  /// The fused-network kernel: whether this engine has one (the network fits and
  /// fused_max_batch > 0), and how its construction went (compiled, or read from the disk cache).
  bool fused_network = false;
  double fused_compile_ms = 0.0;
  bool fused_from_disk = false;
  /// The whole construction (milliseconds, wall: buffers, handles, Strata's kernel library,
  /// weights, tactics, plans and captured graphs), and the part of it spent choosing each op's
  /// tactic (measured tuning times candidates; either kind may compile the kernels it picks).
  double build_ms = 0.0;
  double tuning_ms = 0.0;
  /// (These four are 0 for an Engine::context(), which compiles and tunes nothing.)
  /// Programs NVRTC compiled while this engine was built (kernel libraries, the fused kernel,
  /// network-specialized convs; not those read from the disk cache) and their compile time,
  /// summed over programs (parts compiled side by side each count in full). Counted process-wide:
  /// an engine built while another thread builds one counts that one's compiles too.
  long long programs_compiled = 0;
  double programs_compile_ms = 0.0;
  /// Measured tuning's timings, every candidate of every op it timed in this construction (ops
  /// whose choice came from the cache file, or that had one candidate, have none).
  std::vector<TuningTrial> tuning_trials;
  /// EngineOptions::plan_check: the whole plan's GPU time per replay at max_batch (µs) with the
  /// measured choices and with the heuristic's (timed in turns, three rounds, medians), and which
  /// was kept ("measured"; "heuristic" where it was over 1% faster; empty where no check ran: not
  /// asked for, or the two plans are the same). Where the check itself failed, measured tuning's
  /// plan is kept and `plan_check_error` says why. (tuning_ms includes the check.)
  double plan_check_measured_us = 0.0;
  double plan_check_heuristic_us = 0.0;
  std::string plan_kept;
  std::string plan_check_error;
  /// Whether the per-op path's plans launch Strata's kernels as programmatic dependent launches
  /// (EngineOptions::pdl: Pdl::on on a GPU that has them, or what Pdl::timed kept).
  bool pdl = false;
  /// Pdl::timed: the plan's GPU time per replay at max_batch (µs) launched as usual and as
  /// programmatic dependent launches (one plan captured both ways, timed in turns, three rounds,
  /// medians); PDL is kept where it was over 1% faster. 0 where nothing was timed (another
  /// mode, a GPU without PDL, every batch on the fused kernel, concurrent_branches, a context)
  /// or the timing failed: ordinary launches are then kept and `pdl_check_error` says why.
  /// (tuning_ms includes the timing, whichever the tuning mode.)
  double pdl_check_off_us = 0.0;
  double pdl_check_on_us = 0.0;
  std::string pdl_check_error;
};

}  // namespace strata::cuda
