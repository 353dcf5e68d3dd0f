#include "model/encoder/task_check.h"

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "model/encoder/encoder.h"

namespace attnserve {

absl::Status CheckTokenIds(absl::Span<const int32_t> token_ids,
                           absl::Span<const int32_t> token_type_ids,
                           const ModelConfig& c, absl::string_view field) {
  const int64_t t = token_ids.size();
  if (t == 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, " has no tokens"));
  }
  if (t > c.max_tokens()) {
    if (c.position_offset == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, " has ", t,
          " tokens, more than the model's max_position_embeddings = ",
          c.max_position_embeddings));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        field, " has ", t, " tokens, more than the model's limit of ",
        c.max_tokens(), " (max_position_embeddings ", c.max_position_embeddings,
        " - pad_token_id ", c.pad_token_id,
        " - 1: positions start after the pad id)"));
  }
  for (int64_t i = 0; i < t; ++i) {
    if (token_ids[i] < 0 || token_ids[i] >= c.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ".token_ids[", i, "] = ", token_ids[i],
          " is out of range [0, ", c.vocab_size, ") (vocab_size)"));
    }
  }
  const int64_t n_types = token_type_ids.size();
  if (n_types != 0 && n_types != t) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ".token_type_ids has ", n_types, " entries but token_ids has ",
        t, ": send one type id per token, or none for all 0"));
  }
  for (int64_t i = 0; i < n_types; ++i) {
    if (token_type_ids[i] < 0 || token_type_ids[i] >= c.type_vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ".token_type_ids[", i, "] = ", token_type_ids[i],
          " is out of range [0, ", c.type_vocab_size, ") (type_vocab_size)"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckTask(const SequenceTask& task, size_t index,
                       const ModelInfo& info) {
  const ModelConfig& c = info.config;
  const std::string field = absl::StrCat("sequences[", index, "]");
  auto bad = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
  };
  RETURN_IF_ERROR(CheckTokenIds(task.token_ids, task.token_type_ids, c, field));
  int previous = -1;
  for (int layer : task.attention_layers) {
    if (layer <= previous || layer >= c.num_layers) {
      return bad(absl::StrFormat(
          "attention layers must be ascending and in [0, %d)", c.num_layers));
    }
    previous = layer;
  }
  if (!task.head_mask.empty() &&
      task.head_mask.size() != size_t(c.num_layers) * c.num_heads) {
    return bad(absl::StrFormat("head_mask has %d entries, expected %d",
                               task.head_mask.size(),
                               c.num_layers * c.num_heads));
  }
  for (size_t k = 0; k < task.head_mask.size(); ++k) {
    if (task.head_mask[k] &&
        info.IsPruned(int(k / c.num_heads), int(k % c.num_heads))) {
      return bad(absl::StrFormat(
          "head_mask masks layer %d head %d, which was pruned at load",
          k / c.num_heads, k % c.num_heads));
    }
  }
  const int64_t t = task.token_ids.size();
  if (task.start_layer < 0 || task.start_layer >= c.num_layers) {
    return bad(absl::StrFormat("start_layer %d is not in [0, %d)",
                               task.start_layer, c.num_layers));
  }
  if (task.start_layer > 0) {
    const int64_t want = int64_t(c.num_layers) * t * c.hidden_size;
    const int64_t got =
        task.layer_inputs == nullptr ? 0 : task.layer_inputs->size();
    if (got != want) {
      return bad(absl::StrFormat(
          "start_layer %d needs layer_inputs of (layers, tokens, hidden) = "
          "%d floats, got %d",
          task.start_layer, want, got));
    }
    if (task.want_layer_inputs) {
      return bad("want_layer_inputs needs start_layer 0");
    }
    if (!task.attention_layers.empty() &&
        task.attention_layers.front() < task.start_layer) {
      return bad(absl::StrFormat(
          "attention layer %d is below start_layer %d, which does not run",
          task.attention_layers.front(), task.start_layer));
    }
    for (size_t k = 0; k < size_t(task.start_layer) * c.num_heads &&
                       k < task.head_mask.size();
         ++k) {
      if (task.head_mask[k]) {
        return bad(absl::StrFormat(
            "head_mask masks layer %d head %d, below start_layer %d, which "
            "does not run",
            k / c.num_heads, k % c.num_heads, task.start_layer));
      }
    }
  }
  if ((task.pooling == PoolingMode::kPooler || task.want_pooler_output) &&
      !info.has_pooler) {
    return bad("the checkpoint has no pooler weights");
  }
  return absl::OkStatus();
}

}  // namespace attnserve
