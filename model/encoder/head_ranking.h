// Which heads matter for some sentences: mask each head alone (and each whole
// layer), and measure how far the pooled output moves (Michel et al. 2019,
// "Are Sixteen Heads Really Better than One?", with cosine distance of the
// pooled output in place of a task loss).
//
// Threads: RankHeads runs Encoder::Forward, so it must be called where
// Forward may be called (the server's inference thread); RankHeadsJob splits
// the same work so validation needs no model and passes can interleave.
#ifndef ATTNSERVE_MODEL_ENCODER_HEAD_RANKING_H_
#define ATTNSERVE_MODEL_ENCODER_HEAD_RANKING_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "model/encoder/encoder.h"

namespace attnserve {

struct RankHeadsLimits {
  // Tokens of one batched Forward call: the ablation tasks are packed into
  // calls of at most this many tokens (a task longer than this runs alone).
  // The encoder keeps scratch for its largest call (≈ 28 KB per token for
  // BERT-base), so pass the server's max batch tokens (its default is 8192).
  int64_t tokens_per_pass = 8192;
  // Work of one pass, in tokens of a full forward pass: an ablation of T
  // tokens started at layer l counts T·(L − l)/L. 0 = only tokens_per_pass
  // bounds a pass. The server passes --max_pass_tokens, so that no pass
  // holds its inference thread for long (a task costlier than this runs
  // alone).
  int64_t cost_per_pass = 0;
  // Run the unmasked pass once, keep every layer's input, and start each
  // ablation at the layer it masks (≈ 1.8× less work on BERT-base; the
  // importances are the same bits). false: every ablation recomputes the
  // layers below it, as before; kept for the test and the benchmark that
  // compare the two.
  bool reuse_layer_inputs = true;
  // Cap on the whole request's work, Σ_seq T·(1 + L·H + L) tokens of forward
  // passes (the server's --max_rank_heads_tokens; its cost: server/options.h).
  int64_t max_ablation_tokens = 32768;
};

// One input sequence, as the tokenizer makes it.
struct RankSequence {
  std::vector<int32_t> token_ids;       // (T) including [CLS]/[SEP]
  std::vector<int32_t> token_type_ids;  // (T), or empty = all 0
};

struct HeadImportance {
  int layer = 0;
  int head = 0;  // -1 in HeadRanking::layers: all heads of the layer
  // Mean over sequences of 1 − cos(pooled with the head(s) masked, pooled
  // unmasked); 0 = no effect, up to 2. A zero pooled vector counts as
  // cos = 1 against another zero vector and 0 against anything else.
  double importance = 0;
};

struct HeadRanking {
  std::vector<HeadImportance> heads;   // (heads not pruned) most important first
  std::vector<HeadImportance> layers;  // (L) most important first
  // Ties keep (layer, head) order. What was run:
  int64_t forward_passes = 0;   // Forward calls
  int64_t ablation_tokens = 0;  // Σ_seq T·(1 + L·H + L)
  // Σ over the runs of T·(layers run): the work done, L·ablation_tokens
  // without reuse_layer_inputs.
  int64_t layer_tokens = 0;
};

// Forward runs of each sequence when ranking `config`'s heads: unmasked, with
// each head masked alone, with each whole layer masked (1 + L·H + L). A
// request's work, in tokens of forward passes, is this times its tokens.
int64_t RankHeadsRunsPerSequence(const ModelConfig& config);
// The same for a loaded model: its pruned heads are not run (1 + kept + L).
int64_t RankHeadsRunsPerSequence(const ModelInfo& info);

// The ablations of one request as a job the caller runs pass by pass, so a
// server can validate on its request thread (Create reads only ModelInfo)
// and run the passes on its inference thread, between other batches:
//
//   ASSIGN_OR_RETURN(RankHeadsJob job, RankHeadsJob::Create(info, seqs));
//   while (!job.done()) {
//     ASSIGN_OR_RETURN(auto outputs, encoder.Forward(job.NextPass()));
//     RETURN_IF_ERROR(job.AddResults(outputs));
//   }
//   ASSIGN_OR_RETURN(HeadRanking ranking, job.Result());
//
// Per sequence it makes 1 unmasked task, a task per head with that head
// masked (heads pruned at load are left out: they are not in the ranking)
// and L tasks with one whole layer masked. The unmasked tasks of all
// sequences come first; with reuse_layer_inputs they return every layer's
// input (L, T, H floats per sequence, held until the job ends: at most
// max_ablation_tokens / (1 + L·H + L) tokens, e.g. 14 MB for BERT-base at
// the server's default limit), no pass mixes them with ablations, and each
// ablation starts at the layer it masks from those inputs.
// Threads: a job belongs to one thread at a time; it shares nothing.
class RankHeadsJob {
 public:
  // InvalidArgument for no sequences, a sequence the encoder would refuse
  // (empty, too long, ids out of range; named by its index), pooling kNone,
  // kPooler without pooler weights, or non-positive limits;
  // ResourceExhausted when the work exceeds limits.max_ablation_tokens (the
  // message says how much fits).
  static absl::StatusOr<RankHeadsJob> Create(
      const ModelInfo& info, std::vector<RankSequence> sequences,
      PoolingMode pooling = PoolingMode::kMean,
      const RankHeadsLimits& limits = {});

  // True once every task's output has been added.
  bool done() const { return added_ == n_tasks_; }
  int64_t ablation_tokens() const { return ablation_tokens_; }

  // The next pass: consecutive tasks of at most tokens_per_pass tokens (at
  // least one task). Until AddResults, calling it again returns the same
  // pass. Empty when done().
  std::vector<SequenceTask> NextPass();

  // `outputs`: Encoder::Forward's answer to the last NextPass(), in order.
  // FailedPrecondition without a pass outstanding; InvalidArgument when the
  // count or an embedding's size does not match.
  absl::Status AddResults(absl::Span<const SequenceOutput> outputs);

  // FailedPrecondition until done().
  absl::StatusOr<HeadRanking> Result() const;

 private:
  RankHeadsJob() = default;

  std::vector<RankSequence> sequences_;
  PoolingMode pooling_ = PoolingMode::kMean;
  int64_t tokens_per_pass_ = 0;
  int64_t layers_ = 0, heads_ = 0, hidden_ = 0;
  std::vector<int64_t> kept_;  // (heads not pruned) index layer·H + head
  int64_t runs_ = 0;     // tasks per sequence: 1 + kept + L
  int64_t n_tasks_ = 0;  // sequences · runs
  bool reuse_ = true;
  int64_t cost_per_pass_ = 0;  // layer-tokens; 0 = unbounded
  int64_t layer_tokens_ = 0;   // Σ TaskLayerTokens of the passes added
  int64_t pass_cost_ = 0;      // layer-tokens of the outstanding pass
  // Task k: k < S is sequence k unmasked; then sequence (k − S) / (runs − 1)
  // with ablation 1 + (k − S) mod (runs − 1).
  SequenceTask MakeTask(int64_t k) const;
  std::vector<std::shared_ptr<const std::vector<float>>>
      layer_inputs_;  // (sequences) each (L, T, H) unmasked
  int64_t ablation_tokens_ = 0;
  int64_t added_ = 0;     // tasks whose outputs were added
  int64_t pass_end_ = 0;  // end of the outstanding pass; == added_ if none
  int64_t forward_passes_ = 0;                 // passes added
  std::vector<std::vector<float>> reference_;  // (sequences, hidden) unmasked
  std::vector<double> head_sum_;               // (L, H) Σ_seq 1 − cos
  std::vector<double> layer_sum_;              // (L)
};

// The whole job in one call on `encoder` (which must be free to run Forward
// on this thread); errors as RankHeadsJob::Create and Encoder::Forward.
absl::StatusOr<HeadRanking> RankHeads(Encoder& encoder,
                                      absl::Span<const RankSequence> sequences,
                                      PoolingMode pooling = PoolingMode::kMean,
                                      const RankHeadsLimits& limits = {});

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_ENCODER_HEAD_RANKING_H_
