// Encoder::Load on good and corrupt checkpoints. Every corrupt case must fail
// with a Status (never crash) whose message names the file and the tensor or
// key at fault. Corrupt checkpoints are built in a fresh temp directory per
// test from a tiny model (vocab 10, hidden 8, 2 layers, 2 heads of size 4).
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
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
#include "model/checkpoint/config.h"
#include "model/checkpoint/weights.h"
#include "model/demo/demo_model.h"
#include "model/encoder/encoder.h"
#include "nlohmann/json.hpp"
#include "tests/golden.h"

namespace attnserve {
namespace {

using ::attnserve::testing::DataPath;
using ::attnserve::testing::ReadFile;
using ::testing::AllOf;
using ::testing::HasSubstr;
using Json = nlohmann::json;

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), bytes.size());
  ASSERT_TRUE(out.good()) << path;
}

ModelConfig TinyConfig() {
  ModelConfig c;
  c.vocab_size = 10;
  c.hidden_size = 8;
  c.num_layers = 2;
  c.num_heads = 2;
  c.intermediate_size = 16;
  c.max_position_embeddings = 8;
  c.type_vocab_size = 2;
  return c;
}

// One tensor as stored: dtype, shape and little-endian bytes.
struct RawTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};
using Tensors = std::map<std::string, RawTensor>;

int64_t Elements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

RawTensor F32(const std::vector<int64_t>& shape,
              const std::vector<float>& values) {
  RawTensor t{"F32", shape, std::string(values.size() * 4, '\0')};
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

// Zero bytes of `dtype` for `shape` (element size `elem`).
RawTensor Zeros(const std::string& dtype, const std::vector<int64_t>& shape,
                int elem) {
  return RawTensor{dtype, shape, std::string(Elements(shape) * elem, '\0')};
}

// A complete, loadable set of F32 tensors for `c`, names prefixed `prefix`.
Tensors GoodTensors(const ModelConfig& c, bool pooler = true,
                    const std::string& prefix = "") {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.f, 0.1f);
  Tensors out;
  for (const NamedShape& ns : WeightTable(c, pooler)) {
    std::vector<float> v(Elements(ns.shape));
    const bool gamma = ns.name.find("LayerNorm.weight") != std::string::npos;
    for (float& x : v) x = gamma ? 1.f : dist(rng);
    out[prefix + ns.name] = F32(ns.shape, v);
  }
  return out;
}

// A safetensors file as a header object plus data, so tests can corrupt
// either before serializing.
struct Checkpoint {
  Json header = Json::object();
  std::string data;

  explicit Checkpoint(const Tensors& tensors) {
    header["__metadata__"] = {{"format", "pt"}};
    for (const auto& [name, t] : tensors) {
      header[name] = {
          {"dtype", t.dtype},
          {"shape", t.shape},
          {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
      data += t.bytes;
    }
  }

  std::string Bytes() const { return Serialize(header.dump(), data); }

  static std::string Serialize(std::string header_text,
                               const std::string& data) {
    header_text.append((8 - header_text.size() % 8) % 8, ' ');
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) {
      out[i] =
          static_cast<char>((uint64_t{header_text.size()} >> (8 * i)) & 0xff);
    }
    return out + header_text + data;
  }
};

// Each test gets its own model directory under the test temp dir, named
// "model" inside a fresh mkdtemp directory so info().name is predictable.
class LoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "loader_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/model";
    ASSERT_EQ(::mkdir(dir_.c_str(), 0755), 0);
  }
  void TearDown() override {
    if (!root_.empty()) std::system(("rm -rf '" + root_ + "'").c_str());
  }

  std::string config_path() const { return dir_ + "/config.json"; }
  std::string weights_path() const { return dir_ + "/model.safetensors"; }

  void WriteConfig(const ModelConfig& c) {
    WriteAll(config_path(), ConfigJson(c));
  }
  void WriteConfigJson(const Json& j) { WriteAll(config_path(), j.dump(2)); }
  void WriteWeights(const Tensors& t) {
    WriteAll(weights_path(), Checkpoint(t).Bytes());
  }
  void WriteWeights(const Checkpoint& ck) {
    WriteAll(weights_path(), ck.Bytes());
  }

  // Only the embeddings, and a config claiming 2^30 layers: the loader gets
  // past the embeddings and must refuse the first missing layer without
  // having allocated anything per layer.
  void WriteEmbeddingsWithHugeLayerCount() {
    Tensors t;
    for (const auto& [name, raw] : GoodTensors(TinyConfig(), false)) {
      if (name.rfind("embeddings.", 0) == 0) t[name] = raw;
    }
    WriteWeights(t);
    Json j = Json::parse(ConfigJson(TinyConfig()));
    j["num_hidden_layers"] = 1 << 30;
    WriteConfigJson(j);
  }

  // A good tiny model; tests then break one thing.
  void WriteGood(const ModelConfig& c = TinyConfig()) {
    WriteConfig(c);
    WriteWeights(GoodTensors(c));
  }

  absl::StatusOr<std::unique_ptr<Encoder>> Load() {
    return Encoder::Load(dir_);
  }

  // Loads, expects failure, and returns the message (empty on success).
  std::string LoadError() {
    auto encoder = Load();
    EXPECT_FALSE(encoder.ok()) << "loaded a corrupt checkpoint";
    return encoder.ok() ? "" : std::string(encoder.status().message());
  }

  std::string root_;
  std::string dir_;
};

// Runs one sequence through `encoder` and checks the output is finite.
void ExpectForwardRuns(Encoder& encoder) {
  SequenceTask task;
  task.token_ids = {2, 5, 6, 3};
  task.want_hidden = true;
  task.attention_layers = {0};
  task.pooling = PoolingMode::kCls;
  auto out = encoder.Forward({task});
  ASSERT_TRUE(out.ok()) << out.status();
  const int h = encoder.info().config.hidden_size;
  ASSERT_EQ((*out)[0].hidden.size(), 4u * h);
  for (float v : (*out)[0].hidden) ASSERT_TRUE(std::isfinite(v));
  EXPECT_EQ((*out)[0].attention.size(),
            static_cast<size_t>(encoder.info().config.num_heads * 4 * 4));
  EXPECT_EQ((*out)[0].embedding.size(), static_cast<size_t>(h));
}

// ---------------------------------------------------------------------------
// Good checkpoints

struct FixtureCase {
  const char* dir;
  const char* dtype;
};

void PrintTo(const FixtureCase& f, std::ostream* os) { *os << f.dir; }

class FixtureLoadTest : public ::testing::TestWithParam<FixtureCase> {};

TEST_P(FixtureLoadTest, LoadsWithInfo) {
  auto encoder = Encoder::Load(DataPath(GetParam().dir));
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  const ModelInfo& info = (*encoder)->info();
  EXPECT_EQ(info.name, GetParam().dir);
  EXPECT_EQ(info.weight_dtype, GetParam().dtype);
  EXPECT_TRUE(info.has_pooler);
  EXPECT_EQ(info.default_pooling, PoolingMode::kCls);
  EXPECT_EQ(info.precision, Precision::kFloat32);
  EXPECT_EQ(info.config.vocab_size, 99);
  EXPECT_EQ(info.config.hidden_size, 32);
  EXPECT_EQ(info.config.num_layers, 2);
  EXPECT_EQ(info.config.num_heads, 4);
  EXPECT_EQ(info.config.head_size(), 8);
  EXPECT_EQ(info.config.intermediate_size, 64);
  EXPECT_EQ(info.config.max_position_embeddings, 40);
  EXPECT_EQ(info.config.type_vocab_size, 2);
  EXPECT_EQ(info.config.pad_token_id, 0);
  EXPECT_FLOAT_EQ(info.config.layer_norm_eps, 1e-12f);
  EXPECT_EQ(info.config.hidden_act, "gelu");
}

TEST_P(FixtureLoadTest, NameIgnoresTrailingSlashes) {
  auto encoder = Encoder::Load(DataPath(GetParam().dir) + "//");
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  EXPECT_EQ((*encoder)->info().name, GetParam().dir);
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, FixtureLoadTest,
    ::testing::Values(FixtureCase{"tiny_bert", "F32"},
                      FixtureCase{"tiny_bert_f16", "F16"},
                      FixtureCase{"tiny_bert_bf16_prefixed", "BF16"}),
    [](const auto& info) { return std::string(info.param.dir); });

TEST_F(LoaderTest, TinyModelLoadsWithInfo) {
  WriteGood();
  auto encoder = Load();
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  const ModelInfo& info = (*encoder)->info();
  EXPECT_EQ(info.name, "model");
  EXPECT_EQ(info.weight_dtype, "F32");
  EXPECT_TRUE(info.has_pooler);
  EXPECT_EQ(info.config.head_size(), 4);
  ExpectForwardRuns(**encoder);
}

TEST_F(LoaderTest, PrefixedTinyModelLoads) {
  WriteConfig(TinyConfig());
  WriteWeights(GoodTensors(TinyConfig(), true, "bert."));
  auto encoder = Load();
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  EXPECT_TRUE((*encoder)->info().has_pooler);
}

TEST_F(LoaderTest, WithoutPoolerHasPoolerFalse) {
  // Through the library's own F32 writer this time.
  const ModelConfig c = TinyConfig();
  std::map<std::string, HostTensor> tensors;
  for (const NamedShape& ns : WeightTable(c, /*with_pooler=*/false)) {
    tensors[ns.name] =
        HostTensor{ns.shape, std::vector<float>(Elements(ns.shape), 0.f)};
  }
  WriteConfig(c);
  ASSERT_TRUE(WriteSafetensors(weights_path(), tensors).ok());
  auto encoder = Load();
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  EXPECT_FALSE((*encoder)->info().has_pooler);
  // Asking for the pooler of a model without one is a request error.
  SequenceTask task;
  task.token_ids = {2, 3};
  task.pooling = PoolingMode::kPooler;
  auto out = (*encoder)->Forward({task});
  EXPECT_FALSE(out.ok());
}

TEST_F(LoaderTest, ExtraTensorsAreIgnored) {
  const ModelConfig c = TinyConfig();
  Tensors t = GoodTensors(c);
  // What BertForMaskedLM / older transformers versions also save.
  t["embeddings.position_ids"] = Zeros("I64", {1, 8}, 8);
  t["cls.predictions.bias"] = Zeros("F32", {10}, 4);
  t["cls.predictions.transform.dense.weight"] = Zeros("F32", {8, 8}, 4);
  t["cls.predictions.decoder.weight"] = Zeros("F16", {10, 8}, 2);
  t["some.flag"] = Zeros("BOOL", {}, 1);
  WriteConfig(c);
  WriteWeights(t);
  auto encoder = Load();
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  EXPECT_EQ((*encoder)->info().weight_dtype, "F32");
}

TEST_F(LoaderTest, ExtraTensorsAreIgnoredWhenPrefixed) {
  const ModelConfig c = TinyConfig();
  Tensors t = GoodTensors(c, true, "bert.");
  t["bert.embeddings.position_ids"] = Zeros("I64", {1, 8}, 8);
  t["cls.predictions.bias"] = Zeros("F32", {10}, 4);
  WriteConfig(c);
  WriteWeights(t);
  auto encoder = Load();
  ASSERT_TRUE(encoder.ok()) << encoder.status();
}

TEST_F(LoaderTest, SingleHeadLoadsAndRuns) {
  ModelConfig c = TinyConfig();
  c.num_heads = 1;
  WriteGood(c);
  auto encoder = Load();
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  EXPECT_EQ((*encoder)->info().config.head_size(), 8);
  ExpectForwardRuns(**encoder);
}

TEST_F(LoaderTest, OneLayerHeadSizeFourLoadsAndRuns) {
  ModelConfig c = TinyConfig();
  c.num_layers = 1;
  c.hidden_size = 8;
  c.num_heads = 2;
  WriteGood(c);
  auto encoder = Load();
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  EXPECT_EQ((*encoder)->info().config.head_size(), 4);
  ExpectForwardRuns(**encoder);
}

TEST_F(LoaderTest, DemoModelLoads) {
  DemoModelOptions options;
  options.hidden_size = 8;
  options.num_layers = 1;
  options.num_heads = 2;
  options.intermediate_size = 16;
  options.max_position_embeddings = 8;
  ASSERT_TRUE(WriteDemoModel(dir_, options).ok());
  auto encoder = Load();
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  EXPECT_TRUE((*encoder)->info().has_pooler);
  ExpectForwardRuns(**encoder);
}

TEST_F(LoaderTest, MixedDtypesLoadAsMixed) {
  const ModelConfig c = TinyConfig();
  Tensors t = GoodTensors(c);
  // LayerNorm gamma of ones as F16 (0x3c00) and BF16 (0x3f80).
  RawTensor f16{"F16", {8}, ""}, bf16{"BF16", {8}, ""};
  for (int i = 0; i < 8; ++i) {
    f16.bytes += std::string("\x00\x3c", 2);
    bf16.bytes += std::string("\x80\x3f", 2);
  }
  t["embeddings.LayerNorm.weight"] = f16;
  t["encoder.layer.0.output.LayerNorm.weight"] = bf16;
  WriteConfig(c);
  WriteWeights(t);
  auto encoder = Load();
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  EXPECT_EQ((*encoder)->info().weight_dtype, "mixed");
}

// ---------------------------------------------------------------------------
// config.json

TEST_F(LoaderTest, MissingConfig) {
  WriteWeights(GoodTensors(TinyConfig()));
  auto encoder = Load();
  ASSERT_FALSE(encoder.ok());
  EXPECT_EQ(encoder.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(encoder.status().message(), HasSubstr(config_path()));
}

TEST_F(LoaderTest, MissingModelDirectory) {
  auto encoder = Encoder::Load(dir_ + "/absent");
  ASSERT_FALSE(encoder.ok());
  EXPECT_THAT(encoder.status().message(), HasSubstr(dir_ + "/absent"));
}

TEST_F(LoaderTest, MalformedConfigJson) {
  WriteWeights(GoodTensors(TinyConfig()));
  for (const char* text : {"{\"vocab_size\": 10,", "", "[1, 2]", "null"}) {
    WriteAll(config_path(), text);
    EXPECT_THAT(LoadError(), HasSubstr(config_path())) << text;
  }
}

class MissingConfigKeyTest : public LoaderTest,
                             public ::testing::WithParamInterface<const char*> {
};

TEST_P(MissingConfigKeyTest, NamesTheKey) {
  WriteGood();
  Json j = Json::parse(ConfigJson(TinyConfig()));
  ASSERT_EQ(j.erase(GetParam()), 1u);
  WriteConfigJson(j);
  EXPECT_THAT(LoadError(), AllOf(HasSubstr(config_path()),
                                 HasSubstr(std::string("missing key \"") +
                                           GetParam() + "\"")));
}

TEST_P(MissingConfigKeyTest, NullCountsAsMissing) {
  WriteGood();
  Json j = Json::parse(ConfigJson(TinyConfig()));
  j[GetParam()] = nullptr;
  WriteConfigJson(j);
  EXPECT_THAT(LoadError(), AllOf(HasSubstr(config_path()),
                                 HasSubstr(std::string("\"") + GetParam())));
}

TEST_P(MissingConfigKeyTest, WrongTypeNamesTheKey) {
  WriteGood();
  Json j = Json::parse(ConfigJson(TinyConfig()));
  for (const Json& bad : {Json("8"), Json(8.5), Json(-8), Json(true),
                          Json::array({8}), Json(0)}) {
    j[GetParam()] = bad;
    WriteConfigJson(j);
    EXPECT_THAT(LoadError(), AllOf(HasSubstr(config_path()),
                                   HasSubstr(std::string("\"") + GetParam())))
        << bad.dump();
  }
}

INSTANTIATE_TEST_SUITE_P(RequiredKeys, MissingConfigKeyTest,
                         ::testing::Values("vocab_size", "hidden_size",
                                           "num_hidden_layers",
                                           "num_attention_heads",
                                           "intermediate_size",
                                           "max_position_embeddings"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.param);  // the key
                         });

TEST_F(LoaderTest, HiddenNotDivisibleByHeads) {
  ModelConfig c = TinyConfig();
  c.hidden_size = 10;
  c.num_heads = 4;
  WriteGood(c);
  EXPECT_THAT(LoadError(),
              AllOf(HasSubstr(config_path()), HasSubstr("hidden_size 10"),
                    HasSubstr("num_attention_heads 4")));
}

TEST_F(LoaderTest, UnsupportedActivationIsRefusedByName) {
  ModelConfig c = TinyConfig();
  WriteGood(c);
  c.hidden_act = "silu";
  WriteConfig(c);
  auto encoder = Load();
  ASSERT_FALSE(encoder.ok());
  EXPECT_EQ(encoder.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(encoder.status().message(),
              AllOf(HasSubstr(config_path()), HasSubstr("\"silu\"")));
}

TEST_F(LoaderTest, RelativePositionsRefused) {
  WriteGood();
  Json j = Json::parse(ConfigJson(TinyConfig()));
  j["position_embedding_type"] = "relative_key";
  WriteConfigJson(j);
  EXPECT_THAT(LoadError(),
              AllOf(HasSubstr(config_path()), HasSubstr("relative_key")));
}

// A config whose shapes disagree with the checkpoint is reported as a shape
// mismatch of the first tensor read.
TEST_F(LoaderTest, ConfigVocabDisagreesWithCheckpoint) {
  WriteGood();
  ModelConfig c = TinyConfig();
  c.vocab_size = 11;
  WriteConfig(c);
  EXPECT_THAT(
      LoadError(),
      AllOf(
          HasSubstr(weights_path()),
          HasSubstr("\"embeddings.word_embeddings.weight\" has shape [10, 8], "
                    "expected [11, 8]")));
}

// Death-test body: loads `dir` with at most 4 GB of address space and exits
// 0 when the load fails with a message containing `want`, 1 otherwise.
[[noreturn]] void LoadInSmallAddressSpaceAndExit(const std::string& dir,
                                                 const std::string& want) {
  const rlim_t four_gb = rlim_t{4} << 30;
  struct rlimit limit;
  limit.rlim_cur = four_gb;
  limit.rlim_max = four_gb;
  ::setrlimit(RLIMIT_AS, &limit);
  auto encoder = Encoder::Load(dir);
  const bool good =
      !encoder.ok() &&
      std::string(encoder.status().message()).find(want) != std::string::npos;
  std::_Exit(good ? 0 : 1);
}

// BUG (model/weights.cc, LoadWeights: `w.layers.resize(config.num_layers)`
// before any layer tensor is read): config.json may say num_hidden_layers up
// to 2^30 (ParseConfig's cap), and the loader then allocates 2^30 ·
// sizeof(LayerWeights) ≈ 309 GB up front, which throws std::bad_alloc through
// Encoder::Load and aborts the process (or, with overcommit, takes the
// machine's memory) instead of reporting the missing
// "encoder.layer.0.attention.self.query.weight". Fix: read each layer into a
// local LayerWeights and push_back it after its 16 tensors are read (so the
// vector grows only as far as the file has layers); optionally also cap
// num_hidden_layers in ParseConfig (e.g. ≤ 1024).
// The load runs in a child process limited to 4 GB of address space, so the
// current code dies there (bad_alloc → abort) without touching this machine.
TEST_F(LoaderTest, HugeLayerCountFailsWithoutCrashing) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "the sanitizers map terabytes of shadow memory, so a 4 GB "
                  "address-space limit kills the process before the load";
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  GTEST_SKIP() << "the sanitizers map terabytes of shadow memory, so a 4 GB "
                  "address-space limit kills the process before the load";
#endif
#endif
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // Embeddings only: the loader gets past them and reaches the layers.
  WriteEmbeddingsWithHugeLayerCount();
  EXPECT_EXIT(
      LoadInSmallAddressSpaceAndExit(dir_, "missing tensor \"encoder.layer.0."),
      ::testing::ExitedWithCode(0), "");
}

// The same config in-process, by memory: nothing per layer may be allocated
// before the layers are read. EncoderOptions::prune_heads' (L, H) mask was
// (2^30 layers × 2 heads = 2 GB zeroed, inside the 4 GB limit above; soak
// bad_checkpoints' layers_1e9 peaked at 3.8 GB and took 17 s to be refused).
TEST_F(LoaderTest, HugeLayerCountAllocatesNothingBeforeTheLayersAreRead) {
  WriteEmbeddingsWithHugeLayerCount();
  struct rusage before, after;
  ASSERT_EQ(::getrusage(RUSAGE_SELF, &before), 0);
  const std::string message = LoadError();
  ASSERT_EQ(::getrusage(RUSAGE_SELF, &after), 0);
  EXPECT_THAT(message, HasSubstr("missing tensor \"encoder.layer.0."));
  // ru_maxrss is in kB: the peak may not grow by 256 MB (it grew by 2 GB).
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 256 * 1024);
}

// ---------------------------------------------------------------------------
// model.safetensors: the file

TEST_F(LoaderTest, MissingWeights) {
  WriteConfig(TinyConfig());
  auto encoder = Load();
  ASSERT_FALSE(encoder.ok());
  EXPECT_EQ(encoder.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(encoder.status().message(), HasSubstr(weights_path()));
}

TEST_F(LoaderTest, WeightsShorterThanEightBytes) {
  WriteConfig(TinyConfig());
  for (size_t n : {0, 3, 7}) {
    WriteAll(weights_path(), std::string(n, '\x01'));
    EXPECT_THAT(LoadError(),
                AllOf(HasSubstr(weights_path()), HasSubstr("truncated")))
        << n;
  }
}

TEST_F(LoaderTest, HeaderLengthLargerThanFile) {
  WriteConfig(TinyConfig());
  std::string bytes = Checkpoint(GoodTensors(TinyConfig())).Bytes();
  const uint64_t claimed = bytes.size();  // > size - 8
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(claimed >> (8 * i));
  WriteAll(weights_path(), bytes);
  EXPECT_THAT(LoadError(),
              AllOf(HasSubstr(weights_path()),
                    HasSubstr("header length " + std::to_string(claimed))));
}

TEST_F(LoaderTest, MalformedHeaderJson) {
  WriteConfig(TinyConfig());
  const std::string data(64, '\0');
  for (const char* header : {"{\"embeddings.word_embeddings.weight\": {",
                             "not json", "[]", "\"str\""}) {
    WriteAll(weights_path(), Checkpoint::Serialize(header, data));
    EXPECT_THAT(LoadError(), AllOf(HasSubstr(weights_path()),
                                   HasSubstr("malformed header JSON")))
        << header;
  }
}

class MissingEntryFieldTest
    : public LoaderTest,
      public ::testing::WithParamInterface<const char*> {};

TEST_P(MissingEntryFieldTest, NamesTensorAndField) {
  WriteConfig(TinyConfig());
  Checkpoint ck(GoodTensors(TinyConfig()));
  const std::string name = "encoder.layer.1.attention.self.key.bias";
  ASSERT_EQ(ck.header[name].erase(GetParam()), 1u);
  WriteWeights(ck);
  EXPECT_THAT(LoadError(), AllOf(HasSubstr(weights_path()),
                                 HasSubstr("tensor \"" + name + "\""),
                                 HasSubstr(GetParam())));
}

INSTANTIATE_TEST_SUITE_P(Fields, MissingEntryFieldTest,
                         ::testing::Values("dtype", "shape", "data_offsets"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.param);  // the field
                         });

TEST_F(LoaderTest, DataOffsetsPastEndOfFile) {
  WriteConfig(TinyConfig());
  Checkpoint ck(GoodTensors(TinyConfig()));
  const std::string name = "pooler.dense.bias";
  const uint64_t end = ck.data.size() + 4;
  ck.header[name]["data_offsets"] = {end - 32, end};
  WriteWeights(ck);
  EXPECT_THAT(
      LoadError(),
      AllOf(HasSubstr(weights_path()), HasSubstr("tensor \"" + name + "\""),
            HasSubstr(std::to_string(end)), HasSubstr("outside")));
}

TEST_F(LoaderTest, DataOffsetBeginAfterEnd) {
  WriteConfig(TinyConfig());
  Checkpoint ck(GoodTensors(TinyConfig()));
  const std::string name = "embeddings.LayerNorm.bias";
  ck.header[name]["data_offsets"] = {64, 32};
  WriteWeights(ck);
  EXPECT_THAT(LoadError(), AllOf(HasSubstr(weights_path()),
                                 HasSubstr("tensor \"" + name + "\""),
                                 HasSubstr("[64, 32]")));
}

// The good fixture with bytes cut off its end: the message names the first
// tensor (in name order, as the header is read) that now ends past the data.
TEST_F(LoaderTest, FixtureTruncatedInTheData) {
  const std::string good =
      ReadFile(DataPath("tiny_bert") + "/model.safetensors");
  WriteAll(config_path(), ReadFile(DataPath("tiny_bert") + "/config.json"));
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) {
    header_len = (header_len << 8) | static_cast<uint8_t>(good[i]);
  }
  const Json header = Json::parse(good.substr(8, header_len));
  const size_t data_size = good.size() - 8 - header_len;
  for (size_t cut : {size_t{1}, size_t{100}, data_size / 2, data_size}) {
    SCOPED_TRACE(cut);
    WriteAll(weights_path(), good.substr(0, good.size() - cut));
    std::string first_past_end;
    for (const auto& [name, entry] : header.items()) {
      if (name == "__metadata__") continue;
      if (entry["data_offsets"][1].get<uint64_t>() > data_size - cut) {
        first_past_end = name;
        break;
      }
    }
    ASSERT_FALSE(first_past_end.empty());
    EXPECT_THAT(LoadError(),
                AllOf(HasSubstr(weights_path()), HasSubstr("truncated"),
                      HasSubstr("tensor \"" + first_past_end + "\"")));
  }
}

TEST_F(LoaderTest, FixtureTruncatedInTheHeader) {
  const std::string good =
      ReadFile(DataPath("tiny_bert") + "/model.safetensors");
  WriteAll(config_path(), ReadFile(DataPath("tiny_bert") + "/config.json"));
  WriteAll(weights_path(), good.substr(0, 100));
  EXPECT_THAT(LoadError(),
              AllOf(HasSubstr(weights_path()), HasSubstr("header length")));
}

TEST_F(LoaderTest, ByteCountDoesNotMatchShape) {
  WriteConfig(TinyConfig());
  Checkpoint ck(GoodTensors(TinyConfig()));
  const std::string name = "encoder.layer.0.intermediate.dense.bias";
  ck.header[name]["shape"] = {15};  // 16 floats stored
  WriteWeights(ck);
  EXPECT_THAT(
      LoadError(),
      AllOf(HasSubstr(weights_path()), HasSubstr("tensor \"" + name + "\""),
            HasSubstr("64 bytes for shape [15] of F32 (expected 60)")));
}

TEST_F(LoaderTest, ByteCountDoesNotMatchDtype) {
  WriteConfig(TinyConfig());
  Checkpoint ck(GoodTensors(TinyConfig()));
  const std::string name = "encoder.layer.0.intermediate.dense.bias";
  ck.header[name]["dtype"] = "F16";  // 64 bytes stored, 32 expected
  WriteWeights(ck);
  EXPECT_THAT(LoadError(), AllOf(HasSubstr(weights_path()),
                                 HasSubstr("tensor \"" + name + "\""),
                                 HasSubstr("expected 32")));
}

TEST_F(LoaderTest, UnknownDtype) {
  WriteConfig(TinyConfig());
  Checkpoint ck(GoodTensors(TinyConfig()));
  const std::string name = "embeddings.token_type_embeddings.weight";
  ck.header[name]["dtype"] = "Q4_0";
  WriteWeights(ck);
  EXPECT_THAT(LoadError(), AllOf(HasSubstr(weights_path()),
                                 HasSubstr("tensor \"" + name + "\""),
                                 HasSubstr("unknown dtype \"Q4_0\"")));
}

// ---------------------------------------------------------------------------
// model.safetensors: the tensors

struct MissingCase {
  std::string name;    // without prefix
  std::string prefix;  // "" or "bert."
};

std::vector<MissingCase> AllMissingCases() {
  std::vector<MissingCase> cases;
  for (const char* prefix : {"", "bert."}) {
    for (const NamedShape& ns : WeightTable(TinyConfig(), true)) {
      cases.push_back({ns.name, prefix});
    }
  }
  return cases;
}

void PrintTo(const MissingCase& m, std::ostream* os) {
  *os << m.prefix << m.name;
}

class MissingTensorTest : public LoaderTest,
                          public ::testing::WithParamInterface<MissingCase> {};

// Removes one tensor of the whole table at a time (both layers, both pooler
// tensors, with and without the "bert." prefix); the message must name
// exactly that tensor, as stored.
TEST_P(MissingTensorTest, NamesExactlyThatTensor) {
  const MissingCase& m = GetParam();
  const std::string full = m.prefix + m.name;
  // BUG (model/weights.cc, Reader::Reader): the "bert." prefix is detected
  // only by the presence of "bert.embeddings.word_embeddings.weight", so when
  // exactly that tensor is missing from a prefixed checkpoint the loader
  // reports missing "embeddings.word_embeddings.weight" (a name the file never
  // used). Fix: detect the prefix from any tensor name, e.g.
  //   for (const auto& [name, t] : file.tensors())
  //     if (name.rfind("bert.", 0) == 0) { prefix_ = "bert."; break; }
  SCOPED_TRACE(full == "bert.embeddings.word_embeddings.weight"
                   ? "known bug in model/weights.cc Reader::Reader: the prefix "
                     "is detected from this very tensor"
                   : "");
  WriteConfig(TinyConfig());
  Tensors t = GoodTensors(TinyConfig(), true, m.prefix);
  ASSERT_EQ(t.erase(full), 1u);
  WriteWeights(t);
  EXPECT_THAT(LoadError(), AllOf(HasSubstr(weights_path()),
                                 HasSubstr("missing tensor \"" + full + "\"")));
}

INSTANTIATE_TEST_SUITE_P(WholeTable, MissingTensorTest,
                         ::testing::ValuesIn(AllMissingCases()),
                         [](const ::testing::TestParamInfo<MissingCase>& info) {
                           std::string id =
                               (info.param.prefix.empty() ? "" : "bert_") +
                               info.param.name;
                           for (char& ch : id) {
                             if (!std::isalnum(static_cast<unsigned char>(ch)))
                               ch = '_';
                           }
                           return id;
                         });

struct WrongShapeCase {
  const char* id;
  const char* name;
  std::vector<int64_t> shape;
  const char* got;
  const char* want;
};

void PrintTo(const WrongShapeCase& w, std::ostream* os) { *os << w.id; }

class WrongShapeTest : public LoaderTest,
                       public ::testing::WithParamInterface<WrongShapeCase> {};

TEST_P(WrongShapeTest, NamesTensorAndBothShapes) {
  const WrongShapeCase& w = GetParam();
  WriteConfig(TinyConfig());
  Tensors t = GoodTensors(TinyConfig());
  t[w.name] = Zeros("F32", w.shape, 4);
  WriteWeights(t);
  EXPECT_THAT(LoadError(), AllOf(HasSubstr(weights_path()),
                                 HasSubstr(std::string("tensor \"") + w.name +
                                           "\" has shape " + w.got +
                                           ", expected " + w.want)));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, WrongShapeTest,
    ::testing::Values(
        // (I, H) stored transposed.
        WrongShapeCase{"Transposed",
                       "encoder.layer.1.intermediate.dense.weight",
                       {8, 16},
                       "[8, 16]",
                       "[16, 8]"},
        WrongShapeCase{"Rank",
                       "encoder.layer.0.attention.self.query.bias",
                       {1, 8},
                       "[1, 8]",
                       "[8]"},
        WrongShapeCase{
            "Scalar", "embeddings.LayerNorm.weight", {}, "[]", "[8]"},
        WrongShapeCase{"Vocab",
                       "embeddings.word_embeddings.weight",
                       {12, 8},
                       "[12, 8]",
                       "[10, 8]"},
        WrongShapeCase{"Positions",
                       "embeddings.position_embeddings.weight",
                       {512, 8},
                       "[512, 8]",
                       "[8, 8]"},
        WrongShapeCase{"Types",
                       "embeddings.token_type_embeddings.weight",
                       {1, 8},
                       "[1, 8]",
                       "[2, 8]"},
        WrongShapeCase{
            "Pooler", "pooler.dense.weight", {8, 16}, "[8, 16]", "[8, 8]"},
        WrongShapeCase{
            "Empty", "encoder.layer.1.output.dense.bias", {0}, "[0]", "[8]"}),
    [](const auto& info) { return std::string(info.param.id); });

TEST_F(LoaderTest, WrongShapeWithPrefixNamesPrefixedTensor) {
  WriteConfig(TinyConfig());
  Tensors t = GoodTensors(TinyConfig(), true, "bert.");
  const std::string name = "bert.encoder.layer.0.output.dense.weight";
  t[name] = Zeros("F32", {16, 8}, 4);
  WriteWeights(t);
  EXPECT_THAT(LoadError(), HasSubstr("tensor \"" + name +
                                     "\" has shape [16, 8], expected [8, 16]"));
}

struct DtypeCase {
  const char* dtype;
  int elem_size;  // bytes per element
};

void PrintTo(const DtypeCase& d, std::ostream* os) {
  *os << d.dtype << " (" << d.elem_size << " bytes)";
}

class WrongDtypeTest : public LoaderTest,
                       public ::testing::WithParamInterface<DtypeCase> {};

TEST_P(WrongDtypeTest, NamesTensorAndDtype) {
  const auto [dtype, elem] = GetParam();
  WriteConfig(TinyConfig());
  Tensors t = GoodTensors(TinyConfig());
  const std::string name = "encoder.layer.1.attention.output.dense.weight";
  t[name] = Zeros(dtype, {8, 8}, elem);
  WriteWeights(t);
  EXPECT_THAT(LoadError(), AllOf(HasSubstr(weights_path()),
                                 HasSubstr("tensor \"" + name + "\""),
                                 HasSubstr(std::string("dtype ") + dtype)));
}

INSTANTIATE_TEST_SUITE_P(
    Dtypes, WrongDtypeTest,
    ::testing::Values(DtypeCase{"I64", 8}, DtypeCase{"F64", 8},
                      DtypeCase{"I32", 4}, DtypeCase{"U8", 1},
                      DtypeCase{"F8_E4M3", 1}),
    [](const auto& info) { return std::string(info.param.dtype); });

TEST_F(LoaderTest, PoolerWeightWithoutBias) {
  WriteConfig(TinyConfig());
  Tensors t = GoodTensors(TinyConfig(), /*pooler=*/true);
  t.erase("pooler.dense.bias");
  WriteWeights(t);
  EXPECT_THAT(LoadError(), AllOf(HasSubstr(weights_path()),
                                 HasSubstr("\"pooler.dense.bias\"")));
}

TEST_F(LoaderTest, PoolerBiasWithoutWeight) {
  WriteConfig(TinyConfig());
  Tensors t = GoodTensors(TinyConfig(), /*pooler=*/true, "bert.");
  t.erase("bert.pooler.dense.weight");
  WriteWeights(t);
  EXPECT_THAT(LoadError(), AllOf(HasSubstr(weights_path()),
                                 HasSubstr("\"bert.pooler.dense.weight\"")));
}

TEST_F(LoaderTest, PoolerWithWrongShape) {
  WriteConfig(TinyConfig());
  Tensors t = GoodTensors(TinyConfig(), /*pooler=*/true);
  t["pooler.dense.bias"] = Zeros("F32", {9}, 4);
  WriteWeights(t);
  EXPECT_THAT(LoadError(),
              HasSubstr("\"pooler.dense.bias\" has shape [9], expected [8]"));
}

// Unknown tensors are still read by Open, so a corrupt one fails the load
// (the file is corrupt) and is named.
TEST_F(LoaderTest, CorruptExtraTensorIsNamed) {
  WriteConfig(TinyConfig());
  Checkpoint ck(GoodTensors(TinyConfig()));
  ck.header["cls.predictions.bias"] = {
      {"dtype", "F32"}, {"shape", {10}}, {"data_offsets", {0, 44}}};
  WriteWeights(ck);
  EXPECT_THAT(LoadError(), AllOf(HasSubstr(weights_path()),
                                 HasSubstr("tensor \"cls.predictions.bias\"")));
}

}  // namespace
}  // namespace attnserve

namespace attnserve {
namespace {

// A NaN or an infinity anywhere in the weights is refused at load, naming the
// file, the tensor and the index (it would otherwise make every answer NaN).
TEST_F(LoaderTest, NonFiniteWeightIsRefusedByTensorAndIndex) {
  for (const float bad : {std::nanf(""), -INFINITY}) {
    for (const std::string dtype : {"F32", "F16", "BF16"}) {
      SCOPED_TRACE(dtype + (std::isnan(bad) ? " NaN" : " -inf"));
      WriteConfig(TinyConfig());
      Tensors t = GoodTensors(TinyConfig());
      RawTensor& w = t.at("encoder.layer.1.output.dense.weight");
      std::vector<float> values(Elements(w.shape));
      std::memcpy(values.data(), w.bytes.data(), w.bytes.size());
      values[5] = bad;
      if (dtype == "F32") {
        w = F32(w.shape, values);
      } else {
        // F16/BF16 keep NaN and infinity (top half of the float for BF16).
        w = RawTensor{dtype, w.shape, std::string(values.size() * 2, '\0')};
        for (size_t i = 0; i < values.size(); ++i) {
          uint32_t u;
          std::memcpy(&u, &values[i], 4);
          uint16_t h = dtype == "BF16" ? static_cast<uint16_t>(u >> 16)
                                       : (std::isnan(values[i])   ? 0x7e00
                                          : std::isinf(values[i]) ? 0xfc00
                                                                  : 0);
          std::memcpy(&w.bytes[2 * i], &h, 2);
        }
      }
      WriteWeights(t);
      EXPECT_THAT(LoadError(),
                  AllOf(HasSubstr(weights_path()),
                        HasSubstr("encoder.layer.1.output.dense.weight"),
                        HasSubstr(std::isnan(bad) ? "NaN" : "infinity"),
                        HasSubstr("index 5")));
    }
  }
}

}  // namespace
}  // namespace attnserve
