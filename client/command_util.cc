#include "client/command_util.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/attention_html.h"
#include "client/json_format.h"
#include "client/prune_curve.h"
#include "client/tables.h"
#include "client/tensors.h"

namespace attnserve::client {

absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      s.error_message());
}

// Every call: the --timeout deadline, and the bearer token when there is
// one.
void SetDeadline(const Flags& f, grpc::ClientContext* context) {
  context->set_deadline(
      std::chrono::system_clock::now() +
      std::chrono::microseconds(static_cast<int64_t>(f.timeout_seconds * 1e6)));
  if (!f.token.empty()) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", f.token));
  }
}

// --verbose: the server's timings of a finished call, one line on stderr
// ("attnctl: Encode: x-total-time=5.100 ms ..."), in the order it sent them.
void PrintTimings(const Flags& f, absl::string_view method,
                  const grpc::ClientContext& context) {
  if (!f.verbose) return;
  std::string line = absl::StrCat("attnctl: ", method, ":");
  for (const auto& [key, value] : context.GetServerInitialMetadata()) {
    const absl::string_view k(key.data(), key.size());
    if (!absl::StartsWith(k, "x-")) continue;
    absl::StrAppend(&line, " ", k, "=",
                    absl::string_view(value.data(), value.size()),
                    absl::EndsWith(k, "-time") ? " ms" : "");
  }
  std::fprintf(stderr, "%s\n", line.c_str());
}

absl::Status BadResponse(absl::string_view message) {
  return absl::DataLossError(absl::StrCat("bad response: ", message));
}

absl::StatusOr<v1::ModelInfo> GetInfo(const Flags& f,
                                      v1::Encoder::StubInterface& stub) {
  grpc::ClientContext context;
  SetDeadline(f, &context);
  v1::GetModelInfoRequest request;
  request.set_model(f.model);
  v1::ModelInfo info;
  grpc::Status status = stub.GetModelInfo(&context, request, &info);
  if (!status.ok()) return FromGrpc(status);
  return info;
}

absl::StatusOr<v1::EncodeResponse> CallEncode(
    const Flags& f, v1::Encoder::StubInterface& stub,
    const v1::EncodeRequest& request) {
  grpc::ClientContext context;
  SetDeadline(f, &context);
  v1::EncodeResponse response;
  grpc::Status status = stub.Encode(&context, request, &response);
  PrintTimings(f, "Encode", context);
  if (!status.ok()) return FromGrpc(status);
  if (response.results_size() != request.sequences_size()) {
    return BadResponse(absl::StrCat(response.results_size(), " results for ",
                                    request.sequences_size(), " sequences"));
  }
  return response;
}

// The head_mask of the request: --mask with layer:* expanded to every head
// of the layer (which asks the server how many heads a layer has).
absl::StatusOr<std::vector<std::pair<int, int>>> ExpandMask(
    const Flags& f, v1::Encoder::StubInterface& stub) {
  std::vector<std::pair<int, int>> out;
  int num_heads = -1;
  for (const auto& [layer, head] : f.mask) {
    if (head >= 0) {
      out.emplace_back(layer, head);
      continue;
    }
    if (num_heads < 0) {
      absl::StatusOr<v1::ModelInfo> info = GetInfo(f, stub);
      if (!info.ok()) return info.status();
      num_heads = info->num_heads();
    }
    for (int h = 0; h < num_heads; ++h) out.emplace_back(layer, h);
  }
  return out;
}

// The request common to encode, similarity, heads and attention.
absl::StatusOr<v1::EncodeRequest> BaseRequest(
    const Flags& f, v1::Encoder::StubInterface& stub) {
  v1::EncodeRequest request;
  request.set_model(f.model);
  for (v1::Sequence& seq : Sequences(f)) {
    *request.add_sequences() = std::move(seq);
  }
  request.set_truncate(f.truncate);
  request.set_pooling(f.pooling);
  request.set_normalize(f.normalize);
  absl::StatusOr<std::vector<std::pair<int, int>>> mask = ExpandMask(f, stub);
  if (!mask.ok()) return mask.status();
  for (const auto& [layer, head] : *mask) {
    v1::HeadRef* ref = request.add_head_mask();
    ref->set_layer(layer);
    ref->set_head(head);
  }
  return request;
}

// Labels of the returned layers or heads: what was asked, or 0..n-1.
std::vector<int32_t> Labels(const std::vector<int32_t>& asked, int64_t n) {
  if (!asked.empty()) return asked;
  std::vector<int32_t> all(n);
  for (int64_t i = 0; i < n; ++i) all[i] = static_cast<int32_t>(i);
  return all;
}

// The tokens of a result, or its ids as text when the server sent none.
std::vector<std::string> ResultTokens(const v1::SequenceResult& r,
                                      const std::vector<int32_t>& ids) {
  if (r.tokens_size() > 0) return {r.tokens().begin(), r.tokens().end()};
  std::vector<std::string> out;
  if (r.token_ids_size() > 0) {
    for (int32_t id : r.token_ids()) out.push_back(absl::StrCat(id));
  } else {
    for (int32_t id : ids) out.push_back(absl::StrCat(id));
  }
  return out;
}

// "[CLS] the cat [SEP]", cut after `max` tokens.
std::string TokenLine(const std::vector<std::string>& tokens, size_t max) {
  std::vector<std::string> shown;
  for (size_t i = 0; i < tokens.size() && i < max; ++i) {
    shown.push_back(Printable(tokens[i]));
  }
  if (tokens.size() > max) shown.push_back("...");
  return absl::StrJoin(shown, " ");
}

// What a sequence of the input is, for headings: the quoted text, or ids.
std::string InputLabel(const Flags& f, size_t s) {
  if (s < f.texts.size()) {
    std::string label = absl::StrCat("\"", Printable(f.texts[s]), "\"");
    if (!f.pair.empty()) {
      absl::StrAppend(&label, " + \"", Printable(f.pair), "\"");
    }
    return label;
  }
  return absl::StrCat("ids ", absl::StrJoin(f.ids[s - f.texts.size()], ","));
}

// "mean" for POOLING_MEAN.
std::string PoolingName(v1::Pooling p) {
  return absl::AsciiStrToLower(
      absl::StripPrefix(v1::Pooling_Name(p), "POOLING_"));
}

// ---- info -------------------------------------------------------------------

absl::Status WriteHtml(const std::string& path, const std::string& html) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << html;
  file.close();
  if (!file) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write --html ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace attnserve::client
