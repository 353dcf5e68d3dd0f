// What a service's handlers ask of and report to the server's operating
// parts, in one place so every service does it the same way: the token check
// that opens every handler, and the model work of a call (sequences, tokens,
// where the time went) sent back as x-*-time metadata and handed to the call
// interceptor for the metrics and the access log.
//
// Threads: any; the pointees are thread-safe and outlive the services.
#ifndef ATTNSERVE_SERVER_SERVICE_HOOKS_H_
#define ATTNSERVE_SERVER_SERVICE_HOOKS_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "server/auth.h"
#include "server/call_interceptor.h"
#include "server/call_record.h"

namespace attnserve {

struct ServiceHooks {
  // Null: no token needed.
  const Authenticator* auth = nullptr;
  // Null: nobody takes the work (no call interceptor runs).
  CallWorkBoard* work_board = nullptr;

  // First thing in every handler: OK, or UNAUTHENTICATED naming the header
  // (CheckCallToken).
  absl::Status CheckToken(const grpc::ServerContextBase& context) const {
    return CheckCallToken(auth, context);
  }

  // Finishes a call that got as far as model work with `status`: `work`
  // (its total from `start` to now) goes into the x-*-time metadata and
  // onto the board.
  void FinishWithWork(grpc::CallbackServerContext* context,
                      grpc::ServerUnaryReactor* reactor, CallWork work,
                      absl::Time start, const grpc::Status& status) const;
};

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_SERVICE_HOOKS_H_
