// ThreadSanitizer annotations for Debian's prebuilt Abseil synchronization
// (linked into the test binaries of the TSan build only: scripts/sanitize.sh
// thread).
//
// Why: Debian's libabsl_synchronization.so is compiled without
// -fsanitize=thread, so its Mutex and CondVar carry no TSan annotations.
// TSan then sees no order between one thread's Unlock and another thread's
// Lock, and reports every access to mutex-protected state (our batcher's
// queue, the completion executor's list, ...) as a race: thousands of false
// reports that are a property of how the library was built, not of our code.
//
// How: this file defines the public locking functions of absl::Mutex and
// absl::CondVar. The executable's definitions take precedence over the
// shared library's for every caller (our code, and gRPC's and Abseil's own
// calls, which go through the PLT), so each call lands here, is forwarded to
// the real function (dlsym(RTLD_NEXT)), and tells TSan what it means: a lock
// acquires the mutex (__tsan_acquire), an unlock releases it
// (__tsan_release). Conditions (Await, LockWhen) may be evaluated by Abseil
// on whichever thread holds the mutex at the time, so each is wrapped to
// acquire before and release after its evaluation: that thread is inside the
// critical section then.
//
// This adds only the happens-before edges that the real mutex provides; it
// hides no access of ours. A race in our code without a lock still shows.
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/base/options.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#if !defined(__SANITIZE_THREAD__) && defined(__has_feature)
#if !__has_feature(thread_sanitizer)
#error "absl_sync_tsan.cc belongs in TSan builds only"
#endif
#endif

namespace {

#define ATTNSERVE_STR2(x) #x
#define ATTNSERVE_STR(x) ATTNSERVE_STR2(x)

// The real function `rest` of absl::<inline namespace>::, found by its
// mangled name, e.g. rest = "5Mutex4LockEv" for Mutex::Lock().
template <typename Fn>
Fn Real(const char* rest) {
  const char* ns = ATTNSERVE_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  const std::string name =
      "_ZN4absl" + std::to_string(std::strlen(ns)) + ns + rest;
  void* fn = dlsym(RTLD_NEXT, name.c_str());
  if (fn == nullptr) {
    std::fprintf(stderr, "absl_sync_tsan: %s not found\n", name.c_str());
    std::abort();
  }
  return reinterpret_cast<Fn>(fn);
}

// A condition evaluated inside the critical section of `mu`.
struct GuardedCondition {
  const absl::Condition* condition;
  absl::Mutex* mu;
};

// Abseil's own deadlock detection keeps a graph of every lock order, guarded
// by an internal spinlock TSan cannot see either; TSan detects lock-order
// inversions itself, so the graph is switched off.
const bool kNoAbslDeadlockGraph = [] {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return true;
}();

bool EvalGuarded(GuardedCondition* g) {
  __tsan_acquire(g->mu);
  const bool result = g->condition->Eval();
  __tsan_release(g->mu);
  return result;
}

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

// ---- Mutex: plain locking -------------------------------------------------

void Mutex::Lock() {
  static const auto real = Real<void (*)(Mutex*)>("5Mutex4LockEv");
  real(this);
  __tsan_acquire(this);
}

void Mutex::ReaderLock() {
  static const auto real = Real<void (*)(Mutex*)>("5Mutex10ReaderLockEv");
  real(this);
  __tsan_acquire(this);
}

bool Mutex::TryLock() {
  static const auto real = Real<bool (*)(Mutex*)>("5Mutex7TryLockEv");
  const bool locked = real(this);
  if (locked) __tsan_acquire(this);
  return locked;
}

bool Mutex::ReaderTryLock() {
  static const auto real = Real<bool (*)(Mutex*)>("5Mutex13ReaderTryLockEv");
  const bool locked = real(this);
  if (locked) __tsan_acquire(this);
  return locked;
}

void Mutex::Unlock() {
  static const auto real = Real<void (*)(Mutex*)>("5Mutex6UnlockEv");
  __tsan_release(this);
  real(this);
}

void Mutex::ReaderUnlock() {
  static const auto real = Real<void (*)(Mutex*)>("5Mutex12ReaderUnlockEv");
  __tsan_release(this);
  real(this);
}

// ---- Mutex: conditions ----------------------------------------------------
// Await releases the mutex while it waits and holds it again on return;
// LockWhen acquires it. Both evaluate the condition under the mutex, possibly
// on another thread (the one unlocking).

#define ATTNSERVE_GUARD(cond)                \
  GuardedCondition guarded{&(cond), this};   \
  const Condition wrapped(&EvalGuarded, &guarded)

void Mutex::Await(const Condition& cond) {
  static const auto real =
      Real<void (*)(Mutex*, const Condition&)>("5Mutex5AwaitERKNS0_9ConditionE");
  ATTNSERVE_GUARD(cond);
  __tsan_release(this);
  real(this, wrapped);
  __tsan_acquire(this);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Duration)>(
      "5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  ATTNSERVE_GUARD(cond);
  __tsan_release(this);
  const bool result = real(this, wrapped, timeout);
  __tsan_acquire(this);
  return result;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Time)>(
      "5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  ATTNSERVE_GUARD(cond);
  __tsan_release(this);
  const bool result = real(this, wrapped, deadline);
  __tsan_acquire(this);
  return result;
}

void Mutex::LockWhen(const Condition& cond) {
  static const auto real = Real<void (*)(Mutex*, const Condition&)>(
      "5Mutex8LockWhenERKNS0_9ConditionE");
  ATTNSERVE_GUARD(cond);
  real(this, wrapped);
  __tsan_acquire(this);
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  static const auto real = Real<void (*)(Mutex*, const Condition&)>(
      "5Mutex14ReaderLockWhenERKNS0_9ConditionE");
  ATTNSERVE_GUARD(cond);
  real(this, wrapped);
  __tsan_acquire(this);
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Duration)>(
      "5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  ATTNSERVE_GUARD(cond);
  const bool result = real(this, wrapped, timeout);
  __tsan_acquire(this);
  return result;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Time)>(
      "5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  ATTNSERVE_GUARD(cond);
  const bool result = real(this, wrapped, deadline);
  __tsan_acquire(this);
  return result;
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond,
                                      Duration timeout) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Duration)>(
      "5Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  ATTNSERVE_GUARD(cond);
  const bool result = real(this, wrapped, timeout);
  __tsan_acquire(this);
  return result;
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Time)>(
      "5Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  ATTNSERVE_GUARD(cond);
  const bool result = real(this, wrapped, deadline);
  __tsan_acquire(this);
  return result;
}

#undef ATTNSERVE_GUARD

// ---- CondVar: waiting releases the mutex, returning holds it again ---------

void CondVar::Wait(Mutex* mu) {
  static const auto real =
      Real<void (*)(CondVar*, Mutex*)>("7CondVar4WaitEPNS0_5MutexE");
  __tsan_release(mu);
  real(this, mu);
  __tsan_acquire(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  static const auto real = Real<bool (*)(CondVar*, Mutex*, Duration)>(
      "7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  __tsan_release(mu);
  const bool result = real(this, mu, timeout);
  __tsan_acquire(mu);
  return result;
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  static const auto real = Real<bool (*)(CondVar*, Mutex*, Time)>(
      "7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  __tsan_release(mu);
  const bool result = real(this, mu, deadline);
  __tsan_acquire(mu);
  return result;
}

ABSL_NAMESPACE_END
}  // namespace absl
