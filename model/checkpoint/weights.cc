#include "model/checkpoint/weights.h"

#include <cfloat>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "model/checkpoint/families.h"
#include "model/checkpoint/safetensors.h"
#include "common/status_macros.h"

namespace attnserve {
namespace {

using Spec = WeightSpec;

std::string LayerPrefix(const FamilySpec& family, int i) {
  return absl::StrCat(family.layer_prefix, i, ".");
}

std::vector<int64_t> Shape(const Spec& s, const ModelConfig& c) {
  std::vector<int64_t> shape;
  for (Dim d : s.shape) shape.push_back(ResolveDim(d, c));
  return shape;
}

// The table rows a checkpoint of `config` must hold before the layers: the
// embeddings, and ELECTRA's projection when it has one.
std::vector<Spec> EmbeddingSpecs(const FamilySpec& family,
                                 const ModelConfig& config) {
  std::vector<Spec> specs = family.embeddings;
  if (config.embedding_size != config.hidden_size) {
    specs.insert(specs.end(), family.projection.begin(),
                 family.projection.end());
  }
  return specs;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// A NaN or infinity in the weights (a diverged run, a bad conversion) would
// turn every answer into NaN; refuse the checkpoint at load instead, naming
// the tensor and the first bad index. One branch-free pass, then a search.
absl::Status CheckFinite(const std::vector<float>& values,
                         const std::string& what) {
  bool all_finite = true;
  for (float v : values) all_finite &= std::fabs(v) <= FLT_MAX;
  if (all_finite) return absl::OkStatus();
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s holds %s at index %d: the checkpoint is corrupt or its training "
          "diverged",
          what, std::isnan(values[i]) ? "NaN" : "infinity", i));
    }
  }
  return absl::OkStatus();
}

class Reader {
 public:
  Reader(const SafetensorsFile& file, const ModelConfig& config,
         const std::string& family_prefix)
      : file_(file), config_(config) {
    // BertFor*, RobertaFor*, ... checkpoints prefix every encoder tensor
    // with the family's name ("bert.", "roberta.").
    for (const auto& [name, t] : file.tensors()) {
      if (name.rfind(family_prefix, 0) == 0) {
        prefix_ = family_prefix;
        break;
      }
    }
  }

  bool Has(const std::string& name) const {
    return file_.Find(prefix_ + name) != nullptr;
  }

  // Reads `name` into `*out`, or into slice `slice` of a 3× larger fused array.
  absl::Status Read(const std::string& name, const Spec& spec,
                    std::vector<float>* out) {
    const std::string full = prefix_ + name;
    const TensorView* t = file_.Find(full);
    if (t == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: missing tensor \"%s\"", file_.path(), full));
    }
    const std::vector<int64_t> want = Shape(spec, config_);
    if (t->shape != want) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: tensor \"%s\" has shape %s, expected %s (from config.json)",
          file_.path(), full, ShapeString(t->shape), ShapeString(want)));
    }
    const std::string what =
        absl::StrFormat("%s: tensor \"%s\"", file_.path(), full);
    ASSIGN_OR_RETURN(std::vector<float> values, ToFloat32(*t, what));
    file_.Release(*t);
    RETURN_IF_ERROR(CheckFinite(values, what));
    if (dtype_.empty()) {
      dtype_ = t->dtype;
    } else if (dtype_ != t->dtype) {
      dtype_ = "mixed";
    }
    if (spec.slice < 0) {
      *out = std::move(values);
    } else {
      out->resize(values.size() * 3);
      std::copy(values.begin(), values.end(),
                out->begin() + spec.slice * values.size());
    }
    return absl::OkStatus();
  }

  const std::string& dtype() const { return dtype_; }

 private:
  const SafetensorsFile& file_;
  const ModelConfig& config_;
  std::string prefix_;
  std::string dtype_;
};

}  // namespace

std::vector<NamedShape> WeightTable(const ModelConfig& config,
                                    bool with_pooler) {
  const FamilySpec& family = GetFamily(config.family);
  std::vector<NamedShape> table;
  for (const Spec& s : EmbeddingSpecs(family, config))
    table.push_back({s.name, Shape(s, config)});
  for (int i = 0; i < config.num_layers; ++i) {
    for (const Spec& s : family.layer) {
      table.push_back({LayerPrefix(family, i) + s.name, Shape(s, config)});
    }
  }
  if (with_pooler) {
    for (const Spec& s : family.pooler)
      table.push_back({s.name, Shape(s, config)});
  }
  return table;
}

absl::StatusOr<std::vector<NamedTensor>> ToNamedTensors(
    const BertWeights& w, const ModelConfig& config) {
  std::vector<NamedTensor> out;
  // One tensor of the table from `source` (a third of it for a q/k/v slice).
  auto add = [&](const std::string& name, const Spec& s,
                 const std::vector<float>& source) -> absl::Status {
    NamedTensor t{name, Shape(s, config), {}};
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    const int64_t parts = s.slice < 0 ? 1 : 3;
    if (int64_t(source.size()) != n * parts) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "tensor \"%s\" %s needs %d values, the weights hold %d", name,
          ShapeString(t.shape), n * parts, source.size()));
    }
    const int64_t begin = s.slice < 0 ? 0 : s.slice * n;
    t.values.assign(source.begin() + begin, source.begin() + begin + n);
    out.push_back(std::move(t));
    return absl::OkStatus();
  };
  const FamilySpec& family = GetFamily(config.family);
  for (const Spec& s : EmbeddingSpecs(family, config)) {
    RETURN_IF_ERROR(add(s.name, s, w.*s.global));
  }
  if (int64_t(w.layers.size()) != config.num_layers) {
    return absl::InvalidArgumentError(
        absl::StrFormat("the weights hold %d layers, config.json says %d",
                        w.layers.size(), config.num_layers));
  }
  for (int i = 0; i < config.num_layers; ++i) {
    for (const Spec& s : family.layer) {
      RETURN_IF_ERROR(
          add(LayerPrefix(family, i) + s.name, s, w.layers[i].*s.layer));
    }
  }
  if (!w.pooler_weight.empty()) {
    for (const Spec& s : family.pooler) {
      RETURN_IF_ERROR(add(s.name, s, w.*s.global));
    }
  }
  return out;
}

absl::StatusOr<BertWeights> LoadWeights(const std::string& path,
                                        const ModelConfig& config,
                                        const LayerSink& sink) {
  ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file,
                   SafetensorsFile::Open(path));
  const FamilySpec& family = GetFamily(config.family);
  Reader reader(*file, config, family.tensor_prefix);
  BertWeights w;
  for (const Spec& s : EmbeddingSpecs(family, config)) {
    // DistilBERT's sinusoidal table may be left out and computed instead.
    if (s.fill_when_absent != nullptr && !reader.Has(s.name) &&
        s.fill_when_absent(config, &(w.*s.global))) {
      continue;
    }
    RETURN_IF_ERROR(reader.Read(s.name, s, &(w.*s.global)));
  }
  // Layers grow as their tensors are found, so a huge num_hidden_layers in
  // config.json ends in "missing tensor", not in a huge allocation.
  for (int i = 0; i < config.num_layers; ++i) {
    LayerWeights layer;
    for (const Spec& s : family.layer) {
      RETURN_IF_ERROR(
          reader.Read(LayerPrefix(family, i) + s.name, s, &(layer.*s.layer)));
    }
    if (sink) {
      RETURN_IF_ERROR(sink(i, layer));
    } else {
      w.layers.push_back(std::move(layer));
    }
  }
  // The pooler is optional, but half a pooler is a corrupt checkpoint.
  bool has_pooler = false;
  for (const Spec& s : family.pooler) has_pooler |= reader.Has(s.name);
  if (has_pooler) {
    for (const Spec& s : family.pooler) {
      RETURN_IF_ERROR(reader.Read(s.name, s, &(w.*s.global)));
    }
  }
  w.stored_dtype = reader.dtype();
  return w;
}

}  // namespace attnserve
