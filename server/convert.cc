#include "server/convert.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/half.h"
#include "model/encoder/head_stats.h"

namespace attnserve {
namespace {

constexpr bool kLittleEndian = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;

// Appends `n` values of T to `out` as little-endian bytes.
template <typename T>
void PutLittleEndian(const T* values, size_t n, char* out) {
  if constexpr (kLittleEndian) {
    std::memcpy(out, values, n * sizeof(T));
  } else {
    for (size_t i = 0; i < n; ++i) {
      typename std::conditional<sizeof(T) == 4, uint32_t, uint16_t>::type u;
      std::memcpy(&u, &values[i], sizeof(T));
      for (size_t b = 0; b < sizeof(T); ++b) {
        out[i * sizeof(T) + b] = static_cast<char>((u >> (8 * b)) & 0xff);
      }
    }
  }
}

void SetFloat32Tensor(const std::vector<float>& values,
                      std::initializer_list<int64_t> shape, v1::Tensor* t) {
  t->set_dtype(v1::FLOAT32);
  for (int64_t d : shape) t->add_shape(d);
  std::string* data = t->mutable_data();
  data->resize(values.size() * sizeof(float));
  PutLittleEndian(values.data(), values.size(), data->data());
}

}  // namespace

absl::Status ToSequenceResult(const OutputSpec& spec, const ModelConfig& config,
                              InputSequence& input, SequenceOutput& output,
                              v1::SequenceResult* result) {
  const int64_t t = input.ids.size();
  const int64_t hidden = config.hidden_size;
  const int64_t heads = config.num_heads;
  auto size_error = [](const char* what, size_t got, int64_t want) {
    return absl::InternalError(absl::StrCat("model returned ", got, " ", what,
                                            " values, expected ", want));
  };

  result->mutable_token_ids()->Add(input.ids.begin(), input.ids.end());
  for (std::string& token : input.tokens) {
    result->add_tokens(std::move(token));
  }
  if (spec.hidden_states) {
    if (static_cast<int64_t>(output.hidden.size()) != t * hidden) {
      return size_error("hidden", output.hidden.size(), t * hidden);
    }
    SetFloat32Tensor(output.hidden, {t, hidden},
                     result->mutable_hidden_states());
    std::vector<float>().swap(output.hidden);
  }
  if (spec.embedding) {
    if (static_cast<int64_t>(output.embedding.size()) != hidden) {
      return size_error("embedding", output.embedding.size(), hidden);
    }
    SetFloat32Tensor(output.embedding, {hidden}, result->mutable_embedding());
  }
  if (!spec.attention && !spec.stats && !spec.rollout) return absl::OkStatus();

  // output.attention: (model layers kept, heads, T, T), layers ascending.
  const int64_t map = t * t;
  const int64_t model_layers =
      spec.rollout ? config.num_layers
                   : static_cast<int64_t>(spec.layer_slots.size());
  if (static_cast<int64_t>(output.attention.size()) !=
      model_layers * heads * map) {
    return size_error("attention", output.attention.size(),
                      model_layers * heads * map);
  }
  // The (T, T) map of response layer l, model head h.
  auto map_of = [&](size_t l, int h) {
    return output.attention.data() + (spec.layer_slots[l] * heads + h) * map;
  };
  const int64_t out_layers = spec.attention_layers.size();
  const int64_t out_heads = spec.attention_heads.size();

  if (spec.stats) {
    std::vector<int64_t> sep_positions;
    if (spec.sep_id >= 0)
      sep_positions = TokenPositions(input.ids, spec.sep_id);
    std::vector<float> selected;  // (out_heads, T, T) of one layer
    for (int64_t l = 0; l < out_layers; ++l) {
      const int layer = spec.attention_layers[l];
      selected.resize(out_heads * map);
      for (int64_t k = 0; k < out_heads; ++k) {
        const float* src = map_of(l, spec.attention_heads[k]);
        std::copy(src, src + map, selected.begin() + k * map);
      }
      absl::StatusOr<std::vector<HeadStats>> head_stats =
          ComputeHeadStats(selected, out_heads, t, sep_positions, layer);
      absl::StatusOr<LayerStats> layer_stats =
          ComputeLayerStats(selected, out_heads, t, layer);
      if (!head_stats.ok() || !layer_stats.ok()) {
        return absl::InternalError(absl::StrCat(
            "head statistics failed: ",
            (head_stats.ok() ? layer_stats.status() : head_stats.status())
                .message()));
      }
      for (int64_t k = 0; k < out_heads; ++k) {
        const HeadStats& h = (*head_stats)[k];
        v1::HeadStats* out = result->add_head_stats();
        out->set_layer(layer);
        out->set_head(spec.attention_heads[k]);
        out->set_entropy(static_cast<float>(h.entropy));
        out->set_max_weight(static_cast<float>(h.max_weight));
        out->set_mean_distance(static_cast<float>(h.mean_distance));
        out->set_cls_weight(static_cast<float>(h.cls_weight));
        out->set_sep_weight(static_cast<float>(h.sep_weight));
        out->set_self_weight(static_cast<float>(h.self_weight));
        out->set_prev_weight(static_cast<float>(h.prev_weight));
        out->set_next_weight(static_cast<float>(h.next_weight));
      }
      v1::LayerStats* out = result->add_layer_stats();
      out->set_layer(layer);
      const std::vector<float> js(layer_stats->js_divergence.begin(),
                                  layer_stats->js_divergence.end());
      SetFloat32Tensor(js, {out_heads, out_heads},
                       out->mutable_js_divergence());
      out->set_diversity(static_cast<float>(layer_stats->diversity));
    }
  }

  if (spec.rollout) {
    absl::StatusOr<std::vector<double>> rollout =
        AttentionRollout(output.attention, model_layers, heads, t);
    if (!rollout.ok()) {
      return absl::InternalError(
          absl::StrCat("rollout failed: ", rollout.status().message()));
    }
    const std::vector<float> values(rollout->begin(), rollout->end());
    SetFloat32Tensor(values, {t, t}, result->mutable_rollout());
  }

  if (spec.attention) {
    // Rows of each map: all T, or the query positions in request order.
    const int64_t rows =
        spec.query_positions.empty() ? t : spec.query_positions.size();
    v1::Tensor* tensor = result->mutable_attention();
    tensor->set_dtype(spec.attention_dtype);
    for (int64_t d : {out_layers, out_heads, rows, t}) tensor->add_shape(d);
    const bool half = spec.attention_dtype == v1::FLOAT16;
    const size_t elem = half ? sizeof(uint16_t) : sizeof(float);
    std::string* data = tensor->mutable_data();
    data->resize(out_layers * out_heads * rows * t * elem);
    char* dst = data->data();
    std::vector<uint16_t> halves(half ? t : 0);
    // Writes n = one row (or all rows when contiguous) of src at dst.
    auto put = [&](const float* src, int64_t n) {
      if (half) {
        halves.resize(n);
        for (int64_t i = 0; i < n; ++i) halves[i] = FloatToHalf(src[i]);
        PutLittleEndian(halves.data(), n, dst);
      } else {
        PutLittleEndian(src, n, dst);
      }
      dst += n * elem;
    };
    for (int64_t l = 0; l < out_layers; ++l) {
      for (int64_t h = 0; h < out_heads; ++h) {
        // (T, T) map of model layer attention_layers[l], head
        // attention_heads[h]
        const float* src = map_of(l, spec.attention_heads[h]);
        if (spec.query_positions.empty()) {
          put(src, map);
        } else {
          for (int64_t q : spec.query_positions) put(src + q * t, t);
        }
      }
    }
  }
  std::vector<float>().swap(output.attention);
  return absl::OkStatus();
}

void ToTokenizedSequence(InputSequence& input, v1::TokenizedSequence* result) {
  result->mutable_token_ids()->Add(input.ids.begin(), input.ids.end());
  for (std::string& token : input.tokens) {
    result->add_tokens(std::move(token));
  }
  if (input.type_ids.empty()) {
    result->mutable_token_type_ids()->Resize(input.ids.size(), 0);
  } else {
    result->mutable_token_type_ids()->Add(input.type_ids.begin(),
                                          input.type_ids.end());
  }
  result->mutable_offsets()->Reserve(2 * input.offsets.size());
  for (const auto& [start, end] : input.offsets) {
    result->add_offsets(start);
    result->add_offsets(end);
  }
}

void ToRankHeadsResponse(const HeadRanking& ranking, const std::string& model,
                         v1::RankHeadsResponse* response) {
  response->set_model(model);
  auto add = [](const HeadImportance& from, v1::HeadImportance* to) {
    to->set_layer(from.layer);
    to->set_head(from.head);
    to->set_importance(static_cast<float>(from.importance));
  };
  for (const HeadImportance& h : ranking.heads) add(h, response->add_heads());
  for (const HeadImportance& l : ranking.layers) add(l, response->add_layers());
  response->set_ablation_tokens(ranking.ablation_tokens);
  response->set_forward_passes(static_cast<int32_t>(ranking.forward_passes));
}

}  // namespace attnserve
