// What metrics and the access log cost per request: the client side of
// bench/operate_overhead.sh.
//
//   operate_bench --a=HOST:PORT --b=HOST:PORT [--rounds=30] [--calls=200]
//   operate_bench --micro
//
// A and B are two attnserve processes on the same model, one with
// --metrics_address and --log_requests, one with neither. Each round times
// `calls` synchronous unary calls against each server in turn (ABBA order,
// so a drift in the machine's load hits both alike; 100 ms pause between
// blocks), for two methods: Tokenize (the cheapest call that does work:
// parse, tokenize, answer on the gRPC thread) and Encode of one 8-token
// sequence (queue, a forward pass of the tiny model, completion thread).
// Prints, per method, each server's median and p90 latency over all calls,
// and the median over rounds of (A's block median − B's block median) with
// the 10th–90th percentile of those differences: the overhead per call and
// how much it moves from round to round.
//
// --micro times, in-process and without gRPC, what the server adds per call
// when both are on: the call's CallWork over the board (Put, Take), the
// metrics' OnCallStarted/OnCallDone, and formatting and queueing the access
// log line (written to /dev/null by the log's own thread).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "proto/attnserve.grpc.pb.h"
#include "server/access_log.h"
#include "server/call_interceptor.h"
#include "server/metrics.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace pb = attnserve::v1;

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * v.size()));
  return v[i];
}

struct Target {
  std::string address;
  std::unique_ptr<pb::Encoder::Stub> stub;
};

// One call of `method` ("tokenize" or "encode"); its latency in µs, or < 0
// when it failed.
double Call(pb::Encoder::Stub& stub, const std::string& method) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
  const auto start = Clock::now();
  grpc::Status status;
  if (method == "tokenize") {
    pb::TokenizeRequest request;
    request.add_sequences()->set_text("the cat sat on the mat");
    pb::TokenizeResponse response;
    status = stub.Tokenize(&context, request, &response);
  } else {
    pb::EncodeRequest request;
    pb::Sequence* s = request.add_sequences();
    for (int id : {2, 15, 27, 33, 41, 16, 22, 3}) s->add_token_ids(id);
    request.set_pooling(pb::POOLING_CLS);
    pb::EncodeResponse response;
    status = stub.Encode(&context, request, &response);
  }
  const double us =
      std::chrono::duration<double, std::micro>(Clock::now() - start).count();
  if (!status.ok()) {
    std::fprintf(stderr, "operate_bench: %s: %s\n", method.c_str(),
                 status.error_message().c_str());
    return -1;
  }
  return us;
}

int Micro() {
  using attnserve::CallRecord;
  attnserve::Metrics metrics({{"tiny_bert", "fp32", 2, 4, 32}},
                             [] { return 0; });
  std::FILE* null = std::fopen("/dev/null", "w");
  if (null == nullptr) return 1;
  double best_ns = 1e30;
  {
    attnserve::AccessLog log(attnserve::LogFormat::kText, null);
    attnserve::CallWorkBoard board;
    CallRecord record;
    record.method = "attnserve.v1.Encoder/Encode";
    record.peer = "ipv4:127.0.0.1:51234";
    record.start = absl::Now();
    record.duration = absl::Microseconds(250);
    record.response_bytes = 183;
    attnserve::CallWork work;
    work.sequences = 1;
    work.tokens = 8;
    work.inference = absl::Microseconds(150);
    // A stand-in for a call's context: the board only compares addresses.
    const auto* call = reinterpret_cast<const grpc::ServerContextBase*>(&work);
    constexpr int kCalls = 100000;
    for (int repeat = 0; repeat < 5; ++repeat) {
      const auto start = Clock::now();
      for (int i = 0; i < kCalls; ++i) {
        metrics.OnCallStarted();
        board.Put(call, work);
        record.work = *board.Take(call);
        record.has_work = true;
        metrics.OnCallDone(record);
        log.OnCallDone(record);
      }
      const double ns =
          std::chrono::duration<double, std::nano>(Clock::now() - start)
              .count() /
          kCalls;
      best_ns = std::min(best_ns, ns);
      // Let the writer catch up so the bound drops nothing.
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    std::printf(
        "micro: board + metrics + access log line: %.0f ns per call "
        "(best of 5 x 100000; %lld lines dropped)\n",
        best_ns, static_cast<long long>(log.dropped()));
  }
  std::fclose(null);
  return 0;
}

int Main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "--micro") return Micro();
  std::string a, b;
  int rounds = 30, calls = 200;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--a=", 0) == 0) {
      a = arg.substr(4);
    } else if (arg.rfind("--b=", 0) == 0) {
      b = arg.substr(4);
    } else if (arg.rfind("--rounds=", 0) == 0) {
      rounds = std::stoi(arg.substr(9));
    } else if (arg.rfind("--calls=", 0) == 0) {
      calls = std::stoi(arg.substr(8));
    } else {
      std::fprintf(stderr,
                   "usage: operate_bench --a=HOST:PORT --b=HOST:PORT "
                   "[--rounds=N] [--calls=N]\n");
      return 2;
    }
  }
  if (a.empty() || b.empty()) return 2;
  Target targets[2];
  targets[0].address = a;
  targets[1].address = b;
  for (Target& t : targets) {
    auto channel =
        grpc::CreateChannel(t.address, grpc::InsecureChannelCredentials());
    if (!channel->WaitForConnected(std::chrono::system_clock::now() +
                                   std::chrono::seconds(60))) {
      std::fprintf(stderr, "operate_bench: %s not reachable\n",
                   t.address.c_str());
      return 1;
    }
    t.stub = pb::Encoder::NewStub(channel);
  }
  for (const std::string method : {"tokenize", "encode"}) {
    // Warm-up: connections, primitives, allocators.
    for (Target& t : targets) {
      for (int i = 0; i < calls; ++i) {
        if (Call(*t.stub, method) < 0) return 1;
      }
    }
    std::vector<double> all[2];
    std::vector<double> differences;
    for (int r = 0; r < rounds; ++r) {
      double block_median[2];
      // ABBA: A first on even rounds, B first on odd ones.
      for (int k = 0; k < 2; ++k) {
        const int which = (r % 2 == 0) ? k : 1 - k;
        std::vector<double> block;
        for (int i = 0; i < calls; ++i) {
          const double us = Call(*targets[which].stub, method);
          if (us < 0) return 1;
          block.push_back(us);
        }
        all[which].insert(all[which].end(), block.begin(), block.end());
        block_median[which] = Percentile(block, 0.5);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      differences.push_back(block_median[0] - block_median[1]);
    }
    std::printf(
        "%-8s  A (metrics+log) median %7.1f us  p90 %7.1f us | B (off) median "
        "%7.1f us  p90 %7.1f us | A-B per call: median %+6.1f us "
        "(rounds p10 %+6.1f, p90 %+6.1f) = %+5.2f%% of B, %d rounds x %d "
        "calls\n",
        method.c_str(), Percentile(all[0], 0.5), Percentile(all[0], 0.9),
        Percentile(all[1], 0.5), Percentile(all[1], 0.9),
        Percentile(differences, 0.5), Percentile(differences, 0.1),
        Percentile(differences, 0.9),
        100 * Percentile(differences, 0.5) / Percentile(all[1], 0.5), rounds,
        calls);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
