#include "model/encoder/packing.h"

#include <algorithm>
#include <numeric>

#include "model/kernels/linear.h"

namespace attnserve {

Packing Pack(absl::Span<const SequenceTask> tasks, int num_layers) {
  Packing p;
  p.order.resize(tasks.size());
  std::iota(p.order.begin(), p.order.end(), 0);
  std::stable_sort(p.order.begin(), p.order.end(), [&](size_t a, size_t b) {
    if (tasks[a].start_layer != tasks[b].start_layer) {
      return tasks[a].start_layer < tasks[b].start_layer;
    }
    return tasks[a].token_ids.size() > tasks[b].token_ids.size();
  });
  p.row_of.resize(tasks.size());
  for (size_t i : p.order) {
    p.row_of[i] = p.tokens;
    p.tokens += tasks[i].token_ids.size();
  }
  p.rows = RowBucket(p.tokens);
  p.active.assign(num_layers, 0);
  p.active_tokens.assign(num_layers, 0);
  for (int l = 0; l < num_layers; ++l) {
    size_t n = 0;
    int64_t t = 0;
    while (n < p.order.size() && tasks[p.order[n]].start_layer <= l) {
      t += tasks[p.order[n]].token_ids.size();
      ++n;
    }
    p.active[l] = n;
    p.active_tokens[l] = t;
  }
  return p;
}

}  // namespace attnserve
