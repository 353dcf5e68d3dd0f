#include <cstring>
#include <initializer_list>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "server/oip.h"

namespace attnserve {
namespace {

// Tensors travel as little-endian bytes; this code copies host memory.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "OIP raw contents are little-endian");

const char* OutputName(OipOutput o) {
  switch (o) {
    case OipOutput::kLastHiddenState:
      return "last_hidden_state";
    case OipOutput::kPoolerOutput:
      return "pooler_output";
    case OipOutput::kEmbedding:
      return "embedding";
    case OipOutput::kAttentions:
      return "attentions";
    case OipOutput::kTokenIds:
      return "token_ids";
  }
  return "?";
}

template <typename Tensor>
void SetShape(Tensor* tensor, std::initializer_list<int64_t> shape) {
  tensor->mutable_shape()->Add(shape.begin(), shape.end());
}

void AppendFloats(const std::vector<float>& v, std::string* out) {
  out->append(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

}  // namespace

absl::Status SetPaddedLength(const std::vector<InputSequence>& inputs,
                             const ModelConfig& config,
                             const RequestLimits& limits, OipRequest* request) {
  int64_t t = request->padded_length;
  if (request->text) {
    for (const InputSequence& in : inputs) {
      t = std::max<int64_t>(t, in.ids.size());
    }
    request->padded_length = t;
  }
  const int64_t b = inputs.size(), h = config.hidden_size;
  const v1::AttentionRequest& a = request->encode.attention();
  const int64_t layers =
      a.layers().empty() ? config.num_layers : a.layers_size();
  const int64_t heads = a.heads().empty() ? config.num_heads : a.heads_size();
  int64_t bytes = 0;
  for (OipOutput o : request->outputs) {
    switch (o) {
      case OipOutput::kLastHiddenState:
        bytes += b * t * h * 4;
        break;
      case OipOutput::kPoolerOutput:
      case OipOutput::kEmbedding:
        bytes += b * h * 4;
        break;
      case OipOutput::kAttentions:
        bytes +=
            b * layers * heads * t * t * (a.dtype() == v1::FLOAT16 ? 2 : 4);
        break;
      case OipOutput::kTokenIds:
        bytes += b * t * 8;
        break;
    }
  }
  if (bytes > limits.max_response_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the response would be ", bytes, " bytes (outputs padded to [", b, ", ",
        t, ", ...]), more than this server's limit of ",
        limits.max_response_bytes,
        " bytes (--max_response_bytes): request fewer outputs, attention "
        "layers or heads (parameters attention_layers, attention_heads), "
        "attention_dtype = FP16, or fewer or shorter sequences"));
  }
  return absl::OkStatus();
}

absl::Status ToModelInferResponse(
    const OipRequest& request, const v1::EncodeResponse& results,
    const std::vector<std::vector<float>>& poolers, const ModelInfo& info,
    inference::ModelInferResponse* response) {
  const int64_t b = results.results_size(), t = request.padded_length;
  const int64_t h = info.config.hidden_size;
  response->set_model_name(info.name);
  for (OipOutput o : request.outputs) {
    auto* tensor = response->add_outputs();
    tensor->set_name(OutputName(o));
    std::string* raw = response->add_raw_output_contents();
    switch (o) {
      case OipOutput::kLastHiddenState: {
        tensor->set_datatype("FP32");
        SetShape(tensor, {b, t, h});
        raw->assign(b * t * h * 4, '\0');
        for (int64_t s = 0; s < b; ++s) {
          const std::string& data = results.results(s).hidden_states().data();
          if (int64_t(data.size()) > t * h * 4) {
            return absl::InternalError("hidden states longer than the padding");
          }
          std::memcpy(raw->data() + s * t * h * 4, data.data(), data.size());
        }
        break;
      }
      case OipOutput::kEmbedding:
        tensor->set_datatype("FP32");
        SetShape(tensor, {b, h});
        for (int64_t s = 0; s < b; ++s) {
          const std::string& data = results.results(s).embedding().data();
          if (int64_t(data.size()) != h * 4) {
            return absl::InternalError("embedding of the wrong size");
          }
          raw->append(data);
        }
        break;
      case OipOutput::kPoolerOutput:
        tensor->set_datatype("FP32");
        SetShape(tensor, {b, h});
        for (int64_t s = 0; s < b; ++s) {
          if (int64_t(poolers.at(s).size()) != h) {
            return absl::InternalError("pooler output of the wrong size");
          }
          AppendFloats(poolers[s], raw);
        }
        break;
      case OipOutput::kAttentions: {
        const bool half = request.encode.attention().dtype() == v1::FLOAT16;
        const int64_t elem = half ? 2 : 4;
        tensor->set_datatype(half ? "FP16" : "FP32");
        int64_t layers = 0, heads = 0;
        if (b > 0) {
          layers = results.results(0).attention().shape(0);
          heads = results.results(0).attention().shape(1);
        }
        SetShape(tensor, {b, layers, heads, t, t});
        raw->assign(b * layers * heads * t * t * elem, '\0');
        for (int64_t s = 0; s < b; ++s) {
          const v1::Tensor& maps = results.results(s).attention();
          const int64_t n = maps.shape(2);  // this sequence's T
          if (maps.shape(0) != layers || maps.shape(1) != heads || n > t ||
              int64_t(maps.data().size()) != layers * heads * n * n * elem) {
            return absl::InternalError("attention maps of the wrong shape");
          }
          for (int64_t lh = 0; lh < layers * heads; ++lh) {
            for (int64_t r = 0; r < n; ++r) {
              std::memcpy(
                  raw->data() + ((s * layers * heads + lh) * t + r) * t * elem,
                  maps.data().data() + (lh * n + r) * n * elem, n * elem);
            }
          }
        }
        break;
      }
      case OipOutput::kTokenIds:
        tensor->set_datatype("INT64");
        SetShape(tensor, {b, t});
        raw->assign(b * t * 8, '\0');
        for (int64_t s = 0; s < b; ++s) {
          const auto& ids = results.results(s).token_ids();
          for (int j = 0; j < ids.size(); ++j) {
            const int64_t id = ids[j];
            std::memcpy(raw->data() + (s * t + j) * 8, &id, 8);
          }
        }
        break;
    }
  }
  return absl::OkStatus();
}

void ToModelMetadata(const ServedModel& model,
                     inference::ModelMetadataResponse* response) {
  const ModelInfo& info = *model.info;
  const int64_t h = info.config.hidden_size;
  response->set_name(info.name);
  response->set_platform("attnserve");
  auto add = [](auto* list, const char* name, const char* datatype,
                std::vector<int64_t> shape) {
    auto* t = list->Add();
    t->set_name(name);
    t->set_datatype(datatype);
    t->mutable_shape()->Add(shape.begin(), shape.end());
  };
  auto* inputs = response->mutable_inputs();
  add(inputs, "input_ids", "INT64", {-1, -1});
  add(inputs, "attention_mask", "INT64", {-1, -1});
  add(inputs, "token_type_ids", "INT64", {-1, -1});
  if (model.tokenizer != nullptr) {
    add(inputs, "text", "BYTES", {-1});
    add(inputs, "text_pair", "BYTES", {-1});
  }
  auto* outputs = response->mutable_outputs();
  add(outputs, "last_hidden_state", "FP32", {-1, -1, h});
  if (info.has_pooler) add(outputs, "pooler_output", "FP32", {-1, h});
  add(outputs, "embedding", "FP32", {-1, h});
  add(outputs, "attentions", "FP32", {-1, -1, -1, -1, -1});
  add(outputs, "token_ids", "INT64", {-1, -1});
}

}  // namespace attnserve
