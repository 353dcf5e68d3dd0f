// Dynamic batching in front of the served Encoders: a bounded queue of
// requests per model and ONE inference thread (it owns oneDNN, see
// docs/ARCHITECTURE.md) that merges what one model has queued into its next
// forward pass, up to a token budget.
//
// Several models share the thread and the budget fairly: the models take
// turns. After a pass of model m the next pass is of the first model after m
// (in serving order, wrapping around) that has requests queued, so a model
// with work waits at most one pass of each other model, however many
// requests the others have queued. A pass merges requests of one model only.
//
// Within a model, bulk work (a request costlier than
// BatcherOptions::max_pass_tokens, or marked bulk, as RankHeads' passes are)
// waits apart and runs in pieces of at most that cost, one request per
// piece, round-robin. When its model's turn comes, interactive requests go
// first, except that after an interactive pass of that model a waiting bulk
// piece runs: neither kind starves, and an interactive request waits for at
// most one bounded piece (plus one interactive pass it arrived too late for)
// of its model, and one pass of each other model.
//
// Free of gRPC and protobuf on purpose: a request is a list of SequenceTasks,
// a deadline, a cancellation probe and a completion callback, so the batcher
// can be tested with a fake forward function.
//
// Threads: Submit(), Shutdown(), Pause(), Resume() and the accessors may be
// called from any thread. The forward function and every `done` callback run
// on the inference thread (never inside Submit).
#ifndef ATTNSERVE_SERVER_BATCHER_H_
#define ATTNSERVE_SERVER_BATCHER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "model/types.h"
#include "server/options.h"

namespace attnserve {

// Runs one batch; the server passes Encoder::Forward, tests a fake.
using ForwardFn = std::function<absl::StatusOr<std::vector<SequenceOutput>>(
    absl::Span<const SequenceTask>)>;

// Told what the inference thread does, for metrics (server/metrics.h): the
// batcher stays free of any metrics library. Called on the inference thread;
// implementations must be quick and must not call back into the Batcher.
class BatchListener {
 public:
  struct Pass {
    int model = 0;     // index of the model that ran (Batcher's forwards)
    int requests = 0;  // requests merged into the pass
    int64_t sequences = 0;
    int64_t tokens = 0;       // real tokens, summed over the sequences
    absl::Duration duration;  // the forward function's wall time
  };
  virtual ~BatchListener() = default;
  // A request left the queue after waiting `waited`: to run, or answered
  // DEADLINE_EXCEEDED or CANCELLED without running.
  virtual void OnDequeued(absl::Duration waited) = 0;
  // A forward pass ran (a failed merged pass re-run request by request
  // counts once, with the total time).
  virtual void OnPass(const Pass& pass) = 0;
};

class Batcher {
 public:
  struct Request {
    // Which forward function runs it: an index into the Batcher's forwards
    // (0 with a single model).
    int model = 0;
    std::vector<SequenceTask> tasks;  // at least one
    // Past this the request is answered DEADLINE_EXCEEDED instead of run.
    absl::Time deadline = absl::InfiniteFuture();
    // Polled just before the request would run; true → answered CANCELLED.
    std::function<bool()> is_cancelled;
    // Called exactly once, on the inference thread, with one output per task
    // (in order) or the reason there are none.
    std::function<void(absl::StatusOr<std::vector<SequenceOutput>>)> done;
    // Optional: where the batcher writes this request's times just before
    // `done` (the x-queue-time and x-inference-time of the response). Must
    // stay valid until `done` returns.
    struct Timing {
      // Submit() to leaving the queue; for bulk split into pieces, all the
      // time between Submit() and the answer not spent in its own pieces.
      absl::Duration queue;
      absl::Duration inference;  // the forward pass(es) it ran in
    };
    Timing* timing = nullptr;
    // Bulk even when cheap: runs after waiting interactive requests (see
    // the file comment). RankHeads marks its passes so.
    bool bulk = false;
    // Set by Submit().
    absl::Time submitted;
  };

  // Counters for tests and logs; all monotonic.
  struct Stats {
    int64_t forward_passes = 0;  // calls of the forward function
    int64_t requests_run =
        0;  // requests answered with outputs or an error of the pass
    int64_t sequences_run = 0;  // sequences that went through a pass
    int64_t expired = 0;        // answered DEADLINE_EXCEEDED without running
    int64_t cancelled = 0;      // answered CANCELLED without running
    int64_t rejected_queue_full = 0;  // Submit → RESOURCE_EXHAUSTED
    int64_t max_requests_in_pass = 0;
    int64_t bulk_pieces = 0;  // passes that ran one piece of bulk work
  };

  // Starts the inference thread for one model per entry of `forwards` (at
  // least one); Request::model indexes them. `listener` (may be null) must
  // outlive the Batcher.
  Batcher(BatcherOptions options, std::vector<ForwardFn> forwards,
          BatchListener* listener = nullptr);
  // One model.
  Batcher(BatcherOptions options, ForwardFn forward,
          BatchListener* listener = nullptr);
  // Shutdown() and join.
  ~Batcher();

  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Queues `request` on its model's queue. OK means it was accepted and
  // `done` will be called exactly once. Otherwise `done` is never called:
  // RESOURCE_EXHAUSTED when that model's queue is full
  // (BatcherOptions::max_queue_requests is per model, so a flood of one
  // model cannot lock the others out), UNAVAILABLE after Shutdown,
  // INVALID_ARGUMENT for a request without tasks or callback or with a model
  // index out of range.
  absl::Status Submit(Request request);

  // Refuses new requests, answers everything already accepted (runs or drops
  // it as usual), then joins the inference thread. Idempotent.
  void Shutdown();

  // Test hook: while paused the inference thread starts no new pass, so a
  // test can queue several requests and see them merged deterministically.
  // Shutdown() resumes.
  void Pause();
  void Resume();
  // Test hook: after `passes` more forward passes the inference thread pauses
  // itself (as Pause()), so a test can stop a multi-pass request midway.
  void PauseAfterPasses(int64_t passes);

  // Requests waiting, interactive and bulk, not counting a pass in progress
  // (nor a bulk request while one of its pieces runs).
  int queued() const;
  int queued(int model) const;  // of those, model `model`'s
  int models() const { return static_cast<int>(forwards_.size()); }
  // Test hook: of those, the ones the inference thread would drop if it
  // looked now (deadline passed, or is_cancelled() true). Lets a test wait
  // for "expired" instead of sleeping past a deadline.
  int droppable() const;
  Stats stats() const;

 private:
  // A bulk request and how far it got.
  struct Bulk {
    Request request;
    size_t next = 0;                      // first task not run yet
    std::vector<SequenceOutput> outputs;  // (next) of the pieces run
    absl::Duration inference;             // Σ of its pieces
  };

  void Loop();
  // The model whose turn it is: the first from next_model_ on with requests
  // (interactive or bulk) queued; -1 when every queue is empty.
  int NextModel() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Run(int model, std::vector<Request>& batch);
  // Runs the next piece of `bulk` of `model`; true when it is answered (all
  // pieces ran, or one failed).
  bool RunPiece(int model, Bulk& bulk);
  // Work of a task of `model` in layer-tokens (TaskLayerTokens) and the
  // budget of one piece in the same unit (of a full pass of that model).
  int64_t Cost(int model, const SequenceTask& task) const;
  int64_t PieceBudget(int model) const;
  bool IsBulk(const Request& request) const;
  int Layers(int model) const;
  // Records how long `request` waited: its Timing and the listener.
  void Dequeued(Request& request, absl::Time now);

  const BatcherOptions options_;
  const std::vector<ForwardFn> forwards_;  // one per model
  BatchListener* const listener_;          // may be null

  mutable absl::Mutex mu_;
  // One per model: its interactive requests and its bulk work.
  struct ModelQueue {
    std::deque<Request> interactive;
    std::deque<Bulk> bulk;
  };
  std::vector<ModelQueue> queues_ ABSL_GUARDED_BY(mu_);
  int queued_ ABSL_GUARDED_BY(mu_) = 0;      // summed over queues_
  int next_model_ ABSL_GUARDED_BY(mu_) = 0;  // where the next turn starts
  // Inference thread only: whether each model's last pass was interactive.
  std::vector<uint8_t> last_interactive_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  int64_t pause_after_passes_ ABSL_GUARDED_BY(mu_) = 0;  // 0 = never
  Stats stats_ ABSL_GUARDED_BY(mu_);

  absl::Mutex join_mu_;  // serializes Shutdown() callers around join
  std::thread thread_;   // the inference thread
};

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_BATCHER_H_
