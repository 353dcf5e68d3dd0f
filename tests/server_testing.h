// Helpers shared by the gRPC server tests (tests/server_*_test.cc): an
// in-process Server on 127.0.0.1 (port 0) over a test checkpoint, a client
// channel, deadlines, tensor decoding. Header-only.
#ifndef ATTNSERVE_TESTS_SERVER_TESTING_H_
#define ATTNSERVE_TESTS_SERVER_TESTING_H_

#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "model/encoder.h"
#include "model/safetensors.h"  // HalfToFloat
#include "proto/attnserve.grpc.pb.h"
#include "server/server.h"
#include "tests/golden.h"

namespace attnserve::testing {

inline const char kModelDir[] = ATTNSERVE_TEST_DATA "/tiny_bert";

// Deadline of a call that must expire while the batcher is paused: long enough
// for a loaded CI machine to queue it first, short enough to keep tests quick.
inline constexpr int kQueuedDeadlineMs = 2000;

// Waits (bounded) until `n` requests sit in the paused batcher's queue.
inline bool WaitForQueued(Batcher& batcher, int n) {
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (batcher.queued() < n) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}
// tiny_bert: 2 layers × 4 heads, hidden 32, vocab 99 (vocab.txt), 40
// positions, [SEP] = 3.
constexpr int kLayers = 2, kHeads = 4, kHidden = 32, kVocab = 99,
              kMaxPositions = 40;
constexpr double kHiddenTolerance = 1e-4;
constexpr double kAttentionTolerance = 1e-5;

// Small limits so every limit can be hit with tiny inputs. The six goldens
// (1+5+12+23+40+9 = 90 tokens) fit in one request with all their attention
// and hidden states (≈ 89 KB with embeddings, ids and tokens).
inline ServerOptions TestOptions() {
  ServerOptions options;
  options.address = "127.0.0.1:0";
  options.limits.max_sequences_per_request = 8;
  options.limits.max_tokens_per_request = 100;
  options.limits.max_response_bytes = 100000;
  options.default_deadline = absl::Seconds(30);
  options.shutdown_grace = absl::Seconds(20);
  return options;
}

// The model in `dir` with its tokenizer (when the directory has one).
inline std::unique_ptr<Server> StartServer(const ServerOptions& options,
                                           const std::string& dir = kModelDir) {
  absl::StatusOr<std::unique_ptr<Encoder>> encoder = Encoder::Load(dir);
  if (!encoder.ok()) {
    ADD_FAILURE() << "loading " << dir << ": " << encoder.status();
    return nullptr;
  }
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      LoadTokenizerFor(dir, (*encoder)->info());
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Start(options, *std::move(encoder), std::move(tokenizer));
  if (!server.ok()) {
    ADD_FAILURE() << "starting the server: " << server.status();
    return nullptr;
  }
  return *std::move(server);
}

inline std::shared_ptr<grpc::Channel> NewChannel(int port) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                   grpc::InsecureChannelCredentials(), args);
}

inline void SetDeadline(grpc::ClientContext* context, int seconds = 30) {
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(seconds));
}

inline grpc::Status CallEncode(v1::Encoder::Stub& stub,
                               const v1::EncodeRequest& request,
                               v1::EncodeResponse* response) {
  grpc::ClientContext context;
  SetDeadline(&context);
  return stub.Encode(&context, request, response);
}

inline grpc::Status CallTokenize(v1::Encoder::Stub& stub,
                                 const v1::TokenizeRequest& request,
                                 v1::TokenizeResponse* response) {
  grpc::ClientContext context;
  SetDeadline(&context);
  return stub.Tokenize(&context, request, response);
}

inline grpc::Status CallRankHeads(v1::Encoder::Stub& stub,
                                  const v1::RankHeadsRequest& request,
                                  v1::RankHeadsResponse* response,
                                  int seconds = 60) {
  grpc::ClientContext context;
  SetDeadline(&context, seconds);
  return stub.RankHeads(&context, request, response);
}

template <typename Request>
void AddSequence(const GoldenSequence& g, Request* request) {
  v1::Sequence* seq = request->add_sequences();
  seq->mutable_token_ids()->Add(g.token_ids.begin(), g.token_ids.end());
  seq->mutable_token_type_ids()->Add(g.token_type_ids.begin(),
                                     g.token_type_ids.end());
}

inline std::vector<int64_t> Shape(const v1::Tensor& t) {
  return std::vector<int64_t>(t.shape().begin(), t.shape().end());
}

// Little-endian bytes → floats.
inline std::vector<float> DecodeFloat32(const v1::Tensor& t) {
  EXPECT_EQ(t.dtype(), v1::FLOAT32);
  const std::string& d = t.data();
  std::vector<float> out(d.size() / 4);
  const auto* b = reinterpret_cast<const unsigned char*>(d.data());
  for (size_t i = 0; i < out.size(); ++i) {
    const uint32_t u = b[4 * i] | (uint32_t{b[4 * i + 1]} << 8) |
                       (uint32_t{b[4 * i + 2]} << 16) |
                       (uint32_t{b[4 * i + 3]} << 24);
    std::memcpy(&out[i], &u, 4);
  }
  return out;
}

inline std::vector<float> DecodeFloat16(const v1::Tensor& t) {
  EXPECT_EQ(t.dtype(), v1::FLOAT16);
  const std::string& d = t.data();
  std::vector<float> out(d.size() / 2);
  const auto* b = reinterpret_cast<const unsigned char*>(d.data());
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = HalfToFloat(static_cast<uint16_t>(b[2 * i] | (b[2 * i + 1] << 8)));
  }
  return out;
}

// A golden's (layers, heads, T, T) maps of `layers` × `heads`, in that order.
inline std::vector<float> GoldenAttention(const GoldenSequence& g,
                                          const std::vector<int>& layers,
                                          const std::vector<int>& heads) {
  const int64_t map = g.length() * g.length();
  std::vector<float> out;
  for (int l : layers) {
    for (int h : heads) {
      const float* src = g.attention.data() + (l * kHeads + h) * map;
      out.insert(out.end(), src, src + map);
    }
  }
  return out;
}

inline const GoldenSequence& FindGolden(const std::vector<GoldenSequence>& all,
                                        const std::string& name) {
  for (const GoldenSequence& g : all) {
    if (g.name == name) return g;
  }
  ADD_FAILURE() << "no golden sequence " << name;
  return all.front();
}

}  // namespace attnserve::testing

#endif  // ATTNSERVE_TESTS_SERVER_TESTING_H_
