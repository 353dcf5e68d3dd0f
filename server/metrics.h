// Prometheus metrics of one server, over HTTP on --metrics_address with
// prometheus-cpp's pull Exposer:
//
//   /metrics  the text exposition format (what Prometheus scrapes)
//   /healthz  200 "serving" while the server serves, else 503 "not serving"
//             (loading, draining, stopped)
//
// Names follow Prometheus' conventions: the attnserve_ prefix, base units
// (_seconds, _bytes) and _total for counters. Buckets suit CPU inference:
// 1 ms to 60 s. README "Operate" lists every metric.
//
// It learns about calls as a CallObserver (server/call_interceptor.h: every
// call of every service, refused ones included) and about forward passes as
// the Batcher's BatchListener; the queue depth and the process figures are
// read when scraped.
//
// Threads: every method from any thread; the observers' methods only take a
// short lock or an atomic increment.
#ifndef ATTNSERVE_SERVER_METRICS_H_
#define ATTNSERVE_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "server/batcher.h"
#include "server/call_interceptor.h"

namespace attnserve {

class Metrics final : public CallObserver, public BatchListener {
 public:
  // The labels of attnserve_model_info (one series per served model).
  struct ModelLabels {
    std::string model;
    std::string precision;
    int layers = 0;
    int heads = 0;
    int hidden = 0;
  };

  // `models` in the Batcher's model order (Pass::model indexes them).
  // `queued` (the requests waiting for the inference thread) and
  // `model_queued` (those of model i; may be empty) are called at each
  // scrape, only after Listen().
  Metrics(const std::vector<ModelLabels>& models, std::function<int()> queued,
          std::function<int(int)> model_queued = nullptr);
  ~Metrics() override;

  // Starts the HTTP endpoint on `address` (HOST:PORT, port 0 = any free
  // port). UNAVAILABLE when it cannot listen there.
  absl::Status Listen(const std::string& address);
  // The port Listen() bound; 0 before.
  int port() const { return port_; }

  // /healthz: 200 while true, 503 while false (the initial state).
  void SetServing(bool serving);

  // CallObserver: attnserve_inflight_requests, attnserve_requests_total,
  // attnserve_request_duration_seconds, attnserve_response_bytes and
  // attnserve_tokens_total.
  void OnCallStarted() override;
  void OnCallDone(const CallRecord& record) override;

  // BatchListener: attnserve_queue_duration_seconds,
  // attnserve_inference_duration_seconds, attnserve_batch_tokens,
  // attnserve_batch_sequences, and per model attnserve_model_passes_total,
  // attnserve_model_pass_tokens_total and
  // attnserve_model_inference_seconds_total.
  void OnDequeued(absl::Duration waited) override;
  void OnPass(const Pass& pass) override;

 private:
  // The series of one method, made on its first call.
  struct MethodSeries {
    prometheus::Histogram* duration = nullptr;
    prometheus::Histogram* response_bytes = nullptr;
    prometheus::Counter* tokens = nullptr;
    std::array<prometheus::Counter*, 17> requests{};  // by grpc::StatusCode
  };
  MethodSeries& Series(const std::string& method)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::shared_ptr<prometheus::Registry> registry_;
  // Scrape-time figures: the queue depth and process_*.
  std::shared_ptr<prometheus::Collectable> scraped_;

  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& request_duration_;
  prometheus::Family<prometheus::Histogram>& response_bytes_;
  prometheus::Family<prometheus::Counter>& tokens_;
  prometheus::Histogram& queue_duration_;
  prometheus::Histogram& inference_duration_;
  prometheus::Histogram& batch_tokens_;
  prometheus::Histogram& batch_sequences_;
  prometheus::Gauge& inflight_;
  // Per model, by its index.
  std::vector<prometheus::Counter*> model_passes_;
  std::vector<prometheus::Counter*> model_pass_tokens_;
  std::vector<prometheus::Counter*> model_inference_seconds_;

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<MethodSeries>> methods_
      ABSL_GUARDED_BY(mu_);

  // Shared with the /healthz handler, which may outlive a request in flight.
  std::shared_ptr<std::atomic<bool>> serving_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_METRICS_H_
