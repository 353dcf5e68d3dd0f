// The deadline of a call's work: the client's, or the server's default from
// now when the client set none (gRPC reports "none" as the far future).
#ifndef ATTNSERVE_SERVER_DEADLINE_H_
#define ATTNSERVE_SERVER_DEADLINE_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/support/server_callback.h"

namespace attnserve {

inline absl::Time RequestDeadline(const grpc::CallbackServerContext& context,
                                  absl::Duration default_deadline) {
  const absl::Time now = absl::Now();
  const absl::Time client = absl::FromChrono(context.deadline());
  if (client > now + absl::Hours(24 * 365 * 10)) return now + default_deadline;
  return client;
}

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_DEADLINE_H_
