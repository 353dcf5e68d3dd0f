// Fuzz target: request bytes → ParseRequest → validation (see
// fuzz_targets.h). Nothing here runs the model: an accepted request is answered
// from made-up outputs of the shapes the model would return.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "google/protobuf/stubs/logging.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"
#include "model/checkpoint/config.h"
#include "model/encoder/head_ranking.h"
#include "model/text/tokenizer.h"
#include "proto/attnserve.pb.h"
#include "server/convert.h"
#include "server/options.h"
#include "server/response_size.h"
#include "server/validate.h"
#include "server/wire.h"
#include "tests/fuzz/fuzz_targets.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/tiny_model.h"

namespace attnserve::fuzz {
namespace {

// The server's defaults, or limits small enough for short inputs to hit.
RequestLimits Limits(bool small) {
  RequestLimits limits;
  if (small) {
    limits.max_sequences_per_request = 4;
    limits.max_tokens_per_request = 64;
    limits.max_response_bytes = 20000;
    limits.max_rank_heads_tokens = 2000;
  }
  return limits;
}

// The request bytes as gRPC hands them over: one or two slices.
grpc::ByteBuffer Bytes(const uint8_t* data, size_t size, size_t cut) {
  grpc::Slice slices[2] = {grpc::Slice(data, cut),
                           grpc::Slice(data + cut, size - cut)};
  return grpc::ByteBuffer(slices, 2);
}

// Made-up model outputs for `task` (shapes as Encoder::Forward returns them):
// attention rows are uniform, so the statistics are defined.
SequenceOutput FakeOutput(const SequenceTask& task, const ModelConfig& c) {
  const int64_t t = task.token_ids.size();
  SequenceOutput out;
  if (task.want_hidden) out.hidden.assign(t * c.hidden_size, 0.25f);
  out.attention.assign(task.attention_layers.size() * c.num_heads * t * t,
                       1.0f / t);
  if (task.pooling != PoolingMode::kNone) {
    out.embedding.assign(c.hidden_size, 0.5f);
  }
  return out;
}

void CheckTask(const SequenceTask& task, const ModelConfig& c) {
  FUZZ_CHECK(
      CheckTokenIds(task.token_ids, task.token_type_ids, c, "task").ok());
  for (size_t i = 0; i < task.attention_layers.size(); ++i) {
    FUZZ_CHECK(task.attention_layers[i] >= 0 &&
               task.attention_layers[i] < c.num_layers);
    FUZZ_CHECK(i == 0 ||
               task.attention_layers[i] > task.attention_layers[i - 1]);
  }
  FUZZ_CHECK(task.head_mask.empty() ||
             task.head_mask.size() == size_t(c.num_layers) * c.num_heads);
}

void Encode(const grpc::ByteBuffer& bytes, const ServedModel& model,
            const RequestLimits& limits) {
  v1::EncodeRequest request;
  if (!ParseRequest(bytes, &request).ok()) return;
  absl::StatusOr<ValidatedEncode> v =
      ValidateEncodeRequest(request, model, limits);
  if (!v.ok()) return;
  const ModelConfig& c = model.info->config;
  FUZZ_CHECK(v->tasks.size() == v->inputs.size());
  FUZZ_CHECK(v->response_bytes >= 0);
  FUZZ_CHECK(v->response_bytes <= limits.max_response_bytes);
  const ResponseSize size = SizeOfResponse(v->spec, v->inputs, c);
  for (int64_t part : {size.tokens, size.hidden, size.embedding, size.maps,
                       size.stats, size.rollout}) {
    FUZZ_CHECK(part >= 0);
  }
  FUZZ_CHECK(size.total() == v->response_bytes);

  v1::EncodeResponse response;
  response.set_model(model.info->name);
  for (size_t i = 0; i < v->tasks.size(); ++i) {
    CheckTask(v->tasks[i], c);
    SequenceOutput output = FakeOutput(v->tasks[i], c);
    const absl::Status converted = ToSequenceResult(
        v->spec, c, v->inputs[i], output, response.add_results());
    FUZZ_CHECK(converted.ok());
  }
  // The estimate is an upper bound of the payload; what it leaves out is
  // framing: tags, lengths and shapes of a few tensors per result, and the
  // model name. The server's send limit adds kResponseHeadroomBytes for it.
  const int64_t serialized = response.ByteSizeLong();
  const int64_t framing = 64 + static_cast<int64_t>(model.info->name.size()) +
                          256 * response.results_size();
  FUZZ_CHECK(serialized <= v->response_bytes + framing);
  FUZZ_CHECK(serialized <= limits.max_response_bytes + kResponseHeadroomBytes);
}

void Tokenize(const grpc::ByteBuffer& bytes, const ServedModel& model,
              const RequestLimits& limits) {
  v1::TokenizeRequest request;
  if (!ParseRequest(bytes, &request).ok()) return;
  absl::StatusOr<std::vector<InputSequence>> inputs =
      ValidateTokenizeRequest(request, model, limits);
  if (!inputs.ok()) return;
  FUZZ_CHECK(model.tokenizer != nullptr);
  FUZZ_CHECK(static_cast<int>(inputs->size()) == request.sequences_size());
  v1::TokenizeResponse response;
  for (InputSequence& input : *inputs) {
    const size_t n = input.ids.size();
    FUZZ_CHECK(n > 0 && input.tokens.size() == n);
    const bool text = !input.offsets.empty();
    v1::TokenizedSequence* out = response.add_results();
    ToTokenizedSequence(input, out);
    FUZZ_CHECK(static_cast<size_t>(out->token_type_ids_size()) == n);
    FUZZ_CHECK(static_cast<size_t>(out->offsets_size()) == (text ? 2 * n : 0));
  }
  (void)response.ByteSizeLong();
}

void RankHeads(const grpc::ByteBuffer& bytes, const ServedModel& model,
               const RequestLimits& limits, int64_t tokens_per_pass) {
  v1::RankHeadsRequest request;
  if (!ParseRequest(bytes, &request).ok()) return;
  absl::StatusOr<RankHeadsJob> job =
      ValidateRankHeadsRequest(request, model, limits, tokens_per_pass);
  if (!job.ok()) return;
  const ModelConfig& c = model.info->config;
  FUZZ_CHECK(job->ablation_tokens() <= limits.max_rank_heads_tokens);
  int64_t passes = 0;
  while (!job->done()) {
    const std::vector<SequenceTask> pass = job->NextPass();
    FUZZ_CHECK(!pass.empty());
    std::vector<SequenceOutput> outputs;
    for (const SequenceTask& task : pass) {
      CheckTask(task, c);
      // An embedding that moves with the masked heads and the tokens.
      SequenceOutput out;
      out.embedding.resize(c.hidden_size);
      for (int64_t k = 0; k < c.hidden_size; ++k) {
        int64_t masked = 0;
        for (size_t m = 0; m < task.head_mask.size(); ++m) {
          masked += task.head_mask[m] * static_cast<int64_t>(m + 1);
        }
        out.embedding[k] = static_cast<float>(
            std::sin(0.1 * (k + 1) * (masked + 1) + task.token_ids.size()));
      }
      if (task.want_layer_inputs) {  // (L, T, H), as Forward returns them
        out.layer_inputs.resize(int64_t{c.num_layers} * task.token_ids.size() *
                                c.hidden_size);
      }
      outputs.push_back(std::move(out));
    }
    FUZZ_CHECK(job->AddResults(outputs).ok());
    ++passes;
    FUZZ_CHECK(passes <= job->ablation_tokens());
  }
  absl::StatusOr<HeadRanking> ranking = job->Result();
  FUZZ_CHECK(ranking.ok());
  FUZZ_CHECK(ranking->heads.size() == size_t(c.num_layers) * c.num_heads);
  FUZZ_CHECK(ranking->layers.size() == size_t(c.num_layers));
  for (const auto* list : {&ranking->heads, &ranking->layers}) {
    for (const HeadImportance& h : *list) {
      FUZZ_CHECK(std::isfinite(h.importance));
      FUZZ_CHECK(h.importance >= 0 && h.importance <= 2);
    }
  }
  v1::RankHeadsResponse response;
  ToRankHeadsResponse(*ranking, model.info->name, &response);
}

}  // namespace

// Byte 0: bits 0–1 the RPC (0 Encode, 1 Tokenize, 2 RankHeads, 3 GetModelInfo
// parse only), bit 2 small limits, bit 3 no vocab, bit 4 small RankHeads
// passes; byte 1: where the bytes are cut into two slices; then the message.
int Request(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const TinyModel& tiny = Model();
  const uint8_t flags = data[0];
  const ServedModel& model = (flags & 8) ? tiny.without_vocab : tiny.with_vocab;
  const RequestLimits limits = Limits(flags & 4);
  const int64_t tokens_per_pass = (flags & 16) ? 40 : 8192;
  const uint8_t* body = data + 2;
  const size_t n = size - 2;
  const grpc::ByteBuffer bytes = Bytes(body, n, n * data[1] / 256);
  switch (flags & 3) {
    case 0:
      Encode(bytes, model, limits);
      break;
    case 1:
      Tokenize(bytes, model, limits);
      break;
    case 2:
      RankHeads(bytes, model, limits, tokens_per_pass);
      break;
    case 3: {
      v1::GetModelInfoRequest request;
      if (ParseRequest(bytes, &request).ok()) {
        (void)CheckModelName(request.model(), *model.info);
      }
      break;
    }
  }
  return 0;
}

}  // namespace attnserve::fuzz
