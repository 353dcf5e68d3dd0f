#include "model/demo/constructed_model.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "model/demo/demo_words.h"

namespace attnserve {

constexpr int DemoHeads::kPrevious[2];
constexpr int DemoHeads::kNext[2];
constexpr int DemoHeads::kSelf[2];
constexpr int DemoHeads::kLocal[2];
constexpr int DemoHeads::kCls[2];
constexpr int DemoHeads::kSep[2];
constexpr int DemoHeads::kBroad[2];
constexpr int DemoHeads::kSameWord[2];
constexpr int DemoHeads::kDeterminer[2];
constexpr int DemoHeads::kSubject[2];
constexpr int DemoHeads::kPronoun[2];
constexpr int DemoHeads::kNearestNoun[2];

namespace {

// ---- The model's shape ------------------------------------------------------
constexpr int kLayers = 3, kHeads = 4, kHeadSize = 128;
constexpr int kHidden = kHeads * kHeadSize;  // 512
// Feature f lives in dims [0, 256) as +f and in [256, 512) as −f.
constexpr int kFeatures = kHidden / 2;
// 64 one-hot positions fill 64 of a head's 128 dims; the rest hold the word
// terms. More positions would not fit beside them.
constexpr int kMaxPositions = 64;
constexpr int kIntermediate = 64;  // the FFN is zero; its width is moot

// ---- Where each feature lives in f -----------------------------------------
constexpr int kPos = 0;    // [0, 64) one-hot position
constexpr int kOne = 64;   // a constant: a "bias" that LayerNorm scales too
constexpr int kTags = 65;  // [65, 73) one dim per tag below
enum Tag {
  kCls,
  kSep,
  kNoun,
  kAnimate,
  kPronoun,
  kAnaphor,
  kVerb,
  kDet,
  kNumTags
};
constexpr int kId = 80, kIdDims = 48;  // [80, 128) identity code of the token
constexpr int kFiller = 128;  // tops each word embedding up to one norm
constexpr int kScratch = 129, kScratchDims = kFeatures - kScratch;  // 127

// ---- Sizes: every token has |f|² = 256 (64 position + 192 word), so the
// stored [f, −f] has mean 0 and variance 1 over 512 dims and LayerNorm with
// γ = 1, β = 0 returns it unchanged.
constexpr float kPosAmp = 8, kOneAmp = 4, kTagAmp = 4, kIdNorm = 8;
constexpr float kWordEnergy = 192;

// ---- Attention logits (before the heads' outputs shrink the features a
// little: see docs/demo-model.md) ---------------------------------------------
constexpr float kGap = 24;  // target minus the best other key, positional heads

float Amplitude(int feature) {
  if (feature >= kPos && feature < kPos + kMaxPositions) return kPosAmp;
  if (feature == kOne) return kOneAmp;
  if (feature >= kTags && feature < kTags + kNumTags) return kTagAmp;
  return 1;
}

// Σ coef · f[feature] / amplitude: a tag or a position reads as 0 or 1.
struct Term {
  int feature;
  float coef;
};
using Functional = std::vector<Term>;
Functional Feature(int f) { return {{f, 1.f}}; }
Functional TagF(Tag t) { return {{kTags + t, 1.f}}; }

// One head in feature space: what its query, key and value dims read, what
// its output writes. logit(i, j) = q_i·k_j / √d, so a term's gain goes on the
// query side times √d.
class HeadBuilder {
 public:
  HeadBuilder()
      : q_(kHeadSize * kFeatures),
        k_(kHeadSize * kFeatures),
        v_(kHeadSize * kFeatures),
        o_(kFeatures * kHeadSize) {}

  // logit(i, j) += gain · u(f_i) · w(f_j), in one head dim.
  void AddProduct(float gain, const Functional& u, const Functional& w) {
    const int d = TakeDims(1);
    if (d < 0) return;
    for (const Term& t : u)
      Q(d, t.feature) += Scale() * gain * t.coef / Amplitude(t.feature);
    for (const Term& t : w) K(d, t.feature) += t.coef / Amplitude(t.feature);
  }

  // logit(i, j) += m(i, j) for the positions i, j of query and key; one
  // head dim per position, so any function of the two positions is exact.
  void AddPositions(const std::function<float(int, int)>& m) {
    const int d0 = TakeDims(kMaxPositions);
    if (d0 < 0) return;
    for (int d = 0; d < kMaxPositions; ++d) {
      K(d0 + d, kPos + d) = 1 / kPosAmp;  // key dim d: "the key is at d"
      for (int i = 0; i < kMaxPositions; ++i) {
        Q(d0 + d, kPos + i) = Scale() * m(i, d) / kPosAmp;
      }
    }
  }

  // logit(i, j) += gain · (c_i · c_j) / |c|² over the identity codes: gain
  // for the same token, about gain·N(0, 1/48) for two different ones.
  void AddIdentity(float gain) {
    const int d0 = TakeDims(kIdDims);
    if (d0 < 0) return;
    for (int d = 0; d < kIdDims; ++d) {
      Q(d0 + d, kId + d) = Scale() * gain / kIdNorm;
      K(d0 + d, kId + d) = 1 / kIdNorm;
    }
  }

  // The value is the key token's identity code; the output writes
  // scale · R · value into the scratch dims, R having orthonormal columns
  // (a head of its own direction), so |output| = scale · |c| at most.
  void CopyIdentity(float scale, std::mt19937* rng) {
    std::normal_distribution<float> normal(0.f, 1.f);
    std::vector<std::vector<double>> columns;  // Gram–Schmidt
    for (int c = 0; c < kIdDims; ++c) {
      std::vector<double> v(kScratchDims);
      for (double& x : v) x = normal(*rng);
      for (const auto& u : columns) {
        double dot = 0;
        for (int r = 0; r < kScratchDims; ++r) dot += u[r] * v[r];
        for (int r = 0; r < kScratchDims; ++r) v[r] -= dot * u[r];
      }
      double norm = 0;
      for (double x : v) norm += x * x;
      norm = std::sqrt(norm);
      for (double& x : v) x /= norm;
      columns.push_back(std::move(v));
    }
    for (int d = 0; d < kIdDims; ++d) {
      v_[d * kFeatures + kId + d] = 1;
      for (int r = 0; r < kScratchDims; ++r) {
        o_[(kScratch + r) * kHeadSize + d] = scale * float(columns[d][r]);
      }
    }
  }

  bool overflowed() const { return overflowed_; }

  // Writes the head into `layer` as head `head`: rows of the fused QKV
  // weight, columns of the output projection. Each reads (x_d − x_{d+256})/2
  // and writes +o into dim d, −o into d + 256.
  void Store(int head, LayerWeights* layer) const {
    const std::vector<float>* parts[3] = {&q_, &k_, &v_};
    for (int p = 0; p < 3; ++p) {
      for (int r = 0; r < kHeadSize; ++r) {
        float* row =
            &layer->qkv_weight[(int64_t(p) * kHidden + head * kHeadSize + r) *
                               kHidden];  // (H)
        for (int c = 0; c < kFeatures; ++c) {
          const float w = (*parts[p])[r * kFeatures + c];
          row[c] = w / 2;
          row[c + kFeatures] = -w / 2;
        }
      }
    }
    for (int c = 0; c < kFeatures; ++c) {
      for (int r = 0; r < kHeadSize; ++r) {
        const float w = o_[c * kHeadSize + r];
        layer->out_weight[int64_t(c) * kHidden + head * kHeadSize + r] = w;
        layer->out_weight[int64_t(c + kFeatures) * kHidden + head * kHeadSize +
                          r] = -w;
      }
    }
  }

 private:
  static float Scale() { return std::sqrt(float(kHeadSize)); }
  float& Q(int d, int feature) { return q_[d * kFeatures + feature]; }
  float& K(int d, int feature) { return k_[d * kFeatures + feature]; }
  int TakeDims(int n) {
    if (used_ + n > kHeadSize) {
      overflowed_ = true;
      return -1;
    }
    used_ += n;
    return used_ - n;
  }

  int used_ = 0;
  bool overflowed_ = false;
  std::vector<float> q_, k_, v_;  // (head size, features)
  std::vector<float> o_;          // (features, head size)
};

// Recency of a key `delta` tokens away in the searched direction (delta ≥ 1):
// 96 for the nearest, 4 less per token up to 16, then 0.5 less per token,
// still 12.5 at 63. Keys on the other side (and the query itself) get 0.
float Recency(int delta) {
  return 96.f - 4.f * std::min(delta - 1, 15) - 0.5f * std::max(0, delta - 16);
}

// "Tokens tagged `trigger` attend to the nearest key tagged `key` before
// them (or after, `forward`); every other token rests on [CLS]", for the
// third layer's heads. Logits, before shrinking:
//   trigger row, target key:       110 + Recency(Δ*)   ≥ 122.5
//   trigger row, [CLS]:            104 + Recency(i)    (no key found: rest)
//   trigger row, other tokens:     ≤ 96 (+110 for keys farther or behind)
//   other rows, [CLS]:             110 + Recency(i) ≥ 110; others ≤ 96
void AddNearest(HeadBuilder* h, Tag trigger, const Functional& key,
                bool forward) {
  h->AddPositions([forward](int i, int j) {
    const int delta = forward ? j - i : i - j;
    return delta >= 1 ? Recency(delta) : 0.f;
  });
  h->AddProduct(110, TagF(trigger), key);
  h->AddProduct(110, {{kOne, 1.f}, {kTags + trigger, -1.f}}, TagF(kCls));
  h->AddProduct(104, TagF(trigger), TagF(kCls));
}

struct Word {
  std::string text;
  std::vector<Tag> tags;
};

absl::StatusOr<std::vector<Word>> ParseWords(absl::string_view text) {
  static const auto* names =
      new absl::flat_hash_map<std::string, int>{{"noun", kNoun},
                                                {"animate", kAnimate},
                                                {"pronoun", kPronoun},
                                                {"anaphor", kAnaphor},
                                                {"verb", kVerb},
                                                {"det", kDet},
                                                // read but not used by any head
                                                {"adj", -1},
                                                {"adv", -1},
                                                {"function", -1}};
  std::vector<Word> words;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> fields = absl::StrSplit(line, '\t');
    if (fields.size() != 2 || fields[0].empty()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "model/demo/words.txt:%d: expected \"word<TAB>tags\"", line_number));
    }
    Word w{std::string(fields[0]), {}};
    for (absl::string_view tag : absl::StrSplit(fields[1], ',')) {
      auto it = names->find(std::string(tag));
      if (it == names->end()) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "model/demo/words.txt:%d: unknown tag \"%s\"", line_number, tag));
      }
      if (it->second >= 0) w.tags.push_back(static_cast<Tag>(it->second));
    }
    words.push_back(std::move(w));
  }
  return words;
}

// vocab.txt: special tokens, punctuation, digits and letters (alone and as
// "##" pieces, so any English text tokenizes without [UNK]), common
// suffixes, then the words. Returns the tags of every entry too.
void MakeVocab(const std::vector<Word>& words, std::vector<std::string>* vocab,
               std::vector<std::vector<Tag>>* tags) {
  absl::flat_hash_map<std::string, int> index;
  auto add = [&](const std::string& token) {
    if (index.emplace(token, vocab->size()).second) {
      vocab->push_back(token);
      tags->emplace_back();
    }
    return index[token];
  };
  for (const char* s : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) add(s);
  (*tags)[index["[CLS]"]] = {kCls};
  (*tags)[index["[SEP]"]] = {kSep};
  for (const char* p = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"; *p; ++p) {
    add(std::string(1, *p));
  }
  // Non-ASCII punctuation and symbols of everyday English text (accents are
  // stripped by the lower-casing tokenizer, so é needs no entry).
  const std::vector<std::string> symbols = {
      "‘", "’", "“", "”", "–", "—", "…", "•", "«", "»", "€", "£",
      "¥", "°", "©", "®", "™", "§", "¶", "†", "×", "÷", "·", "¡",
      "¿", "′", "″", "±", "ß", "æ", "ø", "œ", "ð", "þ", "ł"};
  for (const std::string& s : symbols) add(s);
  for (char ch = '0'; ch <= '9'; ++ch) add(std::string(1, ch));
  for (char ch = 'a'; ch <= 'z'; ++ch) add(std::string(1, ch));
  for (char ch = '0'; ch <= '9'; ++ch) add(std::string("##") + ch);
  for (char ch = 'a'; ch <= 'z'; ++ch) add(std::string("##") + ch);
  for (const std::string& s : symbols) add("##" + s);
  for (const char* s :
       {"##s",     "##es",   "##ed",   "##ing",  "##ly",    "##er",
        "##ers",   "##est",  "##ness", "##ment", "##ments", "##tion",
        "##tions", "##ion",  "##ions", "##able", "##ible",  "##ful",
        "##less",  "##ity",  "##al",   "##ic",   "##ical",  "##ize",
        "##ized",  "##ise",  "##ous",  "##y",    "##en",    "##ism",
        "##ist",   "##ists", "##ship", "##hood", "##ward",  "##like"}) {
    add(s);
  }
  for (const Word& w : words) {
    const int id = add(w.text);  // "a" and "i" are letters too: tag them
    (*tags)[id] = w.tags;
  }
}

}  // namespace

const std::vector<DemoHeadJob>& ConstructedHeadJobs() {
  static const auto* jobs = new std::vector<DemoHeadJob>{
      {0, 0, "previous token"},
      {0, 1, "next token"},
      {0, 2, "self"},
      {0, 3, "local window ±2"},
      {1, 0, "[CLS]"},
      {1, 1, "[SEP]"},
      {1, 2, "broad (uniform)"},
      {1, 3, "same word elsewhere"},
      {2, 0, "determiner → its noun"},
      {2, 1, "verb → its subject"},
      {2, 2, "pronoun → animate noun"},
      {2, 3, "pronoun → nearest noun"},
  };
  return *jobs;
}

absl::StatusOr<ConstructedModel> BuildConstructedModel() {
  absl::StatusOr<std::vector<Word>> words = ParseWords(DemoWordsText());
  if (!words.ok()) return words.status();
  ConstructedModel m;
  std::vector<std::vector<Tag>> tags;
  MakeVocab(*words, &m.vocab, &tags);

  ModelConfig& c = m.config;
  c.vocab_size = m.vocab.size();
  c.hidden_size = kHidden;
  c.num_layers = kLayers;
  c.num_heads = kHeads;
  c.intermediate_size = kIntermediate;
  c.max_position_embeddings = kMaxPositions;
  c.type_vocab_size = 2;
  const int64_t h = kHidden;
  BertWeights& w = m.weights;

  // Stores feature vector `f` (kFeatures) as the hidden row [f, −f].
  auto store = [](const std::vector<float>& f, float* row) {
    for (int d = 0; d < kFeatures; ++d) {
      row[d] = f[d];
      row[d + kFeatures] = -f[d];
    }
  };

  // Word embeddings: constant, tags, identity code, filler.
  std::mt19937 rng(20190814);  // fixed: the same model every time
  std::normal_distribution<float> normal(0.f, 1.f);
  w.word_embeddings.assign(int64_t(c.vocab_size) * h, 0.f);
  for (int id = 0; id < c.vocab_size; ++id) {
    std::vector<float> f(kFeatures, 0.f);
    f[kOne] = kOneAmp;
    for (Tag t : tags[id]) f[kTags + t] = kTagAmp;
    const bool special = m.vocab[id] == "[CLS]" || m.vocab[id] == "[SEP]" ||
                         m.vocab[id] == "[PAD]";
    // Specials have no identity: heads that rest on [CLS] or [SEP] read a
    // zero value and write nothing.
    if (!special) {
      double norm = 0;
      for (int d = 0; d < kIdDims; ++d) {
        f[kId + d] = normal(rng);
        norm += double(f[kId + d]) * f[kId + d];
      }
      for (int d = 0; d < kIdDims; ++d) f[kId + d] *= kIdNorm / std::sqrt(norm);
    }
    double energy = 0;
    for (float x : f) energy += double(x) * x;
    f[kFiller] = std::sqrt(std::max(0.0, kWordEnergy - energy));
    store(f, &w.word_embeddings[id * h]);
  }
  w.position_embeddings.assign(int64_t(kMaxPositions) * h, 0.f);
  for (int p = 0; p < kMaxPositions; ++p) {
    std::vector<float> f(kFeatures, 0.f);
    f[kPos + p] = kPosAmp;
    store(f, &w.position_embeddings[p * h]);
  }
  w.type_embeddings.assign(int64_t(c.type_vocab_size) * h, 0.f);
  w.emb_ln_gamma.assign(h, 1.f);
  w.emb_ln_beta.assign(h, 0.f);

  // The heads, layer by layer (ConstructedHeadJobs, docs/demo-model.md).
  std::vector<std::vector<HeadBuilder>> heads(kLayers,
                                              std::vector<HeadBuilder>(kHeads));
  std::mt19937 out_rng(7);
  auto one = Feature(kOne);
  // Layer 0: where, by position. Row 0 ([CLS]) of "previous" and the last
  // row ([SEP]) of "next" rest on themselves.
  {
    HeadBuilder& prev = heads[0][0];
    prev.AddPositions([](int i, int j) {
      return j == i - 1 || (i == 0 && j == 0) ? kGap : 0.f;
    });
    prev.CopyIdentity(0.5f, &out_rng);
    HeadBuilder& next = heads[0][1];
    next.AddPositions([](int i, int j) { return j == i + 1 ? kGap : 0.f; });
    next.AddProduct(kGap / 2, one, TagF(kSep));
    next.CopyIdentity(0.5f, &out_rng);
    HeadBuilder& self = heads[0][2];
    self.AddPositions([](int i, int j) { return i == j ? kGap : 0.f; });
    self.CopyIdentity(0.3f, &out_rng);
    HeadBuilder& local = heads[0][3];
    local.AddPositions(
        [](int i, int j) { return std::abs(i - j) <= 2 ? kGap : 0.f; });
    local.CopyIdentity(0.4f, &out_rng);
  }
  // Layer 1: special tokens, everything, and identity.
  {
    HeadBuilder& cls = heads[1][0];
    cls.AddProduct(kGap, one, TagF(kCls));
    cls.CopyIdentity(1.f, &out_rng);  // [CLS]'s value is 0: a no-op
    HeadBuilder& sep = heads[1][1];
    sep.AddProduct(kGap, one, TagF(kSep));
    sep.CopyIdentity(1.f, &out_rng);   // likewise
    HeadBuilder& broad = heads[1][2];  // no query: every logit is 0
    broad.CopyIdentity(0.05f, &out_rng);
    // Same word: 40 for the same code, 40·N(0, 1/48) for another; minus 30
    // for itself (given back to [CLS]'s own row); 24 for [CLS], the rest of
    // a word that occurs once.
    HeadBuilder& same = heads[1][3];
    same.AddIdentity(40);
    same.AddPositions([](int i, int j) { return i == j ? -30.f : 0.f; });
    same.AddProduct(30, TagF(kCls), TagF(kCls));
    same.AddProduct(24, one, TagF(kCls));
    same.CopyIdentity(0.5f, &out_rng);
  }
  // Layer 2: relations between words, by their tags.
  {
    AddNearest(&heads[2][0], kDet, TagF(kNoun), /*forward=*/true);
    heads[2][0].CopyIdentity(0.8f, &out_rng);
    AddNearest(&heads[2][1], kVerb,
               {{kTags + kNoun, 1.f}, {kTags + kPronoun, 1.f}},
               /*forward=*/false);
    heads[2][1].CopyIdentity(0.8f, &out_rng);
    AddNearest(&heads[2][2], kAnaphor, TagF(kAnimate), /*forward=*/false);
    heads[2][2].CopyIdentity(1.f, &out_rng);
    AddNearest(&heads[2][3], kAnaphor, TagF(kNoun), /*forward=*/false);
    heads[2][3].CopyIdentity(0.6f, &out_rng);
  }

  w.layers.resize(kLayers);
  for (int l = 0; l < kLayers; ++l) {
    LayerWeights& lw = w.layers[l];
    lw.qkv_weight.assign(3 * h * h, 0.f);
    lw.qkv_bias.assign(3 * h, 0.f);
    lw.out_weight.assign(h * h, 0.f);
    lw.out_bias.assign(h, 0.f);
    for (int hh = 0; hh < kHeads; ++hh) {
      if (heads[l][hh].overflowed()) {
        return absl::InternalError(absl::StrFormat(
            "demo model: layer %d head %d needs more than %d dims", l, hh,
            kHeadSize));
      }
      heads[l][hh].Store(hh, &lw);
    }
    lw.ln1_gamma.assign(h, 1.f);
    lw.ln1_beta.assign(h, 0.f);
    // The feed-forward block is zero: GELU(0)·0 + 0 adds nothing.
    lw.ffn1_weight.assign(int64_t(kIntermediate) * h, 0.f);
    lw.ffn1_bias.assign(kIntermediate, 0.f);
    lw.ffn2_weight.assign(h * kIntermediate, 0.f);
    lw.ffn2_bias.assign(h, 0.f);
    lw.ln2_gamma.assign(h, 1.f);
    lw.ln2_beta.assign(h, 0.f);
  }
  // The read-out: the last LayerNorm keeps the identity codes and what the
  // heads wrote, the tags faintly, and drops position, constant and filler,
  // so pooled embeddings say which words and which relations a text has.
  std::vector<float>& readout = w.layers.back().ln2_gamma;
  for (int d = 0; d < kFeatures; ++d) {
    float g = 0;
    if (d >= kId && d < kId + kIdDims) g = 1;
    if (d >= kScratch) g = 1;
    if (d >= kTags && d < kTags + kNumTags) g = 0.25f;
    readout[d] = readout[d + kFeatures] = g;
  }
  // Pooler: tanh of [CLS]'s hidden state.
  w.pooler_weight.assign(h * h, 0.f);
  for (int64_t d = 0; d < h; ++d) w.pooler_weight[d * h + d] = 1.f;
  w.pooler_bias.assign(h, 0.f);
  w.stored_dtype = "F32";
  return m;
}

}  // namespace attnserve
