// A minimal server reflection client (grpc.reflection.v1alpha, what grpcurl
// and buf curl speak): lists a server's services and describes one from the
// file descriptors the server sends, in a descriptor pool of its own, as
// those tools do. Its request and response messages are the ones
// libgrpc++_reflection registers in protobuf's generated pool (Debian ships
// no headers for them), used through protobuf's reflection API.
// Header-only; every call has a deadline.
#ifndef ATTNSERVE_TESTS_REFLECTION_TESTING_H_
#define ATTNSERVE_TESTS_REFLECTION_TESTING_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/descriptor_database.h"
#include "google/protobuf/message.h"
#include "grpcpp/grpcpp.h"
#include "tests/raw_call_testing.h"

namespace attnserve::testing {

inline constexpr char kReflectionMethod[] =
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

class ReflectionClient {
 public:
  explicit ReflectionClient(
      std::shared_ptr<grpc::Channel> channel,
      std::vector<std::pair<std::string, std::string>> metadata = {})
      : channel_(std::move(channel)), metadata_(std::move(metadata)) {}

  // The names of the services the server lists.
  absl::StatusOr<std::vector<std::string>> ListServices() {
    absl::StatusOr<std::unique_ptr<google::protobuf::Message>> response =
        Ask("list_services", "*");
    if (!response.ok()) return response.status();
    std::vector<std::string> names;
    const google::protobuf::Message& list =
        Sub(**response, "list_services_response");
    const google::protobuf::FieldDescriptor* services =
        list.GetDescriptor()->FindFieldByName("service");
    for (int i = 0; i < list.GetReflection()->FieldSize(list, services); ++i) {
      const google::protobuf::Message& service =
          list.GetReflection()->GetRepeatedMessage(list, services, i);
      names.push_back(service.GetReflection()->GetString(
          service, service.GetDescriptor()->FindFieldByName("name")));
    }
    return names;
  }

  // The service's descriptor, built from the files reflection sends for it
  // (file_containing_symbol) and for their imports (file_by_filename), with
  // every method's request and response type resolved. NOT_FOUND with the
  // server's error when reflection cannot describe it. The descriptor lives
  // as long as this client.
  absl::StatusOr<const google::protobuf::ServiceDescriptor*> Describe(
      const std::string& service) {
    absl::Status added = AddFiles("file_containing_symbol", service);
    if (!added.ok()) return added;
    // Imports the server did not send with it.
    for (bool more = true; more;) {
      more = false;
      for (const std::string& file : Missing()) {
        if (absl::Status s = AddFiles("file_by_filename", file); !s.ok()) {
          return s;
        }
        more = true;
      }
    }
    // A fresh pool sees every file added so far; the older ones stay alive
    // for the descriptors they gave out.
    pools_.push_back(
        std::make_unique<google::protobuf::DescriptorPool>(&database_));
    const google::protobuf::ServiceDescriptor* descriptor =
        pools_.back()->FindServiceByName(service);
    if (descriptor == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("the files reflection sent do not build ", service));
    }
    return descriptor;
  }

 private:
  static const google::protobuf::Message& Sub(
      const google::protobuf::Message& message, const char* field) {
    return message.GetReflection()->GetMessage(
        message, message.GetDescriptor()->FindFieldByName(field));
  }

  // One request with string field `field` = `value`; the response, or the
  // server's error_response as NOT_FOUND.
  absl::StatusOr<std::unique_ptr<google::protobuf::Message>> Ask(
      const char* field, const std::string& value) {
    const google::protobuf::DescriptorPool* generated =
        google::protobuf::DescriptorPool::generated_pool();
    const google::protobuf::Descriptor* request_type =
        generated->FindMessageTypeByName(
            "grpc.reflection.v1alpha.ServerReflectionRequest");
    const google::protobuf::Descriptor* response_type =
        generated->FindMessageTypeByName(
            "grpc.reflection.v1alpha.ServerReflectionResponse");
    if (request_type == nullptr || response_type == nullptr) {
      return absl::InternalError(
          "the reflection messages are not in the generated pool (is "
          "libgrpc++_reflection linked?)");
    }
    google::protobuf::MessageFactory* factory =
        google::protobuf::MessageFactory::generated_factory();
    std::unique_ptr<google::protobuf::Message> request(
        factory->GetPrototype(request_type)->New());
    request->GetReflection()->SetString(
        request.get(), request_type->FindFieldByName(field), value);
    std::vector<std::string> responses;
    grpc::Status status =
        RawCall(channel_, kReflectionMethod, {request->SerializeAsString()},
                &responses, metadata_);
    if (!status.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          status.error_message());
    }
    if (responses.size() != 1) {
      return absl::InternalError(absl::StrCat(
          responses.size(), " reflection responses to one request"));
    }
    std::unique_ptr<google::protobuf::Message> response(
        factory->GetPrototype(response_type)->New());
    if (!response->ParseFromString(responses[0])) {
      return absl::InternalError("unparsable reflection response");
    }
    const google::protobuf::FieldDescriptor* error =
        response_type->FindFieldByName("error_response");
    if (response->GetReflection()->HasField(*response, error)) {
      const google::protobuf::Message& e = Sub(*response, "error_response");
      return absl::NotFoundError(absl::StrCat(
          "reflection: ", field, " ", value, ": ",
          e.GetReflection()->GetString(
              e, e.GetDescriptor()->FindFieldByName("error_message"))));
    }
    return response;
  }

  // Asks for files and adds the ones not seen yet to the database.
  absl::Status AddFiles(const char* field, const std::string& value) {
    absl::StatusOr<std::unique_ptr<google::protobuf::Message>> response =
        Ask(field, value);
    if (!response.ok()) return response.status();
    const google::protobuf::Message& files =
        Sub(**response, "file_descriptor_response");
    const google::protobuf::FieldDescriptor* protos =
        files.GetDescriptor()->FindFieldByName("file_descriptor_proto");
    for (int i = 0; i < files.GetReflection()->FieldSize(files, protos); ++i) {
      google::protobuf::FileDescriptorProto file;
      if (!file.ParseFromString(
              files.GetReflection()->GetRepeatedString(files, protos, i))) {
        return absl::InternalError("unparsable FileDescriptorProto");
      }
      if (!files_.insert(file.name()).second) continue;
      for (const std::string& dependency : file.dependency()) {
        wanted_.push_back(dependency);
      }
      database_.Add(file);
    }
    return absl::OkStatus();
  }

  std::vector<std::string> Missing() {
    std::vector<std::string> missing;
    for (const std::string& file : wanted_) {
      if (!files_.contains(file)) missing.push_back(file);
    }
    wanted_.clear();
    return missing;
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::vector<std::pair<std::string, std::string>> metadata_;
  google::protobuf::SimpleDescriptorDatabase database_;
  absl::flat_hash_set<std::string> files_;
  std::vector<std::string> wanted_;
  std::vector<std::unique_ptr<google::protobuf::DescriptorPool>> pools_;
};

}  // namespace attnserve::testing

#endif  // ATTNSERVE_TESTS_REFLECTION_TESTING_H_
