#include "server/index_list.h"

#include <numeric>

#include "absl/strings/str_cat.h"

namespace attnserve {

absl::StatusOr<std::vector<int64_t>> CheckIndexList(const IndexList& list) {
  std::vector<int64_t> indices;
  indices.reserve(list.size);
  std::vector<int> first_seen(list.limit, -1);  // flat index → entry
  for (int i = 0; i < list.size; ++i) {
    absl::StatusOr<int64_t> index = list.index_of(i);
    if (!index.ok()) return index.status();
    int& seen = first_seen[*index];
    if (seen >= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(list.describe(i), " repeats ", list.field, "[", seen,
                       "]: list each ", list.noun, " once"));
    }
    seen = i;
    indices.push_back(*index);
  }
  return indices;
}

absl::StatusOr<std::vector<int>> SelectIndices(absl::Span<const int32_t> values,
                                               const std::string& field,
                                               int limit,
                                               absl::string_view what) {
  std::vector<int> selected;
  if (values.empty()) {
    selected.resize(limit);
    std::iota(selected.begin(), selected.end(), 0);
    return selected;
  }
  auto describe = [&](int i) {
    return absl::StrCat(field, "[", i, "] = ", values[i]);
  };
  IndexList list{static_cast<int>(values.size()),
                 limit,
                 field,
                 "index",
                 [&](int i) -> absl::StatusOr<int64_t> {
                   if (values[i] < 0 || values[i] >= limit) {
                     return absl::InvalidArgumentError(absl::StrCat(
                         describe(i), " is out of range [0, ", limit,
                         ") (the model has ", limit, " ", what, ")"));
                   }
                   return values[i];
                 },
                 describe};
  absl::StatusOr<std::vector<int64_t>> indices = CheckIndexList(list);
  if (!indices.ok()) return indices.status();
  selected.assign(indices->begin(), indices->end());
  return selected;
}

}  // namespace attnserve
