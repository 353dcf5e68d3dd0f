// EncodeStream and ListModels through gRPC, in process: 1,000 pipelined
// messages come back in order and byte-identical to unary Encode; a bad
// message in the middle gets an error response and the stream goes on;
// cancelling ends the stream and leaves the server serving; many streams at
// once each keep their order.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server_testing.h"

namespace attnserve {
namespace {

using ::attnserve::testing::SharedServerTest;
using ::testing::HasSubstr;

// Message i of a stream: a short id sequence that differs with i, so an
// answer out of order shows.
v1::EncodeRequest Message(int i) {
  v1::EncodeRequest r;
  v1::Sequence* s = r.add_sequences();
  s->add_token_ids(2);
  for (int k = 0; k <= i % 7; ++k) s->add_token_ids(5 + (i * 7 + k) % 90);
  s->add_token_ids(3);
  r.set_return_hidden_states(i % 2 == 0);
  return r;
}

class StreamTest : public SharedServerTest {
 protected:
  // Sends `requests` on one stream (writes and reads concurrently) and
  // returns the responses and the stream's final status.
  grpc::Status Stream(const std::vector<v1::EncodeRequest>& requests,
                      std::vector<v1::EncodeResponse>* responses,
                      grpc::ClientContext* context = nullptr) {
    grpc::ClientContext own;
    if (context == nullptr) context = &own;
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(120));
    auto stream = stub_->EncodeStream(context);
    std::thread writer([&] {
      for (const v1::EncodeRequest& r : requests) {
        if (!stream->Write(r)) break;
      }
      stream->WritesDone();
    });
    v1::EncodeResponse response;
    while (stream->Read(&response)) responses->push_back(response);
    writer.join();
    return stream->Finish();
  }

  std::string Unary(const v1::EncodeRequest& r) {
    v1::EncodeResponse response;
    const grpc::Status s = testing::CallEncode(*stub_, r, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response.SerializeAsString();
  }
};

TEST_F(StreamTest, AThousandMessagesComeBackInOrderAsUnary) {
  std::vector<v1::EncodeRequest> requests;
  for (int i = 0; i < 1000; ++i) requests.push_back(Message(i));
  std::vector<v1::EncodeResponse> responses;
  const grpc::Status s = Stream(requests, &responses);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(responses.size(), requests.size());
  for (int i = 0; i < 1000; i += 37) {  // a sample, against unary calls
    EXPECT_EQ(responses[i].SerializeAsString(), Unary(requests[i])) << i;
  }
  for (int i = 0; i < 1000; ++i) {
    ASSERT_FALSE(responses[i].has_error()) << i;
    ASSERT_EQ(responses[i].results(0).token_ids_size(),
              requests[i].sequences(0).token_ids_size())
        << "message " << i << " answered out of order";
  }
}

TEST_F(StreamTest, ABadMessageGetsAnErrorAndTheStreamGoesOn) {
  std::vector<v1::EncodeRequest> requests = {Message(0), Message(1),
                                             Message(2)};
  requests[1].mutable_sequences(0)->set_token_ids(1, 999);
  v1::EncodeRequest empty;  // no sequences
  requests.push_back(empty);
  requests.push_back(Message(4));
  std::vector<v1::EncodeResponse> responses;
  const grpc::Status s = Stream(requests, &responses);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(responses.size(), 5u);
  EXPECT_FALSE(responses[0].has_error());
  EXPECT_EQ(responses[1].error().code(), grpc::INVALID_ARGUMENT);
  EXPECT_THAT(responses[1].error().message(),
              HasSubstr("sequences[0].token_ids[1] = 999 is out of range"));
  EXPECT_EQ(responses[1].results_size(), 0);
  EXPECT_FALSE(responses[2].has_error());
  EXPECT_THAT(responses[3].error().message(), HasSubstr("sequences is empty"));
  EXPECT_EQ(responses[4].SerializeAsString(), Unary(requests[4]));
}

TEST_F(StreamTest, CancellingEndsTheStreamAndTheServerServesOn) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(60));
  auto stream = stub_->EncodeStream(&context);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(stream->Write(Message(i)));
  v1::EncodeResponse first;
  ASSERT_TRUE(stream->Read(&first));
  context.TryCancel();
  v1::EncodeResponse rest;
  while (stream->Read(&rest)) {
  }
  EXPECT_EQ(stream->Finish().error_code(), grpc::CANCELLED);
  // The server still answers, and nothing of the stream is left in flight.
  EXPECT_FALSE(Unary(Message(3)).empty());
}

TEST_F(StreamTest, ManyStreamsKeepTheirOwnOrder) {
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      std::vector<v1::EncodeRequest> requests;
      for (int i = 0; i < 100; ++i) requests.push_back(Message(c * 100 + i));
      std::vector<v1::EncodeResponse> responses;
      if (!Stream(requests, &responses).ok() || responses.size() != 100) {
        ++failures;
        return;
      }
      for (int i = 0; i < 100; ++i) {
        if (responses[i].has_error() ||
            responses[i].results(0).token_ids_size() !=
                requests[i].sequences(0).token_ids_size()) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_F(StreamTest, ListModelsHasTheServedModel) {
  grpc::ClientContext context;
  v1::ListModelsResponse response;
  ASSERT_TRUE(stub_->ListModels(&context, {}, &response).ok());
  ASSERT_EQ(response.models_size(), 1);
  EXPECT_EQ(response.models(0).name(), "tiny_bert");
  EXPECT_EQ(response.models(0).num_heads(), testing::kHeads);
}

}  // namespace
}  // namespace attnserve
