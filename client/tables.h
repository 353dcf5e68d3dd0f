// Text for people: the aligned tables attnctl prints (tokens, strongest
// attention targets, head statistics, head ranking) and the text layout
// they share (display widths, padding, printable tokens and their labels).
// Built from responses (protos) or decoded tensors; no I/O, no RPCs: every
// function returns a string, so tests feed them synthetic responses.
//
// Pure functions; any thread.
#ifndef ATTNSERVE_CLIENT_TABLES_H_
#define ATTNSERVE_CLIENT_TABLES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/tensors.h"
#include "proto/attnserve.pb.h"

namespace attnserve::client {

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

}  // namespace attnserve::client

#endif  // ATTNSERVE_CLIENT_TABLES_H_
