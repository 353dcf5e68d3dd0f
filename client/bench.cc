#include "client/bench.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "client/bench_requests.h"
#include "client/channel.h"
#include "client/json_format.h"
#include "grpcpp/grpcpp.h"
#include "proto/attnserve.grpc.pb.h"
#include "proto/inference.grpc.pb.h"

namespace attnserve::client {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kDefaultTokens = 128;
constexpr double kDefaultSeconds = 10;
constexpr int kCallsPerWorker = 8;  // prepared calls, used in turn

absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      s.error_message());
}

std::string CodeName(int code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

void AddToken(const Flags& f, grpc::ClientContext* context) {
  if (!f.token.empty()) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", f.token));
  }
}

// Every call, as attnctl's other commands: the --timeout deadline, and the
// bearer token when there is one.
void PrepareContext(const Flags& f, grpc::ClientContext* context) {
  context->set_deadline(
      std::chrono::system_clock::now() +
      std::chrono::microseconds(static_cast<int64_t>(f.timeout_seconds * 1e6)));
  AddToken(f, context);
}

double Milliseconds(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// Which calls may still start: the first `requests`, or until `end`.
class Budget {
 public:
  Budget(int64_t requests, Clock::time_point end)
      : requests_(requests), end_(end) {}
  bool Next() {
    if (requests_ > 0) return issued_.fetch_add(1) < requests_;
    return Clock::now() < end_;
  }

 private:
  const int64_t requests_;  // 0 = run until end_
  const Clock::time_point end_;
  std::atomic<int64_t> issued_{0};
};

// Every answered call. Workers add; the progress thread and the end read.
class Recorder {
 public:
  void Add(int code, double latency_ms, int64_t sequences, int64_t tokens) {
    std::lock_guard<std::mutex> lock(mu_);
    ++codes_[code];
    ++calls_;
    if (code != 0) return;
    latencies_.push_back(latency_ms);
    sequences_ += sequences;
    tokens_ += tokens;
  }

  // "  3.0 s  1234 calls  411.3/s  p50 12.3 ms  [UNAVAILABLE 2]": the rate
  // and median of the calls since the last line.
  std::string ProgressLine(double elapsed_s) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<double> recent(latencies_.begin() + reported_ok_,
                               latencies_.end());
    const double rate =
        (calls_ - reported_calls_) / std::max(1e-9, elapsed_s - reported_at_);
    reported_ok_ = latencies_.size();
    reported_calls_ = calls_;
    reported_at_ = elapsed_s;
    std::sort(recent.begin(), recent.end());
    std::string line =
        absl::StrFormat("%6.1f s  %8d calls  %9.1f/s", elapsed_s, calls_, rate);
    if (!recent.empty()) {
      absl::StrAppendFormat(&line, "  p50 %.2f ms", Percentile(recent, 50));
    }
    for (const auto& [code, n] : codes_) {
      if (code != 0) absl::StrAppend(&line, "  ", CodeName(code), " ", n);
    }
    return line;
  }

  void Fill(BenchResult* r) {
    std::lock_guard<std::mutex> lock(mu_);
    r->calls = calls_;
    r->ok = static_cast<int64_t>(latencies_.size());
    r->sequences = sequences_;
    r->tokens = tokens_;
    r->latencies_ms = latencies_;
    std::sort(r->latencies_ms.begin(), r->latencies_ms.end());
    for (const auto& [code, n] : codes_) r->codes[CodeName(code)] = n;
  }

 private:
  std::mutex mu_;
  std::map<int, int64_t> codes_;
  int64_t calls_ = 0, sequences_ = 0, tokens_ = 0;
  std::vector<double> latencies_;  // OK calls, in answer order
  size_t reported_ok_ = 0;
  int64_t reported_calls_ = 0;
  double reported_at_ = 0;
};

// One unary call of `call` as the run's RPC; its status, and the tokens of
// an OK answer.
grpc::Status UnaryCall(const Flags& f, v1::Encoder::Stub& encoder,
                       inference::GRPCInferenceService::Stub& oip,
                       const Call& call, int64_t* tokens) {
  grpc::ClientContext context;
  PrepareContext(f, &context);
  const std::string& rpc = f.bench.rpc;
  grpc::Status status;
  if (rpc == "tokenize") {
    v1::TokenizeResponse r;
    status = encoder.Tokenize(&context, call.tokenize, &r);
    *tokens = 0;
    for (const auto& s : r.results()) *tokens += s.token_ids_size();
  } else if (rpc == "oip") {
    inference::ModelInferResponse r;
    status = oip.ModelInfer(&context, call.infer, &r);
    *tokens = call.tokens > 0 ? call.tokens : CountTokens(r);
  } else {
    v1::EncodeResponse r;
    status = encoder.Encode(&context, call.encode, &r);
    *tokens = CountTokens(r);
  }
  return status;
}

void UnaryWorker(const Flags& f, std::shared_ptr<grpc::Channel> channel,
                 const std::vector<Call>& calls, Budget* budget,
                 Recorder* recorder) {
  auto encoder = v1::Encoder::NewStub(channel);
  auto oip = inference::GRPCInferenceService::NewStub(channel);
  for (size_t i = 0; budget->Next(); ++i) {
    const Call& call = calls[i % calls.size()];
    const Clock::time_point start = Clock::now();
    int64_t tokens = 0;
    const grpc::Status status = UnaryCall(f, *encoder, *oip, call, &tokens);
    recorder->Add(status.error_code(), Milliseconds(Clock::now() - start),
                  call.sequences, tokens);
  }
}

// One EncodeStream per worker, one message in flight: write, read its
// answer, repeat. A message the server refuses counts under the response's
// error code; a stream that breaks counts the message in flight under the
// stream's status, and the worker opens a new one.
void StreamWorker(const Flags& f, std::shared_ptr<grpc::Channel> channel,
                  const std::vector<Call>& calls, Budget* budget,
                  Recorder* recorder, Clock::time_point end) {
  auto encoder = v1::Encoder::NewStub(channel);
  size_t i = 0;
  bool more = budget->Next();
  while (more) {
    grpc::ClientContext context;
    AddToken(f, &context);
    if (f.bench.requests == 0) {  // the run's length, then --timeout
      context.set_deadline(
          std::chrono::system_clock::now() +
          std::chrono::duration_cast<std::chrono::system_clock::duration>(
              end - Clock::now()) +
          std::chrono::microseconds(
              static_cast<int64_t>(f.timeout_seconds * 1e6)));
    }
    auto stream = encoder->EncodeStream(&context);
    Clock::time_point start;
    bool broken = false;
    for (; more; more = budget->Next()) {
      const Call& call = calls[i++ % calls.size()];
      start = Clock::now();
      v1::EncodeResponse r;
      if (!stream->Write(call.encode) || !stream->Read(&r)) {
        broken = true;
        break;
      }
      recorder->Add(r.has_error() ? r.error().code() : 0,
                    Milliseconds(Clock::now() - start), call.sequences,
                    CountTokens(r));
    }
    if (!broken) stream->WritesDone();
    const grpc::Status status = stream->Finish();
    if (broken) {
      recorder->Add(
          status.ok() ? grpc::StatusCode::UNKNOWN : status.error_code(),
          Milliseconds(Clock::now() - start), 0, 0);
      more = budget->Next();
    }
  }
}

// The probe: one call as the workers will make it, before the clock.
absl::Status Probe(const Flags& f, std::shared_ptr<grpc::Channel> channel,
                   const Call& call) {
  grpc::Status status;
  if (f.bench.stream) {
    auto encoder = v1::Encoder::NewStub(channel);
    grpc::ClientContext context;
    PrepareContext(f, &context);
    auto stream = encoder->EncodeStream(&context);
    v1::EncodeResponse r;
    const bool answered = stream->Write(call.encode) && stream->Read(&r);
    stream->WritesDone();
    status = stream->Finish();
    if (status.ok() && answered && r.has_error()) {
      status = grpc::Status(static_cast<grpc::StatusCode>(r.error().code()),
                            r.error().message());
    }
  } else {
    auto encoder = v1::Encoder::NewStub(channel);
    auto oip = inference::GRPCInferenceService::NewStub(channel);
    int64_t tokens = 0;
    status = UnaryCall(f, *encoder, *oip, call, &tokens);
  }
  if (status.ok()) return absl::OkStatus();
  const std::string rpc = f.bench.stream              ? "EncodeStream"
                          : f.bench.rpc == "oip"      ? "ModelInfer"
                          : f.bench.rpc == "tokenize" ? "Tokenize"
                                                      : "Encode";
  std::string hint;
  if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    hint = f.bench.stream ? " (this server has no EncodeStream: run without "
                            "--stream)"
           : f.bench.rpc == "oip"
               ? " (this server has no Open Inference Protocol)"
               : "";
  }
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat("the first ", rpc, " call failed",
                                   status.error_message().empty() ? "" : ": ",
                                   status.error_message(), hint));
}

// "[CLS]" and "[SEP]" of the model's vocab: the ids Tokenize gives an
// empty text.
void FindSpecialIds(const Flags& f, v1::Encoder::Stub& stub, Synthetic* syn) {
  v1::TokenizeRequest request;
  request.set_model(f.model);
  request.add_sequences()->set_text("");
  grpc::ClientContext context;
  PrepareContext(f, &context);
  v1::TokenizeResponse response;
  if (!stub.Tokenize(&context, request, &response).ok() ||
      response.results_size() != 1 ||
      response.results(0).token_ids_size() != 2) {
    return;  // random ids throughout
  }
  syn->cls = response.results(0).token_ids(0);
  syn->sep = response.results(0).token_ids(1);
}

}  // namespace

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double rank = std::ceil(p / 100.0 * static_cast<double>(sorted.size()));
  const size_t i = static_cast<size_t>(std::max(1.0, rank)) - 1;
  return sorted[std::min(i, sorted.size() - 1)];
}

std::string FormatBench(const BenchResult& r, bool json) {
  const double s = std::max(r.elapsed_seconds, 1e-9);
  const std::vector<double>& l = r.latencies_ms;
  double mean = 0;
  for (double v : l) mean += v;
  if (!l.empty()) mean /= static_cast<double>(l.size());
  const double max = l.empty() ? 0 : l.back();
  if (json) {
    std::vector<std::string> codes;
    for (const auto& [code, n] : r.codes) {
      codes.push_back(absl::StrCat(JsonString(code), ": ", n));
    }
    return absl::StrCat(
        "{\"rpc\": ", JsonString(r.rpc), ", \"input\": ", JsonString(r.input),
        ", \"concurrency\": ", r.concurrency,
        ", \"connections\": ", r.connections, ", \"batch\": ", r.batch,
        ", \"elapsed_s\": ", JsonNumber(r.elapsed_seconds),
        ", \"requests\": ", r.calls, ", \"ok\": ", r.ok,
        ", \"sequences\": ", r.sequences, ", \"tokens\": ", r.tokens,
        ", \"requests_per_s\": ", JsonNumber(r.calls / s),
        ", \"sequences_per_s\": ", JsonNumber(r.sequences / s),
        ", \"tokens_per_s\": ", JsonNumber(r.tokens / s),
        ", \"latency_ms\": {\"p50\": ", JsonNumber(Percentile(l, 50)),
        ", \"p90\": ", JsonNumber(Percentile(l, 90)),
        ", \"p99\": ", JsonNumber(Percentile(l, 99)),
        ", \"max\": ", JsonNumber(max), ", \"mean\": ", JsonNumber(mean),
        "}, \"status\": {", absl::StrJoin(codes, ", "), "}}\n");
  }
  std::string out = absl::StrFormat(
      "%s, %d worker%s over %d connection%s, batch %d x %s, %.1f s\n", r.rpc,
      r.concurrency, r.concurrency == 1 ? "" : "s", r.connections,
      r.connections == 1 ? "" : "s", r.batch, r.input, r.elapsed_seconds);
  absl::StrAppendFormat(&out, "requests   %10d  %10.1f/s  (%d OK)\n", r.calls,
                        r.calls / s, r.ok);
  absl::StrAppendFormat(&out, "sequences  %10d  %10.1f/s\n", r.sequences,
                        r.sequences / s);
  absl::StrAppendFormat(&out, "tokens     %10d  %10.1f/s\n", r.tokens,
                        r.tokens / s);
  if (l.empty()) {
    absl::StrAppend(&out, "latency    no OK calls\n");
  } else {
    absl::StrAppendFormat(&out,
                          "latency    p50 %.2f  p90 %.2f  p99 %.2f  max %.2f  "
                          "mean %.2f ms (OK calls)\n",
                          Percentile(l, 50), Percentile(l, 90),
                          Percentile(l, 99), max, mean);
  }
  std::vector<std::string> codes;
  for (const auto& [code, n] : r.codes)
    codes.push_back(absl::StrCat(code, " ", n));
  absl::StrAppend(&out, "status     ", absl::StrJoin(codes, ", "), "\n");
  return out;
}

absl::Status RunBench(const Flags& f, FILE* progress, std::string* out) {
  const BenchFlags& b = f.bench;
  const int workers = b.concurrency;
  const int connections =
      b.connections > 0 ? std::min(b.connections, workers) : workers;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  ChannelOptions options = f.channel;
  options.own_connection = true;
  for (int c = 0; c < connections; ++c) channels.push_back(Connect(options));

  // The model: its vocab and heads.
  auto stub = v1::Encoder::NewStub(channels[0]);
  v1::ModelInfo info;
  {
    grpc::ClientContext context;
    PrepareContext(f, &context);
    v1::GetModelInfoRequest request;
    request.set_model(f.model);
    grpc::Status status = stub->GetModelInfo(&context, request, &info);
    if (!status.ok()) return FromGrpc(status);
  }
  const std::vector<v1::Sequence> given = Sequences(f);
  Synthetic syn;
  BenchResult result;
  if (given.empty()) {
    syn.tokens = b.tokens > 0
                     ? b.tokens
                     : std::min(kDefaultTokens, info.max_position_embeddings());
    syn.vocab_size = info.vocab_size();
    if (info.has_tokenizer()) FindSpecialIds(f, *stub, &syn);
    result.input = absl::StrCat(syn.tokens, " synthetic ids");
  } else {
    const bool text = !f.texts.empty();
    result.input = absl::StrCat(given.size(), text ? " text" : " id sequence",
                                given.size() == 1 ? "" : "s");
  }
  const std::vector<std::pair<int, int>> mask =
      ExpandedMask(f, info.num_heads());

  // Each worker's calls, prepared now.
  std::vector<std::vector<Call>> calls(workers);
  for (int w = 0; w < workers; ++w) {
    std::mt19937 rng(1234567 + w);
    for (int i = 0; i < kCallsPerWorker; ++i) {
      std::vector<v1::Sequence> seqs =
          CallSequences(f, syn, given, w * kCallsPerWorker + i, &rng);
      Call call;
      call.sequences = static_cast<int64_t>(seqs.size());
      if (b.rpc == "tokenize") {
        call.tokenize.set_model(f.model);
        call.tokenize.set_truncate(f.truncate);
        for (v1::Sequence& s : seqs) *call.tokenize.add_sequences() = s;
      } else if (b.rpc == "oip") {
        call.infer = InferRequestOf(f, seqs, mask, &call.tokens);
      } else {
        call.encode = EncodeRequestOf(f, std::move(seqs), mask);
      }
      calls[w].push_back(std::move(call));
    }
  }
  result.rpc = b.stream              ? "EncodeStream"
               : b.rpc == "oip"      ? "ModelInfer"
               : b.rpc == "tokenize" ? "Tokenize"
                                     : "Encode";
  result.concurrency = workers;
  result.connections = connections;
  result.batch = b.batch;

  if (absl::Status s = Probe(f, channels[0], calls[0][0]); !s.ok()) return s;

  // The run.
  const double seconds =
      b.requests > 0
          ? 0
          : (b.duration_seconds > 0 ? b.duration_seconds : kDefaultSeconds);
  const Clock::time_point start = Clock::now();
  const Clock::time_point end =
      b.requests > 0 ? Clock::time_point::max()
                     : start + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(seconds));
  Budget budget(b.requests, end);
  Recorder recorder;
  std::mutex done_mu;
  std::condition_variable done_cv;
  bool done = false;
  std::thread progress_thread;
  if (progress != nullptr) {
    progress_thread = std::thread([&] {
      std::unique_lock<std::mutex> lock(done_mu);
      while (!done_cv.wait_until(lock, Clock::now() + std::chrono::seconds(1),
                                 [&] { return done; })) {
        const std::string line = recorder.ProgressLine(
            std::chrono::duration<double>(Clock::now() - start).count());
        std::fprintf(progress, "\r%-78s", line.c_str());
        std::fflush(progress);
      }
    });
  }
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    std::shared_ptr<grpc::Channel> channel = channels[w % connections];
    if (b.stream) {
      threads.emplace_back(StreamWorker, std::cref(f), channel,
                           std::cref(calls[w]), &budget, &recorder, end);
    } else {
      threads.emplace_back(UnaryWorker, std::cref(f), channel,
                           std::cref(calls[w]), &budget, &recorder);
    }
  }
  for (std::thread& t : threads) t.join();
  result.elapsed_seconds =
      std::chrono::duration<double>(Clock::now() - start).count();
  if (progress != nullptr) {
    {
      std::lock_guard<std::mutex> lock(done_mu);
      done = true;
    }
    done_cv.notify_all();
    progress_thread.join();
    std::fprintf(progress, "\r%-78s\r", "");  // the report replaces it
    std::fflush(progress);
  }
  recorder.Fill(&result);
  *out = FormatBench(result, f.json);
  return absl::OkStatus();
}

}  // namespace attnserve::client
