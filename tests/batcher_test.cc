// Batcher with a fake forward function: merging, the token budget, the
// bounded queue, deadlines, cancellation, failures and shutdown. Deterministic:
// Pause() holds the inference thread while requests queue, and Shutdown()
// joins it before results are read.
#include "server/batcher.h"

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace attnserve {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Output i carries hidden = {first token id of task i, number of tasks in
// the pass}, so a test sees which task each answer came from and how it was
// batched.
class FakeModel {
 public:
  absl::StatusOr<std::vector<SequenceOutput>> Forward(
      absl::Span<const SequenceTask> tasks) {
    absl::MutexLock lock(&mu_);
    pass_sizes_.push_back(static_cast<int>(tasks.size()));
    std::vector<SequenceOutput> out;
    for (const SequenceTask& task : tasks) {
      if (task.token_ids[0] < 0) {
        return absl::InvalidArgumentError("negative token id");
      }
      if (task.token_ids[0] == 666) throw std::runtime_error("boom");
      SequenceOutput o;
      o.hidden = {static_cast<float>(task.token_ids[0]),
                  static_cast<float>(tasks.size())};
      out.push_back(std::move(o));
    }
    if (drop_one_) out.pop_back();
    return out;
  }
  ForwardFn fn() {
    return [this](absl::Span<const SequenceTask> t) { return Forward(t); };
  }
  std::vector<int> pass_sizes() {
    absl::MutexLock lock(&mu_);
    return pass_sizes_;
  }
  void set_drop_one() { drop_one_ = true; }

 private:
  absl::Mutex mu_;
  std::vector<int> pass_sizes_ ABSL_GUARDED_BY(mu_);
  bool drop_one_ = false;
};

// Collects the answer of one request.
struct Answer {
  absl::Mutex mu;
  int calls = 0;
  absl::StatusOr<std::vector<SequenceOutput>> result =
      absl::UnknownError("not answered");
  // Waits (bounded) for the answer: for tests whose requests are submitted
  // during a pass, so Shutdown() must wait for them.
  bool WaitAnswered() {
    absl::MutexLock lock(&mu);
    return mu.AwaitWithTimeout(absl::Condition(
                                   +[](int* n) { return *n > 0; }, &calls),
                               absl::Seconds(30));
  }
};

// A request with one task per first-token id, each `length` tokens long.
Batcher::Request MakeRequest(std::vector<int> first_ids, Answer* answer,
                             int length = 3) {
  Batcher::Request r;
  for (int id : first_ids) {
    SequenceTask task;
    task.token_ids.assign(length, 1);
    task.token_ids[0] = id;
    r.tasks.push_back(std::move(task));
  }
  r.done = [answer](absl::StatusOr<std::vector<SequenceOutput>> out) {
    absl::MutexLock lock(&answer->mu);
    ++answer->calls;
    answer->result = std::move(out);
  };
  return r;
}

std::vector<float> FirstIds(const Answer& a) {
  std::vector<float> ids;
  for (const SequenceOutput& o : *a.result) ids.push_back(o.hidden[0]);
  return ids;
}

TEST(BatcherTest, AnswersOneRequest) {
  FakeModel model;
  Batcher batcher({}, model.fn());
  Answer a;
  ASSERT_TRUE(batcher.Submit(MakeRequest({7, 8}, &a)).ok());
  batcher.Shutdown();
  EXPECT_EQ(a.calls, 1);
  ASSERT_TRUE(a.result.ok()) << a.result.status();
  EXPECT_THAT(FirstIds(a), ElementsAre(7, 8));
  EXPECT_EQ(batcher.stats().forward_passes, 1);
  EXPECT_EQ(batcher.stats().sequences_run, 2);
}

TEST(BatcherTest, MergesQueuedRequestsIntoOnePass) {
  FakeModel model;
  Batcher batcher({}, model.fn());
  batcher.Pause();
  Answer a, b, c;
  ASSERT_TRUE(batcher.Submit(MakeRequest({1}, &a)).ok());
  ASSERT_TRUE(batcher.Submit(MakeRequest({2, 3}, &b)).ok());
  ASSERT_TRUE(batcher.Submit(MakeRequest({4}, &c)).ok());
  EXPECT_EQ(batcher.queued(), 3);
  batcher.Resume();
  batcher.Shutdown();
  EXPECT_THAT(model.pass_sizes(), ElementsAre(4));
  EXPECT_THAT(FirstIds(a), ElementsAre(1));
  EXPECT_THAT(FirstIds(b), ElementsAre(2, 3));
  EXPECT_THAT(FirstIds(c), ElementsAre(4));
  const Batcher::Stats stats = batcher.stats();
  EXPECT_EQ(stats.forward_passes, 1);
  EXPECT_EQ(stats.requests_run, 3);
  EXPECT_EQ(stats.max_requests_in_pass, 3);
}

TEST(BatcherTest, KeepsToTheTokenBudgetInArrivalOrder) {
  FakeModel model;
  BatcherOptions options;
  options.max_batch_tokens = 8;
  Batcher batcher(options, model.fn());
  batcher.Pause();
  Answer a, b, c, d;
  ASSERT_TRUE(batcher.Submit(MakeRequest({1}, &a, 4)).ok());
  ASSERT_TRUE(batcher.Submit(MakeRequest({2}, &b, 4)).ok());   // fits: 8
  ASSERT_TRUE(batcher.Submit(MakeRequest({3}, &c, 20)).ok());  // over alone
  ASSERT_TRUE(batcher.Submit(MakeRequest({4}, &d, 1)).ok());
  batcher.Resume();
  batcher.Shutdown();
  // {a, b}, then c alone although it is over the budget, then d.
  EXPECT_THAT(model.pass_sizes(), ElementsAre(2, 1, 1));
  for (Answer* x : {&a, &b, &c, &d}) {
    EXPECT_EQ(x->calls, 1);
    EXPECT_TRUE(x->result.ok());
  }
}

TEST(BatcherTest, FullQueueIsResourceExhausted) {
  FakeModel model;
  BatcherOptions options;
  options.max_queue_requests = 2;
  Batcher batcher(options, model.fn());
  batcher.Pause();
  Answer a, b, c;
  ASSERT_TRUE(batcher.Submit(MakeRequest({1}, &a)).ok());
  ASSERT_TRUE(batcher.Submit(MakeRequest({2}, &b)).ok());
  absl::Status refused = batcher.Submit(MakeRequest({3}, &c));
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.message(), HasSubstr("queue is full"));
  batcher.Resume();
  batcher.Shutdown();
  EXPECT_EQ(a.calls, 1);
  EXPECT_EQ(b.calls, 1);
  EXPECT_EQ(c.calls, 0);  // refused requests are never called back
  EXPECT_EQ(batcher.stats().rejected_queue_full, 1);
}

TEST(BatcherTest, DropsExpiredAndCancelledRequestsWithoutRunningThem) {
  FakeModel model;
  Batcher batcher({}, model.fn());
  batcher.Pause();
  Answer expired, cancelled, fine;
  Batcher::Request r1 = MakeRequest({1}, &expired);
  r1.deadline = absl::Now() - absl::Seconds(1);
  Batcher::Request r2 = MakeRequest({2}, &cancelled);
  r2.is_cancelled = [] { return true; };
  Batcher::Request r3 = MakeRequest({3}, &fine);
  r3.is_cancelled = [] { return false; };
  r3.deadline = absl::Now() + absl::Hours(1);
  ASSERT_TRUE(batcher.Submit(std::move(r1)).ok());
  ASSERT_TRUE(batcher.Submit(std::move(r2)).ok());
  ASSERT_TRUE(batcher.Submit(std::move(r3)).ok());
  batcher.Resume();
  batcher.Shutdown();
  EXPECT_EQ(expired.result.status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(cancelled.result.status().code(), absl::StatusCode::kCancelled);
  ASSERT_TRUE(fine.result.ok());
  EXPECT_THAT(model.pass_sizes(), ElementsAre(1));
  EXPECT_EQ(batcher.stats().expired, 1);
  EXPECT_EQ(batcher.stats().cancelled, 1);
}

TEST(BatcherTest, FailedMergedPassIsRetriedPerRequest) {
  FakeModel model;
  Batcher batcher({}, model.fn());
  batcher.Pause();
  Answer good1, bad, good2;
  ASSERT_TRUE(batcher.Submit(MakeRequest({1}, &good1)).ok());
  ASSERT_TRUE(batcher.Submit(MakeRequest({-1}, &bad)).ok());
  ASSERT_TRUE(batcher.Submit(MakeRequest({2}, &good2)).ok());
  batcher.Resume();
  batcher.Shutdown();
  EXPECT_THAT(model.pass_sizes(), ElementsAre(3, 1, 1, 1));
  ASSERT_TRUE(good1.result.ok());
  EXPECT_THAT(FirstIds(good1), ElementsAre(1));
  EXPECT_EQ(bad.result.status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(good2.result.ok());
  EXPECT_THAT(FirstIds(good2), ElementsAre(2));
}

TEST(BatcherTest, ExceptionsAndWrongOutputCountsBecomeInternal) {
  FakeModel model;
  Batcher batcher({}, model.fn());
  Answer thrown;
  ASSERT_TRUE(batcher.Submit(MakeRequest({666}, &thrown)).ok());
  batcher.Shutdown();
  EXPECT_EQ(thrown.result.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(thrown.result.status().message(), HasSubstr("boom"));

  FakeModel short_model;
  short_model.set_drop_one();
  Batcher batcher2({}, short_model.fn());
  Answer shorted;
  ASSERT_TRUE(batcher2.Submit(MakeRequest({1, 2}, &shorted)).ok());
  batcher2.Shutdown();
  EXPECT_EQ(shorted.result.status().code(), absl::StatusCode::kInternal);
}

TEST(BatcherTest, ShutdownAnswersEverythingAcceptedThenRefuses) {
  FakeModel model;
  BatcherOptions options;
  options.max_batch_tokens = 6;  // two 3-token requests per pass
  Batcher batcher(options, model.fn());
  batcher.Pause();
  std::vector<std::unique_ptr<Answer>> answers;
  for (int i = 0; i < 5; ++i) {
    answers.push_back(std::make_unique<Answer>());
    ASSERT_TRUE(batcher.Submit(MakeRequest({i}, answers.back().get())).ok());
  }
  batcher.Shutdown();  // resumes, drains, joins
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(answers[i]->calls, 1);
    ASSERT_TRUE(answers[i]->result.ok());
    EXPECT_THAT(FirstIds(*answers[i]), ElementsAre(i));
  }
  EXPECT_THAT(model.pass_sizes(), ElementsAre(2, 2, 1));
  Answer late;
  EXPECT_EQ(batcher.Submit(MakeRequest({9}, &late)).code(),
            absl::StatusCode::kUnavailable);
  batcher.Shutdown();  // idempotent
}

TEST(BatcherTest, RefusesMalformedRequests) {
  FakeModel model;
  Batcher batcher({}, model.fn());
  Batcher::Request no_tasks;
  no_tasks.done = [](absl::StatusOr<std::vector<SequenceOutput>>) {};
  EXPECT_EQ(batcher.Submit(std::move(no_tasks)).code(),
            absl::StatusCode::kInvalidArgument);
  Answer a;
  Batcher::Request no_callback = MakeRequest({1}, &a);
  no_callback.done = nullptr;
  EXPECT_EQ(batcher.Submit(std::move(no_callback)).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(BatcherTest, ManyThreadsSubmittingAllGetTheirOwnAnswers) {
  FakeModel model;
  BatcherOptions options;
  options.max_batch_tokens = 12;
  Batcher batcher(options, model.fn());
  constexpr int kThreads = 4, kPerThread = 25;
  std::vector<std::unique_ptr<Answer>> answers;
  for (int i = 0; i < kThreads * kPerThread; ++i) {
    answers.push_back(std::make_unique<Answer>());
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int id = t * kPerThread + i;
        ASSERT_TRUE(batcher.Submit(MakeRequest({id}, answers[id].get())).ok());
      }
    });
  }
  for (std::thread& th : threads) th.join();
  batcher.Shutdown();
  for (int id = 0; id < kThreads * kPerThread; ++id) {
    EXPECT_EQ(answers[id]->calls, 1);
    ASSERT_TRUE(answers[id]->result.ok());
    EXPECT_THAT(FirstIds(*answers[id]), ElementsAre(id));
  }
  EXPECT_EQ(batcher.stats().requests_run, kThreads * kPerThread);
}

// Several models: a batcher over one forward function per model that logs
// which model each pass ran, in order.
class PassLog {
 public:
  ForwardFn For(int model, FakeModel* fake) {
    return [this, model, fake](absl::Span<const SequenceTask> tasks) {
      {
        absl::MutexLock lock(&mu_);
        models_.push_back(model);
      }
      return fake->Forward(tasks);
    };
  }
  std::vector<int> models() {
    absl::MutexLock lock(&mu_);
    return models_;
  }

 private:
  absl::Mutex mu_;
  std::vector<int> models_ ABSL_GUARDED_BY(mu_);
};

Batcher::Request ForModel(int model, Batcher::Request r) {
  r.model = model;
  return r;
}

TEST(BatcherModelsTest, APassRunsOneModelsRequestsOnItsForward) {
  FakeModel a_model, b_model;
  PassLog log;
  Batcher batcher({}, {log.For(0, &a_model), log.For(1, &b_model)});
  batcher.Pause();
  Answer a1, b1, a2, b2;
  ASSERT_TRUE(batcher.Submit(ForModel(0, MakeRequest({1}, &a1))).ok());
  ASSERT_TRUE(batcher.Submit(ForModel(1, MakeRequest({2}, &b1))).ok());
  ASSERT_TRUE(batcher.Submit(ForModel(0, MakeRequest({3}, &a2))).ok());
  ASSERT_TRUE(batcher.Submit(ForModel(1, MakeRequest({4}, &b2))).ok());
  EXPECT_EQ(batcher.queued(), 4);
  EXPECT_EQ(batcher.queued(0), 2);
  EXPECT_EQ(batcher.queued(1), 2);
  batcher.Resume();
  batcher.Shutdown();
  // Two passes, one per model, each merging that model's two requests.
  EXPECT_THAT(log.models(), ElementsAre(0, 1));
  EXPECT_THAT(a_model.pass_sizes(), ElementsAre(2));
  EXPECT_THAT(b_model.pass_sizes(), ElementsAre(2));
  for (Answer* a : {&a1, &b1, &a2, &b2}) {
    ASSERT_TRUE(a->result.ok()) << a->result.status();
  }
  EXPECT_THAT(FirstIds(a2), ElementsAre(3));
  EXPECT_THAT(FirstIds(b2), ElementsAre(4));
}

TEST(BatcherModelsTest, AFloodQueuedFirstDoesNotStarveAnotherModel) {
  FakeModel a_model, b_model;
  PassLog log;
  BatcherOptions options;
  options.max_batch_tokens = 3;  // one 3-token request per pass
  Batcher batcher(options, {log.For(0, &a_model), log.For(1, &b_model)});
  batcher.Pause();
  constexpr int kFlood = 50;
  std::vector<Answer> flood(kFlood);
  for (Answer& a : flood) {
    ASSERT_TRUE(batcher.Submit(ForModel(0, MakeRequest({1}, &a))).ok());
  }
  Answer b;
  ASSERT_TRUE(batcher.Submit(ForModel(1, MakeRequest({2}, &b))).ok());
  batcher.Resume();
  batcher.Shutdown();
  const std::vector<int> order = log.models();
  ASSERT_EQ(order.size(), kFlood + 1u);
  // B's one request runs in the second pass, not after the 50 of A.
  EXPECT_THAT(std::vector<int>(order.begin(), order.begin() + 3),
              ElementsAre(0, 1, 0));
  ASSERT_TRUE(b.result.ok()) << b.result.status();
  for (const Answer& a : flood) EXPECT_EQ(a.calls, 1);
}

TEST(BatcherModelsTest, AModelArrivingDuringAFloodRunsInTheNextPass) {
  // A's first pass waits until B's request is queued behind A's flood: B
  // must run right after that pass.
  FakeModel a_model, b_model;
  PassLog log;
  absl::Notification in_first_pass, b_queued;
  std::atomic<bool> first{true};
  ForwardFn a_forward = log.For(0, &a_model);
  BatcherOptions options;
  options.max_batch_tokens = 3;
  Batcher batcher(options, {[&](absl::Span<const SequenceTask> tasks) {
                              if (first.exchange(false)) {
                                in_first_pass.Notify();
                                b_queued.WaitForNotification();
                              }
                              return a_forward(tasks);
                            },
                            log.For(1, &b_model)});
  constexpr int kFlood = 20;
  std::vector<Answer> flood(kFlood);
  for (Answer& a : flood) {
    ASSERT_TRUE(batcher.Submit(ForModel(0, MakeRequest({1}, &a))).ok());
  }
  in_first_pass.WaitForNotification();
  Answer b;
  ASSERT_TRUE(batcher.Submit(ForModel(1, MakeRequest({2}, &b))).ok());
  b_queued.Notify();
  batcher.Shutdown();
  const std::vector<int> order = log.models();
  ASSERT_EQ(order.size(), kFlood + 1u);
  EXPECT_EQ(order[0], 0);
  EXPECT_EQ(order[1], 1) << "B waited behind A's flood";
  ASSERT_TRUE(b.result.ok()) << b.result.status();
}

TEST(BatcherModelsTest, ModelsWithWorkTakeTurns) {
  FakeModel m0, m1, m2;
  PassLog log;
  BatcherOptions options;
  options.max_batch_tokens = 3;
  Batcher batcher(options, {log.For(0, &m0), log.For(1, &m1), log.For(2, &m2)});
  batcher.Pause();
  std::vector<Answer> answers(7);
  // Model 0: 3 requests, model 2: 3, model 1: 1, queued in that order.
  const int models[] = {0, 0, 0, 2, 2, 2, 1};
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(
        batcher.Submit(ForModel(models[i], MakeRequest({i}, &answers[i])))
            .ok());
  }
  batcher.Resume();
  batcher.Shutdown();
  EXPECT_THAT(log.models(), ElementsAre(0, 1, 2, 0, 2, 0, 2));
}

TEST(BatcherModelsTest, TheQueueLimitIsPerModel) {
  FakeModel a_model, b_model;
  PassLog log;
  BatcherOptions options;
  options.max_queue_requests = 2;
  Batcher batcher(options, {log.For(0, &a_model), log.For(1, &b_model)});
  batcher.Pause();
  Answer a1, a2, a3, b1;
  ASSERT_TRUE(batcher.Submit(ForModel(0, MakeRequest({1}, &a1))).ok());
  ASSERT_TRUE(batcher.Submit(ForModel(0, MakeRequest({2}, &a2))).ok());
  absl::Status refused = batcher.Submit(ForModel(0, MakeRequest({3}, &a3)));
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.message(), HasSubstr("--max_queue_requests=2 per model"));
  // A's full queue does not lock B out.
  EXPECT_TRUE(batcher.Submit(ForModel(1, MakeRequest({4}, &b1))).ok());
  batcher.Resume();
  batcher.Shutdown();
  EXPECT_EQ(a3.calls, 0);
  EXPECT_EQ(b1.calls, 1);
}

TEST(BatcherModelsTest, RefusesAModelIndexOutOfRange) {
  FakeModel a_model;
  PassLog log;
  Batcher batcher({}, {log.For(0, &a_model)});
  Answer a;
  for (int model : {-1, 1}) {
    absl::Status s = batcher.Submit(ForModel(model, MakeRequest({1}, &a)));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("runs 1 models"));
  }
  batcher.Shutdown();
  EXPECT_EQ(a.calls, 0);
}

// Bulk work. The fake records each pass as the first token ids of its tasks
// and may act during a given pass (on the inference thread, as a client
// submitting while that pass runs would), so the order is deterministic
// without timing.
class BulkPassLog {
 public:
  absl::StatusOr<std::vector<SequenceOutput>> Forward(
      absl::Span<const SequenceTask> tasks) {
    std::function<void()> during;
    {
      absl::MutexLock lock(&mu_);
      std::vector<int> ids;
      for (const SequenceTask& t : tasks) ids.push_back(t.token_ids[0]);
      passes_.push_back(ids);
      auto it = during_.find(passes_.size());
      if (it != during_.end()) during = std::move(it->second);
    }
    if (during) during();
    std::vector<SequenceOutput> out(tasks.size());
    for (size_t i = 0; i < tasks.size(); ++i) {
      out[i].hidden = {static_cast<float>(tasks[i].token_ids[0])};
    }
    return out;
  }
  ForwardFn fn() {
    return [this](absl::Span<const SequenceTask> t) { return Forward(t); };
  }
  // Runs `f` during pass `pass` (1-based).
  void During(size_t pass, std::function<void()> f) {
    absl::MutexLock lock(&mu_);
    during_[pass] = std::move(f);
  }
  std::vector<std::vector<int>> passes() {
    absl::MutexLock lock(&mu_);
    return passes_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::vector<int>> passes_ ABSL_GUARDED_BY(mu_);
  std::map<size_t, std::function<void()>> during_ ABSL_GUARDED_BY(mu_);
};

// A request of tasks with first ids `first`, first + 1, ..., `n` of them.
Batcher::Request Tasks(int first, int n, Answer* answer, int length = 3) {
  std::vector<int> ids;
  for (int i = 0; i < n; ++i) ids.push_back(first + i);
  return MakeRequest(ids, answer, length);
}

BatcherOptions BulkOptions() {
  BatcherOptions options;
  options.max_pass_tokens = 6;  // two 3-token tasks per bulk piece
  return options;
}

using Passes = std::vector<std::vector<int>>;

TEST(BatcherBulkTest, SplitsACostlyRequestIntoPiecesAndAnswersItOnce) {
  BulkPassLog log;
  Batcher batcher(BulkOptions(), log.fn());
  Batcher::Request::Timing timing;
  Answer a;
  Batcher::Request r = Tasks(10, 5, &a);  // 15 tokens > 6: bulk
  r.timing = &timing;
  ASSERT_TRUE(batcher.Submit(std::move(r)).ok());
  batcher.Shutdown();
  EXPECT_EQ(log.passes(), (Passes{{10, 11}, {12, 13}, {14}}));
  EXPECT_EQ(a.calls, 1);
  ASSERT_TRUE(a.result.ok()) << a.result.status();
  EXPECT_THAT(FirstIds(a), ElementsAre(10, 11, 12, 13, 14));
  const Batcher::Stats stats = batcher.stats();
  EXPECT_EQ(stats.forward_passes, 3);
  EXPECT_EQ(stats.bulk_pieces, 3);
  EXPECT_EQ(stats.requests_run, 1);
  EXPECT_EQ(stats.sequences_run, 5);
  EXPECT_GE(timing.inference, absl::ZeroDuration());
  EXPECT_GE(timing.queue, absl::ZeroDuration());
}

// The case: an Encode sent while bulk work runs goes before the
// bulk's next piece instead of after all of it.
TEST(BatcherBulkTest, InteractiveRequestGoesBetweenBulkPieces) {
  BulkPassLog log;
  Batcher batcher(BulkOptions(), log.fn());
  Answer bulk, small;
  log.During(
      1, [&] { ASSERT_TRUE(batcher.Submit(MakeRequest({99}, &small)).ok()); });
  ASSERT_TRUE(batcher.Submit(Tasks(10, 6, &bulk)).ok());
  ASSERT_TRUE(bulk.WaitAnswered());
  ASSERT_TRUE(small.WaitAnswered());
  batcher.Shutdown();
  EXPECT_EQ(log.passes(), (Passes{{10, 11}, {99}, {12, 13}, {14, 15}}));
  ASSERT_TRUE(small.result.ok());
  EXPECT_THAT(FirstIds(small), ElementsAre(99));
  ASSERT_TRUE(bulk.result.ok());
  EXPECT_THAT(FirstIds(bulk), ElementsAre(10, 11, 12, 13, 14, 15));
}

// RankHeads' passes are cheap requests marked bulk: an interactive request
// queued after one still runs first.
TEST(BatcherBulkTest, MarkedBulkWaitsForInteractiveRequests) {
  BulkPassLog log;
  Batcher batcher(BulkOptions(), log.fn());
  batcher.Pause();
  Answer rank, encode;
  Batcher::Request pass = Tasks(10, 1, &rank);
  pass.bulk = true;
  ASSERT_TRUE(batcher.Submit(std::move(pass)).ok());
  ASSERT_TRUE(batcher.Submit(MakeRequest({99}, &encode)).ok());
  EXPECT_EQ(batcher.queued(), 2);
  batcher.Resume();
  batcher.Shutdown();
  EXPECT_EQ(log.passes(), (Passes{{99}, {10}}));
  EXPECT_TRUE(rank.result.ok() && encode.result.ok());
}

// Interactive requests arriving during every pass do not starve bulk work:
// after an interactive pass the waiting bulk piece runs.
TEST(BatcherBulkTest, BulkAndInteractiveAlternateUnderSteadyLoad) {
  BulkPassLog log;
  Batcher batcher(BulkOptions(), log.fn());
  std::vector<std::unique_ptr<Answer>> smalls;
  for (int i = 0; i < 4; ++i) smalls.push_back(std::make_unique<Answer>());
  for (size_t pass = 1; pass <= 4; ++pass) {
    log.During(pass, [&, pass] {
      const int id = 90 + static_cast<int>(pass);
      ASSERT_TRUE(
          batcher.Submit(MakeRequest({id}, smalls[pass - 1].get())).ok());
    });
  }
  Answer bulk;
  ASSERT_TRUE(batcher.Submit(Tasks(10, 6, &bulk)).ok());
  ASSERT_TRUE(bulk.WaitAnswered());
  ASSERT_TRUE(smalls[3]->WaitAnswered());
  batcher.Shutdown();
  // 92 arrives during 91's pass and 93 during the bulk piece after it: they
  // merge into the next interactive pass.
  EXPECT_EQ(log.passes(),
            (Passes{{10, 11}, {91}, {12, 13}, {92, 93}, {14, 15}, {94}}));
  ASSERT_TRUE(bulk.result.ok());
  EXPECT_THAT(FirstIds(bulk), ElementsAre(10, 11, 12, 13, 14, 15));
  for (const auto& s : smalls) EXPECT_EQ(s->calls, 1);
}

// Two bulk requests share the passes piece by piece (round-robin), and
// interactive requests queued meanwhile all merge into one pass.
TEST(BatcherBulkTest, BulkRequestsTakeTurnsPieceByPiece) {
  BulkPassLog log;
  Batcher batcher(BulkOptions(), log.fn());
  batcher.Pause();
  Answer a, b, c, d;
  ASSERT_TRUE(batcher.Submit(Tasks(10, 4, &a)).ok());
  ASSERT_TRUE(batcher.Submit(Tasks(20, 4, &b)).ok());
  ASSERT_TRUE(batcher.Submit(MakeRequest({98}, &c)).ok());
  ASSERT_TRUE(batcher.Submit(MakeRequest({99}, &d)).ok());
  batcher.Resume();
  batcher.Shutdown();
  EXPECT_EQ(log.passes(),
            (Passes{{98, 99}, {10, 11}, {20, 21}, {12, 13}, {22, 23}}));
  EXPECT_THAT(FirstIds(a), ElementsAre(10, 11, 12, 13));
  EXPECT_THAT(FirstIds(b), ElementsAre(20, 21, 22, 23));
}

// With the model's layer count, a task that starts above layer 0 costs only
// the layers it runs: T·(L − start) against max_pass_tokens·L.
TEST(BatcherBulkTest, CostCountsTheLayersATaskRuns) {
  BulkPassLog log;
  BatcherOptions options = BulkOptions();  // 6 tokens of full passes
  options.model_layers = {4};              // = 24 layer-tokens
  Batcher batcher(options, log.fn());
  Answer a;
  Batcher::Request r = Tasks(10, 6, &a);  // 3 tokens each
  // Costs 12, 12, 6, 6, 3, 3 layer-tokens.
  const int starts[] = {0, 0, 2, 2, 3, 3};
  for (int i = 0; i < 6; ++i) r.tasks[i].start_layer = starts[i];
  ASSERT_TRUE(batcher.Submit(std::move(r)).ok());
  batcher.Shutdown();
  EXPECT_EQ(log.passes(), (Passes{{10, 11}, {12, 13, 14, 15}}));
  ASSERT_TRUE(a.result.ok());
  EXPECT_THAT(FirstIds(a), ElementsAre(10, 11, 12, 13, 14, 15));
}

// A bulk request cancelled (or expired) between its pieces is answered once,
// CANCELLED, without running the rest.
TEST(BatcherBulkTest, CancelledBetweenPiecesStopsThere) {
  BulkPassLog log;
  Batcher batcher(BulkOptions(), log.fn());
  std::atomic<bool> cancelled{false};
  log.During(1, [&] { cancelled = true; });
  Answer a;
  Batcher::Request r = Tasks(10, 6, &a);
  r.is_cancelled = [&] { return cancelled.load(); };
  ASSERT_TRUE(batcher.Submit(std::move(r)).ok());
  batcher.Shutdown();
  EXPECT_EQ(log.passes(), (Passes{{10, 11}}));
  EXPECT_EQ(a.calls, 1);
  EXPECT_EQ(a.result.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(batcher.stats().cancelled, 1);
}

// max_pass_tokens = 0 turns splitting off: a costly request is one pass.
TEST(BatcherBulkTest, ZeroBudgetRunsRequestsWhole) {
  BulkPassLog log;
  BatcherOptions options;
  options.max_pass_tokens = 0;
  Batcher batcher(options, log.fn());
  Answer a;
  ASSERT_TRUE(batcher.Submit(Tasks(10, 5, &a, 100)).ok());
  batcher.Shutdown();
  EXPECT_EQ(log.passes(), (Passes{{10, 11, 12, 13, 14}}));
  EXPECT_EQ(batcher.stats().bulk_pieces, 0);
}

}  // namespace
}  // namespace attnserve
