# CUDA part of theta, included from the top-level CMakeLists (enable_language must run
# there). THETA_CUDA=AUTO builds it whenever nvcc is found (CI compiles it without a GPU);
# OFF leaves it out (th::cuda_available() is then false and GPU tensors are a DeviceError).
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
  # NVRTC compiles lib/core/scalar_math.hpp into every fused kernel: embed its text.
  file(READ ${PROJECT_SOURCE_DIR}/lib/core/scalar_math.hpp THETA_SCALAR_MATH)
  configure_file(${PROJECT_SOURCE_DIR}/cuda/scalar_math_source.cpp.in
                 ${CMAKE_CURRENT_BINARY_DIR}/theta_generated/scalar_math_source.cpp @ONLY)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/lib/core/scalar_math.hpp)
  file(GLOB THETA_CUDA_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/cuda/*.cu ${PROJECT_SOURCE_DIR}/cuda/*.cpp)
  target_sources(theta PRIVATE ${THETA_CUDA_SOURCES} ${CMAKE_CURRENT_BINARY_DIR}/theta_generated/scalar_math_source.cpp)
  set_target_properties(theta PROPERTIES CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}"
                                         CUDA_RUNTIME_LIBRARY Shared)
  target_compile_options(theta PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr>)
  target_include_directories(theta PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_definitions(theta PRIVATE THETA_HAS_CUDA=1)
  target_link_libraries(theta PUBLIC CUDA::cudart PRIVATE CUDA::cublas CUDA::cusolver CUDA::nvrtc)
endif()
