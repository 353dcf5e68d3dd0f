// Helpers shared by the gRPC server tests (tests/server_*_test.cc): an
// in-process Server on 127.0.0.1 (port 0) over a test checkpoint, a fixture
// sharing one such server across a suite, a client channel, deadlines, tensor
// decoding. Header-only.
#ifndef ATTNSERVE_TESTS_SERVER_TESTING_H_
#define ATTNSERVE_TESTS_SERVER_TESTING_H_

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/half.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "model/encoder/encoder.h"
#include "proto/attnserve.grpc.pb.h"
#include "server/server.h"
#include "tests/golden.h"
#include "tests/model_testing.h"

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
// Waits (at most 20 s) until `n` queued requests are past their deadline or
// cancelled as the server sees them: the server's deadline is the client's
// plus the transit time, so a client's DEADLINE_EXCEEDED comes first.
inline bool WaitForDroppable(Batcher& batcher, int n) {
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (batcher.droppable() < n) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

// tiny_bert: 2 layers × 4 heads, hidden 32, vocab 99 (vocab.txt), 40
// positions, [SEP] = 3.
constexpr int kLayers = 2, kHeads = 4, kHidden = 32, kVocab = 99,
              kMaxPositions = 40;

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

// tiny_bert's goldens (golden.json).
inline std::vector<GoldenSequence> ReadTinyBertGolden() {
  return ReadGolden(std::string(kModelDir) + "/golden.json");
}

// The model in `dir` with its tokenizer (when the directory has one), loaded
// with `encoder_options` (fp32 by default).
inline std::unique_ptr<Server> StartServer(
    const ServerOptions& options, const std::string& dir = kModelDir,
    const EncoderOptions& encoder_options = {}) {
  absl::StatusOr<std::unique_ptr<Encoder>> encoder =
      Encoder::Load(dir, encoder_options);
  if (!encoder.ok()) {
    ADD_FAILURE() << "loading " << dir << ": " << encoder.status();
    return nullptr;
  }
  absl::StatusOr<std::unique_ptr<TextTokenizer>> tokenizer =
      LoadTokenizerFor(dir, (*encoder)->info());
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Start(options, *std::move(encoder), std::move(tokenizer));
  if (!server.ok()) {
    ADD_FAILURE() << "starting the server: " << server.status();
    return nullptr;
  }
  return *std::move(server);
}

// A copy of tiny_bert's config and weights, with or without its vocab.
inline std::string CopyTinyBert(const std::string& prefix, bool with_vocab) {
  namespace fs = std::filesystem;
  const std::string dir = MakeTempDir(prefix);
  for (const char* file : {"config.json", "model.safetensors", "vocab.txt"}) {
    if (!with_vocab && std::string(file) == "vocab.txt") continue;
    fs::copy_file(fs::path(kModelDir) / file, fs::path(dir) / file);
  }
  return dir;
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

inline grpc::Status CallGetModelInfo(v1::Encoder::Stub& stub,
                                     const v1::GetModelInfoRequest& request,
                                     v1::ModelInfo* info, int seconds = 30) {
  grpc::ClientContext context;
  SetDeadline(&context, seconds);
  return stub.GetModelInfo(&context, request, info);
}

// Waits (bounded) until the server on `port`, shutting down, refuses new
// calls. False if it still answers after 20 s.
inline bool WaitUntilRefusing(int port) {
  bool refusing = false;
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (!refusing && absl::Now() < give_up) {
    auto probe = v1::Encoder::NewStub(NewChannel(port));
    v1::ModelInfo info;
    refusing =
        !CallGetModelInfo(*probe, v1::GetModelInfoRequest(), &info, 2).ok();
    if (!refusing) absl::SleepFor(absl::Milliseconds(10));
  }
  return refusing;
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

// One Server on tiny_bert (TestOptions() unless a derived fixture's
// SetUpTestSuite calls StartSuite with others) and its goldens, shared by every
// test of a suite; a fresh stub per test. The statics belong to the suite that
// is running: gtest runs a binary's suites one after another.
class SharedServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { StartSuite(TestOptions()); }
  static void StartSuite(const ServerOptions& options) {
    golden_ = new std::vector<GoldenSequence>(ReadTinyBertGolden());
    server_ = StartServer(options).release();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete golden_;
    server_ = nullptr;
    golden_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    stub_ = v1::Encoder::NewStub(NewChannel(server_->port()));
  }
  const GoldenSequence& Golden(const std::string& name) {
    return FindGolden(*golden_, name);
  }

  static inline Server* server_ = nullptr;
  static inline std::vector<GoldenSequence>* golden_ = nullptr;
  std::unique_ptr<v1::Encoder::Stub> stub_;
};

}  // namespace attnserve::testing

#endif  // ATTNSERVE_TESTS_SERVER_TESTING_H_
