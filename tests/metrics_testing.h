// Reading a server's /metrics in tests: fetched with curl (the real HTTP
// client an operator would use), parsed into samples. Header-only.
#ifndef ATTNSERVE_TESTS_METRICS_TESTING_H_
#define ATTNSERVE_TESTS_METRICS_TESTING_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/process_testing.h"

namespace attnserve::testing {

// One line of the text exposition format: name{labels} value.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// The body of GET http://127.0.0.1:PORT/PATH and its HTTP status (0 when
// curl failed).
struct HttpResponse {
  int status = 0;
  std::string body;
};

inline HttpResponse HttpGet(int port, const std::string& path) {
  // The status code goes on a last line of its own.
  CommandResult r = RunShell(
      absl::StrCat("curl -s --max-time 10 -w '\\n%{http_code}' ",
                   ShellQuote(absl::StrCat("http://127.0.0.1:", port, path))));
  HttpResponse response;
  const size_t newline = r.output.rfind('\n');
  if (r.status != 0 || newline == std::string::npos) {
    response.body = r.output;
    return response;
  }
  (void)absl::SimpleAtoi(r.output.substr(newline + 1), &response.status);
  response.body = r.output.substr(0, newline);
  return response;
}

// Samples of an exposition text (comments skipped). Label values here never
// hold '"' or ',' (method names, status codes, model labels).
inline std::vector<Sample> ParseSamples(absl::string_view text) {
  std::vector<Sample> samples;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "#")) continue;
    Sample sample;
    const size_t space = line.rfind(' ');
    if (space == absl::string_view::npos) continue;
    absl::string_view series = line.substr(0, space);
    (void)absl::SimpleAtod(line.substr(space + 1), &sample.value);
    const size_t brace = series.find('{');
    sample.name = std::string(series.substr(0, brace));
    if (brace != absl::string_view::npos) {
      absl::string_view labels = series.substr(brace + 1);
      labels = absl::StripSuffix(labels, "}");
      for (absl::string_view pair :
           absl::StrSplit(labels, ',', absl::SkipEmpty())) {
        const size_t eq = pair.find('=');
        if (eq == absl::string_view::npos) continue;
        sample.labels[std::string(pair.substr(0, eq))] =
            std::string(absl::StripSuffix(
                absl::StripPrefix(pair.substr(eq + 1), "\""), "\""));
      }
    }
    samples.push_back(std::move(sample));
  }
  return samples;
}

// The value of the sample `name` whose labels include `labels`; nullopt when
// there is none.
inline std::optional<double> Value(
    const std::vector<Sample>& samples, const std::string& name,
    const std::map<std::string, std::string>& labels = {}) {
  for (const Sample& s : samples) {
    if (s.name != name) continue;
    bool match = true;
    for (const auto& [key, value] : labels) {
      auto it = s.labels.find(key);
      if (it == s.labels.end() || it->second != value) match = false;
    }
    if (match) return s.value;
  }
  return std::nullopt;
}

// GET /metrics, parsed; a test failure when it does not answer 200.
inline std::vector<Sample> Scrape(int metrics_port) {
  HttpResponse response = HttpGet(metrics_port, "/metrics");
  EXPECT_EQ(response.status, 200) << response.body;
  return ParseSamples(response.body);
}

}  // namespace attnserve::testing

#endif  // ATTNSERVE_TESTS_METRICS_TESTING_H_
