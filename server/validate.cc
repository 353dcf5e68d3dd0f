#include "server/validate.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace attnserve {
namespace {

std::string MiB(int64_t bytes) {
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1 << 20));
}

// Checks `indices` (field name `field`) against [0, limit) and for repeats;
// empty means all of [0, limit). Returns the indices in request order.
absl::StatusOr<std::vector<int>> SelectIndices(
    const google::protobuf::RepeatedField<int32_t>& indices,
    const std::string& field, int limit, const char* limit_name) {
  std::vector<int> selected;
  if (indices.empty()) {
    selected.resize(limit);
    std::iota(selected.begin(), selected.end(), 0);
    return selected;
  }
  std::vector<int> first_seen(limit, -1);
  for (int i = 0; i < indices.size(); ++i) {
    const int32_t v = indices[i];
    if (v < 0 || v >= limit) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, "[", i, "] = ", v, " is out of range [0, ", limit,
                       ") (the model has ", limit, " ", limit_name, ")"));
    }
    if (first_seen[v] >= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, "[", i, "] = ", v, " repeats ", field, "[",
                       first_seen[v], "]: list each index once"));
    }
    first_seen[v] = i;
    selected.push_back(v);
  }
  return selected;
}

absl::Status CheckUnimplemented(const v1::EncodeRequest& request) {
  auto later = [](const std::string& field, const std::string& what) {
    return absl::UnimplementedError(
        absl::StrCat(field, ": ", what, " is not implemented yet"));
  };
  for (int s = 0; s < request.sequences_size(); ++s) {
    const v1::Sequence& seq = request.sequences(s);
    if (!seq.text().empty() || !seq.text_pair().empty()) {
      return later(absl::StrCat("sequences[", s, "].",
                                seq.text().empty() ? "text_pair" : "text"),
                   "server-side tokenization (send token_ids instead)");
    }
  }
  if (request.has_attention()) {
    const v1::AttentionRequest& a = request.attention();
    if (a.stats()) return later("attention.stats", "per-head statistics");
    if (a.omit_maps())
      return later("attention.omit_maps", "leaving out the maps");
    if (!a.query_positions().empty()) {
      return later("attention.query_positions", "selecting query rows");
    }
    if (a.rollout()) return later("attention.rollout", "attention rollout");
  }
  return absl::OkStatus();
}

absl::Status CheckSequence(const v1::Sequence& seq, int s,
                           const ModelConfig& config) {
  const int n = seq.token_ids_size();
  if (n == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("sequences[", s,
                     "].token_ids is empty: every sequence needs at least "
                     "one token (usually [CLS] ... [SEP])"));
  }
  if (n > config.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sequences[", s, "] has ", n,
        " tokens, more than the model's max_position_embeddings = ",
        config.max_position_embeddings));
  }
  for (int i = 0; i < n; ++i) {
    const int32_t id = seq.token_ids(i);
    if (id < 0 || id >= config.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sequences[", s, "].token_ids[", i, "] = ", id,
          " is out of range [0, ", config.vocab_size, ") (vocab_size)"));
    }
  }
  const int n_types = seq.token_type_ids_size();
  if (n_types != 0 && n_types != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("sequences[", s, "].token_type_ids has ", n_types,
                     " entries but token_ids has ", n,
                     ": send one type id per token, or none for all 0"));
  }
  for (int i = 0; i < n_types; ++i) {
    const int32_t type = seq.token_type_ids(i);
    if (type < 0 || type >= config.type_vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("sequences[", s, "].token_type_ids[", i, "] = ", type,
                       " is out of range [0, ", config.type_vocab_size,
                       ") (type_vocab_size)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<PoolingMode> SelectPooling(const v1::EncodeRequest& request,
                                          const ModelInfo& info) {
  switch (request.pooling()) {
    case v1::POOLING_UNSPECIFIED:
      // No embedding unless the request asks for a normalized one: then the
      // model's default pooling.
      return request.normalize() ? info.default_pooling : PoolingMode::kNone;
    case v1::POOLING_NONE:
      if (request.normalize()) {
        return absl::InvalidArgumentError(
            "normalize = true needs an embedding, but pooling = POOLING_NONE: "
            "choose POOLING_CLS, POOLING_MEAN or POOLING_POOLER");
      }
      return PoolingMode::kNone;
    case v1::POOLING_CLS:
      return PoolingMode::kCls;
    case v1::POOLING_MEAN:
      return PoolingMode::kMean;
    case v1::POOLING_POOLER:
      if (!info.has_pooler) {
        return absl::InvalidArgumentError(absl::StrCat(
            "pooling = POOLING_POOLER but model \"", info.name,
            "\" has no pooler weights: use POOLING_CLS or POOLING_MEAN"));
      }
      return PoolingMode::kPooler;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("pooling = ", static_cast<int>(request.pooling()),
                       " is not a Pooling value"));
  }
}

absl::StatusOr<std::vector<uint8_t>> SelectHeadMask(
    const v1::EncodeRequest& request, const ModelConfig& config) {
  std::vector<uint8_t> mask;
  if (request.head_mask().empty()) return mask;
  mask.assign(static_cast<size_t>(config.num_layers) * config.num_heads, 0);
  std::vector<int> first_seen(mask.size(), -1);
  for (int i = 0; i < request.head_mask_size(); ++i) {
    const v1::HeadRef& ref = request.head_mask(i);
    if (ref.layer() < 0 || ref.layer() >= config.num_layers) {
      return absl::InvalidArgumentError(
          absl::StrCat("head_mask[", i, "].layer = ", ref.layer(),
                       " is out of range [0, ", config.num_layers,
                       ") (the model has ", config.num_layers, " layers)"));
    }
    if (ref.head() < 0 || ref.head() >= config.num_heads) {
      return absl::InvalidArgumentError(absl::StrCat(
          "head_mask[", i, "].head = ", ref.head(), " is out of range [0, ",
          config.num_heads, ") (the model has ", config.num_heads, " heads)"));
    }
    const size_t k =
        static_cast<size_t>(ref.layer()) * config.num_heads + ref.head();
    if (first_seen[k] >= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "head_mask[", i, "] = (layer ", ref.layer(), ", head ", ref.head(),
          ") repeats head_mask[", first_seen[k], "]: list each head once"));
    }
    first_seen[k] = i;
    mask[k] = 1;
  }
  return mask;
}

}  // namespace

absl::Status CheckModelName(const std::string& requested,
                            const ModelInfo& info) {
  if (requested.empty() || requested == info.name) return absl::OkStatus();
  return absl::NotFoundError(absl::StrCat("model \"", requested,
                                          "\" is not served here; served: \"",
                                          info.name, "\""));
}

absl::StatusOr<ValidatedEncode> ValidateEncodeRequest(
    const v1::EncodeRequest& request, const ModelInfo& info,
    const RequestLimits& limits) {
  const ModelConfig& config = info.config;
  if (absl::Status s = CheckModelName(request.model(), info); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckUnimplemented(request); !s.ok()) return s;

  // The batch.
  const int num_seqs = request.sequences_size();
  if (num_seqs == 0) {
    return absl::InvalidArgumentError(
        "sequences is empty: send at least one sequence");
  }
  if (num_seqs > limits.max_sequences_per_request) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sequences has ", num_seqs,
        " entries, more than this server's limit "
        "of ",
        limits.max_sequences_per_request,
        " per request (--max_sequences_per_request): split the batch"));
  }
  int64_t total_tokens = 0;
  for (int s = 0; s < num_seqs; ++s) {
    if (absl::Status st = CheckSequence(request.sequences(s), s, config);
        !st.ok()) {
      return st;
    }
    total_tokens += request.sequences(s).token_ids_size();
  }
  if (total_tokens > limits.max_tokens_per_request) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sequences have ", total_tokens,
        " tokens in total, more than this server's limit of ",
        limits.max_tokens_per_request,
        " per request (--max_tokens_per_request): split the batch"));
  }

  // What to return.
  ValidatedEncode out;
  OutputSpec& spec = out.spec;
  spec.hidden_states = request.return_hidden_states();
  std::vector<int> model_layers;  // ascending, as the model wants them
  if (request.has_attention()) {
    const v1::AttentionRequest& a = request.attention();
    spec.attention = true;
    auto layers = SelectIndices(a.layers(), "attention.layers",
                                config.num_layers, "layers");
    if (!layers.ok()) return layers.status();
    auto heads =
        SelectIndices(a.heads(), "attention.heads", config.num_heads, "heads");
    if (!heads.ok()) return heads.status();
    spec.attention_layers = *std::move(layers);
    spec.attention_heads = *std::move(heads);
    model_layers = spec.attention_layers;
    std::sort(model_layers.begin(), model_layers.end());
    for (int layer : spec.attention_layers) {
      spec.layer_slots.push_back(static_cast<int>(
          std::lower_bound(model_layers.begin(), model_layers.end(), layer) -
          model_layers.begin()));
    }
    switch (a.dtype()) {
      case v1::DATA_TYPE_UNSPECIFIED:
      case v1::FLOAT32:
        spec.attention_dtype = v1::FLOAT32;
        break;
      case v1::FLOAT16:
        spec.attention_dtype = v1::FLOAT16;
        break;
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("attention.dtype = ", static_cast<int>(a.dtype()),
                         " is not a DataType: use FLOAT32 or FLOAT16"));
    }
  }
  auto pooling = SelectPooling(request, info);
  if (!pooling.ok()) return pooling.status();
  spec.embedding = *pooling != PoolingMode::kNone;
  auto head_mask = SelectHeadMask(request, config);
  if (!head_mask.ok()) return head_mask.status();

  // Size of the answer, before any work is done.
  const int64_t hidden = config.hidden_size;
  const int64_t dtype_bytes = spec.attention_dtype == v1::FLOAT16 ? 2 : 4;
  const int64_t maps = static_cast<int64_t>(spec.attention_layers.size()) *
                       spec.attention_heads.size();
  int64_t bytes = 0;
  for (const v1::Sequence& seq : request.sequences()) {
    const int64_t t = seq.token_ids_size();
    if (spec.hidden_states) bytes += t * hidden * 4;
    if (spec.embedding) bytes += hidden * 4;
    bytes += maps * t * t * dtype_bytes;
  }
  if (bytes > limits.max_response_bytes) {
    std::string how =
        spec.attention_dtype == v1::FLOAT16
            ? "ask for fewer layers (attention.layers) or heads "
              "(attention.heads; attention is already FLOAT16), or send fewer "
              "or shorter sequences per request"
            : "ask for fewer layers (attention.layers) or heads "
              "(attention.heads), set attention.dtype = FLOAT16 (half the "
              "size), or send fewer or shorter sequences per request";
    return absl::ResourceExhaustedError(absl::StrCat(
        "the response would be ", bytes, " bytes (", MiB(bytes),
        "), more than this server's limit of ", limits.max_response_bytes,
        " bytes (", MiB(limits.max_response_bytes),
        ", --max_response_bytes): ", how));
  }
  out.response_bytes = bytes;

  // The model's tasks.
  out.tasks.reserve(num_seqs);
  for (const v1::Sequence& seq : request.sequences()) {
    SequenceTask task;
    task.token_ids.assign(seq.token_ids().begin(), seq.token_ids().end());
    task.token_type_ids.assign(seq.token_type_ids().begin(),
                               seq.token_type_ids().end());
    task.want_hidden = spec.hidden_states;
    task.attention_layers = model_layers;
    task.head_mask = *head_mask;
    task.pooling = *pooling;
    task.normalize = request.normalize();
    out.tasks.push_back(std::move(task));
  }
  return out;
}

}  // namespace attnserve
