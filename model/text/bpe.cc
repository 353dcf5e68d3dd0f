// Byte-level BPE (see bpe.h). The split follows GPT-2's regex as Hugging
// Face's ByteLevel pre-tokenizer runs it on Oniguruma:
//
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// written out as a scanner over code points (Unicode categories from
// utf8proc; \s is Unicode White_Space). Merging follows tokenizers'
// word.rs: a queue of (rank, position), stale entries skipped.
#include "model/text/bpe.h"

#include <utf8proc.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <queue>
#include <tuple>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "common/file.h"
#include "common/status_macros.h"
#include "common/utf8.h"
#include "nlohmann/json.hpp"

namespace attnserve {
namespace {

using Json = nlohmann::json;

// A code point of the text and its source bytes; `virtual_space` marks the
// prefix space ByteLevel may add, which has no source.
struct Char {
  int32_t cp;
  int32_t begin;
  int32_t end;
};

enum class Class { kSpace, kLetter, kNumber, kOther };

// Unicode White_Space (what Oniguruma's \s matches on UTF-8).
bool IsWhiteSpace(int32_t cp) {
  if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85) return true;
  const utf8proc_category_t cat = utf8proc_category(cp);
  return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL ||
         cat == UTF8PROC_CATEGORY_ZP;
}

Class Classify(int32_t cp) {
  if (IsWhiteSpace(cp)) return Class::kSpace;
  switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
      return Class::kLetter;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return Class::kNumber;
    default:
      return Class::kOther;
  }
}

// Length (in code points) of the GPT-2 pre-token starting at chars[i].
size_t PreTokenLength(const std::vector<Char>& chars, size_t i) {
  const size_t n = chars.size();
  auto cls = [&](size_t k) { return Classify(chars[k].cp); };
  auto run = [&](size_t k, Class c) {  // end of the run of class c from k
    while (k < n && cls(k) == c) ++k;
    return k;
  };
  // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive, ASCII)
  if (chars[i].cp == '\'' && i + 1 < n) {
    const int32_t a = chars[i + 1].cp;
    const int32_t b = i + 2 < n ? chars[i + 2].cp : 0;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') ||
        (a == 'l' && b == 'l')) {
      return 3;
    }
  }
  //  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+
  const size_t start = chars[i].cp == ' ' && i + 1 < n ? i + 1 : i;
  for (size_t s : {start, i}) {
    const Class c = cls(s);
    if (c != Class::kSpace) return run(s, c) - i;
  }
  // \s+(?!\S) | \s+ : a run of white space gives back its last character
  // when a non-space follows, so that one can prefix the next word.
  const size_t end = run(i, Class::kSpace);
  if (end == n || end - i == 1) return end - i;
  return end - 1 - i;
}

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves,
// the others for 256 + their rank among them. As UTF-8 strings.
const std::vector<std::string>& ByteSymbols() {
  static const auto* table = [] {
    auto* t = new std::vector<std::string>(256);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) ||
                             (b >= 174 && b <= 255);
      const int32_t cp = printable ? b : 256 + extra++;
      utf8proc_uint8_t buf[4];
      const utf8proc_ssize_t len = utf8proc_encode_char(cp, buf);
      (*t)[b].assign(reinterpret_cast<const char*>(buf), len);
    }
    return t;
  }();
  return *table;
}

absl::StatusOr<std::vector<Char>> Decode(std::string_view text,
                                         const char* which) {
  if (text.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return absl::InvalidArgumentError(
        absl::StrCat(which, " is longer than 2^31 - 1 bytes"));
  }
  std::vector<Char> chars;
  chars.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    char32_t cp;
    const int n = DecodeUtf8(text, pos, &cp);
    if (n == 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s is not valid UTF-8: bad sequence at byte offset %d (byte 0x%02X)",
          which, pos, static_cast<unsigned char>(text[pos])));
    }
    chars.push_back({static_cast<int32_t>(cp), static_cast<int32_t>(pos),
                     static_cast<int32_t>(pos + n)});
    pos += n;
  }
  return chars;
}

absl::StatusOr<Json> ParseJson(std::string_view text, const std::string& file) {
  Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, " is not a JSON object"));
  }
  return json;
}

absl::Status Unsupported(const std::string& file, absl::string_view what,
                         const Json& value) {
  return absl::UnimplementedError(absl::StrCat(
      file, ": ", what, " = ", value.dump(),
      " is not supported by attnserve's byte-level BPE"));
}

// A merge as written: "a b" (merges.txt, older tokenizer.json) or ["a", "b"].
absl::StatusOr<std::pair<std::string, std::string>> ParseMerge(
    const Json& merge, const std::string& file) {
  if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
      merge[1].is_string()) {
    return std::pair{merge[0].get<std::string>(), merge[1].get<std::string>()};
  }
  if (merge.is_string()) {
    const std::string s = merge.get<std::string>();
    const size_t space = s.find(' ');
    if (space != std::string::npos && space > 0 && space + 1 < s.size() &&
        s.find(' ', space + 1) == std::string::npos) {
      return std::pair{s.substr(0, space), s.substr(space + 1)};
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat(file, ": merge ", merge.dump(), " is not two tokens"));
}

absl::StatusOr<absl::flat_hash_map<std::string, int32_t>> ParseVocab(
    const Json& vocab, const std::string& file) {
  if (!vocab.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": the vocab is not a JSON object"));
  }
  absl::flat_hash_map<std::string, int32_t> ids;
  for (const auto& [token, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
        id.get<int64_t>() >= (int64_t{1} << 30)) {
      return absl::InvalidArgumentError(absl::StrCat(
          file, ": vocab id of \"", token, "\" is ", id.dump()));
    }
    ids[token] = id.get<int32_t>();
  }
  return ids;
}

}  // namespace

absl::StatusOr<std::unique_ptr<BpeTokenizer>> BpeTokenizer::Create(
    absl::flat_hash_map<std::string, int32_t> vocab,
    const std::vector<std::pair<std::string, std::string>>& merges,
    BpeOptions options, std::string source) {
  auto t = absl::WrapUnique(new BpeTokenizer());
  int32_t max_id = -1;
  for (const auto& [token, id] : vocab) max_id = std::max(max_id, id);
  t->vocab_size_ = max_id + 1;
  t->tokens_.resize(t->vocab_size_);
  for (const auto& [token, id] : vocab) t->tokens_[id] = token;
  t->ids_ = std::move(vocab);
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    const auto ia = t->ids_.find(a), ib = t->ids_.find(b),
               im = t->ids_.find(a + b);
    if (ia == t->ids_.end() || ib == t->ids_.end() || im == t->ids_.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": merge ", rank, " (\"", a, "\" \"", b,
          "\") names a token that is not in the vocab"));
    }
    // A repeated merge keeps its first (lowest) rank, as tokenizers does.
    t->merges_.try_emplace(std::pair{ia->second, ib->second},
                           std::pair{static_cast<int32_t>(rank), im->second});
  }
  for (auto [token, id] : {std::pair{options.bos, &t->bos_id_},
                           std::pair{options.eos, &t->eos_id_}}) {
    const auto it = t->ids_.find(token);
    if (it == t->ids_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": the vocab has no ", token, " token"));
    }
    *id = it->second;
  }
  if (!options.unk.empty()) {
    const auto it = t->ids_.find(options.unk);
    if (it == t->ids_.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": the vocab has no unk token ", options.unk));
    }
    t->unk_id_ = it->second;
  }
  t->options_ = std::move(options);
  t->source_ = std::move(source);
  return t;
}

absl::StatusOr<std::unique_ptr<BpeTokenizer>> BpeTokenizer::FromTokenizerJson(
    std::string_view json_text, const std::string& file) {
  ASSIGN_OR_RETURN(const Json json, ParseJson(json_text, file));
  const auto model = json.find("model");
  if (model == json.end() || !model->is_object()) {
    return absl::InvalidArgumentError(file + " has no model object");
  }
  if (model->value("type", "") != "BPE") {
    return absl::UnimplementedError(absl::StrCat(
        file, ": model.type ", model->value("type", Json()).dump(),
        " is not BPE"));
  }
  for (const char* key :
       {"dropout", "continuing_subword_prefix", "end_of_word_suffix"}) {
    const auto it = model->find(key);
    if (it != model->end() && !it->is_null() &&
        !(it->is_string() && it->get<std::string>().empty())) {
      return Unsupported(file, absl::StrCat("model.", key), *it);
    }
  }
  for (const char* key : {"byte_fallback", "fuse_unk"}) {
    const auto it = model->find(key);
    if (it != model->end() && it->is_boolean() && it->get<bool>()) {
      return Unsupported(file, absl::StrCat("model.", key), *it);
    }
  }
  if (const auto it = json.find("normalizer");
      it != json.end() && !it->is_null()) {
    return Unsupported(file, "normalizer", *it);
  }
  BpeOptions options;
  // The pre-tokenizer must be ByteLevel (alone or as a one-step Sequence).
  Json pre = json.value("pre_tokenizer", Json());
  if (pre.is_object() && pre.value("type", "") == "Sequence" &&
      pre.value("pretokenizers", Json()).is_array() &&
      pre["pretokenizers"].size() == 1) {
    pre = pre["pretokenizers"][0];
  }
  if (!pre.is_object() || pre.value("type", "") != "ByteLevel") {
    return Unsupported(file, "pre_tokenizer", pre);
  }
  options.add_prefix_space = pre.value("add_prefix_space", false);
  options.use_regex = pre.value("use_regex", true);
  if (const auto it = model->find("ignore_merges");
      it != model->end() && it->is_boolean()) {
    options.ignore_merges = it->get<bool>();
  }
  if (const auto it = model->find("unk_token");
      it != model->end() && it->is_string()) {
    options.unk = it->get<std::string>();
  }
  // RobertaProcessing names its tokens; a TemplateProcessing does too, but
  // any other framing is refused rather than guessed.
  const Json post = json.value("post_processor", Json());
  if (post.is_object() && post.value("type", "") == "RobertaProcessing") {
    const Json cls = post.value("cls", Json()), sep = post.value("sep", Json());
    if (cls.is_array() && !cls.empty() && cls[0].is_string()) {
      options.bos = cls[0].get<std::string>();
    }
    if (sep.is_array() && !sep.empty() && sep[0].is_string()) {
      options.eos = sep[0].get<std::string>();
    }
  } else if (!post.is_null() && !(post.is_object() &&
                                  post.value("type", "") == "ByteLevel")) {
    return Unsupported(file, "post_processor", post);
  }
  ASSIGN_OR_RETURN(auto vocab, ParseVocab(model->value("vocab", Json()), file));
  std::vector<std::pair<std::string, std::string>> merges;
  const Json merges_json = model->value("merges", Json::array());
  if (!merges_json.is_array()) {
    return absl::InvalidArgumentError(file + ": model.merges is not a list");
  }
  merges.reserve(merges_json.size());
  for (const Json& m : merges_json) {
    ASSIGN_OR_RETURN(auto merge, ParseMerge(m, file));
    merges.push_back(std::move(merge));
  }
  return Create(std::move(vocab), merges, std::move(options),
                absl::StrCat("byte-level BPE from ", file));
}

absl::StatusOr<std::unique_ptr<BpeTokenizer>> BpeTokenizer::Load(
    const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code error;
  const fs::path tokenizer_json = fs::path(dir) / "tokenizer.json";
  if (fs::exists(tokenizer_json, error)) {
    ASSIGN_OR_RETURN(const std::string text,
                     ReadFile(tokenizer_json.string()));
    return FromTokenizerJson(text, tokenizer_json.string());
  }
  const fs::path vocab_json = fs::path(dir) / "vocab.json";
  const fs::path merges_txt = fs::path(dir) / "merges.txt";
  if (!fs::exists(vocab_json, error) || !fs::exists(merges_txt, error)) {
    return absl::NotFoundError(absl::StrCat(
        "no tokenizer.json or vocab.json + merges.txt in ", dir));
  }
  ASSIGN_OR_RETURN(const std::string vocab_text,
                   ReadFile(vocab_json.string()));
  ASSIGN_OR_RETURN(const Json vocab_obj,
                   ParseJson(vocab_text, vocab_json.string()));
  ASSIGN_OR_RETURN(auto vocab, ParseVocab(vocab_obj, vocab_json.string()));
  ASSIGN_OR_RETURN(const std::string merges_text,
                   ReadFile(merges_txt.string()));
  std::vector<std::pair<std::string, std::string>> merges;
  std::string_view rest = merges_text;
  for (int line_no = 1; !rest.empty(); ++line_no) {
    const size_t eol = rest.find('\n');
    std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? "" : rest.substr(eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    // "#version: 0.2" heads GPT-2's file.
    if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) {
      continue;
    }
    ASSIGN_OR_RETURN(auto merge,
                     ParseMerge(Json(std::string(line)), merges_txt.string()));
    merges.push_back(std::move(merge));
  }
  BpeOptions options;
  const fs::path config_json = fs::path(dir) / "tokenizer_config.json";
  if (fs::exists(config_json, error)) {
    ASSIGN_OR_RETURN(const std::string text, ReadFile(config_json.string()));
    ASSIGN_OR_RETURN(const Json config, ParseJson(text, config_json.string()));
    options.add_prefix_space = config.value("add_prefix_space", false);
  }
  return Create(std::move(vocab), merges, std::move(options),
                absl::StrCat("byte-level BPE from ", vocab_json.string(),
                             " + merges.txt"));
}

void BpeTokenizer::MergeWord(
    const std::vector<std::string>& symbols,
    std::vector<std::pair<int32_t, std::pair<int, int>>>* out) const {
  const int n = static_cast<int>(symbols.size());
  if (options_.ignore_merges) {
    std::string word;
    for (const std::string& s : symbols) word += s;
    if (const auto it = ids_.find(word); it != ids_.end()) {
      out->push_back({it->second, {0, n}});
      return;
    }
  }
  struct Sym {
    int32_t id;
    int prev, next;
    int len;  // in initial symbols; 0 once merged into its left neighbour
  };
  std::vector<Sym> syms;
  std::vector<int> first;  // initial index of syms[k]
  syms.reserve(n);
  for (int k = 0; k < n; ++k) {
    const auto it = ids_.find(symbols[k]);
    const int32_t id = it != ids_.end() ? it->second : unk_id_;
    if (id < 0) continue;  // no unk token: the symbol vanishes, as in tokenizers
    const int index = static_cast<int>(syms.size());
    syms.push_back({id, index - 1, index + 1, 1});
    first.push_back(k);
  }
  if (syms.empty()) return;
  syms.back().next = -1;
  // (rank, position, merged id); the smallest rank, then the leftmost.
  using Merge = std::tuple<int32_t, int, int32_t>;
  std::priority_queue<Merge, std::vector<Merge>, std::greater<Merge>> queue;
  auto push = [&](int pos) {
    const int next = syms[pos].next;
    if (next < 0) return;
    const auto it = merges_.find(std::pair{syms[pos].id, syms[next].id});
    if (it != merges_.end()) {
      queue.emplace(it->second.first, pos, it->second.second);
    }
  };
  for (int k = 0; k + 1 < static_cast<int>(syms.size()); ++k) push(k);
  while (!queue.empty()) {
    const auto [rank, pos, merged] = queue.top();
    queue.pop();
    if (syms[pos].len == 0 || syms[pos].next < 0) continue;
    const int next = syms[pos].next;
    const auto it = merges_.find(std::pair{syms[pos].id, syms[next].id});
    if (it == merges_.end() || it->second.second != merged) continue;
    syms[pos].id = merged;
    syms[pos].len += syms[next].len;
    syms[pos].next = syms[next].next;
    syms[next].len = 0;
    if (syms[pos].next >= 0) syms[syms[pos].next].prev = pos;
    if (syms[pos].prev >= 0) push(syms[pos].prev);
    push(pos);
  }
  for (int k = 0; k >= 0 && k < static_cast<int>(syms.size());
       k = syms[k].next) {
    // Count the initial symbols this one spans (some may have vanished).
    int last = k;
    for (int m = 1; m < syms[k].len; ++m) ++last;
    out->push_back({syms[k].id, {first[k], first[last] + 1}});
  }
}

absl::StatusOr<std::vector<BpeTokenizer::Piece>> BpeTokenizer::Tokenize(
    std::string_view text, const char* which) const {
  ASSIGN_OR_RETURN(std::vector<Char> chars, Decode(text, which));
  // ByteLevel's prefix space: added when the text does not start with " ".
  // It has no source bytes: begin = end = -1.
  if (options_.add_prefix_space && !chars.empty() && chars[0].cp != ' ') {
    chars.insert(chars.begin(), Char{' ', -1, -1});
  }
  const std::vector<std::string>& byte_symbols = ByteSymbols();
  std::vector<Piece> pieces;
  std::vector<std::string> symbols;
  std::vector<std::pair<int32_t, int32_t>> sources;  // per symbol: char bytes
  std::vector<bool> is_space;                        // per symbol: byte ' '
  std::vector<std::pair<int32_t, std::pair<int, int>>> merged;
  for (size_t i = 0; i < chars.size();) {
    const size_t len =
        options_.use_regex ? PreTokenLength(chars, i) : chars.size() - i;
    symbols.clear();
    sources.clear();
    is_space.clear();
    for (size_t k = i; k < i + len; ++k) {
      utf8proc_uint8_t buf[4];
      const utf8proc_ssize_t n = utf8proc_encode_char(chars[k].cp, buf);
      for (utf8proc_ssize_t b = 0; b < n; ++b) {
        symbols.push_back(byte_symbols[buf[b]]);
        sources.emplace_back(chars[k].begin, chars[k].end);
        is_space.push_back(chars[k].cp == ' ');
      }
    }
    merged.clear();
    MergeWord(symbols, &merged);
    for (const auto& [id, span] : merged) {
      // The token's bytes, widened to whole characters, without the prefix
      // space and, as tokenizers' trim_offsets does, without leading and
      // trailing spaces (an all-space token keeps an empty span at its end).
      int lo = span.first, hi = span.second;
      while (lo < hi && is_space[lo]) ++lo;
      while (hi > lo && is_space[hi - 1]) --hi;
      Piece p{id, -1, -1};
      for (int k = lo; k < hi; ++k) {
        if (sources[k].first < 0) continue;
        if (p.begin < 0) p.begin = sources[k].first;
        p.end = sources[k].second;
      }
      if (p.begin < 0) {
        int32_t end = 0;
        for (int k = span.first; k < span.second; ++k) {
          end = std::max(end, sources[k].second);
        }
        p.begin = p.end = end;
      }
      pieces.push_back(p);
    }
    i += len;
  }
  return pieces;
}

absl::StatusOr<Encoding> BpeTokenizer::Encode(std::string_view text,
                                              std::string_view text_pair,
                                              int max_length,
                                              bool truncate) const {
  const bool is_pair = !text_pair.empty();
  const int num_special = is_pair ? 4 : 2;  // <s> A </s> [</s> B </s>]
  if (max_length < num_special) {
    return absl::InvalidArgumentError(
        absl::StrFormat("max_length %d cannot hold the %d special tokens",
                        max_length, num_special));
  }
  ASSIGN_OR_RETURN(std::vector<Piece> a, Tokenize(text, "text"));
  std::vector<Piece> b;
  if (is_pair) {
    ASSIGN_OR_RETURN(b, Tokenize(text_pair, "text_pair"));
  }
  const size_t length = a.size() + b.size() + num_special;
  if (length > static_cast<size_t>(max_length)) {
    if (!truncate) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "the input has %d tokens including special tokens; the limit is %d",
          length, max_length));
    }
    size_t na = a.size(), nb = b.size();
    if (is_pair) {
      TruncateLongestFirstFast(max_length - num_special, &na, &nb);
    } else {
      na = max_length - num_special;
    }
    a.resize(na);
    b.resize(nb);
  }
  Encoding e;
  auto add = [&](const Piece& p) {
    e.ids.push_back(p.id);
    e.tokens.push_back(tokens_[p.id]);
    e.type_ids.push_back(0);
    e.offsets.emplace_back(p.begin, p.end);
  };
  const Piece bos{bos_id_, 0, 0}, eos{eos_id_, 0, 0};
  add(bos);
  for (const Piece& p : a) add(p);
  add(eos);
  if (is_pair) {
    add(eos);
    for (const Piece& p : b) add(p);
    add(eos);
  }
  return e;
}

const std::string& BpeTokenizer::IdToToken(int32_t id) const {
  if (id < 0 || id >= vocab_size_ || tokens_[id].empty()) {
    return tokens_[unk_id_ >= 0 ? unk_id_ : eos_id_];
  }
  return tokens_[id];
}

std::optional<int32_t> BpeTokenizer::TokenToId(std::string_view token) const {
  const auto it = ids_.find(absl::string_view(token.data(), token.size()));
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

std::string BpeTokenizer::Describe() const {
  return absl::StrFormat("%s, %d merges, add_prefix_space=%s", source_,
                         merges_.size(),
                         options_.add_prefix_space ? "true" : "false");
}

}  // namespace attnserve
