#include "server/completion_executor.h"

#include <algorithm>
#include <utility>

namespace attnserve {

CompletionExecutor::CompletionExecutor(int64_t max_pending_bytes)
    : max_pending_bytes_(max_pending_bytes) {
  thread_ = std::thread([this] { Loop(); });
  worker_id_ = thread_.get_id();
}

CompletionExecutor::~CompletionExecutor() { Shutdown(); }

void CompletionExecutor::Post(absl::AnyInvocable<void() &&> work,
                              int64_t bytes) {
  bool run_inline = std::this_thread::get_id() == worker_id_;
  {
    absl::MutexLock lock(&mu_);
    if (!run_inline && !stopping_) {
      auto room = [this, bytes]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || queue_.empty() ||
               pending_bytes_ + bytes <= max_pending_bytes_;
      };
      if (!room()) {
        ++stats_.waited;
        mu_.Await(absl::Condition(&room));
      }
    }
    if (run_inline || stopping_) {
      run_inline = true;
      ++stats_.ran_inline;
    } else {
      queue_.push_back(Item{std::move(work), bytes});
      pending_bytes_ += bytes;
      stats_.max_pending = std::max<int64_t>(stats_.max_pending, queue_.size());
      return;
    }
  }
  std::move(work)();
  absl::MutexLock lock(&mu_);
  ++stats_.run;
}

void CompletionExecutor::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  absl::MutexLock lock(&join_mu_);
  if (thread_.joinable()) thread_.join();
}

CompletionExecutor::Stats CompletionExecutor::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

void CompletionExecutor::Loop() {
  for (;;) {
    Item item;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !queue_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping, everything run
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    std::move(item.work)();
    // Release the bytes only once the work (and what it held) is gone.
    item.work = nullptr;
    absl::MutexLock lock(&mu_);
    pending_bytes_ -= item.bytes;
    ++stats_.run;
  }
}

}  // namespace attnserve
