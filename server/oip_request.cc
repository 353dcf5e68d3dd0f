#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "server/oip.h"

namespace attnserve {
namespace {

// Tensors travel as little-endian bytes; this code copies host memory.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "OIP raw contents are little-endian");

using Input = inference::ModelInferRequest::InferInputTensor;
using Parameters =
    google::protobuf::Map<std::string, inference::InferParameter>;

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(what);
}

std::string ShapeString(const google::protobuf::RepeatedField<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// One input tensor with where its data is.
struct InputRef {
  const Input* tensor = nullptr;
  const std::string* raw = nullptr;  // null: typed contents
};

// Elements of `shape`, which must have `rank` dimensions (or one of `ranks`),
// each ≥ 1 and small enough that the product cannot overflow.
absl::StatusOr<int64_t> Elements(const InputRef& in,
                                 std::vector<int> allowed_ranks) {
  const auto& shape = in.tensor->shape();
  const std::string& name = in.tensor->name();
  if (std::find(allowed_ranks.begin(), allowed_ranks.end(), shape.size()) ==
      allowed_ranks.end()) {
    return Bad(absl::StrCat(name, ": shape ", ShapeString(shape), " has ",
                            shape.size(), " dimensions, expected ",
                            absl::StrJoin(allowed_ranks, " or ")));
  }
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 1 || d > (int64_t{1} << 24)) {
      return Bad(absl::StrCat(name, ": shape ", ShapeString(shape),
                              " has a dimension outside [1, 2^24]"));
    }
    n *= d;
    if (n > (int64_t{1} << 31)) {
      return Bad(absl::StrCat(name, ": shape ", ShapeString(shape),
                              " has more than 2^31 elements"));
    }
  }
  return n;
}

// An INT64 or INT32 tensor of `count` elements, as int64.
absl::StatusOr<std::vector<int64_t>> IntValues(const InputRef& in,
                                               int64_t count) {
  const Input& t = *in.tensor;
  const bool int64 = t.datatype() == "INT64";
  if (!int64 && t.datatype() != "INT32") {
    return Bad(absl::StrCat(t.name(), ": datatype ", t.datatype(),
                            " is not INT64 or INT32"));
  }
  std::vector<int64_t> values(count);
  if (in.raw != nullptr) {
    const size_t elem = int64 ? 8 : 4;
    if (in.raw->size() != count * elem) {
      return Bad(absl::StrCat(t.name(), ": raw contents hold ", in.raw->size(),
                              " bytes, but ", t.datatype(), " ",
                              ShapeString(t.shape()), " needs ", count * elem));
    }
    for (int64_t i = 0; i < count; ++i) {
      if (int64) {
        std::memcpy(&values[i], in.raw->data() + 8 * i, 8);
      } else {
        int32_t v;
        std::memcpy(&v, in.raw->data() + 4 * i, 4);
        values[i] = v;
      }
    }
    return values;
  }
  const auto& c = t.contents();
  const int64_t got = int64 ? c.int64_contents_size() : c.int_contents_size();
  if (got != count) {
    return Bad(
        absl::StrCat(t.name(), ": ", t.datatype(), " ", ShapeString(t.shape()),
                     " needs ", count, " values in contents.",
                     int64 ? "int64_contents" : "int_contents", ", got ", got));
  }
  for (int64_t i = 0; i < count; ++i) {
    values[i] = int64 ? c.int64_contents(i) : c.int_contents(i);
  }
  return values;
}

// A BYTES tensor of `count` elements: typed bytes_contents, or raw as a
// 4-byte little-endian length before each element.
absl::StatusOr<std::vector<std::string>> BytesValues(const InputRef& in,
                                                     int64_t count) {
  const Input& t = *in.tensor;
  if (t.datatype() != "BYTES") {
    return Bad(
        absl::StrCat(t.name(), ": datatype ", t.datatype(), " is not BYTES"));
  }
  std::vector<std::string> values;
  if (in.raw == nullptr) {
    if (t.contents().bytes_contents_size() != count) {
      return Bad(absl::StrCat(t.name(), ": BYTES ", ShapeString(t.shape()),
                              " needs ", count,
                              " values in contents.bytes_contents, got ",
                              t.contents().bytes_contents_size()));
    }
    values.assign(t.contents().bytes_contents().begin(),
                  t.contents().bytes_contents().end());
    return values;
  }
  const std::string& raw = *in.raw;
  size_t at = 0;
  for (int64_t i = 0; i < count; ++i) {
    uint32_t length = 0;
    if (raw.size() - at < 4) {
      return Bad(absl::StrCat(t.name(), ": raw BYTES end before element ", i,
                              "'s 4-byte length (", count, " elements)"));
    }
    std::memcpy(&length, raw.data() + at, 4);
    at += 4;
    if (raw.size() - at < length) {
      return Bad(absl::StrCat(t.name(), ": raw BYTES element ", i, " says ",
                              length, " bytes, but only ", raw.size() - at,
                              " are left"));
    }
    values.emplace_back(raw.substr(at, length));
    at += length;
  }
  if (at != raw.size()) {
    return Bad(absl::StrCat(t.name(), ": raw BYTES hold ", raw.size() - at,
                            " bytes after the last of ", count, " elements"));
  }
  return values;
}

// Reads a bool parameter; unset → `fallback`.
absl::StatusOr<bool> BoolParam(const Parameters& p, const std::string& name,
                               bool fallback) {
  auto it = p.find(name);
  if (it == p.end()) return fallback;
  const inference::InferParameter& v = it->second;
  switch (v.parameter_choice_case()) {
    case inference::InferParameter::kBoolParam:
      return v.bool_param();
    case inference::InferParameter::kInt64Param:
      if (v.int64_param() == 0 || v.int64_param() == 1) {
        return v.int64_param() == 1;
      }
      break;
    case inference::InferParameter::kStringParam: {
      const std::string s = absl::AsciiStrToLower(v.string_param());
      if (s == "true" || s == "false") return s == "true";
      break;
    }
    default:
      break;
  }
  return Bad(absl::StrCat("parameter ", name, " must be a bool"));
}

// A string parameter (an int64 one is read as its decimal); unset → "".
absl::StatusOr<std::string> StringParam(const Parameters& p,
                                        const std::string& name) {
  auto it = p.find(name);
  if (it == p.end()) return std::string();
  const inference::InferParameter& v = it->second;
  if (v.parameter_choice_case() == inference::InferParameter::kStringParam) {
    return v.string_param();
  }
  if (v.parameter_choice_case() == inference::InferParameter::kInt64Param) {
    return absl::StrCat(v.int64_param());
  }
  return Bad(absl::StrCat("parameter ", name, " must be a string"));
}

// "0, 3" → {0, 3}.
absl::StatusOr<std::vector<int32_t>> IntListParam(const Parameters& p,
                                                  const std::string& name) {
  absl::StatusOr<std::string> text = StringParam(p, name);
  if (!text.ok()) return text.status();
  std::vector<int32_t> out;
  for (absl::string_view part : absl::StrSplit(*text, ',', absl::SkipEmpty())) {
    int32_t v;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &v)) {
      return Bad(absl::StrCat("parameter ", name, " = \"", *text,
                              "\" is not a comma-separated list of integers"));
    }
    out.push_back(v);
  }
  return out;
}

const std::map<std::string, OipOutput>& OutputNames() {
  static const auto* names = new std::map<std::string, OipOutput>{
      {"last_hidden_state", OipOutput::kLastHiddenState},
      {"pooler_output", OipOutput::kPoolerOutput},
      {"embedding", OipOutput::kEmbedding},
      {"attentions", OipOutput::kAttentions},
      {"token_ids", OipOutput::kTokenIds},
  };
  return *names;
}

// The parameters that shape the v1 request.
absl::Status ApplyParameters(const Parameters& p, const ModelInfo& info,
                             OipRequest* out) {
  v1::EncodeRequest& e = out->encode;
  auto has = [&](OipOutput o) {
    return std::find(out->outputs.begin(), out->outputs.end(), o) !=
           out->outputs.end();
  };
  absl::StatusOr<bool> truncate = BoolParam(p, "truncate", false);
  if (!truncate.ok()) return truncate.status();
  e.set_truncate(*truncate);

  absl::StatusOr<std::string> pooling = StringParam(p, "pooling");
  if (!pooling.ok()) return pooling.status();
  const std::string mode = absl::AsciiStrToLower(*pooling);
  v1::Pooling v1_pooling = v1::POOLING_UNSPECIFIED;
  if (mode == "none") {
    v1_pooling = v1::POOLING_NONE;
  } else if (mode == "cls") {
    v1_pooling = v1::POOLING_CLS;
  } else if (mode == "mean") {
    v1_pooling = v1::POOLING_MEAN;
  } else if (mode == "pooler") {
    v1_pooling = v1::POOLING_POOLER;
  } else if (!mode.empty()) {
    return Bad(absl::StrCat("parameter pooling = \"", *pooling,
                            "\" is not none, cls, mean or pooler"));
  }
  absl::StatusOr<bool> normalize = BoolParam(p, "normalize", false);
  if (!normalize.ok()) return normalize.status();
  if (has(OipOutput::kEmbedding)) {
    if (v1_pooling == v1::POOLING_NONE) {
      return Bad(
          "output embedding is requested but parameter pooling = none: "
          "choose cls, mean or pooler, or leave embedding out");
    }
    e.set_pooling(v1_pooling);
    e.set_normalize(*normalize);
  } else {
    if (*normalize) {
      return Bad("parameter normalize needs the embedding output");
    }
    e.set_pooling(v1::POOLING_NONE);
  }
  e.set_return_hidden_states(has(OipOutput::kLastHiddenState));
  if (out->pooler_output && !info.has_pooler) {
    return Bad(absl::StrCat("output pooler_output: model \"", info.name,
                            "\" has no pooler weights"));
  }

  absl::StatusOr<std::vector<int32_t>> layers =
      IntListParam(p, "attention_layers");
  if (!layers.ok()) return layers.status();
  absl::StatusOr<std::vector<int32_t>> heads =
      IntListParam(p, "attention_heads");
  if (!heads.ok()) return heads.status();
  absl::StatusOr<std::string> dtype = StringParam(p, "attention_dtype");
  if (!dtype.ok()) return dtype.status();
  if (has(OipOutput::kAttentions)) {
    v1::AttentionRequest* a = e.mutable_attention();
    a->mutable_layers()->Add(layers->begin(), layers->end());
    a->mutable_heads()->Add(heads->begin(), heads->end());
    const std::string d = absl::AsciiStrToUpper(*dtype);
    if (d == "FP16") {
      a->set_dtype(v1::FLOAT16);
    } else if (d.empty() || d == "FP32") {
      a->set_dtype(v1::FLOAT32);
    } else {
      return Bad(absl::StrCat("parameter attention_dtype = \"", *dtype,
                              "\" is not FP32 or FP16"));
    }
  } else if (!layers->empty() || !heads->empty() || !dtype->empty()) {
    return Bad(
        "parameters attention_layers, attention_heads and attention_dtype "
        "select the attentions output, which is not requested: add "
        "\"attentions\" to outputs");
  }

  absl::StatusOr<std::string> mask = StringParam(p, "head_mask");
  if (!mask.ok()) return mask.status();
  for (absl::string_view ref : absl::StrSplit(*mask, ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> lh =
        absl::StrSplit(absl::StripAsciiWhitespace(ref), ':');
    v1::HeadRef* h = e.add_head_mask();
    int32_t layer, head;
    if (!absl::SimpleAtoi(lh.first, &layer) ||
        !absl::SimpleAtoi(lh.second, &head)) {
      return Bad(absl::StrCat("parameter head_mask = \"", *mask,
                              "\" is not a list of LAYER:HEAD"));
    }
    h->set_layer(layer);
    h->set_head(head);
  }
  return absl::OkStatus();
}

// input_ids [B, T] (+ attention_mask, token_type_ids) → sequences.
absl::Status IdSequences(const std::map<std::string, InputRef>& inputs,
                         v1::EncodeRequest* e) {
  const InputRef& ids_in = inputs.at("input_ids");
  absl::StatusOr<int64_t> n = Elements(ids_in, {2});
  if (!n.ok()) return n.status();
  const int64_t b = ids_in.tensor->shape(0), t = ids_in.tensor->shape(1);
  absl::StatusOr<std::vector<int64_t>> ids = IntValues(ids_in, *n);
  if (!ids.ok()) return ids.status();
  auto same_shape =
      [&](const char* name) -> absl::StatusOr<std::vector<int64_t>> {
    const InputRef& in = inputs.at(name);
    if (in.tensor->shape_size() != 2 || in.tensor->shape(0) != b ||
        in.tensor->shape(1) != t) {
      return Bad(absl::StrCat(name, ": shape ", ShapeString(in.tensor->shape()),
                              " differs from input_ids' ",
                              ShapeString(ids_in.tensor->shape())));
    }
    return IntValues(in, *n);
  };
  std::vector<int64_t> lengths(b, t);
  if (inputs.count("attention_mask")) {
    absl::StatusOr<std::vector<int64_t>> mask = same_shape("attention_mask");
    if (!mask.ok()) return mask.status();
    for (int64_t s = 0; s < b; ++s) {
      int64_t ones = 0;
      for (int64_t j = 0; j < t; ++j) {
        const int64_t m = (*mask)[s * t + j];
        if (m != 0 && m != 1) {
          return Bad(absl::StrCat("attention_mask[", s, ", ", j, "] = ", m,
                                  " is not 0 or 1"));
        }
        if (m == 1 && ones != j) {
          return Bad(absl::StrCat(
              "attention_mask[", s,
              "] has a 1 after a 0: send right-padded sequences (1s for the "
              "real tokens, then 0s)"));
        }
        ones += m;
      }
      if (ones == 0) {
        return Bad(absl::StrCat("attention_mask[", s,
                                "] is all 0: every "
                                "sequence needs at least one token"));
      }
      lengths[s] = ones;
    }
  }
  std::vector<int64_t> types;
  if (inputs.count("token_type_ids")) {
    absl::StatusOr<std::vector<int64_t>> v = same_shape("token_type_ids");
    if (!v.ok()) return v.status();
    types = *std::move(v);
  }
  auto to_int32 = [](const char* name, int64_t s, int64_t j,
                     int64_t v) -> absl::StatusOr<int32_t> {
    if (v < 0 || v > std::numeric_limits<int32_t>::max()) {
      return Bad(
          absl::StrCat(name, "[", s, ", ", j, "] = ", v, " is out of range"));
    }
    return static_cast<int32_t>(v);
  };
  for (int64_t s = 0; s < b; ++s) {
    v1::Sequence* seq = e->add_sequences();
    for (int64_t j = 0; j < lengths[s]; ++j) {
      absl::StatusOr<int32_t> id =
          to_int32("input_ids", s, j, (*ids)[s * t + j]);
      if (!id.ok()) return id.status();
      seq->add_token_ids(*id);
      if (!types.empty()) {
        absl::StatusOr<int32_t> type =
            to_int32("token_type_ids", s, j, types[s * t + j]);
        if (!type.ok()) return type.status();
        seq->add_token_type_ids(*type);
      }
    }
  }
  return absl::OkStatus();
}

// text [B] (+ text_pair) → sequences.
absl::Status TextSequences(const std::map<std::string, InputRef>& inputs,
                           v1::EncodeRequest* e) {
  const InputRef& text_in = inputs.at("text");
  absl::StatusOr<int64_t> n = Elements(text_in, {1, 2});
  if (!n.ok()) return n.status();
  if (text_in.tensor->shape_size() == 2 && text_in.tensor->shape(1) != 1) {
    return Bad(absl::StrCat("text: shape ",
                            ShapeString(text_in.tensor->shape()),
                            " must be [B] or [B, 1]: one text per sequence"));
  }
  absl::StatusOr<std::vector<std::string>> texts = BytesValues(text_in, *n);
  if (!texts.ok()) return texts.status();
  std::vector<std::string> pairs;
  if (inputs.count("text_pair")) {
    const InputRef& pair_in = inputs.at("text_pair");
    absl::StatusOr<int64_t> m = Elements(pair_in, {1, 2});
    if (!m.ok()) return m.status();
    if (*m != *n) {
      return Bad(absl::StrCat(
          "text_pair: shape ", ShapeString(pair_in.tensor->shape()),
          " does not match text's ", ShapeString(text_in.tensor->shape())));
    }
    absl::StatusOr<std::vector<std::string>> v = BytesValues(pair_in, *m);
    if (!v.ok()) return v.status();
    pairs = *std::move(v);
  }
  for (int64_t s = 0; s < *n; ++s) {
    v1::Sequence* seq = e->add_sequences();
    seq->set_text((*texts)[s]);
    if (!pairs.empty()) seq->set_text_pair(pairs[s]);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<OipRequest> FromModelInfer(
    const inference::ModelInferRequest& request, const ServedModel& model) {
  const ModelInfo& info = *model.info;
  if (absl::Status s = CheckModelName(request.model_name(), info); !s.ok()) {
    return s;
  }
  // Inputs by name, with their contents.
  const bool raw = !request.raw_input_contents().empty();
  std::map<std::string, InputRef> inputs;
  static const char* const kKnown[] = {"input_ids", "attention_mask",
                                       "token_type_ids", "text", "text_pair"};
  for (int i = 0; i < request.inputs_size(); ++i) {
    const Input& t = request.inputs(i);
    if (std::find(std::begin(kKnown), std::end(kKnown), t.name()) ==
        std::end(kKnown)) {
      return Bad(absl::StrCat("input \"", t.name(),
                              "\" is not an input of this model (",
                              absl::StrJoin(kKnown, ", "), ")"));
    }
    if (inputs.count(t.name())) {
      return Bad(absl::StrCat("input ", t.name(), " is given twice"));
    }
    if (raw && t.has_contents()) {
      return Bad(absl::StrCat(
          t.name(),
          ": typed contents in a request with raw_input_contents: send every "
          "input raw or every input typed"));
    }
  }
  if (raw && request.raw_input_contents_size() != request.inputs_size()) {
    return Bad(absl::StrCat("raw_input_contents has ",
                            request.raw_input_contents_size(), " entries for ",
                            request.inputs_size(),
                            " inputs: send one per input, in input order"));
  }
  for (int i = 0; i < request.inputs_size(); ++i) {
    const Input& t = request.inputs(i);
    inputs[t.name()] = {&t, raw ? &request.raw_input_contents(i) : nullptr};
  }
  OipRequest out;
  const bool ids = inputs.count("input_ids") > 0;
  out.text = inputs.count("text") > 0;
  if (ids == out.text) {
    return Bad(ids ? "inputs input_ids and text are both given: send one"
                   : "no input_ids or text input: send one of them");
  }
  for (const char* name : {"attention_mask", "token_type_ids"}) {
    if (out.text && inputs.count(name)) {
      return Bad(
          absl::StrCat("input ", name, " goes with input_ids, not with text"));
    }
  }
  if (ids && inputs.count("text_pair")) {
    return Bad("input text_pair goes with text, not with input_ids");
  }

  // Outputs.
  for (const auto& o : request.outputs()) {
    auto it = OutputNames().find(o.name());
    if (it == OutputNames().end()) {
      std::vector<std::string> names;
      for (const auto& [name, value] : OutputNames()) names.push_back(name);
      return Bad(absl::StrCat("output \"", o.name(),
                              "\" is not an output of this model (",
                              absl::StrJoin(names, ", "), ")"));
    }
    if (std::find(out.outputs.begin(), out.outputs.end(), it->second) !=
        out.outputs.end()) {
      return Bad(absl::StrCat("output ", o.name(), " is requested twice"));
    }
    out.outputs.push_back(it->second);
  }
  if (request.outputs().empty()) {
    // All but attentions, which is large: it comes only when named.
    out.outputs.push_back(OipOutput::kLastHiddenState);
    if (info.has_pooler) out.outputs.push_back(OipOutput::kPoolerOutput);
    absl::StatusOr<std::string> pooling =
        StringParam(request.parameters(), "pooling");
    if (!pooling.ok() || absl::AsciiStrToLower(*pooling) != "none") {
      out.outputs.push_back(OipOutput::kEmbedding);
    }
    if (out.text) out.outputs.push_back(OipOutput::kTokenIds);
  }
  out.pooler_output = std::find(out.outputs.begin(), out.outputs.end(),
                                OipOutput::kPoolerOutput) != out.outputs.end();
  if (absl::Status s = ApplyParameters(request.parameters(), info, &out);
      !s.ok()) {
    return s;
  }
  out.encode.set_model(request.model_name());
  absl::Status s = ids ? IdSequences(inputs, &out.encode)
                       : TextSequences(inputs, &out.encode);
  if (!s.ok()) return s;
  if (ids) out.padded_length = inputs.at("input_ids").tensor->shape(1);
  return out;
}

}  // namespace attnserve
