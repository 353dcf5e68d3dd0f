// The access log (server/access_log.cc) and the per-call timings
// (server/call_record.cc): the line formats; the writer thread, which never
// makes a call wait and drops (and reports) lines when stderr is stuck; the
// x-*-time and x-compute-tokens metadata of Encode, Tokenize and RankHeads;
// and a real attnserve process writing one line per call in text and JSON,
// never any request content, nothing with --log_requests=false, with its
// startup and shutdown lines as before. attnctl --verbose and the Python
// example print the timings.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/access_log.h"
#include "server/call_record.h"
#include "tests/process_testing.h"
#include "tests/server_testing.h"

namespace attnserve::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

CallRecord SampleRecord() {
  CallRecord r;
  r.method = "attnserve.v1.Encoder/Encode";
  r.peer = "ipv4:127.0.0.1:51234";
  r.code = grpc::StatusCode::OK;
  r.start = absl::FromUnixMillis(1717243200000);  // 2024-06-01T12:00:00Z
  r.duration = absl::Microseconds(5100);
  r.response_bytes = 1234;
  r.has_work = true;
  r.work.sequences = 2;
  r.work.tokens = 18;
  r.work.queue = absl::Microseconds(120);
  r.work.inference = absl::Microseconds(3400);
  return r;
}

TEST(FormatAccessLineTest, TextIsOneLogfmtLine) {
  EXPECT_EQ(FormatAccessLine(SampleRecord(), LogFormat::kText),
            "time=2024-06-01T12:00:00.005Z method=attnserve.v1.Encoder/Encode "
            "peer=ipv4:127.0.0.1:51234 code=OK sequences=2 tokens=18 "
            "queue_ms=0.120 inference_ms=3.400 total_ms=5.100 "
            "response_bytes=1234");
}

TEST(FormatAccessLineTest, TheModelThatRanComesLast) {
  CallRecord r = SampleRecord();
  r.work.model = "en.v2";
  EXPECT_THAT(FormatAccessLine(r, LogFormat::kText),
              ::testing::EndsWith(" response_bytes=1234 model=en.v2"));
  nlohmann::json j =
      nlohmann::json::parse(FormatAccessLine(r, LogFormat::kJson));
  EXPECT_EQ(j["model"], "en.v2");
}

TEST(FormatAccessLineTest, JsonIsOneObjectWithNumbers) {
  CallRecord r = SampleRecord();
  r.code = grpc::StatusCode::RESOURCE_EXHAUSTED;
  const std::string line = FormatAccessLine(r, LogFormat::kJson);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  nlohmann::json j = nlohmann::json::parse(line);
  EXPECT_EQ(j["time"], "2024-06-01T12:00:00.005Z");
  EXPECT_EQ(j["method"], "attnserve.v1.Encoder/Encode");
  EXPECT_EQ(j["peer"], "ipv4:127.0.0.1:51234");
  EXPECT_EQ(j["code"], "RESOURCE_EXHAUSTED");
  EXPECT_EQ(j["sequences"], 2);
  EXPECT_EQ(j["tokens"], 18);
  EXPECT_DOUBLE_EQ(j["queue_ms"].get<double>(), 0.12);
  EXPECT_DOUBLE_EQ(j["inference_ms"].get<double>(), 3.4);
  EXPECT_DOUBLE_EQ(j["total_ms"].get<double>(), 5.1);
  EXPECT_EQ(j["response_bytes"], 1234);
}

TEST(FormatAccessLineTest, AnOddPeerStaysOneFieldAndValidJson) {
  CallRecord r = SampleRecord();
  r.peer = "unix:/tmp/a b\"c\n";
  EXPECT_THAT(FormatAccessLine(r, LogFormat::kText),
              HasSubstr(" peer=\"unix:/tmp/a b\\\"c\\u000a\" code=OK"));
  nlohmann::json j =
      nlohmann::json::parse(FormatAccessLine(r, LogFormat::kJson));
  EXPECT_EQ(j["peer"], r.peer);
}

TEST(ParseLogFormatTest, TextOrJson) {
  EXPECT_EQ(ParseLogFormat("text").value(), LogFormat::kText);
  EXPECT_EQ(ParseLogFormat("json").value(), LogFormat::kJson);
  absl::StatusOr<LogFormat> bad = ParseLogFormat("xml");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("--log_format"));
}

TEST(AccessLogTest, WritesEveryLineInOrder) {
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  {
    AccessLog log(LogFormat::kText, file);
    for (int i = 0; i < 100; ++i) {
      CallRecord r = SampleRecord();
      r.response_bytes = i;
      log.OnCallDone(r);
    }
  }  // the destructor writes what is queued
  std::rewind(file);
  std::string text;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) {
    text.append(buffer, n);
  }
  std::fclose(file);
  const std::vector<std::string> lines =
      absl::StrSplit(text, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 100u);
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE(absl::EndsWith(lines[i], absl::StrCat(" response_bytes=", i)))
        << lines[i];
  }
}

// stderr stuck (a pipe nobody reads): OnCallDone still returns at once, lines
// past the bound are dropped, and once the pipe drains the log says how many.
TEST(AccessLogTest, AStuckOutputDropsLinesInsteadOfBlockingCalls) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::FILE* out = fdopen(fds[1], "w");
  ASSERT_NE(out, nullptr);
  auto log = std::make_unique<AccessLog>(LogFormat::kText, out,
                                         /*max_pending=*/8);
  CallRecord r = SampleRecord();
  r.peer = std::string(400, 'p');  // ~0.5 KB lines: 64 KB of pipe fill fast
  const absl::Time start = absl::Now();
  for (int i = 0; i < 2000; ++i) log->OnCallDone(r);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_GT(log->dropped(), 0);
  const int64_t dropped = log->dropped();
  std::string drained;
  std::thread reader([&] {
    char buffer[65536];
    ssize_t n;
    while ((n = read(fds[0], buffer, sizeof(buffer))) > 0) {
      drained.append(buffer, n);
    }
  });
  log.reset();
  std::fclose(out);
  reader.join();
  close(fds[0]);
  const std::string said = absl::StrCat("attnserve: access log: ");
  EXPECT_THAT(drained, HasSubstr(said));
  EXPECT_THAT(drained, HasSubstr("lines dropped (stderr did not keep up)"));
  // Every call is accounted for: written or counted as dropped.
  int64_t written = 0;
  for (absl::string_view line : absl::StrSplit(drained, '\n')) {
    if (absl::StartsWith(line, "time=")) ++written;
  }
  EXPECT_EQ(written + dropped, 2000);
}

// ---- x-*-time metadata ------------------------------------------------------

// The timing metadata of a finished call, by key.
std::map<std::string, double> Timings(const grpc::ClientContext& context) {
  std::map<std::string, double> out;
  for (const auto& [key, value] : context.GetServerInitialMetadata()) {
    const std::string k(key.data(), key.size());
    if (!absl::StartsWith(k, "x-")) continue;
    double v = -1;
    EXPECT_TRUE(absl::SimpleAtod(std::string(value.data(), value.size()), &v))
        << k << " = " << std::string(value.data(), value.size());
    out[k] = v;
  }
  return out;
}

void ExpectConsistent(const std::map<std::string, double>& t) {
  for (const char* key : {"x-total-time", "x-queue-time", "x-tokenization-time",
                          "x-inference-time", "x-compute-tokens"}) {
    ASSERT_EQ(t.count(key), 1u) << key;
    EXPECT_GE(t.at(key), 0) << key;
  }
  // The parts happen one after another inside the total (3 decimals each).
  EXPECT_GE(t.at("x-total-time") + 0.003, t.at("x-tokenization-time") +
                                              t.at("x-queue-time") +
                                              t.at("x-inference-time"));
}

class TimingMetadataTest : public SharedServerTest {
 protected:
  static void SetUpTestSuite() {
    ServerOptions options = TestOptions();
    options.log_requests = false;
    StartSuite(options);
  }
};

TEST_F(TimingMetadataTest, EncodeSaysWhereTheTimeWent) {
  v1::EncodeRequest request;
  AddSequence(Golden("len12"), &request);
  AddSequence(Golden("len5"), &request);
  v1::EncodeResponse response;
  grpc::ClientContext context;
  SetDeadline(&context);
  ASSERT_TRUE(stub_->Encode(&context, request, &response).ok());
  const std::map<std::string, double> t = Timings(context);
  ExpectConsistent(t);
  EXPECT_EQ(t.at("x-compute-tokens"), 17);
  EXPECT_GT(t.at("x-inference-time"), 0);
}

TEST_F(TimingMetadataTest, TokenizeHasNoQueueOrInference) {
  v1::TokenizeRequest request;
  request.add_sequences()->set_text("the cat sat");
  v1::TokenizeResponse response;
  grpc::ClientContext context;
  SetDeadline(&context);
  ASSERT_TRUE(stub_->Tokenize(&context, request, &response).ok());
  const std::map<std::string, double> t = Timings(context);
  ExpectConsistent(t);
  EXPECT_EQ(t.at("x-compute-tokens"), response.results(0).token_ids_size());
  EXPECT_EQ(t.at("x-queue-time"), 0);
  EXPECT_EQ(t.at("x-inference-time"), 0);
}

TEST_F(TimingMetadataTest, RankHeadsCountsEveryPass) {
  v1::RankHeadsRequest request;
  AddSequence(Golden("len5"), &request);
  v1::RankHeadsResponse response;
  grpc::ClientContext context;
  SetDeadline(&context, 60);
  ASSERT_TRUE(stub_->RankHeads(&context, request, &response).ok());
  const std::map<std::string, double> t = Timings(context);
  ExpectConsistent(t);
  // T·(1 + L·H + L) tokens of forward passes.
  EXPECT_EQ(t.at("x-compute-tokens"), 5 * (1 + kLayers * kHeads + kLayers));
  EXPECT_GT(t.at("x-inference-time"), 0);
}

TEST_F(TimingMetadataTest, TimeInTheQueueIsQueueTime) {
  v1::EncodeRequest request;
  AddSequence(Golden("len1"), &request);
  v1::EncodeResponse response;
  grpc::ClientContext context;
  SetDeadline(&context);
  server_->batcher().Pause();
  std::thread release([&] {
    WaitForQueued(server_->batcher(), 1);
    absl::SleepFor(absl::Milliseconds(300));
    server_->batcher().Resume();
  });
  const grpc::Status status = stub_->Encode(&context, request, &response);
  release.join();
  ASSERT_TRUE(status.ok());
  const std::map<std::string, double> t = Timings(context);
  ExpectConsistent(t);
  EXPECT_GE(t.at("x-queue-time"), 300);
}

// ---- a real attnserve -------------------------------------------------------

// Lines of `output` that are access log lines (not "attnserve: ..." ones).
std::vector<std::string> AccessLines(const std::string& output) {
  std::vector<std::string> lines;
  for (absl::string_view line :
       absl::StrSplit(output, '\n', absl::SkipEmpty())) {
    if (!absl::StartsWith(line, "attnserve:")) lines.emplace_back(line);
  }
  return lines;
}

// Sends one Encode by text, one refused Encode whose error message quotes an
// id, and one Tokenize; returns after the answers.
void SendKnownCalls(int port) {
  auto stub = v1::Encoder::NewStub(NewChannel(port));
  v1::EncodeRequest by_text;
  by_text.add_sequences()->set_text("the zebrasecret sat");
  v1::EncodeResponse response;
  ASSERT_TRUE(CallEncode(*stub, by_text, &response).ok());
  v1::EncodeRequest bad;
  bad.add_sequences()->add_token_ids(98765);
  grpc::Status refused = CallEncode(*stub, bad, &response);
  ASSERT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_THAT(refused.error_message(), HasSubstr("98765"));  // quotes input
  v1::TokenizeRequest tokenize;
  tokenize.add_sequences()->set_text("hello world");
  v1::TokenizeResponse tokens;
  ASSERT_TRUE(CallTokenize(*stub, tokenize, &tokens).ok());
}

TEST(AccessLogProcessTest, OneTextLinePerCallAndNoRequestContent) {
  TempDir dir("attnserve_access_log_");
  std::unique_ptr<AttnserveProcess> server =
      AttnserveProcess::Start({}, dir.File("stderr.log"));
  ASSERT_NE(server, nullptr);
  SendKnownCalls(server->port());
  ASSERT_EQ(server->Stop(), 0);
  const std::string output = server->Output();
  // The startup and shutdown lines keep their format.
  EXPECT_THAT(output, HasSubstr("attnserve: tokenizer loaded (99 tokens"));
  EXPECT_THAT(output, ::testing::ContainsRegex(
                          "attnserve: serving tiny_bert \\(2 layers, 4 heads, "
                          "hidden 32, fp32\\) on 127\\.0\\.0\\.1:[0-9]+\n"));
  EXPECT_THAT(output, HasSubstr("attnserve: SIGTERM: no new calls"));
  EXPECT_THAT(output, HasSubstr("attnserve: stopped after 1 requests"));
  // No text, no ids, no error message.
  EXPECT_THAT(output, Not(HasSubstr("zebra")));
  EXPECT_THAT(output, Not(HasSubstr("98765")));
  EXPECT_THAT(output, Not(HasSubstr("hello")));

  const std::vector<std::string> lines = AccessLines(output);
  ASSERT_EQ(lines.size(), 3u) << output;
  EXPECT_THAT(lines[0], ::testing::MatchesRegex(
                            "time=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z "
                            "method=attnserve\\.v1\\.Encoder/Encode "
                            "peer=ipv4:127\\.0\\.0\\.1:[0-9]+ code=OK "
                            "sequences=1 tokens=5 queue_ms=[0-9.]+ "
                            "inference_ms=[0-9.]+ total_ms=[0-9.]+ "
                            "response_bytes=[1-9][0-9]* model=tiny_bert"));
  EXPECT_THAT(lines[1],
              HasSubstr(" code=INVALID_ARGUMENT sequences=0 tokens=0 "));
  EXPECT_THAT(lines[1], HasSubstr(" response_bytes=0"));
  EXPECT_THAT(lines[2], HasSubstr("method=attnserve.v1.Encoder/Tokenize "));
  EXPECT_THAT(lines[2], HasSubstr(" code=OK sequences=1 tokens=4 "));
  EXPECT_THAT(lines[2], HasSubstr(" model=tiny_bert"));
}

TEST(AccessLogProcessTest, JsonLinesForLogCollectors) {
  TempDir dir("attnserve_access_log_");
  std::unique_ptr<AttnserveProcess> server =
      AttnserveProcess::Start({"--log_format=json"}, dir.File("stderr.log"));
  ASSERT_NE(server, nullptr);
  SendKnownCalls(server->port());
  ASSERT_EQ(server->Stop(), 0);
  const std::vector<std::string> lines = AccessLines(server->Output());
  ASSERT_EQ(lines.size(), 3u) << server->Output();
  std::vector<std::string> codes;
  for (const std::string& line : lines) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << line;
    for (const char* key :
         {"time", "method", "peer", "code", "sequences", "tokens", "queue_ms",
          "inference_ms", "total_ms", "response_bytes"}) {
      EXPECT_TRUE(j.contains(key)) << key << " in " << line;
    }
    codes.push_back(j["code"]);
  }
  EXPECT_EQ(codes, (std::vector<std::string>{"OK", "INVALID_ARGUMENT", "OK"}));
}

TEST(AccessLogProcessTest, LogRequestsFalseWritesNoLine) {
  TempDir dir("attnserve_access_log_");
  std::unique_ptr<AttnserveProcess> server =
      AttnserveProcess::Start({"--log_requests=false"}, dir.File("stderr.log"));
  ASSERT_NE(server, nullptr);
  SendKnownCalls(server->port());
  ASSERT_EQ(server->Stop(), 0);
  EXPECT_TRUE(AccessLines(server->Output()).empty()) << server->Output();
}

TEST(AccessLogProcessTest, AnUnknownLogFormatIsRefused) {
  TempDir dir("attnserve_access_log_");
  ChildProcess child(
      {ATTNSERVE_BIN, "--model=" ATTNSERVE_TEST_DATA "/tiny_bert",
       "--log_format=xml"},
      dir.File("stderr.log"));
  EXPECT_EQ(child.Wait(absl::Seconds(30)), 1);
  EXPECT_THAT(child.Output(),
              HasSubstr("attnserve: --log_format=xml: use text or json"));
}

TEST(AccessLogProcessTest, AttnctlVerbosePrintsTheTimings) {
  TempDir dir("attnserve_access_log_");
  std::unique_ptr<AttnserveProcess> server =
      AttnserveProcess::Start({"--log_requests=false"}, dir.File("stderr.log"));
  ASSERT_NE(server, nullptr);
  const std::string target = absl::StrCat("127.0.0.1:", server->port());
  CommandResult encode = RunShell(absl::StrCat(
      ATTNCTL_BIN, " --target ", target, " encode 'the cat sat' --verbose"));
  EXPECT_EQ(encode.status, 0) << encode.output;
  EXPECT_THAT(
      encode.output,
      ::testing::ContainsRegex(
          "attnctl: Encode: x-compute-tokens=5 x-inference-time=[0-9.]+ "
          "ms x-queue-time=[0-9.]+ ms x-tokenization-time=[0-9.]+ ms "
          "x-total-time=[0-9.]+ ms\n"));
  CommandResult tokenize = RunShell(absl::StrCat(
      ATTNCTL_BIN, " --target ", target, " tokenize 'the cat' --verbose"));
  EXPECT_THAT(tokenize.output,
              HasSubstr("attnctl: Tokenize: x-compute-tokens=4 "));
  CommandResult heads = RunShell(absl::StrCat(ATTNCTL_BIN, " --target ", target,
                                              " heads 'the cat' --verbose"));
  EXPECT_THAT(heads.output, HasSubstr("attnctl: Encode: x-compute-tokens=4 "));
  EXPECT_THAT(heads.output,
              HasSubstr("attnctl: RankHeads: x-compute-tokens=44 "));
  // Without --verbose: nothing of it.
  CommandResult quiet = RunShell(
      absl::StrCat(ATTNCTL_BIN, " --target ", target, " encode 'the cat sat'"));
  EXPECT_THAT(quiet.output, Not(HasSubstr("x-total-time")));
  EXPECT_EQ(server->Stop(), 0);
}

TEST(AccessLogProcessTest, PythonExampleVerbosePrintsTheTimings) {
  if (const std::string why = PythonExampleMissing(); !why.empty()) {
    GTEST_SKIP() << why;
  }
  TempDir dir("attnserve_access_log_");
  std::unique_ptr<AttnserveProcess> server =
      AttnserveProcess::Start({"--log_requests=false"}, dir.File("stderr.log"));
  ASSERT_NE(server, nullptr);
  CommandResult run = RunShell(absl::StrCat(
      "/usr/bin/python3 " ATTNSERVE_SOURCE_DIR "/client/python_example.py",
      " --target 127.0.0.1:", server->port(),
      " --text 'the cat sat' --verbose"));
  EXPECT_EQ(run.status, 0) << run.output;
  EXPECT_THAT(run.output,
              ::testing::ContainsRegex(
                  "Encode: x-compute-tokens=5 x-inference-time=[0-9.]+ "
                  "ms x-queue-time=[0-9.]+ ms x-tokenization-time="
                  "[0-9.]+ ms x-total-time=[0-9.]+ ms"));
  EXPECT_EQ(server->Stop(), 0);
}

}  // namespace
}  // namespace attnserve::testing
