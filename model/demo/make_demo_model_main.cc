// make_demo_model DIR: writes a small random BERT checkpoint in Hugging Face
// layout (config.json, model.safetensors, vocab.txt) for trying attnserve.
#include <cstdio>
#include <string>

#include "model/demo/demo_model.h"

int main(int argc, char** argv) {
  if (argc != 2 || std::string(argv[1]).rfind("-", 0) == 0) {
    std::fprintf(stderr,
                 "usage: make_demo_model DIR\n"
                 "Writes a small random BERT (4 layers, 8 heads, hidden 128) "
                 "in Hugging Face layout into DIR.\n");
    return 2;
  }
  absl::Status status = attnserve::WriteDemoModel(argv[1]);
  if (!status.ok()) {
    std::fprintf(stderr, "make_demo_model: %s\n", status.ToString().c_str());
    return 1;
  }
  std::printf("make_demo_model: wrote %s\n", argv[1]);
  return 0;
}
