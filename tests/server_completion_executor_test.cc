// server/completion_executor: order, exactly-once, draining at shutdown, the
// pending-bytes bound, and work posted from the worker itself. Every wait is
// bounded, and none is a guess at how long something takes: each waits for
// the state it needs (a notification, or a counter the executor keeps).
#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/completion_executor.h"

namespace attnserve {
namespace {

using ::testing::ElementsAre;

constexpr absl::Duration kWait = absl::Seconds(20);

TEST(ServerCompletionExecutorTest, RunsEverythingOnceInOrderOffTheCaller) {
  CompletionExecutor executor(1 << 20);
  std::vector<int> order;  // written by the worker only
  std::atomic<int> on_caller{0};
  const std::thread::id caller = std::this_thread::get_id();
  for (int i = 0; i < 100; ++i) {
    executor.Post([&, i] {
      if (std::this_thread::get_id() == caller) ++on_caller;
      order.push_back(i);
    });
  }
  executor.Shutdown();  // drains
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
  EXPECT_EQ(on_caller.load(), 0);
  EXPECT_EQ(executor.stats().run, 100);
  EXPECT_EQ(executor.stats().ran_inline, 0);
}

TEST(ServerCompletionExecutorTest, AfterShutdownWorkRunsInline) {
  CompletionExecutor executor(1 << 20);
  executor.Shutdown();
  executor.Shutdown();  // idempotent
  bool ran = false;
  executor.Post([&] { ran = true; });
  EXPECT_TRUE(ran);  // no work is ever lost
  EXPECT_EQ(executor.stats().ran_inline, 1);
}

// Polls `condition` (every millisecond, at most kWait): for states that have
// no notification of their own. Returns whether it became true.
template <typename Condition>
bool WaitUntil(Condition condition) {
  const absl::Time give_up = absl::Now() + kWait;
  while (!condition()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

TEST(ServerCompletionExecutorTest, ShutdownRunsWhatIsQueued) {
  CompletionExecutor executor(1 << 20);
  absl::Notification release;
  std::vector<int> done;
  executor.Post([&] {
    release.WaitForNotificationWithTimeout(kWait);
    done.push_back(0);
  });
  for (int i = 1; i < 4; ++i) executor.Post([&, i] { done.push_back(i); });
  std::thread stopper([&] { executor.Shutdown(); });
  // Release the worker only once Shutdown has begun: from then on a Post
  // runs inline, so post no-op probes until one does.
  const bool stopping = WaitUntil([&] {
    executor.Post([] {});
    return executor.stats().ran_inline > 0;
  });
  release.Notify();
  stopper.join();
  EXPECT_TRUE(stopping);
  EXPECT_THAT(done, ElementsAre(0, 1, 2, 3));
}

TEST(ServerCompletionExecutorTest, PostWaitsWhilePendingBytesAreOverTheBound) {
  CompletionExecutor executor(/*max_pending_bytes=*/100);
  absl::Notification started, release;
  // The worker is busy with the first item; the second waits in the queue.
  executor.Post([&] {
    started.Notify();
    release.WaitForNotificationWithTimeout(kWait);
  });
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(kWait));
  executor.Post([] {}, 80);  // queue was empty: admitted however heavy
  absl::Notification third_posted;
  std::thread producer([&] {
    executor.Post([] {}, 80);  // 80 + 80 > 100: waits for the worker
    third_posted.Notify();
  });
  // The producer is seen blocked on the bound (not merely not yet run), and
  // it stays blocked while the worker is busy.
  EXPECT_TRUE(WaitUntil([&] { return executor.stats().waited == 1; }));
  EXPECT_FALSE(third_posted.HasBeenNotified());
  release.Notify();
  EXPECT_TRUE(third_posted.WaitForNotificationWithTimeout(kWait));
  producer.join();
  executor.Shutdown();
  EXPECT_EQ(executor.stats().run, 3);
  EXPECT_EQ(executor.stats().waited, 1);
}

TEST(ServerCompletionExecutorTest, PostFromTheWorkerRunsInlineWithoutWaiting) {
  CompletionExecutor executor(/*max_pending_bytes=*/1);
  absl::Notification done;
  std::vector<int> order;
  executor.Post(
      [&] {
        order.push_back(1);
        // Over the bound and from the worker: must not wait on itself.
        executor.Post([&] { order.push_back(2); }, 1000);
        order.push_back(3);
        done.Notify();
      },
      1000);
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(kWait));
  executor.Shutdown();
  EXPECT_THAT(order, ElementsAre(1, 2, 3));
  EXPECT_EQ(executor.stats().ran_inline, 1);
}

}  // namespace
}  // namespace attnserve
