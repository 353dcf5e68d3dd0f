// Replays every committed fuzz input through its target's entry function
// (tests/fuzz/fuzz_targets.h), built with the project's compiler: the seed
// corpus tests/fuzz/corpus/<target>/ and the inputs that once crashed a
// target, tests/fuzz/regressions/<target>/. A FUZZ_CHECK that fails aborts
// this binary, naming the check; the file being replayed is in the log
// (SCOPED_TRACE).
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/fuzz/fuzz_targets.h"
#include "tests/golden.h"

namespace attnserve {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> FilesIn(const fs::path& dir) {
  std::vector<fs::path> files;
  if (!fs::is_directory(dir)) return files;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

class FuzzRegressionTest
    : public ::testing::TestWithParam<fuzz::Target> {
 protected:
  // Feeds every file of tests/fuzz/<kind>/<target>/ to the target; returns
  // how many there were.
  size_t Replay(const std::string& kind) {
    const fs::path dir =
        fs::path(ATTNSERVE_FUZZ_DIR) / kind / GetParam().name;
    const std::vector<fs::path> files = FilesIn(dir);
    for (const fs::path& file : files) {
      SCOPED_TRACE(file.string());
      std::fprintf(stderr, "replaying %s\n", file.c_str());
      const std::string bytes = testing::ReadFile(file.string());
      EXPECT_EQ(GetParam().fn(reinterpret_cast<const uint8_t*>(bytes.data()),
                              bytes.size()),
                0);
    }
    return files.size();
  }
};

TEST_P(FuzzRegressionTest, SeedCorpusPasses) {
  // Every target has real inputs to start from.
  EXPECT_GT(Replay("corpus"), 0u);
}

TEST_P(FuzzRegressionTest, PastCrashesStayFixed) { Replay("regressions"); }

TEST_P(FuzzRegressionTest, EmptyAndTinyInputs) {
  for (const std::string& bytes :
       {std::string(), std::string(1, '\0'), std::string(2, '\xff'),
        std::string("\x00\x00\x00\x00\x00\x00\x00\x00", 8)}) {
    EXPECT_EQ(GetParam().fn(reinterpret_cast<const uint8_t*>(bytes.data()),
                            bytes.size()),
              0);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Targets, FuzzRegressionTest, ::testing::ValuesIn(fuzz::AllTargets()),
    [](const ::testing::TestParamInfo<fuzz::Target>& info) {
      return std::string(info.param.name);
    });

}  // namespace
}  // namespace attnserve
