// The table of every target, for the regression test (fuzz_targets.h). Kept
// apart from the targets so that a fuzz binary links only its own target's
// libraries: the parsers of files need neither gRPC nor oneDNN.
#include "tests/fuzz/fuzz_targets.h"

namespace attnserve::fuzz {

const std::vector<Target>& AllTargets() {
  static const auto* targets = new std::vector<Target>{
      {"safetensors", &Safetensors},
      {"config", &Config},
      {"tokenizer_text", &TokenizerText},
      {"vocab_files", &VocabFiles},
      {"request", &Request},
      {"oip_request", &OipRequest},
  };
  return *targets;
}

}  // namespace attnserve::fuzz
