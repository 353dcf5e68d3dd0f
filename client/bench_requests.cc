#include "client/bench_requests.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace attnserve::client {

std::vector<v1::Sequence> CallSequences(const Flags& f, const Synthetic& syn,
                                        const std::vector<v1::Sequence>& given,
                                        int64_t index, std::mt19937* rng) {
  std::vector<v1::Sequence> out;
  const int b = f.bench.batch;
  for (int i = 0; i < b; ++i) {
    if (syn.tokens == 0) {
      out.push_back(given[(index * b + i) % given.size()]);
      continue;
    }
    // Ids 1.. (0 is [PAD] in BERT vocabularies).
    std::uniform_int_distribution<int> id(std::min(1, syn.vocab_size - 1),
                                          syn.vocab_size - 1);
    v1::Sequence seq;
    for (int t = 0; t < syn.tokens; ++t) {
      int v = id(*rng);
      if (t == 0 && syn.cls >= 0) v = syn.cls;
      if (t == syn.tokens - 1 && t > 0 && syn.sep >= 0) v = syn.sep;
      seq.add_token_ids(v);
    }
    out.push_back(std::move(seq));
  }
  return out;
}

std::vector<std::pair<int, int>> ExpandedMask(const Flags& f, int num_heads) {
  std::vector<std::pair<int, int>> out;
  for (const auto& [layer, head] : f.mask) {
    if (head >= 0) {
      out.emplace_back(layer, head);
    } else {
      for (int h = 0; h < num_heads; ++h) out.emplace_back(layer, h);
    }
  }
  return out;
}

v1::EncodeRequest EncodeRequestOf(
    const Flags& f, std::vector<v1::Sequence> seqs,
    const std::vector<std::pair<int, int>>& mask) {
  v1::EncodeRequest r;
  r.set_model(f.model);
  for (v1::Sequence& s : seqs) *r.add_sequences() = std::move(s);
  r.set_truncate(f.truncate);
  r.set_pooling(f.pooling);
  r.set_normalize(f.normalize);
  r.set_return_hidden_states(f.hidden);
  if (f.attention) {
    v1::AttentionRequest* a = r.mutable_attention();
    a->mutable_layers()->Add(f.layers.begin(), f.layers.end());
    a->mutable_heads()->Add(f.heads.begin(), f.heads.end());
    a->set_dtype(f.fp16 ? v1::FLOAT16 : v1::FLOAT32);
  }
  for (const auto& [layer, head] : mask) {
    v1::HeadRef* ref = r.add_head_mask();
    ref->set_layer(layer);
    ref->set_head(head);
  }
  return r;
}

namespace {

// Little-endian bytes of int64 values.
std::string Int64Bytes(const std::vector<int64_t>& values) {
  std::string out(values.size() * 8, '\0');
  for (size_t i = 0; i < values.size(); ++i) {
    const uint64_t u = static_cast<uint64_t>(values[i]);
    for (int b = 0; b < 8; ++b)
      out[8 * i + b] = static_cast<char>(u >> (8 * b));
  }
  return out;
}

// BYTES raw contents: a 4-byte little-endian length before each element.
std::string BytesElements(const std::vector<std::string>& values) {
  std::string out;
  for (const std::string& v : values) {
    const uint32_t n = static_cast<uint32_t>(v.size());
    for (int b = 0; b < 4; ++b) out.push_back(static_cast<char>(n >> (8 * b)));
    out += v;
  }
  return out;
}

}  // namespace

inference::ModelInferRequest InferRequestOf(
    const Flags& f, const std::vector<v1::Sequence>& seqs,
    const std::vector<std::pair<int, int>>& mask, int64_t* tokens) {
  inference::ModelInferRequest r;
  r.set_model_name(f.model);
  const int64_t b = static_cast<int64_t>(seqs.size());
  auto add_input = [&](const char* name, const char* datatype,
                       std::vector<int64_t> shape, std::string data) {
    auto* in = r.add_inputs();
    in->set_name(name);
    in->set_datatype(datatype);
    in->mutable_shape()->Add(shape.begin(), shape.end());
    r.add_raw_input_contents(std::move(data));
  };
  const bool text = !seqs.empty() && seqs[0].token_ids_size() == 0;
  *tokens = 0;
  if (text) {
    std::vector<std::string> texts, pairs;
    bool any_pair = false;
    for (const v1::Sequence& s : seqs) {
      texts.push_back(s.text());
      pairs.push_back(s.text_pair());
      any_pair = any_pair || !s.text_pair().empty();
    }
    add_input("text", "BYTES", {b}, BytesElements(texts));
    if (any_pair) add_input("text_pair", "BYTES", {b}, BytesElements(pairs));
  } else {
    int64_t t = 0;
    bool ragged = false, types = false;
    for (const v1::Sequence& s : seqs) {
      if (t != 0 && s.token_ids_size() != t) ragged = true;
      t = std::max<int64_t>(t, s.token_ids_size());
      types = types || s.token_type_ids_size() > 0;
      *tokens += s.token_ids_size();
    }
    std::vector<int64_t> ids(b * t, 0), attention(b * t, 0), type_ids(b * t, 0);
    for (int64_t i = 0; i < b; ++i) {
      const v1::Sequence& s = seqs[i];
      for (int j = 0; j < s.token_ids_size(); ++j) {
        ids[i * t + j] = s.token_ids(j);
        attention[i * t + j] = 1;
        if (j < s.token_type_ids_size())
          type_ids[i * t + j] = s.token_type_ids(j);
      }
    }
    add_input("input_ids", "INT64", {b, t}, Int64Bytes(ids));
    if (ragged)
      add_input("attention_mask", "INT64", {b, t}, Int64Bytes(attention));
    if (types)
      add_input("token_type_ids", "INT64", {b, t}, Int64Bytes(type_ids));
  }
  auto& p = *r.mutable_parameters();
  if (f.pooling != v1::POOLING_NONE) r.add_outputs()->set_name("embedding");
  if (f.pooling != v1::POOLING_UNSPECIFIED) {
    p["pooling"].set_string_param(absl::AsciiStrToLower(
        absl::StripPrefix(v1::Pooling_Name(f.pooling), "POOLING_")));
  }
  if (f.normalize) p["normalize"].set_bool_param(true);
  if (f.truncate) p["truncate"].set_bool_param(true);
  if (f.hidden) r.add_outputs()->set_name("last_hidden_state");
  if (f.attention) {
    r.add_outputs()->set_name("attentions");
    if (!f.layers.empty()) {
      p["attention_layers"].set_string_param(absl::StrJoin(f.layers, ","));
    }
    if (!f.heads.empty()) {
      p["attention_heads"].set_string_param(absl::StrJoin(f.heads, ","));
    }
    if (f.fp16) p["attention_dtype"].set_string_param("FP16");
  }
  if (text) r.add_outputs()->set_name("token_ids");
  if (!mask.empty()) {
    std::vector<std::string> refs;
    for (const auto& [layer, head] : mask) {
      refs.push_back(absl::StrCat(layer, ":", head));
    }
    p["head_mask"].set_string_param(absl::StrJoin(refs, ","));
  }
  return r;
}

int64_t CountTokens(const v1::EncodeResponse& r) {
  int64_t n = 0;
  for (const v1::SequenceResult& s : r.results()) n += s.token_ids_size();
  return n;
}

// The nonzero entries of the token_ids output (padding is id 0, [PAD]).
int64_t CountTokens(const inference::ModelInferResponse& r) {
  for (int i = 0; i < r.outputs_size() && i < r.raw_output_contents_size();
       ++i) {
    if (r.outputs(i).name() != "token_ids") continue;
    const std::string& d = r.raw_output_contents(i);
    int64_t n = 0;
    for (size_t k = 0; k + 8 <= d.size(); k += 8) {
      n += std::memcmp(d.data() + k, "\0\0\0\0\0\0\0\0", 8) != 0;
    }
    return n;
  }
  return 0;
}

}  // namespace attnserve::client
