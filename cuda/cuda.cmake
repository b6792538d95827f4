# CUDA part of theta, included from the top-level CMakeLists (enable_language must run
# there). For now: find the toolkit and build the device probe
# (th::cuda_available). THETA_CUDA=AUTO builds it whenever nvcc is found.
set(THETA_HAS_CUDA OFF)
if(NOT THETA_CUDA STREQUAL "OFF")
  find_program(THETA_NVCC nvcc HINTS /usr/local/cuda/bin ENV CUDA_PATH PATH_SUFFIXES bin)
  if(THETA_NVCC)
    set(CMAKE_CUDA_COMPILER ${THETA_NVCC})
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 75 90)
    endif()
    set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(THETA_HAS_CUDA ON)
  elseif(THETA_CUDA STREQUAL "ON")
    message(FATAL_ERROR "THETA_CUDA=ON but nvcc was not found (looked in PATH and /usr/local/cuda/bin)")
  endif()
endif()
message(STATUS "theta: CUDA backend ${THETA_HAS_CUDA}")

if(THETA_HAS_CUDA)
  target_sources(theta PRIVATE ${PROJECT_SOURCE_DIR}/cuda/probe.cu)
  set_target_properties(theta PROPERTIES CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}"
                                         CUDA_RUNTIME_LIBRARY Shared)
  target_compile_definitions(theta PRIVATE THETA_HAS_CUDA=1)
  target_link_libraries(theta PUBLIC CUDA::cudart)
endif()
