// BERT's tokenizer (see tokenizer.h). Every code point the pipeline produces
// carries the source bytes it came from, so offsets survive cleaning,
// lower-casing and NFD. Unicode data (categories, case mappings, canonical
// decompositions) comes from utf8proc; the only lists here are BERT's own CJK
// ranges and a few Word_Break code points utf8proc does not expose.
#include "model/text/tokenizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/file.h"
#include "common/status_macros.h"
#include "common/utf8.h"
#include "nlohmann/json.hpp"

namespace attnserve {
namespace {

// Lookups use absl::string_view: Debian's Abseil is built with its own
// string_view, not std::string_view, and its string hash only takes that.
using VocabMap = absl::flat_hash_map<std::string, int32_t>;

// A code point being tokenized and the source bytes [begin, end) it came from.
// All code points of a decomposed character carry the character's bytes.
struct Char {
  int32_t cp;
  int32_t begin;
  int32_t end;
};

// A WordPiece token and its source bytes.
struct Piece {
  int32_t id;
  int32_t begin;
  int32_t end;
};

// ---- Unicode predicates, as tokenization.py defines them ------------------

utf8proc_category_t Category(int32_t cp) { return utf8proc_category(cp); }

// Cc, Cf, Cs and Co except \t \n \r, which BERT counts as whitespace: Hugging
// Face's tokenizers' is_control. (Google's tokenization.py also drops
// unassigned code points, Cn; Hugging Face keeps them, and so do we.)
bool IsControl(int32_t cp) {
  if (cp == '\t' || cp == '\n' || cp == '\r') return false;
  switch (Category(cp)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
      return true;
    default:
      return false;
  }
}

// What ends a word once the text is cleaned. BERT maps \t \n \r and Zs to
// spaces; Python's str.split() then also splits on U+2028/U+2029 (Zl, Zp),
// which the cleaning kept. (Its other separators are Cc, already dropped.)
bool IsSeparator(int32_t cp) {
  if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r') return true;
  const utf8proc_category_t cat = Category(cp);
  return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL ||
         cat == UTF8PROC_CATEGORY_ZP;
}

// All non-alphanumeric printable ASCII (so "$", "^", "`" too, though Unicode
// calls them symbols) and category P*. Other symbols (©, €, ∑) are not.
bool IsPunctuation(int32_t cp) {
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) ||
      (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) {
    return true;
  }
  const utf8proc_category_t cat = Category(cp);
  return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

// BERT's _is_chinese_char: the CJK Unified Ideographs blocks as of 2018 (not
// Hangul, kana, or later extensions). Each such character is its own word.
bool IsChineseChar(int32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// ---- The pipeline -----------------------------------------------------------

absl::StatusOr<std::vector<Char>> Decode(std::string_view text,
                                         const char* which) {
  if (text.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return absl::InvalidArgumentError(
        absl::StrCat(which, " is longer than 2^31 - 1 bytes"));
  }
  const int32_t size = static_cast<int32_t>(text.size());
  std::vector<Char> chars;
  chars.reserve(text.size());
  for (int32_t pos = 0; pos < size;) {
    char32_t cp;
    // The offset reported is the bad sequence's first byte, as Python's
    // decoder reports it.
    const int n = DecodeUtf8(text, pos, &cp);
    if (n == 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s is not valid UTF-8: bad sequence at byte offset %d (byte 0x%02X)",
          which, pos, static_cast<unsigned char>(text[pos])));
    }
    chars.push_back({static_cast<int32_t>(cp), pos, pos + n});
    pos += n;
  }
  return chars;
}

// Lower-cases `word` one code point at a time, as Hugging Face's tokenizers
// do (Rust's char::to_lowercase: "Σ" is always "σ", never the word-final "ς"
// of Python's str.lower()), then NFD and drops Mn (BERT's
// _run_strip_accents). U+0130 lowers to plain "i" here but to "i̇" in Rust
// and Python; the dot is Mn, so the stripped results agree.
void LowerAndStripAccents(absl::Span<const Char> word, std::vector<Char>* out) {
  out->clear();
  for (size_t i = 0; i < word.size(); ++i) {
    const Char& c = word[i];
    if (c.cp < 0x80) {  // the common case: no decomposition, combining class 0
      const bool upper = c.cp >= 'A' && c.cp <= 'Z';
      out->push_back({upper ? c.cp - 'A' + 'a' : c.cp, c.begin, c.end});
      continue;
    }
    const int32_t lower = utf8proc_tolower(c.cp);
    // The longest canonical decomposition is 4 code points.
    utf8proc_int32_t nfd[8];
    const utf8proc_ssize_t n =
        utf8proc_decompose_char(lower, nfd, 8, UTF8PROC_DECOMPOSE, nullptr);
    if (n <= 0 || n > 8) {
      out->push_back({lower, c.begin, c.end});
      continue;
    }
    for (utf8proc_ssize_t k = 0; k < n; ++k) {
      out->push_back({nfd[k], c.begin, c.end});
    }
  }
  // NFD's canonical ordering: a stable sort of each run of non-starters by
  // combining class. Marks that Mn-stripping drops anyway take part because
  // they may sit between the few non-Mn non-starters. (std::stable_sort, not
  // insertion sort: a client may send a megabyte of marks.)
  auto ccc = [](const Char& c) {
    return utf8proc_get_property(c.cp)->combining_class;
  };
  for (auto run = out->begin(); run != out->end();) {
    if (ccc(*run) == 0) {
      ++run;
      continue;
    }
    auto run_end = std::find_if(run, out->end(),
                                [&](const Char& c) { return ccc(c) == 0; });
    std::stable_sort(run, run_end, [&](const Char& x, const Char& y) {
      return ccc(x) < ccc(y);
    });
    run = run_end;
  }
  out->erase(std::remove_if(out->begin(), out->end(),
                            [](const Char& c) {
                              return Category(c.cp) == UTF8PROC_CATEGORY_MN;
                            }),
             out->end());
}

// WordPiece: greedy longest-match-first, later pieces prefixed "##". A word
// with an unmatchable rest, or longer than kMaxWordChars, is one [UNK] over
// the whole word. Each piece spans the source bytes of its code points.
void AppendWordPieces(absl::Span<const Char> word, const VocabMap& ids,
                      int32_t unk_id, std::vector<Piece>* out) {
  if (word.empty()) return;
  auto span_piece = [&word](int32_t id, size_t begin, size_t end) {
    Piece p{id, word[begin].begin, word[begin].end};
    for (size_t i = begin + 1; i < end; ++i) {
      p.begin = std::min(p.begin, word[i].begin);
      p.end = std::max(p.end, word[i].end);
    }
    return p;
  };
  if (word.size() > static_cast<size_t>(Tokenizer::kMaxWordChars)) {
    out->push_back(span_piece(unk_id, 0, word.size()));
    return;
  }
  std::string utf8;                           // the word
  std::vector<size_t> char_end(word.size());  // byte end of word[i] in utf8
  for (size_t i = 0; i < word.size(); ++i) {
    utf8proc_uint8_t buf[4];
    const utf8proc_ssize_t n = utf8proc_encode_char(word[i].cp, buf);
    utf8.append(reinterpret_cast<const char*>(buf), n);
    char_end[i] = utf8.size();
  }
  const size_t first_piece = out->size();
  std::string candidate;  // ["##"] + utf8[start_byte:]; keys are its prefixes
  for (size_t start = 0; start < word.size();) {
    const size_t start_byte = start == 0 ? 0 : char_end[start - 1];
    candidate.assign(start == 0 ? "" : "##");
    const size_t prefix = candidate.size();
    candidate.append(utf8, start_byte, std::string::npos);
    size_t end = word.size();
    auto it = ids.end();
    for (; end > start; --end) {
      it = ids.find(absl::string_view(candidate.data(),
                                      prefix + char_end[end - 1] - start_byte));
      if (it != ids.end()) break;
    }
    if (it == ids.end()) {
      out->resize(first_piece);
      out->push_back(span_piece(unk_id, 0, word.size()));
      return;
    }
    out->push_back(span_piece(it->second, start, end));
    start = end;
  }
}

// BasicTokenizer + WordpieceTokenizer over one text. Cleaning, CJK spacing and
// the whitespace split happen in one pass that collects words; each word is
// then lower-cased and accent-stripped (if asked), split at punctuation and
// cut into WordPieces.
absl::StatusOr<std::vector<Piece>> TokenizeText(std::string_view text,
                                                const char* which,
                                                bool do_lower_case,
                                                const VocabMap& ids,
                                                int32_t unk_id) {
  ASSIGN_OR_RETURN(const std::vector<Char> chars, Decode(text, which));
  std::vector<Piece> pieces;
  std::vector<Char> word;
  std::vector<Char> normalized;
  auto flush = [&] {
    if (word.empty()) return;
    absl::Span<const Char> w = word;
    if (do_lower_case) {
      LowerAndStripAccents(word, &normalized);
      w = normalized;
    }
    size_t start = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      if (!IsPunctuation(w[i].cp)) continue;
      AppendWordPieces(w.subspan(start, i - start), ids, unk_id, &pieces);
      AppendWordPieces(w.subspan(i, 1), ids, unk_id, &pieces);
      start = i + 1;
    }
    AppendWordPieces(w.subspan(start), ids, unk_id, &pieces);
    word.clear();
  };
  for (const Char& c : chars) {
    if (c.cp == 0 || c.cp == 0xFFFD || IsControl(c.cp)) continue;
    if (IsSeparator(c.cp)) {
      flush();
    } else if (IsChineseChar(c.cp)) {
      flush();
      word.push_back(c);
      flush();
    } else {
      word.push_back(c);
    }
  }
  flush();
  return pieces;
}

// Hugging Face's "longest_first" as transformers' Python BertTokenizer does
// it: drop one token at a time from the end of the longer sequence, from B
// (the pair) when both are equally long. (truncate_sequences computes the
// same split in closed form.) The Rust BertTokenizerFast breaks that tie the
// other way: equal A and B cut to an odd budget leave B the extra token
// (4 + 4 tokens into 7: slow 4 + 3, fast 3 + 4); otherwise they agree.
void TruncateLongestFirst(size_t budget, std::vector<Piece>* a,
                          std::vector<Piece>* b) {
  while (a->size() + b->size() > budget) {
    if (a->size() > b->size()) {
      a->pop_back();
    } else {
      b->pop_back();
    }
  }
}

// ---- Loading ----------------------------------------------------------------

// One token per line; a trailing "\r" (Windows line ends) is not part of it,
// and a final newline does not start another token.
std::vector<std::string> SplitVocabLines(std::string_view text) {
  std::vector<std::string> vocab;
  while (!text.empty()) {
    const size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    vocab.emplace_back(line);
    if (eol == std::string_view::npos) break;
    text.remove_prefix(eol + 1);
  }
  return vocab;
}

absl::StatusOr<nlohmann::json> ReadJson(const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(const std::string text, ReadFile(path.string()));
  nlohmann::json json =
      nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path.string(), " is not a JSON object"));
  }
  return json;
}

// Rejects a setting `key` of `object` that is present, not null and not
// `expected`: the tokenizer would silently disagree with the model's.
absl::Status ExpectSetting(const nlohmann::json& object, const char* key,
                           const nlohmann::json& expected,
                           const std::string& file) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null() || *it == expected) {
    return absl::OkStatus();
  }
  return absl::UnimplementedError(
      absl::StrCat(file, ": ", key, " = ", it->dump(), " is not supported"));
}

// The WordPiece vocab of a Hugging Face tokenizer.json (model.vocab: token ->
// id, ids 0..n-1), and its normalizer's lowercase into `*lowercase`.
absl::StatusOr<std::vector<std::string>> VocabFromTokenizerJson(
    const nlohmann::json& json, const std::string& file, bool* lowercase) {
  const auto model = json.find("model");
  if (model == json.end() || !model->is_object()) {
    return absl::InvalidArgumentError(file + " has no model object");
  }
  const auto model_type = model->find("type");
  if (model_type != model->end() && *model_type != "WordPiece") {
    return absl::UnimplementedError(absl::StrCat(
        file, ": model type ", model_type->dump(), " is not WordPiece"));
  }
  RETURN_IF_ERROR(
      ExpectSetting(*model, "continuing_subword_prefix", "##", file));
  RETURN_IF_ERROR(ExpectSetting(*model, "max_input_chars_per_word",
                                Tokenizer::kMaxWordChars, file));
  const auto vocab_json = model->find("vocab");
  if (vocab_json == model->end() || !vocab_json->is_object()) {
    return absl::InvalidArgumentError(file + " has no model.vocab object");
  }
  std::vector<std::string> vocab(vocab_json->size());
  std::vector<bool> seen(vocab.size());
  for (const auto& [token, id] : vocab_json->items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
        id.get<int64_t>() >= static_cast<int64_t>(vocab.size()) ||
        seen[id.get<size_t>()]) {
      return absl::InvalidArgumentError(
          absl::StrCat(file, ": model.vocab ids must be 0..", vocab.size() - 1,
                       " once each; \"", token, "\" has ", id.dump()));
    }
    seen[id.get<size_t>()] = true;
    vocab[id.get<size_t>()] = token;
  }
  const auto normalizer = json.find("normalizer");
  if (normalizer != json.end() && normalizer->is_object()) {
    const auto lower = normalizer->find("lowercase");
    if (lower != normalizer->end() && lower->is_boolean()) *lowercase = *lower;
    // strip_accents null means "as lowercase"; BERT cannot do otherwise.
    RETURN_IF_ERROR(
        ExpectSetting(*normalizer, "strip_accents", *lowercase, file));
  }
  return vocab;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Load(
    const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path vocab_txt = fs::path(dir) / "vocab.txt";
  const fs::path tokenizer_json = fs::path(dir) / "tokenizer.json";
  const fs::path config_json = fs::path(dir) / "tokenizer_config.json";
  std::error_code error;
  bool lowercase = true;
  std::vector<std::string> vocab;
  std::string source;  // the vocab's file, for errors
  if (fs::exists(vocab_txt, error)) {
    source = vocab_txt.string();
    ASSIGN_OR_RETURN(const std::string text, ReadFile(vocab_txt.string()));
    vocab = SplitVocabLines(text);
  } else if (fs::exists(tokenizer_json, error)) {
    source = tokenizer_json.string();
    ASSIGN_OR_RETURN(const nlohmann::json json, ReadJson(tokenizer_json));
    ASSIGN_OR_RETURN(vocab, VocabFromTokenizerJson(
                                json, tokenizer_json.string(), &lowercase));
  } else {
    return absl::NotFoundError(
        absl::StrCat("no vocab.txt or tokenizer.json in ", dir));
  }
  if (fs::exists(config_json, error)) {
    ASSIGN_OR_RETURN(const nlohmann::json config, ReadJson(config_json));
    const auto lower = config.find("do_lower_case");
    if (lower != config.end() && lower->is_boolean()) lowercase = *lower;
    RETURN_IF_ERROR(ExpectSetting(config, "strip_accents", lowercase,
                                  config_json.string()));
  }
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      FromVocab(std::move(vocab), lowercase);
  if (!tokenizer.ok()) {
    return absl::Status(tokenizer.status().code(),
                        absl::StrCat(source, ": ", tokenizer.status().message()));
  }
  return tokenizer;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromVocab(
    std::vector<std::string> vocab, bool do_lower_case) {
  if (vocab.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return absl::InvalidArgumentError("vocab has more than 2^31 - 1 tokens");
  }
  auto tokenizer = absl::WrapUnique(new Tokenizer());
  tokenizer->do_lower_case_ = do_lower_case;
  tokenizer->ids_.reserve(vocab.size());
  for (size_t id = 0; id < vocab.size(); ++id) {
    tokenizer->ids_.insert_or_assign(vocab[id], static_cast<int32_t>(id));
  }
  tokenizer->vocab_ = std::move(vocab);
  for (auto [token, id] : {std::pair{"[UNK]", &tokenizer->unk_id_},
                           std::pair{"[CLS]", &tokenizer->cls_id_},
                           std::pair{"[SEP]", &tokenizer->sep_id_}}) {
    const auto it = tokenizer->ids_.find(token);
    if (it == tokenizer->ids_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("the vocab has no ", token, " token"));
    }
    *id = it->second;
  }
  return tokenizer;
}

absl::StatusOr<Encoding> Tokenizer::Encode(std::string_view text,
                                           std::string_view text_pair,
                                           int max_length,
                                           bool truncate) const {
  const bool is_pair = !text_pair.empty();
  const int num_special = is_pair ? 3 : 2;
  if (max_length < num_special) {
    return absl::InvalidArgumentError(
        absl::StrFormat("max_length %d cannot hold the %d special tokens",
                        max_length, num_special));
  }
  ASSIGN_OR_RETURN(std::vector<Piece> a,
                   TokenizeText(text, "text", do_lower_case_, ids_, unk_id_));
  std::vector<Piece> b;
  if (is_pair) {
    ASSIGN_OR_RETURN(
        b, TokenizeText(text_pair, "text_pair", do_lower_case_, ids_, unk_id_));
  }
  const size_t length = a.size() + b.size() + num_special;
  if (length > static_cast<size_t>(max_length)) {
    if (!truncate) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "the input has %d tokens including special tokens; the limit is %d",
          length, max_length));
    }
    TruncateLongestFirst(max_length - num_special, &a, &b);
  }

  Encoding encoding;
  const size_t n = a.size() + b.size() + num_special;
  encoding.ids.reserve(n);
  encoding.tokens.reserve(n);
  encoding.type_ids.reserve(n);
  encoding.offsets.reserve(n);
  auto add = [&](const Piece& piece, int32_t type_id) {
    encoding.ids.push_back(piece.id);
    encoding.tokens.push_back(vocab_[piece.id]);
    encoding.type_ids.push_back(type_id);
    encoding.offsets.emplace_back(piece.begin, piece.end);
  };
  const Piece cls{cls_id_, 0, 0};
  const Piece sep{sep_id_, 0, 0};
  add(cls, 0);
  for (const Piece& piece : a) add(piece, 0);
  add(sep, 0);
  if (is_pair) {
    for (const Piece& piece : b) add(piece, 1);
    add(sep, 1);
  }
  return encoding;
}

const std::string& Tokenizer::IdToToken(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return vocab_[unk_id_];
  return vocab_[id];
}

std::string Tokenizer::Describe() const {
  return absl::StrFormat("WordPiece, do_lower_case=%s",
                         do_lower_case_ ? "true" : "false");
}

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  const auto it = ids_.find(absl::string_view(token.data(), token.size()));
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

}  // namespace attnserve
