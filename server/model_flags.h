// What the model flags of `attnserve` say, before anything is loaded:
//
//   --model=[NAME=]DIR        repeatable; NAME defaults to DIR's base name
//   --model_repository=DIR    every subdirectory of DIR with a config.json
//                             is a model named after the subdirectory
//   --model_precision=NAME=P  repeatable; P in fp32|bf16|int8|auto, for
//                             model NAME (others take --precision)
//
// Abseil's flags keep the last value of a repeated flag, so main.cc first
// joins every occurrence of the repeatable ones into one comma-separated
// value (JoinRepeatedFlags): `--model=a=/m/a --model=/m/b` and
// `--model=a=/m/a,/m/b` mean the same.
//
// Pure functions (the repository scan reads a directory); any thread.
#ifndef ATTNSERVE_SERVER_MODEL_FLAGS_H_
#define ATTNSERVE_SERVER_MODEL_FLAGS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace attnserve {

struct ModelSpec {
  std::string name;  // what clients ask for
  std::string dir;   // the Hugging Face model directory
};

// "[NAME=]DIR". An explicit NAME is letters, digits, '.', '_' and '-';
// without one the name is DIR's base name. INVALID_ARGUMENT naming the flag
// value for an empty DIR or a bad NAME.
absl::StatusOr<ModelSpec> ParseModelSpec(absl::string_view text);

// The models of a repository: every subdirectory of `dir` holding a
// config.json, named after the subdirectory, sorted by name. NOT_FOUND when
// `dir` cannot be read, INVALID_ARGUMENT when it holds no model.
absl::StatusOr<std::vector<ModelSpec>> ScanModelRepository(
    const std::string& dir);

// "NAME=PRECISION" entries → NAME → PRECISION (the text, checked by the
// caller). INVALID_ARGUMENT for an entry without '=' or a NAME given twice.
absl::StatusOr<std::map<std::string, std::string>> ParseModelPrecisions(
    const std::vector<std::string>& entries);

// Every name once, and every name of `precisions` and `default_model` (when
// not empty) among `specs`: INVALID_ARGUMENT naming the duplicate (and both
// directories) or the unknown name (and the served ones). Checked before
// anything is loaded.
absl::Status CheckModelSpecs(
    const std::vector<ModelSpec>& specs,
    const std::map<std::string, std::string>& precisions,
    const std::string& default_model = "");

// `args` (argv without argv[0]) with every occurrence of each of `flags`
// ("--NAME=V", "-NAME=V", "--NAME V") joined into one "--NAME=V1,V2,..."
// at the place of the first; arguments after "--" are left alone.
std::vector<std::string> JoinRepeatedFlags(
    const std::vector<std::string>& args,
    const std::vector<std::string>& flags);

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_MODEL_FLAGS_H_
