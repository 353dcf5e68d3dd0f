// attnserve in-process benchmark worker, and the oneDNN matmul
// ceiling timed in the same process.
//
//   encoder_bench --model=DIR [--precision=fp32|bf16|int8] --worker
//       Loads the model, replies one JSON line ({"ok":true,...} or
//       {"ok":false,"error":...}), then answers one JSON line per command read
//       from stdin (the driver is bench/run.py):
//         run SHAPE ITERS ATTN    times ITERS Forward calls of a shape from
//                                 bench_common.h; CLS pooling only; ATTN >= 0
//                                 also returns that layer's attention probs
//         matmul f32|bf16|int8 ITERS   the ceiling: M=1024 K=768 N=3072
//         dump PATH               writes the check batch's inputs and outputs
//         compare PATH            this precision's outputs against a dump
//         rss                     VmHWM / VmRSS / RssAnon / RssFile in kB
//         quit
//   encoder_bench ... --worker --forward-thread
//       The same, but commands (and so Forward) run on a second thread, as in
//       the server, whose batcher thread runs what main() loaded.
//   encoder_bench ... --prune_heads=L:H,...
//       The model with those heads pruned at load (EncoderOptions).
//   encoder_bench ... --bf16_attention=amx|always|never
//       bf16 models: Q·Kᵀ and P·V in bf16 where AMX runs (default), always
//       (to time it on hosts without AMX), or never (EncoderOptions).
//   encoder_bench --worker        (no --model) matmul ceilings only
//   encoder_bench --model=DIR --precision=P --rss=SHAPE
//       Fresh-process memory: RSS after Load and the peak during Load, then
//       (peak reset) the peak of one Forward of SHAPE. Use a new process per
//       precision. Prints one JSON line.
//
// Threads follow OMP_NUM_THREADS (run.py sets 2). Everything but the reply
// lines goes to stderr.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "bench/bench_common.h"
#include "model/encoder/encoder.h"
#include "model/kernels/attention.h"
#include "model/kernels/cpu.h"
#include "model/kernels/linear.h"
#include "nlohmann/json.hpp"
#include "oneapi/dnnl/dnnl.hpp"

namespace attnserve::bench {
namespace {

using Clock = std::chrono::steady_clock;
using dnnl::memory;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// ------------------------------------------------------------ matmul ceiling

// A plain oneDNN matmul (M, K) · (K, N) → (M, N) f32 dst; weights packed once
// into the layout the primitive asks for (format_tag::any), as the encoder
// does. int8: u8 src, s8 weights, per-output-channel scales (the VNNI path the
// encoder's int8 linear layers use); bf16: bf16 src and weights.
class CeilingMatmul {
 public:
  static constexpr int64_t kM = 1024, kK = 768, kN = 3072;

  explicit CeilingMatmul(dt type) {
    dnnl::primitive_attr attr;
    if (type == dt::s8) {
      std::vector<float> scales(kN, 1.f / 64);
      attr.set_output_scales(1 << 1, scales);
    }
    const dt src_t = type == dt::s8 ? dt::u8 : type;
    memory::desc src_d({kM, kK}, src_t, tag::ab);
    memory::desc wei_any({kK, kN}, type, tag::any);
    memory::desc dst_d({kM, kN}, dt::f32, tag::ab);
    dnnl::matmul::desc d(src_d, wei_any, dst_d);
    pd_ = dnnl::matmul::primitive_desc(d, attr, engine_);
    prim_ = dnnl::matmul(pd_);

    std::mt19937 rng(7);
    src_ = memory(src_d, engine_);
    Fill(src_, src_t, rng);
    memory wei_plain(memory::desc({kK, kN}, type, tag::ab), engine_);
    Fill(wei_plain, type, rng);
    wei_ = memory(pd_.weights_desc(), engine_);
    dnnl::reorder(wei_plain, wei_).execute(stream_, wei_plain, wei_);
    dst_ = memory(dst_d, engine_);
    stream_.wait();
  }

  // Milliseconds of each of `iters` executions.
  std::vector<double> Time(int iters) {
    std::vector<double> ms;
    for (int i = 0; i < iters; ++i) {
      auto t0 = Clock::now();
      prim_.execute(stream_, {{DNNL_ARG_SRC, src_},
                              {DNNL_ARG_WEIGHTS, wei_},
                              {DNNL_ARG_DST, dst_}});
      stream_.wait();
      ms.push_back(MsSince(t0));
    }
    return ms;
  }

  std::string impl() const { return pd_.impl_info_str(); }

 private:
  static void Fill(memory& m, dt t, std::mt19937& rng) {
    const size_t n = m.get_desc().get_size();
    auto* p = static_cast<uint8_t*>(m.get_data_handle());
    if (t == dt::f32) {
      std::uniform_real_distribution<float> u(-1.f, 1.f);
      for (size_t i = 0; i < n / 4; ++i)
        reinterpret_cast<float*>(p)[i] = u(rng);
    } else if (t == dt::bf16) {
      std::uniform_real_distribution<float> u(-1.f, 1.f);
      for (size_t i = 0; i < n / 2; ++i) {
        float f = u(rng);
        uint32_t bits;
        std::memcpy(&bits, &f, 4);
        reinterpret_cast<uint16_t*>(p)[i] = uint16_t(bits >> 16);
      }
    } else {  // u8 / s8: small values so s32 accumulation cannot overflow
      for (size_t i = 0; i < n; ++i) p[i] = uint8_t(rng() % 16);
    }
  }

  dnnl::engine engine_{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream_{engine_};
  dnnl::matmul::primitive_desc pd_;
  dnnl::matmul prim_;
  memory src_, wei_, dst_;
};

// ------------------------------------------------------------ encoder runs

std::vector<SequenceTask> MakeTasks(const Shape& shape, int attn_layer,
                                    bool hidden) {
  std::vector<SequenceTask> tasks;
  for (size_t b = 0; b < shape.lengths.size(); ++b) {
    SequenceTask t;
    const int len = shape.lengths[b];
    for (int i = 0; i < len; ++i) t.token_ids.push_back(TokenId(b, i, len));
    t.pooling = PoolingMode::kCls;
    t.want_hidden = hidden;
    if (attn_layer >= 0) t.attention_layers = {attn_layer};
    tasks.push_back(std::move(t));
  }
  return tasks;
}

std::vector<SequenceTask> CheckTasks(int layers) {
  std::vector<SequenceTask> tasks;
  for (auto& ids : CheckBatch()) {
    SequenceTask t;
    t.token_ids = ids;
    t.want_hidden = true;
    for (int l = 0; l < layers; ++l) t.attention_layers.push_back(l);
    tasks.push_back(std::move(t));
  }
  return tasks;
}

std::string RssJson() {
  return absl::StrFormat(
      "\"vmhwm_kb\":%d,\"vmrss_kb\":%d,\"rss_anon_kb\":%d,\"rss_file_kb\":%d",
      ProcStatusKb("VmHWM"), ProcStatusKb("VmRSS"), ProcStatusKb("RssAnon"),
      ProcStatusKb("RssFile"));
}

template <typename T>
bool ReadFloats(const std::string& path, std::vector<T>* out) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) return false;
  const size_t n = f.tellg();
  out->resize(n / sizeof(T));
  f.seekg(0);
  return bool(f.read(reinterpret_cast<char*>(out->data()), n));
}

class Worker {
 public:
  explicit Worker(std::unique_ptr<Encoder> encoder)
      : encoder_(std::move(encoder)) {}

  // Handles one command line; false on quit.
  bool Handle(const std::string& line) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    try {
      if (cmd.empty()) return true;
      if (cmd == "quit") return false;
      if (cmd == "run") {
        std::string shape;
        int iters = 1, attn = -1;
        in >> shape >> iters >> attn;
        Run(shape, iters, attn);
      } else if (cmd == "matmul") {
        std::string type;
        int iters = 1;
        in >> type >> iters;
        Matmul(type, iters);
      } else if (cmd == "dump" || cmd == "compare") {
        std::string path;
        in >> path;
        if (cmd == "dump") {
          Dump(path);
        } else {
          Compare(path);
        }
      } else if (cmd == "rss") {
        Reply("{\"ok\":true," + RssJson() + "}");
      } else {
        ReplyError("unknown command: " + line);
      }
    } catch (const std::exception& e) {
      ReplyError(std::string("exception: ") + e.what());
    }
    return true;
  }

 private:
  void Run(const std::string& shape_name, int iters, int attn) {
    if (encoder_ == nullptr) return ReplyError("no model loaded");
    const Shape* shape = FindShape(shape_name);
    if (shape == nullptr) return ReplyError("unknown shape " + shape_name);
    const auto tasks = MakeTasks(*shape, attn, false);
    std::vector<double> ms;
    for (int i = 0; i < iters; ++i) {
      auto t0 = Clock::now();
      auto out = encoder_->Forward(tasks);
      const double t = MsSince(t0);
      if (!out.ok()) return ReplyError(std::string(out.status().message()));
      ms.push_back(t);
    }
    Reply("{\"ok\":true,\"ms\":" + JsonTimes(ms) + "}");
  }

  void Matmul(const std::string& type, int iters) {
    dt t = type == "f32" ? dt::f32 : type == "bf16" ? dt::bf16 : dt::s8;
    if (type != "f32" && type != "bf16" && type != "int8") {
      return ReplyError("matmul type must be f32, bf16 or int8");
    }
    auto& m = matmuls_[type];
    if (m == nullptr) m = std::make_unique<CeilingMatmul>(t);
    const auto ms = m->Time(iters);
    Reply(absl::StrFormat(
        "{\"ok\":true,\"ms\":%s,\"flops\":%.0f,\"impl\":%s}", JsonTimes(ms),
        2.0 * CeilingMatmul::kM * CeilingMatmul::kK * CeilingMatmul::kN,
        JsonString(m->impl())));
  }

  absl::StatusOr<std::vector<SequenceOutput>> RunCheck() {
    if (encoder_ == nullptr) return absl::FailedPreconditionError("no model");
    const auto tasks = CheckTasks(encoder_->info().config.num_layers);
    return encoder_->Forward(tasks);
  }

  void Dump(const std::string& path) {
    auto out = RunCheck();
    if (!out.ok()) return ReplyError(std::string(out.status().message()));
    const ModelConfig& c = encoder_->info().config;
    nlohmann::json j;
    j["hidden"] = c.hidden_size;
    j["layers"] = c.num_layers;
    j["heads"] = c.num_heads;
    j["precision"] = PrecisionName(encoder_->info().precision);
    const auto batch = CheckBatch();
    j["token_ids"] = batch;
    std::vector<int> lengths;
    for (auto& s : batch) lengths.push_back(int(s.size()));
    j["lengths"] = lengths;
    std::ofstream(path + ".json") << j.dump() << "\n";
    std::ofstream hf(path + ".hidden.f32", std::ios::binary);
    std::ofstream af(path + ".attn.f32", std::ios::binary);
    for (const SequenceOutput& o : *out) {
      hf.write(reinterpret_cast<const char*>(o.hidden.data()),
               o.hidden.size() * sizeof(float));
      af.write(reinterpret_cast<const char*>(o.attention.data()),
               o.attention.size() * sizeof(float));
    }
    if (!hf || !af) return ReplyError("cannot write " + path + ".*.f32");
    Reply("{\"ok\":true}");
  }

  // Cosine similarity of all hidden values (flattened), the smallest
  // per-token cosine, the largest absolute hidden and attention differences.
  void Compare(const std::string& path) {
    std::vector<float> ref_h, ref_a;
    if (!ReadFloats(path + ".hidden.f32", &ref_h) ||
        !ReadFloats(path + ".attn.f32", &ref_a)) {
      return ReplyError("cannot read " + path + ".*.f32");
    }
    auto out = RunCheck();
    if (!out.ok()) return ReplyError(std::string(out.status().message()));
    const int64_t h = encoder_->info().config.hidden_size;
    std::vector<float> hid, att;
    for (const SequenceOutput& o : *out) {
      hid.insert(hid.end(), o.hidden.begin(), o.hidden.end());
      att.insert(att.end(), o.attention.begin(), o.attention.end());
    }
    if (hid.size() != ref_h.size() || att.size() != ref_a.size()) {
      return ReplyError("dump has a different size");
    }
    double dot = 0, na = 0, nb = 0, max_h = 0, max_a = 0, min_tok = 1;
    for (size_t r = 0; r < hid.size() / h; ++r) {
      double d = 0, a2 = 0, b2 = 0;
      for (int64_t c = 0; c < h; ++c) {
        const double a = hid[r * h + c], b = ref_h[r * h + c];
        d += a * b;
        a2 += a * a;
        b2 += b * b;
        max_h = std::max(max_h, std::abs(a - b));
      }
      dot += d;
      na += a2;
      nb += b2;
      min_tok = std::min(min_tok, d / std::sqrt(a2 * b2));
    }
    for (size_t i = 0; i < att.size(); ++i) {
      max_a = std::max(max_a, double(std::abs(att[i] - ref_a[i])));
    }
    Reply(absl::StrFormat(
        "{\"ok\":true,\"cosine\":%.9f,\"min_token_cosine\":%.9f,"
        "\"max_abs_hidden\":%.6g,\"max_abs_attention\":%.6g}",
        dot / std::sqrt(na * nb), min_tok, max_h, max_a));
  }

  std::unique_ptr<Encoder> encoder_;
  std::map<std::string, std::unique_ptr<CeilingMatmul>> matmuls_;
};

int Main(int argc, char** argv) {
  std::string model, precision = "fp32", rss_shape, prune;
  std::string bf16_attention = "amx";  // amx | always | never
  bool worker = false;
  bool forward_thread = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* key) -> const char* {
      const size_t n = std::strlen(key);
      return a.compare(0, n, key) == 0 ? argv[i] + n : nullptr;
    };
    if (auto v = value("--model=")) {
      model = v;
    } else if (auto v = value("--precision=")) {
      precision = v;
    } else if (auto v = value("--rss=")) {
      rss_shape = v;
    } else if (auto v = value("--prune_heads=")) {
      prune = v;
    } else if (auto v = value("--bf16_attention=")) {
      bf16_attention = v;
    } else if (a == "--worker") {
      worker = true;
    } else if (a == "--forward-thread") {
      forward_thread = true;
    } else {
      std::fprintf(
          stderr,
          "usage: encoder_bench [--model=DIR] [--precision=P] "
          "[--prune_heads=L:H,...] [--bf16_attention=amx|always|never] "
          "(--worker [--forward-thread] | "
          "--rss=SHAPE)\n");
      return 2;
    }
  }
  auto prec = ParsePrecision(precision);
  if (!prec.ok()) {
    ReplyError(std::string(prec.status().message()));
    return 2;
  }

  const long before_load_kb = ProcStatusKb("VmRSS");
  std::unique_ptr<Encoder> encoder;
  double load_s = 0;
  if (!model.empty()) {
    auto t0 = Clock::now();
    EncoderOptions options;
    options.precision = *prec;
    auto heads = ParsePruneHeads(prune);
    if (!heads.ok()) {
      ReplyError(std::string(heads.status().message()));
      return 2;
    }
    options.prune_heads = *std::move(heads);
    options.bf16_attention = bf16_attention == "always" ? Bf16Attention::kAlways
                             : bf16_attention == "never"
                                 ? Bf16Attention::kNever
                                 : Bf16Attention::kWhereAmx;
    auto loaded = Encoder::Load(model, options);
    load_s = MsSince(t0) / 1e3;
    if (!loaded.ok()) {
      // "not available": the driver reports the message and goes on.
      ReplyError(
          absl::StrFormat("%s: %s", precision, loaded.status().ToString()));
      return 1;
    }
    encoder = std::move(*loaded);
  }
  std::string loaded_json = absl::StrFormat(
      "\"load_s\":%.3f,\"precision\":\"%s\",\"isa\":%s,%s", load_s, precision,
      JsonString(EffectiveCpuIsa()), RssJson());
  if (encoder != nullptr) {
    // The kernel oneDNN picks for this model's FFN-in matmul at 8x128's rows,
    // made apart from the encoder's (same shape and spec, so the same pick).
    const ModelConfig& c = encoder->info().config;
    DnnlContext ctx;
    LinearKernels ffn1(&ctx, c.intermediate_size, c.hidden_size,
                       LinearSpec{c.activation, false, *prec});
    auto impl = ffn1.ImplName(RowBucket(8 * 128));
    loaded_json +=
        absl::StrFormat(",\"attention_bf16\":%s",
                        encoder->info().attention_bf16 ? "true" : "false");
    loaded_json += absl::StrFormat(
        ",\"linear_impl\":%s",
        JsonString(impl.ok() ? *impl : impl.status().ToString()));
    // And the attention matmuls' at 8x128, f32 or bf16 as this model runs.
    Attention attention(&ctx, c.num_heads, c.head_size(),
                        encoder->info().attention_bf16);
    auto names = attention.ImplNames(8, 128);
    loaded_json += absl::StrFormat(
        ",\"attention_impl\":%s",
        JsonString(names.ok() ? *names : names.status().ToString()));
  }

  if (!rss_shape.empty()) {
    const Shape* shape = FindShape(rss_shape);
    if (encoder == nullptr || shape == nullptr) {
      ReplyError("--rss needs --model and a known shape");
      return 2;
    }
    const long after_load_kb = ProcStatusKb("VmRSS");
    const long load_peak_kb = ProcStatusKb("VmHWM");
    // Writing 5 to clear_refs resets VmHWM (Linux >= 4.0), so the peak below
    // is the forward pass's, not the loader's transient f32 copies.
    const bool reset = bool(std::ofstream("/proc/self/clear_refs") << "5");
    auto out = encoder->Forward(MakeTasks(*shape, -1, false));
    if (!out.ok()) {
      ReplyError(std::string(out.status().message()));
      return 1;
    }
    Reply(absl::StrFormat(
        "{\"ok\":true,\"before_load_kb\":%d,\"after_load_kb\":%d,"
        "\"load_peak_kb\":%d,\"forward_peak_kb\":%d,\"peak_reset\":%s}",
        before_load_kb, after_load_kb, load_peak_kb,
        reset ? ProcStatusKb("VmHWM") : -1, reset ? "true" : "false"));
    return 0;
  }
  if (!worker) return 2;

  Reply("{\"ok\":true," + loaded_json + "}");
  Worker w(std::move(encoder));
  auto serve = [&w] {
    std::string line;
    while (std::getline(std::cin, line)) {
      if (!w.Handle(line)) break;
    }
  };
  if (forward_thread) {
    // As the server does it: loaded on the main thread, run on another one
    // (libgomp then manages two thread teams; see BENCHMARKS.md).
    std::thread t(serve);
    t.join();
  } else {
    serve();
  }
  return 0;
}

}  // namespace
}  // namespace attnserve::bench

int main(int argc, char** argv) { return attnserve::bench::Main(argc, argv); }
