// One self-contained HTML page that draws the attention of one sequence:
//   (a) the head view: tokens in two columns (query left, key right), lines
//       weighted by attention and colored per head, a layer picker, head
//       toggles, hover a token to focus on its lines;
//   (b) a grid of per-head heatmaps labelled with the tokens, each with its
//       statistics, grouped by layer with the layer's head diversity;
//   (c) the attention rollout map, when given;
//   (d) the RankHeads importance grid and the pruning curve, when given, as
//       inline SVG (client/prune_curve.h).
// No external scripts, fonts, images or network: the CSS and JS (from
// client/assets/, compiled in) are inline and the data is embedded as JSON.
// When the script has drawn everything it sets document.body.dataset.rendered
// to the number of head heatmaps drawn; any script error is appended to
// document.body.dataset.errors (both are what tests/attention_html_test.cc
// checks in headless Chromium).
//
// Plain structs in, a string out: no protobuf, no I/O. Any thread.
#ifndef ATTNSERVE_CLIENT_ATTENTION_HTML_H_
#define ATTNSERVE_CLIENT_ATTENTION_HTML_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "client/prune_curve.h"

namespace attnserve::client {

// Statistics of one head (the server's HeadStats), each a mean over query
// rows.
struct HeadSummary {
  int layer = 0;
  int head = 0;
  float entropy = 0;  // nats
  float max_weight = 0;
  float mean_distance = 0;  // tokens
  float cls_weight = 0;
  float sep_weight = 0;
  float self_weight = 0;
  float prev_weight = 0;
  float next_weight = 0;
};

// How different the heads of one layer are (the server's LayerStats).
struct LayerSummary {
  int layer = 0;
  float diversity = 0;               // mean JS divergence over head pairs
  std::vector<float> js_divergence;  // (heads, heads) or empty
};

struct AttentionPage {
  std::string title;                    // heading, e.g. the input text
  std::string subtitle;                 // e.g. the model and the options
  std::vector<std::string> tokens;      // (T)
  std::vector<int> layers;              // (L) model layer of each map
  std::vector<int> heads;               // (H) model head of each map
  std::vector<float> attention;         // (L, H, T, T) rows = query, cols = key
  std::vector<HeadSummary> head_stats;  // any subset, by (layer, head)
  std::vector<LayerSummary> layer_stats;    // any subset, by layer
  std::vector<float> rollout;               // (T, T) or empty
  std::vector<std::pair<int, int>> masked;  // (layer, head); head -1 = all
  // RankHeads (attnctl attention without --no-rank): the importance grid of
  // importance_layers × importance_heads; heads missing from it (pruned) are
  // drawn crossed. Empty = no grid.
  std::vector<HeadScore> importance;
  int importance_layers = 0, importance_heads = 0;
  std::vector<CurvePoint> curve;  // the pruning curve (--rank), or empty
  std::string rank_note;  // why there is no grid (e.g. over the server's limit)
};

// INVALID_ARGUMENT when the sizes disagree (attention is not L·H·T·T,
// rollout neither empty nor T·T, a js_divergence not H·H, no tokens).
absl::StatusOr<std::string> RenderAttentionHtml(const AttentionPage& page);

}  // namespace attnserve::client

#endif  // ATTNSERVE_CLIENT_ATTENTION_HTML_H_
