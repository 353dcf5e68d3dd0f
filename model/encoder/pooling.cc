#include "model/encoder/pooling.h"

#include <cmath>

#include "absl/strings/str_format.h"
#include "common/file.h"
#include "nlohmann/json.hpp"

namespace attnserve {

std::vector<float> Pool(PoolingMode mode, const float* hidden, int64_t t,
                        int64_t h, const std::vector<float>& pooler_weight,
                        const std::vector<float>& pooler_bias) {
  std::vector<float> out(h, 0.f);
  switch (mode) {
    case PoolingMode::kNone:
      return {};
    case PoolingMode::kCls:
      out.assign(hidden, hidden + h);
      break;
    case PoolingMode::kMean: {
      std::vector<double> sum(h, 0.0);
      for (int64_t r = 0; r < t; ++r) {
        for (int64_t c = 0; c < h; ++c) sum[c] += hidden[r * h + c];
      }
      for (int64_t c = 0; c < h; ++c) out[c] = static_cast<float>(sum[c] / t);
      break;
    }
    case PoolingMode::kPooler:
      for (int64_t n = 0; n < h; ++n) {
        double acc = pooler_bias[n];
        for (int64_t k = 0; k < h; ++k) {
          acc += double{pooler_weight[n * h + k]} * hidden[k];
        }
        out[n] = static_cast<float>(std::tanh(acc));
      }
      break;
  }
  return out;
}

void L2Normalize(std::vector<float>* v) {
  double norm = 0;
  for (float x : *v) norm += double{x} * x;
  norm = std::sqrt(norm);
  if (norm == 0) return;
  for (float& x : *v) x = static_cast<float>(x / norm);
}

namespace {

absl::StatusOr<nlohmann::json> ReadJson(const std::string& path, bool* found) {
  absl::StatusOr<std::string> text = ReadFile(path);
  *found = text.ok() || !absl::IsNotFound(text.status());
  if (!*found) return nlohmann::json();
  if (!text.ok()) return text.status();
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError(path + ": malformed JSON");
  }
  return j;
}

}  // namespace

absl::StatusOr<PoolingMode> ReadDefaultPooling(const std::string& dir) {
  bool found = false;
  absl::StatusOr<nlohmann::json> modules =
      ReadJson(dir + "/modules.json", &found);
  if (!modules.ok()) return modules.status();
  if (!found || !modules->is_array()) return PoolingMode::kCls;
  for (const nlohmann::json& module : *modules) {
    if (!module.is_object() || !module.contains("type") ||
        !module["type"].is_string() ||
        module["type"].get<std::string>().find("Pooling") ==
            std::string::npos) {
      continue;
    }
    const std::string sub =
        module.contains("path") && module["path"].is_string()
            ? module["path"].get<std::string>()
            : "1_Pooling";
    const std::string path = dir + "/" + sub + "/config.json";
    absl::StatusOr<nlohmann::json> config = ReadJson(path, &found);
    if (!config.ok()) return config.status();
    if (!found || !config->is_object()) {
      return absl::InvalidArgumentError(
          path + ": missing; modules.json names a Pooling module there");
    }
    auto flag = [&](const char* key) {
      return config->contains(key) && (*config)[key].is_boolean() &&
             (*config)[key].get<bool>();
    };
    if (flag("pooling_mode_mean_tokens")) return PoolingMode::kMean;
    if (flag("pooling_mode_cls_token")) return PoolingMode::kCls;
    return absl::UnimplementedError(absl::StrFormat(
        "%s: only pooling_mode_mean_tokens and pooling_mode_cls_token are "
        "supported",
        path));
  }
  return PoolingMode::kCls;
}

}  // namespace attnserve
