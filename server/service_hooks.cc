#include "server/service_hooks.h"

#include "absl/time/clock.h"

namespace attnserve {

void ServiceHooks::FinishWithWork(grpc::CallbackServerContext* context,
                                  grpc::ServerUnaryReactor* reactor,
                                  CallWork work, absl::Time start,
                                  const grpc::Status& status) const {
  work.total = absl::Now() - start;
  AddTimingMetadata(work, context);
  if (work_board != nullptr) work_board->Put(context, work);
  reactor->Finish(status);
}

}  // namespace attnserve
