#include "model/demo/demo_model.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>

#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "model/checkpoint/weights.h"
#include "model/demo/constructed_model.h"
#include "nlohmann/json.hpp"

namespace attnserve {
namespace {

// Enough everyday English for the README's examples to tokenize into words.
constexpr const char* kWords[] = {
    "the",    "a",      "an",        "and",     "or",    "but",     "because",
    "so",     "if",     "of",        "to",      "in",    "on",      "at",
    "by",     "for",    "with",      "from",    "into",  "over",    "under",
    "it",     "he",     "she",       "they",    "we",    "you",     "i",
    "me",     "him",    "her",       "them",    "his",   "its",     "their",
    "our",    "my",     "your",      "this",    "that",  "these",   "those",
    "is",     "was",    "are",       "were",    "be",    "been",    "being",
    "has",    "have",   "had",       "do",      "does",  "did",     "not",
    "n",      "t",      "s",         "didn",    "doesn", "can",     "could",
    "will",   "would",  "should",    "may",     "might", "must",    "too",
    "very",   "animal", "street",    "road",    "cross", "crossed", "tired",
    "wide",   "dog",    "cat",       "bird",    "man",   "woman",   "child",
    "people", "house",  "car",       "tree",    "river", "bank",    "money",
    "water",  "time",   "day",       "night",   "year",  "city",    "world",
    "sat",    "sit",    "mat",       "ran",     "run",   "walk",    "walked",
    "saw",    "see",    "said",      "say",     "went",  "go",      "came",
    "come",   "make",   "made",      "take",    "took",  "give",    "gave",
    "know",   "knew",   "think",     "thought", "good",  "bad",     "big",
    "small",  "old",    "new",       "long",    "short", "happy",   "sad",
    "fast",   "slow",   "red",       "blue",    "green", "black",   "white",
    "hello",  "world",  "attention", "head",    "heads", "model",   "language",
    "word",   "words",  "sentence",  "text",    "token", "tokens",  "really",
    "better", "than",   "one",       "two",     "three", "sixteen", "many",
    "all",    "some",   "every",     "who",     "what",  "where",   "when",
    "why",    "how",    "which",     "there",   "here",  "then",    "now",
    "again",  "still",  "just",      "only",    "also",  "no",      "yes",
    "up",     "down",   "out",       "off",     "about", "after",   "before",
    "while",  "until",
};
constexpr const char* kSpecial[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]",
                                    "[MASK]"};
constexpr const char* kPunct = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

std::vector<std::string> DemoVocab() {
  std::vector<std::string> vocab(std::begin(kSpecial), std::end(kSpecial));
  for (const char* p = kPunct; *p; ++p) vocab.emplace_back(1, *p);
  for (char ch = '0'; ch <= '9'; ++ch) vocab.emplace_back(1, ch);
  for (char ch = 'a'; ch <= 'z'; ++ch) vocab.emplace_back(1, ch);
  for (char ch = '0'; ch <= '9'; ++ch) vocab.push_back(std::string("##") + ch);
  for (char ch = 'a'; ch <= 'z'; ++ch) vocab.push_back(std::string("##") + ch);
  for (const char* w : kWords) {
    if (std::find(vocab.begin(), vocab.end(), w) == vocab.end()) {
      vocab.emplace_back(w);
    }
  }
  for (const char* s : {"##s", "##ed", "##ing", "##ly", "##er"}) {
    vocab.emplace_back(s);
  }
  return vocab;
}

absl::Status WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), bytes.size());
  out.close();
  if (!out) {
    return absl::InternalError(absl::StrFormat("%s: cannot write", path));
  }
  return absl::OkStatus();
}

}  // namespace

std::string ConfigJson(const ModelConfig& c) {
  nlohmann::ordered_json j = {
      {"architectures", {"BertModel"}},
      {"attention_probs_dropout_prob", 0.1},
      {"hidden_act", c.hidden_act},
      {"hidden_dropout_prob", 0.1},
      {"hidden_size", c.hidden_size},
      {"initializer_range", 0.02},
      {"intermediate_size", c.intermediate_size},
      {"layer_norm_eps", c.layer_norm_eps},
      {"max_position_embeddings", c.max_position_embeddings},
      {"model_type", "bert"},
      {"num_attention_heads", c.num_heads},
      {"num_hidden_layers", c.num_layers},
      {"pad_token_id", c.pad_token_id},
      {"position_embedding_type", "absolute"},
      {"torch_dtype", "float32"},
      {"type_vocab_size", c.type_vocab_size},
      {"vocab_size", c.vocab_size},
  };
  return j.dump(2) + "\n";
}

absl::Status WriteSafetensors(
    const std::string& path, const std::map<std::string, HostTensor>& tensors) {
  nlohmann::ordered_json header;
  header["__metadata__"] = {{"format", "pt"}};
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    const size_t bytes = t.values.size() * sizeof(float);
    header[name] = {{"dtype", "F32"},
                    {"shape", t.shape},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[i] = char((uint64_t{json.size()} >> (8 * i)) & 0xff);
  out += json;
  for (const auto& [name, t] : tensors) {
    out.append(reinterpret_cast<const char*>(t.values.data()),
               t.values.size() * sizeof(float));
  }
  return WriteFile(path, out);
}

namespace {

absl::Status WriteConstructedModel(const std::string& dir) {
  ASSIGN_OR_RETURN(ConstructedModel m, BuildConstructedModel());
  ASSIGN_OR_RETURN(std::vector<NamedTensor> named,
                   ToNamedTensors(m.weights, m.config));
  std::map<std::string, HostTensor> tensors;
  for (NamedTensor& t : named) {
    tensors.emplace(t.name, HostTensor{t.shape, std::move(t.values)});
  }
  RETURN_IF_ERROR(WriteFile(dir + "/config.json", ConfigJson(m.config)));
  RETURN_IF_ERROR(WriteSafetensors(dir + "/model.safetensors", tensors));
  std::string vocab_text;
  for (const std::string& token : m.vocab) vocab_text += token + "\n";
  RETURN_IF_ERROR(WriteFile(dir + "/vocab.txt", vocab_text));
  // Mean pooling by default (sentence-transformers' files say so): the
  // embedding is then the words and what the heads found in every row, not
  // just [CLS]'s row.
  const std::string pooling_dir = dir + "/1_Pooling";
  if (::mkdir(pooling_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrFormat(
        "%s: cannot create: %s", pooling_dir, std::strerror(errno)));
  }
  RETURN_IF_ERROR(
      WriteFile(dir + "/modules.json",
                "[{\"idx\": 0, \"name\": \"0\", \"path\": \"\", "
                "\"type\": \"sentence_transformers.models.Transformer\"},\n"
                " {\"idx\": 1, \"name\": \"1\", \"path\": \"1_Pooling\", "
                "\"type\": \"sentence_transformers.models.Pooling\"}]\n"));
  return WriteFile(
      pooling_dir + "/config.json",
      "{\"word_embedding_dimension\": " + std::to_string(m.config.hidden_size) +
          ", \"pooling_mode_cls_token\": false, "
          "\"pooling_mode_mean_tokens\": true}\n");
}

}  // namespace

absl::Status WriteDemoModel(const std::string& dir,
                            const DemoModelOptions& options) {
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::InternalError(
        absl::StrFormat("%s: cannot create: %s", dir, std::strerror(errno)));
  }
  if (options.kind == DemoModelKind::kConstructed) {
    return WriteConstructedModel(dir);
  }
  const std::vector<std::string> vocab = DemoVocab();
  ModelConfig c;
  c.vocab_size = vocab.size();
  c.hidden_size = options.hidden_size;
  c.num_layers = options.num_layers;
  c.num_heads = options.num_heads;
  c.intermediate_size = options.intermediate_size;
  c.max_position_embeddings = options.max_position_embeddings;

  // Larger than BERT's 0.02 init so heads attend to different places.
  std::mt19937 rng(options.seed);
  std::normal_distribution<float> weight(0.f, 0.2f), small(0.f, 0.05f);
  std::map<std::string, HostTensor> tensors;
  for (const NamedShape& ns : WeightTable(c, options.with_pooler)) {
    HostTensor t{ns.shape, {}};
    int64_t n = 1;
    for (int64_t d : ns.shape) n *= d;
    const bool is_norm = ns.name.find("LayerNorm") != std::string::npos;
    const bool is_bias = ns.name.size() > 5 &&
                         ns.name.compare(ns.name.size() - 5, 5, ".bias") == 0;
    t.values.resize(n);
    for (float& v : t.values) {
      v = is_norm && !is_bias ? 1.f + small(rng)
                              : (is_bias ? small(rng) : weight(rng));
    }
    tensors.emplace(ns.name, std::move(t));
  }
  RETURN_IF_ERROR(WriteFile(dir + "/config.json", ConfigJson(c)));
  RETURN_IF_ERROR(WriteSafetensors(dir + "/model.safetensors", tensors));
  std::string vocab_text;
  for (const std::string& token : vocab) vocab_text += token + "\n";
  return WriteFile(dir + "/vocab.txt", vocab_text);
}

}  // namespace attnserve
