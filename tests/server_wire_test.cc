// server/wire: the field paths named for requests protobuf refuses.
#include <string>

#include "gmock/gmock.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "gtest/gtest.h"
#include "proto/attnserve.pb.h"
#include "server/wire.h"

namespace attnserve {
namespace {

using ::testing::HasSubstr;

grpc::ByteBuffer Bytes(const std::string& s) {
  grpc::Slice slice(s);
  return grpc::ByteBuffer(&slice, 1);
}

TEST(ServerWireTest, NamesTheFieldThatIsNotUtf8) {
  v1::EncodeRequest request;
  request.add_sequences()->set_text("fine");
  v1::Sequence* bad = request.add_sequences();
  bad->set_text("fine too");
  bad->set_text_pair(std::string("ab\xff", 3));  // C++ setters do not check
  const std::string wire = request.SerializeAsString();

  std::optional<std::string> found =
      FindInvalidUtf8Field(wire, *v1::EncodeRequest::descriptor());
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(*found,
            "sequences[1].text_pair is not valid UTF-8: bad sequence at byte "
            "offset 2 (byte 0xFF)");

  v1::EncodeRequest parsed;
  absl::Status status = ParseRequest(Bytes(wire), &parsed);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("sequences[1].text_pair is not valid UTF-8"));

  v1::GetModelInfoRequest info;
  info.set_model(std::string("bert\xc0", 5));
  status = ParseRequest(Bytes(info.SerializeAsString()), &info);
  EXPECT_THAT(status.message(),
              HasSubstr("model is not valid UTF-8: bad sequence at byte "
                        "offset 4 (byte 0xC0)"));
}

// The client is told what is wrong; the server's log gets nothing, so a
// client cannot fill it by sending such requests in a loop.
TEST(ServerWireTest, InvalidUtf8LeavesNothingInTheServerLog) {
  v1::EncodeRequest request;
  request.add_sequences()->set_text(std::string("ab\xff", 3));
  const std::string wire = request.SerializeAsString();
  ::testing::internal::CaptureStderr();
  v1::EncodeRequest parsed;
  const absl::Status status = ParseRequest(Bytes(wire), &parsed);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log, "");
}

TEST(ServerWireTest, GarbageIsNotARequest) {
  v1::TokenizeRequest request;
  absl::Status status = ParseRequest(Bytes("\x0a\xff\xff"), &request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("not a valid attnserve.v1.TokenizeRequest"));
}

TEST(ServerWireTest, ValidRequestsRoundTrip) {
  v1::EncodeRequest request;
  request.add_sequences()->set_text("caf\xc3\xa9");
  request.add_sequences()->add_token_ids(7);
  v1::EncodeRequest parsed;
  ASSERT_TRUE(ParseRequest(Bytes(request.SerializeAsString()), &parsed).ok());
  EXPECT_EQ(parsed.sequences(0).text(), "caf\xc3\xa9");
  EXPECT_EQ(parsed.sequences(1).token_ids(0), 7);

  grpc::ByteBuffer out;
  ASSERT_TRUE(SerializeResponse(request, &out).ok());
  v1::EncodeRequest back;
  ASSERT_TRUE(ParseRequest(out, &back).ok());
  EXPECT_EQ(back.SerializeAsString(), request.SerializeAsString());
}

}  // namespace
}  // namespace attnserve
