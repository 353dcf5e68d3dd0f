#include "client/head_commands.h"

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
#include "client/command_util.h"
#include "client/json_format.h"
#include "client/prune_curve.h"
#include "client/tables.h"
#include "client/tensors.h"

namespace attnserve::client {

absl::Status Heads(const Flags& f, v1::Encoder::StubInterface& stub,
                   std::string* out) {
  absl::StatusOr<v1::EncodeRequest> request = BaseRequest(f, stub);
  if (!request.ok()) return request.status();
  request->set_pooling(v1::POOLING_NONE);  // --pooling is RankHeads'
  request->set_normalize(false);
  v1::AttentionRequest* a = request->mutable_attention();
  a->mutable_layers()->Add(f.layers.begin(), f.layers.end());
  a->mutable_heads()->Add(f.heads.begin(), f.heads.end());
  a->set_stats(true);
  a->set_omit_maps(true);
  absl::StatusOr<v1::EncodeResponse> response = CallEncode(f, stub, *request);
  if (!response.ok()) return response.status();

  v1::RankHeadsResponse ranking;
  if (!f.no_rank) {
    v1::RankHeadsRequest rank_request;
    rank_request.set_model(f.model);
    rank_request.set_pooling(f.pooling);
    rank_request.set_truncate(f.truncate);
    for (v1::Sequence& seq : Sequences(f)) {
      *rank_request.add_sequences() = std::move(seq);
    }
    grpc::ClientContext context;
    SetDeadline(f, &context);
    grpc::Status status = stub.RankHeads(&context, rank_request, &ranking);
    PrintTimings(f, "RankHeads", context);
    if (!status.ok()) return FromGrpc(status);
  }

  if (f.json) {
    absl::StatusOr<std::string> json = EncodeResponseJson(*response);
    if (!json.ok()) return json.status();
    absl::StrAppend(out, "{\"stats\": ", *json, ", \"ranking\": ",
                    f.no_rank ? "null" : JsonMessage(ranking), "}\n");
    return absl::OkStatus();
  }
  for (int s = 0; s < response->results_size(); ++s) {
    const v1::SequenceResult& r = response->results(s);
    const std::vector<int32_t> no_ids;
    const std::vector<std::string> tokens = ResultTokens(
        r, s >= static_cast<int>(f.texts.size()) ? f.ids[s - f.texts.size()]
                                                 : no_ids);
    absl::StrAppend(out, s > 0 ? "\n" : "", "sequence ", s, ": ",
                    InputLabel(f, s), "\n  ", tokens.size(),
                    " tokens: ", TokenLine(tokens), "\n\n");
    if (r.head_stats_size() == 0) {
      return BadResponse("no head_stats (attention.stats = true was asked)");
    }
    absl::StrAppend(out, FormatHeadStats(r, tokens.size()));
  }
  if (!f.no_rank) {
    absl::StrAppend(
        out, "\nRankHeads, pooling ",
        f.pooling == v1::POOLING_UNSPECIFIED ? "mean" : PoolingName(f.pooling),
        response->results_size() > 1
            ? absl::StrCat(", mean over ", response->results_size(),
                           " sequences")
            : "",
        "\n");
    absl::StrAppend(out, FormatRanking(ranking, f.top > 0 ? f.top : 10));
  }
  return absl::OkStatus();
}

// ---- prune-curve
// -------------------------------------------------------------

absl::StatusOr<CurveResult> RankAndCurve(const Flags& f,
                                         v1::Encoder::StubInterface& stub,
                                         bool with_curve) {
  const v1::Pooling pooling =
      f.pooling == v1::POOLING_UNSPECIFIED ? v1::POOLING_MEAN : f.pooling;
  if (pooling == v1::POOLING_NONE) {
    return absl::InvalidArgumentError(
        "the pruning curve compares pooled outputs: --pooling none gives none");
  }
  absl::StatusOr<v1::ModelInfo> info = GetInfo(f, stub);
  if (!info.ok()) return info.status();
  CurveResult result;
  result.layers = info->num_layers();
  result.heads = info->num_heads();

  v1::RankHeadsRequest rank_request;
  rank_request.set_model(f.model);
  rank_request.set_pooling(pooling);
  rank_request.set_truncate(f.truncate);
  for (v1::Sequence& seq : Sequences(f)) {
    *rank_request.add_sequences() = std::move(seq);
  }
  v1::RankHeadsResponse ranking;
  {
    grpc::ClientContext context;
    SetDeadline(f, &context);
    grpc::Status status = stub.RankHeads(&context, rank_request, &ranking);
    if (!status.ok()) return FromGrpc(status);
  }
  result.model = ranking.model();
  for (const v1::HeadImportance& h : ranking.heads()) {
    result.scores.push_back({h.layer(), h.head(), h.importance()});
  }
  if (!with_curve) return result;

  // Least important first.
  const std::vector<HeadScore> order(result.scores.rbegin(),
                                     result.scores.rend());
  const int n = order.size();
  result.step = f.step > 0 ? f.step : std::max(1, (n + 23) / 24);
  std::vector<std::vector<float>> reference;
  for (int k : CurveSteps(n, result.step)) {
    v1::EncodeRequest request;
    request.set_model(f.model);
    request.set_truncate(f.truncate);
    request.set_pooling(pooling);
    for (v1::Sequence& seq : Sequences(f)) {
      *request.add_sequences() = std::move(seq);
    }
    for (int i = 0; i < k; ++i) {
      v1::HeadRef* ref = request.add_head_mask();
      ref->set_layer(order[i].layer);
      ref->set_head(order[i].head);
    }
    absl::StatusOr<v1::EncodeResponse> response = CallEncode(f, stub, request);
    if (!response.ok()) return response.status();
    CurvePoint point;
    point.masked = k;
    point.kept = n > 0 ? double(n - k) / n : 0;
    double sum = 0;
    point.min_cosine = 1;
    for (int s = 0; s < response->results_size(); ++s) {
      absl::StatusOr<Array> e =
          DecodeTensor(response->results(s).embedding(), "embedding");
      if (!e.ok()) return e.status();
      if (k == 0) reference.push_back(e->values);
      if (size_t(s) >= reference.size()) {
        return BadResponse("more results than sequences");
      }
      const double c = Cosine(e->values, reference[s]);
      sum += c;
      point.min_cosine = std::min(point.min_cosine, c);
    }
    point.cosine = sum / std::max(1, response->results_size());
    result.curve.push_back(point);
  }
  return result;
}

absl::Status PruneCurve(const Flags& f, v1::Encoder::StubInterface& stub,
                        std::string* out) {
  absl::StatusOr<CurveResult> r = RankAndCurve(f, stub, /*with_curve=*/true);
  if (!r.ok()) return r.status();
  const std::vector<HeadScore> order(r->scores.rbegin(), r->scores.rend());
  const size_t texts = f.texts.size() + f.ids.size();
  const std::string pooling =
      f.pooling == v1::POOLING_UNSPECIFIED ? "mean" : PoolingName(f.pooling);
  if (f.json) {
    std::vector<std::string> points;
    for (const CurvePoint& p : r->curve) {
      points.push_back(absl::StrCat(
          "{\"masked\": ", p.masked, ", \"kept\": ", JsonNumber(p.kept),
          ", \"cosine\": ", JsonNumber(p.cosine),
          ", \"min_cosine\": ", JsonNumber(p.min_cosine), "}"));
    }
    absl::StrAppend(out, "{\"model\": ", JsonString(r->model),
                    ", \"pooling\": ", JsonString(pooling), ", \"curve\": [",
                    absl::StrJoin(points, ", "), "]}\n");
  } else {
    absl::StrAppend(out, "pruning curve: model ", r->model, ", ", order.size(),
                    " heads ranked, pooling ", pooling, ", ", texts, " text",
                    texts == 1 ? "" : "s", ", step ", r->step, "\n",
                    "cosine of the pooled output with the k least important "
                    "heads masked, against none masked\n",
                    FormatPruneCurve(r->curve, order, texts));
  }
  if (f.html.empty()) return absl::OkStatus();
  std::string title = f.texts.empty() ? InputLabel(f, 0) : f.texts[0];
  if (texts > 1) absl::StrAppend(&title, " (+", texts - 1, " more)");
  absl::StatusOr<std::string> html = RenderPruneCurveHtml(
      title,
      absl::StrCat("model ", r->model, " · ", order.size(), " heads · pooling ",
                   pooling, " · ", texts, " text", texts == 1 ? "" : "s",
                   " · made by attnctl prune-curve"),
      r->curve, r->scores, r->layers, r->heads);
  if (!html.ok()) return html.status();
  if (absl::Status st = WriteHtml(f.html, *html); !st.ok()) return st;
  if (!f.json) absl::StrAppend(out, "wrote ", f.html, "\n");
  return absl::OkStatus();
}

// ---- attention --------------------------------------------------------------

}  // namespace attnserve::client
