#include "server/encode_stream.h"

#include <utility>

#include "server/deadline.h"
#include "server/wire.h"

namespace attnserve {
EncodeStreamReactor::EncodeStreamReactor(grpc::CallbackServerContext* context,
                                         EncodeStarter start, int max_in_flight,
                                         absl::Duration default_deadline,
                                         CallTracker* tracker)
    : context_(context),
      start_(std::move(start)),
      max_in_flight_(max_in_flight),
      default_deadline_(default_deadline),
      tracker_(tracker),
      cancelled_(std::make_shared<std::atomic<bool>>(false)) {
  StartRead(&read_buffer_);
}

EncodeStreamReactor::Actions EncodeStreamReactor::NextActions() {
  Actions a;
  if (finished_) return a;
  if (cancelled_->load()) {
    // Nothing more is read or written; finish once no work and no gRPC
    // operation is outstanding (the batcher drops queued work as cancelled).
    if (!reading_ && !writing_ && pending_ == 0) {
      finished_ = true;
      a.finish = true;
      a.status = grpc::Status(grpc::StatusCode::CANCELLED, "stream cancelled");
    }
  } else {
    if (!writing_) {
      auto it = answers_.find(next_write_);
      if (it != answers_.end()) {
        writing_ = true;
        a.write = &it->second;
      }
    }
    if (!reading_ && !reads_done_ &&
        next_read_ - next_write_ < max_in_flight_) {
      reading_ = true;
      a.read = true;
    }
    if (reads_done_ && !reading_ && !writing_ && pending_ == 0 &&
        next_write_ == next_read_) {
      finished_ = true;
      a.finish = true;
    }
  }
  if (a.finish) {
    // Messages read but never answered (the stream was cancelled).
    for (int64_t s = next_write_; s < next_read_; ++s) tracker_->End();
  }
  return a;
}

void EncodeStreamReactor::Act(const Actions& a) {
  if (a.write != nullptr) StartWrite(a.write);
  if (a.read) StartRead(&read_buffer_);
  if (a.finish) Finish(a.status);
}

void EncodeStreamReactor::OnReadDone(bool ok) {
  if (!ok) {  // the client half-closed, or the stream is gone
    Actions a;
    {
      absl::MutexLock lock(&mu_);
      reading_ = false;
      reads_done_ = true;
      a = NextActions();
    }
    Act(a);
    return;
  }
  v1::EncodeRequest request;
  absl::Status status = ParseRequest(read_buffer_, &request);
  int64_t seq;
  {
    absl::MutexLock lock(&mu_);
    seq = next_read_++;
    reading_ = false;
    ++pending_;
  }
  tracker_->Begin();
  if (status.ok()) {
    std::shared_ptr<std::atomic<bool>> cancelled = cancelled_;
    status = start_(
        std::move(request), RequestDeadline(*context_, default_deadline_),
        [cancelled] { return cancelled->load(); },
        [this, seq](absl::StatusOr<v1::EncodeResponse> response) {
          Answer(seq, response);
        });
  }
  if (!status.ok()) {
    Answer(seq, status);
    return;
  }
  Actions a;
  {
    absl::MutexLock lock(&mu_);
    a = NextActions();
  }
  Act(a);
}

void EncodeStreamReactor::Answer(
    int64_t seq, const absl::StatusOr<v1::EncodeResponse>& response) {
  grpc::ByteBuffer bytes;
  absl::Status status = response.status();
  if (response.ok()) status = SerializeResponse(*response, &bytes);
  if (!status.ok()) {
    v1::EncodeResponse refused;
    refused.mutable_error()->set_code(static_cast<int>(status.code()));
    refused.mutable_error()->set_message(std::string(status.message()));
    SerializeResponse(refused, &bytes).IgnoreError();  // a few bytes
  }
  Actions a;
  {
    absl::MutexLock lock(&mu_);
    answers_[seq] = std::move(bytes);
    --pending_;
    a = NextActions();
  }
  Act(a);
}

void EncodeStreamReactor::OnWriteDone(bool ok) {
  Actions a;
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    answers_.erase(next_write_++);
    tracker_->End();
    if (!ok) cancelled_->store(true);  // the client is gone
    a = NextActions();
  }
  Act(a);
}

void EncodeStreamReactor::OnCancel() {
  cancelled_->store(true);
  Actions a;
  {
    absl::MutexLock lock(&mu_);
    a = NextActions();
  }
  Act(a);
}

void EncodeStreamReactor::OnDone() { delete this; }

}  // namespace attnserve
