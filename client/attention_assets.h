// The attention page's style and scripts, each in its own file under
// client/assets/ and compiled in at build time: cmake/embed.cmake writes
// one source per file into the build directory (see client/CMakeLists.txt),
// so editing an asset rebuilds attnctl with the new bytes.
//
// Each returns exactly the file's bytes (static storage, never null). Any
// thread.
#ifndef ATTNSERVE_CLIENT_ATTENTION_ASSETS_H_
#define ATTNSERVE_CLIENT_ATTENTION_ASSETS_H_

#include "absl/strings/string_view.h"

namespace attnserve::client {

// client/assets/attention_errors.js: runs first, in <head>, and routes every
// uncaught error into body[data-errors].
absl::string_view AttentionErrorsScript();

// client/assets/attention.css: the page's whole style sheet.
absl::string_view AttentionStyle();

// client/assets/attention.js: draws the page from the JSON in #attn-data.
absl::string_view AttentionScript();

}  // namespace attnserve::client

#endif  // ATTNSERVE_CLIENT_ATTENTION_ASSETS_H_
