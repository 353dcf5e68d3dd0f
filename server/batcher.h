// Dynamic batching in front of one Encoder: a bounded queue of requests and
// ONE inference thread that merges whatever is queued into the next forward
// pass, up to a token budget.
//
// Bulk work (a request costlier than BatcherOptions::max_pass_tokens, or
// marked bulk, as RankHeads' passes are) waits apart and runs in pieces of
// at most that cost, one request per piece, round-robin. Interactive
// requests go first at every pass boundary, except that after an
// interactive pass a waiting bulk piece runs: neither kind starves, and an
// interactive request waits for at most one bounded piece (plus one
// interactive pass it arrived too late for).
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

  // Starts the inference thread. `listener` (may be null) must outlive the
  // Batcher.
  Batcher(BatcherOptions options, ForwardFn forward,
          BatchListener* listener = nullptr);
  // Shutdown() and join.
  ~Batcher();

  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Queues `request`. OK means it was accepted and `done` will be called
  // exactly once. Otherwise `done` is never called: RESOURCE_EXHAUSTED when
  // the queue is full, UNAVAILABLE after Shutdown, INVALID_ARGUMENT for a
  // request without tasks or callback.
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
  void Run(std::vector<Request>& batch);
  // Runs the next piece of `bulk`; true when it is answered (all pieces ran,
  // or one failed).
  bool RunPiece(Bulk& bulk);
  // Work of a task in layer-tokens (TaskLayerTokens) and the budget of one
  // piece in the same unit.
  int64_t Cost(const SequenceTask& task) const;
  int64_t PieceBudget() const;
  bool IsBulk(const Request& request) const;
  // Records how long `request` waited: its Timing and the listener.
  void Dequeued(Request& request, absl::Time now);

  const BatcherOptions options_;
  const ForwardFn forward_;
  BatchListener* const listener_;  // may be null

  mutable absl::Mutex mu_;
  std::deque<Request> queue_ ABSL_GUARDED_BY(mu_);  // interactive
  std::deque<Bulk> bulk_ ABSL_GUARDED_BY(mu_);
  // Set by the inference thread only: whether its last pass was interactive.
  bool last_interactive_ = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  int64_t pause_after_passes_ ABSL_GUARDED_BY(mu_) = 0;  // 0 = never
  Stats stats_ ABSL_GUARDED_BY(mu_);

  absl::Mutex join_mu_;  // serializes Shutdown() callers around join
  std::thread thread_;   // the inference thread
};

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_BATCHER_H_
