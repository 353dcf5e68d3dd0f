// The encoder families (model/checkpoint/families.cc) through the loader and
// the encoder: what each fixture reports, RoBERTa's position limit, DistilBERT's
// computed sinusoidal table, and errors that name the family's own tensors.
// The numbers themselves are checked against PyTorch in encoder_test.cc
// (GoldenTest), head_mask_test.cc and head_ranking_test.cc.
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/checkpoint/weights.h"
#include "model/encoder/encoder.h"
#include "nlohmann/json.hpp"
#include "tests/golden.h"

namespace attnserve {
namespace {

using ::attnserve::testing::DataPath;
using ::attnserve::testing::MaxAbsDiff;
using ::attnserve::testing::ReadFile;
using ::attnserve::testing::ReadGolden;
using ::testing::AllOf;
using ::testing::HasSubstr;
using Json = nlohmann::json;

struct FixtureInfo {
  const char* dir;
  const char* family;
  const char* model_type;
  bool has_pooler;
  int max_tokens;
  int embedding_size;
};

class FamilyFixtureTest : public ::testing::TestWithParam<FixtureInfo> {};

TEST_P(FamilyFixtureTest, LoadsWithFamilyInfo) {
  const FixtureInfo& f = GetParam();
  auto encoder = Encoder::Load(DataPath(f.dir));
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  const ModelInfo& info = (*encoder)->info();
  EXPECT_EQ(info.family, f.family);
  EXPECT_EQ(info.config.model_type, f.model_type);
  EXPECT_EQ(info.has_pooler, f.has_pooler);
  EXPECT_EQ(info.config.max_tokens(), f.max_tokens);
  EXPECT_EQ(info.config.embedding_size, f.embedding_size);
  EXPECT_EQ(info.weight_dtype, "F32");
}

// The longest input runs; one more token is refused with the limit named.
TEST_P(FamilyFixtureTest, LongestInputRunsAndOneMoreIsRefused) {
  const FixtureInfo& f = GetParam();
  auto encoder = Encoder::Load(DataPath(f.dir));
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  SequenceTask task;
  task.token_ids.assign(f.max_tokens, 5);
  task.want_hidden = true;
  auto out = (*encoder)->Forward({task});
  ASSERT_TRUE(out.ok()) << out.status();
  for (float v : (*out)[0].hidden) ASSERT_TRUE(std::isfinite(v));
  task.token_ids.push_back(5);
  out = (*encoder)->Forward({task});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(out.status().message(),
              HasSubstr(std::to_string(f.max_tokens)));
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, FamilyFixtureTest,
    ::testing::Values(
        FixtureInfo{"tiny_bert", "bert", "bert", true, 40, 32},
        // max_position_embeddings 42, pad_token_id 1: positions 2..41.
        FixtureInfo{"tiny_roberta", "roberta", "roberta", true, 40, 36},
        FixtureInfo{"tiny_distilbert", "distilbert", "distilbert", false, 33,
                    40},
        FixtureInfo{"tiny_electra", "electra", "electra", false, 30, 16}),
    [](const ::testing::TestParamInfo<FixtureInfo>& info) {
      return std::string(info.param.dir);
    });

TEST(RobertaTest, LimitMessageExplainsThePadOffset) {
  auto encoder = Encoder::Load(DataPath("tiny_roberta"));
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  SequenceTask task;
  task.token_ids.assign(41, 5);
  auto out = (*encoder)->Forward({task});
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(),
              AllOf(HasSubstr("41 tokens"), HasSubstr("limit of 40"),
                    HasSubstr("max_position_embeddings 42"),
                    HasSubstr("pad_token_id 1")));
}

// Pad ids inside a RoBERTa sequence take position pad_token_id and do not
// advance the others (the golden "withpad8"); a sequence without them
// differs from one with them beyond the pad token itself.
TEST(RobertaTest, PadTokensDoNotAdvancePositions) {
  auto encoder = Encoder::Load(DataPath("tiny_roberta"));
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  const auto golden = ReadGolden(DataPath("tiny_roberta/golden.json"));
  const auto& g = ::attnserve::testing::FindGolden(golden, "withpad8");
  SequenceTask task;
  task.token_ids = g.token_ids;
  task.want_hidden = true;
  auto out = (*encoder)->Forward({task});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_LE(MaxAbsDiff((*out)[0].hidden, g.hidden),
            ::attnserve::testing::kHiddenTolerance);
}

// ---- Checkpoints written here ---------------------------------------------

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), bytes.size());
  ASSERT_TRUE(out.good()) << path;
}

// F32 safetensors of `tensors` (name → (shape, values)).
std::string Safetensors(
    const std::map<std::string, std::pair<std::vector<int64_t>,
                                          std::vector<float>>>& tensors) {
  Json header = {{"__metadata__", {{"format", "pt"}}}};
  std::string data;
  for (const auto& [name, t] : tensors) {
    const size_t begin = data.size();
    data.append(reinterpret_cast<const char*>(t.second.data()),
                t.second.size() * sizeof(float));
    header[name] = {{"dtype", "F32"},
                    {"shape", t.first},
                    {"data_offsets", {begin, data.size()}}};
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) {
    out[i] = static_cast<char>((uint64_t{text.size()} >> (8 * i)) & 0xff);
  }
  return out + text + data;
}

// transformers' create_sinusoidal_embeddings, the naive twin of the one in
// families.cc: (n, d), even columns sin, odd columns cos.
std::vector<float> Sinusoidal(int64_t n, int64_t d) {
  std::vector<float> out(n * d);
  for (int64_t pos = 0; pos < n; ++pos) {
    for (int64_t j = 0; j < d; ++j) {
      const double angle = pos / std::pow(10000.0, 2.0 * (j / 2) / d);
      out[pos * d + j] = j % 2 == 0 ? std::sin(angle) : std::cos(angle);
    }
  }
  return out;
}

class DistilBertCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "families_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    config_ = {{"model_type", "distilbert"},
               {"vocab_size", 20},
               {"dim", 12},
               {"n_layers", 2},
               {"n_heads", 3},
               {"hidden_dim", 20},
               {"max_position_embeddings", 16},
               {"activation", "gelu"},
               {"sinusoidal_pos_embds", true}};
  }
  void TearDown() override {
    if (!root_.empty()) std::system(("rm -rf '" + root_ + "'").c_str());
  }

  // A model directory `name` with every tensor of the table but `skip`; the
  // position table is the sinusoidal one.
  std::string Write(const std::string& name, const Json& config,
                    const std::string& skip = "") {
    const std::string dir = root_ + "/" + name;
    EXPECT_EQ(::mkdir(dir.c_str(), 0755), 0);
    WriteAll(dir + "/config.json", config.dump());
    auto parsed = ParseConfig(config.dump(), "config.json");
    EXPECT_TRUE(parsed.ok()) << parsed.status();
    std::mt19937 rng(11);
    std::normal_distribution<float> dist(0.f, 0.2f);
    std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>>
        tensors;
    for (const NamedShape& ns : WeightTable(*parsed, false)) {
      int64_t n = 1;
      for (int64_t d : ns.shape) n *= d;
      std::vector<float> v(n);
      for (float& x : v) x = dist(rng);
      if (ns.name == "embeddings.position_embeddings.weight") {
        v = Sinusoidal(ns.shape[0], ns.shape[1]);
      }
      if (ns.name != skip) tensors["distilbert." + ns.name] = {ns.shape, v};
    }
    WriteAll(dir + "/model.safetensors", Safetensors(tensors));
    return dir;
  }

  std::string root_;
  Json config_;
};

TEST_F(DistilBertCheckpointTest, SinusoidalTableIsComputedWhenAbsent) {
  const std::string stored = Write("stored", config_);
  const std::string computed =
      Write("computed", config_, "embeddings.position_embeddings.weight");
  auto a = Encoder::Load(stored);
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = Encoder::Load(computed);
  ASSERT_TRUE(b.ok()) << b.status();
  SequenceTask task;
  task.token_ids = {2, 7, 9, 11, 4, 3, 1, 0, 19, 5, 6, 8, 10, 12, 13, 3};
  task.want_hidden = true;
  task.attention_layers = {0, 1};
  auto out_a = (*a)->Forward({task});
  auto out_b = (*b)->Forward({task});
  ASSERT_TRUE(out_a.ok() && out_b.ok());
  EXPECT_LE(MaxAbsDiff((*out_a)[0].hidden, (*out_b)[0].hidden), 1e-6);
  EXPECT_LE(MaxAbsDiff((*out_a)[0].attention, (*out_b)[0].attention), 1e-7);
}

TEST_F(DistilBertCheckpointTest, LearnedTableMustBeStored) {
  Json config = config_;
  config["sinusoidal_pos_embds"] = false;
  const std::string dir =
      Write("learned", config, "embeddings.position_embeddings.weight");
  auto encoder = Encoder::Load(dir);
  ASSERT_FALSE(encoder.ok());
  EXPECT_THAT(encoder.status().message(),
              HasSubstr("missing tensor "
                        "\"distilbert.embeddings.position_embeddings.weight\""));
}

TEST_F(DistilBertCheckpointTest, MissingLayerTensorIsNamedWithItsPrefix) {
  const std::string dir =
      Write("nolin", config_, "transformer.layer.1.ffn.lin2.bias");
  auto encoder = Encoder::Load(dir);
  ASSERT_FALSE(encoder.ok());
  EXPECT_THAT(encoder.status().message(),
              HasSubstr("\"distilbert.transformer.layer.1.ffn.lin2.bias\""));
}

TEST_F(DistilBertCheckpointTest, TokenTypesOtherThanZeroAreRefused) {
  auto encoder = Encoder::Load(Write("types", config_));
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  EXPECT_FALSE((*encoder)->info().config.has_token_types);
  SequenceTask task;
  task.token_ids = {2, 5, 3};
  task.token_type_ids = {0, 1, 1};
  auto out = (*encoder)->Forward({task});
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(), HasSubstr("type_vocab_size"));
}

TEST(ElectraTest, ProjectionIsRequiredWhenEmbeddingSizeDiffers) {
  std::string tmpl = ::testing::TempDir() + "families_test.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const std::string dir = tmpl;
  const Json config = Json::parse(ReadFile(DataPath("tiny_electra/config.json")));
  WriteAll(dir + "/config.json", config.dump());
  // The fixture's tensors without embeddings_project.weight.
  const std::string bytes = ReadFile(DataPath("tiny_electra/model.safetensors"));
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  Json header = Json::parse(bytes.substr(8, n));
  header.erase("electra.embeddings_project.weight");
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) {
    out[i] = static_cast<char>((uint64_t{text.size()} >> (8 * i)) & 0xff);
  }
  WriteAll(dir + "/model.safetensors", out + text + bytes.substr(8 + n));
  auto encoder = Encoder::Load(dir);
  std::system(("rm -rf '" + dir + "'").c_str());
  ASSERT_FALSE(encoder.ok());
  EXPECT_THAT(encoder.status().message(),
              HasSubstr("missing tensor \"electra.embeddings_project.weight\""));
}

}  // namespace
}  // namespace attnserve
