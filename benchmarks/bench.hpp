#pragma once
// strata_bench's parts (benchmarks/strata_bench.cpp has main()): the options, timing, and
// Strata's side of a case as templates over the network and precision, instantiated in two
// translation units built side by side: f16's (bench_f16.cpp) and the other precisions'.
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "fill_random.hpp"
#include "strata/core/compare.hpp"
#include "strata/cuda/check.hpp"
#include "strata/cuda/engine.hpp"
#include "strata/cuda/engine_pool.hpp"
#include "strata/cuda/fused_network.hpp"
#include "strata/cuda/graph_capture.hpp"
#include "strata/cuda/profiler.hpp"
#include "strata/cuda/resources.hpp"
#include "strata/models/densenet.hpp"
#include "strata/models/efficientnet.hpp"
#include "strata/models/mnist_cnn.hpp"
#include "strata/models/mobilenet_v2.hpp"
#include "strata/models/resnet.hpp"
#include "strata/models/unet.hpp"

namespace strata_bench {

using Json = nlohmann::json;
using strata::DType;

/// Seed of the random weights of every network (the same weights in every precision).
inline constexpr std::uint64_t weights_seed = 20261121;
/// Seed of the random inputs U(0, 1).
inline constexpr std::uint64_t input_seed = 7;

/// One row of BENCHMARKS.md's case table: id, network, default batch.
struct CaseInfo {
  std::string_view id;
  std::string_view network;
  int batch;
};
inline constexpr CaseInfo cases[] = {
    {"M1", "mnist_cnn", 1},  {"M2", "mnist_cnn", 4096}, {"R1", "resnet18", 1},
    {"R2", "resnet18", 256}, {"R3", "resnet50", 256}, {"R2-stream", "resnet18", 256},
    // The deployable networks of issue 12 (torchvision definitions), f16 only.
    {"MV2", "mobilenet_v2", 256}, {"EB0", "efficientnet_b0", 256}, {"D121", "densenet121", 256},
    // A plain U-Net (strata::models::unet: 3x64x64 in, its decoder's transposed convs), f16 only.
    {"UN", "unet", 256},
};

/// Command-line options (see the file comment).
struct Args {
  std::string case_id;
  std::string precision = "f16";
  int batch = 0;  // 0: the case's default
  std::string weights, save_weights, input, save_input, dump_output, out_json, commit, tuning_cache;
  bool measured = false;
  bool ceilings = false;
  bool launch_floor = false;   // --launch-floor: what a one-kernel graph costs, kernel empty
  bool profile = false;         // print the per-layer profile and add it to the JSON line
  double ceil_tflops = 0.0;     // measured ceilings for the profile's roofline column
  double ceil_gbs = 0.0;
  int repeats = 9;
  int gpus = 0;              // R2-stream through an EnginePool of 1, then of this many GPUs
  int fused_max_batch = strata::cuda::fused_auto;  // EngineOptions::fused_max_batch (default: the engine's)
  bool fused_hold = false;  // EngineOptions::fused_hold (--fused-hold: on)
  int fused_cluster = 0;    // EngineOptions::fused_cluster (--fused-cluster N)
  bool fused_mbarrier = false;  // EngineOptions::fused_mbarrier_sync (--fused-mbarrier)
  bool fused_tiled = false;  // EngineOptions::fused_tiled (--fused-tiled)
  bool tf32 = false;         // EngineOptions::allow_tf32 (f32 only)
  bool cudnn_graph = false;  // EngineOptions::cudnn_graph_candidates (measured tuning, 16-bit)
  // EngineOptions::pdl (programmatic dependent launches): the engine's default (timed), --pdl, --no-pdl
  strata::cuda::Pdl pdl = strata::cuda::Pdl::timed;
  bool bneck_clusters = false;  // EngineOptions::bottleneck_clusters (DenseNet layers joined at small batches)
  bool tail_sums = true;  // EngineOptions::tail_sums (squeeze-excite ops joined to depthwise convs at large batches)
  bool stem_joins = false;  // EngineOptions::stem_joins (the stem joined to the depthwise conv after it)
  bool block_clusters = true;   // EngineOptions::block_clusters (inverted-residual blocks joined at small batches)
  bool branches = false;     // EngineOptions::concurrent_branches (an op beside the next one)
  bool plan_check = false;   // EngineOptions::plan_check (measured tuning: whole plans compared)
  int iters = 0;             // 0: calibrated so that one repeat takes about target_ms
  double target_ms = 50.0;   // GPU time per repeat when calibrating
  double warmup_ms = 200.0;  // GPU time of warm-up before the first repeat
  std::map<std::string, strata::cuda::Variant> force;  // EngineOptions::force (--force)
  // --force-each 'TEXT=VARIANT': the variant for every op whose label contains TEXT (expanded
  // into `force` per case, from the labels the engine gives the network's ops)
  std::vector<std::pair<std::string, strata::cuda::Variant>> force_each;
};


/// Prints the problem and the usage to stderr and exits with code 2.
[[noreturn]] void usage(const std::string& problem);

/// The command line as Args (usage() on anything wrong).
Args parse_args(int argc, char** argv);

/// Prints `j` as one line and appends it to --out-json (when given).
void emit(const Args& a, const Json& j);

/// The device's name and the library versions, for every JSON line.
Json device_info();

/// GPU time per call, in microseconds: median, min and max over the repeats; the SM clock and
/// power during them where NVML answers (ClockSampler).
struct Timing {
  double median_us = 0, min_us = 0, max_us = 0;
  int iters = 0, repeats = 0;
  Json clocks = nullptr;
};

/// Times `launch` (which enqueues one unit of work on `s`): `repeats` runs of `iters` calls
/// between two CUDA events, after a warm-up that also calibrates `iters` when not given.
Timing time_gpu(const std::function<void()>& launch, cudaStream_t s, const Args& a);

/// `t` as the JSON fields of a timing line.
Json timing_json(const Timing& t);

/// The floor under a batch-1 figure, measured the way a case is: a graph holding one kernel that
/// does nothing, timed by time_gpu (replays back to back, GPU time per replay) and by the host
/// wall of launch + cudaStreamSynchronize. Kernels: one block of 32 threads; the fused-network
/// kernel's shape (a cluster of 16 blocks of 1,024 threads where the GPU allows it, else 8) with
/// no barrier, with its four phases' cluster barriers, and with the shared memory it opts into
/// (fused_shared_max). One JSON line each (kind "launch_floor").
int run_launch_floor(const Args& a);

/// The ceilings of BENCHMARKS.md: a large device-to-device copy (GB/s counting bytes read and
/// written) and large square GEMMs through cuBLAS in f16, bf16 and f32 (TFLOP/s, 2·m·n·k).
int run_ceilings(const Args& a);

/// `batch` images of U(0, 1) noise, or the tensor "input" of a safetensors file.
std::vector<float> make_input(const Args& a, std::int64_t per_image, int batch);

/// Writes `values` as the f32 tensor `name` of shape `shape` to a safetensors file.
void save_tensor(const std::string& path, const std::string& name, std::vector<std::int64_t> shape,
                 std::span<const float> values);

/// (N, C, H, W), or (N, C) where H = W = 1 (PyTorch's shape after a dense layer).
std::vector<std::int64_t> batch_shape(strata::Shape s, int batch);

/// The case's weights: --weights, or random ones from a fixed seed.
template <class Net>
strata::Weights<Net> case_weights(const Args& a) {
  return a.weights.empty() ? strata::Weights<Net>::random(weights_seed)
                           : strata::Weights<Net>::load(a.weights);
}

/// EngineOptions from the command line, for batches up to `batch` (captured at construction).
strata::cuda::EngineOptions case_options(const Args& a, int batch);

/// The fields every JSON line of a case starts with (the device's, then the case's).
Json case_json(const Args& a, const CaseInfo& c, strata::DType p, int batch, const char* kind,
               const char* io);

/// `a` with each --force-each expanded into --force: the variant for every op of the per-op
/// path (as the engine folds it by default) whose label contains the text, unless --force names
/// that op; an error where no op's label contains it.
template <class Net, DType P>
Args with_forced_each(const Args& given, int max_batch) {
  Args a = given;
  if (a.force_each.empty()) {
    return a;
  }
  strata::cuda::EngineOptions o;
  o.max_batch = max_batch;
  o.bottleneck_clusters = a.bneck_clusters;
  o.tail_sums = a.tail_sums;
  o.stem_joins = a.stem_joins;
  o.block_clusters = a.block_clusters;
  const strata::cuda::NetDesc net = strata::cuda::per_op_ops<Net, P>(o, a.branches);  // (the ops as the engine joins them)
  for (const auto& [text, v] : a.force_each) {
    int matched = 0;
    for (const strata::cuda::OpDesc& op : net.ops) {
      if (op.label.find(text) != std::string::npos) {
        a.force.emplace(op.label, v);  // (a --force of the same label wins)
        ++matched;
      }
    }
    if (matched == 0) {
      throw strata::Error("--force-each '" + text + "': no op's label contains it");
    }
  }
  return a;
}

/// One case on Strata: build, time forward() and infer(), dump the output, write a JSON line.
template <class Net, DType P>
int run_case(const Args& given, const CaseInfo& c, int batch) {
  namespace sc = strata::cuda;
  using N = std::remove_cvref_t<Net>;
  const Args a = with_forced_each<Net, P>(given, batch);
  constexpr std::int64_t in_numel = N::input_spec.shape.numel();
  constexpr std::int64_t out_numel = N::output_spec.shape.numel();

  const strata::Weights<Net> w = case_weights<Net>(a);
  if (!a.save_weights.empty()) {
    w.save(a.save_weights);
  }
  const std::vector<float> in = make_input(a, in_numel, batch);
  if (!a.save_input.empty()) {
    save_tensor(a.save_input, "input", batch_shape(N::input_spec.shape, batch), in);
  }

  const sc::EngineOptions opt = case_options(a, batch);
  const auto t0 = std::chrono::steady_clock::now();
  auto [engine, memory] = sc::build_and_measure([&] { return sc::Engine<Net, P>(w, opt); });
  const double build_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // GPU time: the input sits in the engine's own device buffer and forward() writes to its own
  // output buffer, as PyTorch's captured graph reads and writes static tensors (no copies).
  if (!a.force.empty() && engine.path(batch) != "per-op") {
    throw strata::Error("--force names per-op variants, and batch " + std::to_string(batch) +
                        " runs the " + engine.path(batch) + " path: add --fused-max-batch 0");
  }
  const sc::Stream stream = sc::Stream::create();
  const cudaStream_t s = stream.get();
  STRATA_CUDA_CHECK(cudaMemcpy(engine.input_buffer(), in.data(), in.size() * sizeof(float),
                               cudaMemcpyHostToDevice));
  const Timing t = time_gpu(
      [&] { engine.forward(engine.input_buffer(), engine.output_buffer(), batch, s); }, s, a);

  // Host wall latency of infer(): host input -> device -> forward -> host output, synchronised.
  std::vector<float> out(static_cast<std::size_t>(out_numel) * static_cast<std::size_t>(batch));
  std::vector<double> walls;
  double wall_total_us = 0.0;
  for (int i = 0; i < 5; ++i) {
    engine.infer(in, out, batch);
  }
  while (walls.size() < 10 || (walls.size() < 2000 && wall_total_us < 300e3)) {
    const auto w0 = std::chrono::steady_clock::now();
    engine.infer(in, out, batch);
    walls.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - w0).count());
    wall_total_us += walls.back();
  }
  std::sort(walls.begin(), walls.end());

  // The output of the same inputs, for the accuracy check against PyTorch.
  engine.infer(in, out, batch);
  const auto nonfinite =
      std::count_if(out.begin(), out.end(), [](float v) { return !std::isfinite(v); });
  if (!a.dump_output.empty()) {
    save_tensor(a.dump_output, "output", batch_shape(N::output_spec.shape, batch), out);
  }

  Json j = case_json(a, c, P, batch, "timing", "engine buffers");
  j.update({{"host_wall_us", walls[walls.size() / 2]},
            {"host_wall_calls", walls.size()},
            {"images_per_s", batch * 1e6 / t.median_us},
            {"flops_per_image", N::flops},
            {"param_count", N::param_count},
            {"input_numel", in_numel},
            {"output_numel", out_numel},
            {"build_s", build_s},
            {"path", engine.path(batch)},
            {"tf32", (a.tf32 && P == strata::DType::f32) || P == strata::DType::tf32},
            {"cudnn_graph", a.cudnn_graph},
            {"pdl", engine.stats().pdl},
            {"pdl_mode", strata::cuda::pdl_name(a.pdl)},
            {"pdl_check_off_us", engine.stats().pdl_check_off_us},
            {"pdl_check_on_us", engine.stats().pdl_check_on_us},
            {"bottleneck_clusters", a.bneck_clusters},
            {"tail_sums", a.tail_sums},
            {"stem_joins", a.stem_joins},
            {"block_clusters", a.block_clusters},
            {"branches", a.branches},
            {"plan_check", a.plan_check},
            {"plan_check_measured_us", engine.stats().plan_check_measured_us},
            {"plan_check_heuristic_us", engine.stats().plan_check_heuristic_us},
            {"plan_kept", engine.stats().plan_kept},
            {"kernels_compile_ms", engine.stats().kernels_compile_ms},
            {"kernels_load_ms", engine.stats().kernels_load_ms},
            {"kernels_from_disk", engine.stats().kernels_from_disk},
            {"fused_compile_ms", engine.stats().fused_compile_ms},
            {"engine_build_ms", engine.stats().build_ms},
            {"tuning_ms", engine.stats().tuning_ms},
            {"programs_compiled", engine.stats().programs_compiled},
            {"programs_compile_ms", engine.stats().programs_compile_ms},
            {"fused_from_disk", engine.stats().fused_from_disk},
            {"nonfinite_outputs", nonfinite},
            {"weights", a.weights.empty() ? a.save_weights : a.weights},
            {"input", a.input.empty() ? a.save_input : a.input},
            {"output", a.dump_output},
            {"status", nonfinite == 0 ? "ok" : "NONFINITE"}});
  j.update(timing_json(t));
  j["memory"] = Json{{"planned_arena_bytes", memory.planned_arena},
                     {"arena_bytes", memory.arena},
                     {"workspace_bytes", memory.workspace},
                     {"weight_bytes", memory.weights},
                     {"device_taken_bytes", memory.device_taken}};
  if (a.profile) {
    const sc::ProfileReport p = sc::profile_layers(engine, batch, std::string(c.network) + " " + std::string(c.id),
                                                   sc::Ceilings{a.ceil_tflops, a.ceil_gbs}, 20);
    p.print(std::cout);
    // What runs each step (the tactic the tuner chose), "label: what" per line.
    const std::string runs = engine.describe(batch);
    std::cout << "What runs each step:\n" << runs;
    std::map<std::string, std::string> tactic;
    std::istringstream lines(runs);
    for (std::string line; std::getline(lines, line);) {
      if (const auto colon = line.find(": "); colon != std::string::npos) {
        tactic[line.substr(0, colon)] = line.substr(colon + 2);
      }
    }
    // Measured tuning's timings per candidate (none under heuristic tuning, or from the cache).
    if (const auto& trials = engine.stats().tuning_trials; !trials.empty()) {
      std::cout << "Measured tuning (us per run of each candidate; - : could not run):\n";
      Json tj = Json::array();
      for (const sc::TuningTrial& trial : trials) {
        std::cout << "  " << std::left << std::setw(36) << trial.op << " " << std::setw(34) << trial.variant
                  << std::right;
        if (trial.us >= 0) {
          std::cout << std::fixed << std::setprecision(1) << std::setw(10) << trial.us;
        } else {
          std::cout << std::setw(10) << "-";
        }
        std::cout << (trial.note.empty() ? "" : "  (" + trial.note + ")") << "\n";
        tj.push_back({{"op", trial.op}, {"variant", trial.variant}, {"us", trial.us}, {"note", trial.note}});
      }
      j["tuning_trials"] = tj;
    }
    memory.print(std::cout);
    Json steps = Json::array();
    for (const sc::LayerProfile& l : p.steps) {
      steps.push_back({{"op", l.label}, {"kind", l.kind}, {"runs", tactic[l.label]}, {"us", l.us}, {"share", l.share},
                       {"flops", l.flops}, {"bytes", l.bytes}, {"tflop_per_s", l.tflops},
                       {"gb_per_s", l.gbs}, {"roofline_fraction", l.roofline}});
    }
    j["profile"] = steps;
    // The fused-network kernel's phases, timed inside the kernel.
    if (const auto phases = engine.fused_phases(batch); !phases.empty()) {
      std::cout << "Inside the fused kernel (SM clock of one thread as image 0 enters each phase;"
                   " a phase includes the wait at the barrier after it):\n";
      Json ph = Json::array();
      for (const auto& [name, us] : phases) {
        std::cout << "  " << std::left << std::setw(44) << name << std::right << std::fixed
                  << std::setprecision(2) << std::setw(9) << us << " us\n";
        ph.push_back({{"phase", name}, {"us", us}});
      }
      j["fused_phases"] = ph;
    }
  }
  emit(a, j);
  return nonfinite == 0 ? 0 : 1;
}

/// The engine options of a streaming case: 8-bit HWC input normalized with ImageNet's mean
/// and deviation on the GPU, two I/O slots.
strata::cuda::EngineOptions stream_options(const Args& a, int batch);

/// Distinct batches a streaming case cycles through.
inline constexpr int stream_distinct = 4;

/// `stream_distinct` batches of random bytes (`per_batch` each) in page-locked memory.
strata::cuda::PinnedBuffer stream_images(std::size_t per_batch);

/// Images/s of `count` batches of `batch` images handed to `enqueue(k)` back to back, then
/// `sync()`: median, min and max of --repeats runs.
template <class Enqueue, class Sync>
std::array<double, 3> stream_rates(const Args& a, int count, int batch, Enqueue&& enqueue,
                                   Sync&& sync) {
  std::vector<double> rates;
  for (int r = 0; r < a.repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int k = 0; k < count; ++k) {
      (void)enqueue(k);
    }
    sync();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rates.push_back(count * batch / s);
  }
  std::sort(rates.begin(), rates.end());
  return {rates[rates.size() / 2], rates.front(), rates.back()};
}

/// A streaming case (R2-stream): batches of 8-bit HWC images from page-locked host memory to
/// host results through Engine::enqueue (ImageNet normalization on the GPU), as many batches
/// as fill about --target-ms × 4 per repeat, images/s host to host; next to the same engine's
/// GPU-only throughput (forward() on its own buffers) in the same run.
template <class Net, DType P>
int run_stream(const Args& a, const CaseInfo& c, int batch) {
  namespace sc = strata::cuda;
  using N = std::remove_cvref_t<Net>;
  constexpr std::int64_t in_numel = N::input_spec.shape.numel();
  constexpr std::int64_t out_numel = N::output_spec.shape.numel();
  const strata::Weights<Net> w = case_weights<Net>(a);
  sc::Engine<Net, P> engine(w, stream_options(a, batch));

  const std::size_t in_per_batch = static_cast<std::size_t>(in_numel) * batch;
  const std::size_t out_per_batch = static_cast<std::size_t>(out_numel) * batch;
  const sc::PinnedBuffer in = stream_images(in_per_batch);
  sc::PinnedBuffer out(out_per_batch * stream_distinct * sizeof(float));
  constexpr int distinct = stream_distinct;
  auto enqueue = [&](int k) {
    const int d = k % distinct;
    return engine.enqueue(
        std::span<const std::uint8_t>(in.as<std::uint8_t>() + d * in_per_batch, in_per_batch),
        std::span<float>(out.as<float>() + d * out_per_batch, out_per_batch), batch);
  };

  // GPU only: forward() on the engine's own buffers, the same engine.
  STRATA_CUDA_CHECK(cudaMemcpy(engine.template input_buffer<std::uint8_t>(), in.get(),
                               in_per_batch, cudaMemcpyHostToDevice));
  const Timing t = time_gpu(
      [&] {
        engine.forward(engine.template input_buffer<std::uint8_t>(), engine.output_buffer(), batch,
                       engine.stream());
      },
      engine.stream(), a);

  // Host to host, overlapped: warm up, then repeats of `count` batches back to back.
  for (int k = 0; k < 2 * distinct; ++k) {
    (void)enqueue(k);
  }
  engine.synchronize();
  const int count = std::max(8, static_cast<int>(std::ceil(4 * a.target_ms * 1000.0 / t.median_us)));
  const std::array<double, 3> rates =
      stream_rates(a, count, batch, enqueue, [&] { engine.synchronize(); });
  const double stream_rate = rates[0];
  const double gpu_rate = batch * 1e6 / t.median_us;

  // The streamed output of batch 0 against infer() on the same bytes.
  (void)enqueue(0);
  engine.synchronize();
  std::vector<float> streamed(out.as<float>(), out.as<float>() + out_per_batch);
  std::vector<float> direct(out_per_batch);
  engine.infer(std::span<const std::uint8_t>(in.as<std::uint8_t>(), in_per_batch), direct, batch);
  const double err = strata::relative_error(std::span<const float>(streamed), std::span<const float>(direct));
  const auto nonfinite =
      std::count_if(direct.begin(), direct.end(), [](float v) { return !std::isfinite(v); });
  const bool ok = nonfinite == 0 && err < 1e-6;

  Json j = case_json(a, c, P, batch, "stream",
                     "u8 HWC, pinned host to pinned host, enqueue with 2 I/O slots");
  j.update({{"batches_per_repeat", count},
            {"stream_images_per_s", stream_rate},
            {"stream_images_per_s_min", rates[1]},
            {"stream_images_per_s_max", rates[2]},
            {"gpu_only_images_per_s", gpu_rate},
            {"stream_vs_gpu_only", stream_rate / gpu_rate},
            {"stream_vs_infer_rel_error", err},
            {"nonfinite_outputs", nonfinite},
            {"status", ok ? "ok" : "FAILED"}});
  j.update(timing_json(t));
  emit(a, j);
  return ok ? 0 : 1;
}

/// R2-stream through EnginePool (--gpus N): the same stream of batches handed to a pool of one
/// engine (GPU 0), then to a pool of N engines (GPUs 0..N-1) in turn, one host thread; images/s
/// host to host for each, and their ratio (issue 11's multi-GPU scaling).
template <class Net, DType P>
int run_stream_pool(const Args& a, const CaseInfo& c, int batch) {
  namespace sc = strata::cuda;
  using N = std::remove_cvref_t<Net>;
  constexpr std::int64_t in_numel = N::input_spec.shape.numel();
  constexpr std::int64_t out_numel = N::output_spec.shape.numel();
  int visible = 0;
  STRATA_CUDA_CHECK(cudaGetDeviceCount(&visible));
  if (visible < a.gpus) {
    throw strata::Error("--gpus " + std::to_string(a.gpus) + ": only " + std::to_string(visible) +
                        " CUDA devices are visible");
  }
  const strata::Weights<Net> w = case_weights<Net>(a);
  const std::size_t in_per_batch = static_cast<std::size_t>(in_numel) * batch;
  const std::size_t out_per_batch = static_cast<std::size_t>(out_numel) * batch;
  const sc::PinnedBuffer in = stream_images(in_per_batch);
  sc::PinnedBuffer out(out_per_batch * stream_distinct * sizeof(float));

  // Images/s (median of the repeats, then min and max) of `count` batches through `pool`.
  auto measure = [&](sc::EnginePool<Net, P>& pool, int count) {
    auto enqueue = [&](int k) {
      const int d = k % stream_distinct;
      return pool.enqueue(
          std::span<const std::uint8_t>(in.as<std::uint8_t>() + d * in_per_batch, in_per_batch),
          std::span<float>(out.as<float>() + d * out_per_batch, out_per_batch), batch);
    };
    for (int k = 0; k < 4 * pool.size(); ++k) {
      (void)enqueue(k);
    }
    pool.synchronize();
    return stream_rates(a, count, batch, enqueue, [&] { pool.synchronize(); });
  };

  // One GPU first: it also sizes the run (about 4 × --target-ms per repeat on one GPU).
  std::array<double, 3> one{};
  int count = 0;
  std::vector<float> first(out_per_batch);
  {
    sc::EnginePool<Net, P> pool(w, stream_options(a, batch), {0});
    const double probe = measure(pool, 4)[0];  // images/s
    count = std::max(8, static_cast<int>(std::ceil(4 * a.target_ms * 1e-3 * probe / batch)));
    one = measure(pool, count);
    std::copy_n(out.as<float>(), out_per_batch, first.begin());
  }
  std::vector<int> devices(static_cast<std::size_t>(a.gpus));
  for (int d = 0; d < a.gpus; ++d) {
    devices[static_cast<std::size_t>(d)] = d;
  }
  sc::EnginePool<Net, P> pool(w, stream_options(a, batch), devices);
  // As many batches per GPU as the one-GPU run had: repeats of about the same length.
  const std::array<double, 3> many = measure(pool, count * a.gpus);
  // Every engine's output for the same bytes against GPU 0's, each engine in turn.
  auto nonfinite = [](std::span<const float> v) {
    return static_cast<long long>(
        std::count_if(v.begin(), v.end(), [](float f) { return !std::isfinite(f); }));
  };
  long long bad = nonfinite(first);
  double err = 0.0;
  for (int g = 0; g < pool.size(); ++g) {
    const sc::DeviceGuard guard(pool.device(g));
    (void)pool.engine(g).enqueue(
        std::span<const std::uint8_t>(in.as<std::uint8_t>(), in_per_batch),
        std::span<float>(out.as<float>(), out_per_batch), batch);
    pool.engine(g).synchronize();
    const std::span<const float> got(out.as<float>(), out_per_batch);
    bad += nonfinite(got);
    const double e = strata::relative_error(got, std::span<const float>(first));
    err = std::isnan(e) || e > err ? e : err;
  }
  // Engines alike choose alike (heuristic tuning); 16-bit sums may still differ slightly.
  const bool ok = bad == 0 && err < 1e-3;
  Json j = case_json(a, c, P, batch, "stream_pool",
                     "u8 HWC, pinned host to pinned host, EnginePool::enqueue, 2 I/O slots an engine");
  j.update({{"gpus", a.gpus},
            {"batches_per_repeat_one_gpu", count},
            {"batches_per_repeat_pool", count * a.gpus},
            {"one_gpu_images_per_s", one[0]},
            {"one_gpu_images_per_s_min", one[1]},
            {"one_gpu_images_per_s_max", one[2]},
            {"pool_images_per_s", many[0]},
            {"pool_images_per_s_min", many[1]},
            {"pool_images_per_s_max", many[2]},
            {"scaling", many[0] / one[0]},
            {"pool_vs_gpu0_rel_error", err},
            {"nonfinite_outputs", bad},
            {"status", ok ? "ok" : "FAILED"}});
  emit(a, j);
  return ok ? 0 : 1;
}

/// One case of `Net` in precision P: a timing case, or a streaming one (through an EnginePool
/// where --gpus is given).
template <class Net, DType P>
int run_net(const Args& a, const CaseInfo& c, int batch) {
  if constexpr (P != DType::tf32) {
    if (c.id.ends_with("-stream")) {
      return a.gpus > 0 ? run_stream_pool<Net, P>(a, c, batch) : run_stream<Net, P>(a, c, batch);
    }
  }
  return run_case<Net, P>(a, c, batch);
}

/// Every case in precision P (main() has checked that the case runs in P).
template <DType P>
int run_precision(const Args& a, const CaseInfo& c, int batch) {
  if (c.network == "resnet18") {
    return run_net<strata::models::ResNet18, P>(a, c, batch);
  }
  if (c.network == "resnet50") {
    return run_net<strata::models::ResNet50, P>(a, c, batch);
  }
  if constexpr (P != DType::tf32) {  // (TF32 is BENCHMARKS.md's case for the ResNets)
    if (c.network == "mnist_cnn") {
      return run_net<strata::models::MnistCnn, P>(a, c, batch);
    }
  }
  if constexpr (P == DType::f16) {  // (the deployable networks run in f16)
    if (c.network == "mobilenet_v2") {
      return run_case<strata::models::MobileNetV2, P>(a, c, batch);
    }
    if (c.network == "efficientnet_b0") {
      return run_case<strata::models::EfficientNetB0, P>(a, c, batch);
    }
    if (c.network == "densenet121") {
      return run_case<strata::models::DenseNet121, P>(a, c, batch);
    }
    if (c.network == "unet") {
      return run_case<strata::models::UNet, P>(a, c, batch);
    }
  }
  throw strata::Error("case " + std::string(c.id) + " does not run in " +
                      std::string(strata::dtype_name(P)));
}

int run_f32(const Args& a, const CaseInfo& c, int batch);   // bench_f32_bf16.cpp
int run_tf32(const Args& a, const CaseInfo& c, int batch);  // bench_f32_bf16.cpp
int run_f16(const Args& a, const CaseInfo& c, int batch);   // bench_f16.cpp
int run_bf16(const Args& a, const CaseInfo& c, int batch);  // bench_f32_bf16.cpp

}  // namespace strata_bench
