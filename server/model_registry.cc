#include "server/model_registry.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace attnserve {

absl::StatusOr<std::unique_ptr<ModelRegistry>> ModelRegistry::Create(
    std::vector<Model> models, const std::string& default_model) {
  if (models.empty()) {
    return absl::InvalidArgumentError("no model to serve");
  }
  std::unique_ptr<ModelRegistry> registry(new ModelRegistry());
  for (Model& model : models) {
    if (model.encoder == nullptr) {
      return absl::InvalidArgumentError("a model to serve is not loaded");
    }
    const std::string& name = model.encoder->info().name;
    if (name.empty()) {
      return absl::InvalidArgumentError("a model to serve has an empty name");
    }
    for (const Entry& other : registry->entries_) {
      if (other.served.info->name == name) {
        return absl::InvalidArgumentError(
            absl::StrCat("two models are named \"", name,
                         "\": give one another name (--model=NAME=DIR)"));
      }
    }
    Entry entry;
    entry.encoder = std::move(model.encoder);
    entry.served.info = &entry.encoder->info();
    entry.served.index = registry->size();
    if (model.tokenizer.ok() && *model.tokenizer != nullptr) {
      entry.tokenizer = *std::move(model.tokenizer);
      entry.served.tokenizer = entry.tokenizer.get();
    } else {
      entry.tokenizer_status = model.tokenizer.ok()
                                   ? absl::NotFoundError("no tokenizer given")
                                   : model.tokenizer.status();
      // Worded for clients: the server's paths stay in its log.
      entry.served.no_tokenizer_reason =
          entry.tokenizer_status.code() == absl::StatusCode::kNotFound
              ? "its directory has no tokenizer files (vocab.txt, "
                "tokenizer.json, vocab.json + merges.txt or "
                "sentencepiece.bpe.model)"
              : "its vocab could not be loaded (see the server log)";
    }
    registry->entries_.push_back(std::move(entry));
  }
  registry->default_index_ = registry->size() == 1 ? 0 : -1;
  if (!default_model.empty()) {
    registry->default_index_ = -1;
    for (int i = 0; i < registry->size(); ++i) {
      if (registry->served(i).info->name == default_model) {
        registry->default_index_ = i;
      }
    }
    if (registry->default_index_ < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--default_model=", default_model,
          " is not a served model; served: ", registry->QuotedNames()));
    }
  }
  return registry;
}

absl::StatusOr<const ServedModel*> ModelRegistry::Find(
    absl::string_view name, absl::string_view field) const {
  if (name.empty()) {
    if (default_index_ >= 0) return &entries_[default_index_].served;
    return absl::InvalidArgumentError(absl::StrCat(
        field, " is empty, and this server serves ", size(),
        " models and has no default (--default_model): name one of ",
        QuotedNames()));
  }
  for (const Entry& entry : entries_) {
    if (entry.served.info->name == name) return &entry.served;
  }
  return absl::NotFoundError(absl::StrCat(
      "model \"", name, "\" is not served here; served: ", QuotedNames()));
}

std::vector<int> ModelRegistry::ListOrder() const {
  std::vector<int> order;
  if (default_index_ >= 0) order.push_back(default_index_);
  for (int i = 0; i < size(); ++i) {
    if (i != default_index_) order.push_back(i);
  }
  return order;
}

std::string ModelRegistry::QuotedNames() const {
  return absl::StrJoin(entries_, ", ", [](std::string* out, const Entry& e) {
    absl::StrAppend(out, "\"", e.served.info->name, "\"");
  });
}

}  // namespace attnserve
