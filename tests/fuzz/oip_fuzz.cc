// Fuzz target: Open Inference Protocol (KServe v2) ModelInfer bytes →
// ParseRequest → FromModelInfer → the Encode validator → SetPaddedLength →
// the response from made-up outputs (see fuzz_targets.h).
#include <memory>
#include <string>
#include <vector>

#include "google/protobuf/stubs/logging.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "model/checkpoint/config.h"
#include "model/text/tokenizer.h"
#include "proto/inference.pb.h"
#include "server/convert.h"
#include "server/oip.h"
#include "server/options.h"
#include "server/validate.h"
#include "server/wire.h"
#include "tests/fuzz/fuzz_targets.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/tiny_model.h"

namespace attnserve::fuzz {
namespace {

int64_t DatatypeBytes(const std::string& datatype) {
  if (datatype == "FP32") return 4;
  if (datatype == "FP16") return 2;
  if (datatype == "INT64") return 8;
  return -1;
}

}  // namespace

// Byte 0: bit 0 small limits, bit 1 no vocab; byte 1: where the bytes are cut
// into two slices; then the ModelInferRequest.
int OipRequest(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const TinyModel& tiny = Model();
  const ServedModel& model =
      (data[0] & 2) ? tiny.without_vocab : tiny.with_vocab;
  RequestLimits limits;
  if (data[0] & 1) {
    limits.max_sequences_per_request = 4;
    limits.max_tokens_per_request = 64;
    limits.max_response_bytes = 20000;
  }
  const uint8_t* body = data + 2;
  const size_t n = size - 2;
  const size_t cut = n * data[1] / 256;
  grpc::Slice slices[2] = {grpc::Slice(body, cut),
                           grpc::Slice(body + cut, n - cut)};
  const grpc::ByteBuffer bytes(slices, 2);

  inference::ModelInferRequest request;
  if (!ParseRequest(bytes, &request).ok()) return 0;
  absl::StatusOr<attnserve::OipRequest> oip = FromModelInfer(request, model);
  if (!oip.ok()) return 0;
  absl::StatusOr<ValidatedEncode> v =
      ValidateEncodeRequest(oip->encode, model, limits);
  if (!v.ok()) return 0;
  if (!SetPaddedLength(v->inputs, model.info->config, limits, &*oip).ok()) {
    return 0;
  }
  const ModelConfig& c = model.info->config;
  FUZZ_CHECK(oip->padded_length >= 1);
  v1::EncodeResponse results;
  std::vector<std::vector<float>> poolers;
  for (size_t i = 0; i < v->tasks.size(); ++i) {
    SequenceTask& task = v->tasks[i];
    const int64_t t = task.token_ids.size();
    FUZZ_CHECK(t <= oip->padded_length);
    // Made-up outputs of the shapes Encoder::Forward returns.
    SequenceOutput out;
    if (task.want_hidden) out.hidden.assign(t * c.hidden_size, 0.25f);
    out.attention.assign(task.attention_layers.size() * c.num_heads * t * t,
                         1.0f / t);
    if (task.pooling != PoolingMode::kNone) {
      out.embedding.assign(c.hidden_size, 0.5f);
    }
    poolers.push_back(oip->pooler_output
                          ? std::vector<float>(c.hidden_size, 0.125f)
                          : std::vector<float>());
    FUZZ_CHECK(
        ToSequenceResult(v->spec, c, v->inputs[i], out, results.add_results())
            .ok());
  }
  inference::ModelInferResponse response;
  const absl::Status status =
      ToModelInferResponse(*oip, results, poolers, *model.info, &response);
  FUZZ_CHECK(status.ok());
  // One tensor per asked output, its bytes exactly its shape × datatype.
  FUZZ_CHECK(response.outputs_size() == static_cast<int>(oip->outputs.size()));
  FUZZ_CHECK(response.raw_output_contents_size() == response.outputs_size());
  for (int k = 0; k < response.outputs_size(); ++k) {
    const auto& tensor = response.outputs(k);
    const int64_t elem = DatatypeBytes(tensor.datatype());
    FUZZ_CHECK(elem > 0);
    int64_t elements = 1;
    for (int64_t d : tensor.shape()) {
      FUZZ_CHECK(d >= 0);
      elements *= d;
    }
    FUZZ_CHECK(static_cast<int64_t>(response.raw_output_contents(k).size()) ==
               elements * elem);
  }
  return 0;
}

}  // namespace attnserve::fuzz
