// The pruning curve and the importance grid (client/prune_curve.cc), and the
// commands that make them (`attnctl prune-curve`, `attnctl attention --rank`)
// against an in-process server on the constructed demo model, whose heads'
// importance is known: [CLS]/[SEP] heads write nothing (importance 0), so
// the curve starts flat, and masking every head moves the output. The pages
// are opened in headless Chromium (tests/chromium.h; ATTNSERVE_SKIP_BROWSER=1
// skips that part) and what they draw is counted in the DOM.
#include "client/prune_curve.h"

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "client/cli.h"
#include "client/commands.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/demo/demo_model.h"
#include "tests/chromium.h"
#include "tests/server_testing.h"

namespace attnserve::client {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kReadme[] =
    "The animal didn't cross the street because it was too tired";

int Count(const std::string& text, const std::string& pattern) {
  const std::regex re(pattern);
  return std::distance(std::sregex_iterator(text.begin(), text.end(), re),
                       std::sregex_iterator());
}

std::string ReadAll(const std::string& path) {
  std::ifstream file(path);
  return std::string((std::istreambuf_iterator<char>(file)),
                     std::istreambuf_iterator<char>());
}

TEST(PruneCurveDrawingTest, StepsEndWithEveryHead) {
  EXPECT_THAT(CurveSteps(5, 2), ElementsAre(0, 2, 4, 5));
  EXPECT_THAT(CurveSteps(4, 2), ElementsAre(0, 2, 4));
  EXPECT_THAT(CurveSteps(3, 0), ElementsAre(0, 1, 2, 3));  // step ≥ 1
  EXPECT_THAT(CurveSteps(0, 1), ElementsAre(0));
}

TEST(PruneCurveDrawingTest, SvgHasOnePointPerStepAndOneCellPerHead) {
  const std::vector<CurvePoint> curve = {
      {0, 1, 1, 1}, {2, 0.5, 0.9, 0.8}, {4, 0, 0.3, 0.2}};
  const std::string svg = PruneCurveSvg(curve, 4);
  EXPECT_THAT(svg, HasSubstr("<polyline data-points=\"3\""));
  EXPECT_EQ(Count(svg, "<circle "), 3);
  // Two layers of two heads, one of them pruned (not ranked).
  const std::vector<HeadScore> scores = {{0, 0, 0.5}, {0, 1, 0}, {1, 1, 0.25}};
  const std::string grid = ImportanceGridSvg(scores, 2, 2);
  EXPECT_EQ(Count(grid, "data-importance="), 3);
  EXPECT_EQ(Count(grid, "data-pruned=\"1\""), 1);
  EXPECT_THAT(grid, HasSubstr("fill=\"rgb(178,0,24)\""));     // the largest
  EXPECT_THAT(grid, HasSubstr("fill=\"rgb(255,255,255)\""));  // importance 0
}

TEST(PruneCurveDrawingTest, TableListsEveryStepAndTheOrder) {
  const std::string table = FormatPruneCurve(
      {{0, 1, 1, 1}, {1, 0.5, 0.75, 0.5}}, {{1, 0, 0}, {0, 1, 0.2}}, 2);
  EXPECT_THAT(table, HasSubstr("       1  0.500   0.7500  (0.5000)"));
  EXPECT_THAT(table, HasSubstr("\n  L1H0 L0H1\n"));
}

class PruneCurveCommandTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(attnserve::testing::MakeTempDir("prune_curve"));
    DemoModelOptions options;
    options.kind = DemoModelKind::kConstructed;
    ASSERT_TRUE(WriteDemoModel(*dir_, options).ok());
    server_ = attnserve::testing::StartServer(attnserve::testing::TestOptions(),
                                              *dir_)
                  .release();
  }
  static void TearDownTestSuite() {
    delete server_;
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }

  std::string RunOk(std::vector<std::string> args) {
    args.push_back(absl::StrCat("--target=127.0.0.1:", server_->port()));
    absl::StatusOr<Flags> flags = ParseFlags(args);
    EXPECT_TRUE(flags.ok()) << flags.status();
    if (!flags.ok()) return "";
    auto stub = v1::Encoder::NewStub(Connect(flags->channel));
    std::string out;
    absl::Status status = RunCommand(*flags, *stub, &out);
    EXPECT_TRUE(status.ok()) << status;
    return out;
  }

  static inline Server* server_ = nullptr;
  static inline std::string* dir_ = nullptr;
};

TEST_F(PruneCurveCommandTest, PrintsTheCurveOfTheDemoModel) {
  const std::string out = RunOk({"prune-curve", kReadme,
                                 "The woman read the book because she was "
                                 "happy"});
  EXPECT_THAT(out, HasSubstr("12 heads ranked, pooling mean, 2 texts, step 1"));
  // k = 0 is the reference; the first two masked are the [CLS] and [SEP]
  // heads, which write nothing; masking all twelve moves the output.
  EXPECT_THAT(out, HasSubstr("       0  1.000   1.0000  (1.0000)"));
  EXPECT_THAT(out, HasSubstr("       2  0.833   1.0000  (1.0000)"));
  std::smatch last;
  ASSERT_TRUE(std::regex_search(out, last,
                                std::regex("\n      12  0\\.000   ([0-9.]+)")));
  EXPECT_LT(std::stod(last[1]), 0.9);
  EXPECT_THAT(out, HasSubstr("least important first):\n  L1H"));
}

TEST_F(PruneCurveCommandTest, StepAndJson) {
  const std::string out =
      RunOk({"prune-curve", kReadme, "--step", "5", "--json"});
  EXPECT_EQ(Count(out, "\"masked\": "), 4);  // 0, 5, 10, 12
  EXPECT_THAT(out, HasSubstr("{\"masked\": 12, \"kept\": 0,"));
}

TEST_F(PruneCurveCommandTest, HtmlPageDrawsTheCurveAndTheGrid) {
  attnserve::testing::TempDir tmp;
  const std::string path = tmp.path() + "/curve.html";
  RunOk({"prune-curve", kReadme, "--html", path});
  const std::string html = ReadAll(path);
  EXPECT_THAT(html, HasSubstr("<polyline data-points=\"13\""));
  EXPECT_THAT(html, Not(HasSubstr("src=\"http")));  // self-contained
  if (attnserve::testing::SkipBrowser()) return;
  std::optional<attnserve::testing::Dom> dom =
      attnserve::testing::RenderInChromium(html);
  ASSERT_TRUE(dom.has_value());
  EXPECT_EQ(dom->errors, "");
  // Parsed as SVG by the browser: 13 points on the curve, 12 cells.
  EXPECT_EQ(Count(dom->text, "<circle "), 13);
  EXPECT_EQ(Count(dom->text, "<rect [^>]*data-importance="), 12);
  // The [CLS] head (layer 1 head 0) is white: importance 0.
  EXPECT_EQ(Count(dom->text,
                  "fill=\"rgb\\(255,255,255\\)\" stroke=\"#ccc\" "
                  "data-layer=\"1\" data-head=\"0\""),
            1);
}

TEST_F(PruneCurveCommandTest, AttentionPageGainsGridAndCurveWithRank) {
  attnserve::testing::TempDir tmp;
  const std::string plain = tmp.path() + "/plain.html";
  const std::string ranked = tmp.path() + "/ranked.html";
  const std::string none = tmp.path() + "/none.html";
  RunOk({"attention", kReadme, "--html", plain});
  RunOk({"attention", kReadme, "--html", ranked, "--rank"});
  RunOk({"attention", kReadme, "--html", none, "--no-rank"});
  EXPECT_EQ(Count(ReadAll(plain), "data-importance="), 12);
  EXPECT_EQ(Count(ReadAll(plain), "<polyline"), 0);
  EXPECT_EQ(Count(ReadAll(ranked), "<polyline data-points=\"13\""), 1);
  EXPECT_EQ(Count(ReadAll(none), "data-importance="), 0);
  if (attnserve::testing::SkipBrowser()) return;
  std::optional<attnserve::testing::Dom> dom =
      attnserve::testing::RenderInChromium(ReadAll(ranked));
  ASSERT_TRUE(dom.has_value());
  EXPECT_EQ(dom->errors, "");
  EXPECT_EQ(dom->rendered, "12");  // every head's map, as before
  EXPECT_EQ(Count(dom->text, "<rect [^>]*data-importance="), 12);
  EXPECT_EQ(Count(dom->text, "<circle "), 13);
}

}  // namespace
}  // namespace attnserve::client
