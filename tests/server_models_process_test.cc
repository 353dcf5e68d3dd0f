// Several models in a real attnserve process, started as the README says:
// --model (tiny_bert), --model_repository (a random BERT "slow" and
// tiny_roberta as "roberta"), --model_precision, --default_model. Its startup
// log names each model's memory; ListModels, /metrics and attnctl see every
// model; one model's flood does not starve another; and every bad
// combination of the flags stops it with one line saying what is wrong.
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/demo/demo_model.h"
#include "tests/metrics_testing.h"
#include "tests/process_testing.h"
#include "tests/server_testing.h"

namespace attnserve::testing {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

// The slow model: a random BERT whose 128-token pass takes milliseconds, so
// a flood of it keeps the inference thread busy for seconds.
constexpr int kSlowPositions = 128;

// A model repository: slow/ (random BERT) and roberta/ (tiny_roberta).
void WriteRepository(const std::string& dir) {
  DemoModelOptions slow;
  slow.hidden_size = 256;
  slow.num_layers = 2;
  slow.num_heads = 4;
  slow.intermediate_size = 1024;
  slow.max_position_embeddings = kSlowPositions;
  ASSERT_TRUE(WriteDemoModel(dir + "/slow", slow).ok());
  fs::create_directories(dir + "/roberta");
  for (const char* file : {"config.json", "model.safetensors"}) {
    fs::copy_file(fs::path(DataPath("tiny_roberta")) / file,
                  fs::path(dir) / "roberta" / file);
  }
  fs::create_directories(dir + "/not_a_model");  // no config.json: skipped
}

class ModelsProcessTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    repo_ = new TempDir("models_repo");
    WriteRepository(repo_->path());
    // AttnserveProcess adds --model=tests/data/tiny_bert.
    server_ = AttnserveProcess::Start(
                  {"--model_repository=" + repo_->path(),
                   "--model_precision=roberta=bf16",
                   "--default_model=tiny_bert", "--metrics_address=127.0.0.1:0",
                   "--max_batch_tokens=128", "--log_requests=false"},
                  repo_->File("log.txt"))
                  .release();
  }
  static void TearDownTestSuite() {
    if (server_ != nullptr) {
      EXPECT_EQ(server_->Stop(), 0);
    }
    delete server_;
    delete repo_;
    server_ = nullptr;
    repo_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    stub_ = v1::Encoder::NewStub(NewChannel(server_->port()));
  }

  static inline TempDir* repo_ = nullptr;
  static inline AttnserveProcess* server_ = nullptr;
  std::unique_ptr<v1::Encoder::Stub> stub_;
};

TEST_F(ModelsProcessTest, StartupLogsEveryModelAndWhatItHoldsInMemory) {
  const std::string log = server_->Output();
  EXPECT_THAT(log, ::testing::ContainsRegex(
                       "attnserve: model tiny_bert from [^ ]*tiny_bert: fp32, "
                       "weights [0-9.]+ MiB, RSS \\+[0-9.]+ MiB \\(process "
                       "[0-9.]+ MiB\\)"));
  EXPECT_THAT(log, HasSubstr("attnserve: model roberta from "));
  EXPECT_THAT(
      log, ::testing::ContainsRegex("model roberta from [^ ]*: bf16, weights"));
  EXPECT_THAT(log, ::testing::ContainsRegex("model slow from [^ ]*: fp32, "));
  EXPECT_THAT(log, HasSubstr("attnserve: no tokenizer for roberta ("));
  EXPECT_THAT(log,
              HasSubstr("attnserve: serving 3 models: tiny_bert (2 layers, 4 "
                        "heads, hidden 32, fp32), roberta (2 layers, 3 heads, "
                        "hidden 36, bf16), slow (2 layers, 4 heads, hidden "
                        "256, fp32) on 127.0.0.1:"));
  EXPECT_THAT(log, ::testing::Not(HasSubstr("not_a_model")));
}

TEST_F(ModelsProcessTest, ListModelsPutsTheDefaultFirst) {
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::ListModelsResponse response;
  ASSERT_TRUE(stub_->ListModels(&context, {}, &response).ok());
  ASSERT_EQ(response.models_size(), 3);
  EXPECT_EQ(response.models(0).name(), "tiny_bert");
  EXPECT_EQ(response.models(1).name(), "roberta");
  EXPECT_EQ(response.models(1).precision(), "bf16");
  EXPECT_EQ(response.models(2).name(), "slow");
  // An empty name is the default model.
  v1::ModelInfo info;
  ASSERT_TRUE(CallGetModelInfo(*stub_, {}, &info).ok());
  EXPECT_EQ(info.name(), "tiny_bert");
}

TEST_F(ModelsProcessTest, MetricsHaveOneModelInfoSeriesPerModel) {
  ASSERT_NE(server_->metrics_port(), 0);
  const std::vector<Sample> samples = Scrape(server_->metrics_port());
  EXPECT_EQ(Value(samples, "attnserve_model_info",
                  {{"model", "tiny_bert"}, {"precision", "fp32"}}),
            1);
  EXPECT_EQ(Value(samples, "attnserve_model_info",
                  {{"model", "roberta"}, {"precision", "bf16"}}),
            1);
  EXPECT_EQ(Value(samples, "attnserve_model_info",
                  {{"model", "slow"}, {"hidden", "256"}}),
            1);
}

TEST_F(ModelsProcessTest, AttnctlAsksForTheModelItNames) {
  const std::string attnctl = absl::StrCat(
      ATTNCTL_BIN, " --target=127.0.0.1:", server_->port(), " --timeout=60");
  CommandResult roberta = RunShell(attnctl + " --model=roberta info");
  EXPECT_EQ(roberta.status, 0) << roberta.output;
  EXPECT_THAT(roberta.output, HasSubstr("roberta"));
  CommandResult unknown = RunShell(attnctl + " --model=bert-large info");
  EXPECT_EQ(unknown.status, 1) << unknown.output;
  EXPECT_THAT(unknown.output,
              HasSubstr("NOT_FOUND: model \"bert-large\" is not served here; "
                        "served: \"tiny_bert\", \"roberta\", \"slow\""));
  CommandResult models = RunShell(attnctl + " models");
  EXPECT_EQ(models.status, 0) << models.output;
  EXPECT_THAT(models.output, ::testing::ContainsRegex(
                                 "\ntiny_bert \\(default\\) +bert +2 +4 +32 +"
                                 "fp32 +yes +40\n"));
  EXPECT_THAT(models.output, ::testing::ContainsRegex(
                                 "\nroberta +roberta +2 +3 +36 +bf16 +no"));
  EXPECT_THAT(models.output,
              ::testing::ContainsRegex("\nslow +bert +2 +4 +256"));
  CommandResult text = RunShell(attnctl + " encode \"the cat sat\"");
  EXPECT_EQ(text.status, 0) << text.output;
  EXPECT_THAT(text.output, HasSubstr("model tiny_bert"));
}

// The fairness check through the real server: a flood of the slow model is
// queued (the queue gauge says so), then one tiny_bert request is sent. It
// must be answered while most of the flood still waits: the inference thread
// takes turns between models, instead of serving the queue in arrival order.
// No timing is asserted: only how many flood requests were answered first.
TEST_F(ModelsProcessTest, AFloodOfOneModelDoesNotStarveAnother) {
  constexpr int kFlood = 60;
  constexpr int kQueued = 30;  // wait until this many are queued
  v1::EncodeRequest slow;
  slow.set_model("slow");
  v1::Sequence* seq = slow.add_sequences();
  for (int i = 0; i < kSlowPositions; ++i) seq->add_token_ids(5 + i % 50);
  slow.set_pooling(v1::POOLING_CLS);

  struct Call {
    grpc::ClientContext context;
    v1::EncodeResponse response;
  };
  std::vector<std::unique_ptr<Call>> calls;
  absl::Mutex mu;
  int answered = 0, failed = 0;
  auto all_answered = [&] { return answered == kFlood; };
  // However the test ends, no callback may outlive what it writes to.
  auto wait_for_all = absl::MakeCleanup([&] {
    for (std::unique_ptr<Call>& call : calls) call->context.TryCancel();
    absl::MutexLock lock(&mu);
    mu.AwaitWithTimeout(absl::Condition(&all_answered), absl::Seconds(600));
  });
  for (int i = 0; i < kFlood; ++i) {
    calls.push_back(std::make_unique<Call>());
    SetDeadline(&calls.back()->context, 600);
    stub_->async()->Encode(&calls.back()->context, &slow,
                           &calls.back()->response, [&](grpc::Status status) {
                             absl::MutexLock lock(&mu);
                             ++answered;
                             if (!status.ok()) ++failed;
                           });
  }
  // Bounded: the flood takes seconds of forward passes.
  bool queued = false;
  const absl::Time give_up = absl::Now() + absl::Seconds(120);
  while (!queued && absl::Now() < give_up) {
    const std::optional<double> depth =
        Value(Scrape(server_->metrics_port()), "attnserve_model_queue_requests",
              {{"model", "slow"}});
    queued = depth.has_value() && *depth >= kQueued;
    absl::MutexLock lock(&mu);
    if (answered == kFlood) break;
  }
  ASSERT_TRUE(queued) << "the flood never had " << kQueued
                      << " requests queued";

  v1::EncodeRequest tiny;
  tiny.set_model("tiny_bert");
  v1::Sequence* tiny_seq = tiny.add_sequences();
  for (int id : {2, 10, 11, 3}) tiny_seq->add_token_ids(id);
  v1::EncodeResponse response;
  const grpc::Status status = CallEncode(*stub_, tiny, &response);
  int answered_before_tiny;
  {
    absl::MutexLock lock(&mu);
    answered_before_tiny = answered;
  }
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.model(), "tiny_bert");
  std::printf("%d of the %d flood requests were answered before tiny_bert's\n",
              answered_before_tiny, kFlood);
  // At least kQueued were waiting when tiny_bert's request was sent; it runs
  // within a pass or two, not after all of them.
  EXPECT_LE(answered_before_tiny, kFlood - kQueued / 2)
      << "tiny_bert's request waited behind the slow model's flood";

  // Every flood request is answered too.
  {
    absl::MutexLock lock(&mu);
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&all_answered),
                                    absl::Seconds(600)));
    EXPECT_EQ(failed, 0);
  }

  // Each model's share of the inference thread, in the metrics: one pass
  // per slow request (--max_batch_tokens=128 holds one).
  const std::vector<Sample> samples = Scrape(server_->metrics_port());
  EXPECT_GE(Value(samples, "attnserve_model_passes_total", {{"model", "slow"}})
                .value_or(0),
            kFlood);
  EXPECT_GE(
      Value(samples, "attnserve_model_pass_tokens_total", {{"model", "slow"}})
          .value_or(0),
      kFlood * kSlowPositions);
  EXPECT_GE(
      Value(samples, "attnserve_model_passes_total", {{"model", "tiny_bert"}})
          .value_or(0),
      1);
  EXPECT_GT(Value(samples, "attnserve_model_inference_seconds_total",
                  {{"model", "slow"}})
                .value_or(0),
            0);
  EXPECT_EQ(
      Value(samples, "attnserve_model_queue_requests", {{"model", "slow"}}), 0);
}

// attnserve with `flags` must exit 1 printing `message`.
void ExpectRefused(const std::vector<std::string>& flags,
                   const std::string& message) {
  std::string command = absl::StrCat(ATTNSERVE_BIN, " --address=127.0.0.1:0");
  for (const std::string& f : flags)
    absl::StrAppend(&command, " ", ShellQuote(f));
  // Bounded: a start that is not refused is stopped after 60 s.
  CommandResult r = RunShell("timeout 60 " + command);
  EXPECT_EQ(r.status, 1) << command << "\n" << r.output;
  EXPECT_THAT(r.output, HasSubstr(message)) << command;
}

TEST(ModelFlagsProcessTest, BadModelFlagsStopTheServerSayingWhy) {
  const std::string bert = DataPath("tiny_bert");
  const std::string roberta = DataPath("tiny_roberta");
  TempDir empty("empty_repo");
  ExpectRefused({"--model=" + bert, "--model=" + bert},
                "two models are named \"tiny_bert\"");
  ExpectRefused({"--model=a=" + bert, "--model_precision=b=bf16"},
                "--model_precision=b=bf16: no model \"b\" is served; "
                "served: \"a\"");
  ExpectRefused({"--model=a=" + bert, "--model_precision=a=fp64"},
                "--model_precision=a=fp64: ");
  ExpectRefused({"--model=a=" + bert, "--model_precision=a"},
                "expected NAME=PRECISION");
  ExpectRefused({"--model=" + bert, "--model=" + roberta, "--prune_heads=0:1"},
                "--prune_heads applies to a single model");
  ExpectRefused({"--model_repository=" + empty.path()},
                "holds no model (no subdirectory has a config.json)");
  ExpectRefused({"--model_repository=" + empty.path() + "/missing"},
                "cannot read it");
  ExpectRefused(
      {"--model=" + bert, "--model=" + roberta, "--default_model=electra"},
      "--default_model=electra is not a served model; served: "
      "\"tiny_bert\", \"tiny_roberta\"");
  ExpectRefused({"--model=bad name=" + bert},
                "must be letters, digits, '.', '_' or '-'");
  ExpectRefused({}, "--model=[NAME=]DIR or --model_repository=DIR is required");
}

}  // namespace
}  // namespace attnserve::testing
