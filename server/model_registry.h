// The models one server serves, by name: it owns each model's Encoder and
// tokenizer, and answers the request path's one question, "which model does
// this request mean?".
//
// Names are unique. An empty name means the only model, or the default model
// when the server has one (--default_model); with several models and no
// default, a request must name one. Each model's index is its position in
// serving order, and its Batcher::Request::model (server/batcher.h).
//
// Threads: built once before serving, then immutable: Find() and the
// accessors from any thread. The encoders themselves run only on the
// inference thread (the Batcher's forward functions).
#ifndef ATTNSERVE_SERVER_MODEL_REGISTRY_H_
#define ATTNSERVE_SERVER_MODEL_REGISTRY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/encoder/encoder.h"
#include "model/text/text_tokenizer.h"
#include "server/validate.h"

namespace attnserve {

class ModelRegistry {
 public:
  // One loaded model, as Create takes it.
  struct Model {
    std::unique_ptr<Encoder> encoder;
    // The model's vocab (LoadTokenizerFor), or why there is none: then its
    // token ids are still served and text gets FAILED_PRECONDITION.
    absl::StatusOr<std::unique_ptr<TextTokenizer>> tokenizer;
  };

  // `models` in serving order (at least one; names as ModelInfo::name,
  // unique). `default_model`: empty, or the name of one of them.
  // INVALID_ARGUMENT naming the duplicate or the unknown default.
  static absl::StatusOr<std::unique_ptr<ModelRegistry>> Create(
      std::vector<Model> models, const std::string& default_model = "");

  // The model a request names in `field` (for the message: "model",
  // "model_name", "name"). Empty: the only model, or the default one;
  // INVALID_ARGUMENT listing the served names when neither exists. An
  // unknown name: NOT_FOUND listing the served names.
  absl::StatusOr<const ServedModel*> Find(absl::string_view name,
                                          absl::string_view field) const;

  int size() const { return static_cast<int>(entries_.size()); }
  // Model `index` (0 ≤ index < size()), in serving order.
  const ServedModel& served(int index) const { return entries_[index].served; }
  Encoder& encoder(int index) const { return *entries_[index].encoder; }
  // Why model `index` has no tokenizer; OK when it has one.
  const absl::Status& tokenizer_status(int index) const {
    return entries_[index].tokenizer_status;
  }
  // The index an empty name means; -1 when it means none (several models
  // and no default).
  int default_index() const { return default_index_; }
  // ListModels' order: the default model first, then serving order.
  std::vector<int> ListOrder() const;
  // "\"a\", \"b\"": every name, in serving order, for messages.
  std::string QuotedNames() const;

 private:
  struct Entry {
    std::unique_ptr<Encoder> encoder;
    std::unique_ptr<TextTokenizer> tokenizer;  // null: see tokenizer_status
    absl::Status tokenizer_status;
    ServedModel served;  // points into encoder and tokenizer
  };
  ModelRegistry() = default;

  std::vector<Entry> entries_;
  int default_index_ = -1;
};

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_MODEL_REGISTRY_H_
