// A small BERT whose weights are constructed, not trained, so that every
// head has one known job (docs/demo-model.md has the table and the reasons).
//
// The residual stream holds readable features: a one-hot position, word
// tags (noun, verb, pronoun, animate, ...), a random identity code per
// vocabulary entry, and a scratch space where the heads write what they
// gathered. Each feature is stored twice, as +v in dims [0, 256) and −v in
// dims [256, 512), so LayerNorm's mean is always 0; every embedding has the
// same norm, so LayerNorm only rescales. The feed-forward blocks are zero.
//
// Pure functions of nothing: the same model every call. Any thread.
#ifndef ATTNSERVE_MODEL_DEMO_CONSTRUCTED_MODEL_H_
#define ATTNSERVE_MODEL_DEMO_CONSTRUCTED_MODEL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/checkpoint/config.h"
#include "model/checkpoint/weights.h"

namespace attnserve {

// The job of one head of the constructed model.
struct DemoHeadJob {
  int layer = 0;
  int head = 0;
  const char* name = "";  // short: "previous token", "pronoun -> animate"
};

// Layer-major, every head of the model: 3 layers × 4 heads.
const std::vector<DemoHeadJob>& ConstructedHeadJobs();

// Where the jobs sit (also in ConstructedHeadJobs and docs/demo-model.md).
struct DemoHeads {
  static constexpr int kPrevious[2] = {0, 0};
  static constexpr int kNext[2] = {0, 1};
  static constexpr int kSelf[2] = {0, 2};
  static constexpr int kLocal[2] = {0, 3};  // ±2 tokens
  static constexpr int kCls[2] = {1, 0};
  static constexpr int kSep[2] = {1, 1};
  static constexpr int kBroad[2] = {1, 2};
  static constexpr int kSameWord[2] = {1, 3};
  static constexpr int kDeterminer[2] = {2, 0};   // determiner → its noun
  static constexpr int kSubject[2] = {2, 1};      // verb → its subject
  static constexpr int kPronoun[2] = {2, 2};      // pronoun → animate noun
  static constexpr int kNearestNoun[2] = {2, 3};  // pronoun → any noun
};

struct ConstructedModel {
  ModelConfig config;
  BertWeights weights;             // with a pooler
  std::vector<std::string> vocab;  // vocab.txt, id = index
};

// Builds the model from the embedded word list (model/demo/words.txt).
// Internal on a well-formed list; InvalidArgument names a bad line.
absl::StatusOr<ConstructedModel> BuildConstructedModel();

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_DEMO_CONSTRUCTED_MODEL_H_
