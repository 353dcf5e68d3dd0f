// Opens an HTML page in headless Chromium and reads back the DOM after its
// scripts ran: the harness of the attention-page tests (attention_html_test,
// attnctl_test).
//
// Chromium is Debian's `chromium` (scripts/install_deps.sh --test installs
// it; ATTNSERVE_CHROMIUM overrides the path). Without it RenderInChromium
// adds a failure saying so; tests call SkipBrowser() first, which is true
// when ATTNSERVE_SKIP_BROWSER=1. Each run is bounded by `timeout 60`, offline
// (no network, sync, component updates) and uses a fresh profile directory.
#ifndef ATTNSERVE_TESTS_CHROMIUM_H_
#define ATTNSERVE_TESTS_CHROMIUM_H_

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <regex>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace attnserve::testing {

struct Dom {
  std::string text;      // the dumped DOM
  std::string rendered;  // body[data-rendered]
  std::string errors;    // body[data-errors]
  bool has_rollout = false;
};

inline std::string Chromium() {
  if (const char* path = std::getenv("ATTNSERVE_CHROMIUM")) return path;
  for (const char* path : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (access(path, X_OK) == 0) return path;
  }
  return "";
}

inline bool SkipBrowser() {
  const char* skip = std::getenv("ATTNSERVE_SKIP_BROWSER");
  return skip != nullptr && std::string(skip) == "1";
}

// A temporary directory removed at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "attn_html_XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::string Attribute(const std::string& tag, const std::string& name) {
  std::smatch m;
  if (std::regex_search(tag, m, std::regex(" " + name + "=\"([^\"]*)\""))) {
    return m[1];
  }
  return "(absent)";
}

// Writes `html` to a file, loads it in headless Chromium and returns the
// DOM after the load event (scripts have run). Adds a failure and returns
// nothing when Chromium is missing or fails.
inline std::optional<Dom> RenderInChromium(const std::string& html) {
  const std::string chromium = Chromium();
  if (chromium.empty() || access(chromium.c_str(), X_OK) != 0) {
    ADD_FAILURE() << "Chromium not found at "
                  << (chromium.empty() ? "/usr/bin/chromium" : chromium)
                  << ": install it "
                     "(scripts/install_deps.sh --test, or apt-get install "
                     "chromium), point ATTNSERVE_CHROMIUM at it, or set "
                     "ATTNSERVE_SKIP_BROWSER=1 to skip the browser tests";
    return std::nullopt;
  }
  TempDir dir;
  if (dir.path().empty()) {
    ADD_FAILURE() << "mkdtemp failed";
    return std::nullopt;
  }
  const std::string page = dir.path() + "/page.html";
  std::ofstream(page, std::ios::binary) << html;
  const std::string profile = dir.path() + "/profile";
  const std::string log = dir.path() + "/chromium.log";
  // Every flag keeps the run offline, quiet and independent of the user's
  // profile; `timeout` bounds it.
  const std::string command = absl::StrCat(
      "timeout 60 '", chromium,
      "' --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
      "--disable-background-networking --disable-component-update "
      "--disable-sync --disable-dev-shm-usage --disable-extensions "
      "--user-data-dir='",
      profile, "' --dump-dom 'file://", page, "' 2>'", log, "'");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "popen failed: " << command;
    return std::nullopt;
  }
  Dom dom;
  char buffer[65536];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0)
    dom.text.append(buffer, n);
  const int status = pclose(pipe);
  std::ifstream log_file(log);
  const std::string log_text((std::istreambuf_iterator<char>(log_file)),
                             std::istreambuf_iterator<char>());
  if (status != 0 || dom.text.empty()) {
    ADD_FAILURE() << "Chromium exited with status " << status
                  << (WIFEXITED(status) && WEXITSTATUS(status) == 124
                          ? " (timed out after 60 s)"
                          : "")
                  << " and " << dom.text.size()
                  << " bytes of DOM.\ncommand: " << command << "\nstderr:\n"
                  << log_text;
    return std::nullopt;
  }
  std::smatch body;
  if (!std::regex_search(dom.text, body, std::regex("<body[^>]*>"))) {
    ADD_FAILURE() << "no <body> in the dumped DOM:\n"
                  << dom.text.substr(0, 2000);
    return std::nullopt;
  }
  dom.rendered = Attribute(body[0], "data-rendered");
  dom.errors = Attribute(body[0], "data-errors");
  dom.has_rollout = Attribute(body[0], "data-rollout") == "1";
  return dom;
}

}  // namespace attnserve::testing

#endif  // ATTNSERVE_TESTS_CHROMIUM_H_
