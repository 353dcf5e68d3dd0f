#include "model/types.h"

#include "absl/strings/str_format.h"

namespace attnserve {

const char* PrecisionName(Precision p) {
  switch (p) {
    case Precision::kFloat32:
      return "fp32";
    case Precision::kBFloat16:
      return "bf16";
    case Precision::kInt8:
      return "int8";
  }
  return "?";
}

absl::StatusOr<Precision> ParsePrecision(const std::string& name) {
  for (Precision p :
       {Precision::kFloat32, Precision::kBFloat16, Precision::kInt8}) {
    if (name == PrecisionName(p)) return p;
  }
  return absl::InvalidArgumentError(
      absl::StrFormat("precision \"%s\" is not one of fp32, bf16, int8", name));
}

}  // namespace attnserve
