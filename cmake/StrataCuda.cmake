# Detects the CUDA toolchain and cuDNN; defines strata::cuda when both are usable.
# cuDNN is looked for in CUDNN_ROOT, the CUDA install, the system, and PyTorch's
# nvidia.cudnn Python package (where the GPU machine keeps it).
set(STRATA_HAVE_CUDA OFF)
if(NOT STRATA_ENABLE_CUDA)
  return()
endif()
include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  message(STATUS "strata: no CUDA compiler found; building the host parts only")
  return()
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "52")
  set(CMAKE_CUDA_ARCHITECTURES 90)
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
list(APPEND _strata_cudnn_hints "${CUDAToolkit_LIBRARY_ROOT}")

find_path(CUDNN_INCLUDE_DIR cudnn.h HINTS ${_strata_cudnn_hints} ${CUDAToolkit_INCLUDE_DIRS}
          PATH_SUFFIXES include)
find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 HINTS ${_strata_cudnn_hints}
             PATH_SUFFIXES lib lib64 lib/x86_64-linux-gnu)
if(NOT CUDNN_INCLUDE_DIR OR NOT CUDNN_LIBRARY)
  message(STATUS "strata: cuDNN not found (set CUDNN_ROOT); building the host parts only")
  return()
endif()
message(STATUS "strata: cuDNN ${CUDNN_INCLUDE_DIR} ${CUDNN_LIBRARY}")

# CMake < 3.27 does not know that nvcc 12+ supports C++20 and rejects cuda_std_20; tell it.
if(NOT "cuda_std_20" IN_LIST CMAKE_CUDA_COMPILE_FEATURES)
  list(APPEND CMAKE_CUDA_COMPILE_FEATURES cuda_std_20)
  set(CMAKE_CUDA20_COMPILE_FEATURES cuda_std_20)
  set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
  set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
endif()

# Strata's CUDA kernels: the one nvcc translation unit (kernels.cu), instantiated for f32, f16
# and bf16. Everything that names a network type (Engine, tests, examples) is host C++: nvcc's
# host code generation cannot name types with class-type template arguments.
add_library(strata_cuda_kernels STATIC ${PROJECT_SOURCE_DIR}/include/strata/cuda/kernels.cu)
target_link_libraries(strata_cuda_kernels PUBLIC strata::strata CUDA::cudart CUDA::cublas
                      CUDA::cublasLt "${CUDNN_LIBRARY}")
target_include_directories(strata_cuda_kernels SYSTEM PUBLIC "${CUDNN_INCLUDE_DIR}"
                           ${CUDAToolkit_INCLUDE_DIRS})
target_compile_features(strata_cuda_kernels PRIVATE cuda_std_20)
target_compile_options(strata_cuda_kernels PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -Xcudafe=--diag_suppress=177>)

# strata::cuda: the host library plus the CUDA backend (link it; include strata/cuda/engine.hpp).
add_library(strata_cuda INTERFACE)
add_library(strata::cuda ALIAS strata_cuda)
target_link_libraries(strata_cuda INTERFACE strata_cuda_kernels)
set(STRATA_HAVE_CUDA ON)
