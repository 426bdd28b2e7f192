#pragma once
/// Stream capture into an executable CUDA graph, written once: `capture_graph` ends the capture
/// and frees the partial graph whatever the enqueuing code does (returns or throws), and
/// `time_graph` replays a graph to measure it. Used by the executor (one graph per batch), the
/// tuner (each candidate timed as it will run) and the profiler (one graph per step).
#include <cuda_runtime.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "strata/cuda/check.hpp"
#include "strata/cuda/resources.hpp"

namespace strata::cuda {

/// Captures what `enqueue(s)` puts on stream `s` (thread-local capture mode) and instantiates
/// it. If `enqueue` throws, the capture is ended, its partial graph freed, and the exception
/// passed on.
template <class Enqueue>
[[nodiscard]] GraphExec capture_graph(cudaStream_t s, Enqueue&& enqueue) {
  STRATA_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  try {
    enqueue(s);
  } catch (...) {
    cudaGraph_t partial = nullptr;
    (void)cudaStreamEndCapture(s, &partial);
    if (partial != nullptr) {
      (void)cudaGraphDestroy(partial);
    }
    (void)cudaGetLastError();
    throw;
  }
  cudaGraph_t raw = nullptr;
  STRATA_CUDA_CHECK(cudaStreamEndCapture(s, &raw));
  const Graph graph(raw);
  return GraphExec::instantiate(graph);
}

/// Like capture_graph, but a failure of any kind (the enqueuing code throws, a library declines
/// inside capture) yields nothing instead of an exception: for trying candidates.
template <class Enqueue>
[[nodiscard]] std::optional<GraphExec> try_capture_graph(cudaStream_t s, Enqueue&& enqueue) {
  try {
    return capture_graph(s, enqueue);
  } catch (...) {
    (void)cudaGetLastError();
    return std::nullopt;
  }
}

/// Milliseconds per replay of `exec` on `s`: one warm-up, then the median of `repeats` timings
/// of `iters` back-to-back replays (iters <= 0: chosen from a first replay, 2 when it takes over
/// 0.5 ms, else 10).
[[nodiscard]] inline float time_graph(const GraphExec& exec, cudaStream_t s, int iters = 0,
                                      int repeats = 5) {
  const Event a = Event::create();
  const Event b = Event::create();
  exec.launch(s);  // warm-up, and a first estimate of the replay's length
  a.record(s);
  exec.launch(s);
  b.record(s);
  b.synchronize();
  if (iters <= 0) {
    iters = b.elapsed_ms_since(a) > 0.5f ? 2 : 10;
  }
  std::vector<float> runs;
  for (int r = 0; r < repeats; ++r) {
    a.record(s);
    for (int it = 0; it < iters; ++it) {
      exec.launch(s);
    }
    b.record(s);
    b.synchronize();
    runs.push_back(b.elapsed_ms_since(a) / static_cast<float>(iters));
  }
  std::sort(runs.begin(), runs.end());
  return runs[runs.size() / 2];
}

}  // namespace strata::cuda
