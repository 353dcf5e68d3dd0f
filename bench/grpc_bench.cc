// attnserve through gRPC: the client side of the benchmark.
//
//   grpc_bench --target=127.0.0.1:PORT --worker
//       Waits for the server, replies one JSON line with its GetModelInfo,
//       then answers one JSON line per stdin command (bench/run.py drives it):
//         run SHAPE ITERS ATTN   times ITERS unary Encode calls of a shape from
//                                bench_common.h, CLS pooled output only; ATTN
//                                >= 0 also asks for that layer's attention
//         check PATH             hidden states of the check batch against an
//                                encoder_bench dump (max abs diff, cosine)
//         quit
// One synchronous call at a time: this measures a request's latency through
// the whole server (decode, validate, queue, batch, run, convert, encode) on
// loopback, to compare with the in-process Forward of the same batch.
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "bench/bench_common.h"
#include "grpcpp/grpcpp.h"
#include "proto/attnserve.grpc.pb.h"

namespace attnserve::bench {
namespace {

using Clock = std::chrono::steady_clock;
namespace pb = attnserve::v1;

class GrpcWorker {
 public:
  explicit GrpcWorker(const std::string& target) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    channel_ = grpc::CreateCustomChannel(
        target, grpc::InsecureChannelCredentials(), args);
    stub_ = pb::Encoder::NewStub(channel_);
  }

  // Waits up to `seconds` for the server, then asks for its model.
  bool Connect(int seconds) {
    if (!channel_->WaitForConnected(std::chrono::system_clock::now() +
                                    std::chrono::seconds(seconds))) {
      ReplyError("server not reachable");
      return false;
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    pb::GetModelInfoRequest req;
    pb::ModelInfo info;
    grpc::Status s = stub_->GetModelInfo(&ctx, req, &info);
    if (!s.ok()) {
      ReplyError("GetModelInfo: " + s.error_message());
      return false;
    }
    Reply(absl::StrFormat(
        "{\"ok\":true,\"model\":%s,\"precision\":%s,\"weight_dtype\":%s}",
        JsonString(info.name()), JsonString(info.precision()),
        JsonString(info.weight_dtype())));
    return true;
  }

  bool Handle(const std::string& line) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    if (cmd.empty()) return true;
    if (cmd == "quit") return false;
    if (cmd == "run") {
      std::string shape;
      int iters = 1, attn = -1;
      in >> shape >> iters >> attn;
      Run(shape, iters, attn);
    } else if (cmd == "check") {
      std::string path;
      in >> path;
      Check(path);
    } else {
      ReplyError("unknown command: " + line);
    }
    return true;
  }

 private:
  grpc::Status Call(const pb::EncodeRequest& req, pb::EncodeResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(300));
    return stub_->Encode(&ctx, req, resp);
  }

  void Run(const std::string& shape_name, int iters, int attn) {
    const Shape* shape = FindShape(shape_name);
    if (shape == nullptr) return ReplyError("unknown shape " + shape_name);
    pb::EncodeRequest req;
    for (size_t b = 0; b < shape->lengths.size(); ++b) {
      pb::Sequence* s = req.add_sequences();
      const int len = shape->lengths[b];
      for (int t = 0; t < len; ++t) s->add_token_ids(TokenId(b, t, len));
    }
    req.set_pooling(pb::POOLING_CLS);
    if (attn >= 0) req.mutable_attention()->add_layers(attn);
    std::vector<double> ms;
    for (int i = 0; i < iters; ++i) {
      pb::EncodeResponse resp;
      auto t0 = Clock::now();
      grpc::Status s = Call(req, &resp);
      const double t =
          std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      if (!s.ok()) {
        return ReplyError(absl::StrFormat("Encode: %d %s", s.error_code(),
                                          s.error_message()));
      }
      if (resp.results_size() != int(shape->lengths.size())) {
        return ReplyError("wrong number of results");
      }
      ms.push_back(t);
    }
    Reply("{\"ok\":true,\"ms\":" + JsonTimes(ms) + "}");
  }

  void Check(const std::string& path) {
    std::ifstream f(path + ".hidden.f32", std::ios::binary | std::ios::ate);
    if (!f) return ReplyError("cannot read " + path + ".hidden.f32");
    std::vector<float> ref(size_t(f.tellg()) / 4);
    f.seekg(0);
    f.read(reinterpret_cast<char*>(ref.data()), ref.size() * 4);
    pb::EncodeRequest req;
    for (const auto& ids : CheckBatch()) {
      pb::Sequence* s = req.add_sequences();
      for (int32_t id : ids) s->add_token_ids(id);
    }
    req.set_return_hidden_states(true);
    req.set_pooling(pb::POOLING_NONE);
    pb::EncodeResponse resp;
    grpc::Status s = Call(req, &resp);
    if (!s.ok()) return ReplyError("Encode: " + s.error_message());
    std::vector<float> got;
    for (const pb::SequenceResult& r : resp.results()) {
      const std::string& d = r.hidden_states().data();
      if (r.hidden_states().dtype() != pb::FLOAT32 && !d.empty() &&
          r.hidden_states().dtype() != pb::DATA_TYPE_UNSPECIFIED) {
        return ReplyError("hidden states not float32");
      }
      const size_t n = got.size();
      got.resize(n + d.size() / 4);
      std::memcpy(&got[n], d.data(), d.size());
    }
    if (got.size() != ref.size()) {
      return ReplyError(absl::StrFormat("got %d hidden values, dump has %d",
                                        got.size(), ref.size()));
    }
    double dot = 0, na = 0, nb = 0, max_d = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      dot += double(got[i]) * ref[i];
      na += double(got[i]) * got[i];
      nb += double(ref[i]) * ref[i];
      max_d = std::max(max_d, double(std::abs(got[i] - ref[i])));
    }
    Reply(absl::StrFormat(
        "{\"ok\":true,\"max_abs_hidden\":%.6g,\"cosine\":%.9f}", max_d,
        dot / std::sqrt(na * nb)));
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::Encoder::Stub> stub_;
};

int Main(int argc, char** argv) {
  std::string target;
  int wait_s = 120;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--target=", 0) == 0) {
      target = a.substr(9);
    } else if (a.rfind("--wait=", 0) == 0) {
      wait_s = std::stoi(a.substr(7));
    } else if (a != "--worker") {
      std::fprintf(stderr, "usage: grpc_bench --target=HOST:PORT --worker\n");
      return 2;
    }
  }
  if (target.empty()) return 2;
  GrpcWorker w(target);
  if (!w.Connect(wait_s)) return 1;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (!w.Handle(line)) break;
  }
  return 0;
}

}  // namespace
}  // namespace attnserve::bench

int main(int argc, char** argv) { return attnserve::bench::Main(argc, argv); }
