// Calls any method by its path with serialized messages, the way a generic
// client (grpcurl, buf curl) does: no generated stub needed. Used to call
// the health and reflection services and paths the server does not serve.
// Header-only; every call has a deadline.
#ifndef ATTNSERVE_TESTS_RAW_CALL_TESTING_H_
#define ATTNSERVE_TESTS_RAW_CALL_TESTING_H_

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "grpc/health/v1/health.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"

namespace attnserve::testing {

inline grpc::ByteBuffer ToByteBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

inline std::string FromByteBuffer(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

// One stream on `channel` to `method` ("/package.Service/Method"): sends each
// of `requests`, half-closes, reads every response into `responses`, and
// returns the call's status. Works for unary methods too (one request, one
// response on the wire). `metadata` is sent with the call.
inline grpc::Status RawCall(
    const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
    const std::vector<std::string>& requests,
    std::vector<std::string>* responses = nullptr,
    const std::vector<std::pair<std::string, std::string>>& metadata = {},
    int deadline_seconds = 30) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(deadline_seconds));
  for (const auto& [key, value] : metadata) context.AddMetadata(key, value);
  grpc::CompletionQueue cq;
  // Each step waits for its own tag; a failed step ends the exchange and the
  // status tells why.
  auto step = [&cq](void* tag) {
    void* got = nullptr;
    bool ok = false;
    while (cq.Next(&got, &ok)) {
      if (got == tag) return ok;
    }
    return false;
  };
  int tags[8];
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
      stub.PrepareCall(&context, method, &cq);
  call->StartCall(&tags[0]);
  if (step(&tags[0])) {
    bool writing = true;
    for (const std::string& request : requests) {
      call->Write(ToByteBuffer(request), &tags[1]);
      if (!step(&tags[1])) {
        writing = false;
        break;
      }
    }
    if (writing) {
      call->WritesDone(&tags[2]);
      step(&tags[2]);
    }
    for (;;) {
      grpc::ByteBuffer response;
      call->Read(&response, &tags[3]);
      if (!step(&tags[3])) break;
      if (responses != nullptr) responses->push_back(FromByteBuffer(response));
    }
  }
  grpc::Status status;
  call->Finish(&status, &tags[4]);
  step(&tags[4]);
  cq.Shutdown();
  void* ignored_tag;
  bool ignored_ok;
  while (cq.Next(&ignored_tag, &ignored_ok)) {
  }
  return status;
}

// The health service's Check for `service` ("" = the server as a whole).
inline grpc::Status HealthCheck(
    const std::shared_ptr<grpc::Channel>& channel, const std::string& service,
    grpc::health::v1::HealthCheckResponse* response = nullptr) {
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  std::vector<std::string> responses;
  grpc::Status status = RawCall(channel, "/grpc.health.v1.Health/Check",
                                {request.SerializeAsString()}, &responses);
  if (response != nullptr && !responses.empty()) {
    response->ParseFromString(responses[0]);
  }
  return status;
}

}  // namespace attnserve::testing

#endif  // ATTNSERVE_TESTS_RAW_CALL_TESTING_H_
