// Fuzz targets: text through the tokenizer, and the vocab files it loads
// (see fuzz_targets.h).
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/utf8.h"
#include "model/text/tokenizer.h"
#include "tests/fuzz/fuzz_targets.h"
#include "tests/fuzz/fuzz_util.h"

namespace attnserve::fuzz {
namespace {

bool IsContinuationByte(unsigned char c) { return (c & 0xC0) == 0x80; }

// The invariants of a successful Encode of (text, pair).
void CheckEncoding(const Tokenizer& tokenizer, const Encoding& e,
                   std::string_view text, std::string_view pair,
                   int max_length) {
  const size_t n = e.ids.size();
  FUZZ_CHECK(e.tokens.size() == n && e.type_ids.size() == n &&
             e.offsets.size() == n);
  FUZZ_CHECK(n >= (pair.empty() ? 2u : 3u));
  FUZZ_CHECK(n <= static_cast<size_t>(max_length));
  FUZZ_CHECK(e.tokens.front() == "[CLS]" && e.tokens.back() == "[SEP]");
  // Type ids: 0 for [CLS] A [SEP], then 1 for B [SEP] when there is a pair.
  FUZZ_CHECK(e.type_ids.front() == 0);
  FUZZ_CHECK(e.type_ids.back() == (pair.empty() ? 0 : 1));
  for (size_t i = 0; i < n; ++i) {
    FUZZ_CHECK(e.ids[i] >= 0 && e.ids[i] < tokenizer.vocab_size());
    FUZZ_CHECK(tokenizer.IdToToken(e.ids[i]) == e.tokens[i]);
    FUZZ_CHECK(e.type_ids[i] == 0 || e.type_ids[i] == 1);
    FUZZ_CHECK(i == 0 || e.type_ids[i] >= e.type_ids[i - 1]);
    // Byte offsets into the token's own segment, on character boundaries.
    const auto [begin, end] = e.offsets[i];
    const std::string_view source = e.type_ids[i] == 0 ? text : pair;
    FUZZ_CHECK(0 <= begin && begin <= end &&
               end <= static_cast<int64_t>(source.size()));
    if (begin < end) {
      FUZZ_CHECK(!IsContinuationByte(source[begin]));
      FUZZ_CHECK(end == static_cast<int64_t>(source.size()) ||
                 !IsContinuationByte(source[end]));
    }
  }
}

struct Vocabs {
  std::unique_ptr<Tokenizer> tiny;       // tests/data/tiny_bert, lower-cased
  std::unique_ptr<Tokenizer> wide;       // tests/data/tokenizer, lower-cased
  std::unique_ptr<Tokenizer> wide_cased;  // the same vocab, cased
};

const Vocabs& TestVocabs() {
  static const Vocabs* vocabs = [] {
    auto* v = new Vocabs;
    auto tiny = Tokenizer::Load(TestData("tiny_bert"));
    auto wide = Tokenizer::Load(TestData("tokenizer"));
    FUZZ_CHECK(tiny.ok() && wide.ok());
    v->tiny = *std::move(tiny);
    v->wide = *std::move(wide);
    std::vector<std::string> tokens;
    for (int id = 0; id < v->wide->vocab_size(); ++id) {
      tokens.push_back(v->wide->IdToToken(id));
    }
    auto cased = Tokenizer::FromVocab(std::move(tokens), false);
    FUZZ_CHECK(cased.ok());
    v->wide_cased = *std::move(cased);
    return v;
  }();
  return *vocabs;
}

}  // namespace

// Byte 0: bits 0–1 the vocab, bit 2 truncate, bit 3 a pair; byte 1: max_length;
// byte 2: where the pair starts (as a fraction of the rest); then the text.
int TokenizerText(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const Vocabs& vocabs = TestVocabs();
  const Tokenizer* tokenizer = (data[0] & 3) == 0   ? vocabs.tiny.get()
                               : (data[0] & 3) == 1 ? vocabs.wide.get()
                                                    : vocabs.wide_cased.get();
  const bool truncate = data[0] & 4;
  const bool is_pair = data[0] & 8;
  const int max_length = data[1];
  const std::string_view rest(reinterpret_cast<const char*>(data + 3),
                              size - 3);
  const size_t split = is_pair ? rest.size() * data[2] / 256 : rest.size();
  const std::string_view text = rest.substr(0, split);
  const std::string_view pair = rest.substr(split);
  absl::StatusOr<Encoding> e =
      tokenizer->Encode(text, pair, max_length, truncate);
  if (e.ok()) CheckEncoding(*tokenizer, *e, text, pair, max_length);
  // With truncation, only text that is not UTF-8 is refused.
  if (truncate && max_length >= 3 && FirstInvalidUtf8(text) < 0 &&
      FirstInvalidUtf8(pair) < 0) {
    FUZZ_CHECK(e.ok());
  }
  return 0;
}

// Byte 0: 0 = vocab.txt, 1 = tokenizer.json, 2 = tokenizer.json and
// tokenizer_config.json (split at the first 0 byte); the rest is the file(s).
int VocabFiles(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string& dir = ScratchDir();
  const std::string vocab_txt = dir + "/vocab.txt";
  const std::string tokenizer_json = dir + "/tokenizer.json";
  const std::string config_json = dir + "/tokenizer_config.json";
  RemoveFile(vocab_txt);
  RemoveFile(tokenizer_json);
  RemoveFile(config_json);
  const uint8_t* body = data + 1;
  const size_t n = size - 1;
  switch (data[0] % 3) {
    case 0:
      WriteBytes(vocab_txt, body, n);
      break;
    case 1:
      WriteBytes(tokenizer_json, body, n);
      break;
    case 2: {
      size_t cut = 0;
      while (cut < n && body[cut] != 0) ++cut;
      WriteBytes(tokenizer_json, body, cut);
      const size_t after = cut < n ? cut + 1 : n;
      WriteBytes(config_json, body + after, n - after);
      break;
    }
  }
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::Load(dir);
  if (!tokenizer.ok()) return 0;
  FUZZ_CHECK((*tokenizer)->TokenToId("[UNK]").has_value());
  for (const char* text : {"Hello, world!", "[CLS] caf\xc3\xa9 na\xc3\xafve",
                           "\xe4\xbd\xa0\xe5\xa5\xbd unaffable ##ing",
                           "HeLLo  \xce\xa3\xce\xa3 \xce\xb1\xce\xa3"}) {
    for (int max_length : {2, 3, 8, 512}) {
      absl::StatusOr<Encoding> e =
          (*tokenizer)->Encode(text, "pair text", max_length, true);
      if (e.ok()) CheckEncoding(**tokenizer, *e, text, "pair text", max_length);
    }
  }
  return 0;
}

}  // namespace attnserve::fuzz
