// make_demo_model [--random] DIR: writes a small BERT checkpoint in Hugging
// Face layout (config.json, model.safetensors, vocab.txt) for trying
// attnserve: by default the constructed model whose heads have known jobs
// (docs/demo-model.md), with --random a random one.
#include <cstdio>
#include <string>

#include "model/demo/demo_model.h"

int main(int argc, char** argv) {
  attnserve::DemoModelOptions options;
  options.kind = attnserve::DemoModelKind::kConstructed;
  std::string dir;
  bool usage = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--random") {
      options.kind = attnserve::DemoModelKind::kRandom;
    } else if (arg.rfind("-", 0) == 0 || !dir.empty()) {
      usage = true;
    } else {
      dir = arg;
    }
  }
  if (usage || dir.empty()) {
    std::fprintf(
        stderr,
        "usage: make_demo_model [--random] DIR\n"
        "Writes a small BERT in Hugging Face layout into DIR: by default the\n"
        "constructed model (3 layers x 4 heads, hidden 512, each head with a\n"
        "known job, see docs/demo-model.md); --random: random weights (4\n"
        "layers, 8 heads, hidden 128).\n");
    return 2;
  }
  absl::Status status = attnserve::WriteDemoModel(dir, options);
  if (!status.ok()) {
    std::fprintf(stderr, "make_demo_model: %s\n", status.ToString().c_str());
    return 1;
  }
  std::printf("make_demo_model: wrote %s (%s)\n", dir.c_str(),
              options.kind == attnserve::DemoModelKind::kRandom
                  ? "random"
                  : "constructed");
  return 0;
}
