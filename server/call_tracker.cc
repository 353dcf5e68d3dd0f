#include "server/call_tracker.h"

namespace attnserve {

class CallTracker::Reactor : public grpc::ServerUnaryReactor {
 public:
  explicit Reactor(CallTracker* tracker) : tracker_(tracker) {}
  void OnDone() override {
    {
      absl::MutexLock lock(&tracker_->mu_);
      --tracker_->in_flight_;
    }
    delete this;
  }

 private:
  CallTracker* const tracker_;
};

grpc::ServerUnaryReactor* CallTracker::NewReactor() {
  absl::MutexLock lock(&mu_);
  ++in_flight_;
  return new Reactor(this);
}

void CallTracker::Begin() {
  absl::MutexLock lock(&mu_);
  ++in_flight_;
}

void CallTracker::End() {
  absl::MutexLock lock(&mu_);
  --in_flight_;
}

int64_t CallTracker::in_flight() const {
  absl::MutexLock lock(&mu_);
  return in_flight_;
}

bool CallTracker::WaitIdle(absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  auto idle = [this]()
                  ABSL_SHARED_LOCKS_REQUIRED(mu_) { return in_flight_ == 0; };
  mu_.AwaitWithDeadline(absl::Condition(&idle), deadline);
  return in_flight_ == 0;
}

}  // namespace attnserve
