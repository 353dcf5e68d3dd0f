// --precision=auto on the real binary: with oneDNN capped below AMX
// (ONEDNN_MAX_CPU_ISA, as on a host without AMX) it serves fp32 and says why.
// Where this machine has AMX, uncapped, it serves bf16.
#include <cstdlib>
#include <string>

#include "gtest/gtest.h"
#include "model/kernels/cpu.h"
#include "tests/golden.h"
#include "tests/server_process.h"

namespace attnserve {
namespace {

using ::attnserve::testing::DataPath;
using ::attnserve::testing::ServerProcess;

TEST(PrecisionAutoTest, Fp32WithoutAmx) {
  ::setenv("ONEDNN_MAX_CPU_ISA", "AVX2", 1);
  ServerProcess server;
  const bool started = server.Start(
      ATTNSERVE_BIN, {"--model=" + DataPath("tiny_bert"), "--precision=auto"});
  ::unsetenv("ONEDNN_MAX_CPU_ISA");
  ASSERT_TRUE(started);
  EXPECT_NE(server.log().find("--precision=auto chose fp32: oneDNN runs avx2, "
                              "no AMX"),
            std::string::npos)
      << server.log();
  EXPECT_NE(server.log().find(", fp32) on 127.0.0.1"), std::string::npos)
      << server.log();
}

TEST(PrecisionAutoTest, FollowsThisMachine) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(
      ATTNSERVE_BIN, {"--model=" + DataPath("tiny_bert"), "--precision=auto"}));
  const bool amx = EffectiveCpuIsa() == "avx512_core_amx";
  EXPECT_NE(server.log().find(amx ? ", bf16) on" : ", fp32) on"),
            std::string::npos)
      << server.log();
}

}  // namespace
}  // namespace attnserve
