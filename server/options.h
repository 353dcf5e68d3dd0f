// Server configuration: plain structs with their defaults. Only main.cc reads
// flags; tests fill these directly.
#ifndef ATTNSERVE_SERVER_OPTIONS_H_
#define ATTNSERVE_SERVER_OPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace attnserve {

struct BatcherOptions {
  // Token budget of one forward pass: queued requests are merged (in arrival
  // order) while their tokens fit. A single request larger than the budget
  // runs alone; the per-request limit is checked before it gets here.
  int64_t max_batch_tokens = 8192;
  // Bulk work runs in passes of at most this much work, in tokens of a full
  // forward pass (a task that starts at layer l of L counts T·(L − l)/L),
  // and interactive requests waiting go between them. Bulk is a request
  // costlier than this (split at sequence boundaries, answered once all its
  // pieces ran) and every RankHeads pass. 256 tokens of BERT-base are
  // ≈ 44 GFLOP: ≈ 0.2 s at the ≈ 210 GFLOP/s fp32 matmul ceiling of 2 AMD
  // Zen 4 cores (issue #13 asks ≤ 250 ms). A smaller budget lowers the
  // wait of interactive calls and costs bulk work more passes: each pass
  // pays per-op overhead, which grows when other processes compete for
  // the cores (BENCHMARKS.md). 0 = no splitting.
  int64_t max_pass_tokens = 256;
  // Each served model's layers (Request::model indexes it), to cost tasks
  // that start above layer 0 (RankHeads ablations). Set by the server from
  // the models; a model without an entry counts every task as a full pass.
  std::vector<int> model_layers = {};
  // Requests waiting for the inference thread; one more is refused with
  // RESOURCE_EXHAUSTED instead of growing the queue.
  int max_queue_requests = 1024;
};

// What one request may ask for; checked before it is queued.
struct RequestLimits {
  // Sequences in one EncodeRequest.
  int max_sequences_per_request = 256;
  // Tokens summed over the sequences of one EncodeRequest. Also the largest
  // single pass: a request over BatcherOptions::max_batch_tokens runs alone.
  int64_t max_tokens_per_request = 16384;
  // Size of one EncodeResponse's payload (hidden states, embeddings,
  // attention maps, rollout, statistics, token ids and tokens), computed
  // before running: 256 MiB. The gRPC send limit is this plus
  // kResponseHeadroomBytes for the framing.
  int64_t max_response_bytes = int64_t{256} << 20;
  // Work of one RankHeads request: Σ over its sequences of T·(1 + L·H + L)
  // tokens of forward passes (unmasked, each head masked alone, each layer
  // masked). One 16-token BERT-base sentence is 2,512 tokens of work. Each
  // ablation starts at the layer it masks (ServerOptions::
  // rank_heads_reuse_layers), which on BERT-base does 1026/1884 of the
  // layer work, so this default (1.875× the 32768 of the full
  // recomputation, whose cost was ≈ 0.8 ms per token of work for BERT-base
  // fp32 on 2 quiet cores) bounds a request to about the same time, ≈ 25 s.
  // The layer inputs kept meanwhile are L·T·H floats per sequence: ≤ 15 MB
  // for BERT-base at this limit.
  int64_t max_rank_heads_tokens = 61440;
};

// Added to max_response_bytes for the gRPC max send message size: protobuf
// framing and shapes. (Token ids, tokens and statistics are counted in
// max_response_bytes with the tensors.)
inline constexpr int64_t kResponseHeadroomBytes = int64_t{1} << 20;

// Serving TLS (server/tls.h). Empty cert_file = plaintext.
struct TlsOptions {
  std::string cert_file;  // PEM certificate chain of the server
  std::string key_file;   // PEM private key of cert_file
  // PEM CA bundle: when set, clients must present a certificate it signed
  // (mTLS). Empty = no client certificates asked for.
  std::string client_ca_file;
  // How often the files are re-read: a certificate rotated on disk is served
  // to new connections within this interval, without a restart.
  absl::Duration refresh_interval = absl::Seconds(60);
};

// Per-call access log lines on stderr (server/access_log.h).
enum class LogFormat { kText, kJson };

struct ServerOptions {
  // host:port to listen on; port 0 picks a free port (see Server::port()).
  std::string address = "0.0.0.0:50051";
  RequestLimits limits;
  BatcherOptions batcher;
  // Deadline given to an Encode call whose client set none. A request still
  // queued at its deadline is answered DEADLINE_EXCEEDED instead of run.
  absl::Duration default_deadline = absl::Seconds(60);
  // Largest EncodeRequest accepted by gRPC (token ids are 1–5 bytes each).
  int max_receive_message_bytes = 16 << 20;
  // Outputs of finished passes waiting to be converted to responses (off the
  // inference thread, see CompletionExecutor), in bytes of floats. Past it
  // the inference thread waits before its next pass instead of piling up
  // memory; one completion is always admitted, however large.
  int64_t max_pending_completion_bytes = int64_t{512} << 20;
  // On SIGTERM: how long the server keeps accepting calls after its health
  // turns NOT_SERVING, so load balancers and Kubernetes endpoints stop
  // routing here before the port closes (read by main.cc).
  absl::Duration drain_delay = absl::Seconds(5);
  // RankHeads runs the unmasked pass once and starts each ablation at the
  // layer it masks (same importances, ≈ 1.8× less work on BERT-base).
  // false: each ablation recomputes the layers below it (the old way, for
  // benchmarks).
  bool rank_heads_reuse_layers = true;
  // Shutdown: how long in-flight calls may take to finish before gRPC
  // cancels them.
  absl::Duration shutdown_grace = absl::Seconds(30);

  // Operating it (README "Operate").
  // host:port of the HTTP endpoint serving /metrics (Prometheus text format)
  // and /healthz; empty = off. Port 0 picks a free port
  // (Server::metrics_port()).
  std::string metrics_address;
  // One access log line per finished call on stderr, in log_format.
  bool log_requests = true;
  LogFormat log_format = LogFormat::kText;
  TlsOptions tls;
  // File of bearer tokens, one per line; empty = no token needed. Checked on
  // every call but health and reflection (server/auth.h).
  std::string auth_tokens_file;
};

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_OPTIONS_H_
