# Finds what Strata's CUDA backend links — the CUDA toolkit's runtime, NVRTC, cuBLAS(Lt) — and
# cuDNN, then defines the INTERFACE target strata::cuda on top of strata::strata. No nvcc is
# needed: Strata's kernels are compiled at run time by NVRTC. Used by Strata's own build and by
# the installed package (strataConfig.cmake), so a consumer gets the same target.
# cuDNN is looked for in CUDNN_ROOT (variable or environment), the CUDA install, the system, and
# PyTorch's nvidia.cudnn Python package (where the GPU machine keeps it).
# Sets STRATA_HAVE_CUDA to ON when the target exists.
set(STRATA_HAVE_CUDA OFF)
find_package(CUDAToolkit QUIET)
if(NOT CUDAToolkit_FOUND OR NOT TARGET CUDA::nvrtc OR NOT TARGET CUDA::cublasLt)
  message(STATUS "strata: no CUDA toolkit (with NVRTC and cuBLASLt) found; no strata::cuda")
  return()
endif()

set(_strata_cudnn_hints "")
if(DEFINED ENV{CUDNN_ROOT})
  list(APPEND _strata_cudnn_hints "$ENV{CUDNN_ROOT}")
endif()
if(CUDNN_ROOT)
  list(APPEND _strata_cudnn_hints "${CUDNN_ROOT}")
endif()
find_package(Python3 COMPONENTS Interpreter QUIET)
if(Python3_Interpreter_FOUND)
  execute_process(
    COMMAND "${Python3_EXECUTABLE}" -c "import nvidia.cudnn as m; print(m.__path__[0])"
    OUTPUT_VARIABLE _strata_py_cudnn OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(_strata_py_cudnn)
    list(APPEND _strata_cudnn_hints "${_strata_py_cudnn}")
  endif()
endif()
list(APPEND _strata_cudnn_hints "${CUDAToolkit_LIBRARY_ROOT}" "${CUDAToolkit_TARGET_DIR}")
find_path(CUDNN_INCLUDE_DIR cudnn.h HINTS ${_strata_cudnn_hints} ${CUDAToolkit_INCLUDE_DIRS}
          PATH_SUFFIXES include)
find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 HINTS ${_strata_cudnn_hints} ${CUDAToolkit_LIBRARY_DIR}
             PATH_SUFFIXES lib lib64 lib/x86_64-linux-gnu)
if(NOT CUDNN_INCLUDE_DIR OR NOT CUDNN_LIBRARY)
  message(STATUS "strata: cuDNN not found (set CUDNN_ROOT); no strata::cuda")
  return()
endif()
message(STATUS "strata: CUDA ${CUDAToolkit_VERSION}, cuDNN ${CUDNN_INCLUDE_DIR} ${CUDNN_LIBRARY}")

if(NOT TARGET strata::cuda)
  if(TARGET strata)  # Strata's own build tree
    add_library(strata_cuda INTERFACE)
    add_library(strata::cuda ALIAS strata_cuda)
    set(_strata_cuda_target strata_cuda)
  else()             # the installed package
    add_library(strata::cuda INTERFACE IMPORTED)
    set(_strata_cuda_target strata::cuda)
  endif()
  # Threads: the kernel library is compiled by NVRTC on several threads (rtc::compile_parts).
  find_package(Threads REQUIRED)
  target_link_libraries(${_strata_cuda_target} INTERFACE strata::strata CUDA::cudart CUDA::nvrtc
                        CUDA::cublas CUDA::cublasLt "${CUDNN_LIBRARY}" Threads::Threads)
  target_include_directories(${_strata_cuda_target} SYSTEM INTERFACE "${CUDNN_INCLUDE_DIR}")
endif()
set(STRATA_HAVE_CUDA ON)
