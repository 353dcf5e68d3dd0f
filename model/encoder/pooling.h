// Sentence embeddings from the last hidden states of one sequence.
#ifndef ATTNSERVE_MODEL_ENCODER_POOLING_H_
#define ATTNSERVE_MODEL_ENCODER_POOLING_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/types.h"

namespace attnserve {

// hidden: (t, h). kCls: row 0; kMean: mean over the t real tokens;
// kPooler: tanh(W·hidden[0] + b) with W (h, h), b (h). Returns (h).
std::vector<float> Pool(PoolingMode mode, const float* hidden, int64_t t,
                        int64_t h, const std::vector<float>& pooler_weight,
                        const std::vector<float>& pooler_bias);

// v /= ‖v‖₂ (unchanged when ‖v‖ = 0).
void L2Normalize(std::vector<float>* v);

// The model's default pooling: a sentence-transformers directory
// (modules.json naming a Pooling module, whose config.json sets
// pooling_mode_*_token(s)) says mean or CLS; otherwise CLS.
absl::StatusOr<PoolingMode> ReadDefaultPooling(const std::string& dir);

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_ENCODER_POOLING_H_
