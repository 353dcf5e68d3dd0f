// The attention page (client/attention_html.cc): built from synthetic data
// (2 layers × 3 heads, 5 tokens including characters that need escaping),
// checked as text (escaping, no external references), then opened in
// headless Chromium, whose dumped DOM must show every head drawn
// (body[data-rendered]) and no script error (body[data-errors]).
//
// Chromium: see tests/chromium.h. Without it the browser tests FAIL, unless
// ATTNSERVE_SKIP_BROWSER=1 is set (then they are skipped).
#include "client/attention_html.h"

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/chromium.h"

namespace attnserve::client {
namespace {

using ::attnserve::testing::Dom;
using ::attnserve::testing::RenderInChromium;
using ::attnserve::testing::SkipBrowser;
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

}  // namespace
}  // namespace attnserve::client
