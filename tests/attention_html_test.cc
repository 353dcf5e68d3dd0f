// The attention page (client/attention_html.cc): built from synthetic data
// (2 layers × 3 heads, 5 tokens including characters that need escaping),
// checked as text (escaping, no external references), then opened in
// headless Chromium, whose dumped DOM must show every head drawn
// (body[data-rendered]) and no script error (body[data-errors]); with one-hot
// maps, the heatmaps' pixels are read back and each card must show its own
// head's pattern (EachCardShowsItsHeadsPattern: a transposed heatmap fails).
//
// Chromium: see tests/chromium.h. Without it the browser tests FAIL, unless
// ATTNSERVE_SKIP_BROWSER=1 is set (then they are skipped).
//
// The page's style and scripts (client/assets/, compiled in by
// client/embed.cmake) are checked on their own: the compiled-in bytes are
// the files', the scripts parse (`node --check`; skipped without node) and
// the style sheet is well formed (a scanner here; no CSS tool is assumed).
#include "client/attention_html.h"

#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "client/attention_assets.h"
#include "common/file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/chromium.h"

namespace attnserve::client {
namespace {

using ::attnserve::testing::Dom;
using ::attnserve::testing::RenderInChromium;
using ::attnserve::testing::SkipBrowser;
using ::attnserve::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int kLayers = 2, kHeads = 3, kTokens = 5;

// Rows are softmaxes of a deterministic pattern: head h of layer l prefers
// key (i + h + l) mod T, so every head draws something different.
std::vector<float> SyntheticAttention(int layers, int heads, int t) {
  std::vector<float> a;  // (layers, heads, t, t)
  for (int l = 0; l < layers; ++l) {
    for (int h = 0; h < heads; ++h) {
      for (int i = 0; i < t; ++i) {
        std::vector<double> row(t);
        double sum = 0;
        for (int j = 0; j < t; ++j) {
          row[j] = std::exp(j == (i + h + l) % t ? 2.5 : 0.3 * ((i * j) % 3));
          sum += row[j];
        }
        for (int j = 0; j < t; ++j)
          a.push_back(static_cast<float>(row[j] / sum));
      }
    }
  }
  return a;
}

AttentionPage SyntheticPage() {
  AttentionPage page;
  page.title = "a<b & \"quoted\" </script><script>alert(1)</script>";
  page.subtitle = "synthetic · 2 layers × 3 heads";
  page.tokens = {"[CLS]", "a<b", "x</script>y", "&amp;\"q\"", "[SEP]"};
  page.layers = {0, 5};  // labels need not be 0..L-1
  page.heads = {0, 1, 2};
  page.attention = SyntheticAttention(kLayers, kHeads, kTokens);
  for (int l : page.layers) {
    for (int h : page.heads) {
      page.head_stats.push_back(
          {l, h, 1.1f + 0.1f * h, 0.6f, 1.5f, 0.2f, 0.1f, 0.3f, 0.25f, 0.15f});
    }
    page.layer_stats.push_back(
        {l, 0.12f, {0, 0.1f, 0.2f, 0.1f, 0, 0.15f, 0.2f, 0.15f, 0}});
  }
  page.rollout.assign(kTokens * kTokens, 1.0f / kTokens);
  page.masked = {{5, 1}};
  return page;
}

TEST(AttentionHtmlTest, RefusesSizesThatDisagree) {
  AttentionPage page = SyntheticPage();
  page.attention.pop_back();
  EXPECT_THAT(RenderAttentionHtml(page).status().message(),
              HasSubstr("(layers, heads, T, T) = (2, 3, 5, 5) needs 150"));
  page = SyntheticPage();
  page.rollout.resize(7);
  EXPECT_FALSE(RenderAttentionHtml(page).ok());
  page = SyntheticPage();
  page.layer_stats[0].js_divergence.resize(4);
  EXPECT_FALSE(RenderAttentionHtml(page).ok());
  page = SyntheticPage();
  page.tokens.clear();
  EXPECT_FALSE(RenderAttentionHtml(page).ok());
}

TEST(AttentionHtmlTest, EscapesTextAndReferencesNothingOutside) {
  absl::StatusOr<std::string> html = RenderAttentionHtml(SyntheticPage());
  ASSERT_TRUE(html.ok()) << html.status();
  // Self-contained: no URLs, no src= (scripts, images, frames), no
  // stylesheets or fonts from elsewhere.
  for (const char* outside :
       {"http://", "https://", "src=", "<link", "@import", "url(", "//cdn"}) {
    EXPECT_THAT(*html, Not(HasSubstr(outside))) << outside;
  }
  // The title is escaped as HTML; the tokens only travel inside the JSON,
  // where '<', '>' and '&' are \u escapes, so nothing closes the script.
  EXPECT_THAT(*html, HasSubstr("a&lt;b &amp; &quot;quoted&quot; "
                               "&lt;/script&gt;&lt;script&gt;alert(1)"));
  EXPECT_THAT(*html, Not(HasSubstr("alert(1)</script>")));
  EXPECT_THAT(*html, Not(HasSubstr("x</script>y")));
  EXPECT_THAT(*html, HasSubstr(R"("x\u003c/script\u003ey")"));
  EXPECT_THAT(*html, HasSubstr(R"("\u0026amp;\"q\"")"));
  EXPECT_THAT(*html, HasSubstr("<script type=\"application/json\""));
}

TEST(AttentionHtmlTest, WritesWeightsCompactly) {
  AttentionPage page;
  page.tokens = {"a", "b"};
  page.layers = {0};
  page.heads = {0};
  page.attention = {1.0f, 0.0f, 0.25f, 0.75f};
  absl::StatusOr<std::string> html = RenderAttentionHtml(page);
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_THAT(*html, HasSubstr("\"attention\":[1,0,0.25,0.75]"));
  EXPECT_THAT(*html, HasSubstr("\"rollout\":null"));
}

TEST(AttentionHtmlBrowserTest, DrawsEveryHeadWithoutErrors) {
  if (SkipBrowser()) GTEST_SKIP() << "ATTNSERVE_SKIP_BROWSER=1";
  absl::StatusOr<std::string> html = RenderAttentionHtml(SyntheticPage());
  ASSERT_TRUE(html.ok()) << html.status();
  std::optional<Dom> dom = RenderInChromium(*html);
  ASSERT_TRUE(dom.has_value());
  EXPECT_EQ(dom->errors, "");
  EXPECT_EQ(dom->rendered, std::to_string(kLayers * kHeads));
  EXPECT_TRUE(dom->has_rollout);
  // The head view put each token in the DOM as text (escaped by the
  // serializer), in both columns.
  EXPECT_THAT(dom->text, HasSubstr(">x&lt;/script&gt;y</div>"));
  EXPECT_THAT(dom->text, HasSubstr(">a&lt;b</div>"));
  EXPECT_THAT(dom->text, HasSubstr("L5 · H1"));
  EXPECT_THAT(dom->text, HasSubstr(">masked<"));
  EXPECT_THAT(dom->text, HasSubstr("diversity 0.120"));
}

// What was drawn, not only how many cards: every head of the page gets a
// one-hot map (row i attends only to key (i + 1 + h + 3·layer) mod 7, a
// different diagonal per card), and a probe script run after the page's own
// reads each card's canvas back (getImageData), finds its map (the opaque
// square in the canvas's bottom-right corner; labels sit left of and above
// it), and reports per row which cell is dark. Each card must show its own
// head's diagonal and no other dark cell.
TEST(AttentionHtmlBrowserTest, EachCardShowsItsHeadsPattern) {
  if (SkipBrowser()) GTEST_SKIP() << "ATTNSERVE_SKIP_BROWSER=1";
  constexpr int kT = 7;
  AttentionPage page;
  page.title = "one-hot";
  page.tokens = {"[CLS]", "a", "b", "c", "d", "e", "[SEP]"};
  page.layers = {0, 5};
  page.heads = {0, 1, 2};
  auto target = [](int layer_index, int head_index, int row) {
    return (row + 1 + head_index + 3 * layer_index) % kT;
  };
  for (int li = 0; li < 2; ++li) {
    for (int hi = 0; hi < 3; ++hi) {
      for (int i = 0; i < kT; ++i) {
        for (int j = 0; j < kT; ++j) {
          page.attention.push_back(j == target(li, hi, i) ? 1.f : 0.f);
        }
      }
    }
  }
  absl::StatusOr<std::string> html = RenderAttentionHtml(page);
  ASSERT_TRUE(html.ok()) << html.status();
  const std::string probe = R"(<script>
(function () {
  var n = JSON.parse(document.getElementById('attn-data').textContent).tokens.length;
  var out = [];
  document.querySelectorAll('.card').forEach(function (card) {
    var title = card.querySelector('.card-title').textContent;
    var cv = card.querySelector('canvas');
    var w = cv.width, h = cv.height;
    var img = cv.getContext('2d').getImageData(0, 0, w, h).data;
    function px(x, y) { var k = 4 * (y * w + x); return img.slice(k, k + 4); }
    // The map: the opaque run that ends at the right edge of the last row.
    var left = w;
    while (left > 0 && px(left - 1, h - 1)[3] === 255) left--;
    var cell = (w - left) / n, top = h - n * cell;
    var rows = [];
    for (var i = 0; i < n; i++) {
      var dark = [];
      for (var j = 0; j < n; j++) {
        var p = px(Math.floor(left + (j + 0.5) * cell), Math.floor(top + (i + 0.5) * cell));
        var lightness = (Math.max(p[0], p[1], p[2]) + Math.min(p[0], p[1], p[2])) / 510;
        if (p[3] === 255 && lightness < 0.66) dark.push(j);
      }
      rows.push(dark.length === 1 ? dark[0] : -1);
    }
    out.push(title + ':' + rows.join(','));
  });
  document.body.setAttribute('data-pattern', out.join('|'));
})();
</script>
</body>)";
  std::string probed = *html;
  const size_t end = probed.rfind("</body>");
  ASSERT_NE(end, std::string::npos);
  probed.replace(end, 7, probe);
  std::optional<Dom> dom = RenderInChromium(probed);
  ASSERT_TRUE(dom.has_value());
  EXPECT_EQ(dom->errors, "");
  EXPECT_EQ(dom->rendered, "6");
  std::vector<std::string> want;
  for (int li = 0; li < 2; ++li) {
    for (int hi = 0; hi < 3; ++hi) {
      std::vector<std::string> rows;
      for (int i = 0; i < kT; ++i) {
        rows.push_back(std::to_string(target(li, hi, i)));
      }
      want.push_back(absl::StrCat("L", page.layers[li], " · H",
                                  page.heads[hi], ":",
                                  absl::StrJoin(rows, ",")));
    }
  }
  EXPECT_EQ(::attnserve::testing::Attribute(
                dom->text.substr(0, dom->text.find('>', dom->text.find("<body"))),
                "data-pattern"),
            absl::StrJoin(want, "|"));
}

TEST(AttentionHtmlBrowserTest, DrawsOneTokenOneHeadWithoutStats) {
  if (SkipBrowser()) GTEST_SKIP() << "ATTNSERVE_SKIP_BROWSER=1";
  AttentionPage page;
  page.title = "one token";
  page.tokens = {"[CLS]"};
  page.layers = {3};
  page.heads = {7};
  page.attention = {1.0f};
  absl::StatusOr<std::string> html = RenderAttentionHtml(page);
  ASSERT_TRUE(html.ok()) << html.status();
  std::optional<Dom> dom = RenderInChromium(*html);
  ASSERT_TRUE(dom.has_value());
  EXPECT_EQ(dom->errors, "");
  EXPECT_EQ(dom->rendered, "1");
  EXPECT_FALSE(dom->has_rollout);
}

// The harness itself: a page whose script throws must show the error and
// no drawn heads, or the two tests above would prove nothing.
TEST(AttentionHtmlBrowserTest, ReportsScriptErrors) {
  if (SkipBrowser()) GTEST_SKIP() << "ATTNSERVE_SKIP_BROWSER=1";
  absl::StatusOr<std::string> html = RenderAttentionHtml(SyntheticPage());
  ASSERT_TRUE(html.ok()) << html.status();
  const std::string broken =
      absl::StrReplaceAll(*html, {{"JSON.parse(", "JSON.parseMissing("}});
  ASSERT_NE(broken, *html);
  std::optional<Dom> dom = RenderInChromium(broken);
  ASSERT_TRUE(dom.has_value());
  EXPECT_THAT(dom->errors, HasSubstr("parseMissing"));
  EXPECT_EQ(dom->rendered, "0");
}

// ---- the embedded style and scripts (client/assets/) ------------------------

const char kAssetDir[] = ATTNSERVE_CLIENT_ASSETS;

struct Asset {
  const char* file;        // under client/assets/
  absl::string_view text;  // as compiled in
};

std::vector<Asset> Assets() {
  return {{"attention_errors.js", AttentionErrorsScript()},
          {"attention.css", AttentionStyle()},
          {"attention.js", AttentionScript()}};
}

TEST(AttentionAssetsTest, CompiledInBytesAreTheFiles) {
  for (const Asset& asset : Assets()) {
    absl::StatusOr<std::string> file =
        ReadFile(absl::StrCat(kAssetDir, "/", asset.file));
    ASSERT_TRUE(file.ok()) << file.status();
    EXPECT_EQ(asset.text, *file) << asset.file;
  }
}

// node on PATH, or "".
std::string Node() {
  const char* path = std::getenv("PATH");
  for (absl::string_view dir :
       absl::StrSplit(path == nullptr ? "" : path, ':', absl::SkipEmpty())) {
    const std::string node = absl::StrCat(dir, "/node");
    if (access(node.c_str(), X_OK) == 0) return node;
  }
  return "";
}

// `node --check` on `script`: "" when it parses, else what node said.
std::string NodeCheck(const std::string& node, absl::string_view script) {
  TempDir dir;
  const std::string file = dir.path() + "/script.js";
  std::ofstream(file, std::ios::binary) << script;
  const std::string command =
      absl::StrCat("timeout 60 '", node, "' --check '", file, "' 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return "popen failed: " + command;
  std::string said;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0)
    said.append(buffer, n);
  const int status = pclose(pipe);
  if (status == 0) return "";
  return absl::StrCat(WIFEXITED(status)
                          ? absl::StrCat("exit ", WEXITSTATUS(status))
                          : absl::StrCat("wait status ", status),
                      ": ", said.empty() ? "(no output)" : said);
}

TEST(AttentionAssetsTest, ScriptsParse) {
  const std::string node = Node();
  if (node.empty()) {
    GTEST_SKIP() << "node not found on PATH: the JavaScript syntax of "
                    "client/assets/*.js is not checked";
  }
  for (const Asset& asset : Assets()) {
    if (!absl::EndsWith(asset.file, ".js")) continue;
    EXPECT_EQ(NodeCheck(node, asset.text), "") << asset.file;
  }
  // The check itself: a syntax error must fail it.
  EXPECT_NE(NodeCheck(node, "function (a, { return a; }\n"), "");
}

// The first thing wrong with `css` as a style sheet ("" if nothing), as far
// as a scanner can tell without a CSS parser: comments and strings closed;
// (), [] and {} balanced and properly nested; a selector (or at-rule) before
// every '{'; and every declaration in a block "property: value".
std::string CssProblem(absl::string_view css) {
  std::vector<char> open;  // unclosed brackets, innermost last
  std::string segment;     // text since the last '{', '}' or ';', no comments
  int line = 1;
  auto problem = [&](absl::string_view what) {
    return absl::StrCat("line ", line, ": ", what);
  };
  // The text before a ';' or '}' in a block: empty or a declaration.
  auto declaration = [](absl::string_view text) {
    text = absl::StripAsciiWhitespace(text);
    if (text.empty()) return true;
    const size_t colon = text.find(':');
    if (colon == absl::string_view::npos) return false;
    const absl::string_view name =
        absl::StripAsciiWhitespace(text.substr(0, colon));
    const absl::string_view value =
        absl::StripAsciiWhitespace(text.substr(colon + 1));
    static const std::regex kProperty("--[A-Za-z0-9_-]+|-?[a-z][a-z-]*");
    return !value.empty() &&
           std::regex_match(name.begin(), name.end(), kProperty);
  };
  for (size_t i = 0; i < css.size(); ++i) {
    const char c = css[i];
    if (c == '/' && i + 1 < css.size() && css[i + 1] == '*') {
      const size_t end = css.find("*/", i + 2);
      if (end == absl::string_view::npos) return problem("unclosed comment");
      line += std::count(css.begin() + i, css.begin() + end, '\n');
      i = end + 1;
      continue;
    }
    if (c == '"' || c == '\'') {
      size_t end = i + 1;
      while (end < css.size() && css[end] != c && css[end] != '\n') {
        end += css[end] == '\\' ? 2 : 1;
      }
      if (end >= css.size() || css[end] != c) {
        return problem("unclosed string");
      }
      absl::StrAppend(&segment, css.substr(i, end + 1 - i));
      i = end;
      continue;
    }
    switch (c) {
      case '\n':
        ++line;
        segment += c;
        break;
      case '(':
      case '[':
        open.push_back(c);
        segment += c;
        break;
      case ')':
      case ']':
        if (open.empty() || open.back() != (c == ')' ? '(' : '[')) {
          return problem(absl::StrCat("unmatched '", std::string(1, c), "'"));
        }
        open.pop_back();
        segment += c;
        break;
      case '{':
        if (!open.empty() && open.back() != '{') {
          return problem(
              absl::StrCat("'{' inside '", std::string(1, open.back()), "'"));
        }
        if (absl::StripAsciiWhitespace(segment).empty()) {
          return problem("'{' without a selector");
        }
        open.push_back('{');
        segment.clear();
        break;
      case ';':
      case '}':
        if (!open.empty() && open.back() != '{') {
          return problem(
              absl::StrCat("unclosed '", std::string(1, open.back()), "'"));
        }
        if (open.empty() && c == '}') return problem("unmatched '}'");
        if (open.empty() &&
            !absl::StartsWith(absl::StripAsciiWhitespace(segment), "@")) {
          return problem("';' outside a block");  // only at-rules end so
        }
        if (!open.empty() && !declaration(segment)) {
          return problem(absl::StrCat("not a declaration: \"",
                                      absl::StripAsciiWhitespace(segment),
                                      "\""));
        }
        if (c == '}') open.pop_back();
        segment.clear();
        break;
      default:
        segment += c;
    }
  }
  if (!open.empty()) {
    return problem(
        absl::StrCat("unclosed '", std::string(1, open.back()), "'"));
  }
  if (!absl::StripAsciiWhitespace(segment).empty()) {
    return problem("text after the last rule");
  }
  return "";
}

TEST(AttentionAssetsTest, StyleIsWellFormed) {
  EXPECT_EQ(CssProblem(AttentionStyle()), "");
  // The check itself.
  EXPECT_EQ(CssProblem("a:hover { color: red; --x: 1 }\n/* } */ b {}"), "");
  EXPECT_EQ(CssProblem("@media (x) { a { b: \"}\"; } }"), "");
  EXPECT_EQ(CssProblem("a { color: red;\n"), "line 2: unclosed '{'");
  EXPECT_EQ(CssProblem("a { color: red; }\n}"), "line 2: unmatched '}'");
  EXPECT_EQ(CssProblem("a {\n color red; }"),
            "line 2: not a declaration: \"color red\"");
  EXPECT_EQ(CssProblem("{ color: red; }"), "line 1: '{' without a selector");
  EXPECT_EQ(CssProblem("a { b: f(1; }"), "line 1: unclosed '('");
  EXPECT_EQ(CssProblem("a { b: 'x; }"), "line 1: unclosed string");
  EXPECT_EQ(CssProblem("a { } /* x"), "line 1: unclosed comment");
}

}  // namespace
}  // namespace attnserve::client
