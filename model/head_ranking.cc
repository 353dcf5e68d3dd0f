#include "model/head_ranking.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"
#include "model/status_macros.h"

namespace attnserve {
namespace {

// The checks Encoder::Forward would make, worded for the caller's sequence
// index (Forward only knows its position inside one packed call).
absl::Status CheckSequence(const RankSequence& s, size_t index,
                           const ModelConfig& c) {
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(
        absl::StrFormat("rank heads: sequences[%d]: %s", index, what));
  };
  const int64_t t = s.token_ids.size();
  if (t == 0) return bad("no tokens");
  if (t > c.max_position_embeddings) {
    return bad(absl::StrFormat("length %d exceeds max_position_embeddings %d",
                               t, c.max_position_embeddings));
  }
  for (int64_t j = 0; j < t; ++j) {
    if (s.token_ids[j] < 0 || s.token_ids[j] >= c.vocab_size) {
      return bad(absl::StrFormat("token id %d at %d is outside [0, %d)",
                                 s.token_ids[j], j, c.vocab_size));
    }
  }
  if (s.token_type_ids.empty()) return absl::OkStatus();
  if (int64_t(s.token_type_ids.size()) != t) {
    return bad(absl::StrFormat("%d token_type_ids for %d tokens",
                               s.token_type_ids.size(), t));
  }
  for (int64_t j = 0; j < t; ++j) {
    if (s.token_type_ids[j] < 0 || s.token_type_ids[j] >= c.type_vocab_size) {
      return bad(absl::StrFormat("token type id %d at %d is outside [0, %d)",
                                 s.token_type_ids[j], j, c.type_vocab_size));
    }
  }
  return absl::OkStatus();
}

// 1 − cos(a, b) in double; see HeadImportance for zero vectors.
double CosineDistance(const std::vector<float>& a,
                      const std::vector<float>& b) {
  double dot = 0, aa = 0, bb = 0;
  for (size_t k = 0; k < a.size(); ++k) {
    dot += double{a[k]} * b[k];
    aa += double{a[k]} * a[k];
    bb += double{b[k]} * b[k];
  }
  if (aa == 0 || bb == 0) return aa == bb ? 0.0 : 1.0;
  const double cos = dot / (std::sqrt(aa) * std::sqrt(bb));
  return 1.0 - std::clamp(cos, -1.0, 1.0);
}

void SortByImportance(std::vector<HeadImportance>* v) {
  // Stable on a list built in (layer, head) order: ties keep that order.
  std::stable_sort(v->begin(), v->end(),
                   [](const HeadImportance& a, const HeadImportance& b) {
                     return a.importance > b.importance;
                   });
}

}  // namespace

absl::StatusOr<HeadRanking> RankHeads(Encoder& encoder,
                                      absl::Span<const RankSequence> sequences,
                                      PoolingMode pooling,
                                      const RankHeadsLimits& limits) {
  const ModelInfo& info = encoder.info();
  const ModelConfig& c = info.config;
  const int64_t n_layers = c.num_layers, n_heads = c.num_heads;

  // 1. Validate everything before running anything.
  if (sequences.empty()) {
    return absl::InvalidArgumentError(
        "rank heads: no sequences; send at least one");
  }
  if (pooling == PoolingMode::kNone) {
    return absl::InvalidArgumentError(
        "rank heads: needs a pooled output; choose CLS, mean or pooler "
        "pooling");
  }
  if (pooling == PoolingMode::kPooler && !info.has_pooler) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "rank heads: model %s has no pooler weights; choose CLS or mean "
        "pooling",
        info.name));
  }
  if (limits.tokens_per_pass < 1 || limits.max_ablation_tokens < 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "rank heads: limits must be positive (tokens_per_pass %d, "
        "max_ablation_tokens %d)",
        limits.tokens_per_pass, limits.max_ablation_tokens));
  }
  int64_t total_tokens = 0;
  for (size_t s = 0; s < sequences.size(); ++s) {
    RETURN_IF_ERROR(CheckSequence(sequences[s], s, c));
    total_tokens += sequences[s].token_ids.size();
  }
  // Per sequence: unmasked, each head alone, each whole layer.
  const int64_t runs = 1 + n_layers * n_heads + n_layers;
  HeadRanking ranking;
  ranking.ablation_tokens =
      total_tokens * runs;  // T ≤ max positions: no overflow
  if (ranking.ablation_tokens > limits.max_ablation_tokens) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "rank heads: %d sequences of %d tokens in all need %d tokens of "
        "forward passes (each sequence runs %d times: unmasked, %d single "
        "heads, %d whole layers), more than the limit of %d; send fewer or "
        "shorter sequences, at most %d tokens in all for this model",
        sequences.size(), total_tokens, ranking.ablation_tokens, runs,
        n_layers * n_heads, n_layers, limits.max_ablation_tokens,
        limits.max_ablation_tokens / runs));
  }

  // 2. Run the tasks in sequence order, run r = 0 (unmasked) first, so each
  // sequence's reference embedding exists before its ablations come back.
  // Runs 1..L·H mask head (r−1) in layer-major order; the last L runs mask
  // whole layers.
  std::vector<double> head_sum(n_layers * n_heads, 0.0);        // (L, H)
  std::vector<double> layer_sum(n_layers, 0.0);                 // (L)
  std::vector<std::vector<float>> reference(sequences.size());  // (H) each
  const int64_t n_tasks = int64_t(sequences.size()) * runs;
  std::vector<SequenceTask> batch;
  for (int64_t next = 0; next < n_tasks;) {
    // 2a. Pack tasks up to the token budget (at least one).
    batch.clear();
    const int64_t first = next;
    int64_t tokens = 0;
    while (next < n_tasks) {
      const RankSequence& seq = sequences[next / runs];
      const int64_t t = seq.token_ids.size();
      if (!batch.empty() && tokens + t > limits.tokens_per_pass) break;
      const int64_t r = next % runs;
      SequenceTask task;
      task.token_ids = seq.token_ids;
      task.token_type_ids = seq.token_type_ids;
      task.pooling = pooling;
      if (r > 0) {
        task.head_mask.assign(n_layers * n_heads, 0);  // (L, H)
        if (r <= n_layers * n_heads) {
          task.head_mask[r - 1] = 1;
        } else {
          const int64_t l = r - 1 - n_layers * n_heads;
          std::fill_n(&task.head_mask[l * n_heads], n_heads, 1);
        }
      }
      batch.push_back(std::move(task));
      tokens += t;
      ++next;
    }
    // 2b. One batched forward pass.
    ASSIGN_OR_RETURN(std::vector<SequenceOutput> out, encoder.Forward(batch));
    ++ranking.forward_passes;
    // 2c. Distances to the reference of each task's sequence.
    for (int64_t k = first; k < next; ++k) {
      const int64_t s = k / runs, r = k % runs;
      std::vector<float>& embedding = out[k - first].embedding;
      if (r == 0) {
        reference[s] = std::move(embedding);
        continue;
      }
      const double d = CosineDistance(embedding, reference[s]);
      if (r <= n_layers * n_heads) {
        head_sum[r - 1] += d;
      } else {
        layer_sum[r - 1 - n_layers * n_heads] += d;
      }
    }
  }

  // 3. Means over sequences, most important first.
  const double n_seq = sequences.size();
  for (int l = 0; l < n_layers; ++l) {
    for (int h = 0; h < n_heads; ++h) {
      ranking.heads.push_back({l, h, head_sum[l * n_heads + h] / n_seq});
    }
    ranking.layers.push_back({l, -1, layer_sum[l] / n_seq});
  }
  SortByImportance(&ranking.heads);
  SortByImportance(&ranking.layers);
  return ranking;
}

}  // namespace attnserve
