#include "server/call_record.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace attnserve {

std::string Milliseconds(absl::Duration d) {
  return absl::StrFormat("%.3f", absl::ToDoubleMilliseconds(d));
}

void AddTimingMetadata(const CallWork& work, grpc::ServerContextBase* context) {
  context->AddInitialMetadata("x-total-time", Milliseconds(work.total));
  context->AddInitialMetadata("x-queue-time", Milliseconds(work.queue));
  context->AddInitialMetadata("x-tokenization-time",
                              Milliseconds(work.tokenization));
  context->AddInitialMetadata("x-inference-time", Milliseconds(work.inference));
  context->AddInitialMetadata("x-compute-tokens", absl::StrCat(work.tokens));
}

}  // namespace attnserve
