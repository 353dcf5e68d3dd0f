#include "server/model_flags.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace attnserve {
namespace {

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

std::string BaseName(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const size_t slash = dir.find_last_of('/');
  return slash == std::string::npos ? dir : dir.substr(slash + 1);
}

}  // namespace

absl::StatusOr<ModelSpec> ParseModelSpec(absl::string_view text) {
  ModelSpec spec;
  const size_t eq = text.find('=');
  if (eq == absl::string_view::npos) {
    spec.dir = std::string(text);
  } else {
    spec.name = std::string(text.substr(0, eq));
    spec.dir = std::string(text.substr(eq + 1));
    if (spec.name.empty() ||
        !std::all_of(spec.name.begin(), spec.name.end(), IsNameChar)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--model=", text, ": the name \"", spec.name,
          "\" must be letters, digits, '.', '_' or '-' (--model=NAME=DIR)"));
    }
  }
  if (spec.dir.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--model=", text, ": no directory (--model=[NAME=]DIR)"));
  }
  if (spec.name.empty()) spec.name = BaseName(spec.dir);
  if (spec.name.empty() || spec.name == "/" || spec.name == "." ||
      spec.name == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat("--model=", text,
                     ": the directory gives no usable name; name the model "
                     "(--model=NAME=DIR)"));
  }
  return spec;
}

absl::StatusOr<std::vector<ModelSpec>> ScanModelRepository(
    const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code error;
  fs::directory_iterator it(dir, error);
  if (error) {
    return absl::NotFoundError(absl::StrCat("--model_repository=", dir,
                                            ": cannot read it (",
                                            error.message(), ")"));
  }
  std::vector<ModelSpec> specs;
  for (const fs::directory_entry& entry : it) {
    std::error_code e;
    if (!entry.is_directory(e)) continue;
    if (!fs::is_regular_file(entry.path() / "config.json", e)) continue;
    specs.push_back({entry.path().filename().string(), entry.path().string()});
  }
  if (specs.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--model_repository=", dir,
                     " holds no model (no subdirectory has a config.json)"));
  }
  std::sort(
      specs.begin(), specs.end(),
      [](const ModelSpec& a, const ModelSpec& b) { return a.name < b.name; });
  return specs;
}

absl::StatusOr<std::map<std::string, std::string>> ParseModelPrecisions(
    const std::vector<std::string>& entries) {
  std::map<std::string, std::string> precisions;
  for (const std::string& entry : entries) {
    const size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == entry.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--model_precision=", entry,
                       ": expected NAME=PRECISION (fp32, bf16, int8 or auto)"));
    }
    const std::string name = entry.substr(0, eq);
    if (!precisions.emplace(name, entry.substr(eq + 1)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("--model_precision names model \"", name, "\" twice"));
    }
  }
  return precisions;
}

absl::Status CheckModelSpecs(
    const std::vector<ModelSpec>& specs,
    const std::map<std::string, std::string>& precisions,
    const std::string& default_model) {
  for (size_t i = 0; i < specs.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (specs[i].name == specs[j].name) {
        return absl::InvalidArgumentError(absl::StrCat(
            "two models are named \"", specs[i].name, "\" (", specs[j].dir,
            " and ", specs[i].dir, "): name them apart with --model=NAME=DIR"));
      }
    }
  }
  auto served = [&](const std::string& name) {
    return std::any_of(specs.begin(), specs.end(),
                       [&](const ModelSpec& s) { return s.name == name; });
  };
  const std::string names =
      absl::StrJoin(specs, ", ", [](std::string* out, const ModelSpec& s) {
        absl::StrAppend(out, "\"", s.name, "\"");
      });
  for (const auto& [name, precision] : precisions) {
    if (!served(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--model_precision=", name, "=", precision,
                       ": no model \"", name, "\" is served; served: ", names));
    }
  }
  if (!default_model.empty() && !served(default_model)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--default_model=", default_model,
                     " is not a served model; served: ", names));
  }
  return absl::OkStatus();
}

std::vector<std::string> JoinRepeatedFlags(
    const std::vector<std::string>& args,
    const std::vector<std::string>& flags) {
  std::vector<std::string> out;
  std::map<std::string, size_t> first;  // flag → its index in `out`
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      out.insert(out.end(), args.begin() + i, args.end());
      break;
    }
    bool joined = false;
    for (const std::string& flag : flags) {
      std::string value;
      bool match = false;
      for (const std::string& dashes : {std::string("--"), std::string("-")}) {
        const std::string prefix = dashes + flag;
        if (absl::StartsWith(arg, prefix + "=")) {
          value = arg.substr(prefix.size() + 1);
          match = true;
        } else if (arg == prefix && i + 1 < args.size()) {
          value = args[++i];
          match = true;
        }
        if (match) break;
      }
      if (!match) continue;
      auto [it, inserted] = first.emplace(flag, out.size());
      if (inserted) {
        out.push_back(absl::StrCat("--", flag, "=", value));
      } else {
        absl::StrAppend(&out[it->second], ",", value);
      }
      joined = true;
      break;
    }
    if (!joined) out.push_back(arg);
  }
  return out;
}

}  // namespace attnserve
