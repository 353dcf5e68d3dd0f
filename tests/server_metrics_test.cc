// server/metrics.cc through real servers: in-process servers on tiny_bert
// with options.metrics_address = 127.0.0.1:0, scraped with curl. After a
// known set of calls every counter equals what was sent; refused calls
// (validation, queue full, unknown paths) are counted; the histograms agree
// with the batcher's own counts; /healthz follows the serving state;
// promtool accepts the output; and a real Prometheus (Debian's prometheus
// package) scrapes a server and answers attnserve_requests_total through its
// HTTP query API. promtool and prometheus tests skip only when the binary is
// missing (scripts/install_deps.sh --test installs it).
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/metrics_testing.h"
#include "tests/process_testing.h"
#include "tests/raw_call_testing.h"
#include "tests/server_testing.h"

namespace attnserve::testing {
namespace {

constexpr char kEncode[] = "attnserve.v1.Encoder/Encode";
constexpr char kTokenize[] = "attnserve.v1.Encoder/Tokenize";
constexpr char kGetModelInfo[] = "attnserve.v1.Encoder/GetModelInfo";
constexpr char kHealthCheck[] = "grpc.health.v1.Health/Check";

ServerOptions MetricsOptions() {
  ServerOptions options = TestOptions();
  options.metrics_address = "127.0.0.1:0";
  options.log_requests = false;
  return options;
}

double Requests(const std::vector<Sample>& samples, const std::string& method,
                const std::string& code) {
  return Value(samples, "attnserve_requests_total",
               {{"method", method}, {"code", code}})
      .value_or(0);
}

// The interceptor records a call before its status goes out, so once a
// client has its answers the metrics count them: no waiting needed.
std::vector<Sample> ScrapeWhenIdle(int metrics_port) {
  std::vector<Sample> samples = Scrape(metrics_port);
  EXPECT_EQ(Value(samples, "attnserve_inflight_requests"), 0);
  return samples;
}

TEST(MetricsTest, CountersEqualWhatWasSent) {
  const std::vector<GoldenSequence> golden = ReadTinyBertGolden();
  std::unique_ptr<Server> server = StartServer(MetricsOptions());
  ASSERT_NE(server, nullptr);
  ASSERT_GT(server->metrics_port(), 0);
  auto channel = NewChannel(server->port());
  auto stub = v1::Encoder::NewStub(channel);

  // 3 Encode OK (1 + 5 + 12 = 18 tokens), 2 Tokenize OK, 2 Encode refused,
  // 1 GetModelInfo NOT_FOUND, 1 GetModelInfo OK, 2 health checks.
  int64_t encode_tokens = 0;
  for (int i = 0; i < 3; ++i) {
    v1::EncodeRequest request;
    AddSequence(golden[i], &request);
    encode_tokens += golden[i].length();
    v1::EncodeResponse response;
    ASSERT_TRUE(CallEncode(*stub, request, &response).ok());
  }
  int64_t tokenize_tokens = 0;
  for (const char* text : {"hello world", "the cat sat"}) {
    v1::TokenizeRequest request;
    request.add_sequences()->set_text(text);
    v1::TokenizeResponse response;
    ASSERT_TRUE(CallTokenize(*stub, request, &response).ok());
    tokenize_tokens += response.results(0).token_ids_size();
  }
  {
    v1::EncodeRequest empty;
    v1::EncodeResponse response;
    EXPECT_EQ(CallEncode(*stub, empty, &response).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
    v1::EncodeRequest bad_id;
    bad_id.add_sequences()->add_token_ids(kVocab + 5);
    EXPECT_EQ(CallEncode(*stub, bad_id, &response).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    v1::GetModelInfoRequest request;
    request.set_model("no-such-model");
    v1::ModelInfo info;
    EXPECT_EQ(CallGetModelInfo(*stub, request, &info).error_code(),
              grpc::StatusCode::NOT_FOUND);
    EXPECT_TRUE(CallGetModelInfo(*stub, {}, &info).ok());
  }
  EXPECT_TRUE(HealthCheck(channel, "").ok());
  EXPECT_TRUE(HealthCheck(channel, "attnserve.v1.Encoder").ok());

  const std::vector<Sample> s = ScrapeWhenIdle(server->metrics_port());
  EXPECT_EQ(Requests(s, kEncode, "OK"), 3);
  EXPECT_EQ(Requests(s, kEncode, "INVALID_ARGUMENT"), 2);
  EXPECT_EQ(Requests(s, kTokenize, "OK"), 2);
  EXPECT_EQ(Requests(s, kGetModelInfo, "NOT_FOUND"), 1);
  EXPECT_EQ(Requests(s, kGetModelInfo, "OK"), 1);
  EXPECT_EQ(Requests(s, kHealthCheck, "OK"), 2);
  double total = 0;
  for (const Sample& sample : s) {
    if (sample.name == "attnserve_requests_total") total += sample.value;
  }
  EXPECT_EQ(total, 11);
  // Tokens count calls answered OK only.
  EXPECT_EQ(Value(s, "attnserve_tokens_total", {{"method", kEncode}}),
            encode_tokens);
  EXPECT_EQ(Value(s, "attnserve_tokens_total", {{"method", kTokenize}}),
            tokenize_tokens);
  // One duration and one response size per call.
  EXPECT_EQ(Value(s, "attnserve_request_duration_seconds_count",
                  {{"method", kEncode}}),
            5);
  EXPECT_EQ(Value(s, "attnserve_response_bytes_count", {{"method", kEncode}}),
            5);
  EXPECT_GT(
      Value(s, "attnserve_response_bytes_sum", {{"method", kEncode}}).value(),
      0);
  // Histogram buckets are cumulative and end in +Inf = count.
  EXPECT_EQ(Value(s, "attnserve_request_duration_seconds_bucket",
                  {{"method", kEncode}, {"le", "+Inf"}}),
            5);
  EXPECT_EQ(Value(s, "attnserve_request_duration_seconds_bucket",
                  {{"method", kEncode}, {"le", "60"}}),
            5);
  EXPECT_EQ(Value(s, "attnserve_inflight_requests"), 0);
  EXPECT_EQ(Value(s, "attnserve_queue_requests"), 0);
  EXPECT_EQ(Value(s, "attnserve_model_info",
                  {{"model", "tiny_bert"},
                   {"precision", "fp32"},
                   {"layers", "2"},
                   {"heads", "4"},
                   {"hidden", "32"}}),
            1);
}

TEST(MetricsTest, HistogramsAgreeWithTheBatcher) {
  const std::vector<GoldenSequence> golden = ReadTinyBertGolden();
  std::unique_ptr<Server> server = StartServer(MetricsOptions());
  ASSERT_NE(server, nullptr);
  auto stub = v1::Encoder::NewStub(NewChannel(server->port()));
  // Three requests merged into one pass, then one alone.
  server->batcher().Pause();
  std::vector<std::thread> clients;
  for (int i = 0; i < 3; ++i) {
    clients.emplace_back([&, i] {
      v1::EncodeRequest request;
      AddSequence(golden[i], &request);
      v1::EncodeResponse response;
      EXPECT_TRUE(CallEncode(*stub, request, &response).ok());
    });
  }
  const bool queued = WaitForQueued(server->batcher(), 3);
  // While they wait: the queue gauge and the calls in flight.
  const std::vector<Sample> waiting = Scrape(server->metrics_port());
  server->batcher().Resume();
  for (std::thread& t : clients) t.join();
  ASSERT_TRUE(queued);
  EXPECT_EQ(Value(waiting, "attnserve_queue_requests"), 3);
  EXPECT_EQ(Value(waiting, "attnserve_inflight_requests"), 3);
  {
    v1::EncodeRequest request;
    AddSequence(golden[3], &request);
    v1::EncodeResponse response;
    ASSERT_TRUE(CallEncode(*stub, request, &response).ok());
  }

  const Batcher::Stats stats = server->batcher().stats();
  ASSERT_EQ(stats.forward_passes, 2);
  const std::vector<Sample> s = ScrapeWhenIdle(server->metrics_port());
  EXPECT_EQ(Value(s, "attnserve_batch_sequences_count"), stats.forward_passes);
  EXPECT_EQ(Value(s, "attnserve_batch_sequences_sum"), stats.sequences_run);
  EXPECT_EQ(Value(s, "attnserve_batch_sequences_bucket", {{"le", "2"}}), 1);
  EXPECT_EQ(Value(s, "attnserve_batch_sequences_bucket", {{"le", "4"}}), 2);
  const double tokens = golden[0].length() + golden[1].length() +
                        golden[2].length() + golden[3].length();
  EXPECT_EQ(Value(s, "attnserve_batch_tokens_sum"), tokens);
  EXPECT_EQ(Value(s, "attnserve_inference_duration_seconds_count"), 2);
  EXPECT_GT(Value(s, "attnserve_inference_duration_seconds_sum").value(), 0);
  EXPECT_EQ(Value(s, "attnserve_queue_duration_seconds_count"), 4);
  EXPECT_EQ(Value(s, "attnserve_queue_requests"), 0);
}

TEST(MetricsTest, RefusedCallsAreCounted) {
  const std::vector<GoldenSequence> golden = ReadTinyBertGolden();
  ServerOptions options = MetricsOptions();
  options.batcher.max_queue_requests = 1;
  std::unique_ptr<Server> server = StartServer(options);
  ASSERT_NE(server, nullptr);
  auto channel = NewChannel(server->port());
  auto stub = v1::Encoder::NewStub(channel);
  server->batcher().Pause();
  std::thread first([&] {
    v1::EncodeRequest request;
    AddSequence(golden[1], &request);
    v1::EncodeResponse response;
    EXPECT_TRUE(CallEncode(*stub, request, &response).ok());
  });
  const bool queued = WaitForQueued(server->batcher(), 1);
  v1::EncodeRequest request;
  AddSequence(golden[0], &request);
  v1::EncodeResponse response;
  const grpc::Status full = CallEncode(*stub, request, &response);
  server->batcher().Resume();
  first.join();
  ASSERT_TRUE(queued);
  EXPECT_EQ(full.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  // A path no service serves: counted, under one "unknown" label whatever
  // the client made up.
  EXPECT_EQ(RawCall(channel, "/no.such.Service/Method", {""}).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(
      RawCall(channel, "/attnserve.v1.Encoder/NoSuchMethod", {""}).error_code(),
      grpc::StatusCode::UNIMPLEMENTED);

  const std::vector<Sample> s = ScrapeWhenIdle(server->metrics_port());
  EXPECT_EQ(Requests(s, kEncode, "RESOURCE_EXHAUSTED"), 1);
  EXPECT_EQ(Requests(s, kEncode, "OK"), 1);
  EXPECT_EQ(Requests(s, "unknown", "UNIMPLEMENTED"), 2);
  for (const Sample& sample : s) {
    for (const auto& [label, value] : sample.labels) {
      EXPECT_EQ(value.find("NoSuch"), std::string::npos) << sample.name;
      EXPECT_EQ(value.find("no.such"), std::string::npos) << sample.name;
    }
  }
  // The refused call computed nothing.
  EXPECT_EQ(Value(s, "attnserve_tokens_total", {{"method", kEncode}}),
            golden[1].length());
}

// A health-checking client (attnctl's channel is one) keeps a Watch stream
// open and cancels it when it goes away; gRPC's health service answers that
// cancel with UNKNOWN. Counted as what it is, CANCELLED, not a server error.
TEST(MetricsTest, AClientsCancelIsCancelledNotAnError) {
  std::unique_ptr<Server> server = StartServer(MetricsOptions());
  ASSERT_NE(server, nullptr);
  {
    grpc::GenericStub stub(NewChannel(server->port()));
    grpc::ClientContext context;
    SetDeadline(&context);
    grpc::CompletionQueue cq;
    auto step = [&cq](void* tag) {
      void* got = nullptr;
      bool ok = false;
      while (cq.Next(&got, &ok)) {
        if (got == tag) return ok;
      }
      return false;
    };
    int tags[4];
    auto call = stub.PrepareCall(&context, "/grpc.health.v1.Health/Watch", &cq);
    call->StartCall(&tags[0]);
    ASSERT_TRUE(step(&tags[0]));
    grpc::health::v1::HealthCheckRequest request;
    call->Write(ToByteBuffer(request.SerializeAsString()), &tags[1]);
    ASSERT_TRUE(step(&tags[1]));
    grpc::ByteBuffer first;
    call->Read(&first, &tags[2]);
    ASSERT_TRUE(step(&tags[2]));  // SERVING
    context.TryCancel();
    grpc::Status status;
    call->Finish(&status, &tags[3]);
    step(&tags[3]);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
    cq.Shutdown();
    void* tag;
    bool ok;
    while (cq.Next(&tag, &ok)) {
    }
  }
  // The server learns of the cancel a moment after the client.
  const std::string watch = "grpc.health.v1.Health/Watch";
  std::vector<Sample> s;
  for (int i = 0; i < 250; ++i) {
    s = Scrape(server->metrics_port());
    if (Value(s, "attnserve_inflight_requests") == 0) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(Requests(s, watch, "CANCELLED"), 1);
  EXPECT_EQ(Requests(s, watch, "UNKNOWN"), 0);
}

TEST(MetricsTest, HealthzFollowsTheServingState) {
  std::unique_ptr<Server> server = StartServer(MetricsOptions());
  ASSERT_NE(server, nullptr);
  const int port = server->metrics_port();
  HttpResponse serving = HttpGet(port, "/healthz");
  EXPECT_EQ(serving.status, 200);
  EXPECT_EQ(serving.body, "serving\n");
  // Draining (SIGTERM, before --drain_delay ends): 503, while calls are still
  // answered; the gRPC health service says the same.
  server->StartDraining();
  HttpResponse draining = HttpGet(port, "/healthz");
  EXPECT_EQ(draining.status, 503);
  EXPECT_EQ(draining.body, "not serving\n");
  grpc::health::v1::HealthCheckResponse health;
  ASSERT_TRUE(HealthCheck(NewChannel(server->port()), "", &health).ok());
  EXPECT_EQ(health.status(),
            grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  auto stub = v1::Encoder::NewStub(NewChannel(server->port()));
  v1::ModelInfo info;
  EXPECT_TRUE(CallGetModelInfo(*stub, {}, &info).ok());
  // Stopped: still 503 (the endpoint lives as long as the server object).
  server->Shutdown(absl::Seconds(20));
  EXPECT_EQ(HttpGet(port, "/healthz").status, 503);
  EXPECT_EQ(HttpGet(port, "/metrics").status, 200);
  EXPECT_EQ(HttpGet(port, "/nothing-here").status, 404);
}

TEST(MetricsTest, ProcessFiguresAreThisProcess) {
  std::unique_ptr<Server> server = StartServer(MetricsOptions());
  ASSERT_NE(server, nullptr);
  const std::vector<Sample> s = Scrape(server->metrics_port());
  // Resident pages of this process, read from statm for comparison.
  std::ifstream statm("/proc/self/statm");
  double pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  const double resident = pages_resident * sysconf(_SC_PAGESIZE);
  const double reported = Value(s, "process_resident_memory_bytes").value_or(0);
  EXPECT_GT(reported, 0.5 * resident);
  EXPECT_LT(reported, 2.0 * resident);
  EXPECT_GT(Value(s, "process_cpu_seconds_total").value_or(0), 0);
  const double start = Value(s, "process_start_time_seconds").value_or(0);
  const double now = absl::ToUnixSeconds(absl::Now());
  EXPECT_LE(start, now + 1);
  EXPECT_GT(start, now - 24 * 3600);  // this test binary started today
}

TEST(MetricsTest, AMetricsAddressInUseFailsTheStart) {
  std::unique_ptr<Server> first = StartServer(MetricsOptions());
  ASSERT_NE(first, nullptr);
  ServerOptions options = MetricsOptions();
  options.metrics_address = absl::StrCat("127.0.0.1:", first->metrics_port());
  absl::StatusOr<std::unique_ptr<Encoder>> encoder = Encoder::Load(kModelDir);
  ASSERT_TRUE(encoder.ok());
  absl::StatusOr<std::unique_ptr<Server>> second = Server::Start(
      options, *std::move(encoder), absl::NotFoundError("no tokenizer"));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("--metrics_address"),
            std::string::npos)
      << second.status();
}

TEST(MetricsTest, PromtoolAcceptsTheOutput) {
  const std::string promtool = FindTool("promtool");
  if (promtool.empty()) {
    GTEST_SKIP() << "promtool is not installed (Debian package prometheus; "
                    "scripts/install_deps.sh --test)";
  }
  const std::vector<GoldenSequence> golden = ReadTinyBertGolden();
  std::unique_ptr<Server> server = StartServer(MetricsOptions());
  ASSERT_NE(server, nullptr);
  auto channel = NewChannel(server->port());
  auto stub = v1::Encoder::NewStub(channel);
  // Every family with samples: calls OK and refused, a pass, health.
  v1::EncodeRequest request;
  AddSequence(golden[2], &request);
  v1::EncodeResponse response;
  ASSERT_TRUE(CallEncode(*stub, request, &response).ok());
  EXPECT_FALSE(CallEncode(*stub, v1::EncodeRequest(), &response).ok());
  EXPECT_TRUE(HealthCheck(channel, "").ok());

  TempDir dir("attnserve_promtool_");
  const std::string path = dir.File("metrics.txt");
  HttpResponse metrics = HttpGet(server->metrics_port(), "/metrics");
  ASSERT_EQ(metrics.status, 200);
  WriteWholeFile(path, metrics.body);
  CommandResult check =
      RunShell(absl::StrCat(promtool, " check metrics < ", ShellQuote(path)));
  EXPECT_EQ(check.status, 0) << check.output << "\n" << metrics.body;
  // promtool's lint also prints problems with exit status 0 in some
  // versions: none either way.
  EXPECT_EQ(check.output, "") << metrics.body;
}

// Starts Prometheus scraping the server every second and reads
// attnserve_requests_total back through /api/v1/query.
TEST(MetricsTest, PrometheusScrapesTheServer) {
  const std::string prometheus = FindTool("prometheus");
  if (prometheus.empty()) {
    GTEST_SKIP() << "prometheus is not installed (Debian package prometheus; "
                    "scripts/install_deps.sh --test)";
  }
  const std::vector<GoldenSequence> golden = ReadTinyBertGolden();
  std::unique_ptr<Server> server = StartServer(MetricsOptions());
  ASSERT_NE(server, nullptr);
  auto stub = v1::Encoder::NewStub(NewChannel(server->port()));
  constexpr int kCalls = 4;
  for (int i = 0; i < kCalls; ++i) {
    v1::EncodeRequest request;
    AddSequence(golden[i], &request);
    v1::EncodeResponse response;
    ASSERT_TRUE(CallEncode(*stub, request, &response).ok());
  }

  TempDir dir("attnserve_prometheus_");
  const std::string config = dir.File("prometheus.yml");
  WriteWholeFile(config, absl::StrCat(R"(global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: attnserve
    static_configs:
      - targets: ["127.0.0.1:)",
                                      server->metrics_port(), R"("]
)"));
  const int web_port = FreePort();
  ASSERT_GT(web_port, 0);
  ChildProcess child(
      {prometheus, "--config.file=" + config,
       "--storage.tsdb.path=" + dir.File("data"),
       absl::StrCat("--web.listen-address=127.0.0.1:", web_port)},
      dir.File("prometheus.log"));
  ASSERT_TRUE(child.started());

  // Bounded: Prometheus starts in about a second and scrapes every second.
  const std::string query =
      absl::StrCat("attnserve_requests_total{job=\"attnserve\",method=\"",
                   kEncode, "\",code=\"OK\"}");
  std::string last;
  double value = -1;
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (absl::Now() < give_up && child.running()) {
    CommandResult r = RunShell(
        absl::StrCat("curl -s --max-time 5 -G ",
                     ShellQuote(absl::StrCat("http://127.0.0.1:", web_port,
                                             "/api/v1/query")),
                     " --data-urlencode ", ShellQuote("query=" + query)));
    last = r.output;
    nlohmann::json answer = nlohmann::json::parse(r.output, nullptr,
                                                  /*allow_exceptions=*/false);
    if (answer.is_object() && answer.value("status", "") == "success" &&
        !answer["data"]["result"].empty()) {
      // "value": [<time>, "<value as a string>"]
      value =
          std::stod(answer["data"]["result"][0]["value"][1].get<std::string>());
      break;
    }
    absl::SleepFor(absl::Milliseconds(250));
  }
  EXPECT_EQ(value, kCalls) << "last answer: " << last << "\nprometheus log:\n"
                           << child.Output();
  child.Signal(SIGTERM);
  EXPECT_EQ(child.Wait(absl::Seconds(30)), 0) << child.Output();
}

}  // namespace
}  // namespace attnserve::testing
