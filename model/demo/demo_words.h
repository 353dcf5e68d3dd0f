// The constructed demo model's word list, model/demo/words.txt, compiled in
// at build time by cmake/embed.cmake (model/CMakeLists.txt), so
// make_demo_model needs no file next to it. Any thread.
#ifndef ATTNSERVE_MODEL_DEMO_DEMO_WORDS_H_
#define ATTNSERVE_MODEL_DEMO_DEMO_WORDS_H_

#include "absl/strings/string_view.h"

namespace attnserve {

// Exactly the bytes of model/demo/words.txt: "#" comment lines, then one
// "word<TAB>tag,tag" line per word.
absl::string_view DemoWordsText();

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_DEMO_DEMO_WORDS_H_
