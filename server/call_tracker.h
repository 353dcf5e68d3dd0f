// Counts the service's calls from arrival until gRPC is done with them
// (after the response is sent), so shutdown knows when every accepted call
// has been answered.
//
// Why the server needs it: gRPC's Server::Shutdown(deadline) waits for
// *every* open call, and some never end on their own — a health-checking
// client's grpc.health.v1.Health/Watch stream, a reflection stream. Left
// alone they hold a stopping server for its whole grace period. Once this
// count is zero, what is still open is only such streams, and the server
// cancels them.
//
// Threads: any.
#ifndef ATTNSERVE_SERVER_CALL_TRACKER_H_
#define ATTNSERVE_SERVER_CALL_TRACKER_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/support/server_callback.h"

namespace attnserve {

class CallTracker {
 public:
  // A reactor for one unary call: counted in flight until its OnDone.
  grpc::ServerUnaryReactor* NewReactor();
  // Work counted by hand: one message of a stream, from its read until its
  // response is written.
  void Begin();
  void End();

  int64_t in_flight() const;
  // Blocks until no call is in flight or `deadline` passes; true if none is.
  bool WaitIdle(absl::Time deadline) const;

 private:
  class Reactor;
  mutable absl::Mutex mu_;
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_CALL_TRACKER_H_
