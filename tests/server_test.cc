// The gRPC server end to end, in process: a Server on 127.0.0.1 (port 0)
// serving tests/data/tiny_bert, called through a real client stub. Values are
// compared with the PyTorch goldens (tools/gen_golden.py): hidden states
// ≤ 1e-4, attention ≤ 1e-5, FLOAT16 attention within fp16 rounding of that.
//
// Every call has a deadline; batching is made deterministic by pausing the
// inference thread (Batcher::Pause) while requests queue.
#include "server/server.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "model/encoder/encoder.h"
#include "proto/attnserve.grpc.pb.h"
#include "tests/golden.h"
#include "tests/server_testing.h"

namespace attnserve {
namespace {

using namespace ::attnserve::testing;  // NOLINT: the server test helpers
using ::testing::HasSubstr;

// The shared tiny_bert server; every test sees all six goldens.
class ServerTest : public SharedServerTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(SharedServerTest::SetUp());
    ASSERT_EQ(golden_->size(), 6u);
  }
};

TEST_F(ServerTest, MixedLengthsInOneRequestMatchGolden) {
  v1::EncodeRequest request;
  for (const GoldenSequence& g : *golden_) AddSequence(g, &request);
  request.set_return_hidden_states(true);
  request.mutable_attention();  // present, empty: all layers and heads
  v1::EncodeResponse response;
  grpc::Status status = CallEncode(*stub_, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.model(), "tiny_bert");
  ASSERT_EQ(response.results_size(), 6);
  for (int s = 0; s < 6; ++s) {
    const GoldenSequence& g = (*golden_)[s];
    const v1::SequenceResult& r = response.results(s);
    const int64_t t = g.length();
    SCOPED_TRACE(g.name);
    EXPECT_EQ(Shape(r.hidden_states()), (std::vector<int64_t>{t, kHidden}));
    EXPECT_LE(MaxAbsDiff(DecodeFloat32(r.hidden_states()), g.hidden),
              kHiddenTolerance);
    EXPECT_EQ(Shape(r.attention()),
              (std::vector<int64_t>{kLayers, kHeads, t, t}));
    EXPECT_LE(MaxAbsDiff(DecodeFloat32(r.attention()), g.attention),
              kAttentionTolerance);
    EXPECT_EQ(std::vector<int32_t>(r.token_ids().begin(), r.token_ids().end()),
              g.token_ids);
    EXPECT_EQ(r.tokens_size(), t);  // tiny_bert has a vocab.txt
    // POOLING_UNSPECIFIED: the model's default, CLS for tiny_bert.
    const std::vector<float> cls(g.hidden.begin(), g.hidden.begin() + kHidden);
    EXPECT_EQ(Shape(r.embedding()), (std::vector<int64_t>{kHidden}));
    EXPECT_LE(MaxAbsDiff(DecodeFloat32(r.embedding()), cls), kHiddenTolerance);
  }
}

TEST_F(ServerTest, SelectsLayersAndHeadsInRequestOrder) {
  const GoldenSequence& g = Golden("len12");
  const std::vector<int> layers = {1, 0};
  const std::vector<int> heads = {3, 1};
  v1::EncodeRequest request;
  AddSequence(g, &request);
  request.mutable_attention()->mutable_layers()->Add(layers.begin(),
                                                     layers.end());
  request.mutable_attention()->mutable_heads()->Add(heads.begin(), heads.end());
  v1::EncodeResponse response;
  grpc::Status status = CallEncode(*stub_, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const v1::Tensor& a = response.results(0).attention();
  EXPECT_EQ(Shape(a), (std::vector<int64_t>{2, 2, 12, 12}));
  EXPECT_LE(MaxAbsDiff(DecodeFloat32(a), GoldenAttention(g, layers, heads)),
            kAttentionTolerance);

  // One layer, all heads.
  request.mutable_attention()->clear_heads();
  request.mutable_attention()->clear_layers();
  request.mutable_attention()->add_layers(1);
  ASSERT_TRUE(CallEncode(*stub_, request, &response).ok());
  const v1::Tensor& b = response.results(0).attention();
  EXPECT_EQ(Shape(b), (std::vector<int64_t>{1, kHeads, 12, 12}));
  EXPECT_LE(MaxAbsDiff(DecodeFloat32(b), GoldenAttention(g, {1}, {0, 1, 2, 3})),
            kAttentionTolerance);
}

TEST_F(ServerTest, Float16AttentionIsWithinHalfRoundingOfGolden) {
  v1::EncodeRequest request;
  for (const char* name : {"len5", "len23"})
    AddSequence(Golden(name), &request);
  request.mutable_attention()->set_dtype(v1::FLOAT16);
  request.mutable_attention()->add_heads(2);
  v1::EncodeResponse response;
  grpc::Status status = CallEncode(*stub_, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.results_size(), 2);
  int s = 0;
  for (const char* name : {"len5", "len23"}) {
    const GoldenSequence& g = Golden(name);
    const v1::Tensor& a = response.results(s++).attention();
    const int64_t t = g.length();
    EXPECT_EQ(Shape(a), (std::vector<int64_t>{kLayers, 1, t, t}));
    EXPECT_EQ(a.data().size(), static_cast<size_t>(kLayers * t * t * 2));
    const std::vector<float> got = DecodeFloat16(a);
    const std::vector<float> want = GoldenAttention(g, {0, 1}, {2});
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      // Half a float16 ulp (2^-11 relative, 2^-25 absolute for subnormals)
      // on top of the model's own error.
      const double bound =
          std::max(std::fabs(want[i]) * 0x1p-11, 0x1p-25) + kAttentionTolerance;
      ASSERT_LE(std::fabs(got[i] - want[i]), bound) << name << " element " << i;
    }
  }
}

// Tensors are returned only when asked. Pooling UNSPECIFIED means "the
// model's default", which is an ask: the embedding is there by default and
// POOLING_NONE leaves it out.
TEST_F(ServerTest, TensorsAreAbsentUnlessAsked) {
  const GoldenSequence& g = Golden("len5");
  v1::EncodeRequest request;
  AddSequence(g, &request);
  v1::EncodeResponse response;
  ASSERT_TRUE(CallEncode(*stub_, request, &response).ok());
  ASSERT_EQ(response.results_size(), 1);
  EXPECT_FALSE(response.results(0).has_hidden_states());
  EXPECT_FALSE(response.results(0).has_attention());
  EXPECT_TRUE(response.results(0).has_embedding());
  EXPECT_FALSE(response.results(0).has_rollout());
  EXPECT_EQ(response.results(0).head_stats_size(), 0);
  EXPECT_EQ(response.results(0).token_ids_size(), 5);

  request.set_pooling(v1::POOLING_NONE);
  ASSERT_TRUE(CallEncode(*stub_, request, &response).ok());
  EXPECT_FALSE(response.results(0).has_embedding());

  request.set_return_hidden_states(true);
  ASSERT_TRUE(CallEncode(*stub_, request, &response).ok());
  EXPECT_TRUE(response.results(0).has_hidden_states());
  EXPECT_FALSE(response.results(0).has_attention());

  request.set_return_hidden_states(false);
  request.mutable_attention();
  ASSERT_TRUE(CallEncode(*stub_, request, &response).ok());
  EXPECT_FALSE(response.results(0).has_hidden_states());
  EXPECT_TRUE(response.results(0).has_attention());
}

TEST_F(ServerTest, PooledEmbeddingsMatchGolden) {
  const GoldenSequence& g = Golden("pair9");
  v1::EncodeRequest request;
  AddSequence(g, &request);
  v1::EncodeResponse response;

  request.set_pooling(v1::POOLING_POOLER);
  ASSERT_TRUE(CallEncode(*stub_, request, &response).ok());
  EXPECT_EQ(Shape(response.results(0).embedding()),
            (std::vector<int64_t>{kHidden}));
  EXPECT_LE(
      MaxAbsDiff(DecodeFloat32(response.results(0).embedding()), g.pooler),
      kHiddenTolerance);

  request.set_pooling(v1::POOLING_MEAN);
  ASSERT_TRUE(CallEncode(*stub_, request, &response).ok());
  EXPECT_LE(
      MaxAbsDiff(DecodeFloat32(response.results(0).embedding()), g.mean_pooled),
      kHiddenTolerance);

  request.set_pooling(v1::POOLING_CLS);
  ASSERT_TRUE(CallEncode(*stub_, request, &response).ok());
  const std::vector<float> cls(g.hidden.begin(), g.hidden.begin() + kHidden);
  EXPECT_LE(MaxAbsDiff(DecodeFloat32(response.results(0).embedding()), cls),
            kHiddenTolerance);

  // normalize without a pooling: the model's default (CLS), unit length.
  request.set_pooling(v1::POOLING_UNSPECIFIED);
  request.set_normalize(true);
  ASSERT_TRUE(CallEncode(*stub_, request, &response).ok());
  const std::vector<float> e = DecodeFloat32(response.results(0).embedding());
  double norm = 0, cls_norm = 0;
  for (float v : e) norm += double{v} * v;
  for (float v : cls) cls_norm += double{v} * v;
  EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-5);
  for (int i = 0; i < kHidden; ++i) {
    EXPECT_NEAR(e[i], cls[i] / std::sqrt(cls_norm), 1e-4);
  }
}

TEST_F(ServerTest, HeadMaskChangesLaterLayersOnly) {
  const GoldenSequence& g = Golden("len12");
  v1::EncodeRequest request;
  AddSequence(g, &request);
  request.set_return_hidden_states(true);
  request.mutable_attention();
  v1::HeadRef* ref = request.add_head_mask();
  ref->set_layer(1);
  ref->set_head(2);
  v1::EncodeResponse response;
  grpc::Status status = CallEncode(*stub_, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  // Layer 0 attention and the layer-1 maps (taken before the mask) are the
  // golden's; the hidden states are not.
  EXPECT_LE(
      MaxAbsDiff(DecodeFloat32(response.results(0).attention()), g.attention),
      kAttentionTolerance);
  EXPECT_GT(
      MaxAbsDiff(DecodeFloat32(response.results(0).hidden_states()), g.hidden),
      1e-3);
}

TEST_F(ServerTest, GetModelInfoDescribesTheModel) {
  v1::ModelInfo info;
  grpc::Status status =
      CallGetModelInfo(*stub_, v1::GetModelInfoRequest(), &info);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(info.name(), "tiny_bert");
  EXPECT_EQ(info.num_layers(), kLayers);
  EXPECT_EQ(info.num_heads(), kHeads);
  EXPECT_EQ(info.hidden_size(), kHidden);
  EXPECT_EQ(info.intermediate_size(), 64);
  EXPECT_EQ(info.vocab_size(), kVocab);
  EXPECT_EQ(info.max_position_embeddings(), kMaxPositions);
  EXPECT_EQ(info.type_vocab_size(), 2);
  EXPECT_EQ(info.weight_dtype(), "F32");
  EXPECT_EQ(info.precision(), "fp32");
  EXPECT_TRUE(info.has_pooler());

  v1::GetModelInfoRequest by_name;
  by_name.set_model("tiny_bert");
  EXPECT_TRUE(CallGetModelInfo(*stub_, by_name, &info).ok());

  v1::GetModelInfoRequest bad;
  bad.set_model("bert-large");
  status = CallGetModelInfo(*stub_, bad, &info);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("bert-large"));
  EXPECT_THAT(status.error_message(), HasSubstr("tiny_bert"));
}

// A unary call of `method` with raw request bytes through a generic stub, so
// the test needs no proto for it; the response's bytes when the call succeeds.
grpc::Status RawUnaryCall(int port, const std::string& method,
                          const std::string& request_bytes,
                          std::string* response_bytes) {
  grpc::GenericStub stub(NewChannel(port));
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::ClientContext context;
  SetDeadline(&context, 10);
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status s) { done.set_value(s); });
  grpc::Status status = done.get_future().get();
  if (status.ok()) {
    grpc::Slice out;
    response.DumpToSingleSlice(&out);
    *response_bytes =
        std::string(reinterpret_cast<const char*>(out.begin()), out.size());
  }
  return status;
}

// grpc.health.v1.Health/Check: HealthCheckRequest{service} →
// HealthCheckResponse{status}.
grpc::Status HealthCheck(int port, const std::string& service,
                         std::string* response_bytes) {
  std::string request_bytes;
  if (!service.empty()) {
    request_bytes =
        std::string("\x0a", 1) + static_cast<char>(service.size()) + service;
  }
  return RawUnaryCall(port, "/grpc.health.v1.Health/Check", request_bytes,
                      response_bytes);
}

// Bytes protobuf cannot parse: INVALID_ARGUMENT saying so (gRPC's typed
// handlers would answer UNIMPLEMENTED with no message).
TEST_F(ServerTest, UnparsableRequestIsInvalidArgument) {
  std::string response;
  grpc::Status status =
      RawUnaryCall(server_->port(), "/attnserve.v1.Encoder/Encode",
                   std::string("\x12\xff\xff", 3), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("not a valid attnserve.v1.EncodeRequest"));
}

TEST_F(ServerTest, HealthCheckSaysServing) {
  for (const std::string service : {"", "attnserve.v1.Encoder"}) {
    std::string response;
    grpc::Status status = HealthCheck(server_->port(), service, &response);
    ASSERT_TRUE(status.ok()) << service << ": " << status.error_message();
    EXPECT_EQ(response, std::string("\x08\x01", 2)) << service;  // SERVING
  }
}

struct BadCase {
  const char* name;
  std::function<void(v1::EncodeRequest*)> edit;
  grpc::StatusCode code;
  std::vector<std::string> message_parts;
};

TEST_F(ServerTest, EveryBadInputIsRefusedWithItsCodeAndAClearMessage) {
  const GoldenSequence& len5 = Golden("len5");
  const GoldenSequence& len40 = Golden("len40");
  using grpc::StatusCode;
  auto seq = [](v1::EncodeRequest* r, int i) {
    return r->mutable_sequences(i);
  };
  auto add_len40 = [&](v1::EncodeRequest* r, int n) {
    for (int i = 0; i < n; ++i) AddSequence(len40, r);
  };
  const std::vector<BadCase> cases = {
      {"empty batch",
       [](v1::EncodeRequest* r) { r->clear_sequences(); },
       StatusCode::INVALID_ARGUMENT,
       {"sequences is empty"}},
      {"empty sequence",
       [](v1::EncodeRequest* r) { r->add_sequences(); },
       StatusCode::INVALID_ARGUMENT,
       {"sequences[1].token_ids is empty"}},
      {"negative token id",
       [&](v1::EncodeRequest* r) { seq(r, 0)->set_token_ids(2, -1); },
       StatusCode::INVALID_ARGUMENT,
       {"sequences[0].token_ids[2] = -1 is out of range [0, 99)"}},
      {"token id = vocab size",
       [&](v1::EncodeRequest* r) { seq(r, 0)->set_token_ids(3, kVocab); },
       StatusCode::INVALID_ARGUMENT,
       {"sequences[0].token_ids[3] = 99 is out of range [0, 99)",
        "vocab_size"}},
      {"token type id = type vocab size",
       [&](v1::EncodeRequest* r) { seq(r, 0)->set_token_type_ids(1, 2); },
       StatusCode::INVALID_ARGUMENT,
       {"sequences[0].token_type_ids[1] = 2 is out of range [0, 2)",
        "type_vocab_size"}},
      {"token type ids shorter than token ids",
       [&](v1::EncodeRequest* r) {
         seq(r, 0)->mutable_token_type_ids()->Truncate(3);
       },
       StatusCode::INVALID_ARGUMENT,
       {"sequences[0].token_type_ids has 3 entries but token_ids has 5"}},
      {"longer than max positions",
       [&](v1::EncodeRequest* r) {
         v1::Sequence* s = r->add_sequences();
         for (int i = 0; i < kMaxPositions + 1; ++i) s->add_token_ids(5);
       },
       StatusCode::INVALID_ARGUMENT,
       {"sequences[1] has 41 tokens", "max_position_embeddings = 40"}},
      {"layer out of range",
       [](v1::EncodeRequest* r) {
         r->mutable_attention()->add_layers(0);
         r->mutable_attention()->add_layers(kLayers);
       },
       StatusCode::INVALID_ARGUMENT,
       {"attention.layers[1] = 2 is out of range [0, 2)"}},
      {"negative layer",
       [](v1::EncodeRequest* r) { r->mutable_attention()->add_layers(-1); },
       StatusCode::INVALID_ARGUMENT,
       {"attention.layers[0] = -1 is out of range [0, 2)"}},
      {"head out of range",
       [](v1::EncodeRequest* r) { r->mutable_attention()->add_heads(kHeads); },
       StatusCode::INVALID_ARGUMENT,
       {"attention.heads[0] = 4 is out of range [0, 4)"}},
      {"duplicate layer",
       [](v1::EncodeRequest* r) {
         r->mutable_attention()->add_layers(1);
         r->mutable_attention()->add_layers(1);
       },
       StatusCode::INVALID_ARGUMENT,
       {"attention.layers[1] = 1 repeats attention.layers[0]"}},
      {"duplicate head",
       [](v1::EncodeRequest* r) {
         for (int h : {0, 2, 0}) r->mutable_attention()->add_heads(h);
       },
       StatusCode::INVALID_ARGUMENT,
       {"attention.heads[2] = 0 repeats attention.heads[0]"}},
      {"bad dtype",
       [](v1::EncodeRequest* r) {
         r->mutable_attention()->set_dtype(static_cast<v1::DataType>(7));
       },
       StatusCode::INVALID_ARGUMENT,
       {"attention.dtype = 7"}},
      {"head mask out of range",
       [](v1::EncodeRequest* r) {
         v1::HeadRef* h = r->add_head_mask();
         h->set_layer(0);
         h->set_head(kHeads);
       },
       StatusCode::INVALID_ARGUMENT,
       {"head_mask[0].head = 4 is out of range [0, 4)"}},
      {"duplicate head mask",
       [](v1::EncodeRequest* r) {
         for (int i = 0; i < 2; ++i) {
           v1::HeadRef* h = r->add_head_mask();
           h->set_layer(1);
           h->set_head(3);
         }
       },
       StatusCode::INVALID_ARGUMENT,
       {"head_mask[1]", "repeats head_mask[0]"}},
      {"normalize without pooling",
       [](v1::EncodeRequest* r) {
         r->set_pooling(v1::POOLING_NONE);
         r->set_normalize(true);
       },
       StatusCode::INVALID_ARGUMENT,
       {"normalize", "POOLING_NONE"}},
      {"too many sequences",
       [&](v1::EncodeRequest* r) {
         for (int i = 0; i < 8; ++i) AddSequence(len5, r);
       },
       StatusCode::INVALID_ARGUMENT,
       {"sequences has 9 entries", "limit of 8 per request"}},
      {"too many tokens",
       [&](v1::EncodeRequest* r) {
         r->clear_sequences();
         add_len40(r, 3);
       },
       StatusCode::INVALID_ARGUMENT,
       {"120 tokens in total", "limit of 100 per request"}},
      {"unknown model",
       [](v1::EncodeRequest* r) { r->set_model("bert-large"); },
       StatusCode::NOT_FOUND,
       {"\"bert-large\"", "tiny_bert"}},
      {"response over the size limit",
       [&](v1::EncodeRequest* r) {
         r->clear_sequences();
         add_len40(r, 2);  // 2 × 2 layers × 4 heads × 40² × 4 B = 102,400
         r->mutable_attention();
       },
       StatusCode::RESOURCE_EXHAUSTED,
       {"attention maps 102400", "limit of 100000 bytes", "FLOAT16",
        "attention.layers", "attention.heads", "attention.query_positions"}},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.name);
    v1::EncodeRequest request;
    AddSequence(len5, &request);
    c.edit(&request);
    v1::EncodeResponse response;
    grpc::Status status = CallEncode(*stub_, request, &response);
    EXPECT_EQ(status.error_code(), c.code) << status.error_message();
    for (const std::string& part : c.message_parts) {
      EXPECT_THAT(status.error_message(), HasSubstr(part));
    }
    EXPECT_EQ(response.results_size(), 0);
  }

  // Still serving, and a FLOAT16 version of the refused request fits.
  v1::EncodeRequest request;
  add_len40(&request, 2);
  request.mutable_attention()->set_dtype(v1::FLOAT16);
  v1::EncodeResponse response;
  grpc::Status status = CallEncode(*stub_, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.results_size(), 2);
  EXPECT_EQ(Shape(response.results(1).attention()),
            (std::vector<int64_t>{kLayers, kHeads, 40, 40}));
}

TEST(ServerBatchingTest, ConcurrentRequestsAreMergedIntoOnePass) {
  const std::vector<GoldenSequence> golden = ReadTinyBertGolden();
  std::unique_ptr<Server> server = StartServer(TestOptions());
  ASSERT_NE(server, nullptr);
  auto stub = v1::Encoder::NewStub(NewChannel(server->port()));

  // Hold the inference thread so the requests pile up, then let them go.
  server->batcher().Pause();
  constexpr int kClients = 4;  // len1, len5, len12, len23
  std::vector<grpc::Status> statuses(kClients);
  std::vector<v1::EncodeResponse> responses(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      v1::EncodeRequest request;
      AddSequence(golden[i], &request);
      request.set_return_hidden_states(true);
      request.mutable_attention();
      statuses[i] = CallEncode(*stub, request, &responses[i]);
    });
  }
  const bool all_queued = WaitForQueued(server->batcher(), kClients);
  server->batcher().Resume();
  for (std::thread& t : clients) t.join();
  ASSERT_TRUE(all_queued);

  for (int i = 0; i < kClients; ++i) {
    SCOPED_TRACE(golden[i].name);
    ASSERT_TRUE(statuses[i].ok()) << statuses[i].error_message();
    const v1::SequenceResult& r = responses[i].results(0);
    EXPECT_LE(MaxAbsDiff(DecodeFloat32(r.hidden_states()), golden[i].hidden),
              kHiddenTolerance);
    EXPECT_LE(MaxAbsDiff(DecodeFloat32(r.attention()), golden[i].attention),
              kAttentionTolerance);
  }
  const Batcher::Stats stats = server->batcher().stats();
  EXPECT_EQ(stats.forward_passes, 1);
  EXPECT_EQ(stats.requests_run, kClients);
  EXPECT_EQ(stats.max_requests_in_pass, kClients);
}

// Bulk work (issue 13): an Encode costlier than --max_pass_tokens is split
// into passes at sequence boundaries and answered once, with the same bits as
// one pass (the encoder is batch-invariant on tiny_bert).
TEST(ServerBatchingTest, ACostlyEncodeIsSplitIntoPassesWithTheSameAnswer) {
  const std::vector<GoldenSequence> golden = ReadTinyBertGolden();
  v1::EncodeRequest request;
  for (const GoldenSequence& g : golden) AddSequence(g, &request);
  request.set_return_hidden_states(true);
  request.mutable_attention();
  auto encode = [&](int64_t max_pass_tokens, Batcher::Stats* stats) {
    ServerOptions options = TestOptions();
    options.batcher.max_pass_tokens = max_pass_tokens;
    std::unique_ptr<Server> server = StartServer(options);
    EXPECT_NE(server, nullptr);
    v1::EncodeResponse response;
    if (server == nullptr) return response;
    auto stub = v1::Encoder::NewStub(NewChannel(server->port()));
    const grpc::Status status = CallEncode(*stub, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    *stats = server->batcher().stats();
    return response;
  };
  Batcher::Stats whole_stats, split_stats;
  const v1::EncodeResponse whole = encode(0, &whole_stats);
  const v1::EncodeResponse split = encode(24, &split_stats);  // ≥ len23 alone
  EXPECT_EQ(whole_stats.forward_passes, 1);
  EXPECT_EQ(whole_stats.bulk_pieces, 0);
  EXPECT_GT(split_stats.forward_passes, 2);
  EXPECT_EQ(split_stats.bulk_pieces, split_stats.forward_passes);
  EXPECT_EQ(split_stats.requests_run, 1);
  ASSERT_EQ(split.results_size(), request.sequences_size());
  ASSERT_EQ(whole.results_size(), request.sequences_size());
  for (int i = 0; i < request.sequences_size(); ++i) {
    SCOPED_TRACE(golden[i].name);
    EXPECT_EQ(split.results(i).hidden_states().data(),
              whole.results(i).hidden_states().data());
    EXPECT_EQ(split.results(i).attention().data(),
              whole.results(i).attention().data());
    EXPECT_EQ(split.results(i).embedding().data(),
              whole.results(i).embedding().data());
  }
}

TEST(ServerBatchingTest, RequestsPastTheirDeadlineAreDroppedNotRun) {
  const std::vector<GoldenSequence> golden = ReadTinyBertGolden();
  std::unique_ptr<Server> server = StartServer(TestOptions());
  ASSERT_NE(server, nullptr);
  auto stub = v1::Encoder::NewStub(NewChannel(server->port()));

  server->batcher().Pause();
  grpc::Status status;
  std::thread client([&] {
    v1::EncodeRequest request;
    AddSequence(golden[1], &request);
    v1::EncodeResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(kQueuedDeadlineMs));
    status = stub->Encode(&context, request, &response);
  });
  const bool queued = WaitForQueued(server->batcher(), 1);
  client.join();  // returns at the deadline: the request is still queued
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // The server's deadline is the client's plus the transit time: wait until
  // the server sees it passed too before the batcher looks at the request.
  const bool droppable = WaitForDroppable(server->batcher(), 1);
  server->batcher().Resume();
  server->Shutdown(absl::Seconds(20));  // drains the batcher
  ASSERT_TRUE(queued);
  ASSERT_TRUE(droppable);
  const Batcher::Stats stats = server->batcher().stats();
  EXPECT_EQ(stats.forward_passes, 0);
  EXPECT_EQ(stats.expired + stats.cancelled, 1);
}

TEST(ServerShutdownTest, RequestsInFlightWhenShutdownStartsAreAnswered) {
  const std::vector<GoldenSequence> golden = ReadTinyBertGolden();
  std::unique_ptr<Server> server = StartServer(TestOptions());
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  auto stub = v1::Encoder::NewStub(NewChannel(port));

  server->batcher().Pause();
  constexpr int kClients = 3;
  std::vector<grpc::Status> statuses(kClients);
  std::vector<v1::EncodeResponse> responses(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      v1::EncodeRequest request;
      AddSequence(golden[i + 1], &request);
      request.set_return_hidden_states(true);
      statuses[i] = CallEncode(*stub, request, &responses[i]);
    });
  }
  const bool all_queued = WaitForQueued(server->batcher(), kClients);

  // Shutdown blocks until the calls in flight finish; run it aside, wait
  // until the server refuses new calls, and only then let the batcher go.
  std::thread stopper([&] { server->Shutdown(absl::Seconds(20)); });
  const bool refusing = WaitUntilRefusing(port);
  server->batcher().Resume();
  for (std::thread& t : clients) t.join();
  stopper.join();
  ASSERT_TRUE(all_queued);
  EXPECT_TRUE(refusing);

  for (int i = 0; i < kClients; ++i) {
    SCOPED_TRACE(golden[i + 1].name);
    ASSERT_TRUE(statuses[i].ok()) << statuses[i].error_message();
    EXPECT_LE(MaxAbsDiff(DecodeFloat32(responses[i].results(0).hidden_states()),
                         golden[i + 1].hidden),
              kHiddenTolerance);
  }
  EXPECT_EQ(server->batcher().stats().requests_run, kClients);
}

TEST(ServerStartTest, RefusesAnAddressItCannotBind) {
  std::unique_ptr<Server> first = StartServer(TestOptions());
  ASSERT_NE(first, nullptr);
  absl::StatusOr<std::unique_ptr<Encoder>> encoder = Encoder::Load(kModelDir);
  ASSERT_TRUE(encoder.ok());
  ServerOptions options = TestOptions();
  options.address = absl::StrCat("127.0.0.1:", first->port());
  absl::StatusOr<std::unique_ptr<Server>> second =
      Server::Start(options, *std::move(encoder),
                    absl::NotFoundError("no tokenizer in this test"));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), HasSubstr(options.address));
}

}  // namespace
}  // namespace attnserve
