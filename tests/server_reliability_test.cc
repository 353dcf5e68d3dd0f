// Server paths the other suites leave out:
// - the response-size estimate against the serialized response, at the exact
//   limit (accepted at the estimate, refused one byte below it);
// - bf16 and int8 through the server, with head_mask (against the float64
//   head-mask goldens) and RankHeads (on the one-head model);
// - RankHeads failing midway: its deadline passing between passes, and the
//   queue full when it submits its next pass. The server answers the call
//   with that status, runs nothing more of it, and serves the next call.
// Every wait is for a state (Batcher::PauseAfterPasses, droppable(), a
// blocked completion thread), never a guessed duration.
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/response_size.h"
#include "server/validate.h"
#include "tests/server_testing.h"

namespace attnserve {
namespace {

using ::attnserve::testing::AddSequence;
using ::attnserve::testing::CallEncode;
using ::attnserve::testing::CallRankHeads;
using ::attnserve::testing::DecodeFloat32;
using ::attnserve::testing::GoldenSequence;
using ::attnserve::testing::kModelDir;
using ::attnserve::testing::kQueuedDeadlineMs;
using ::attnserve::testing::MinTokenCosine;
using ::attnserve::testing::NewChannel;
using ::attnserve::testing::ReadHeadMaskGolden;
using ::attnserve::testing::ReadTinyBertGolden;
using ::attnserve::testing::TestOptions;
using ::attnserve::testing::WaitForDroppable;
using ::attnserve::testing::WaitForQueued;
using ::testing::HasSubstr;

std::unique_ptr<Server> StartServerAt(const ServerOptions& options,
                                      const std::string& dir,
                                      Precision precision) {
  return testing::StartServer(options, dir, EncoderOptions{precision});
}

void AddIds(std::initializer_list<int32_t> ids, v1::Sequence* seq) {
  seq->mutable_token_ids()->Add(ids.begin(), ids.end());
}

// Waits (at most 20 s) for `condition`.
template <typename Condition>
bool WaitUntil(Condition condition) {
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (!condition()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

// ---------------------------------------------------------------------------
// The response size at the exact limit

// Requests of every shape the estimate adds up: hidden states, maps in
// float32 and float16, query rows, statistics, rollout, several sequences,
// text (tokens with their strings).
std::vector<v1::EncodeRequest> SizedRequests(
    const std::vector<GoldenSequence>& golden) {
  std::vector<v1::EncodeRequest> out;
  v1::EncodeRequest r;
  AddSequence(golden[3], &r);
  r.set_return_hidden_states(true);
  out.push_back(r);
  r = v1::EncodeRequest();
  for (int i : {1, 2, 3, 5}) AddSequence(golden[i], &r);
  r.mutable_attention()->add_layers(1);
  out.push_back(r);
  r.mutable_attention()->set_dtype(v1::FLOAT16);
  r.mutable_attention()->add_query_positions(0);
  r.mutable_attention()->set_stats(true);
  out.push_back(r);
  r = v1::EncodeRequest();
  r.add_sequences()->set_text("the cat sat on the mat");
  r.add_sequences()->set_text("hello world");
  r.mutable_attention()->set_rollout(true);
  r.mutable_attention()->set_stats(true);
  r.set_return_hidden_states(true);
  r.set_pooling(v1::POOLING_MEAN);
  out.push_back(r);
  return out;
}

TEST(ServerReliabilityTest, ResponseSizeEstimateHoldsAtTheExactLimit) {
  const std::vector<GoldenSequence> golden = ReadTinyBertGolden();
  std::unique_ptr<Server> probe =
      StartServerAt(TestOptions(), kModelDir, Precision::kFloat32);
  ASSERT_NE(probe, nullptr);
  ServedModel served;
  served.info = &probe->model_info();
  served.tokenizer = probe->tokenizer();
  RequestLimits unlimited = TestOptions().limits;
  unlimited.max_response_bytes = int64_t{1} << 40;

  int k = 0;
  for (const v1::EncodeRequest& request : SizedRequests(golden)) {
    SCOPED_TRACE(::testing::Message() << "request " << k++);
    absl::StatusOr<ValidatedEncode> v =
        ValidateEncodeRequest(request, served, unlimited);
    ASSERT_TRUE(v.ok()) << v.status();
    const int64_t estimate = v->response_bytes;
    ASSERT_GT(estimate, 0);

    // One byte below: refused before running, with the numbers.
    ServerOptions options = TestOptions();
    options.limits.max_response_bytes = estimate - 1;
    {
      std::unique_ptr<Server> server =
          StartServerAt(options, kModelDir, Precision::kFloat32);
      ASSERT_NE(server, nullptr);
      auto stub = v1::Encoder::NewStub(NewChannel(server->port()));
      v1::EncodeResponse response;
      grpc::Status status = CallEncode(*stub, request, &response);
      EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
      EXPECT_THAT(status.error_message(),
                  HasSubstr(absl::StrCat("the response would be ", estimate,
                                         " bytes")));
      EXPECT_EQ(server->batcher().stats().forward_passes, 0);
    }
    // At the estimate: answered, and the serialized response is within the
    // estimate plus the framing it leaves out (tags, lengths and shapes of
    // a few tensors per result, the model name), far below the send limit.
    options.limits.max_response_bytes = estimate;
    std::unique_ptr<Server> server =
        StartServerAt(options, kModelDir, Precision::kFloat32);
    ASSERT_NE(server, nullptr);
    auto stub = v1::Encoder::NewStub(NewChannel(server->port()));
    v1::EncodeResponse response;
    grpc::Status status = CallEncode(*stub, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    const int64_t serialized = response.ByteSizeLong();
    const int64_t framing = 64 + 256 * response.results_size();
    std::printf("[ request %d ] estimate %lld bytes, serialized %lld\n", k - 1,
                static_cast<long long>(estimate),
                static_cast<long long>(serialized));
    EXPECT_LE(serialized, estimate + framing);
    EXPECT_LE(serialized, estimate + kResponseHeadroomBytes);
    // And the estimate is not wildly above what is sent: the tensors are
    // counted exactly, only small messages at their largest.
    EXPECT_GE(serialized, estimate / 2);
  }
}

// ---------------------------------------------------------------------------
// bf16 and int8 through the server

class ServerPrecisionTest : public ::testing::TestWithParam<Precision> {};

TEST_P(ServerPrecisionTest, HeadMaskFollowsTheGoldens) {
  std::unique_ptr<Server> server =
      StartServerAt(TestOptions(), kModelDir, GetParam());
  ASSERT_NE(server, nullptr);
  auto stub = v1::Encoder::NewStub(NewChannel(server->port()));
  const auto cases =
      ReadHeadMaskGolden(std::string(kModelDir) + "/golden_head_mask.json");
  ASSERT_FALSE(cases.empty());
  // EncoderPrecisionTest's tiny_bert bounds for this precision.
  const double min_cosine = GetParam() == Precision::kInt8 ? 0.995 : 0.9997;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    v1::EncodeRequest request;
    for (const GoldenSequence& g : c.sequences) AddSequence(g, &request);
    request.set_return_hidden_states(true);
    for (int l = 0; l < testing::kLayers; ++l) {
      for (int h = 0; h < testing::kHeads; ++h) {
        if (c.head_mask[l * testing::kHeads + h]) {
          v1::HeadRef* ref = request.add_head_mask();
          ref->set_layer(l);
          ref->set_head(h);
        }
      }
    }
    v1::EncodeResponse response;
    grpc::Status status = CallEncode(*stub, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(response.results_size(), static_cast<int>(c.sequences.size()));
    for (size_t s = 0; s < c.sequences.size(); ++s) {
      const double cos =
          MinTokenCosine(DecodeFloat32(response.results(s).hidden_states()),
                         c.sequences[s].hidden, testing::kHidden);
      EXPECT_GE(cos, min_cosine) << c.sequences[s].name;
    }
  }
}

TEST_P(ServerPrecisionTest, RankHeadsFindsTheOnlyHeadThatMatters) {
  ServerOptions options = TestOptions();
  options.limits.max_rank_heads_tokens = 100000;
  std::unique_ptr<Server> server =
      StartServerAt(options, testing::WriteOneHeadModel(), GetParam());
  ASSERT_NE(server, nullptr);
  auto stub = v1::Encoder::NewStub(NewChannel(server->port()));
  v1::RankHeadsRequest request;
  AddIds({2, 10, 11, 12, 13, 3}, request.add_sequences());
  AddIds({2, 20, 21, 3}, request.add_sequences());
  v1::RankHeadsResponse response;
  grpc::Status status = CallRankHeads(*stub, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.heads_size(), testing::kLayers * testing::kHeads);
  EXPECT_EQ(response.heads(0).layer(), testing::kOneLayer);
  EXPECT_EQ(response.heads(0).head(), testing::kOneHead);
  // Every other head writes nothing downstream; in reduced precision masking
  // it may still move the quantization of its neighbours a little.
  EXPECT_GT(response.heads(0).importance(), 1e-3);
  for (int k = 1; k < response.heads_size(); ++k) {
    EXPECT_LT(response.heads(k).importance(),
              response.heads(0).importance() / 10)
        << k;
  }
  EXPECT_EQ(response.layers(0).layer(), testing::kOneLayer);
  std::printf("[ %s ] top head %.4g, next %.3g\n", PrecisionName(GetParam()),
              response.heads(0).importance(), response.heads(1).importance());
}

INSTANTIATE_TEST_SUITE_P(Precisions, ServerPrecisionTest,
                         ::testing::Values(Precision::kBFloat16,
                                           Precision::kInt8),
                         [](const ::testing::TestParamInfo<Precision>& info) {
                           return std::string(PrecisionName(info.param));
                         });

// ---------------------------------------------------------------------------
// RankHeads failing midway

// 5 tokens × 11 runs in passes of at most 8 tokens: 11 passes of one run.
ServerOptions ManyPassOptions() {
  ServerOptions options = TestOptions();
  options.batcher.max_batch_tokens = 8;
  options.limits.max_rank_heads_tokens = 100000;
  return options;
}

v1::RankHeadsRequest FiveTokens() {
  v1::RankHeadsRequest request;
  AddIds({2, 10, 11, 12, 3}, request.add_sequences());
  return request;
}

// After a failure midway the server still answers a whole ranking.
void ExpectAWholeRankingWorks(Server& server) {
  server.batcher().Resume();
  auto stub = v1::Encoder::NewStub(NewChannel(server.port()));
  v1::RankHeadsResponse response;
  grpc::Status status = CallRankHeads(*stub, FiveTokens(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.heads_size(), testing::kLayers * testing::kHeads);
  EXPECT_EQ(response.forward_passes(), 11);
}

TEST(ServerReliabilityTest, RankHeadsDeadlinePassingBetweenPasses) {
  std::unique_ptr<Server> server =
      StartServerAt(ManyPassOptions(), kModelDir, Precision::kFloat32);
  ASSERT_NE(server, nullptr);
  auto stub = v1::Encoder::NewStub(NewChannel(server->port()));
  server->batcher().PauseAfterPasses(3);
  grpc::Status status;
  std::thread client([&] {
    v1::RankHeadsResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(kQueuedDeadlineMs));
    status = stub->RankHeads(&context, FiveTokens(), &response);
  });
  // Three passes ran, the fourth waits in the paused queue until the
  // server sees the deadline passed; then the batcher drops it.
  const bool fourth_queued = WaitForQueued(server->batcher(), 1);
  const bool expired = WaitForDroppable(server->batcher(), 1);
  server->batcher().Resume();
  client.join();
  ASSERT_TRUE(fourth_queued);
  ASSERT_TRUE(expired);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  ASSERT_TRUE(WaitUntil([&] { return server->batcher().queued() == 0; }));
  const Batcher::Stats stats = server->batcher().stats();
  EXPECT_EQ(stats.forward_passes, 3);
  EXPECT_EQ(stats.expired + stats.cancelled, 1);
  ExpectAWholeRankingWorks(*server);
}

TEST(ServerReliabilityTest, RankHeadsMeetingAFullQueueBetweenPasses) {
  ServerOptions options = ManyPassOptions();
  options.batcher.max_queue_requests = 2;
  std::unique_ptr<Server> server =
      StartServerAt(options, kModelDir, Precision::kFloat32);
  ASSERT_NE(server, nullptr);
  auto stub = v1::Encoder::NewStub(NewChannel(server->port()));
  // Hold the completion thread, so the ranking's next pass is submitted only
  // once the queue has been filled.
  absl::Notification unblock, blocked;
  server->completions().Post([&] {
    blocked.Notify();
    unblock.WaitForNotificationWithTimeout(absl::Seconds(30));
  });
  ASSERT_TRUE(blocked.WaitForNotificationWithTimeout(absl::Seconds(20)));
  server->batcher().PauseAfterPasses(1);
  grpc::Status status;
  v1::RankHeadsResponse response;
  std::thread client(
      [&] { status = CallRankHeads(*stub, FiveTokens(), &response); });
  ASSERT_TRUE(
      WaitUntil([&] { return server->batcher().stats().forward_passes == 1; }));
  // Two Encodes fill the queue (the batcher paused itself after pass 1).
  const std::vector<GoldenSequence> golden = ReadTinyBertGolden();
  std::vector<grpc::Status> encodes(2);
  std::vector<std::thread> encoders;
  for (int i = 0; i < 2; ++i) {
    encoders.emplace_back([&, i] {
      v1::EncodeRequest request;
      AddSequence(golden[1 + i], &request);
      v1::EncodeResponse r;
      encodes[i] = CallEncode(*stub, request, &r);
    });
  }
  const bool full = WaitForQueued(server->batcher(), 2);
  unblock.Notify();  // pass 1's completion now submits pass 2: refused
  client.join();
  ASSERT_TRUE(full);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("request queue is full"));
  server->batcher().Resume();
  for (std::thread& t : encoders) t.join();
  for (const grpc::Status& s : encodes)
    EXPECT_TRUE(s.ok()) << s.error_message();
  // Pass 1 of the ranking and the two Encodes; nothing more of the ranking.
  EXPECT_EQ(server->batcher().stats().forward_passes, 3);
  ExpectAWholeRankingWorks(*server);
}

}  // namespace
}  // namespace attnserve
