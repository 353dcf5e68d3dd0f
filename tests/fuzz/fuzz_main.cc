// libFuzzer's entry point for one target: the build compiles this file once
// per target with ATTNSERVE_FUZZ_TARGET set to the entry function
// (tests/fuzz/CMakeLists.txt).
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return attnserve::fuzz::ATTNSERVE_FUZZ_TARGET(data, size);
}
