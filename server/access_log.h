// The access log: one line per finished call, on stderr, written by a thread
// of its own so no call ever waits for the terminal or a log pipe. Lines are
// written in batches, at most 100 ms after their call finished.
//
//   text: time=2024-06-01T12:00:00.123Z method=attnserve.v1.Encoder/Encode
//         peer=ipv4:127.0.0.1:51234 code=OK sequences=2 tokens=18
//         queue_ms=0.120 inference_ms=3.400 total_ms=5.100 response_bytes=1234
//         (one line, logfmt: key=value pairs separated by spaces)
//   json: {"time":"2024-06-01T12:00:00.123Z","method":"attnserve.v1.Encoder/
//         Encode","peer":"ipv4:127.0.0.1:51234","code":"OK","sequences":2,...}
//
// time is when the call finished (UTC), total_ms its whole duration as the
// server saw it, sequences/tokens/queue_ms/inference_ms the handler's
// CallWork (0 for calls without model work, such as health checks or
// refused requests). Never request content: no text, no ids, no error
// message (which may quote the input), no metadata.
//
// Bounded: when more than `max_pending` lines wait (stderr blocked), new
// lines are dropped and counted, and a line saying how many is written once
// stderr moves again. The default is 64 batches.
//
// Threads: OnCallDone() from any thread; it formats and queues.
#ifndef ATTNSERVE_SERVER_ACCESS_LOG_H_
#define ATTNSERVE_SERVER_ACCESS_LOG_H_

#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/call_interceptor.h"
#include "server/call_record.h"
#include "server/options.h"

namespace attnserve {

// One access log line for `record`, without the newline.
std::string FormatAccessLine(const CallRecord& record, LogFormat format);

// "text" or "json"; INVALID_ARGUMENT otherwise.
absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name);

class AccessLog final : public CallObserver {
 public:
  // Starts the writer thread. `out` must outlive the AccessLog.
  explicit AccessLog(LogFormat format, std::FILE* out = stderr,
                     size_t max_pending = 16384);
  // Writes what is queued, then joins the writer.
  ~AccessLog() override;

  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  void OnCallDone(const CallRecord& record) override;

  int64_t dropped() const;

 private:
  void Loop();

  const LogFormat format_;
  std::FILE* const out_;
  const size_t max_pending_;

  mutable absl::Mutex mu_;
  std::vector<std::string> pending_ ABSL_GUARDED_BY(mu_);
  int64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread writer_;
};

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_ACCESS_LOG_H_
