#include "server/metrics.h"

#include <civetweb.h>
#include <unistd.h>

#include <cstring>
#include <exception>
#include <fstream>
#include <iterator>
#include <sstream>
#include <utility>
#include <vector>

#include "CivetServer.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace attnserve {
namespace {

// 1 ms to 60 s: a tiny model's Tokenize to a long RankHeads on two cores.
const prometheus::Histogram::BucketBoundaries kSecondsBuckets = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5,   1,      2.5,   5,    10,    25,   60};
// Tokens of one forward pass: 16 to 65,536 (the budget is 8,192 by default;
// one request may pass it alone).
const prometheus::Histogram::BucketBoundaries kTokenBuckets = {
    16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536};
const prometheus::Histogram::BucketBoundaries kSequenceBuckets = {
    1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
// 256 B to 1 GiB, ×4: an embedding to the largest attention maps.
const prometheus::Histogram::BucketBoundaries kByteBuckets = {
    256,     1024,    4096,     16384,    65536,     262144,
    1 << 20, 4 << 20, 16 << 20, 64 << 20, 256 << 20, 1 << 30};

// ---- /healthz ---------------------------------------------------------------
//
// civetweb's callbacks carry no pointer of ours and the Exposer keeps its
// CivetServer private, so the request hook finds its server's state by the
// port the request came in on. A port not (yet) known answers 503.
class HealthzPorts {
 public:
  static HealthzPorts& Get() {
    static HealthzPorts* ports = new HealthzPorts();
    return *ports;
  }
  void Add(int port, std::shared_ptr<std::atomic<bool>> serving) {
    absl::MutexLock lock(&mu_);
    ports_[port] = std::move(serving);
  }
  void Remove(int port) {
    absl::MutexLock lock(&mu_);
    ports_.erase(port);
  }
  bool Serving(int port) {
    absl::MutexLock lock(&mu_);
    auto it = ports_.find(port);
    return it != ports_.end() && it->second->load();
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<int, std::shared_ptr<std::atomic<bool>>> ports_
      ABSL_GUARDED_BY(mu_);
};

// civetweb's begin_request: answers /healthz itself (returns the status
// code), leaves everything else to the Exposer (returns 0).
int BeginRequest(mg_connection* connection) {
  const mg_request_info* request = mg_get_request_info(connection);
  if (request == nullptr || request->local_uri == nullptr ||
      std::strcmp(request->local_uri, "/healthz") != 0) {
    return 0;
  }
  const bool serving = HealthzPorts::Get().Serving(request->server_port);
  const char* body = serving ? "serving\n" : "not serving\n";
  const int code = serving ? 200 : 503;
  mg_printf(connection,
            "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: %zu\r\nCache-Control: no-store\r\n"
            "Connection: close\r\n\r\n%s",
            code, serving ? "OK" : "Service Unavailable", std::strlen(body),
            body);
  return code;
}

// ---- read at scrape time ----------------------------------------------------

std::vector<std::string> ModelNames(
    const std::vector<Metrics::ModelLabels>& models) {
  std::vector<std::string> names;
  for (const Metrics::ModelLabels& m : models) names.push_back(m.model);
  return names;
}

prometheus::MetricFamily OneValue(const std::string& name,
                                  const std::string& help,
                                  prometheus::MetricType type, double value) {
  prometheus::MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = type;
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(std::move(metric));
  return family;
}

// The queue depth, and what Prometheus' client libraries call the standard
// process metrics, from /proc/self/stat (fields per proc(5)).
class ScrapedCollector final : public prometheus::Collectable {
 public:
  ScrapedCollector(std::function<int()> queued,
                   std::vector<std::string> model_names,
                   std::function<int(int)> model_queued)
      : queued_(std::move(queued)),
        model_names_(std::move(model_names)),
        model_queued_(std::move(model_queued)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    using prometheus::MetricType;
    std::vector<prometheus::MetricFamily> out;
    out.push_back(OneValue(
        "attnserve_queue_requests",
        "Requests waiting for the inference thread (not counting the pass "
        "in progress).",
        MetricType::Gauge, queued_()));
    if (model_queued_) {
      prometheus::MetricFamily family;
      family.name = "attnserve_model_queue_requests";
      family.help =
          "Requests of one model waiting for the inference thread (each "
          "model has its own queue of --max_queue_requests).";
      family.type = MetricType::Gauge;
      for (size_t i = 0; i < model_names_.size(); ++i) {
        prometheus::ClientMetric metric;
        metric.label.push_back({"model", model_names_[i]});
        metric.gauge.value = model_queued_(static_cast<int>(i));
        family.metric.push_back(std::move(metric));
      }
      out.push_back(std::move(family));
    }
    std::ifstream file("/proc/self/stat");
    const std::string stat((std::istreambuf_iterator<char>(file)),
                           std::istreambuf_iterator<char>());
    // After "pid (comm) " come the fields from 3 (state) on; comm may hold
    // spaces and parentheses, so split after the last ')'.
    const size_t paren = stat.rfind(')');
    if (paren == std::string::npos) return out;
    const std::vector<absl::string_view> fields = absl::StrSplit(
        absl::string_view(stat).substr(paren + 1), ' ', absl::SkipEmpty());
    auto field = [&](int number) {  // proc(5) numbering
      double value = 0;
      const size_t i = number - 3;
      if (i < fields.size()) (void)absl::SimpleAtod(fields[i], &value);
      return value;
    };
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
    out.push_back(OneValue("process_cpu_seconds_total",
                           "User and system CPU time spent, in seconds.",
                           MetricType::Counter,
                           (field(14) + field(15)) / ticks));
    out.push_back(OneValue("process_resident_memory_bytes",
                           "Resident memory size in bytes.", MetricType::Gauge,
                           field(24) * page));
    if (boot_time_ > 0) {
      out.push_back(OneValue(
          "process_start_time_seconds",
          "Start time of the process since the Unix epoch, in seconds.",
          MetricType::Gauge, boot_time_ + field(22) / ticks));
    }
    return out;
  }

 private:
  // "btime" of /proc/stat: the boot time, in seconds since the epoch.
  static double BootTime() {
    std::ifstream file("/proc/stat");
    std::string line;
    while (std::getline(file, line)) {
      double value = 0;
      if (absl::StartsWith(line, "btime ") &&
          absl::SimpleAtod(absl::string_view(line).substr(6), &value)) {
        return value;
      }
    }
    return 0;
  }

  const std::function<int()> queued_;
  const std::vector<std::string> model_names_;  // by model index
  const std::function<int(int)> model_queued_;  // may be empty
  const double boot_time_ = BootTime();
};

}  // namespace

Metrics::Metrics(const std::vector<ModelLabels>& models,
                 std::function<int()> queued,
                 std::function<int(int)> model_queued)
    : registry_(std::make_shared<prometheus::Registry>()),
      scraped_(std::make_shared<ScrapedCollector>(
          std::move(queued), ModelNames(models), std::move(model_queued))),
      requests_(prometheus::BuildCounter()
                    .Name("attnserve_requests_total")
                    .Help("Finished calls, by method and gRPC status code "
                          "(refused ones included).")
                    .Register(*registry_)),
      request_duration_(prometheus::BuildHistogram()
                            .Name("attnserve_request_duration_seconds")
                            .Help("Time from a call's arrival to its status, "
                                  "in seconds.")
                            .Register(*registry_)),
      response_bytes_(prometheus::BuildHistogram()
                          .Name("attnserve_response_bytes")
                          .Help("Size of the serialized response messages "
                                "of a call, in bytes.")
                          .Register(*registry_)),
      tokens_(prometheus::BuildCounter()
                  .Name("attnserve_tokens_total")
                  .Help("Tokens computed for calls answered OK "
                        "(x-compute-tokens): a request's tokens; for "
                        "RankHeads, those of all its forward passes.")
                  .Register(*registry_)),
      queue_duration_(
          prometheus::BuildHistogram()
              .Name("attnserve_queue_duration_seconds")
              .Help("Time a request waited for the inference thread, in "
                    "seconds (RankHeads: each of its passes).")
              .Register(*registry_)
              .Add({}, kSecondsBuckets)),
      inference_duration_(prometheus::BuildHistogram()
                              .Name("attnserve_inference_duration_seconds")
                              .Help("Wall time of one forward pass, in "
                                    "seconds.")
                              .Register(*registry_)
                              .Add({}, kSecondsBuckets)),
      batch_tokens_(prometheus::BuildHistogram()
                        .Name("attnserve_batch_tokens")
                        .Help("Real tokens of one forward pass.")
                        .Register(*registry_)
                        .Add({}, kTokenBuckets)),
      batch_sequences_(prometheus::BuildHistogram()
                           .Name("attnserve_batch_sequences")
                           .Help("Sequences of one forward pass.")
                           .Register(*registry_)
                           .Add({}, kSequenceBuckets)),
      inflight_(prometheus::BuildGauge()
                    .Name("attnserve_inflight_requests")
                    .Help("Calls received and not yet finished.")
                    .Register(*registry_)
                    .Add({})),
      serving_(std::make_shared<std::atomic<bool>>(false)) {
  prometheus::Family<prometheus::Gauge>& info =
      prometheus::BuildGauge()
          .Name("attnserve_model_info")
          .Help("The served models, one series each; the value is always 1.")
          .Register(*registry_);
  prometheus::Family<prometheus::Counter>& passes =
      prometheus::BuildCounter()
          .Name("attnserve_model_passes_total")
          .Help("Forward passes of one model.")
          .Register(*registry_);
  prometheus::Family<prometheus::Counter>& pass_tokens =
      prometheus::BuildCounter()
          .Name("attnserve_model_pass_tokens_total")
          .Help("Real tokens of one model's forward passes.")
          .Register(*registry_);
  prometheus::Family<prometheus::Counter>& inference_seconds =
      prometheus::BuildCounter()
          .Name("attnserve_model_inference_seconds_total")
          .Help(
              "Time the inference thread spent in one model's forward "
              "passes, in seconds: each model's share of it.")
          .Register(*registry_);
  for (const ModelLabels& model : models) {
    info.Add({{"model", model.model},
              {"precision", model.precision},
              {"layers", absl::StrCat(model.layers)},
              {"heads", absl::StrCat(model.heads)},
              {"hidden", absl::StrCat(model.hidden)}})
        .Set(1);
    model_passes_.push_back(&passes.Add({{"model", model.model}}));
    model_pass_tokens_.push_back(&pass_tokens.Add({{"model", model.model}}));
    model_inference_seconds_.push_back(
        &inference_seconds.Add({{"model", model.model}}));
  }
}

Metrics::~Metrics() {
  if (port_ != 0) HealthzPorts::Get().Remove(port_);
  exposer_.reset();  // stops serving before the families go
}

absl::Status Metrics::Listen(const std::string& address) {
  static const CivetCallbacks* const callbacks = [] {
    auto* c = new CivetCallbacks();
    c->begin_request = BeginRequest;
    return c;
  }();
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(
        std::vector<std::string>{"listening_ports", address, "num_threads",
                                 "2"},
        callbacks);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on --metrics_address=", address,
                     " (", e.what(), "; HOST must be an IP address)"));
  }
  const std::vector<int> ports = exposer_->GetListeningPorts();
  if (ports.empty() || ports[0] <= 0) {
    exposer_.reset();
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on --metrics_address=", address));
  }
  port_ = ports[0];
  HealthzPorts::Get().Add(port_, serving_);
  exposer_->RegisterCollectable(registry_);
  exposer_->RegisterCollectable(scraped_);
  return absl::OkStatus();
}

void Metrics::SetServing(bool serving) { serving_->store(serving); }

Metrics::MethodSeries& Metrics::Series(const std::string& method) {
  std::unique_ptr<MethodSeries>& series = methods_[method];
  if (series == nullptr) {
    series = std::make_unique<MethodSeries>();
    series->duration =
        &request_duration_.Add({{"method", method}}, kSecondsBuckets);
    series->response_bytes =
        &response_bytes_.Add({{"method", method}}, kByteBuckets);
    series->tokens = &tokens_.Add({{"method", method}});
  }
  return *series;
}

void Metrics::OnCallStarted() { inflight_.Increment(); }

void Metrics::OnCallDone(const CallRecord& record) {
  inflight_.Decrement();
  int code = static_cast<int>(record.code);
  if (code < 0 || code >= 17)
    code = static_cast<int>(grpc::StatusCode::UNKNOWN);
  prometheus::Counter* requests;
  MethodSeries* series;
  {
    absl::MutexLock lock(&mu_);
    series = &Series(record.method);
    prometheus::Counter*& counter = series->requests[code];
    if (counter == nullptr) {
      counter = &requests_.Add(
          {{"method", record.method},
           {"code",
            absl::StatusCodeToString(static_cast<absl::StatusCode>(code))}});
    }
    requests = counter;
  }
  requests->Increment();
  series->duration->Observe(absl::ToDoubleSeconds(record.duration));
  series->response_bytes->Observe(static_cast<double>(record.response_bytes));
  if (record.has_work && record.code == grpc::StatusCode::OK) {
    series->tokens->Increment(static_cast<double>(record.work.tokens));
  }
}

void Metrics::OnDequeued(absl::Duration waited) {
  queue_duration_.Observe(absl::ToDoubleSeconds(waited));
}

void Metrics::OnPass(const Pass& pass) {
  inference_duration_.Observe(absl::ToDoubleSeconds(pass.duration));
  batch_tokens_.Observe(static_cast<double>(pass.tokens));
  batch_sequences_.Observe(static_cast<double>(pass.sequences));
  if (pass.model >= 0 && pass.model < static_cast<int>(model_passes_.size())) {
    model_passes_[pass.model]->Increment();
    model_pass_tokens_[pass.model]->Increment(static_cast<double>(pass.tokens));
    model_inference_seconds_[pass.model]->Increment(
        absl::ToDoubleSeconds(pass.duration));
  }
}

}  // namespace attnserve
