// What Encoder::Forward checks before it runs anything: each sequence's ids
// against the config (also the server's wording for a bad id) and each task's
// other fields against the loaded model.
#ifndef ATTNSERVE_MODEL_ENCODER_TASK_CHECK_H_
#define ATTNSERVE_MODEL_ENCODER_TASK_CHECK_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "model/checkpoint/config.h"
#include "model/types.h"

namespace attnserve {

struct ModelInfo;

// Checks one sequence's ids against `config`: 1 ≤ T ≤ max_tokens()
// (max_position_embeddings, less RoBERTa's pad_token_id + 1),
// ids in [0, vocab_size), type ids (optional: empty = all 0) one per token and
// in [0, type_vocab_size). InvalidArgument names the value by `field` (the
// sequence, e.g. "sequences[2]": "sequences[2].token_ids[5] = 99 is out of
// range [0, 99) (vocab_size)") and gives the limit. The server's messages are
// these, so the model and the API word a bad id the same way.
absl::Status CheckTokenIds(absl::Span<const int32_t> token_ids,
                           absl::Span<const int32_t> token_type_ids,
                           const ModelConfig& config, absl::string_view field);

// One task of a Forward call (`index` names it: "sequences[3]: ..."): its ids,
// attention layers, head mask (not of pruned heads), start layer and layer
// inputs, and a pooler only where the checkpoint has one. InvalidArgument.
absl::Status CheckTask(const SequenceTask& task, size_t index,
                       const ModelInfo& info);

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_ENCODER_TASK_CHECK_H_
