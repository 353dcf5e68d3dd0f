// attnctl bench (client/bench.cc): its flags, percentiles, and short runs
// against an in-process server on tests/data/tiny_bert (2 layers, 4 heads,
// 40 positions, a 99-word vocab): the counts add up, the JSON parses, every
// RPC kind runs.
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/bench.h"
#include "client/cli.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/encoder/encoder.h"
#include "nlohmann/json.hpp"
#include "server/server.h"
#include "tests/model_testing.h"

namespace attnserve::client {
namespace {

using ::testing::HasSubstr;

const char kModelDir[] = ATTNSERVE_TEST_DATA "/tiny_bert";

TEST(BenchFlagsTest, DefaultsAndValues) {
  absl::StatusOr<Flags> f = ParseFlags({"bench"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->bench.rpc, "encode");
  EXPECT_EQ(f->bench.concurrency, 1);
  f = ParseFlags({"bench", "--rpc", "oip", "--concurrency=16", "--duration",
                  "2.5s", "--batch", "8", "--tokens", "128", "--connections",
                  "2", "--attention", "--layers", "5", "--fp16", "--json"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->bench.rpc, "oip");
  EXPECT_EQ(f->bench.concurrency, 16);
  EXPECT_EQ(f->bench.connections, 2);
  EXPECT_DOUBLE_EQ(f->bench.duration_seconds, 2.5);
  EXPECT_EQ(f->bench.batch, 8);
  EXPECT_EQ(f->bench.tokens, 128);
  EXPECT_TRUE(f->attention && f->fp16 && f->json);
  f = ParseFlags({"bench", "the cat sat", "--requests", "50", "--stream"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->bench.requests, 50);
  EXPECT_TRUE(f->bench.stream);
}

TEST(BenchFlagsTest, RefusesWhatMakesNoSense) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"bench", "--rpc", "grpc"}, "not encode, tokenize or oip"},
      {{"bench", "--concurrency", "0"}, "not a positive integer"},
      {{"bench", "--duration", "-1"}, "positive number of seconds"},
      {{"bench", "--requests", "x"}, "not a positive integer"},
      {{"bench", "a", "--tokens", "5"}, "--tokens or TEXT/--ids"},
      {{"bench", "--duration", "1", "--requests", "5"}, "not both"},
      {{"bench", "--rpc", "oip", "--stream"}, "--stream goes with --rpc encode"},
      {{"bench", "--rpc", "tokenize", "--attention"}, "takes no --attention"},
      {{"encode", "a", "--concurrency", "4"}, "does not apply to encode"},
      {{"bench", "--query", "it"}, "does not apply to bench"},
  };
  for (const auto& [args, message] : cases) {
    absl::StatusOr<Flags> f = ParseFlags(args);
    EXPECT_FALSE(f.ok()) << absl::StrJoin(args, " ");
    EXPECT_THAT(f.status().message(), HasSubstr(message))
        << absl::StrJoin(args, " ");
  }
}

TEST(BenchFormatTest, PercentilesAreNearestRank) {
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  EXPECT_EQ(Percentile(v, 50), 50);
  EXPECT_EQ(Percentile(v, 90), 90);
  EXPECT_EQ(Percentile(v, 99), 99);
  EXPECT_EQ(Percentile(v, 100), 100);
  EXPECT_EQ(Percentile(v, 0), 1);
  EXPECT_EQ(Percentile({7}, 99), 7);
  EXPECT_EQ(Percentile({}, 50), 0);
}

TEST(BenchFormatTest, TextAndJson) {
  BenchResult r;
  r.rpc = "Encode";
  r.input = "128 synthetic ids";
  r.concurrency = 4;
  r.connections = 4;
  r.batch = 2;
  r.elapsed_seconds = 2;
  r.calls = 10;
  r.ok = 9;
  r.sequences = 18;
  r.tokens = 18 * 128;
  for (int i = 1; i <= 9; ++i) r.latencies_ms.push_back(i);
  r.codes = {{"OK", 9}, {"RESOURCE_EXHAUSTED", 1}};
  const std::string text = FormatBench(r, false);
  EXPECT_THAT(text, HasSubstr("Encode, 4 workers over 4 connections, batch 2 "
                              "x 128 synthetic ids, 2.0 s\n"));
  EXPECT_THAT(text, HasSubstr("requests           10         5.0/s  (9 OK)"));
  EXPECT_THAT(text, HasSubstr("tokens           2304      1152.0/s"));
  EXPECT_THAT(text, HasSubstr("p50 5.00  p90 9.00  p99 9.00  max 9.00"));
  EXPECT_THAT(text, HasSubstr("status     OK 9, RESOURCE_EXHAUSTED 1\n"));
  nlohmann::json j = nlohmann::json::parse(FormatBench(r, true));
  EXPECT_EQ(j["requests"], 10);
  EXPECT_EQ(j["status"]["RESOURCE_EXHAUSTED"], 1);
  EXPECT_DOUBLE_EQ(j["tokens_per_s"].get<double>(), 1152);
  EXPECT_DOUBLE_EQ(j["latency_ms"]["p50"].get<double>(), 5);
}

class BenchServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = StartServer(Options()).release();
  }
  static ServerOptions Options() {
    ServerOptions options;
    options.address = "127.0.0.1:0";
    options.shutdown_grace = absl::Seconds(10);
    options.log_requests = false;  // thousands of calls
    return options;
  }
  static std::unique_ptr<Server> StartServer(const ServerOptions& options) {
    absl::StatusOr<std::unique_ptr<Encoder>> encoder = Encoder::Load(kModelDir);
    EXPECT_TRUE(encoder.ok()) << encoder.status();
    if (!encoder.ok()) return nullptr;
    auto tokenizer = LoadTokenizerFor(kModelDir, (*encoder)->info());
    absl::StatusOr<std::unique_ptr<Server>> server =
        Server::Start(options, *std::move(encoder), std::move(tokenizer));
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? *std::move(server) : nullptr;
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override { ASSERT_NE(server_, nullptr); }

  // `attnctl bench args... --json` against `server` (default: the suite's),
  // with `token`: its status, and the parsed report.
  absl::Status Run(std::vector<std::string> args, nlohmann::json* report,
                   FILE* progress = nullptr, Server* server = nullptr,
                   const std::string& token = "") {
    args.insert(args.begin(), "bench");
    args.push_back(absl::StrCat("--target=127.0.0.1:",
                                (server ? server : server_)->port()));
    args.push_back("--json");
    absl::StatusOr<Flags> flags = ParseFlags(args);
    if (!flags.ok()) return flags.status();
    flags->token = token;
    std::string out;
    absl::Status s = RunBench(*flags, progress, &out);
    if (s.ok()) *report = nlohmann::json::parse(out);
    return s;
  }

  // The report of a run that must succeed, with its counts checked: every
  // call answered OK, sequences = calls × batch, latencies ordered.
  nlohmann::json RunOk(const std::vector<std::string>& args, int64_t calls,
                       int batch) {
    nlohmann::json j;
    absl::Status s = Run(args, &j);
    EXPECT_TRUE(s.ok()) << absl::StrJoin(args, " ") << ": " << s;
    if (!s.ok()) return j;
    EXPECT_EQ(j["requests"], calls) << j.dump();
    EXPECT_EQ(j["ok"], calls) << j.dump();
    EXPECT_EQ(j["status"], nlohmann::json({{"OK", calls}})) << j.dump();
    EXPECT_EQ(j["sequences"], calls * batch) << j.dump();
    const auto& l = j["latency_ms"];
    EXPECT_GT(l["p50"].get<double>(), 0);
    EXPECT_LE(l["p50"].get<double>(), l["p90"].get<double>());
    EXPECT_LE(l["p90"].get<double>(), l["p99"].get<double>());
    EXPECT_LE(l["p99"].get<double>(), l["max"].get<double>());
    EXPECT_GT(j["requests_per_s"].get<double>(), 0);
    return j;
  }

  static Server* server_;
};

Server* BenchServerTest::server_ = nullptr;

TEST_F(BenchServerTest, EncodeSyntheticIdsCountsAddUp) {
  nlohmann::json j = RunOk({"--requests", "50", "--concurrency", "4",
                            "--tokens", "16", "--batch", "2"},
                           50, 2);
  EXPECT_EQ(j["tokens"], 50 * 2 * 16);
  EXPECT_EQ(j["rpc"], "Encode");
  EXPECT_EQ(j["input"], "16 synthetic ids");
  EXPECT_EQ(j["concurrency"], 4);
  EXPECT_EQ(j["connections"], 4);
  const double tokens_per_s = j["tokens_per_s"].get<double>();
  EXPECT_NEAR(tokens_per_s, j["sequences_per_s"].get<double>() * 16,
              1e-6 * tokens_per_s);  // JSON numbers: 9 digits
}

TEST_F(BenchServerTest, EncodeTextsWithAttentionOverOneConnection) {
  // "the cat sat" is 5 tokens and "hello world" 4: used in turn.
  nlohmann::json j = RunOk({"the cat sat", "hello world", "--requests", "20",
                            "--concurrency", "3", "--connections", "1",
                            "--batch", "2", "--attention", "--layers", "1",
                            "--fp16", "--hidden"},
                           20, 2);
  EXPECT_EQ(j["tokens"], 20 * (5 + 4));
  EXPECT_EQ(j["input"], "2 texts");
  EXPECT_EQ(j["connections"], 1);
}

TEST_F(BenchServerTest, Tokenize) {
  nlohmann::json j =
      RunOk({"--rpc", "tokenize", "the cat sat on the mat", "--requests",
             "30", "--concurrency", "2"},
            30, 1);
  EXPECT_EQ(j["rpc"], "Tokenize");
  EXPECT_EQ(j["tokens"], 30 * 8);
}

TEST_F(BenchServerTest, OpenInferenceProtocolIdsAndText) {
  nlohmann::json ids =
      RunOk({"--rpc", "oip", "--tokens", "12", "--batch", "3", "--requests",
             "20", "--concurrency", "2", "--attention", "--layers", "0",
             "--mask", "1:*"},
            20, 3);
  EXPECT_EQ(ids["rpc"], "ModelInfer");
  EXPECT_EQ(ids["tokens"], 20 * 3 * 12);
  // Ragged ids (padded, with an attention_mask) and text.
  nlohmann::json ragged =
      RunOk({"--rpc", "oip", "--ids", "2,15,3", "--ids", "2,15,16,17,3",
             "--batch", "2", "--requests", "10", "--pooling", "mean"},
            10, 2);
  EXPECT_EQ(ragged["tokens"], 10 * (3 + 5));
  nlohmann::json text = RunOk({"--rpc", "oip", "the cat sat", "--requests",
                               "10", "--hidden"},
                              10, 1);
  EXPECT_EQ(text["tokens"], 10 * 5);
}

// With no TEXT, --ids or --tokens: 128 tokens, or the model's 40.
TEST_F(BenchServerTest, DefaultSequencesFitTheModel) {
  nlohmann::json j = RunOk({"--requests", "4"}, 4, 1);
  EXPECT_EQ(j["input"], "40 synthetic ids");
  EXPECT_EQ(j["tokens"], 4 * 40);
}

TEST_F(BenchServerTest, EncodeStream) {
  nlohmann::json j;
  absl::Status s = Run({"--stream", "--requests", "40", "--concurrency", "4",
                        "--tokens", "10"},
                       &j);
  if (s.code() == absl::StatusCode::kUnimplemented) {
    GTEST_SKIP() << "the server answers UNIMPLEMENTED for EncodeStream (" << s
                 << "); this test runs once it serves it";
  }
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(j["rpc"], "EncodeStream");
  EXPECT_EQ(j["requests"], 40);
  EXPECT_EQ(j["status"], nlohmann::json({{"OK", 40}}));
  EXPECT_EQ(j["tokens"], 40 * 10);
}

TEST_F(BenchServerTest, DurationRunsAndShowsProgress) {
  FILE* progress = std::tmpfile();
  ASSERT_NE(progress, nullptr);
  nlohmann::json j;
  absl::Status s = Run({"--duration", "2.2", "--concurrency", "2", "--tokens",
                        "8"},
                       &j, progress);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_GE(j["elapsed_s"].get<double>(), 2.2);
  EXPECT_LT(j["elapsed_s"].get<double>(), 30);
  EXPECT_GT(j["requests"].get<int64_t>(), 0);
  EXPECT_EQ(j["requests"], j["ok"]);
  std::rewind(progress);
  std::string text;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), progress)) > 0;) {
    text.append(buf, n);
  }
  std::fclose(progress);
  // About once a second: at 1 s and 2 s.
  EXPECT_THAT(text, ::testing::ContainsRegex("\r +1\\.[0-9] s +[0-9]+ calls"));
  EXPECT_THAT(text, ::testing::ContainsRegex("\r +2\\.[0-9] s +[0-9]+ calls"));
  EXPECT_THAT(text, HasSubstr("p50 "));
}

TEST_F(BenchServerTest, ABadRequestFailsBeforeTheRun) {
  nlohmann::json j;
  absl::Status s = Run({"--requests", "5", "--layers", "7"}, &j);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("the first Encode call failed: "));
  EXPECT_THAT(std::string(s.message()), HasSubstr("attention.layers[0] = 7"));
  s = Run({"--requests", "5", "--tokens", "41"}, &j);  // over 40 positions
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  s = Run({"--requests", "5", "--model", "nope"}, &j);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
}

// Every call of the run carries the bearer token (--token-file or
// $ATTNSERVE_TOKEN, read by LoadConnectionFiles into Flags::token).
TEST_F(BenchServerTest, SendsTheToken) {
  const std::string tokens =
      attnserve::testing::MakeTempDir("bench_test") + "/tokens.txt";
  {
    std::ofstream f(tokens);
    f << "bench-token\n";
  }
  ServerOptions options = Options();
  options.auth_tokens_file = tokens;
  std::unique_ptr<Server> server = StartServer(options);
  ASSERT_NE(server, nullptr);
  nlohmann::json j;
  for (const char* rpc : {"encode", "tokenize", "oip"}) {
    absl::Status s = Run({"--rpc", rpc, "--requests", "6", "--concurrency",
                          "2", "--tokens", "8"},
                         &j, nullptr, server.get(), "bench-token");
    ASSERT_TRUE(s.ok()) << rpc << ": " << s;
    EXPECT_EQ(j["status"], nlohmann::json({{"OK", 6}})) << rpc;
  }
  absl::Status s = Run({"--requests", "6"}, &j, nullptr, server.get());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
  std::remove(tokens.c_str());
}

TEST(BenchUnreachableTest, FailsWithUnavailable) {
  absl::StatusOr<Flags> flags = ParseFlags(
      {"bench", "--target=127.0.0.1:1", "--timeout=5", "--requests", "3"});
  ASSERT_TRUE(flags.ok());
  std::string out;
  const absl::Status s = RunBench(*flags, nullptr, &out);
  EXPECT_THAT(s.code(), ::testing::AnyOf(absl::StatusCode::kUnavailable,
                                         absl::StatusCode::kDeadlineExceeded));
}

}  // namespace
}  // namespace attnserve::client
