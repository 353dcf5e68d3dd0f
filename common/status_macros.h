// Small status macros: Abseil 20220623 as packaged by Debian has none.
#ifndef ATTNSERVE_COMMON_STATUS_MACROS_H_
#define ATTNSERVE_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define ATTNSERVE_CONCAT_INNER_(a, b) a##b
#define ATTNSERVE_CONCAT_(a, b) ATTNSERVE_CONCAT_INNER_(a, b)

// Returns from the enclosing function when `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)          \
  do {                                 \
    ::absl::Status _status = (expr);   \
    if (!_status.ok()) return _status; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, F());` or `ASSIGN_OR_RETURN(x, F());`
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  ASSIGN_OR_RETURN_IMPL_(ATTNSERVE_CONCAT_(_statusor_, __LINE__), lhs, rexpr)

#define ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                           \
  if (!statusor.ok()) return statusor.status();      \
  lhs = std::move(statusor).value()

#endif  // ATTNSERVE_COMMON_STATUS_MACROS_H_
