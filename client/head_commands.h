// attnctl's commands about heads: `heads` (statistics and RankHeads) and
// `prune-curve` (what removing heads costs), dispatched by RunCommand, and
// the ranking and curve that `attention --rank` shares with them.
#ifndef ATTNSERVE_CLIENT_HEAD_COMMANDS_H_
#define ATTNSERVE_CLIENT_HEAD_COMMANDS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/commands.h"
#include "client/prune_curve.h"
#include "proto/attnserve.grpc.pb.h"

namespace attnserve::client {

// RankHeads on the texts and, when `with_curve`, the pruning curve: the k
// least important heads masked for k = 0, step, …, all, one batched Encode
// per step. Shared by prune-curve and attention (--rank).
struct CurveResult {
  std::string model;
  int layers = 0, heads = 0;      // the model's, before pruning
  std::vector<HeadScore> scores;  // as RankHeads ranked them
  std::vector<CurvePoint> curve;
  int step = 1;
};

absl::StatusOr<CurveResult> RankAndCurve(const Flags& f,
                                         v1::Encoder::StubInterface& stub,
                                         bool with_curve);

absl::Status Heads(const Flags& f, v1::Encoder::StubInterface& stub,
                   std::string* out);
absl::Status PruneCurve(const Flags& f, v1::Encoder::StubInterface& stub,
                        std::string* out);

}  // namespace attnserve::client

#endif  // ATTNSERVE_CLIENT_HEAD_COMMANDS_H_
