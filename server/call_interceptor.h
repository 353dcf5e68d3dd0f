// Sees every call of every service the server registers, including services
// added later and calls refused before any handler work (UNAUTHENTICATED,
// INVALID_ARGUMENT, RESOURCE_EXHAUSTED): a gRPC server interceptor that turns
// each finished call into a CallRecord for its observers (the metrics and the
// access log).
//
// A call the client cancelled (or whose deadline passed) before the status
// went out is recorded CANCELLED, whatever the handler answered.
//
// Handlers that do model work report it on a CallWorkBoard, keyed by the
// call's server context, just before they Finish; the interceptor takes it
// when the status goes out. That keeps the handlers free of metrics and
// logging: they report facts, the observers decide what to do with them.
//
// Why not the authentication check too: a gRPC 1.51 server interceptor cannot
// fail a call (Hijack() is client-only, and TryCancel() answers CANCELLED,
// not UNAUTHENTICATED), so tokens are checked by the handlers
// (server/auth.h).
//
// Threads: the interceptor runs on whichever thread moves the call along
// (gRPC's callback threads, the completion thread). Observers must be
// thread-safe and quick; they must not block.
#ifndef ATTNSERVE_SERVER_CALL_INTERCEPTOR_H_
#define ATTNSERVE_SERVER_CALL_INTERCEPTOR_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/server_interceptor.h"
#include "server/call_record.h"

namespace attnserve {

class CallObserver {
 public:
  virtual ~CallObserver() = default;
  // A call arrived (before any handler ran).
  virtual void OnCallStarted() {}
  // It finished: called exactly once per started call.
  virtual void OnCallDone(const CallRecord& record) = 0;
};

// Handler → interceptor hand-over of a call's CallWork. Any thread.
class CallWorkBoard {
 public:
  void Put(const grpc::ServerContextBase* call, const CallWork& work);
  std::optional<CallWork> Take(const grpc::ServerContextBase* call);

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<const grpc::ServerContextBase*, CallWork> work_
      ABSL_GUARDED_BY(mu_);
};

// For ServerBuilder::experimental().SetInterceptorCreators. `board` and the
// observers must outlive the grpc::Server.
//
// `methods` are the "package.Service/Method" names of the services the server
// registers. A call to any other path (answered UNIMPLEMENTED by gRPC) is
// recorded as method "unknown": the path is the client's choice, and
// recording it would let any client grow the metrics without bound.
class CallInterceptorFactory
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  CallInterceptorFactory(CallWorkBoard* board,
                         std::vector<CallObserver*> observers,
                         absl::flat_hash_set<std::string> methods)
      : board_(board),
        observers_(std::move(observers)),
        methods_(std::move(methods)) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  CallWorkBoard* const board_;
  const std::vector<CallObserver*> observers_;
  const absl::flat_hash_set<std::string> methods_;
};

// What a CallRecord names a call to a path outside the registered methods.
inline constexpr char kUnknownMethod[] = "unknown";

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_CALL_INTERCEPTOR_H_
