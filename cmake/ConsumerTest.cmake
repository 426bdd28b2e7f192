# Script mode: install Strata into a scratch prefix, then configure, build and run a consumer
# project that only does find_package(strata).
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build
                  -DSTRATA_BUILD_TESTS=OFF -DSTRATA_BUILD_EXAMPLES=OFF
                  -DSTRATA_BUILD_BENCHMARKS=OFF -DSTRATA_ENABLE_CUDA=OFF
                  -DCMAKE_INSTALL_PREFIX=${WORK_DIR}/prefix
                COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND ${CMAKE_COMMAND} --install ${WORK_DIR}/build COMMAND_ERROR_IS_FATAL ANY)
# CONSUMER_ARGS: extra -D settings for the consumer (cuDNN's location, other prefixes).
set(_prefix "${WORK_DIR}/prefix")
set(_args "")
foreach(a ${CONSUMER_ARGS})
  if(a MATCHES "^-DCMAKE_PREFIX_PATH=(.+)$")
    string(APPEND _prefix ";${CMAKE_MATCH_1}")
  elseif(NOT a MATCHES "=$")
    list(APPEND _args "${a}")
  endif()
endforeach()
# With nlohmann-json hidden from find_package: the installed package must not need it (only
# Strata's tests and benchmark do).
execute_process(COMMAND ${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${WORK_DIR}/consumer
                  "-DCMAKE_PREFIX_PATH=${_prefix}" -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=TRUE
                  ${_args} COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/consumer COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND ${WORK_DIR}/consumer/consumer RESULT_VARIABLE rc OUTPUT_VARIABLE out)
message("${out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the consumer program failed (exit ${rc})")
endif()
