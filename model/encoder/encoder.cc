#include "model/encoder/encoder.h"

#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/checkpoint/weights.h"
#include "model/encoder/packing.h"
#include "model/encoder/pooling.h"
#include "model/encoder/pruning.h"
#include "model/kernels/attention.h"
#include "model/kernels/cpu.h"
#include "model/kernels/dnnl_context.h"
#include "model/kernels/layer_norm.h"
#include "model/kernels/linear.h"

namespace attnserve {

namespace {

// Upper bound of the attention-probability scratch, in floats: groups of
// equal-length sequences are cut so (n, heads, t, t) fits.
constexpr int64_t kProbsScratchFloats = int64_t{8} * 12 * 128 * 128;

// A layer after pruning keeps heads = h_l of the checkpoint's heads;
// A = h_l·d is its attention width (H when nothing is pruned).
struct PackedLayer {
  // (A, H) each, sharing kernels; null when h_l = 0. Three matmuls, not one
  // fused (3A, H): each writes its own (tokens, A) block, a layout the
  // attention matmuls read in place (attention.h), at the same speed.
  std::unique_ptr<Linear> q, k, v;
  std::unique_ptr<Linear> out;   // (H, A), residual into x; null when h_l = 0
  std::vector<float> out_bias;   // (H) what a layer without heads adds
  std::unique_ptr<Linear> ffn1;  // (I, H), GELU
  std::unique_ptr<Linear> ffn2;  // (H, I), residual into x
  std::vector<float> ln1_gamma, ln1_beta, ln2_gamma, ln2_beta;  // (H)
  std::vector<int> heads;          // (h_l) checkpoint index of each kept head
  Attention* attention = nullptr;  // for h_l heads; null when h_l = 0
};

// Resizes only upward so the request path stops allocating after warm-up.
template <typename T>
void Grow(std::vector<T>* v, size_t n) {
  if (v->size() < n) v->resize(n);
}

}  // namespace

struct Encoder::Impl {
  DnnlContext ctx;
  ModelConfig config;
  BertWeights
      weights;  // embeddings and pooler stay host-side; layers moved out
  std::vector<PackedLayer> layers;
  std::unique_ptr<LayerNorm> layer_norm;
  // One attention core per head count that a layer has (one unless pruned).
  std::map<int, std::unique_ptr<Attention>> attention;
  // Every linear shape's kernels (q/k/v, out, ffn1, ffn2; more when pruning
  // leaves layers with different head counts), for WarmUp.
  std::vector<std::shared_ptr<LinearKernels>> linear_kernels;

  std::unique_ptr<LayerNorm> emb_layer_norm;  // over E (ELECTRA's E != H)
  std::unique_ptr<Linear> emb_project;        // (H, E) ELECTRA when E != H

  // bf16 models keep what flows between two bf16 kernels in bf16 (oneDNN
  // writes and reads it there; no f32 round trip): the FFN intermediate
  // always, QKV and the attention context when attention runs in bf16. The
  // residual stream x and LayerNorm stay f32 (oneDNN 2.6's LayerNorm has one
  // data type for src and dst, and x feeds every residual sum).
  bool bf16_ffn = false;
  bool bf16_attention = false;

  std::vector<float> x;    // (rows, H) hidden states of the packed tokens
  std::vector<float> emb;  // (rows, E) ELECTRA's embeddings before projection
  // (3, rows, A) Q, K and V, each block (rows, A); rows = Packing::rows.
  std::vector<float> qkv;       // f32 attention
  std::vector<bf16_t> qkv16;    // bf16 attention
  std::vector<float> ctx_buf;   // (rows, A) attention context, heads merged
  std::vector<bf16_t> ctx16;    // (rows, A) the same, bf16 attention
  std::vector<float> inter;     // (rows, I) FFN intermediate, f32 and int8
  std::vector<bf16_t> inter16;  // (rows, I) the same, bf16
  std::vector<float> probs;     // (n, heads, t, t) one group's attention

  // Sizes the scratch for `rows` packed tokens; grows only, so the request
  // path stops allocating after warm-up.
  void Reserve(int64_t rows);
  // EncoderOptions::warm_up_rows: every row bucket's linear and LayerNorm
  // primitives up to RowBucket(rows), and the scratch for them.
  absl::Status WarmUp(int64_t rows);
  // ModelInfo::weight_bytes.
  int64_t WeightBytes() const;
  // dst (rows, E) = word + position [+ type] embeddings of every packed
  // token, positions as the family counts them.
  void Embed(absl::Span<const SequenceTask> tasks, const Packing& packing,
             float* dst);
  // ctx_buf = the attention of layer `l` over qkv, per group of equal-length
  // sequences among those that run layer l; copies the maps that tasks asked
  // for into `outputs` and zeroes the context of masked heads.
  absl::Status SelfAttention(int l, absl::Span<const SequenceTask> tasks,
                             const Packing& packing,
                             std::vector<SequenceOutput>* outputs);
  // Before layer `l`: x gets the given input of the tasks that start there,
  // and the tasks that want every layer's input get x's.
  void LayerInputs(int l, absl::Span<const SequenceTask> tasks,
                   const Packing& packing,
                   std::vector<SequenceOutput>* outputs);
  // Hidden states and pooled embeddings out of x, as each task asked.
  void Collect(absl::Span<const SequenceTask> tasks, const Packing& packing,
               std::vector<SequenceOutput>* outputs);
};

Encoder::Encoder(ModelInfo info, std::unique_ptr<Impl> impl)
    : info_(std::move(info)), impl_(std::move(impl)) {}
Encoder::~Encoder() = default;

absl::StatusOr<std::unique_ptr<Encoder>> Encoder::Load(
    const std::string& dir, const EncoderOptions& options) {
  ModelInfo info;
  ASSIGN_OR_RETURN(info.config, LoadConfig(dir));
  const ModelConfig& c = info.config;
  auto impl = std::make_unique<Impl>();
  impl->config = c;
  const int64_t h = c.hidden_size, inter = c.intermediate_size;
  const int64_t d = c.head_size();
  RETURN_IF_ERROR(CheckPrecisionSupported(options.precision));
  ASSIGN_OR_RETURN(info.pruned, PruneMask(options.prune_heads, c));
  info.attention_bf16 =
      options.precision == Precision::kBFloat16 &&
      (options.bf16_attention == Bf16Attention::kAlways ||
       (options.bf16_attention == Bf16Attention::kWhereAmx && OneDnnUsesAmx()));
  impl->bf16_ffn = options.precision == Precision::kBFloat16;
  impl->bf16_attention = info.attention_bf16;
  const bool ffn16 = impl->bf16_ffn, attn16 = impl->bf16_attention;
  // One set of primitives per layer shape, shared by all layers of it (one
  // shape per kind unless pruning leaves layers with different head counts).
  DnnlContext* ctx = &impl->ctx;
  std::map<std::tuple<int64_t, int64_t, Activation, bool, bool, bool>,
           std::shared_ptr<LinearKernels>>
      shapes;
  auto kernels = [&](int64_t n, int64_t k, Activation act, bool residual,
                     bool bf16_src, bool bf16_dst) {
    auto& slot = shapes[{n, k, act, residual, bf16_src, bf16_dst}];
    if (slot == nullptr) {
      slot = std::make_shared<LinearKernels>(
          ctx, n, k,
          LinearSpec{act, residual, options.precision, bf16_src, bf16_dst});
    }
    return slot;
  };
  const auto ffn1 = kernels(inter, h, c.activation, false, false, ffn16);
  const auto ffn2 = kernels(h, inter, Activation::kNone, true, ffn16, false);
  // Each layer is packed as soon as it is read and its host copy dropped, so
  // loading never holds two copies of the model.
  auto pack = [&](int l, LayerWeights& lw) -> absl::Status {
    PackedLayer p;
    for (int head = 0; head < c.num_heads; ++head) {
      if (!info.IsPruned(l, head)) p.heads.push_back(head);
    }
    const int64_t a = int64_t(p.heads.size()) * d;
    if (a != h) PruneLayer(p.heads, h, d, &lw);
    if (a > 0) {
      const auto qkv = kernels(a, h, Activation::kNone, false, false, attn16);
      const auto out = kernels(h, a, Activation::kNone, true, attn16, false);
      // Rows [0, A) of the fused weights are the query's, then key, value.
      for (auto [part, linear] : {std::pair{0, &p.q}, {1, &p.k}, {2, &p.v}}) {
        const auto w = lw.qkv_weight.begin() + part * a * h;  // (A, H)
        const auto b = lw.qkv_bias.begin() + part * a;        // (A)
        ASSIGN_OR_RETURN(*linear,
                         Linear::Create(ctx, std::vector<float>(w, w + a * h),
                                        std::vector<float>(b, b + a), a, h,
                                        qkv->spec(), qkv));
      }
      ASSIGN_OR_RETURN(p.out, Linear::Create(ctx, lw.out_weight, lw.out_bias, h,
                                             a, out->spec(), out));
      auto& core = impl->attention[int(p.heads.size())];
      if (core == nullptr) {
        core = std::make_unique<Attention>(ctx, int(p.heads.size()), int(d),
                                           info.attention_bf16);
      }
      p.attention = core.get();
    }
    p.out_bias = std::move(lw.out_bias);
    ASSIGN_OR_RETURN(p.ffn1, Linear::Create(ctx, lw.ffn1_weight, lw.ffn1_bias,
                                            inter, h, ffn1->spec(), ffn1));
    ASSIGN_OR_RETURN(p.ffn2, Linear::Create(ctx, lw.ffn2_weight, lw.ffn2_bias,
                                            h, inter, ffn2->spec(), ffn2));
    p.ln1_gamma = std::move(lw.ln1_gamma);
    p.ln1_beta = std::move(lw.ln1_beta);
    p.ln2_gamma = std::move(lw.ln2_gamma);
    p.ln2_beta = std::move(lw.ln2_beta);
    impl->layers.push_back(std::move(p));
    return absl::OkStatus();
  };
  ASSIGN_OR_RETURN(impl->weights,
                   LoadWeights(dir + "/model.safetensors", c, pack));
  std::string base = dir;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  info.name = options.name.empty() ? base.substr(base.find_last_of('/') + 1)
                                   : options.name;
  info.family = FamilyName(c.family);
  info.weight_dtype = impl->weights.stored_dtype;
  info.has_pooler = !impl->weights.pooler_weight.empty();
  info.precision = options.precision;
  ASSIGN_OR_RETURN(info.default_pooling, ReadDefaultPooling(dir));
  impl->layer_norm =
      std::make_unique<LayerNorm>(&impl->ctx, h, c.layer_norm_eps);
  for (const PackedLayer& p : impl->layers) {
    info.heads_per_layer.push_back(int(p.heads.size()));
  }
  impl->emb_layer_norm = std::make_unique<LayerNorm>(
      &impl->ctx, c.embedding_size, c.layer_norm_eps);
  if (!impl->weights.emb_project_weight.empty()) {
    const auto project = std::make_shared<LinearKernels>(
        ctx, h, c.embedding_size,
        LinearSpec{Activation::kNone, false, Precision::kFloat32});
    ASSIGN_OR_RETURN(
        impl->emb_project,
        Linear::Create(ctx, impl->weights.emb_project_weight,
                       impl->weights.emb_project_bias, h, c.embedding_size,
                       project->spec(), project));
    impl->linear_kernels.push_back(project);
  }
  for (const auto& [shape, kernels] : shapes) {
    impl->linear_kernels.push_back(kernels);
  }
  if (options.warm_up_rows > 0) {
    RETURN_IF_ERROR(impl->WarmUp(options.warm_up_rows));
  }
  info.weight_bytes = impl->WeightBytes();
  // The host copies of the layer weights were freed after packing, but glibc
  // keeps freed heap pages mapped; give them back so RSS shows the model.
  malloc_trim(0);
  return std::unique_ptr<Encoder>(
      new Encoder(std::move(info), std::move(impl)));
}

int64_t Encoder::Impl::WeightBytes() const {
  int64_t bytes = 0;
  auto floats = [&](const std::vector<float>& v) {
    bytes += int64_t(v.size() * sizeof(float));
  };
  auto packed = [&](const std::unique_ptr<Linear>& linear) {
    if (linear != nullptr) bytes += int64_t(linear->weight_bytes());
  };
  for (const PackedLayer& p : layers) {
    packed(p.q);
    packed(p.k);
    packed(p.v);
    packed(p.out);
    packed(p.ffn1);
    packed(p.ffn2);
    for (const auto* v :
         {&p.out_bias, &p.ln1_gamma, &p.ln1_beta, &p.ln2_gamma, &p.ln2_beta}) {
      floats(*v);
    }
  }
  packed(emb_project);
  for (const auto* v :
       {&weights.word_embeddings, &weights.position_embeddings,
        &weights.type_embeddings, &weights.emb_ln_gamma, &weights.emb_ln_beta,
        &weights.pooler_weight, &weights.pooler_bias}) {
    floats(*v);
  }
  return bytes;
}

absl::Status Encoder::Impl::WarmUp(int64_t rows) {
  const int64_t last = RowBucket(rows);
  Reserve(last);
  // Each bucket once, in increasing order: m jumps past each bucket's end.
  for (int64_t m = 1; m <= last; m = RowBucket(m) + 1) {
    const int64_t bucket = RowBucket(m);
    for (const auto& kernels : linear_kernels) {
      RETURN_IF_ERROR(kernels->Prepare(bucket));
    }
    RETURN_IF_ERROR(layer_norm->Prepare(bucket));
    RETURN_IF_ERROR(emb_layer_norm->Prepare(bucket));
  }
  return absl::OkStatus();
}

void Encoder::Impl::Reserve(int64_t rows) {
  const int64_t h = config.hidden_size;
  Grow(&x, rows * h);
  if (bf16_attention) {
    Grow(&qkv16, rows * 3 * h);
    Grow(&ctx16, rows * h);
  } else {
    Grow(&qkv, rows * 3 * h);
    Grow(&ctx_buf, rows * h);
  }
  if (bf16_ffn) {
    Grow(&inter16, rows * config.intermediate_size);
  } else {
    Grow(&inter, rows * config.intermediate_size);
  }
  if (emb_project != nullptr) Grow(&emb, rows * config.embedding_size);
}

void Encoder::Impl::Embed(absl::Span<const SequenceTask> tasks,
                          const Packing& packing, float* dst) {
  const int64_t e = config.embedding_size;
  const bool types = !weights.type_embeddings.empty();
  for (size_t i : packing.order) {
    const SequenceTask& task = tasks[i];
    if (task.start_layer > 0) continue;  // starts from given hidden states
    // RoBERTa (transformers' create_position_ids_from_input_ids): a pad token
    // sits at position pad_token_id, the others at pad_token_id + 1 + the
    // number of non-pad tokens before them. BERT & co.: position = t.
    int64_t next_position = config.position_offset;
    for (size_t t = 0; t < task.token_ids.size(); ++t) {
      const int64_t id = task.token_ids[t];
      int64_t position = t;
      if (config.positions_skip_padding) {
        position =
            id == config.pad_token_id ? config.pad_token_id : next_position++;
      }
      const int64_t type =
          task.token_type_ids.empty() ? 0 : task.token_type_ids[t];
      const float* word = &weights.word_embeddings[id * e];           // (E)
      const float* pos = &weights.position_embeddings[position * e];  // (E)
      float* out = &dst[(packing.row_of[i] + t) * e];                 // (E)
      for (int64_t c = 0; c < e; ++c) out[c] = word[c] + pos[c];
      if (types) {
        const float* typ = &weights.type_embeddings[type * e];  // (E)
        for (int64_t c = 0; c < e; ++c) out[c] += typ[c];
      }
    }
  }
}

absl::Status Encoder::Impl::SelfAttention(
    int l, absl::Span<const SequenceTask> tasks, const Packing& packing,
    std::vector<SequenceOutput>* outputs) {
  const PackedLayer& layer = layers[l];
  const int64_t all_heads = config.num_heads, d = config.head_size();
  const int64_t heads = layer.heads.size();  // h_l, after pruning
  const int64_t a = heads * d;               // row width of ctx_buf
  const std::vector<size_t>& order = packing.order;
  const size_t active = packing.active[l];  // order[0, active) run layer l
  // Groups of equal-length sequences (order is by length within a start
  // layer), cut so one group's (n, heads, t, t) probabilities fit the
  // scratch.
  for (size_t g = 0; g < active;) {
    const int64_t t = tasks[order[g]].token_ids.size();
    const int64_t max_n =
        std::max<int64_t>(1, kProbsScratchFloats / (heads * t * t));
    size_t end = g;
    while (end < active && int64_t(tasks[order[end]].token_ids.size()) == t &&
           int64_t(end - g) < max_n) {
      ++end;
    }
    // Power-of-two group sizes keep the number of distinct primitives small.
    int64_t n = 1;
    while (n * 2 <= int64_t(end - g)) n *= 2;
    Grow(&probs, n * heads * t * t);
    const int64_t row = packing.row_of[order[g]];
    const int64_t q = row * a, k = (packing.rows + row) * a,
                  v = (2 * packing.rows + row) * a;  // in qkv (3, rows, A)
    RETURN_IF_ERROR(
        bf16_attention
            ? layer.attention->Run(n, t, &qkv16[q], &qkv16[k], &qkv16[v],
                                   probs.data(), &ctx16[row * a])
            : layer.attention->Run(n, t, &qkv[q], &qkv[k], &qkv[v],
                                   probs.data(), &ctx_buf[row * a]));
    ctx.stream.wait();
    for (int64_t s = 0; s < n; ++s) {
      const size_t i = order[g + s];
      const SequenceTask& task = tasks[i];
      const auto& wanted = task.attention_layers;
      auto pos = std::lower_bound(wanted.begin(), wanted.end(), l);
      if (pos != wanted.end() && *pos == l) {
        // (all heads, t, t) in the checkpoint's numbering; pruned stay 0.
        float* dst =
            &(*outputs)[i]
                 .attention[(pos - wanted.begin()) * all_heads * t * t];
        for (int64_t k = 0; k < heads; ++k) {
          std::memcpy(dst + layer.heads[k] * t * t,
                      &probs[(s * heads + k) * t * t], t * t * sizeof(float));
        }
      }
      if (task.head_mask.empty()) continue;
      // Zeroing a head's context equals zeroing its probabilities before ·V
      // (Hugging Face's head_mask); the maps above stay unmasked.
      for (int64_t k = 0; k < heads; ++k) {
        if (!task.head_mask[l * all_heads + layer.heads[k]]) continue;
        for (int64_t r = 0; r < t; ++r) {
          const int64_t at = (packing.row_of[i] + r) * a + k * d;
          if (bf16_attention) {
            std::fill_n(&ctx16[at], d, bf16_t{0});  // +0.0 in bf16
          } else {
            std::fill_n(&ctx_buf[at], d, 0.f);
          }
        }
      }
    }
    g += n;
  }
  return absl::OkStatus();
}

void Encoder::Impl::LayerInputs(int l, absl::Span<const SequenceTask> tasks,
                                const Packing& packing,
                                std::vector<SequenceOutput>* outputs) {
  const int64_t h = config.hidden_size;
  bool waited = false;
  for (size_t k = 0; k < packing.active[l]; ++k) {
    const size_t i = packing.order[k];
    const SequenceTask& task = tasks[i];
    const bool starts = l > 0 && task.start_layer == l;
    if (!starts && !task.want_layer_inputs) continue;
    // The primitives before may still write these rows (a bucket's padded
    // rows reach past the tokens that ran).
    if (!waited) ctx.stream.wait();
    waited = true;
    const int64_t t = task.token_ids.size();
    float* rows = &x[packing.row_of[i] * h];  // (t, H)
    if (starts) {
      std::memcpy(rows, task.layer_inputs->data() + l * t * h,
                  t * h * sizeof(float));
    } else {
      std::memcpy((*outputs)[i].layer_inputs.data() + l * t * h, rows,
                  t * h * sizeof(float));
    }
  }
}

void Encoder::Impl::Collect(absl::Span<const SequenceTask> tasks,
                            const Packing& packing,
                            std::vector<SequenceOutput>* outputs) {
  const int64_t h = config.hidden_size;
  for (size_t i = 0; i < tasks.size(); ++i) {
    const SequenceTask& task = tasks[i];
    SequenceOutput& out = (*outputs)[i];
    const int64_t t = task.token_ids.size();
    const float* hidden = &x[packing.row_of[i] * h];  // (t, H)
    if (task.want_hidden) out.hidden.assign(hidden, hidden + t * h);
    if (task.pooling != PoolingMode::kNone) {
      out.embedding = Pool(task.pooling, hidden, t, h, weights.pooler_weight,
                           weights.pooler_bias);
      if (task.normalize) L2Normalize(&out.embedding);
    }
    if (task.want_pooler_output) {
      out.pooler_output = Pool(PoolingMode::kPooler, hidden, t, h,
                               weights.pooler_weight, weights.pooler_bias);
    }
  }
}

int ModelInfo::pruned_count() const {
  return int(std::count(pruned.begin(), pruned.end(), 1));
}

absl::StatusOr<std::vector<SequenceOutput>> Encoder::Forward(
    absl::Span<const SequenceTask> tasks) {
  Impl& m = *impl_;
  for (size_t i = 0; i < tasks.size(); ++i) {
    RETURN_IF_ERROR(CheckTask(tasks[i], i, info_));
  }
  std::vector<SequenceOutput> outputs(tasks.size());
  if (tasks.empty()) return outputs;
  const ModelConfig& c = m.config;
  for (size_t i = 0; i < tasks.size(); ++i) {
    const int64_t t = tasks[i].token_ids.size();
    // (attention_layers, heads, t, t)
    outputs[i].attention.resize(tasks[i].attention_layers.size() * c.num_heads *
                                t * t);
    if (tasks[i].want_layer_inputs) {
      outputs[i].layer_inputs.resize(int64_t(c.num_layers) * t *
                                     c.hidden_size);  // (L, t, H)
    }
  }

  const Packing packing = Pack(tasks, c.num_layers);
  m.Reserve(packing.rows);
  float* x = m.x.data();  // (rows, H) the residual stream
  // Only the tasks that start at layer 0 are embedded.
  if (const int64_t embedded = packing.active_tokens[0]; embedded > 0) {
    const int64_t rows = RowBucket(embedded);
    if (m.emb_project == nullptr) {
      m.Embed(tasks, packing, x);
      RETURN_IF_ERROR(m.emb_layer_norm->Run(rows, x, m.weights.emb_ln_gamma,
                                            m.weights.emb_ln_beta));
    } else {
      // ELECTRA: LayerNorm over E, then x = emb·W_pᵀ + b_p   (tokens, H)
      m.Embed(tasks, packing, m.emb.data());
      RETURN_IF_ERROR(m.emb_layer_norm->Run(
          rows, m.emb.data(), m.weights.emb_ln_gamma, m.weights.emb_ln_beta));
      RETURN_IF_ERROR(m.emb_project->Run(embedded, m.emb.data(), x));
    }
  }
  const int64_t h = c.hidden_size;
  for (int l = 0; l < c.num_layers; ++l) {
    PackedLayer& layer = m.layers[l];
    // Layer l runs on the tasks that started at or below it: the first
    // `tokens` packed rows.
    const int64_t tokens = packing.active_tokens[l];
    if (tokens == 0) continue;  // every task starts above this layer
    const int64_t rows = RowBucket(tokens);
    m.LayerInputs(l, tasks, packing, &outputs);
    if (layer.q != nullptr) {
      // q, k, v = x·W_{q,k,v}ᵀ + b                      (3, tokens, A)
      // ctx = softmax(Q·Kᵀ/√d)·V, heads merged          (tokens, A)
      // x += ctx·W_oᵀ + b_o
      Linear* const qkv[] = {layer.q.get(), layer.k.get(), layer.v.get()};
      const int64_t block = packing.rows * layer.q->out_features();
      // The buffers are bf16 or f32 as the attention core runs.
      auto attend = [&](auto* q, auto* context) -> absl::Status {
        std::remove_pointer_t<decltype(q)>* const out[] = {q, q + block,
                                                           q + 2 * block};
        RETURN_IF_ERROR(Linear::RunSameInput(tokens, x, qkv, out));
        RETURN_IF_ERROR(m.SelfAttention(l, tasks, packing, &outputs));
        return layer.out->Run(tokens, context, x);
      };
      RETURN_IF_ERROR(m.bf16_attention
                          ? attend(m.qkv16.data(), m.ctx16.data())
                          : attend(m.qkv.data(), m.ctx_buf.data()));
    } else {
      // Every head pruned: the attention block adds only its bias.
      m.ctx.stream.wait();
      for (int64_t r = 0; r < tokens; ++r) {
        for (int64_t k = 0; k < h; ++k) x[r * h + k] += layer.out_bias[k];
      }
    }
    // x = LayerNorm(x)
    RETURN_IF_ERROR(
        m.layer_norm->Run(rows, x, layer.ln1_gamma, layer.ln1_beta));
    // inter = act(x·W_1ᵀ + b_1)                          (tokens, I)
    // x += inter·W_2ᵀ + b_2; x = LayerNorm(x)
    if (m.bf16_ffn) {
      RETURN_IF_ERROR(layer.ffn1->Run(tokens, x, m.inter16.data()));
      RETURN_IF_ERROR(layer.ffn2->Run(tokens, m.inter16.data(), x));
    } else {
      RETURN_IF_ERROR(layer.ffn1->Run(tokens, x, m.inter.data()));
      RETURN_IF_ERROR(layer.ffn2->Run(tokens, m.inter.data(), x));
    }
    RETURN_IF_ERROR(
        m.layer_norm->Run(rows, x, layer.ln2_gamma, layer.ln2_beta));
  }
  m.ctx.stream.wait();
  m.Collect(tasks, packing, &outputs);
  return outputs;
}

}  // namespace attnserve
