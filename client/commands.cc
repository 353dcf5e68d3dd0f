#include "client/commands.h"

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
#include "client/head_commands.h"
#include "client/json_format.h"
#include "client/prune_curve.h"
#include "client/tables.h"
#include "client/tensors.h"

namespace attnserve::client {
namespace {

absl::Status Info(const Flags& f, v1::Encoder::StubInterface& stub,
                  std::string* out) {
  absl::StatusOr<v1::ModelInfo> info = GetInfo(f, stub);
  if (!info.ok()) return info.status();
  if (f.json) {
    absl::StrAppend(out, JsonMessage(*info), "\n");
    return absl::OkStatus();
  }
  const v1::ModelInfo& i = *info;
  absl::StrAppendFormat(
      out,
      "model                    %s\n"
      "family                   %s (model_type %s)\n"
      "layers                   %d\n"
      "heads                    %d (head size %d)\n"
      "hidden size              %d\n"
      "intermediate size        %d\n"
      "vocab size               %d\n"
      "type vocab size          %d\n"
      "max position embeddings  %d\n"
      "max tokens               %d\n"
      "stored weights           %s\n"
      "compute precision        %s\n"
      "pooler                   %s\n"
      "tokenizer                %s\n"
      "default pooling          %s\n",
      i.name(), i.family(), i.model_type(), i.num_layers(), i.num_heads(),
      i.num_heads() > 0 ? i.hidden_size() / i.num_heads() : 0, i.hidden_size(),
      i.intermediate_size(), i.vocab_size(), i.type_vocab_size(),
      i.max_position_embeddings(), i.max_tokens(), i.weight_dtype(),
      i.precision(), i.has_pooler() ? "yes" : "no",
      i.has_tokenizer() ? "yes" : "no", v1::Pooling_Name(i.default_pooling()));
  if (i.pruned_heads_size() > 0) {
    std::vector<std::string> pruned;
    for (const v1::HeadRef& ref : i.pruned_heads()) {
      pruned.push_back(absl::StrCat(ref.layer(), ":", ref.head()));
    }
    absl::StrAppend(out, "heads per layer          ",
                    absl::StrJoin(i.heads_per_layer(), " "), "\n",
                    "pruned heads             ", absl::StrJoin(pruned, ","),
                    "\n");
  }
  return absl::OkStatus();
}

// ---- models -----------------------------------------------------------------

absl::Status Models(const Flags& f, v1::Encoder::StubInterface& stub,
                    std::string* out) {
  grpc::ClientContext context;
  SetDeadline(f, &context);
  v1::ListModelsResponse response;
  grpc::Status status =
      stub.ListModels(&context, v1::ListModelsRequest(), &response);
  if (!status.ok()) return FromGrpc(status);
  if (f.json) {
    absl::StrAppend(out, JsonMessage(response), "\n");
    return absl::OkStatus();
  }
  std::vector<std::vector<std::string>> rows = {{"model", "family", "layers",
                                                 "heads", "hidden", "precision",
                                                 "tokenizer", "max tokens"}};
  for (const v1::ModelInfo& m : response.models()) {
    rows.push_back({m.name() == response.default_model()
                        ? absl::StrCat(m.name(), " (default)")
                        : m.name(),
                    m.family(), absl::StrCat(m.num_layers()),
                    absl::StrCat(m.num_heads()), absl::StrCat(m.hidden_size()),
                    m.precision(), m.has_tokenizer() ? "yes" : "no",
                    absl::StrCat(m.max_tokens())});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) {
      width[c] = std::max(width[c], row[c].size());
    }
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      absl::StrAppend(&line, row[c],
                      std::string(width[c] - row[c].size() + 2, ' '));
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    absl::StrAppend(out, line, "\n");
  }
  if (response.default_model().empty() && response.models_size() > 1) {
    absl::StrAppend(out, "no default model: name one with --model=NAME\n");
  }
  return absl::OkStatus();
}

// ---- tokenize ---------------------------------------------------------------

absl::Status Tokenize(const Flags& f, v1::Encoder::StubInterface& stub,
                      std::string* out) {
  v1::TokenizeRequest request;
  request.set_model(f.model);
  request.set_truncate(f.truncate);
  for (v1::Sequence& seq : Sequences(f)) {
    *request.add_sequences() = std::move(seq);
  }
  grpc::ClientContext context;
  SetDeadline(f, &context);
  v1::TokenizeResponse response;
  grpc::Status status = stub.Tokenize(&context, request, &response);
  PrintTimings(f, "Tokenize", context);
  if (!status.ok()) return FromGrpc(status);
  if (response.results_size() != request.sequences_size()) {
    return BadResponse(absl::StrCat(response.results_size(), " results for ",
                                    request.sequences_size(), " sequences"));
  }
  if (f.json) {
    absl::StrAppend(out, JsonMessage(response), "\n");
    return absl::OkStatus();
  }
  for (int s = 0; s < response.results_size(); ++s) {
    const v1::TokenizedSequence& seq = response.results(s);
    absl::StatusOr<std::string> table =
        FormatTokenTable(seq, f.texts[s], f.pair);
    if (!table.ok()) return table.status();
    absl::StrAppend(out, s > 0 ? "\n" : "", "sequence ", s, ": ",
                    InputLabel(f, s), ", ", seq.token_ids_size(), " tokens\n",
                    *table);
  }
  return absl::OkStatus();
}

// ---- encode -----------------------------------------------------------------

absl::Status PrintAttention(const Flags& f, const v1::SequenceResult& r,
                            const std::vector<std::string>& tokens,
                            std::string* out) {
  absl::StatusOr<Array> a = DecodeTensor(r.attention(), "attention");
  if (!a.ok()) return a.status();
  if (a->shape.size() != 4) return BadResponse("attention is not 4-D");
  absl::StrAppend(out, "  attention ", ShapeString(a->shape), " ", a->dtype,
                  " [layers, heads, query, key]\n");
  AttentionRows rows;
  rows.maps = &*a;
  rows.layers = Labels(f.layers, a->shape[0]);
  rows.heads = Labels(f.heads, a->shape[1]);
  rows.rows = Labels(f.query_positions, a->shape[2]);
  rows.tokens = tokens;
  std::vector<int32_t> only = f.query_positions;
  int top_k = f.top > 0 ? f.top : (only.empty() ? 1 : 3);
  if (!f.query_words.empty()) {
    for (const std::string& word : f.query_words) {
      std::vector<int32_t> found = FindToken(tokens, word);
      if (found.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--query ", word, ": no such token in ", TokenLine(tokens)));
      }
      only.insert(only.end(), found.begin(), found.end());
    }
    if (f.top == 0) top_k = 3;
  }
  absl::StatusOr<std::string> text = FormatStrongestTargets(rows, only, top_k);
  if (!text.ok()) return BadResponse(text.status().message());
  for (absl::string_view line :
       absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    absl::StrAppend(out, "  ", line, "\n");
  }
  return absl::OkStatus();
}

absl::Status Encode(const Flags& f, v1::Encoder::StubInterface& stub,
                    std::string* out) {
  absl::StatusOr<v1::EncodeRequest> request = BaseRequest(f, stub);
  if (!request.ok()) return request.status();
  request->set_return_hidden_states(f.hidden);
  if (f.attention) {
    v1::AttentionRequest* a = request->mutable_attention();
    a->mutable_layers()->Add(f.layers.begin(), f.layers.end());
    a->mutable_heads()->Add(f.heads.begin(), f.heads.end());
    a->mutable_query_positions()->Add(f.query_positions.begin(),
                                      f.query_positions.end());
    a->set_dtype(f.fp16 ? v1::FLOAT16 : v1::FLOAT32);
  }
  absl::StatusOr<v1::EncodeResponse> response = CallEncode(f, stub, *request);
  if (!response.ok()) return response.status();
  if (f.json) {
    absl::StatusOr<std::string> json = EncodeResponseJson(*response);
    if (!json.ok()) return json.status();
    absl::StrAppend(out, *json);
    return absl::OkStatus();
  }
  absl::StrAppend(out, "model ", response->model(), ": ",
                  response->results_size(), " sequence",
                  response->results_size() == 1 ? "" : "s", "\n");
  for (int s = 0; s < response->results_size(); ++s) {
    const v1::SequenceResult& r = response->results(s);
    const std::vector<int32_t> no_ids;
    const size_t id_index = s - f.texts.size();
    const std::vector<std::string> tokens = ResultTokens(
        r, s >= static_cast<int>(f.texts.size()) ? f.ids[id_index] : no_ids);
    absl::StrAppend(out, "sequence ", s, ": ", InputLabel(f, s), "\n  ",
                    tokens.size(), " tokens: ", TokenLine(tokens), "\n");
    if (r.has_embedding()) {
      absl::StatusOr<Array> e = DecodeTensor(r.embedding(), "embedding");
      if (!e.ok()) return e.status();
      absl::StrAppend(out, "  ", FormatEmbedding(*e), "\n");
    }
    if (r.has_hidden_states()) {
      absl::StatusOr<Array> h =
          DecodeTensor(r.hidden_states(), "hidden_states");
      if (!h.ok()) return h.status();
      absl::StrAppend(out, "  hidden_states ", ShapeString(h->shape), " ",
                      h->dtype, "\n");
      if (h->shape.size() == 2 && h->shape[0] > 0) {
        const int64_t n = h->shape[0], width = h->shape[1];
        for (int64_t row : {int64_t{0}, n - 1}) {
          const std::string label =
              row < static_cast<int64_t>(tokens.size()) ? tokens[row] : "";
          absl::StrAppend(
              out, "    ", Pad(absl::StrCat(row, " ", Printable(label)), 12),
              " ", FewValues(h->values.data() + row * width, width, 6), "\n");
          if (n == 1) break;
        }
      }
    }
    if (r.has_attention()) {
      if (absl::Status st = PrintAttention(f, r, tokens, out); !st.ok()) {
        return st;
      }
    }
  }
  return absl::OkStatus();
}

// ---- similarity
// ---------------------------------------------------------------

absl::Status Similarity(const Flags& f, v1::Encoder::StubInterface& stub,
                        std::string* out) {
  if (f.pooling == v1::POOLING_NONE) {
    return absl::InvalidArgumentError(
        "similarity compares embeddings: --pooling none gives none");
  }
  absl::StatusOr<v1::EncodeRequest> request = BaseRequest(f, stub);
  if (!request.ok()) return request.status();
  // The cosine does not depend on the norm; normalize = true also makes the
  // server pool with the model's default when --pooling is not given.
  request->set_normalize(true);
  absl::StatusOr<v1::EncodeResponse> response = CallEncode(f, stub, *request);
  if (!response.ok()) return response.status();
  std::vector<std::vector<float>> embeddings;
  for (int s = 0; s < response->results_size(); ++s) {
    const v1::SequenceResult& r = response->results(s);
    if (!r.has_embedding()) {
      return BadResponse(absl::StrCat("sequence ", s, " has no embedding"));
    }
    absl::StatusOr<Array> e = DecodeTensor(r.embedding(), "embedding");
    if (!e.ok()) return e.status();
    embeddings.push_back(std::move(e->values));
  }
  const size_t n = embeddings.size();
  std::vector<std::vector<double>> cos(n, std::vector<double>(n));
  for (size_t a = 0; a < n; ++a) {
    for (size_t b = 0; b < n; ++b) {
      cos[a][b] = Cosine(embeddings[a], embeddings[b]);
    }
  }
  const std::string pooling = f.pooling == v1::POOLING_UNSPECIFIED
                                  ? "the model's default"
                                  : PoolingName(f.pooling);
  if (f.json) {
    std::vector<std::string> rows;
    for (const auto& row : cos) {
      std::vector<std::string> cells;
      for (double c : row) cells.push_back(JsonNumber(c));
      rows.push_back(absl::StrCat("[", absl::StrJoin(cells, ", "), "]"));
    }
    absl::StrAppend(out, "{\"model\": ", JsonString(response->model()),
                    ", \"cosine\": ",
                    n == 2 ? JsonNumber(cos[0][1])
                           : absl::StrCat("[", absl::StrJoin(rows, ", "), "]"),
                    "}\n");
    return absl::OkStatus();
  }
  if (n == 2) {
    absl::StrAppendFormat(out, "cosine %.4f  (model %s, pooling: %s)\n",
                          cos[0][1], response->model(), pooling);
    for (size_t s = 0; s < n; ++s) {
      absl::StrAppend(out, "  ", s + 1, ": ", InputLabel(f, s), "\n");
    }
    return absl::OkStatus();
  }
  absl::StrAppend(out, "cosine of the embeddings (model ", response->model(),
                  ", pooling: ", pooling, ")\n");
  std::string header = "     ";
  for (size_t b = 0; b < n; ++b)
    absl::StrAppend(&header, Pad(absl::StrCat(b + 1), 8, true));
  absl::StrAppend(out, header, "\n");
  for (size_t a = 0; a < n; ++a) {
    std::string line = Pad(absl::StrCat(a + 1), 5, true);
    for (size_t b = 0; b < n; ++b) {
      absl::StrAppend(&line, Pad(absl::StrFormat("%.4f", cos[a][b]), 8, true));
    }
    absl::StrAppend(out, line, "   ", InputLabel(f, a), "\n");
  }
  return absl::OkStatus();
}

// ---- heads -----------------------------------------------------------------

absl::Status Attention(const Flags& f, v1::Encoder::StubInterface& stub,
                       std::string* out) {
  if (f.html.empty()) {
    Flags g = f;
    g.attention = true;
    return Encode(g, stub, out);
  }
  absl::StatusOr<v1::EncodeRequest> request = BaseRequest(f, stub);
  if (!request.ok()) return request.status();
  request->set_pooling(v1::POOLING_NONE);  // the page draws no embedding
  v1::AttentionRequest* a = request->mutable_attention();
  a->mutable_layers()->Add(f.layers.begin(), f.layers.end());
  a->mutable_heads()->Add(f.heads.begin(), f.heads.end());
  a->set_dtype(f.fp16 ? v1::FLOAT16 : v1::FLOAT32);
  a->set_stats(true);
  a->set_rollout(true);
  absl::StatusOr<v1::EncodeResponse> response = CallEncode(f, stub, *request);
  if (!response.ok()) return response.status();
  const v1::SequenceResult& r = response->results(0);
  if (!r.has_attention()) return BadResponse("no attention maps");
  const std::vector<int64_t> shape(r.attention().shape().begin(),
                                   r.attention().shape().end());
  if (shape.size() != 4) return BadResponse("attention is not 4-D");
  absl::StatusOr<AttentionPage> page = PageFromResult(
      r, Labels(f.layers, shape[0]), Labels(f.heads, shape[1]), f.mask);
  if (!page.ok()) return page.status();
  page->title = f.texts.empty() ? InputLabel(f, 0) : f.texts[0];
  if (!f.pair.empty()) page->title += "  ‖  " + f.pair;
  std::vector<std::string> mask;
  for (const auto& [layer, head] : f.mask) {
    mask.push_back(head < 0 ? absl::StrCat("L", layer, " (all heads)")
                            : absl::StrCat("L", layer, " H", head));
  }
  page->subtitle =
      absl::StrCat("model ", response->model(), " · ", page->tokens.size(),
                   " tokens · ", shape[0], " layer", shape[0] == 1 ? "" : "s",
                   " × ", shape[1], " head", shape[1] == 1 ? "" : "s", " · ",
                   r.attention().dtype() == v1::FLOAT16 ? "float16" : "float32",
                   mask.empty() ? "" : " · masked: ", absl::StrJoin(mask, ", "),
                   " · made by attnctl attention");
  // RankHeads' grid unless --no-rank, and the curve with --rank. Work over
  // the server's limit only leaves them out (the maps are still worth it).
  if (!f.no_rank) {
    absl::StatusOr<CurveResult> r = RankAndCurve(f, stub, f.rank);
    if (r.ok()) {
      page->importance = r->scores;
      page->importance_layers = r->layers;
      page->importance_heads = r->heads;
      page->curve = r->curve;
    } else if (r.status().code() == absl::StatusCode::kResourceExhausted) {
      page->rank_note = std::string(r.status().message());
    } else {
      return r.status();
    }
  }
  absl::StatusOr<std::string> html = RenderAttentionHtml(*page);
  if (!html.ok()) return html.status();
  if (absl::Status st = WriteHtml(f.html, *html); !st.ok()) return st;
  absl::StrAppendFormat(
      out, "wrote %s: %d layer%s × %d head%s, %d tokens%s, %.0f KB\n", f.html,
      shape[0], shape[0] == 1 ? "" : "s", shape[1], shape[1] == 1 ? "" : "s",
      page->tokens.size(), page->rollout.empty() ? "" : ", rollout",
      html->size() / 1024.0);
  return absl::OkStatus();
}

}  // namespace

absl::Status LoadConnectionFiles(Flags* flags) {
  if (absl::Status s = ReadTlsFiles(flags->ca_file, flags->cert_file,
                                    flags->key_file, &flags->channel);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::string> token = LoadToken(flags->token_file);
  if (!token.ok()) return token.status();
  flags->token = *std::move(token);
  return absl::OkStatus();
}

absl::Status RunCommand(const Flags& flags, v1::Encoder::StubInterface& stub,
                        std::string* out) {
  const std::string& c = flags.command;
  if (c == "info") return Info(flags, stub, out);
  if (c == "models") return Models(flags, stub, out);
  if (c == "tokenize") return Tokenize(flags, stub, out);
  if (c == "encode") return Encode(flags, stub, out);
  if (c == "similarity") return Similarity(flags, stub, out);
  if (c == "heads") return Heads(flags, stub, out);
  if (c == "attention") return Attention(flags, stub, out);
  if (c == "prune-curve") return PruneCurve(flags, stub, out);
  return absl::InvalidArgumentError(absl::StrCat("unknown command ", c));
}

}  // namespace attnserve::client
