#include "server/batcher.h"

#include <algorithm>
#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"

namespace attnserve {
namespace {

int64_t TokenCount(const Batcher::Request& request) {
  int64_t n = 0;
  for (const SequenceTask& task : request.tasks) n += task.token_ids.size();
  return n;
}

// The forward function must not take the inference thread down: anything it
// throws becomes an INTERNAL answer for the requests of the pass.
absl::StatusOr<std::vector<SequenceOutput>> CallForward(
    const ForwardFn& forward, absl::Span<const SequenceTask> tasks) {
  absl::StatusOr<std::vector<SequenceOutput>> outputs;
  try {
    outputs = forward(tasks);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("forward pass failed: ", e.what()));
  }
  if (outputs.ok() && outputs->size() != tasks.size()) {
    return absl::InternalError(absl::StrCat("forward pass returned ",
                                            outputs->size(), " outputs for ",
                                            tasks.size(), " sequences"));
  }
  return outputs;
}

}  // namespace

Batcher::Batcher(BatcherOptions options, std::vector<ForwardFn> forwards,
                 BatchListener* listener)
    : options_(options),
      forwards_(std::move(forwards)),
      listener_(listener),
      queues_(forwards_.size()) {
  thread_ = std::thread([this] { Loop(); });
}

Batcher::Batcher(BatcherOptions options, ForwardFn forward,
                 BatchListener* listener)
    : Batcher(options, std::vector<ForwardFn>{std::move(forward)}, listener) {}

Batcher::~Batcher() { Shutdown(); }

absl::Status Batcher::Submit(Request request) {
  if (request.tasks.empty() || !request.done) {
    return absl::InvalidArgumentError(
        "batcher request needs at least one task and a done callback");
  }
  if (request.model < 0 || request.model >= models()) {
    return absl::InvalidArgumentError(
        absl::StrCat("batcher request for model index ", request.model,
                     ", but the batcher runs ", models(), " models"));
  }
  absl::MutexLock lock(&mu_);
  if (stopping_) {
    return absl::UnavailableError("server is shutting down");
  }
  std::deque<Request>& queue = queues_[request.model];
  if (static_cast<int64_t>(queue.size()) >= options_.max_queue_requests) {
    ++stats_.rejected_queue_full;
    return absl::ResourceExhaustedError(absl::StrCat(
        "request queue is full (", queue.size(), " requests waiting",
        models() > 1 ? " for this model" : "",
        ", limit --max_queue_requests=", options_.max_queue_requests,
        models() > 1 ? " per model" : "", "); retry later"));
  }
  request.submitted = absl::Now();
  queue.push_back(std::move(request));
  ++queued_;
  return absl::OkStatus();
}

void Batcher::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    paused_ = false;
  }
  absl::MutexLock lock(&join_mu_);
  if (thread_.joinable()) thread_.join();
}

void Batcher::Pause() {
  absl::MutexLock lock(&mu_);
  if (!stopping_) paused_ = true;
}

void Batcher::Resume() {
  absl::MutexLock lock(&mu_);
  paused_ = false;
}

void Batcher::PauseAfterPasses(int64_t passes) {
  absl::MutexLock lock(&mu_);
  pause_after_passes_ = passes;
}

int Batcher::queued() const {
  absl::MutexLock lock(&mu_);
  return queued_;
}

int Batcher::queued(int model) const {
  absl::MutexLock lock(&mu_);
  if (model < 0 || model >= models()) return 0;
  return static_cast<int>(queues_[model].size());
}

int Batcher::droppable() const {
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  int n = 0;
  for (const std::deque<Request>& queue : queues_) {
    for (const Request& r : queue) {
      if (r.deadline <= now || (r.is_cancelled && r.is_cancelled())) ++n;
    }
  }
  return n;
}

Batcher::Stats Batcher::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

int Batcher::NextModel() const {
  const int n = models();
  for (int i = 0; i < n; ++i) {
    const int model = (next_model_ + i) % n;
    if (!queues_[model].empty()) return model;
  }
  return -1;
}

void Batcher::Loop() {
  for (;;) {
    std::vector<Request> batch;
    std::vector<std::pair<Request, absl::Status>> dropped;
    int model = -1;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || (!paused_ && queued_ > 0);
      };
      mu_.Await(absl::Condition(&ready));
      model = NextModel();
      if (model < 0) return;  // stopping, everything answered
      // The turn passes on whatever this model's pass turns out to be (even
      // only dropped requests), so no model can hold the thread twice in a
      // row while another waits.
      next_model_ = (model + 1) % models();
      std::deque<Request>& queue = queues_[model];
      // Drop what can no longer be useful before spending a pass on it.
      const absl::Time now = absl::Now();
      int64_t tokens = 0;
      while (!queue.empty()) {
        Request& front = queue.front();
        if (front.deadline <= now) {
          ++stats_.expired;
          dropped.emplace_back(
              std::move(front),
              absl::DeadlineExceededError(
                  "deadline passed while the request waited for the "
                  "inference thread"));
          queue.pop_front();
          --queued_;
          continue;
        }
        if (front.is_cancelled && front.is_cancelled()) {
          ++stats_.cancelled;
          dropped.emplace_back(
              std::move(front),
              absl::CancelledError("request was cancelled before it ran"));
          queue.pop_front();
          --queued_;
          continue;
        }
        const int64_t n = TokenCount(front);
        // Arrival order: stop at the first request that does not fit, so a
        // long request is not overtaken forever by short ones. The first
        // request always runs, even alone over the budget.
        if (!batch.empty() && tokens + n > options_.max_batch_tokens) break;
        tokens += n;
        batch.push_back(std::move(front));
        queue.pop_front();
        --queued_;
      }
    }
    const absl::Time dequeued = absl::Now();
    for (auto& [request, status] : dropped) {
      Dequeued(request, dequeued);
      request.done(status);
    }
    for (Request& request : batch) Dequeued(request, dequeued);
    if (!batch.empty()) {
      Run(model, batch);
      absl::MutexLock lock(&mu_);
      if (pause_after_passes_ > 0 && --pause_after_passes_ == 0 && !stopping_) {
        paused_ = true;
      }
    }
  }
}

void Batcher::Run(int model, std::vector<Request>& batch) {
  const ForwardFn& forward = forwards_[model];
  // All tasks of the pass in one array; request i owns [offset[i],
  // offset[i+1]).
  std::vector<SequenceTask> tasks;
  std::vector<size_t> offset = {0};
  for (Request& request : batch) {
    for (SequenceTask& task : request.tasks) tasks.push_back(std::move(task));
    offset.push_back(tasks.size());
  }
  int64_t passes = 1;
  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<SequenceOutput>> outputs =
      CallForward(forward, tasks);

  std::vector<absl::StatusOr<std::vector<SequenceOutput>>> answers;
  answers.reserve(batch.size());
  if (outputs.ok()) {
    for (size_t i = 0; i < batch.size(); ++i) {
      std::vector<SequenceOutput> mine(
          std::make_move_iterator(outputs->begin() + offset[i]),
          std::make_move_iterator(outputs->begin() + offset[i + 1]));
      answers.push_back(std::move(mine));
    }
  } else if (batch.size() == 1) {
    answers.push_back(outputs.status());
  } else {
    // Requests were validated alone, so a merged pass should not fail; if it
    // does, run them one by one so one request cannot fail the others.
    for (size_t i = 0; i < batch.size(); ++i) {
      ++passes;
      answers.push_back(
          CallForward(forward, absl::MakeConstSpan(tasks).subspan(
                                   offset[i], offset[i + 1] - offset[i])));
    }
  }
  const absl::Duration duration = absl::Now() - start;
  int64_t tokens = 0;
  for (const SequenceTask& task : tasks) tokens += task.token_ids.size();
  if (listener_ != nullptr) {
    listener_->OnPass({model, static_cast<int>(batch.size()),
                       static_cast<int64_t>(tasks.size()), tokens, duration});
  }
  {
    absl::MutexLock lock(&mu_);
    stats_.forward_passes += passes;
    stats_.requests_run += batch.size();
    stats_.sequences_run += tasks.size();
    stats_.max_requests_in_pass = std::max<int64_t>(
        stats_.max_requests_in_pass, static_cast<int64_t>(batch.size()));
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].timing != nullptr) batch[i].timing->inference = duration;
    batch[i].done(std::move(answers[i]));
  }
}

void Batcher::Dequeued(Request& request, absl::Time now) {
  const absl::Duration waited = now - request.submitted;
  if (request.timing != nullptr) request.timing->queue = waited;
  if (listener_ != nullptr) listener_->OnDequeued(waited);
}

}  // namespace attnserve
