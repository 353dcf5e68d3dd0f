#include "client/tables.h"

#include <utf8proc.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace attnserve::client {

// ---- text layout --------------------------------------------------------

int DisplayWidth(absl::string_view text) {
  int width = 0;
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(text.size());
  while (left > 0) {
    utf8proc_int32_t cp;
    const utf8proc_ssize_t n = utf8proc_iterate(p, left, &cp);
    if (n <= 0) {  // not UTF-8: one column per byte
      ++width;
      ++p;
      --left;
      continue;
    }
    width += utf8proc_charwidth(cp);
    p += n;
    left -= n;
  }
  return width;
}

std::string Pad(absl::string_view text, int width, bool right) {
  const int fill = std::max(0, width - DisplayWidth(text));
  if (right) return absl::StrCat(std::string(fill, ' '), text);
  return absl::StrCat(text, std::string(fill, ' '));
}

std::string Printable(absl::string_view text) {
  std::string out;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (u < 0x20 || u == 0x7f) {
      absl::StrAppendFormat(&out, "\\x%02x", u);
    } else {
      out += c;
    }
  }
  return out;
}

std::vector<std::string> TokenLabels(const std::vector<std::string>& tokens) {
  std::map<std::string, int> count;
  for (const std::string& t : tokens) ++count[t];
  std::vector<std::string> labels;
  labels.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string shown = Printable(tokens[i]);
    labels.push_back(count[tokens[i]] > 1 ? absl::StrCat(shown, "@", i)
                                          : shown);
  }
  return labels;
}

std::vector<int32_t> FindToken(const std::vector<std::string>& tokens,
                               absl::string_view word) {
  std::vector<int32_t> found;
  for (size_t i = 0; i < tokens.size(); ++i) {
    absl::string_view t = tokens[i];
    if (absl::EqualsIgnoreCase(t, word) ||
        (!absl::StartsWith(word, "##") &&
         absl::EqualsIgnoreCase(absl::StripPrefix(t, "##"), word))) {
      found.push_back(static_cast<int32_t>(i));
    }
  }
  return found;
}

namespace {

// Rows of cells joined into aligned columns (two spaces apart); `right`
// marks right-aligned columns. Trailing spaces are trimmed.
std::string Columns(const std::vector<std::vector<std::string>>& rows,
                    const std::vector<bool>& right, absl::string_view indent) {
  std::vector<int> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t c = 0; c < row.size(); ++c) {
      width[c] = std::max(width[c], DisplayWidth(row[c]));
    }
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line(indent);
    for (size_t c = 0; c < row.size(); ++c) {
      if (c > 0) line += "  ";
      line += Pad(row[c], width[c], c < right.size() && right[c]);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

std::string Weight(float v) { return absl::StrFormat("%.3f", v); }

}  // namespace

// ---- tokenize -----------------------------------------------------------

absl::StatusOr<std::string> FormatTokenTable(const v1::TokenizedSequence& seq,
                                             absl::string_view text,
                                             absl::string_view pair) {
  const int n = seq.token_ids_size();
  if (seq.tokens_size() != n ||
      (seq.token_type_ids_size() != 0 && seq.token_type_ids_size() != n) ||
      (seq.offsets_size() != 0 && seq.offsets_size() != 2 * n)) {
    return absl::DataLossError(absl::StrCat(
        "bad response: ", n, " token_ids, ", seq.tokens_size(), " tokens, ",
        seq.token_type_ids_size(), " token_type_ids and ", seq.offsets_size(),
        " offsets (expected ", n, ", ", n, ", ", n, ", ", 2 * n, ")"));
  }
  const bool has_offsets = seq.offsets_size() == 2 * n && n > 0;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header = {"pos", "token", "id", "type"};
  if (has_offsets) {
    header.push_back("bytes");
    header.push_back("text");
  }
  rows.push_back(header);
  for (int i = 0; i < n; ++i) {
    const int type = seq.token_type_ids_size() == n ? seq.token_type_ids(i) : 0;
    std::vector<std::string> row = {absl::StrCat(i), Printable(seq.tokens(i)),
                                    absl::StrCat(seq.token_ids(i)),
                                    absl::StrCat(type)};
    if (has_offsets) {
      const int begin = seq.offsets(2 * i), end = seq.offsets(2 * i + 1);
      absl::string_view source = type == 1 ? pair : text;
      if (begin == 0 && end == 0) {
        row.push_back("");
        row.push_back("");
      } else {
        row.push_back(absl::StrCat(begin, "-", end));
        if (begin >= 0 && begin <= end &&
            end <= static_cast<int>(source.size())) {
          row.push_back(Printable(source.substr(begin, end - begin)));
        } else {
          row.push_back("?");
        }
      }
    }
    rows.push_back(std::move(row));
  }
  return Columns(rows, {true, false, true, true, false, false}, "  ");
}

// ---- attention ----------------------------------------------------------

absl::StatusOr<std::string> FormatStrongestTargets(
    const AttentionRows& attention, const std::vector<int32_t>& only_positions,
    int top_k) {
  const Array& a = *attention.maps;
  if (a.shape.size() != 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("attention has shape ", ShapeString(a.shape),
                     "; expected (layers, heads, rows, keys)"));
  }
  const int64_t num_layers = a.shape[0], num_heads = a.shape[1],
                num_rows = a.shape[2], t = a.shape[3];
  if (static_cast<int64_t>(attention.layers.size()) != num_layers ||
      static_cast<int64_t>(attention.heads.size()) != num_heads ||
      static_cast<int64_t>(attention.rows.size()) != num_rows ||
      static_cast<int64_t>(attention.tokens.size()) != t) {
    return absl::InvalidArgumentError(
        absl::StrCat("attention of shape ", ShapeString(a.shape),
                     " labelled with ", attention.layers.size(), " layers, ",
                     attention.heads.size(), " heads, ", attention.rows.size(),
                     " rows and ", attention.tokens.size(), " tokens"));
  }
  // The rows to print, as indices into the row axis.
  std::vector<int64_t> rows;
  if (only_positions.empty()) {
    for (int64_t r = 0; r < num_rows; ++r) rows.push_back(r);
  } else {
    for (int32_t p : only_positions) {
      auto it = std::find(attention.rows.begin(), attention.rows.end(), p);
      if (it == attention.rows.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("query position ", p, " is not among the ", num_rows,
                         " returned rows"));
      }
      rows.push_back(it - attention.rows.begin());
    }
  }
  const std::vector<std::string> labels = TokenLabels(attention.tokens);
  auto query_label = [&](int64_t r) -> std::string {
    const int32_t p = attention.rows[r];
    return p >= 0 && p < t ? labels[p] : absl::StrCat("#", p);
  };
  // The top_k keys of one row, strongest first (ties: earlier position).
  auto top = [&](const float* row) {
    std::vector<int64_t> keys(t);
    for (int64_t k = 0; k < t; ++k) keys[k] = k;
    const int64_t n = std::min<int64_t>(std::max(top_k, 1), t);
    std::partial_sort(keys.begin(), keys.begin() + n, keys.end(),
                      [&](int64_t x, int64_t y) {
                        return row[x] > row[y] || (row[x] == row[y] && x < y);
                      });
    keys.resize(n);
    return keys;
  };
  const bool focused = !only_positions.empty();
  std::string out;
  std::vector<std::vector<std::string>> table;
  for (int64_t l = 0; l < num_layers; ++l) {
    for (int64_t h = 0; h < num_heads; ++h) {
      const float* map = a.values.data() + (l * num_heads + h) * num_rows * t;
      if (!focused) {
        absl::StrAppend(&out, "layer ", attention.layers[l], " head ",
                        attention.heads[h], "\n");
        table.clear();
      }
      for (int64_t r : rows) {
        std::vector<std::string> cells;
        if (focused) {
          cells.push_back(absl::StrCat("layer ", attention.layers[l]));
          cells.push_back(absl::StrCat("head ", attention.heads[h]));
        } else {
          cells.push_back(absl::StrCat(attention.rows[r]));
        }
        cells.push_back(query_label(r));
        cells.push_back("->");
        for (int64_t k : top(map + r * t)) {
          cells.push_back(labels[k]);
          cells.push_back(Weight(map[r * t + k]));
        }
        table.push_back(std::move(cells));
      }
      if (!focused) {
        out += Columns(table, {true, false, false, false, true}, "  ");
      }
    }
  }
  if (focused) {
    std::vector<bool> right = {false, false, false, false};
    for (int k = 0; k < std::max(top_k, 1); ++k) {
      right.push_back(false);
      right.push_back(true);
    }
    out += Columns(table, right, "");
  }
  return out;
}

// ---- head statistics ----------------------------------------------------

std::string FormatHeadStats(const v1::SequenceResult& result,
                            int64_t num_tokens) {
  std::set<int> layer_set, head_set;
  std::map<std::pair<int, int>, const v1::HeadStats*> by_head;
  for (const v1::HeadStats& s : result.head_stats()) {
    layer_set.insert(s.layer());
    head_set.insert(s.head());
    by_head[{s.layer(), s.head()}] = &s;
  }
  const std::vector<int> layers(layer_set.begin(), layer_set.end());
  const std::vector<int> heads(head_set.begin(), head_set.end());
  // One layers × heads grid of `cell(stats)`.
  auto grid = [&](auto cell) {
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> header = {""};
    for (int h : heads) header.push_back(absl::StrCat("h", h));
    rows.push_back(header);
    for (int l : layers) {
      std::vector<std::string> row = {absl::StrCat("L", l)};
      for (int h : heads) {
        auto it = by_head.find({l, h});
        row.push_back(it == by_head.end() ? "" : cell(*it->second));
      }
      rows.push_back(std::move(row));
    }
    return Columns(rows, std::vector<bool>(heads.size() + 1, true), "  ");
  };
  std::string out;
  if (!layers.empty()) {
    absl::StrAppendFormat(
        &out,
        "entropy of the rows, nats (low = focused; a uniform row over %d "
        "tokens has %.2f)\n",
        num_tokens, num_tokens > 0 ? std::log(num_tokens) : 0.0);
    out += grid([](const v1::HeadStats& s) {
      return absl::StrFormat("%.2f", s.entropy());
    });
    out += "\nmean distance attended, tokens\n";
    out += grid([](const v1::HeadStats& s) {
      return absl::StrFormat("%.1f", s.mean_distance());
    });
    out +=
        "\nstrongest pattern: the largest mean weight on [CLS], [SEP], the "
        "token itself, the previous or the next token\n";
    out += grid([](const v1::HeadStats& s) {
      const std::pair<const char*, float> patterns[] = {
          {"cls", s.cls_weight()},
          {"sep", s.sep_weight()},
          {"self", s.self_weight()},
          {"prev", s.prev_weight()},
          {"next", s.next_weight()}};
      const auto* best = &patterns[0];
      for (const auto& p : patterns) {
        if (p.second > best->second) best = &p;
      }
      return absl::StrFormat("%s %.2f", best->first, best->second);
    });
  }
  if (result.layer_stats_size() > 0) {
    out +=
        "\nlayer diversity: mean Jensen-Shannon divergence between its heads' "
        "rows (0 = identical heads, ln 2 = 0.693 at most)\n";
    std::vector<std::vector<std::string>> rows;
    rows.push_back({"", "diversity", "closest heads", "farthest heads"});
    for (const v1::LayerStats& s : result.layer_stats()) {
      std::vector<std::string> row = {absl::StrCat("L", s.layer()),
                                      absl::StrFormat("%.3f", s.diversity())};
      absl::StatusOr<Array> js = DecodeTensor(s.js_divergence(), "js");
      if (js.ok() && js->shape.size() == 2 && js->shape[0] == js->shape[1] &&
          js->shape[0] >= 2) {
        const int64_t n = js->shape[0];
        // The matrix is over the selected heads in request order: the
        // order of this layer's head_stats.
        std::vector<int> order;
        for (const v1::HeadStats& h : result.head_stats()) {
          if (h.layer() == s.layer()) order.push_back(h.head());
        }
        auto head_label = [&](int64_t i) {
          return static_cast<int64_t>(order.size()) == n
                     ? absl::StrCat("h", order[i])
                     : absl::StrCat("h", i);
        };
        int64_t lo = -1, hi = -1;
        for (int64_t a = 0; a < n; ++a) {
          for (int64_t b = a + 1; b < n; ++b) {
            const int64_t i = a * n + b;
            if (lo < 0 || js->values[i] < js->values[lo]) lo = i;
            if (hi < 0 || js->values[i] > js->values[hi]) hi = i;
          }
        }
        row.push_back(absl::StrFormat("%s/%s %.3f", head_label(lo / n),
                                      head_label(lo % n), js->values[lo]));
        row.push_back(absl::StrFormat("%s/%s %.3f", head_label(hi / n),
                                      head_label(hi % n), js->values[hi]));
      }
      rows.push_back(std::move(row));
    }
    out += Columns(rows, {false, true, true, true}, "  ");
  }
  return out;
}

std::string FormatRanking(const v1::RankHeadsResponse& ranking, int top) {
  std::string out;
  const int shown = std::min(top, ranking.heads_size());
  absl::StrAppendFormat(
      &out,
      "most important heads (%d of %d): importance = 1 - cos(pooled output "
      "with the head masked, without)\n",
      shown, ranking.heads_size());
  if (ranking.forward_passes() > 0) {
    absl::StrAppendFormat(&out, "(ablations: %d tokens in %d forward pass%s)\n",
                          ranking.ablation_tokens(), ranking.forward_passes(),
                          ranking.forward_passes() == 1 ? "" : "es");
  }
  std::vector<std::vector<std::string>> rows = {{"rank", "head", "importance"}};
  for (int i = 0; i < shown; ++i) {
    const v1::HeadImportance& h = ranking.heads(i);
    rows.push_back({absl::StrCat(i + 1),
                    absl::StrCat("L", h.layer(), " H", h.head()),
                    absl::StrFormat("%.6f", h.importance())});
  }
  out += Columns(rows, {true, false, true}, "  ");
  if (ranking.layers_size() > 0) {
    out += "\nlayers by importance (all heads of the layer masked at once)\n";
    rows = {{"rank", "layer", "importance"}};
    for (int i = 0; i < ranking.layers_size(); ++i) {
      const v1::HeadImportance& h = ranking.layers(i);
      rows.push_back({absl::StrCat(i + 1), absl::StrCat("L", h.layer()),
                      absl::StrFormat("%.6f", h.importance())});
    }
    out += Columns(rows, {true, false, true}, "  ");
  }
  return out;
}

}  // namespace attnserve::client
