// Server reflection describes every service it lists (grpcurl and buf curl
// need that to call anything): a reflection client lists the services of an
// in-process server, builds each one's descriptor from the files reflection
// sends, and calls the health service through the described types alone, as
// `buf curl http://HOST:PORT/grpc.health.v1.Health/Check` does. A service
// added to the server later without its descriptor fails here.
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/dynamic_message.h"
#include "gtest/gtest.h"
#include "tests/raw_call_testing.h"
#include "tests/reflection_testing.h"
#include "tests/server_testing.h"

namespace attnserve::testing {
namespace {

using ::testing::IsSupersetOf;

class ReflectionTest : public SharedServerTest {
 protected:
  static void SetUpTestSuite() {
    ServerOptions options = TestOptions();
    options.log_requests = false;
    StartSuite(options);
  }
};

TEST_F(ReflectionTest, DescribesEveryServiceItLists) {
  ReflectionClient reflection(NewChannel(server_->port()));
  absl::StatusOr<std::vector<std::string>> services = reflection.ListServices();
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_THAT(*services,
              IsSupersetOf({"attnserve.v1.Encoder", "grpc.health.v1.Health",
                            "grpc.reflection.v1alpha.ServerReflection"}));
  for (const std::string& name : *services) {
    SCOPED_TRACE(name);
    absl::StatusOr<const google::protobuf::ServiceDescriptor*> service =
        reflection.Describe(name);
    ASSERT_TRUE(service.ok()) << service.status();
    EXPECT_GT((*service)->method_count(), 0);
    for (int m = 0; m < (*service)->method_count(); ++m) {
      EXPECT_NE((*service)->method(m)->input_type(), nullptr);
      EXPECT_NE((*service)->method(m)->output_type(), nullptr);
    }
  }
}

TEST_F(ReflectionTest, TheEncoderIsDescribedAsInItsProto) {
  ReflectionClient reflection(NewChannel(server_->port()));
  absl::StatusOr<const google::protobuf::ServiceDescriptor*> encoder =
      reflection.Describe("attnserve.v1.Encoder");
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  const google::protobuf::ServiceDescriptor* compiled =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          v1::Encoder::service_full_name());
  ASSERT_NE(compiled, nullptr);
  ASSERT_EQ((*encoder)->method_count(), compiled->method_count());
  for (int m = 0; m < compiled->method_count(); ++m) {
    EXPECT_EQ((*encoder)->method(m)->full_name(),
              compiled->method(m)->full_name());
    EXPECT_EQ((*encoder)->method(m)->input_type()->full_name(),
              compiled->method(m)->input_type()->full_name());
  }
}

// What buf curl does for grpc.health.v1.Health/Check: request and response
// types from reflection only, messages built dynamically.
TEST_F(ReflectionTest, HealthCanBeCalledThroughReflectionAlone) {
  ReflectionClient reflection(NewChannel(server_->port()));
  absl::StatusOr<const google::protobuf::ServiceDescriptor*> health =
      reflection.Describe("grpc.health.v1.Health");
  ASSERT_TRUE(health.ok()) << health.status();
  const google::protobuf::MethodDescriptor* check =
      (*health)->FindMethodByName("Check");
  ASSERT_NE(check, nullptr);
  google::protobuf::DynamicMessageFactory factory;
  std::unique_ptr<google::protobuf::Message> request(
      factory.GetPrototype(check->input_type())->New());
  request->GetReflection()->SetString(
      request.get(), check->input_type()->FindFieldByName("service"),
      "attnserve.v1.Encoder");
  std::vector<std::string> responses;
  grpc::Status status =
      RawCall(NewChannel(server_->port()), "/grpc.health.v1.Health/Check",
              {request->SerializeAsString()}, &responses);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(responses.size(), 1u);
  std::unique_ptr<google::protobuf::Message> response(
      factory.GetPrototype(check->output_type())->New());
  ASSERT_TRUE(response->ParseFromString(responses[0]));
  const google::protobuf::EnumValueDescriptor* value =
      response->GetReflection()->GetEnum(
          *response, check->output_type()->FindFieldByName("status"));
  EXPECT_EQ(value->name(), "SERVING");
}

TEST_F(ReflectionTest, AnUnknownServiceIsNotFound) {
  ReflectionClient reflection(NewChannel(server_->port()));
  absl::StatusOr<const google::protobuf::ServiceDescriptor*> none =
      reflection.Describe("no.such.Service");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace attnserve::testing
