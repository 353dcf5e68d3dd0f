// Scale-out, the way a user runs it: two real attnserve processes on
// 127.0.0.1 and attnctl's channel (client/channel.h) with round_robin over
// both. Both replicas get calls; then one gets SIGTERM under steady load and
// no call fails: its health turns NOT_SERVING at once (the client's health
// checking takes it out of the rotation), it keeps accepting for
// --drain_delay, answers what it accepted, and exits 0.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "client/channel.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/codegen/client_unary_call.h"
#include "gtest/gtest.h"
#include "proto/attnserve.grpc.pb.h"
#include "tests/golden.h"
#include "tests/server_process.h"

namespace attnserve {
namespace {

namespace fs = std::filesystem;
using ::attnserve::testing::DataPath;
using ::attnserve::testing::ServerProcess;

// A copy of tiny_bert under the name `name`: the served model's name is its
// directory's, so GetModelInfo says which replica answered.
std::string ModelNamed(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / name;
  fs::create_directories(dir);
  for (const auto& entry : fs::directory_iterator(DataPath("tiny_bert"))) {
    fs::copy_file(entry.path(), dir / entry.path().filename(),
                  fs::copy_options::overwrite_existing);
  }
  return dir.string();
}

// grpc.health.v1.Health/Check for the overall status: 1 SERVING, 2
// NOT_SERVING, -1 when the call fails. (HealthCheckRequest{} is empty;
// HealthCheckResponse{status} is field 1, a varint.)
int HealthStatus(const std::string& address) {
  auto channel =
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  grpc::internal::RpcMethod method("/grpc.health.v1.Health/Check",
                                   grpc::internal::RpcMethod::NORMAL_RPC);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
  grpc::Slice empty("");
  grpc::ByteBuffer request(&empty, 1), response;
  const grpc::Status status =
      grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
          channel.get(), method, &context, request, &response);
  if (!status.ok()) return -1;
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return -1;
  std::string bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  if (bytes.size() != 2 || bytes[0] != 0x08) return -1;
  return bytes[1];
}

TEST(ScaleOutTest, RoundRobinReachesBothAndADrainingReplicaLosesNoCall) {
  ServerProcess a, b;
  const std::vector<std::string> flags = {"--drain_delay=2s",
                                          "--shutdown_grace=30s"};
  auto with_model = [&](const std::string& name) {
    std::vector<std::string> f = flags;
    f.push_back("--model=" + ModelNamed(name));
    return f;
  };
  ASSERT_TRUE(a.Start(ATTNSERVE_BIN, with_model("replica_a")));
  ASSERT_TRUE(b.Start(ATTNSERVE_BIN, with_model("replica_b")));
  EXPECT_EQ(HealthStatus(a.address()), 1);

  client::ChannelOptions options;
  options.target = "ipv4:" + a.address() + "," + b.address();
  auto stub = v1::Encoder::NewStub(client::Connect(options));

  std::mutex mu;
  std::map<std::string, int> answered_by;  // model name → GetModelInfo calls
  std::map<std::string, int> failures;     // status code → count
  int encodes = 0;
  auto call = [&](bool encode) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(20));
    if (encode) {
      v1::EncodeRequest request;
      request.add_sequences()->set_text("the cat sat on the mat");
      v1::EncodeResponse response;
      const grpc::Status s = stub->Encode(&context, request, &response);
      std::lock_guard<std::mutex> lock(mu);
      if (s.ok()) {
        ++encodes;
      } else {
        ++failures[absl::StrCat(s.error_code(), " ", s.error_message())];
      }
      return;
    }
    v1::ModelInfo info;
    const grpc::Status s =
        stub->GetModelInfo(&context, v1::GetModelInfoRequest(), &info);
    std::lock_guard<std::mutex> lock(mu);
    if (s.ok()) {
      ++answered_by[info.name()];
    } else {
      ++failures[absl::StrCat(s.error_code(), " ", s.error_message())];
    }
  };

  // round_robin sends only to the subchannels that are READY: until the
  // second connection is up (slow on a loaded machine) every call goes to
  // the first. Wait until both have answered (bounded), then count.
  const auto connect_by =
      std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while ((answered_by["replica_a"] == 0 || answered_by["replica_b"] == 0) &&
         std::chrono::steady_clock::now() < connect_by) {
    call(false);
  }
  ASSERT_GT(answered_by["replica_a"], 0);
  ASSERT_GT(answered_by["replica_b"], 0);
  answered_by.clear();
  // Round robin: both replicas answer.
  for (int i = 0; i < 40; ++i) call(false);
  EXPECT_GE(answered_by["replica_a"], 10);
  EXPECT_GE(answered_by["replica_b"], 10);
  answered_by.clear();

  // Steady load from 4 clients; SIGTERM replica A after 1 s.
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; !stop; ++i) call((i + c) % 2 == 0);
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const auto term = std::chrono::steady_clock::now();
  a.Signal(SIGTERM);
  // During the drain delay A still accepts calls but says NOT_SERVING.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(HealthStatus(a.address()), 2) << a.log();
  {
    std::lock_guard<std::mutex> lock(mu);
    answered_by.clear();
  }
  // Past the drain delay A stops accepting and exits; load goes on.
  EXPECT_EQ(a.Wait(40), 0) << a.log();
  // Health-checking clients hold a Watch stream open; the server must not
  // wait out its whole grace for them: the drain delay plus a little.
  const double exit_s = std::chrono::duration<double>(
                            std::chrono::steady_clock::now() - term)
                            .count();
  EXPECT_LT(exit_s, 2 + 10) << a.log();  // far below the 30 s grace
  std::this_thread::sleep_for(std::chrono::seconds(1));
  stop = true;
  for (std::thread& t : clients) t.join();

  std::string failed;
  for (const auto& [what, n] : failures) {
    failed += absl::StrCat(n, " × ", what, "\n");
  }
  EXPECT_TRUE(failures.empty()) << failed;
  EXPECT_GT(encodes, 20);
  // After the drain began, calls went to B.
  EXPECT_EQ(answered_by["replica_a"], 0);
  EXPECT_GT(answered_by["replica_b"], 5);
  EXPECT_NE(a.log().find("health NOT_SERVING"), std::string::npos) << a.log();
  const auto int_at = std::chrono::steady_clock::now();
  b.Signal(SIGINT);
  b.Signal(SIGINT);  // a second signal ends the drain delay early
  EXPECT_EQ(b.Wait(40), 0) << b.log();
  const double b_exit_s = std::chrono::duration<double>(
                              std::chrono::steady_clock::now() - int_at)
                              .count();
  EXPECT_LT(b_exit_s, 10) << b.log();  // far below the 30 s grace
}

}  // namespace
}  // namespace attnserve
