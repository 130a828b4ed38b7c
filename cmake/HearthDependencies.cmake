# Finds every external dependency once, for all layers.
# All of them are Debian packages installed by scripts/install-deps.sh.
find_package(Threads REQUIRED)
find_package(Torch REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
# CLI11 is header-only; tools add HEARTH_CLI11_INCLUDE to their include path.
find_path(HEARTH_CLI11_INCLUDE CLI/CLI.hpp)
if(NOT HEARTH_CLI11_INCLUDE)
  message(FATAL_ERROR "CLI11 not found: run scripts/install-deps.sh")
endif()

# c10d's ProcessGroupGloo declarations are guarded by this macro; Debian's
# libtorch is built with Gloo, so the symbols are there.
set(HEARTH_TORCH_DEFINITIONS USE_C10D_GLOO)

# CUDA/NCCL are optional: AUTO turns them on only if the toolkit and a CUDA
# build of LibTorch are both present. A CPU machine builds everything else.
set(HEARTH_HAVE_CUDA OFF)
if(NOT HEARTH_WITH_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER AND TARGET torch_cuda)
    set(HEARTH_HAVE_CUDA ON)
  elseif(HEARTH_WITH_CUDA STREQUAL "ON")
    message(FATAL_ERROR "HEARTH_WITH_CUDA=ON but no CUDA compiler or CUDA LibTorch was found")
  endif()
endif()
message(STATUS "hearth: CUDA/NCCL paths ${HEARTH_HAVE_CUDA}")

# Shared compile settings for hearth's own targets.
function(hearth_target_defaults target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
  target_compile_definitions(${target} PUBLIC ${HEARTH_TORCH_DEFINITIONS})
endfunction()
