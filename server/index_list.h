// "Each index in range, no repeats": the check every list of indices in a
// request gets (attention.layers, attention.heads, head_mask,
// attention.query_positions), written once so their messages agree.
#ifndef ATTNSERVE_SERVER_INDEX_LIST_H_
#define ATTNSERVE_SERVER_INDEX_LIST_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace attnserve {

struct IndexList {
  int size = 0;       // entries in the request's list
  int64_t limit = 0;  // flat indices are in [0, limit)
  std::string field;  // e.g. "head_mask", for "repeats head_mask[2]"
  std::string noun;   // e.g. "head", for "list each head once"
  // Entry i's flat index, or INVALID_ARGUMENT saying why it is out of range.
  std::function<absl::StatusOr<int64_t>(int i)> index_of;
  // Entry i as the message names it: "head_mask[3] = (layer 1, head 2)".
  std::function<std::string(int i)> describe;
};

// The entries' flat indices in request order, or the first entry that is out
// of range or repeats an earlier one ("<describe(i)> repeats <field>[j]: list
// each <noun> once").
absl::StatusOr<std::vector<int64_t>> CheckIndexList(const IndexList& list);

// The usual case: plain integers in [0, limit) named "<field>[i] = v", out of
// range saying "(the model has <limit> <what>)". Empty selects all of
// [0, limit).
absl::StatusOr<std::vector<int>> SelectIndices(absl::Span<const int32_t> values,
                                               const std::string& field,
                                               int limit,
                                               absl::string_view what);

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_INDEX_LIST_H_
