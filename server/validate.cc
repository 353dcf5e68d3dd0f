#include "server/validate.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "server/index_list.h"
#include "server/response_size.h"

namespace attnserve {
namespace {

// A token_ids sequence against the model.
absl::Status CheckIdSequence(const v1::Sequence& seq, int s,
                             const ModelConfig& config) {
  const std::string field = absl::StrCat("sequences[", s, "]");
  if (seq.token_ids().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        field,
        ".token_ids is empty and text is unset: every sequence needs token "
        "ids (usually [CLS] ... [SEP]) or text"));
  }
  return CheckTokenIds(seq.token_ids(), seq.token_type_ids(), config, field);
}

absl::Status NoTokenizerError(const std::string& field,
                              const ServedModel& model) {
  return absl::FailedPreconditionError(absl::StrCat(
      field, ": model \"", model.info->name, "\" cannot tokenize text: ",
      model.no_tokenizer_reason, "; send token_ids instead"));
}

// Sequence s with text: tokenized, checked against the model.
absl::StatusOr<InputSequence> TokenizeSequence(const v1::Sequence& seq, int s,
                                               bool truncate,
                                               const ServedModel& model) {
  const ModelConfig& config = model.info->config;
  const std::string at = absl::StrCat("sequences[", s, "]");
  if (seq.token_ids_size() > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(at, " has both token_ids (", seq.token_ids_size(),
                     " ids) and text: send one of them"));
  }
  if (seq.token_type_ids_size() > 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        at,
        ".token_type_ids is set with text: the tokenizer sets token types (0 "
        "for text, 1 for text_pair); send token_type_ids only with "
        "token_ids"));
  }
  if (seq.text().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        at,
        ".text_pair is set but text is empty: put the first segment in "
        "text"));
  }
  if (model.tokenizer == nullptr) {
    return NoTokenizerError(absl::StrCat(at, ".text"), model);
  }
  const int max_length = config.max_tokens();
  absl::StatusOr<Encoding> encoding = model.tokenizer->Encode(
      seq.text(), seq.text_pair(), max_length, truncate);
  if (!encoding.ok()) {
    // The tokenizer names "text" or "text_pair" for bad UTF-8 (with the byte
    // offset) and gives the length and the limit for a long input.
    const absl::string_view message = encoding.status().message();
    if (absl::StartsWith(message, "text")) {
      return absl::Status(encoding.status().code(),
                          absl::StrCat(at, ".", message));
    }
    return absl::Status(
        encoding.status().code(),
        absl::StrCat(at, ".text: ", message, " (max_position_embeddings)",
                     truncate ? ""
                              : absl::StrCat(": set truncate = true to keep "
                                             "the first ",
                                             max_length,
                                             " tokens, or send shorter text")));
  }
  // DistilBERT has no token types: [CLS] A [SEP] B [SEP] is all type 0 to
  // it (transformers does not even pass them), so the WordPiece pair types
  // are dropped rather than refused.
  if (!config.has_token_types) {
    std::fill(encoding->type_ids.begin(), encoding->type_ids.end(), 0);
  }
  // BERT's tokenizer gives the pair token type 1; RoBERTa's gives every
  // token type 0, so its pairs fit type_vocab_size = 1.
  if (!seq.text_pair().empty() && config.type_vocab_size < 2 &&
      std::any_of(encoding->type_ids.begin(), encoding->type_ids.end(),
                  [](int32_t type) { return type > 0; })) {
    return absl::InvalidArgumentError(absl::StrCat(
        at, ".text_pair needs token type 1, but the model's type_vocab_size = ",
        config.type_vocab_size, ": send one text"));
  }
  for (size_t i = 0; i < encoding->ids.size(); ++i) {
    // The server checks the vocab against vocab_size at start; kept as a
    // guard so the model never sees an id it would refuse.
    if (encoding->ids[i] >= config.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          at, ".text: token \"", encoding->tokens[i], "\" has id ",
          encoding->ids[i],
          ", outside the model's vocab_size = ", config.vocab_size));
    }
  }
  return *std::move(encoding);
}

absl::StatusOr<InputSequence> ResolveSequence(const v1::Sequence& seq, int s,
                                              bool truncate,
                                              const ServedModel& model) {
  if (!seq.text().empty() || !seq.text_pair().empty()) {
    return TokenizeSequence(seq, s, truncate, model);
  }
  if (absl::Status st = CheckIdSequence(seq, s, model.info->config); !st.ok()) {
    return st;
  }
  InputSequence input;
  input.ids.assign(seq.token_ids().begin(), seq.token_ids().end());
  input.type_ids.assign(seq.token_type_ids().begin(),
                        seq.token_type_ids().end());
  if (model.tokenizer != nullptr) {
    input.tokens.reserve(input.ids.size());
    for (int32_t id : input.ids) {
      input.tokens.push_back(model.tokenizer->IdToToken(id));
    }
  }
  return input;
}

// The one mapping of the proto's Pooling to the model's: UNSPECIFIED is
// `unspecified` (each RPC has its own default), POOLER needs pooler weights
// (else the message offers `alternatives`).
absl::StatusOr<PoolingMode> ToPoolingMode(v1::Pooling pooling,
                                          PoolingMode unspecified,
                                          const ModelInfo& info,
                                          absl::string_view alternatives) {
  switch (pooling) {
    case v1::POOLING_UNSPECIFIED:
      return unspecified;
    case v1::POOLING_NONE:
      return PoolingMode::kNone;
    case v1::POOLING_CLS:
      return PoolingMode::kCls;
    case v1::POOLING_MEAN:
      return PoolingMode::kMean;
    case v1::POOLING_POOLER:
      if (!info.has_pooler) {
        return absl::InvalidArgumentError(
            absl::StrCat("pooling = POOLING_POOLER but model \"", info.name,
                         "\" has no pooler weights: ", alternatives));
      }
      return PoolingMode::kPooler;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "pooling = ", static_cast<int>(pooling), " is not a Pooling value"));
  }
}

// Encode: unset is the model's default, and an embedding is returned (see
// the Pooling comment in the proto).
absl::StatusOr<PoolingMode> SelectPooling(const v1::EncodeRequest& request,
                                          const ModelInfo& info) {
  absl::StatusOr<PoolingMode> mode =
      ToPoolingMode(request.pooling(), info.default_pooling, info,
                    "use POOLING_CLS or POOLING_MEAN");
  if (mode.ok() && request.pooling() == v1::POOLING_NONE &&
      request.normalize()) {
    return absl::InvalidArgumentError(
        "normalize = true needs an embedding, but pooling = POOLING_NONE: "
        "choose POOLING_CLS, POOLING_MEAN or POOLING_POOLER");
  }
  return mode;
}

// A head pruned at load (attnserve --prune_heads) has no map and nothing to
// mask: asking for it is INVALID_ARGUMENT naming it.
absl::Status CheckNotPruned(const ModelInfo& info, int layer, int head,
                            absl::string_view what) {
  if (!info.IsPruned(layer, head)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": layer ", layer, " head ", head,
                   " was pruned at load (model \"", info.name, "\" keeps ",
                   info.HeadsIn(layer), " of ", info.config.num_heads,
                   " heads in layer ", layer, "; see ModelInfo.pruned_heads)"));
}

absl::StatusOr<std::vector<uint8_t>> SelectHeadMask(
    const v1::EncodeRequest& request, const ModelInfo& info) {
  const ModelConfig& config = info.config;
  std::vector<uint8_t> mask;  // (layers, heads), 1 = masked
  if (request.head_mask().empty()) return mask;
  const auto& refs = request.head_mask();
  IndexList list;
  list.size = refs.size();
  list.limit = int64_t{config.num_layers} * config.num_heads;
  list.field = "head_mask";
  list.noun = "head";
  list.index_of = [&](int i) -> absl::StatusOr<int64_t> {
    const v1::HeadRef& ref = refs[i];
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
    if (absl::Status s = CheckNotPruned(info, ref.layer(), ref.head(),
                                        absl::StrCat("head_mask[", i, "]"));
        !s.ok()) {
      return s;
    }
    return int64_t{ref.layer()} * config.num_heads + ref.head();
  };
  list.describe = [&](int i) {
    return absl::StrCat("head_mask[", i, "] = (layer ", refs[i].layer(),
                        ", head ", refs[i].head(), ")");
  };
  absl::StatusOr<std::vector<int64_t>> masked = CheckIndexList(list);
  if (!masked.ok()) return masked.status();
  mask.assign(list.limit, 0);
  for (int64_t k : *masked) mask[k] = 1;
  return mask;
}

// AttentionRequest → spec (attention part) and the model layers to keep.
absl::Status SelectAttention(const v1::AttentionRequest& a,
                             const std::vector<InputSequence>& inputs,
                             const ServedModel& model, OutputSpec* spec,
                             std::vector<int>* model_layers) {
  const ModelConfig& config = model.info->config;
  spec->attention = !a.omit_maps();
  spec->stats = a.stats();
  spec->rollout = a.rollout();
  if (a.omit_maps() && !a.stats() && !a.rollout()) {
    return absl::InvalidArgumentError(
        "attention.omit_maps = true leaves nothing to return: also set "
        "attention.stats or attention.rollout, or leave attention out");
  }
  if (a.omit_maps() && !a.query_positions().empty()) {
    return absl::InvalidArgumentError(
        "attention.query_positions selects rows of the maps, but "
        "attention.omit_maps = true leaves the maps out: drop one of them");
  }
  auto layers = SelectIndices(a.layers(), "attention.layers", config.num_layers,
                              "layers");
  if (!layers.ok()) return layers.status();
  auto heads =
      SelectIndices(a.heads(), "attention.heads", config.num_heads, "heads");
  if (!heads.ok()) return heads.status();
  spec->attention_layers = *std::move(layers);
  spec->attention_heads = *std::move(heads);
  // Heads named in the request must have maps; unnamed (all heads), a pruned
  // head's map comes back as zeros.
  for (int layer : spec->attention_layers) {
    for (int k = 0; k < a.heads_size(); ++k) {
      if (absl::Status s =
              CheckNotPruned(*model.info, layer, a.heads(k),
                             absl::StrCat("attention.heads[", k, "]"));
          !s.ok()) {
        return s;
      }
    }
  }

  // Rollout multiplies every layer's head-averaged maps: the model keeps all
  // layers then, whatever `layers` selects for the maps and statistics.
  if (a.rollout()) {
    model_layers->resize(config.num_layers);
    std::iota(model_layers->begin(), model_layers->end(), 0);
  } else {
    *model_layers = spec->attention_layers;
    std::sort(model_layers->begin(), model_layers->end());
  }
  for (int layer : spec->attention_layers) {
    spec->layer_slots.push_back(static_cast<int>(
        std::lower_bound(model_layers->begin(), model_layers->end(), layer) -
        model_layers->begin()));
  }

  // Query rows: each must exist in every sequence of the request.
  int64_t shortest = config.max_tokens();
  int shortest_at = 0;
  for (size_t s = 0; s < inputs.size(); ++s) {
    if (static_cast<int64_t>(inputs[s].ids.size()) < shortest) {
      shortest = inputs[s].ids.size();
      shortest_at = static_cast<int>(s);
    }
  }
  const auto& positions = a.query_positions();
  IndexList list;
  list.size = positions.size();
  list.limit = shortest;
  list.field = "attention.query_positions";
  list.noun = "position";
  list.describe = [&](int i) {
    return absl::StrCat("attention.query_positions[", i, "] = ", positions[i]);
  };
  list.index_of = [&](int i) -> absl::StatusOr<int64_t> {
    if (positions[i] < 0 || positions[i] >= shortest) {
      return absl::InvalidArgumentError(absl::StrCat(
          list.describe(i), " is out of range [0, ", shortest,
          ") for sequences[", shortest_at, "], which has ", shortest,
          " tokens (positions must exist in every sequence of the request)"));
    }
    return positions[i];
  };
  absl::StatusOr<std::vector<int64_t>> rows = CheckIndexList(list);
  if (!rows.ok()) return rows.status();
  spec->query_positions = *std::move(rows);

  switch (a.dtype()) {
    case v1::DATA_TYPE_UNSPECIFIED:
    case v1::FLOAT32:
      spec->attention_dtype = v1::FLOAT32;
      break;
    case v1::FLOAT16:
      spec->attention_dtype = v1::FLOAT16;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("attention.dtype = ", static_cast<int>(a.dtype()),
                       " is not a DataType: use FLOAT32 or FLOAT16"));
  }
  if (spec->stats && model.tokenizer != nullptr) {
    spec->sep_id = model.tokenizer->sep_id();  // [SEP] or </s>
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckModelName(const std::string& requested,
                            const ModelInfo& info) {
  if (requested.empty() || requested == info.name) return absl::OkStatus();
  return absl::NotFoundError(absl::StrCat("model \"", requested,
                                          "\" is not served here; served: \"",
                                          info.name, "\""));
}

absl::StatusOr<std::vector<InputSequence>> ResolveSequences(
    const google::protobuf::RepeatedPtrField<v1::Sequence>& sequences,
    bool truncate, const ServedModel& model, const RequestLimits& limits) {
  const int num_seqs = sequences.size();
  if (num_seqs == 0) {
    return absl::InvalidArgumentError(
        "sequences is empty: send at least one sequence");
  }
  if (num_seqs > limits.max_sequences_per_request) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sequences has ", num_seqs,
        " entries, more than this server's limit of ",
        limits.max_sequences_per_request,
        " per request (--max_sequences_per_request): split the batch"));
  }
  std::vector<InputSequence> inputs;
  inputs.reserve(num_seqs);
  int64_t total_tokens = 0;
  for (int s = 0; s < num_seqs; ++s) {
    absl::StatusOr<InputSequence> input =
        ResolveSequence(sequences[s], s, truncate, model);
    if (!input.ok()) return input.status();
    total_tokens += input->ids.size();
    inputs.push_back(*std::move(input));
  }
  if (total_tokens > limits.max_tokens_per_request) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sequences have ", total_tokens,
        " tokens in total, more than this server's limit of ",
        limits.max_tokens_per_request,
        " per request (--max_tokens_per_request): split the batch"));
  }
  return inputs;
}

absl::StatusOr<ValidatedEncode> ValidateEncodeRequest(
    const v1::EncodeRequest& request, const ServedModel& model,
    const RequestLimits& limits) {
  const ModelInfo& info = *model.info;
  const ModelConfig& config = info.config;
  if (absl::Status s = CheckModelName(request.model(), info); !s.ok()) {
    return s;
  }
  ValidatedEncode out;
  absl::StatusOr<std::vector<InputSequence>> inputs =
      ResolveSequences(request.sequences(), request.truncate(), model, limits);
  if (!inputs.ok()) return inputs.status();
  out.inputs = *std::move(inputs);

  // What to return.
  OutputSpec& spec = out.spec;
  spec.hidden_states = request.return_hidden_states();
  std::vector<int> model_layers;  // ascending, as the model wants them
  if (request.has_attention()) {
    if (absl::Status s = SelectAttention(request.attention(), out.inputs, model,
                                         &spec, &model_layers);
        !s.ok()) {
      return s;
    }
  }
  auto pooling = SelectPooling(request, info);
  if (!pooling.ok()) return pooling.status();
  spec.embedding = *pooling != PoolingMode::kNone;
  auto head_mask = SelectHeadMask(request, info);
  if (!head_mask.ok()) return head_mask.status();

  // Size of the answer, before any work is done.
  const ResponseSize size = SizeOfResponse(spec, out.inputs, config);
  if (size.total() > limits.max_response_bytes) {
    return ResponseTooLarge(size, spec, limits);
  }
  out.response_bytes = size.total();

  // The model's tasks.
  out.tasks.reserve(out.inputs.size());
  for (const InputSequence& input : out.inputs) {
    SequenceTask task;
    task.token_ids = input.ids;
    task.token_type_ids = input.type_ids;
    task.want_hidden = spec.hidden_states;
    task.attention_layers = model_layers;
    task.head_mask = *head_mask;
    task.pooling = *pooling;
    task.normalize = request.normalize();
    out.tasks.push_back(std::move(task));
  }
  return out;
}

absl::StatusOr<std::vector<InputSequence>> ValidateTokenizeRequest(
    const v1::TokenizeRequest& request, const ServedModel& model,
    const RequestLimits& limits) {
  if (absl::Status s = CheckModelName(request.model(), *model.info); !s.ok()) {
    return s;
  }
  if (model.tokenizer == nullptr) {
    return NoTokenizerError("Tokenize", model);
  }
  return ResolveSequences(request.sequences(), request.truncate(), model,
                          limits);
}

absl::StatusOr<RankHeadsJob> ValidateRankHeadsRequest(
    const v1::RankHeadsRequest& request, const ServedModel& model,
    const RequestLimits& limits, int64_t tokens_per_pass, int64_t cost_per_pass,
    bool reuse_layer_inputs) {
  const ModelInfo& info = *model.info;
  const ModelConfig& config = info.config;
  if (absl::Status s = CheckModelName(request.model(), info); !s.ok()) {
    return s;
  }
  // RankHeads compares pooled outputs; unset is mean pooling.
  absl::StatusOr<PoolingMode> pooling =
      ToPoolingMode(request.pooling(), PoolingMode::kMean, info,
                    "use POOLING_MEAN (the default) or POOLING_CLS");
  if (!pooling.ok()) return pooling.status();
  if (*pooling == PoolingMode::kNone) {
    return absl::InvalidArgumentError(
        "pooling = POOLING_NONE, but RankHeads compares pooled outputs: use "
        "POOLING_MEAN (the default), POOLING_CLS or POOLING_POOLER");
  }
  absl::StatusOr<std::vector<InputSequence>> inputs =
      ResolveSequences(request.sequences(), request.truncate(), model, limits);
  if (!inputs.ok()) return inputs.status();

  // The work, checked here to name the flag (RankHeadsJob::Create checks it
  // again against the same limit).
  const int64_t layers = config.num_layers;
  const int64_t runs = RankHeadsRunsPerSequence(info);
  int64_t tokens = 0;
  for (const InputSequence& input : *inputs) tokens += input.ids.size();
  const int64_t work = tokens * runs;
  const int64_t limit = limits.max_rank_heads_tokens;
  if (work > limit) {
    const int64_t fits = limit / runs;
    return absl::ResourceExhaustedError(absl::StrCat(
        "RankHeads would run ", work, " tokens of forward passes (",
        inputs->size(), " sequences of ", tokens, " tokens in all, each run ",
        runs, " times: unmasked, ", runs - 1 - layers, " single heads masked, ",
        layers, " whole layers masked), more than this server's limit of ",
        limit, " (--max_rank_heads_tokens): ",
        fits > 0 ? absl::StrCat("send fewer or shorter sequences, at most ",
                                fits, " tokens in all for this model")
                 : absl::StrCat("one token costs ", runs,
                                " on this model, so it cannot be ranked here; "
                                "ask the operator to raise the limit")));
  }
  std::vector<RankSequence> sequences;
  sequences.reserve(inputs->size());
  for (InputSequence& input : *inputs) {
    sequences.push_back({std::move(input.ids), std::move(input.type_ids)});
  }
  RankHeadsLimits job_limits;
  job_limits.tokens_per_pass = tokens_per_pass;
  job_limits.cost_per_pass = std::max<int64_t>(cost_per_pass, 0);
  job_limits.reuse_layer_inputs = reuse_layer_inputs;
  job_limits.max_ablation_tokens = limit;
  return RankHeadsJob::Create(info, std::move(sequences), *pooling, job_limits);
}

}  // namespace attnserve
