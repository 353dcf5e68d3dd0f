// Text for people: the tables and summaries attnctl prints, built from
// responses (protos) or decoded tensors. No I/O, no RPCs: every function
// returns a string, so tests feed them synthetic responses.
//
// Pure functions; any thread.
#ifndef ATTNSERVE_CLIENT_FORMAT_H_
#define ATTNSERVE_CLIENT_FORMAT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/attention_html.h"
#include "proto/attnserve.pb.h"

namespace attnserve::client {

// ---- tensors ----------------------------------------------------------------

// A decoded v1::Tensor.
struct Array {
  std::string dtype;           // "float32" or "float16" (as sent)
  std::vector<int64_t> shape;  // as sent
  std::vector<float> values;   // row-major, product(shape) values
};

// DATA_LOSS naming `what` when the byte count does not match the shape or
// the dtype is unknown.
absl::StatusOr<Array> DecodeTensor(const v1::Tensor& tensor,
                                   absl::string_view what);

// "(2, 4, 9, 9)"
std::string ShapeString(const std::vector<int64_t>& shape);

// The first `shown` of n values, "%.4f" each, then "..." if there are more.
std::string FewValues(const float* values, int64_t n, int64_t shown);

// ---- text layout --------------------------------------------------------

// Terminal columns of UTF-8 text (wide CJK = 2, combining marks = 0; bytes
// that are not UTF-8 count 1 each).
int DisplayWidth(absl::string_view text);

// `text` padded with spaces to `width` columns (left-aligned), or right-
// aligned when `right` is set.
std::string Pad(absl::string_view text, int width, bool right = false);

// Control characters shown as escapes (\n, \t, \x01), so a token or a slice
// of the input never breaks a table row.
std::string Printable(absl::string_view text);

// A label for each token: the token itself, or "token@pos" when the same
// token occurs more than once in the sequence ("the@1", "the@5").
std::vector<std::string> TokenLabels(const std::vector<std::string>& tokens);

// Positions of the tokens equal to `word` (ASCII case-insensitive, and a
// "##" continuation matches without its "##").
std::vector<int32_t> FindToken(const std::vector<std::string>& tokens,
                               absl::string_view word);

// ---- tokenize -----------------------------------------------------------

// One aligned table row per token: position, token, id, type id, byte
// offsets and the bytes of the input they cover (`text` for type 0, `pair`
// for type 1). Special tokens (offsets 0,0) show no span.
absl::StatusOr<std::string> FormatTokenTable(const v1::TokenizedSequence& seq,
                                             absl::string_view text,
                                             absl::string_view pair);

// ---- embeddings ---------------------------------------------------------

// "embedding (128) float32  norm 1.0000  [0.0123 -0.0456 ...]"
std::string FormatEmbedding(const Array& embedding);

// Cosine of two vectors of equal size; NaN when either is all zero.
double Cosine(const std::vector<float>& a, const std::vector<float>& b);

// ---- attention ----------------------------------------------------------

// Attention maps as Encode returns them, with what labels their axes.
struct AttentionRows {
  const Array* maps = nullptr;      // (layers, heads, rows, keys)
  std::vector<int32_t> layers;      // (layers) model layer of each map
  std::vector<int32_t> heads;       // (heads) model head of each map
  std::vector<int32_t> rows;        // (rows) query position of each row
  std::vector<std::string> tokens;  // (keys) the sequence's tokens
};

// For each layer, head and query row, the query token's strongest targets,
// labelled with tokens: "it -> animal 0.620". `only_positions` (query
// positions; empty = every row) narrows the rows; then each head prints one
// line per row with its `top_k` targets:
//   layer 5 head 3   it -> animal 0.620  street 0.118  it 0.081
// otherwise a block per head with one row per token and its top target.
// INVALID_ARGUMENT when the labels do not match the shape or a position
// in `only_positions` is not a returned row.
absl::StatusOr<std::string> FormatStrongestTargets(
    const AttentionRows& attention, const std::vector<int32_t>& only_positions,
    int top_k);

// ---- head statistics ----------------------------------------------------

// Layers × heads grids of entropy, mean distance and the dominant pattern
// (the largest of cls/sep/self/prev/next weight), then each layer's
// diversity. `num_tokens` gives the reference ln(T) of a uniform row.
std::string FormatHeadStats(const v1::SequenceResult& result,
                            int64_t num_tokens);

// The `top` most important heads and every layer, in the server's order.
std::string FormatRanking(const v1::RankHeadsResponse& ranking, int top);

// ---- the HTML page ------------------------------------------------------

// The page's data from one SequenceResult that has attention maps (all
// query rows), and optionally head_stats, layer_stats and rollout. `layers`
// and `heads` label the map axes (what the request asked for, or 0..n-1 if
// it asked for all); `masked` lists the request's head_mask (head -1 = the
// whole layer).
absl::StatusOr<AttentionPage> PageFromResult(
    const v1::SequenceResult& result, const std::vector<int32_t>& layers,
    const std::vector<int32_t>& heads,
    const std::vector<std::pair<int, int>>& masked);

// ---- JSON ---------------------------------------------------------------

std::string JsonString(absl::string_view s);
std::string JsonNumber(double v);  // null when not finite
// {"dtype": ..., "shape": [...], "values": nested by shape}
std::string JsonTensor(const Array& a);
// An EncodeResponse with every tensor decoded (JsonTensor), the tokens,
// head_stats and layer_stats.
absl::StatusOr<std::string> EncodeResponseJson(
    const v1::EncodeResponse& response);
// A message in proto3 JSON with the .proto field names and default values
// printed (so layer 0 shows as "layer": 0).
std::string JsonMessage(const google::protobuf::Message& message);

}  // namespace attnserve::client

#endif  // ATTNSERVE_CLIENT_FORMAT_H_
