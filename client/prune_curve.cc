#include "client/prune_curve.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "client/attention_assets.h"

namespace attnserve::client {
namespace {

std::string Escape(absl::string_view s) {
  return absl::StrReplaceAll(s, {{"&", "&amp;"},
                                 {"<", "&lt;"},
                                 {">", "&gt;"},
                                 {"\"", "&quot;"},
                                 {"'", "&#39;"}});
}

// Plot area of the curve, in SVG user units.
constexpr double kWidth = 560, kHeight = 300;
constexpr double kLeft = 56, kRight = 16, kTop = 16, kBottom = 44;

}  // namespace

std::vector<int> CurveSteps(int heads, int step) {
  std::vector<int> ks;
  step = std::max(step, 1);
  for (int k = 0; k < heads; k += step) ks.push_back(k);
  ks.push_back(heads);
  return ks;
}

std::string FormatPruneCurve(const std::vector<CurvePoint>& curve,
                             const std::vector<HeadScore>& order, int texts) {
  std::string out = texts > 1 ? "  masked   kept   cosine  (lowest text)\n"
                              : "  masked   kept   cosine\n";
  for (const CurvePoint& p : curve) {
    absl::StrAppendFormat(&out, "  %6d  %5.3f  %7.4f", p.masked, p.kept,
                          p.cosine);
    if (texts > 1) absl::StrAppendFormat(&out, "  (%.4f)", p.min_cosine);
    out += "\n";
  }
  out += "masked in this order (least important first):";
  for (size_t i = 0; i < order.size(); ++i) {
    absl::StrAppend(&out, i % 12 == 0 ? "\n  " : " ", "L", order[i].layer, "H",
                    order[i].head);
  }
  out += "\n";
  return out;
}

std::string PruneCurveSvg(const std::vector<CurvePoint>& curve, int heads) {
  double low = 0;
  for (const CurvePoint& p : curve) {
    if (std::isfinite(p.cosine)) low = std::min(low, p.cosine);
  }
  const double w = kWidth - kLeft - kRight, h = kHeight - kTop - kBottom;
  auto x = [&](double k) { return kLeft + w * k / std::max(heads, 1); };
  auto y = [&](double c) { return kTop + h * (1 - c) / (1 - low); };
  std::string svg = absl::StrFormat(
      "<svg class=\"curve\" xmlns=\"http://www.w3.org/2000/svg\" "
      "viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" role=\"img\" "
      "aria-label=\"cosine of the pooled output against heads masked\">\n",
      kWidth, kHeight, kWidth, kHeight);
  // Axes, grid lines and labels.
  for (double c : {low, low + (1 - low) / 2, 1.0}) {
    absl::StrAppendFormat(
        &svg,
        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
        "stroke=\"#dde3ea\"/><text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" "
        "text-anchor=\"end\" fill=\"#555\">%.2f</text>\n",
        kLeft, y(c), kLeft + w, y(c), kLeft - 6, y(c) + 4, c);
  }
  for (int k : {0, heads / 2, heads}) {
    absl::StrAppendFormat(&svg,
                          "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" "
                          "text-anchor=\"middle\" fill=\"#555\">%d</text>\n",
                          x(k), kTop + h + 16, k);
  }
  absl::StrAppendFormat(
      &svg,
      "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\" "
      "fill=\"#333\">heads masked, least important first (of %d)</text>\n"
      "<text x=\"14\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\" "
      "fill=\"#333\" transform=\"rotate(-90 14 %.1f)\">cosine to the "
      "unmasked output</text>\n",
      kLeft + w / 2, kHeight - 8, heads, kTop + h / 2, kTop + h / 2);
  std::string points;
  for (const CurvePoint& p : curve) {
    absl::StrAppendFormat(&points, "%s%.1f,%.1f", points.empty() ? "" : " ",
                          x(p.masked),
                          y(std::isfinite(p.cosine) ? p.cosine : low));
  }
  absl::StrAppendFormat(
      &svg,
      "<polyline data-points=\"%d\" points=\"%s\" "
      "fill=\"none\" stroke=\"#1f6feb\" stroke-width=\"2\"/>\n",
      curve.size(), points);
  for (const CurvePoint& p : curve) {
    absl::StrAppendFormat(
        &svg,
        "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#1f6feb\"><title>%d "
        "masked (%.0f%% kept): cosine %.4f</title></circle>\n",
        x(p.masked), y(std::isfinite(p.cosine) ? p.cosine : low), p.masked,
        100 * p.kept, p.cosine);
  }
  svg += "</svg>\n";
  return svg;
}

std::string ImportanceGridSvg(const std::vector<HeadScore>& scores, int layers,
                              int heads) {
  constexpr double kCell = 26, kGap = 2, kLabel = 34, kHead = 18;
  double top = 0;
  for (const HeadScore& s : scores) top = std::max(top, s.importance);
  std::vector<const HeadScore*> at(size_t(layers) * heads, nullptr);
  for (const HeadScore& s : scores) {
    if (s.layer >= 0 && s.layer < layers && s.head >= 0 && s.head < heads) {
      at[size_t(s.layer) * heads + s.head] = &s;
    }
  }
  const double width = kLabel + heads * (kCell + kGap);
  const double height = kHead + layers * (kCell + kGap);
  std::string svg = absl::StrFormat(
      "<svg class=\"importance\" xmlns=\"http://www.w3.org/2000/svg\" "
      "viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" role=\"img\" "
      "aria-label=\"RankHeads importance, layers by heads\">\n",
      width, height, width, height);
  for (int h = 0; h < heads; ++h) {
    absl::StrAppendFormat(&svg,
                          "<text x=\"%.1f\" y=\"12\" font-size=\"10\" "
                          "text-anchor=\"middle\" fill=\"#555\">h%d</text>\n",
                          kLabel + h * (kCell + kGap) + kCell / 2, h);
  }
  for (int l = 0; l < layers; ++l) {
    const double y = kHead + l * (kCell + kGap);
    absl::StrAppendFormat(&svg,
                          "<text x=\"0\" y=\"%.1f\" font-size=\"10\" "
                          "fill=\"#555\">L%d</text>\n",
                          y + kCell / 2 + 4, l);
    for (int h = 0; h < heads; ++h) {
      const double x = kLabel + h * (kCell + kGap);
      const HeadScore* s = at[size_t(l) * heads + h];
      if (s == nullptr) {  // pruned: not ranked
        absl::StrAppendFormat(
            &svg,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.0f\" height=\"%.0f\" "
            "fill=\"#eee\" data-layer=\"%d\" data-head=\"%d\" "
            "data-pruned=\"1\"><title>L%d H%d: pruned</title></rect>"
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
            "stroke=\"#bbb\"/>\n",
            x, y, kCell, kCell, l, h, l, h, x, y, x + kCell, y + kCell);
        continue;
      }
      // White to deep red, by importance relative to the largest.
      const double f = top > 0 ? std::clamp(s->importance / top, 0.0, 1.0) : 0;
      const int r = int(std::lround(255 - f * (255 - 178)));
      const int g = int(std::lround(255 - f * 255));
      const int b = int(std::lround(255 - f * (255 - 24)));
      absl::StrAppendFormat(
          &svg,
          "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.0f\" height=\"%.0f\" "
          "fill=\"rgb(%d,%d,%d)\" stroke=\"#ccc\" data-layer=\"%d\" "
          "data-head=\"%d\" data-importance=\"%.6g\"><title>L%d H%d: "
          "importance %.6f</title></rect>\n",
          x, y, kCell, kCell, r, g, b, l, h, s->importance, l, h,
          s->importance);
    }
  }
  svg += "</svg>\n";
  return svg;
}

absl::StatusOr<std::string> RenderPruneCurveHtml(
    const std::string& title, const std::string& subtitle,
    const std::vector<CurvePoint>& curve, const std::vector<HeadScore>& scores,
    int layers, int heads) {
  if (curve.empty()) {
    return absl::InvalidArgumentError("the pruning curve has no points");
  }
  const int total = curve.back().masked;
  std::string rows;
  for (const CurvePoint& p : curve) {
    absl::StrAppendFormat(&rows,
                          "<tr><td>%d</td><td>%.3f</td><td>%.4f</td>"
                          "<td>%.4f</td></tr>\n",
                          p.masked, p.kept, p.cosine, p.min_cosine);
  }
  return absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<title>attnserve · pruning curve · ",
      Escape(title), "</title>\n<script>\n", AttentionErrorsScript(),
      "</script>\n<style>\n", AttentionStyle(),
      "</style>\n</head>\n<body data-errors=\"\">\n<header><h1>", Escape(title),
      "</h1><div class=\"sub\">", Escape(subtitle),
      "</div></header>\n<main class=\"insight\">\n<section class=\"panel\" "
      "id=\"curve\"><h2>Pruning curve</h2><div class=\"hint\">The k least "
      "important heads (by RankHeads) masked at once, k = 0 … all: how close "
      "the pooled output stays to the unmasked one. A curve that stays near 1 "
      "while most heads are gone means those heads can be removed at test "
      "time (Michel et al. 2019).</div>\n",
      PruneCurveSvg(curve, total),
      "</section>\n<section class=\"panel\" id=\"importance\"><h2>Head "
      "importance</h2><div class=\"hint\">RankHeads: 1 − cos of the pooled "
      "output with the head masked alone; darker = more important.</div>\n",
      ImportanceGridSvg(scores, layers, heads),
      "</section>\n<section class=\"panel\"><table class=\"curve-table\">"
      "<tr><th>masked</th><th>kept</th><th>cosine</th><th>lowest "
      "text</th></tr>\n",
      rows, "</table></section>\n</main>\n</body>\n</html>\n");
}

}  // namespace attnserve::client
