#include "server/batcher.h"

#include <algorithm>
#include <exception>
#include <limits>
#include <optional>
#include <tuple>
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
      queues_(forwards_.size()),
      last_interactive_(forwards_.size(), 0) {
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
  ModelQueue& queue = queues_[request.model];
  const size_t waiting = queue.interactive.size() + queue.bulk.size();
  if (static_cast<int64_t>(waiting) >= options_.max_queue_requests) {
    ++stats_.rejected_queue_full;
    return absl::ResourceExhaustedError(absl::StrCat(
        "request queue is full (", waiting, " requests waiting",
        models() > 1 ? " for this model" : "",
        ", limit --max_queue_requests=", options_.max_queue_requests,
        models() > 1 ? " per model" : "", "); retry later"));
  }
  request.submitted = absl::Now();
  if (IsBulk(request)) {
    queue.bulk.push_back(Bulk{std::move(request), 0, {}, absl::ZeroDuration()});
  } else {
    queue.interactive.push_back(std::move(request));
  }
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
  return static_cast<int>(queues_[model].interactive.size() +
                          queues_[model].bulk.size());
}

int Batcher::droppable() const {
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  int n = 0;
  auto drop = [now](const Request& r) {
    return r.deadline <= now || (r.is_cancelled && r.is_cancelled());
  };
  for (const ModelQueue& queue : queues_) {
    for (const Request& r : queue.interactive) n += drop(r);
    for (const Bulk& b : queue.bulk) n += drop(b.request);
  }
  return n;
}

Batcher::Stats Batcher::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

int Batcher::Layers(int model) const {
  return model < static_cast<int>(options_.model_layers.size())
             ? options_.model_layers[model]
             : 0;
}

int64_t Batcher::Cost(int model, const SequenceTask& task) const {
  const int layers = Layers(model);
  return layers > 0 ? TaskLayerTokens(task, layers)
                    : static_cast<int64_t>(task.token_ids.size());
}

int64_t Batcher::PieceBudget(int model) const {
  // max_pass_tokens ≤ 0: no splitting (the benchmark's "before").
  if (options_.max_pass_tokens <= 0) {
    return std::numeric_limits<int64_t>::max();
  }
  return options_.max_pass_tokens * std::max(1, Layers(model));
}

bool Batcher::IsBulk(const Request& request) const {
  if (request.bulk) return true;
  const int64_t budget = PieceBudget(request.model);
  int64_t cost = 0;
  for (const SequenceTask& task : request.tasks) {
    cost += Cost(request.model, task);
    if (cost > budget) return true;
  }
  return false;
}

int Batcher::NextModel() const {
  const int n = models();
  for (int i = 0; i < n; ++i) {
    const int model = (next_model_ + i) % n;
    if (!queues_[model].interactive.empty() || !queues_[model].bulk.empty()) {
      return model;
    }
  }
  return -1;
}

void Batcher::Loop() {
  for (;;) {
    std::vector<Request> batch;
    // (request, answer, whether it still counts as leaving the queue)
    std::vector<std::tuple<Request, absl::Status, bool>> dropped;
    std::optional<Bulk> piece;
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
      ModelQueue& queue = queues_[model];
      // Drop what can no longer be useful before spending a pass on it.
      const absl::Time now = absl::Now();
      auto why_drop = [&](const Request& r)
                          ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::Status {
        if (r.deadline <= now) {
          ++stats_.expired;
          return absl::DeadlineExceededError(
              "deadline passed while the request waited for the inference "
              "thread");
        }
        if (r.is_cancelled && r.is_cancelled()) {
          ++stats_.cancelled;
          return absl::CancelledError("request was cancelled before it ran");
        }
        return absl::OkStatus();
      };
      // A bulk request is checked before each of its pieces.
      while (!queue.bulk.empty()) {
        absl::Status why = why_drop(queue.bulk.front().request);
        if (why.ok()) break;
        dropped.emplace_back(std::move(queue.bulk.front().request), why,
                             queue.bulk.front().next == 0);
        queue.bulk.pop_front();
        --queued_;
      }
      // Interactive first, but not twice in a row while bulk waits.
      if (!queue.interactive.empty() &&
          (queue.bulk.empty() || !last_interactive_[model])) {
        int64_t tokens = 0;
        while (!queue.interactive.empty()) {
          Request& front = queue.interactive.front();
          if (absl::Status why = why_drop(front); !why.ok()) {
            dropped.emplace_back(std::move(front), why, true);
            queue.interactive.pop_front();
            --queued_;
            continue;
          }
          const int64_t n = TokenCount(front);
          // Arrival order: stop at the first request that does not fit, so
          // a long request is not overtaken forever by short ones. The
          // first request always runs, even alone over the budget.
          if (!batch.empty() && tokens + n > options_.max_batch_tokens) break;
          tokens += n;
          batch.push_back(std::move(front));
          queue.interactive.pop_front();
          --queued_;
        }
      }
      if (batch.empty() && !queue.bulk.empty()) {
        piece.emplace(std::move(queue.bulk.front()));
        queue.bulk.pop_front();
        --queued_;
      }
    }
    const absl::Time dequeued = absl::Now();
    for (auto& [request, status, leaves] : dropped) {
      if (leaves) Dequeued(request, dequeued);
      request.done(status);
    }
    if (batch.empty() && !piece.has_value()) continue;
    if (!batch.empty()) {
      for (Request& request : batch) Dequeued(request, dequeued);
      Run(model, batch);
      last_interactive_[model] = 1;
    } else {
      if (piece->next == 0) Dequeued(piece->request, dequeued);
      const bool answered = RunPiece(model, *piece);
      last_interactive_[model] = 0;
      if (!answered) {
        // Round-robin: behind the model's other bulk requests.
        absl::MutexLock lock(&mu_);
        queues_[model].bulk.push_back(*std::move(piece));
        ++queued_;
      }
    }
    absl::MutexLock lock(&mu_);
    if (pause_after_passes_ > 0 && --pause_after_passes_ == 0 && !stopping_) {
      paused_ = true;
    }
  }
}

bool Batcher::RunPiece(int model, Bulk& bulk) {
  Request& request = bulk.request;
  const std::vector<SequenceTask>& tasks = request.tasks;
  // Whole sequences while the cost fits (at least one), as the interactive
  // passes also within max_batch_tokens.
  const int64_t budget = PieceBudget(model);
  size_t end = bulk.next;
  int64_t cost = 0, tokens = 0;
  while (end < tasks.size()) {
    const int64_t c = Cost(model, tasks[end]);
    const int64_t t = static_cast<int64_t>(tasks[end].token_ids.size());
    if (end > bulk.next &&
        (cost + c > budget || tokens + t > options_.max_batch_tokens)) {
      break;
    }
    cost += c;
    tokens += t;
    ++end;
  }
  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<SequenceOutput>> outputs = CallForward(
      forwards_[model],
      absl::MakeConstSpan(tasks).subspan(bulk.next, end - bulk.next));
  const absl::Duration duration = absl::Now() - start;
  bulk.inference += duration;
  if (listener_ != nullptr) {
    listener_->OnPass(
        {model, 1, static_cast<int64_t>(end - bulk.next), tokens, duration});
  }
  const bool answered = !outputs.ok() || end == tasks.size();
  {
    absl::MutexLock lock(&mu_);
    ++stats_.forward_passes;
    ++stats_.bulk_pieces;
    stats_.sequences_run += end - bulk.next;
    stats_.max_requests_in_pass =
        std::max<int64_t>(stats_.max_requests_in_pass, 1);
    if (answered) ++stats_.requests_run;
  }
  if (outputs.ok()) {
    for (SequenceOutput& o : *outputs) bulk.outputs.push_back(std::move(o));
    bulk.next = end;
  }
  if (!answered) return false;
  if (request.timing != nullptr) {
    request.timing->inference = bulk.inference;
    request.timing->queue = absl::Now() - request.submitted - bulk.inference;
  }
  if (outputs.ok()) {
    request.done(std::move(bulk.outputs));
  } else {
    request.done(outputs.status());
  }
  return true;
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
