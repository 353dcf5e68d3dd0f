// Helpers shared by the fuzz targets (tests/fuzz/*_fuzz.cc).
#ifndef ATTNSERVE_TESTS_FUZZ_FUZZ_UTIL_H_
#define ATTNSERVE_TESTS_FUZZ_FUZZ_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace attnserve::fuzz {

// A directory of this process's own under $TMPDIR (or /tmp), made on first
// use and removed at exit. The loaders read paths, so the targets write their
// input there: the real file-reading code is what gets fuzzed.
const std::string& ScratchDir();

// Writes `size` bytes to `path`, replacing it; aborts if it cannot (that is
// the machine, not the input).
void WriteBytes(const std::string& path, const uint8_t* data, size_t size);
void RemoveFile(const std::string& path);

// tests/data/<sub>.
std::string TestData(const std::string& sub);

}  // namespace attnserve::fuzz

#endif  // ATTNSERVE_TESTS_FUZZ_FUZZ_UTIL_H_
