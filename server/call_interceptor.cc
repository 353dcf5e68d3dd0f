#include "server/call_interceptor.h"

#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace attnserve {

void CallWorkBoard::Put(const grpc::ServerContextBase* call,
                        const CallWork& work) {
  absl::MutexLock lock(&mu_);
  work_[call] = work;
}

std::optional<CallWork> CallWorkBoard::Take(
    const grpc::ServerContextBase* call) {
  absl::MutexLock lock(&mu_);
  auto it = work_.find(call);
  if (it == work_.end()) return std::nullopt;
  CallWork work = it->second;
  work_.erase(it);
  return work;
}

namespace {

using grpc::experimental::InterceptionHookPoints;

// One per call: created by gRPC when the call arrives, destroyed with it.
class CallInterceptor final : public grpc::experimental::Interceptor {
 public:
  CallInterceptor(grpc::experimental::ServerRpcInfo* info, CallWorkBoard* board,
                  const std::vector<CallObserver*>* observers,
                  const absl::flat_hash_set<std::string>& methods)
      : info_(info), board_(board), observers_(observers) {
    record_.start = absl::Now();
    const absl::string_view path = absl::StripPrefix(info->method(), "/");
    record_.method =
        methods.contains(path) ? std::string(path) : kUnknownMethod;
    for (CallObserver* o : *observers_) o->OnCallStarted();
  }

  ~CallInterceptor() override {
    // A call torn down without sending a status (the client went away
    // before the handler answered): still one record per started call.
    absl::MutexLock lock(&mu_);
    if (!reported_) Report(grpc::StatusCode::CANCELLED, /*call_alive=*/false);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* m) override {
    Record(m);
    m->Proceed();
  }

 private:
  // Under mu_: the send hooks run on the thread that calls Finish (ours),
  // the destructor on a gRPC thread once libgrpc has completed the call.
  // That hand-off orders them, but ThreadSanitizer cannot see it inside the
  // uninstrumented libgrpc; the lock (never contended) makes it visible.
  void Record(grpc::experimental::InterceptorBatchMethods* m) {
    absl::MutexLock lock(&mu_);
    if (m->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_MESSAGE)) {
      // Serialized already for the raw handlers; health and reflection
      // messages get serialized here instead of a moment later.
      if (grpc::ByteBuffer* bytes = m->GetSerializedSendMessage()) {
        record_.response_bytes += static_cast<int64_t>(bytes->Length());
      }
    }
    if (m->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_STATUS) &&
        !reported_) {
      Report(m->GetSendStatus().error_code(), /*call_alive=*/true);
    }
  }

  void Report(grpc::StatusCode code, bool call_alive)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    reported_ = true;
    record_.code = code;
    record_.duration = absl::Now() - record_.start;
    grpc::ServerContextBase* context = info_->server_context();
    if (call_alive) {
      record_.peer = context->peer();
      // The client went away (or its deadline passed) first: whatever the
      // handler answers now, nobody receives it. Health's Watch answers a
      // client's cancel with UNKNOWN "OnCancel()", which would read as a
      // server error on every health-checking client's disconnect.
      if (context->IsCancelled()) {
        record_.code = grpc::StatusCode::CANCELLED;
      }
    }
    if (std::optional<CallWork> work = board_->Take(context)) {
      record_.has_work = true;
      record_.work = *work;
    }
    for (CallObserver* o : *observers_) o->OnCallDone(record_);
  }

  grpc::experimental::ServerRpcInfo* const info_;
  CallWorkBoard* const board_;
  const std::vector<CallObserver*>* const observers_;
  absl::Mutex mu_;
  CallRecord record_ ABSL_GUARDED_BY(mu_);
  bool reported_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::experimental::Interceptor*
CallInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new CallInterceptor(info, board_, &observers_, methods_);
}

}  // namespace attnserve
