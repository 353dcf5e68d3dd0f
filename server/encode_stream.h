// attnserve.v1.Encoder/EncodeStream: Encode, pipelined over one bidi stream.
//
// Each request message is one Encode (validated, queued and batched with
// other traffic exactly like a unary call); responses go back in request
// order. At most `max_in_flight` messages of a stream are read and not yet
// answered: past that the reactor stops reading, so a fast producer is held
// back by HTTP/2 flow control instead of growing memory. A message that is
// refused gets a response with `error` set and the stream goes on.
// Cancelling the stream cancels its queued work (the batcher drops it).
//
// Threads: gRPC's callback threads (reads, writes) and the completion thread
// (answers) touch the state under one mutex; gRPC calls are made outside it.
#ifndef ATTNSERVE_SERVER_ENCODE_STREAM_H_
#define ATTNSERVE_SERVER_ENCODE_STREAM_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "proto/attnserve.pb.h"
#include "server/call_tracker.h"

namespace attnserve {

// Starts one Encode. OK means `done` will be called exactly once, from any
// thread, with the response or the reason there is none; a refusal means it
// is never called.
using EncodeStarter = std::function<absl::Status(
    v1::EncodeRequest request, absl::Time deadline,
    std::function<bool()> is_cancelled,
    std::function<void(absl::StatusOr<v1::EncodeResponse>)> done)>;

class EncodeStreamReactor
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // Starts reading. `tracker` counts each message until it is answered.
  EncodeStreamReactor(grpc::CallbackServerContext* context, EncodeStarter start,
                      int max_in_flight, absl::Duration default_deadline,
                      CallTracker* tracker);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // What to do after a state change, decided under the lock and done
  // outside it (gRPC may not be called with the lock held).
  struct Actions {
    bool read = false;
    const grpc::ByteBuffer* write = nullptr;
    bool finish = false;
    grpc::Status status;
  };
  Actions NextActions() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Act(const Actions& actions);
  // Stores message `seq`'s response (or error) for its turn to be written.
  void Answer(int64_t seq, const absl::StatusOr<v1::EncodeResponse>& response);

  grpc::CallbackServerContext* const context_;
  const EncodeStarter start_;
  const int max_in_flight_;
  const absl::Duration default_deadline_;
  CallTracker* const tracker_;
  grpc::ByteBuffer read_buffer_;  // owned by the outstanding read

  absl::Mutex mu_;
  int64_t next_read_ ABSL_GUARDED_BY(mu_) = 0;   // seq of the next message
  int64_t next_write_ ABSL_GUARDED_BY(mu_) = 0;  // seq whose answer is next
  // Answers waiting for their turn, by seq; the one being written stays
  // here until its write is done.
  std::map<int64_t, grpc::ByteBuffer> answers_ ABSL_GUARDED_BY(mu_);
  int pending_ ABSL_GUARDED_BY(mu_) = 0;      // started, not yet answered
  bool reading_ ABSL_GUARDED_BY(mu_) = true;  // a read is outstanding
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;  // client half-closed
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  // Read by queued work's is_cancelled from the inference thread.
  std::shared_ptr<std::atomic<bool>> cancelled_;
};

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_ENCODE_STREAM_H_
