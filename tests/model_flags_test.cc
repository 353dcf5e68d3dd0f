// server/model_flags.cc: the model flags of attnserve, parsed before loading:
// [NAME=]DIR, repositories, per-model precisions, duplicate and unknown
// names, and the joining of repeated flags.
#include "server/model_flags.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/model_testing.h"

namespace attnserve {
namespace {

using ::attnserve::testing::MakeTempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ParseModelSpecTest, TheNameDefaultsToTheDirectorysBaseName) {
  absl::StatusOr<ModelSpec> plain = ParseModelSpec("/models/bert-base/");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->name, "bert-base");
  EXPECT_EQ(plain->dir, "/models/bert-base/");
  absl::StatusOr<ModelSpec> named = ParseModelSpec("en.v2=/models/bert");
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_EQ(named->name, "en.v2");
  EXPECT_EQ(named->dir, "/models/bert");
  absl::StatusOr<ModelSpec> relative = ParseModelSpec("demo_model");
  ASSERT_TRUE(relative.ok());
  EXPECT_EQ(relative->name, "demo_model");
}

TEST(ParseModelSpecTest, RefusesAnEmptyDirectoryOrABadName) {
  for (const char* bad : {"", "name=", "a b=/m", "=/m", "x/y=/m", "/"}) {
    SCOPED_TRACE(bad);
    absl::StatusOr<ModelSpec> spec = ParseModelSpec(bad);
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(spec.status().message(), HasSubstr("--model="));
  }
}

TEST(ScanModelRepositoryTest, EverySubdirectoryWithAConfigIsAModel) {
  namespace fs = std::filesystem;
  const std::string repo = MakeTempDir("repo");
  for (const char* name : {"zeta", "alpha", "no_config"}) {
    fs::create_directories(fs::path(repo) / name);
  }
  std::ofstream(fs::path(repo) / "zeta" / "config.json") << "{}";
  std::ofstream(fs::path(repo) / "alpha" / "config.json") << "{}";
  std::ofstream(fs::path(repo) / "config.json") << "{}";  // a file, not a dir
  absl::StatusOr<std::vector<ModelSpec>> specs = ScanModelRepository(repo);
  ASSERT_TRUE(specs.ok()) << specs.status();
  ASSERT_EQ(specs->size(), 2u);
  EXPECT_EQ((*specs)[0].name, "alpha");
  EXPECT_EQ((*specs)[0].dir, repo + "/alpha");
  EXPECT_EQ((*specs)[1].name, "zeta");

  const std::string empty = MakeTempDir("empty_repo");
  EXPECT_EQ(ScanModelRepository(empty).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ScanModelRepository(empty + "/missing").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(ModelPrecisionsTest, ParsesNamesAndRefusesUnknownOnes) {
  absl::StatusOr<std::map<std::string, std::string>> p =
      ParseModelPrecisions({"a=bf16", "b=int8"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->at("a"), "bf16");
  EXPECT_EQ(p->at("b"), "int8");
  EXPECT_FALSE(ParseModelPrecisions({"a"}).ok());
  EXPECT_FALSE(ParseModelPrecisions({"=bf16"}).ok());
  EXPECT_FALSE(ParseModelPrecisions({"a=bf16", "a=fp32"}).ok());

  const std::vector<ModelSpec> specs = {{"a", "/m/a"}, {"b", "/m/b"}};
  EXPECT_TRUE(CheckModelSpecs(specs, *p).ok());
  absl::Status unknown = CheckModelSpecs(specs, {{"c", "bf16"}});
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(unknown.message(),
            "--model_precision=c=bf16: no model \"c\" is served; served: "
            "\"a\", \"b\"");
  EXPECT_TRUE(CheckModelSpecs(specs, {}, "b").ok());
  absl::Status no_default = CheckModelSpecs(specs, {}, "c");
  EXPECT_EQ(no_default.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(no_default.message(),
            "--default_model=c is not a served model; served: \"a\", \"b\"");
  absl::Status twins = CheckModelSpecs({{"a", "/m/a"}, {"a", "/n/a"}}, {});
  EXPECT_EQ(twins.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(twins.message(), HasSubstr("/m/a and /n/a"));
}

TEST(JoinRepeatedFlagsTest, JoinsEveryOccurrenceAtTheFirstsPlace) {
  EXPECT_THAT(
      JoinRepeatedFlags(
          {"--model=a=/m/a", "--address=x", "-model", "/m/b",
           "--model_precision=a=bf16", "--model=/m/c", "--model_repository=/r",
           "--model_precision", "b=int8"},
          {"model", "model_precision"}),
      ElementsAre("--model=a=/m/a,/m/b,/m/c", "--address=x",
                  "--model_precision=a=bf16,b=int8", "--model_repository=/r"));
  // After "--" nothing is a flag.
  EXPECT_THAT(JoinRepeatedFlags({"--model=a", "--", "--model=b"}, {"model"}),
              ElementsAre("--model=a", "--", "--model=b"));
  // A trailing flag without its value is left for Abseil to refuse.
  EXPECT_THAT(JoinRepeatedFlags({"--model"}, {"model"}),
              ElementsAre("--model"));
}

}  // namespace
}  // namespace attnserve
