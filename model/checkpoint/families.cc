#include "model/checkpoint/families.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace attnserve {
namespace {

using B = BertWeights;
using L = LayerWeights;
constexpr Dim kH = Dim::kHidden, kI = Dim::kInter, kV = Dim::kVocab,
              kP = Dim::kPositions, kT = Dim::kTypes, kE = Dim::kEmbed;

// DistilBERT's create_sinusoidal_embeddings: even columns sin(pos / 10000^(j/d)),
// odd columns cos of the same angle (j rounded down to even). Used only when
// the checkpoint lacks the table: transformers loads the stored one.
bool SinusoidalPositions(const ModelConfig& c, std::vector<float>* out) {
  if (!c.sinusoidal_positions) return false;
  const int64_t n = c.max_position_embeddings, d = c.embedding_size;
  out->assign(n * d, 0.f);  // (P, E)
  for (int64_t pos = 0; pos < n; ++pos) {
    for (int64_t j = 0; j < d; ++j) {
      const double angle =
          pos / std::pow(10000.0, 2.0 * double(j / 2) / double(d));
      (*out)[pos * d + j] =
          static_cast<float>(j % 2 == 0 ? std::sin(angle) : std::cos(angle));
    }
  }
  return true;
}

// BERT, RoBERTa and ELECTRA share these names (ELECTRA's embeddings are E
// wide; E = H for the others).
std::vector<WeightSpec> BertEmbeddings() {
  return {
      {"embeddings.word_embeddings.weight", {kV, kE}, &B::word_embeddings},
      {"embeddings.position_embeddings.weight",
       {kP, kE},
       &B::position_embeddings},
      {"embeddings.token_type_embeddings.weight",
       {kT, kE},
       &B::type_embeddings},
      {"embeddings.LayerNorm.weight", {kE}, &B::emb_ln_gamma},
      {"embeddings.LayerNorm.bias", {kE}, &B::emb_ln_beta},
  };
}

std::vector<WeightSpec> BertLayer() {
  return {
      {"attention.self.query.weight", {kH, kH}, nullptr, &L::qkv_weight, 0},
      {"attention.self.query.bias", {kH}, nullptr, &L::qkv_bias, 0},
      {"attention.self.key.weight", {kH, kH}, nullptr, &L::qkv_weight, 1},
      {"attention.self.key.bias", {kH}, nullptr, &L::qkv_bias, 1},
      {"attention.self.value.weight", {kH, kH}, nullptr, &L::qkv_weight, 2},
      {"attention.self.value.bias", {kH}, nullptr, &L::qkv_bias, 2},
      {"attention.output.dense.weight", {kH, kH}, nullptr, &L::out_weight},
      {"attention.output.dense.bias", {kH}, nullptr, &L::out_bias},
      {"attention.output.LayerNorm.weight", {kH}, nullptr, &L::ln1_gamma},
      {"attention.output.LayerNorm.bias", {kH}, nullptr, &L::ln1_beta},
      {"intermediate.dense.weight", {kI, kH}, nullptr, &L::ffn1_weight},
      {"intermediate.dense.bias", {kI}, nullptr, &L::ffn1_bias},
      {"output.dense.weight", {kH, kI}, nullptr, &L::ffn2_weight},
      {"output.dense.bias", {kH}, nullptr, &L::ffn2_bias},
      {"output.LayerNorm.weight", {kH}, nullptr, &L::ln2_gamma},
      {"output.LayerNorm.bias", {kH}, nullptr, &L::ln2_beta},
  };
}

std::vector<WeightSpec> BertPooler() {
  return {
      {"pooler.dense.weight", {kH, kH}, &B::pooler_weight},
      {"pooler.dense.bias", {kH}, &B::pooler_bias},
  };
}

const std::vector<FamilySpec>& Families() {
  static const auto* families = new std::vector<FamilySpec>{
      {ModelFamily::kBert, "bert", {"bert"}, "bert.", ConfigKeys{},
       /*default_pad_token_id=*/0, /*default_embedding_size=*/0,
       /*roberta_positions=*/false, "encoder.layer.", BertEmbeddings(),
       /*projection=*/{}, BertLayer(), BertPooler()},
      // transformers' RobertaEmbeddings: token_type_embeddings (1 type),
      // positions from pad_token_id + 1; the layers are BERT's.
      {ModelFamily::kRoberta, "roberta",
       {"roberta", "xlm-roberta", "camembert"}, "roberta.", ConfigKeys{},
       /*default_pad_token_id=*/1, /*default_embedding_size=*/0,
       /*roberta_positions=*/true, "encoder.layer.", BertEmbeddings(),
       /*projection=*/{}, BertLayer(), BertPooler()},
      {ModelFamily::kDistilBert,
       "distilbert",
       {"distilbert"},
       "distilbert.",
       ConfigKeys{"dim", "n_layers", "n_heads", "hidden_dim", "activation",
                  nullptr, "sinusoidal_pos_embds",
                  /*token_types=*/false, /*layer_norm_eps=*/false,
                  /*position_embedding_type=*/false},
       /*default_pad_token_id=*/0,
       /*default_embedding_size=*/0,
       /*roberta_positions=*/false,
       "transformer.layer.",
       {
           {"embeddings.word_embeddings.weight", {kV, kE}, &B::word_embeddings},
           {"embeddings.position_embeddings.weight", {kP, kE},
            &B::position_embeddings, nullptr, -1, &SinusoidalPositions},
           {"embeddings.LayerNorm.weight", {kE}, &B::emb_ln_gamma},
           {"embeddings.LayerNorm.bias", {kE}, &B::emb_ln_beta},
       },
       /*projection=*/{},
       {
           {"attention.q_lin.weight", {kH, kH}, nullptr, &L::qkv_weight, 0},
           {"attention.q_lin.bias", {kH}, nullptr, &L::qkv_bias, 0},
           {"attention.k_lin.weight", {kH, kH}, nullptr, &L::qkv_weight, 1},
           {"attention.k_lin.bias", {kH}, nullptr, &L::qkv_bias, 1},
           {"attention.v_lin.weight", {kH, kH}, nullptr, &L::qkv_weight, 2},
           {"attention.v_lin.bias", {kH}, nullptr, &L::qkv_bias, 2},
           {"attention.out_lin.weight", {kH, kH}, nullptr, &L::out_weight},
           {"attention.out_lin.bias", {kH}, nullptr, &L::out_bias},
           {"sa_layer_norm.weight", {kH}, nullptr, &L::ln1_gamma},
           {"sa_layer_norm.bias", {kH}, nullptr, &L::ln1_beta},
           {"ffn.lin1.weight", {kI, kH}, nullptr, &L::ffn1_weight},
           {"ffn.lin1.bias", {kI}, nullptr, &L::ffn1_bias},
           {"ffn.lin2.weight", {kH, kI}, nullptr, &L::ffn2_weight},
           {"ffn.lin2.bias", {kH}, nullptr, &L::ffn2_bias},
           {"output_layer_norm.weight", {kH}, nullptr, &L::ln2_gamma},
           {"output_layer_norm.bias", {kH}, nullptr, &L::ln2_beta},
       },
       /*pooler=*/{}},
      // ElectraModel: BERT's names, embeddings E wide, then a linear to H;
      // no pooler (the discriminator head is not part of the encoder).
      {ModelFamily::kElectra,
       "electra",
       {"electra"},
       "electra.",
       ConfigKeys{"hidden_size", "num_hidden_layers", "num_attention_heads",
                  "intermediate_size", "hidden_act", "embedding_size"},
       /*default_pad_token_id=*/0,
       /*default_embedding_size=*/128,  // ElectraConfig's default
       /*roberta_positions=*/false,
       "encoder.layer.",
       BertEmbeddings(),
       {
           {"embeddings_project.weight", {kH, kE}, &B::emb_project_weight},
           {"embeddings_project.bias", {kH}, &B::emb_project_bias},
       },
       BertLayer(),
       /*pooler=*/{}},
  };
  return *families;
}

}  // namespace

int64_t ResolveDim(Dim d, const ModelConfig& c) {
  switch (d) {
    case Dim::kHidden:
      return c.hidden_size;
    case Dim::kInter:
      return c.intermediate_size;
    case Dim::kVocab:
      return c.vocab_size;
    case Dim::kPositions:
      return c.max_position_embeddings;
    case Dim::kTypes:
      return c.type_vocab_size;
    case Dim::kEmbed:
      return c.embedding_size > 0 ? c.embedding_size : c.hidden_size;
  }
  return 0;
}

std::string SupportedModelTypes() {
  std::vector<std::string> types;
  for (const FamilySpec& f : Families()) {
    types.insert(types.end(), f.model_types.begin(), f.model_types.end());
  }
  std::sort(types.begin(), types.end());
  return absl::StrJoin(types, ", ");
}

absl::StatusOr<const FamilySpec*> FamilyForModelType(
    const std::string& model_type, const std::string& file) {
  for (const FamilySpec& f : Families()) {
    for (const std::string& t : f.model_types) {
      if (t == model_type) return &f;
    }
  }
  return absl::UnimplementedError(
      absl::StrFormat("%s: model_type \"%s\" is not supported; supported: %s",
                      file, model_type, SupportedModelTypes()));
}

const FamilySpec& GetFamily(ModelFamily family) {
  for (const FamilySpec& f : Families()) {
    if (f.family == family) return f;
  }
  return Families().front();
}

const char* FamilyName(ModelFamily family) { return GetFamily(family).name; }

absl::StatusOr<Activation> ParseActivation(const std::string& name,
                                           const std::string& file,
                                           const char* key) {
  if (name == "gelu") return Activation::kGeluErf;
  // transformers' NewGELUActivation and PytorchGELUTanh: the same formula.
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") {
    return Activation::kGeluTanh;
  }
  if (name == "relu") return Activation::kRelu;
  return absl::UnimplementedError(absl::StrFormat(
      "%s: %s \"%s\" is not supported (supported: gelu, gelu_new, "
      "gelu_pytorch_tanh, relu)",
      file, key, name));
}

}  // namespace attnserve
