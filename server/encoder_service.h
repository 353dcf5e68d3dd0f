// The attnserve.v1.Encoder gRPC service: thin callback handlers that validate
// a request, hand it to the Batcher and return. No handler blocks or runs the
// model; Encode is answered from the inference thread when its pass is done.
//
// Threads: handlers run on gRPC's callback threads; the Batcher's done
// callbacks (conversion to proto + Finish) on the inference thread.
#ifndef ATTNSERVE_SERVER_ENCODER_SERVICE_H_
#define ATTNSERVE_SERVER_ENCODER_SERVICE_H_

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "model/encoder.h"
#include "proto/attnserve.grpc.pb.h"
#include "server/batcher.h"
#include "server/options.h"

namespace attnserve {

// Fills the proto ModelInfo from the loader's.
void ToProtoModelInfo(const ModelInfo& info, v1::ModelInfo* out);

class EncoderService final : public v1::Encoder::CallbackService {
 public:
  // `info` and `batcher` must outlive the service.
  EncoderService(const ModelInfo& info, const ServerOptions& options,
                 Batcher* batcher);

  grpc::ServerUnaryReactor* Encode(grpc::CallbackServerContext* context,
                                   const v1::EncodeRequest* request,
                                   v1::EncodeResponse* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const v1::GetModelInfoRequest* request,
                                         v1::ModelInfo* response) override;
  // Later issues; UNIMPLEMENTED with a message saying so.
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context,
                                     const v1::TokenizeRequest* request,
                                     v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* RankHeads(grpc::CallbackServerContext* context,
                                      const v1::RankHeadsRequest* request,
                                      v1::RankHeadsResponse* response) override;

 private:
  const ModelInfo& info_;
  const RequestLimits limits_;
  const absl::Duration default_deadline_;
  Batcher* const batcher_;
};

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_ENCODER_SERVICE_H_
