// attnctl bench: a closed-loop load generator for attnserve.
//
// --concurrency workers, each a thread that keeps one call in flight (it
// sends the next as soon as the last is answered), for --duration seconds or
// until --requests calls have been sent. The calls are prepared before the
// clock starts (a few per worker, used in turn), so the client spends its
// CPU on gRPC, not on building requests: on a small machine the client and
// the server share the cores.
//
// Connections: the workers share --connections channels in turn, by default
// one channel, and so one HTTP/2 connection, per worker. One connection
// carries every call's frames through one socket and one server-side
// poller, which caps short calls (Tokenize) well below what the server can
// do; and N clients of a real deployment hold N connections. --connections 1
// measures the one-connection case.
//
// Before the clock starts it asks GetModelInfo (the vocab for --tokens) and
// makes one call of the chosen kind, so a bad flag, a server without
// EncodeStream or the Open Inference Protocol, or no server at all fails at
// once with the server's status instead of as a run of errors.
//
// Threads: the caller's, the workers, and one progress thread that writes a
// line per second to `progress` (when not null). Call from one thread.
#ifndef ATTNSERVE_CLIENT_BENCH_H_
#define ATTNSERVE_CLIENT_BENCH_H_

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/cli.h"

namespace attnserve::client {

// What a run measured.
struct BenchResult {
  // The load.
  std::string rpc;    // "Encode", "EncodeStream", "Tokenize", "ModelInfer"
  std::string input;  // "128 synthetic ids", "2 texts", ...
  int concurrency = 0;
  int connections = 0;
  int batch = 0;
  // The outcome.
  double elapsed_seconds = 0;  // first call sent → last answer received
  int64_t calls = 0;           // answered, whatever their status
  int64_t ok = 0;
  int64_t sequences = 0;  // of the OK calls
  int64_t tokens = 0;     // of the OK calls: what the model ran
  std::vector<double> latencies_ms;      // of the OK calls, sorted
  std::map<std::string, int64_t> codes;  // "OK", "UNAVAILABLE", ... → calls
};

// The p-th percentile (p in [0, 100]) of sorted values, nearest rank; 0 for
// none.
double Percentile(const std::vector<double>& sorted, double p);

// The report: aligned text, or one JSON object (--json).
std::string FormatBench(const BenchResult& r, bool json);

// Runs `attnctl bench` as `flags` say, against flags.channel. The first
// failing setup call (GetModelInfo, the probe) returns its status, with a
// hint for UNIMPLEMENTED; otherwise OK with the report in *out, however
// many calls failed (their codes are in it).
absl::Status RunBench(const Flags& flags, FILE* progress, std::string* out);

}  // namespace attnserve::client

#endif  // ATTNSERVE_CLIENT_BENCH_H_
