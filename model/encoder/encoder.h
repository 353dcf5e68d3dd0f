// The BERT encoder: loads a Hugging Face checkpoint and runs batched forward
// passes on oneDNN.
//
// Threads: Load() may run on any thread. Forward() must be called from one
// thread at a time (the server's inference thread): it owns the oneDNN stream,
// the cached primitives and the scratch buffers. info() is immutable after
// Load.
#ifndef ATTNSERVE_MODEL_ENCODER_ENCODER_H_
#define ATTNSERVE_MODEL_ENCODER_ENCODER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "model/checkpoint/config.h"
#include "model/encoder/pruning.h"
#include "model/encoder/task_check.h"
#include "model/types.h"

namespace attnserve {

// Whether a bf16 model also runs Q·Kᵀ and P·V in bf16 (softmax and the maps
// returned stay f32). Only bf16 models; fp32 and int8 attention is f32.
enum class Bf16Attention {
  kWhereAmx,  // where oneDNN runs AMX: there it is faster; elsewhere slower
  kAlways,    // tests and benchmarks on hosts without AMX
  kNever,
};

struct EncoderOptions {
  Precision precision =
      Precision::kFloat32;  // compute precision of the matmuls
  // Heads removed at load, as (layer, head) in the checkpoint's numbering:
  // their rows of Q, K and V and their columns of the output projection are
  // dropped from the weights (Hugging Face's prune_heads), so the QKV and
  // output matmuls shrink. A layer left with no head keeps only the output
  // bias. Empty = none. The "= {}" lets callers write EncoderOptions{p}
  // without -Wmissing-field-initializers (an error under -Werror).
  std::vector<std::pair<int, int>> prune_heads = {};
  // At load, create the primitives of every row bucket up to this many
  // packed tokens and size the scratch for it (a server passes its
  // --max_batch_tokens). Its memory then starts at its working size instead
  // of growing each time the load brings a new batch size, and no request
  // pays for creating a primitive. 0: everything on first use.
  int64_t warm_up_rows = 0;
  Bf16Attention bf16_attention = Bf16Attention::kWhereAmx;
  // ModelInfo::name, the name clients ask for; empty = the directory's base
  // name.
  std::string name = {};
};

// What the loader found; immutable after Load.
struct ModelInfo {
  std::string name;    // EncoderOptions::name, else the directory's base name
  std::string family;  // "bert", "roberta", "distilbert" or "electra"
  ModelConfig config;
  std::string weight_dtype;  // as stored: "F32", "F16" or "BF16"
  bool has_pooler = false;
  bool attention_bf16 = false;  // Q·Kᵀ and P·V in bf16 (EncoderOptions)
  PoolingMode default_pooling = PoolingMode::kCls;
  Precision precision = Precision::kFloat32;
  // After EncoderOptions::prune_heads. Head indices everywhere (maps,
  // head_mask, RankHeads) keep the checkpoint's numbering.
  // Both empty = nothing pruned (a ModelInfo made by hand, as tests do).
  std::vector<int> heads_per_layer;  // (L) heads each layer still has
  std::vector<uint8_t> pruned;       // (L, H) 1 = pruned at load; or empty
  // Bytes the loaded weights hold: the packed linear layers (in the compute
  // precision) and the host-side embeddings, LayerNorms and pooler.
  int64_t weight_bytes = 0;
  bool IsPruned(int layer, int head) const {
    return !pruned.empty() &&
           pruned[size_t(layer) * config.num_heads + head] != 0;
  }
  int HeadsIn(int layer) const {
    return heads_per_layer.empty() ? config.num_heads : heads_per_layer[layer];
  }
  int pruned_count() const;
};

class Encoder {
 public:
  // Reads `dir`/config.json and `dir`/model.safetensors, checks every tensor,
  // packs the weights for oneDNN. Errors name the file and the tensor or key.
  static absl::StatusOr<std::unique_ptr<Encoder>> Load(
      const std::string& dir, const EncoderOptions& options = {});
  ~Encoder();

  const ModelInfo& info() const { return info_; }

  // Runs all `tasks` as one batch: real tokens are packed (no padding in the
  // linear layers), attention runs per sequence; a task with start_layer l
  // joins at layer l with its given hidden states, and each layer's matmuls
  // run on the tasks that reached it. Returns one output per task;
  // the maps of pruned heads are zeros. InvalidArgument for an out-of-range
  // id, a bad shape or a head_mask that masks a pruned head; never crashes
  // on input.
  absl::StatusOr<std::vector<SequenceOutput>> Forward(
      absl::Span<const SequenceTask> tasks);

 private:
  struct Impl;
  Encoder(ModelInfo info, std::unique_ptr<Impl> impl);

  ModelInfo info_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace attnserve

#endif  // ATTNSERVE_MODEL_ENCODER_ENCODER_H_
