#include "client/attention_html.h"

#include <cmath>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "client/attention_assets.h"
#include "client/json_format.h"

namespace attnserve::client {
namespace {

// Text for HTML element content and attribute values.
std::string HtmlEscape(absl::string_view s) {
  return absl::StrReplaceAll(s, {{"&", "&amp;"},
                                 {"<", "&lt;"},
                                 {">", "&gt;"},
                                 {"\"", "&quot;"},
                                 {"'", "&#39;"}});
}

// A JSON string that is also safe inside <script>: '<', '>' and '&' are
// written as \u escapes, so no "</script>" or "<!--" can end the block.
// (JsonString never emits those three characters itself.)
std::string JsonScriptString(absl::string_view s) {
  return absl::StrReplaceAll(
      JsonString(s), {{"<", "\\u003c"}, {">", "\\u003e"}, {"&", "\\u0026"}});
}

// Statistics: six significant digits; null when not finite (JSON has no NaN).
void AppendStat(double v, std::string* out) {
  if (!std::isfinite(v)) {
    *out += "null";
  } else {
    absl::StrAppendFormat(out, "%.6g", v);
  }
}

// Attention weights: four decimals, trailing zeros dropped ("0.25", "0",
// "1"), which keeps a 12-layer page at ~5 bytes a weight.
void AppendWeight(float v, std::string* out) {
  if (!std::isfinite(v)) {
    *out += "null";
    return;
  }
  if (v < 0 || v > 1) {  // not a probability: keep it as it is
    absl::StrAppendFormat(out, "%.6g", v);
    return;
  }
  std::string s = absl::StrFormat("%.4f", v);
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  *out += s;
}

void AppendWeights(const std::vector<float>& values, std::string* out) {
  *out += "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) *out += ",";
    AppendWeight(values[i], out);
  }
  *out += "]";
}

std::string PageJson(const AttentionPage& page) {
  std::string out = "{\"tokens\":[";
  for (size_t i = 0; i < page.tokens.size(); ++i) {
    if (i > 0) out += ",";
    out += JsonScriptString(page.tokens[i]);
  }
  absl::StrAppend(&out, "],\"layers\":[", absl::StrJoin(page.layers, ","),
                  "],\"heads\":[", absl::StrJoin(page.heads, ","),
                  "],\n\"attention\":");
  AppendWeights(page.attention, &out);
  out += ",\n\"stats\":[";
  for (size_t i = 0; i < page.head_stats.size(); ++i) {
    const HeadSummary& s = page.head_stats[i];
    if (i > 0) out += ",";
    absl::StrAppend(&out, "{\"layer\":", s.layer, ",\"head\":", s.head);
    const std::pair<const char*, float> fields[] = {
        {"entropy", s.entropy},        {"max", s.max_weight},
        {"distance", s.mean_distance}, {"cls", s.cls_weight},
        {"sep", s.sep_weight},         {"self", s.self_weight},
        {"prev", s.prev_weight},       {"next", s.next_weight}};
    for (const auto& [name, value] : fields) {
      absl::StrAppend(&out, ",\"", name, "\":");
      AppendStat(value, &out);
    }
    out += "}";
  }
  out += "],\n\"layerStats\":[";
  for (size_t i = 0; i < page.layer_stats.size(); ++i) {
    const LayerSummary& s = page.layer_stats[i];
    if (i > 0) out += ",";
    absl::StrAppend(&out, "{\"layer\":", s.layer, ",\"diversity\":");
    AppendStat(s.diversity, &out);
    out += ",\"js\":[";
    for (size_t j = 0; j < s.js_divergence.size(); ++j) {
      if (j > 0) out += ",";
      AppendStat(s.js_divergence[j], &out);
    }
    out += "]}";
  }
  out += "],\n\"rollout\":";
  if (page.rollout.empty()) {
    out += "null";
  } else {
    AppendWeights(page.rollout, &out);
  }
  out += ",\"masked\":[";
  for (size_t i = 0; i < page.masked.size(); ++i) {
    if (i > 0) out += ",";
    absl::StrAppend(&out, "[", page.masked[i].first, ",", page.masked[i].second,
                    "]");
  }
  out += "]}";
  return out;
}

// The importance grid and the pruning curve (static inline SVG), or a note
// saying why they are missing.
std::string InsightPanels(const AttentionPage& page) {
  std::string out;
  if (!page.importance.empty()) {
    absl::StrAppend(
        &out,
        "<div class=\"panel\" id=\"importance\"><h2>Head importance "
        "(RankHeads)</h2><div class=\"hint\">1 − cos of the pooled output "
        "with the head masked alone; darker = more important. Attention weight "
        "is not importance: a head can look hard at [SEP] and change "
        "nothing.</div>\n",
        ImportanceGridSvg(page.importance, page.importance_layers,
                          page.importance_heads),
        "</div>\n");
  } else if (!page.rank_note.empty()) {
    absl::StrAppend(&out,
                    "<div class=\"panel\" id=\"importance\"><h2>Head "
                    "importance</h2><div class=\"hint\">Not computed: ",
                    HtmlEscape(page.rank_note), "</div></div>\n");
  }
  if (!page.curve.empty()) {
    absl::StrAppend(
        &out,
        "<div class=\"panel\" id=\"curve\"><h2>Pruning curve</h2><div "
        "class=\"hint\">The k least important heads masked at once: how "
        "close the pooled output stays to the unmasked one (Michel et al. "
        "2019).</div>\n",
        PruneCurveSvg(page.curve, page.curve.back().masked), "</div>\n");
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> RenderAttentionHtml(const AttentionPage& page) {
  const size_t t = page.tokens.size();
  const size_t l = page.layers.size();
  const size_t h = page.heads.size();
  if (t == 0 || l == 0 || h == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the page needs at least one token, layer and head; got ",
                     t, " tokens, ", l, " layers, ", h, " heads"));
  }
  if (page.attention.size() != l * h * t * t) {
    return absl::InvalidArgumentError(
        absl::StrCat("attention has ", page.attention.size(),
                     " values; (layers, heads, T, T) = (", l, ", ", h, ", ", t,
                     ", ", t, ") needs ", l * h * t * t));
  }
  if (!page.rollout.empty() && page.rollout.size() != t * t) {
    return absl::InvalidArgumentError(absl::StrCat(
        "rollout has ", page.rollout.size(), " values; (T, T) needs ", t * t));
  }
  for (const LayerSummary& s : page.layer_stats) {
    if (!s.js_divergence.empty() && s.js_divergence.size() != h * h) {
      return absl::InvalidArgumentError(absl::StrCat(
          "layer ", s.layer, ": js_divergence has ", s.js_divergence.size(),
          " values; (heads, heads) needs ", h * h));
    }
  }

  // The style and the scripts are client/assets/ (attention_assets.h); the
  // page opens each of their blocks with a newline.
  std::string html;
  html.reserve(page.attention.size() * 6 + 32768);
  absl::StrAppend(
      &html,
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, "
      "initial-scale=1\">\n<title>attnserve · ",
      HtmlEscape(page.title), "</title>\n<script>\n", AttentionErrorsScript(),
      "</script>\n<style>\n", AttentionStyle(), "</style>\n</head>\n",
      "<body data-rendered=\"0\" data-errors=\"\">\n<header><h1>",
      HtmlEscape(page.title), "</h1><div class=\"sub\">",
      HtmlEscape(page.subtitle),
      "</div></header>\n<main>\n<section id=\"left\">\n",
      "<div class=\"panel\" id=\"controls\">\n<label>Head view: <select "
      "id=\"layer\"></select></label>\n<div id=\"toggles\"></div>\n",
      "<div class=\"hint\">Lines: query token (left) → key token (right), "
      "weighted by attention, colored by head. Click a head to toggle it, "
      "double-click to show it alone; hover a token to focus on its "
      "lines. Link a view: "
      "page.html#layer=2&amp;heads=0,3&amp;query=9.</div>\n<div "
      "id=\"headview\"><div class=\"col\" id=\"qcol\"></div>"
      "<canvas id=\"lines\"></canvas><div class=\"col\" "
      "id=\"kcol\"></div></div>\n"
      "</div>\n<div class=\"panel\" id=\"rollout\" style=\"display:none\">"
      "<h2>Attention rollout</h2><div class=\"hint\">Every layer: ½·mean over "
      "heads + ½·I, rows renormalized, multiplied from the first layer up "
      "(Abnar &amp; Zuidema 2020).</div></div>\n",
      InsightPanels(page), "</section>\n",
      "<section id=\"grid\"><div class=\"hint\" style=\"margin-bottom:8px\">"
      "Each map: rows = query token, columns = key token; color scaled to "
      "the map's maximum. Bars: mean weight on [CLS], [SEP], itself, the "
      "previous and the next token. Click a map to show it in the head "
      "view.</div></section>\n</main>\n<div id=\"tip\"></div>\n",
      "<script type=\"application/json\" id=\"attn-data\">", PageJson(page),
      "</script>\n<script>\n", AttentionScript(),
      "</script>\n</body>\n</html>\n");
  return html;
}

}  // namespace attnserve::client
