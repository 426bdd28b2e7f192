# The CUDA backend in Strata's own build: strata::cuda when the toolkit and cuDNN are found
# (StrataCudaTarget.cmake, shared with the installed package). Header-only: nothing is built.
set(STRATA_HAVE_CUDA OFF)
if(NOT STRATA_ENABLE_CUDA)
  return()
endif()
include(StrataCudaTarget)
