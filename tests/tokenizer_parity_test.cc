// Token-for-token parity with Hugging Face's tokenizers (the Rust library
// transformers uses by default), run from Node: npm `tokenizers` 0.23.x in
// tools/hf_tokenizers (package-lock.json pins it; its prebuilt Linux binary
// comes inside the package). For each tokenizer kind, a few thousand seeded
// random strings (accents, combining marks, CJK, Hangul, emoji with ZWJ and
// skin tones, control and zero-width characters, odd white space, every
// ASCII and much Unicode punctuation, Greek capitals, contractions, very
// long words), some as pairs, are encoded by both and compared id for id.
//
// Both sides read the same tokenizer files. The strings never contain a
// special token's text ("<s>", "[CLS]"): Hugging Face matches those in the
// input and attnserve deliberately does not (see bpe.h, tokenizer.h).
//
// Skipped, with a message, when node or npm is not installed. With npm but
// no tools/hf_tokenizers/node_modules, runs `npm ci` there first (CI reaches
// the npm registry).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/text/text_tokenizer.h"
#include "nlohmann/json.hpp"

namespace attnserve {
namespace {

using Json = nlohmann::json;

constexpr int kStringsPerKind = 3000;

std::string HfDir() { return std::string(ATTNSERVE_HF_TOKENIZERS_DIR); }
std::string Data(const std::string& sub) {
  return std::string(ATTNSERVE_TEST_DATA) + "/" + sub;
}

bool HasCommand(const char* name) {
  return std::system((std::string("command -v ") + name + " >/dev/null 2>&1")
                         .c_str()) == 0;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Seeded random text from many scripts and character classes.
class TextGenerator {
 public:
  explicit TextGenerator(uint32_t seed) : rng_(seed) {}

  std::string Next() {
    std::string s;
    const int chunks = Uniform(1, 10);
    for (int c = 0; c < chunks; ++c) {
      if (c > 0) Separator(&s);
      Chunk(&s);
    }
    return s;
  }

 private:
  int Uniform(int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng_);
  }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[Uniform(0, static_cast<int>(v.size()) - 1)];
  }
  void Word(const std::vector<std::string>& words, std::string* s) {
    *s += Pick(words);
  }

  void Separator(std::string* s) {
    static const std::vector<std::string> odd = {
        "  ",       "\t",       "\n",           "\r\n",     "\xC2\xA0",
        "\xE2\x80\x83", "\xE3\x80\x80", "\xE2\x80\xA8", "\xE2\x80\xA9",
        "\xC2\x85", "\xE1\x9A\x80", "   \n ",   "\x0B",     "\x0C",
        "\xE2\x80\x8B", ""};
    const int r = Uniform(0, 9);
    if (r < 7) {
      *s += " ";
    } else {
      *s += Pick(odd);
    }
  }

  void Chunk(std::string* s) {
    static const std::vector<std::string> ascii = {
        "the",  "The",   "quick", "brown",  "FOX",    "jumps", "over",
        "lazy", "dog",   "hello", "World",  "it's",   "we'll", "they've",
        "I'm",  "don't", "he'd",  "you're", "THEY'RE", "O'Neil", "x",
        "a",    "I",     "test",  "tests",  "testing", "Tokenizer", "version",
        "v1.2.3", "e-mail", "foo_bar", "camelCase", "URL", "http://a.b/c?d=e"};
    static const std::vector<std::string> accents = {
        "café",  "naïve", "résumé", "Ångström", "über", "Straße", "façade",
        "élève", "ÉCOLE", "niño",   "São",      "Øre",  "İstanbul", "ﬁne",
        "Ǆemal", "ǅ",     "Ⅻ",     "ŉ",        "ß",    "ẞ"};
    static const std::vector<std::string> greek = {
        "ΟΔΟΣ", "ΣΟΦΟΚΛΕΟΥΣ", "Σ", "ΑΣ", "ὈΔΥΣΣΕΎΣ", "λόγος", "ΣΑΣ.", "ΣΣ",
        "Σ'",   "ΑΣ'Α",       "σς"};
    static const std::vector<std::string> scripts = {
        "Москва", "Привет", "東京",    "中文分词", "日本語", "한국어", "안녕하세요",
        "नमस्ते", "مرحبا",  "שלום",   "ภาษาไทย", "ქართული", "Ελλάδα", "ᚠᚢᚦ",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𠀀𠀁", "ｶﾀｶﾅ",  "ｆｕｌｌ", "①②③", "¹²³", "٣٤٥",
        "߀", "ꙮ"};
    static const std::vector<std::string> emoji = {
        "😀", "🎉", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "❤️", "🇫🇷", "✌🏿", "🧑‍💻",
        "⌚", "☃", "🀄"};
    static const std::vector<std::string> punctuation = {
        "—", "–", "“", "”", "‘", "’", "«", "»", "¿", "¡", "、", "。", "‽",
        "…", "·", "•", "†", "‡", "§", "¶", "©", "®", "™", "€", "£", "¥",
        "½", "∑", "∫", "√", "→", "⇒", "∞", "≠", "«»", "「」", "【】", "〜",
        "¦", "¨", "¯", "´", "¸", "˙", "ˆ"};
    static const std::vector<char32_t> marks = {
        0x0300, 0x0301, 0x0302, 0x0303, 0x0308, 0x030A, 0x0327, 0x0323,
        0x0335, 0x0338, 0x20DD, 0x0489, 0x05B4, 0x064B, 0x093C, 0x0E49,
        0x3099, 0xFE0F, 0x1F3FB};
    static const std::vector<char32_t> invisible = {
        0x0000, 0x0001, 0x0007, 0x001B, 0x007F, 0x0080, 0x009F, 0x00AD,
        0x200B, 0x200C, 0x200D, 0x200E, 0x2060, 0x2062, 0xFEFF, 0xFFFD,
        0xE000, 0xF8FF, 0x0378, 0xFFFE, 0x1D173};
    switch (Uniform(0, 11)) {
      case 0:
      case 1:
        Word(ascii, s);
        break;
      case 2:
        Word(accents, s);
        break;
      case 3:
        Word(greek, s);
        break;
      case 4:
        Word(scripts, s);
        break;
      case 5:
        Word(emoji, s);
        break;
      case 6: {  // ASCII punctuation runs, sometimes glued to a word
        static const std::string p = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
        const int n = Uniform(1, 4);
        for (int i = 0; i < n; ++i) s->push_back(p[Uniform(0, p.size() - 1)]);
        if (Uniform(0, 1)) Word(ascii, s);
        break;
      }
      case 7:
        Word(punctuation, s);
        break;
      case 8: {  // a letter or word with combining marks
        Word(Uniform(0, 1) ? ascii : accents, s);
        const int n = Uniform(1, 3);
        for (int i = 0; i < n; ++i) AppendUtf8(Pick(marks), s);
        break;
      }
      case 9: {  // control, zero-width, private-use, unassigned
        if (Uniform(0, 1)) Word(ascii, s);
        AppendUtf8(Pick(invisible), s);
        if (Uniform(0, 1)) Word(ascii, s);
        break;
      }
      case 10: {  // numbers
        const int n = Uniform(1, 12);
        for (int i = 0; i < n; ++i) s->push_back('0' + Uniform(0, 9));
        if (Uniform(0, 2) == 0) *s += Uniform(0, 1) ? ".5" : ",000";
        break;
      }
      case 11: {  // a very long word (past WordPiece's 100 characters)
        const int n = Uniform(90, 600);
        const std::string& w = Pick(Uniform(0, 1) ? ascii : accents);
        while (static_cast<int>(s->size()) < n) *s += w;
        break;
      }
    }
  }

  std::mt19937 rng_;
};

// No special token's text: Hugging Face would match it as that token.
bool Clean(const std::string& s) {
  for (const char* special : {"<s>", "</s>", "<pad>", "<unk>", "<mask>",
                              "[CLS]", "[SEP]", "[UNK]", "[PAD]", "[MASK]"}) {
    if (s.find(special) != std::string::npos) return false;
  }
  return true;
}

struct Case {
  std::string text, pair;
};

std::vector<Case> Cases(uint32_t seed) {
  TextGenerator gen(seed);
  std::vector<Case> cases;
  while (static_cast<int>(cases.size()) < kStringsPerKind) {
    Case c{gen.Next(), ""};
    if (cases.size() % 10 == 9) c.pair = gen.Next();
    if (Clean(c.text) && Clean(c.pair)) cases.push_back(std::move(c));
  }
  return cases;
}

class ParityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HasCommand("node") || !HasCommand("npm")) {
      GTEST_SKIP() << "node or npm is not installed: Hugging Face's "
                      "tokenizers (npm) cannot run, parity not checked";
    }
    // ctest runs these tests in parallel: the first installs under a lock
    // and marks the install complete; the others wait for it instead of
    // running npm ci over a half-written node_modules.
    const std::string cmd =
        "cd '" + HfDir() +
        "' && flock .npm-ci.lock sh -c '[ -f node_modules/.attnserve-npm-ci ] "
        "|| { npm ci --no-audit --no-fund && touch "
        "node_modules/.attnserve-npm-ci; }' >&2";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::string tmpl = ::testing::TempDir() + "parity.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    if (!root_.empty()) std::system(("rm -rf '" + root_ + "'").c_str());
  }

  // A model directory under the temp root: `tokenizer_json` as
  // tokenizer.json, plus `files` copied from tests/data.
  std::string Dir(const std::string& name, const Json& tokenizer_json,
                  const std::vector<std::string>& files = {}) {
    const std::string dir = root_ + "/" + name;
    ::mkdir(dir.c_str(), 0755);
    WriteAll(dir + "/tokenizer.json", tokenizer_json.dump());
    for (const std::string& f : files) {
      const std::string base = f.substr(f.find_last_of('/') + 1);
      WriteAll(dir + "/" + base, ReadAll(Data(f)));
    }
    return dir;
  }

  // Hugging Face's ids for every case, from `tokenizer_json_path`.
  std::vector<std::vector<int32_t>> Reference(
      const std::string& tokenizer_json_path, const std::vector<Case>& cases) {
    Json in = Json::array();
    for (const Case& c : cases) in.push_back({c.text, c.pair});
    const std::string in_path = root_ + "/in.json";
    const std::string out_path = root_ + "/out.json";
    WriteAll(in_path, in.dump());
    const std::string cmd = "node '" + HfDir() + "/encode.js' '" +
                            tokenizer_json_path + "' '" + in_path + "' '" +
                            out_path + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return Json::parse(ReadAll(out_path))
        .get<std::vector<std::vector<int32_t>>>();
  }

  // Compares attnserve's tokenizer of `dir` with Hugging Face's on the same
  // tokenizer.json; returns the number that agree, printing the first few
  // disagreements.
  int Compare(const std::string& kind, const std::string& dir,
              const std::string& model_type, const std::vector<Case>& cases,
              const std::string& hf_json, bool report = true) {
    auto tokenizer = LoadTextTokenizer(dir, model_type);
    EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
    if (!tokenizer.ok()) return 0;
    const auto want = Reference(hf_json, cases);
    EXPECT_EQ(want.size(), cases.size());
    if (want.size() != cases.size()) return 0;
    int agree = 0, shown = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
      auto got = (*tokenizer)->Encode(cases[i].text, cases[i].pair, 1 << 20,
                                      false);
      if (got.ok() && got->ids == want[i]) {
        ++agree;
        continue;
      }
      if (report && shown++ < 5) {
        ADD_FAILURE() << kind << " case " << i << " differs: text "
                      << Json(cases[i].text).dump() << " pair "
                      << Json(cases[i].pair).dump() << "\n  attnserve "
                      << (got.ok() ? Json(got->ids).dump()
                                   : got.status().ToString())
                      << "\n  hf        " << Json(want[i]).dump();
      }
    }
    std::printf("[ parity ] %s: %d of %zu agree with Hugging Face tokenizers\n",
                kind.c_str(), agree, cases.size());
    RecordProperty(kind + "_agree", agree);
    RecordProperty(kind + "_total", static_cast<int>(cases.size()));
    return agree;
  }

  std::string root_;
};

TEST_F(ParityTest, WordPieceUncased) {
  Json j = Json::parse(ReadAll(Data("tokenizer/json/tokenizer.json")));
  j["normalizer"]["lowercase"] = true;
  const auto& vocab = j["model"]["vocab"];
  j["post_processor"] = {{"type", "BertProcessing"},
                         {"sep", {"[SEP]", vocab["[SEP]"]}},
                         {"cls", {"[CLS]", vocab["[CLS]"]}}};
  const std::string dir = Dir("wordpiece_uncased", j);
  const auto cases = Cases(101);
  EXPECT_EQ(Compare("wordpiece_uncased", dir, "bert", cases,
                    dir + "/tokenizer.json"),
            kStringsPerKind);
}

TEST_F(ParityTest, WordPieceCased) {
  Json j = Json::parse(ReadAll(Data("tokenizer/json/tokenizer.json")));
  const auto& vocab = j["model"]["vocab"];
  j["post_processor"] = {{"type", "BertProcessing"},
                         {"sep", {"[SEP]", vocab["[SEP]"]}},
                         {"cls", {"[CLS]", vocab["[CLS]"]}}};
  const std::string dir = Dir("wordpiece_cased", j);
  const auto cases = Cases(102);
  EXPECT_EQ(Compare("wordpiece_cased", dir, "bert", cases,
                    dir + "/tokenizer.json"),
            kStringsPerKind);
}

TEST_F(ParityTest, ByteLevelBpe) {
  const Json j = Json::parse(ReadAll(Data("tokenizer_bpe/tokenizer.json")));
  const std::string dir = Dir("bpe", j);
  const auto cases = Cases(201);
  EXPECT_EQ(Compare("bpe", dir, "roberta", cases, dir + "/tokenizer.json"),
            kStringsPerKind);
}

TEST_F(ParityTest, ByteLevelBpeWithPrefixSpace) {
  Json j = Json::parse(ReadAll(Data("tokenizer_bpe/tokenizer.json")));
  j["pre_tokenizer"]["add_prefix_space"] = true;
  j["post_processor"]["add_prefix_space"] = true;
  const std::string dir = Dir("bpe_prefix", j);
  const auto cases = Cases(202);
  EXPECT_EQ(Compare("bpe_prefix_space", dir, "roberta", cases,
                    dir + "/tokenizer.json"),
            kStringsPerKind);
}

// vocab.json + merges.txt (no tokenizer.json) against the same reference.
TEST_F(ParityTest, ByteLevelBpeFromVocabAndMerges) {
  const std::string dir = root_ + "/bpe_files";
  ::mkdir(dir.c_str(), 0755);
  for (const char* f : {"vocab.json", "merges.txt"}) {
    WriteAll(dir + "/" + f, ReadAll(Data(std::string("tokenizer_bpe/") + f)));
  }
  const auto cases = Cases(203);
  EXPECT_EQ(Compare("bpe_vocab_merges", dir, "roberta", cases,
                    Data("tokenizer_bpe/tokenizer.json")),
            kStringsPerKind);
}

// attnserve runs sentencepiece.bpe.model through libsentencepiece, as
// transformers' slow XLMRobertaTokenizer does (same library, same fairseq id
// mapping). The reference here is Hugging Face's Unigram on the
// tokenizer.json transformers' converter writes for the model, which is
// known not to match SentencePiece everywhere: measured 2737 of 3000 on
// these strings. The differences seen: trailing white space (SentencePiece
// drops it; the converted normalizer keeps one "▁"), and the segmentation
// around characters outside the vocab (unknown marks such as U+0489 or
// U+0335, skin-tone modifiers after a letter): the two score unknown pieces
// differently. The floor below catches regressions; it is not parity.
TEST_F(ParityTest, SentencePieceXlmRoberta) {
  const std::string dir = root_ + "/spm";
  ::mkdir(dir.c_str(), 0755);
  WriteAll(dir + "/sentencepiece.bpe.model",
           ReadAll(Data("tokenizer_spm/sentencepiece.bpe.model")));
  const auto cases = Cases(301);
  const int agree = Compare("sentencepiece", dir, "xlm-roberta", cases,
                            Data("tokenizer_spm/tokenizer.json"),
                            /*report=*/false);
  EXPECT_GE(agree, kStringsPerKind * 9 / 10);
}

}  // namespace
}  // namespace attnserve
