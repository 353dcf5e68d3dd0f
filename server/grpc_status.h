// The one place where absl::Status becomes grpc::Status.
#ifndef ATTNSERVE_SERVER_GRPC_STATUS_H_
#define ATTNSERVE_SERVER_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace attnserve {

// Same code (the two enums share their numbering), same message. OK → OK.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_GRPC_STATUS_H_
