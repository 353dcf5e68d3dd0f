// attnctl's command line: the flags of every command, parsed and checked
// into one plain struct. Only main() reads argv; everything else gets Flags.
//
// Pure functions; any thread.
#ifndef ATTNSERVE_CLIENT_CLI_H_
#define ATTNSERVE_CLIENT_CLI_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "client/channel.h"
#include "proto/attnserve.pb.h"

namespace attnserve::client {

extern const char kUsage[];

// attnctl bench: what load to generate (client/bench.h runs it).
struct BenchFlags {
  std::string rpc = "encode";  // --rpc: encode, tokenize or oip (ModelInfer)
  int concurrency = 1;  // --concurrency: workers, one call in flight each
  int connections = 0;  // --connections: channels; 0 = one per worker
  double duration_seconds = 0;  // --duration; 0 and no --requests: 10 s
  int64_t requests = 0;         // --requests: total calls instead
  int batch = 1;                // --batch: sequences per call
  int tokens = 0;  // --tokens: synthetic ids per sequence ([CLS] ... [SEP]);
                   // 0 = the TEXT/--ids given, else 128 (at most the
                   // model's max positions)
  bool stream = false;  // --stream: EncodeStream, one stream per worker
};

struct Flags {
  bool help = false;    // -h, --help, help: print kUsage
  std::string command;  // info tokenize encode similarity heads attention
                        // prune-curve bench

  // Input: positional texts, or token ids (not both).
  std::vector<std::string> texts;         // one sequence each
  std::string pair;                       // --pair: second segment of the text
  std::vector<std::vector<int32_t>> ids;  // --ids, repeatable
  std::vector<std::vector<int32_t>> type_ids;  // --type-ids, one per --ids
  bool truncate = false;  // longest-first, to max positions

  // Connection.
  // --target, --lb, --retries, --tls (implied by --ca, --cert, --key and
  // --server-name), --server-name; the PEM contents are read into it by
  // LoadConnectionFiles (client/commands.h).
  ChannelOptions channel;
  double timeout_seconds = 30;  // deadline of every call
  std::string model;            // empty = the server's default
  std::string ca_file;          // --ca: PEM roots to verify the server with
  std::string cert_file;        // --cert/--key: client certificate (mTLS)
  std::string key_file;
  std::string token_file;  // --token-file: bearer token (else $ATTNSERVE_TOKEN)
  std::string token;       // the token itself (LoadConnectionFiles), no flag
  bool verbose = false;    // --verbose: the server's timings on stderr

  // Outputs.
  bool attention = false;       // encode: return and print attention
  std::vector<int32_t> layers;  // empty = all
  std::vector<int32_t> heads;   // empty = all
  bool fp16 = false;            // attention as FLOAT16
  bool hidden = false;          // last hidden states
  v1::Pooling pooling = v1::POOLING_UNSPECIFIED;
  bool normalize = false;
  std::vector<std::string> query_words;  // --query it: rows of these tokens
  std::vector<int32_t> query_positions;  // --query-positions 9 (server-side)
  int top = 0;  // 0 = the command's default: heads: ranked heads shown
                // (10); encode --query: targets per row (3)
  // --mask L:H[,L:H...]: heads switched off (head -1 = the whole layer).
  std::vector<std::pair<int, int>> mask;
  bool no_rank = false;  // heads, attention: skip RankHeads
  bool rank = false;     // attention: add the pruning curve
  int step = 0;          // prune-curve: heads per step (0 = about 24 steps)
  std::string html;      // attention, prune-curve: write the page here
  bool json = false;

  BenchFlags bench;  // attnctl bench only
};

// Parses argv[1..] (so `args` excludes the program name). INVALID_ARGUMENT
// with a message for the user on anything wrong; Flags::help when asked.
absl::StatusOr<Flags> ParseFlags(const std::vector<std::string>& args);

// The Sequence messages of the input (texts with the pair, or ids).
std::vector<v1::Sequence> Sequences(const Flags& flags);

}  // namespace attnserve::client

#endif  // ATTNSERVE_CLIENT_CLI_H_
