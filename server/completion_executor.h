// Runs the completions of requests (conversion of a pass's outputs to proto,
// head statistics, rollout, Finish) on one worker thread of its own, so the
// inference thread can start its next forward pass right away.
//
// Why one thread, in order: the work is single-threaded and short next to a
// forward pass; more threads would only compete harder with the pass's two
// OpenMP threads on a two-core machine (docs/ARCHITECTURE.md, "Threads").
//
// Memory is bounded: Post() blocks while the work waiting holds more than
// `max_pending_bytes` (as its caller weighs it), so when conversion falls
// behind the inference thread waits instead of piling up outputs. One item
// is always admitted when nothing waits, however heavy.
//
// Free of gRPC, like the Batcher. Threads: Post(), Shutdown() and the
// accessors from any thread. A Post() from the worker itself runs the work
// inline (never waits on itself).
#ifndef ATTNSERVE_SERVER_COMPLETION_EXECUTOR_H_
#define ATTNSERVE_SERVER_COMPLETION_EXECUTOR_H_

#include <cstdint>
#include <deque>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace attnserve {

class CompletionExecutor {
 public:
  struct Stats {
    int64_t run = 0;          // work items finished (worker or inline)
    int64_t ran_inline = 0;   // of those, run by Post() itself
    int64_t waited = 0;       // Post() calls that blocked on the bound
    int64_t max_pending = 0;  // most items waiting at once
  };

  // Starts the worker thread.
  explicit CompletionExecutor(int64_t max_pending_bytes);
  // Shutdown().
  ~CompletionExecutor();

  CompletionExecutor(const CompletionExecutor&) = delete;
  CompletionExecutor& operator=(const CompletionExecutor&) = delete;

  // Runs `work` exactly once: on the worker, in Post order, or inline when
  // called after Shutdown() or from the worker. `bytes` weighs it against
  // max_pending_bytes.
  void Post(absl::AnyInvocable<void() &&> work, int64_t bytes = 0);

  // Runs everything already posted, then joins the worker. Idempotent; later
  // Post() calls run inline.
  void Shutdown();

  Stats stats() const;

 private:
  struct Item {
    absl::AnyInvocable<void() &&> work;
    int64_t bytes = 0;
  };
  void Loop();

  const int64_t max_pending_bytes_;

  mutable absl::Mutex mu_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  int64_t pending_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  Stats stats_ ABSL_GUARDED_BY(mu_);

  absl::Mutex join_mu_;        // serializes Shutdown() callers around join
  std::thread thread_;         // the worker
  std::thread::id worker_id_;  // set once in the constructor
};

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_COMPLETION_EXECUTOR_H_
