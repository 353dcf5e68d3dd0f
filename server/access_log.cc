#include "server/access_log.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"

namespace attnserve {
namespace {

// The writer's batches: whatever is queued, written every kFlushInterval, or
// as soon as kFlushLines wait.
constexpr absl::Duration kFlushInterval = absl::Milliseconds(100);
constexpr size_t kFlushLines = 256;

// A JSON string literal. Method names and peers are ASCII from gRPC; escape
// anyway so a line is always valid JSON.
std::string Json(absl::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      absl::StrAppend(&out, "\\", std::string(1, static_cast<char>(c)));
    } else if (c < 0x20 || c >= 0x7f) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  out.push_back('"');
  return out;
}

// A logfmt value: as is when it has no space, quote or '=', else quoted.
std::string Logfmt(absl::string_view s) {
  for (unsigned char c : s) {
    if (c <= ' ' || c == '"' || c == '=' || c >= 0x7f) return Json(s);
  }
  return s.empty() ? "\"\"" : std::string(s);
}

}  // namespace

absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("--log_format=", name, ": use text or json"));
}

std::string FormatAccessLine(const CallRecord& r, LogFormat format) {
  const std::string time = absl::FormatTime(
      "%Y-%m-%dT%H:%M:%E3SZ", r.start + r.duration, absl::UTCTimeZone());
  const std::string code =
      absl::StatusCodeToString(static_cast<absl::StatusCode>(r.code));
  const std::string queue = Milliseconds(r.work.queue);
  const std::string inference = Milliseconds(r.work.inference);
  const std::string total = Milliseconds(r.duration);
  if (format == LogFormat::kJson) {
    return absl::StrCat(
        "{\"time\":", Json(time), ",\"method\":", Json(r.method),
        ",\"peer\":", Json(r.peer), ",\"code\":", Json(code),
        ",\"sequences\":", r.work.sequences, ",\"tokens\":", r.work.tokens,
        ",\"queue_ms\":", queue, ",\"inference_ms\":", inference,
        ",\"total_ms\":", total, ",\"response_bytes\":", r.response_bytes,
        r.work.model.empty() ? ""
                             : absl::StrCat(",\"model\":", Json(r.work.model)),
        "}");
  }
  return absl::StrCat(
      "time=", time, " method=", Logfmt(r.method), " peer=", Logfmt(r.peer),
      " code=", code, " sequences=", r.work.sequences,
      " tokens=", r.work.tokens, " queue_ms=", queue,
      " inference_ms=", inference, " total_ms=", total,
      " response_bytes=", r.response_bytes,
      r.work.model.empty() ? ""
                           : absl::StrCat(" model=", Logfmt(r.work.model)));
}

AccessLog::AccessLog(LogFormat format, std::FILE* out, size_t max_pending)
    : format_(format), out_(out), max_pending_(max_pending) {
  writer_ = std::thread([this] { Loop(); });
}

AccessLog::~AccessLog() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  writer_.join();
}

void AccessLog::OnCallDone(const CallRecord& record) {
  std::string line = FormatAccessLine(record, format_);
  line.push_back('\n');
  absl::MutexLock lock(&mu_);
  if (pending_.size() >= max_pending_) {
    ++dropped_;
    return;
  }
  pending_.push_back(std::move(line));
}

int64_t AccessLog::dropped() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

void AccessLog::Loop() {
  int64_t reported = 0;  // drops already written about
  std::vector<std::string> lines;
  for (;;) {
    int64_t dropped;
    bool stopping;
    {
      absl::MutexLock lock(&mu_);
      // Woken by a full batch or the end, else every kFlushInterval: a call
      // that queues a line does not wake this thread (a futex wake and a
      // write per call measurably slowed the calls on two busy cores).
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || pending_.size() >= kFlushLines;
      };
      mu_.AwaitWithTimeout(absl::Condition(&ready), kFlushInterval);
      lines.swap(pending_);
      dropped = dropped_;
      stopping = stopping_;
    }
    std::string chunk;
    for (const std::string& line : lines) chunk += line;
    lines.clear();
    if (dropped > reported) {
      absl::StrAppend(&chunk, "attnserve: access log: ", dropped - reported,
                      " lines dropped (stderr did not keep up)\n");
      reported = dropped;
    }
    if (!chunk.empty()) {
      std::fwrite(chunk.data(), 1, chunk.size(), out_);
      std::fflush(out_);
    }
    if (stopping) {
      absl::MutexLock lock(&mu_);
      if (pending_.empty() && dropped_ == reported) return;
    }
  }
}

}  // namespace attnserve
