// What one finished call did, as the access log and the metrics see it.
//
// A call's record is put together by the call interceptor
// (server/call_interceptor.h), which sees every call of every service: the
// method, the peer, the status code, the response bytes and the duration. The
// handlers that tokenize or run the model add a CallWork (sequences, tokens,
// and where the time went), which they also send to the client as the
// x-*-time initial metadata (AddTimingMetadata).
//
// Never any request content: no text, no token ids, no error message (a
// message may quote the input).
#ifndef ATTNSERVE_SERVER_CALL_RECORD_H_
#define ATTNSERVE_SERVER_CALL_RECORD_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace attnserve {

// The model work of one Encode, Tokenize or RankHeads call.
struct CallWork {
  // The served model that did the work (a name from the server's flags,
  // never one a client sent); empty for calls of no model.
  std::string model;
  int64_t sequences = 0;
  int64_t tokens = 0;  // real tokens of the request (x-compute-tokens)
  // Handler entry to the end of validation (parsing, tokenizing, checks).
  absl::Duration tokenization;
  // Waiting for the inference thread, and forward passes; summed over the
  // passes of a RankHeads call.
  absl::Duration queue;
  absl::Duration inference;
  absl::Duration total;  // handler entry to Finish (x-total-time)
};

struct CallRecord {
  std::string method;  // "attnserve.v1.Encoder/Encode" (no leading '/')
  std::string peer;    // "ipv4:127.0.0.1:41234"
  grpc::StatusCode code = grpc::StatusCode::OK;
  absl::Time start;            // the call arrived
  absl::Duration duration;     // arrival to the status being sent
  int64_t response_bytes = 0;  // serialized response messages
  bool has_work = false;       // `work` was reported by the handler
  CallWork work;
};

// Adds the x-total-time, x-queue-time, x-tokenization-time and
// x-inference-time (milliseconds, decimal strings, µs resolution) and
// x-compute-tokens initial metadata of `work` to `context`. Call before
// Finish.
void AddTimingMetadata(const CallWork& work, grpc::ServerContextBase* context);

// "12.345": milliseconds with three decimals.
std::string Milliseconds(absl::Duration d);

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_CALL_RECORD_H_
