#include "model/encoder/head_ranking.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"

namespace attnserve {
namespace {

// The checks Encoder::Forward would make, worded for the caller's sequence
// index (Forward only knows its position inside one packed call).
absl::Status CheckSequence(const RankSequence& s, size_t index,
                           const ModelConfig& c) {
  absl::Status status = CheckTokenIds(s.token_ids, s.token_type_ids, c,
                                      absl::StrCat("sequences[", index, "]"));
  if (status.ok()) return status;
  return absl::InvalidArgumentError(
      absl::StrCat("rank heads: ", status.message()));
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

int64_t RankHeadsRunsPerSequence(const ModelConfig& c) {
  // Unmasked, each head alone, each whole layer. T is at most
  // max_position_embeddings, so T times this stays far from overflow.
  return 1 + int64_t{c.num_layers} * c.num_heads + c.num_layers;
}

int64_t RankHeadsRunsPerSequence(const ModelInfo& info) {
  return RankHeadsRunsPerSequence(info.config) - info.pruned_count();
}

absl::StatusOr<RankHeadsJob> RankHeadsJob::Create(
    const ModelInfo& info, std::vector<RankSequence> sequences,
    PoolingMode pooling, const RankHeadsLimits& limits) {
  const ModelConfig& c = info.config;
  const int64_t n_layers = c.num_layers, n_heads = c.num_heads;

  // Validate everything before anything runs.
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
  if (limits.tokens_per_pass < 1 || limits.max_ablation_tokens < 1 ||
      limits.cost_per_pass < 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "rank heads: limits must be positive (tokens_per_pass %d, "
        "max_ablation_tokens %d, cost_per_pass %d)",
        limits.tokens_per_pass, limits.max_ablation_tokens,
        limits.cost_per_pass));
  }
  int64_t total_tokens = 0;
  for (size_t s = 0; s < sequences.size(); ++s) {
    RETURN_IF_ERROR(CheckSequence(sequences[s], s, c));
    total_tokens += sequences[s].token_ids.size();
  }
  const int64_t runs = RankHeadsRunsPerSequence(info);
  const int64_t heads_run = runs - 1 - n_layers;
  const int64_t work = total_tokens * runs;
  if (work > limits.max_ablation_tokens) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "rank heads: %d sequences of %d tokens in all need %d tokens of "
        "forward passes (each sequence runs %d times: unmasked, %d single "
        "heads, %d whole layers), more than the limit of %d; send fewer or "
        "shorter sequences, at most %d tokens in all for this model",
        sequences.size(), total_tokens, work, runs, heads_run, n_layers,
        limits.max_ablation_tokens, limits.max_ablation_tokens / runs));
  }

  RankHeadsJob job;
  job.pooling_ = pooling;
  job.tokens_per_pass_ = limits.tokens_per_pass;
  job.layers_ = n_layers;
  job.heads_ = n_heads;
  job.hidden_ = c.hidden_size;
  job.runs_ = runs;
  job.reuse_ = limits.reuse_layer_inputs;
  job.cost_per_pass_ = limits.cost_per_pass * n_layers;
  for (int64_t k = 0; k < n_layers * n_heads; ++k) {
    if (!info.IsPruned(k / n_heads, k % n_heads)) job.kept_.push_back(k);
  }
  job.n_tasks_ = int64_t(sequences.size()) * runs;
  job.ablation_tokens_ = work;
  job.reference_.resize(sequences.size());
  job.layer_inputs_.resize(sequences.size());
  job.head_sum_.assign(n_layers * n_heads, 0.0);
  job.layer_sum_.assign(n_layers, 0.0);
  job.sequences_ = std::move(sequences);
  return job;
}

SequenceTask RankHeadsJob::MakeTask(int64_t k) const {
  const int64_t n_seq = sequences_.size();
  const int64_t s = k < n_seq ? k : (k - n_seq) / (runs_ - 1);
  // r = 0 unmasked, 1..K kept head r−1 (layer-major), then the L whole
  // layers (their kept heads).
  const int64_t r = k < n_seq ? 0 : 1 + (k - n_seq) % (runs_ - 1);
  const RankSequence& seq = sequences_[s];
  SequenceTask task;
  task.token_ids = seq.token_ids;
  task.token_type_ids = seq.token_type_ids;
  task.pooling = pooling_;
  if (r == 0) {
    task.want_layer_inputs = reuse_;
    return task;
  }
  task.head_mask.assign(layers_ * heads_, 0);  // (L, H)
  const int64_t kept = kept_.size();
  int64_t layer;
  if (r <= kept) {
    task.head_mask[kept_[r - 1]] = 1;
    layer = kept_[r - 1] / heads_;
  } else {
    layer = r - 1 - kept;
    for (int64_t h : kept_) {
      if (h / heads_ == layer) task.head_mask[h] = 1;
    }
  }
  if (reuse_) {
    // The layers below the mask give the unmasked pass's bits: start there.
    task.start_layer = int(layer);
    task.layer_inputs = layer_inputs_[s];
  }
  return task;
}

std::vector<SequenceTask> RankHeadsJob::NextPass() {
  const int64_t n_seq = sequences_.size();
  // With reuse the ablations need the unmasked passes' layer inputs: no
  // pass runs both.
  const int64_t end = reuse_ && added_ < n_seq ? n_seq : n_tasks_;
  std::vector<SequenceTask> pass;
  int64_t tokens = 0, cost = 0;
  for (int64_t k = added_; k < end; ++k) {
    SequenceTask task = MakeTask(k);
    const int64_t t = task.token_ids.size();
    const int64_t c = TaskLayerTokens(task, int(layers_));
    if (!pass.empty() && (tokens + t > tokens_per_pass_ ||
                          (cost_per_pass_ > 0 && cost + c > cost_per_pass_))) {
      break;
    }
    pass.push_back(std::move(task));
    tokens += t;
    cost += c;
  }
  pass_end_ = added_ + pass.size();
  pass_cost_ = cost;
  return pass;
}

absl::Status RankHeadsJob::AddResults(
    absl::Span<const SequenceOutput> outputs) {
  if (pass_end_ == added_) {
    return absl::FailedPreconditionError(
        "rank heads: results added without an outstanding NextPass()");
  }
  if (int64_t(outputs.size()) != pass_end_ - added_) {
    return absl::InvalidArgumentError(
        absl::StrFormat("rank heads: %d outputs for a pass of %d tasks",
                        outputs.size(), pass_end_ - added_));
  }
  const int64_t n_seq = sequences_.size();
  for (int64_t k = added_; k < pass_end_; ++k) {
    const SequenceOutput& out = outputs[k - added_];
    if (int64_t(out.embedding.size()) != hidden_) {
      return absl::InvalidArgumentError(
          absl::StrFormat("rank heads: an output has %d pooled values, not %d",
                          out.embedding.size(), hidden_));
    }
    if (k >= n_seq || !reuse_) continue;
    const int64_t want = layers_ * hidden_ * sequences_[k].token_ids.size();
    if (int64_t(out.layer_inputs.size()) != want) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "rank heads: an unmasked output has %d layer-input values, not %d",
          out.layer_inputs.size(), want));
    }
  }
  for (int64_t k = added_; k < pass_end_; ++k) {
    const SequenceOutput& out = outputs[k - added_];
    if (k < n_seq) {
      reference_[k] = out.embedding;
      if (reuse_) {
        layer_inputs_[k] =
            std::make_shared<const std::vector<float>>(out.layer_inputs);
      }
      continue;
    }
    const int64_t s = (k - n_seq) / (runs_ - 1);
    const int64_t r = 1 + (k - n_seq) % (runs_ - 1);
    const double d = CosineDistance(out.embedding, reference_[s]);
    const int64_t kept = kept_.size();
    if (r <= kept) {
      head_sum_[kept_[r - 1]] += d;
    } else {
      layer_sum_[r - 1 - kept] += d;
    }
    // A sequence's last ablation: its layer inputs are no longer needed.
    if (r == runs_ - 1) layer_inputs_[s].reset();
  }
  added_ = pass_end_;
  layer_tokens_ += pass_cost_;
  ++forward_passes_;
  return absl::OkStatus();
}

absl::StatusOr<HeadRanking> RankHeadsJob::Result() const {
  if (!done()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("rank heads: %d of %d tasks done", added_, n_tasks_));
  }
  HeadRanking ranking;
  const double n_seq = sequences_.size();
  for (int64_t k : kept_) {
    ranking.heads.push_back(
        {int(k / heads_), int(k % heads_), head_sum_[k] / n_seq});
  }
  for (int l = 0; l < layers_; ++l) {
    ranking.layers.push_back({l, -1, layer_sum_[l] / n_seq});
  }
  SortByImportance(&ranking.heads);
  SortByImportance(&ranking.layers);
  ranking.forward_passes = forward_passes_;
  ranking.ablation_tokens = ablation_tokens_;
  ranking.layer_tokens = layer_tokens_;
  return ranking;
}

absl::StatusOr<HeadRanking> RankHeads(Encoder& encoder,
                                      absl::Span<const RankSequence> sequences,
                                      PoolingMode pooling,
                                      const RankHeadsLimits& limits) {
  ASSIGN_OR_RETURN(
      RankHeadsJob job,
      RankHeadsJob::Create(encoder.info(), {sequences.begin(), sequences.end()},
                           pooling, limits));
  while (!job.done()) {
    ASSIGN_OR_RETURN(std::vector<SequenceOutput> outputs,
                     encoder.Forward(job.NextPass()));
    RETURN_IF_ERROR(job.AddResults(outputs));
  }
  return job.Result();
}

}  // namespace attnserve
