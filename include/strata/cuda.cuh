#pragma once
/// Strata's full umbrella for nvcc translation units: the host library, the CUDA backend's
/// host headers (Engine, wrappers) and the kernels' definitions (kernels.cuh). Host C++ files
/// include strata/cuda/engine.hpp instead and link the one nvcc unit strata/cuda/kernels.cu.
#include "strata/strata.hpp"
#include "strata/cuda/check.hpp"
#include "strata/cuda/cublaslt.hpp"
#include "strata/cuda/cudnn.hpp"
#include "strata/cuda/device.hpp"
#include "strata/cuda/device_weights.hpp"
#include "strata/cuda/engine.hpp"
#include "strata/cuda/engine_options.hpp"
#include "strata/cuda/exec_plan.hpp"
#include "strata/cuda/executor.hpp"
#include "strata/cuda/graph_capture.hpp"
#include "strata/cuda/kernels.cuh"
#include "strata/cuda/kernels.hpp"
#include "strata/cuda/profiler.hpp"
#include "strata/cuda/resources.hpp"
#include "strata/cuda/storage.hpp"
#include "strata/cuda/tactic.hpp"
#include "strata/cuda/tactics/registry.hpp"
#include "strata/cuda/tuner.hpp"
#include "strata/cuda/tuning_cache.hpp"
