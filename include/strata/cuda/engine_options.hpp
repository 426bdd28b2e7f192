#pragma once
/// What a cuda::Engine is built for (EngineOptions) and what building it did (EngineStats).
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace strata::cuda {

/// How tactics are chosen for ops with several ways to run: each tactic's heuristic claim
/// (instant), or by timing every candidate inside a CUDA graph at construction (results kept in
/// EngineOptions::tuning_cache).
enum class Tuning { heuristic, measured };

/// What an Engine is built for.
struct EngineOptions {
  int max_batch = 1;                       ///< largest batch forward() accepts
  Tuning tuning = Tuning::heuristic;
  std::filesystem::path tuning_cache{};    ///< measured choices, read and written (optional)
  std::vector<int> capture_batches{};      ///< graphs captured at construction; others on first use
  /// Batches up to this size run as one fused kernel when the network fits (NetStorage::fused_fit);
  /// larger ones take the per-op path. 0 (the default, until the fused kernel beats the per-op
  /// path: docs/cuda_backend.md): always per-op.
  int fused_max_batch = 0;
  /// f32 engines only: let convolutions and matmuls use TF32 tensor cores (f32 storage and
  /// accumulation, inputs rounded to a 10-bit mantissa) — several times faster, about 1e-3
  /// relative error instead of 1e-6. Off by default, as in TensorRT and PyTorch's convolutions.
  bool allow_tf32 = false;
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
  /// Strata's run-time compiled kernels for this precision, as first made ready in this process:
  /// compiled by NVRTC or read from the disk cache, then loaded (milliseconds).
  double kernels_compile_ms = 0.0;
  double kernels_load_ms = 0.0;
  bool kernels_from_disk = false;
  /// The fused-network kernel: whether this engine has one (the network fits and
  /// fused_max_batch > 0), and how its construction went (compiled, or read from the disk cache).
  bool fused_network = false;
  double fused_compile_ms = 0.0;
  bool fused_from_disk = false;
};

}  // namespace strata::cuda
