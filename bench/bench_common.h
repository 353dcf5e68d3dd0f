// What every benchmark program agrees on: the shapes, the token ids, the FLOP
// count, and the line protocol the driver (bench/run.py) speaks to workers.
//
// bench/torch_bench.py and bench/ort_bench.js repeat Shapes() and TokenId()
// (three lines each); bench/run.py checks they agree by comparing outputs.
#ifndef ATTNSERVE_BENCH_BENCH_COMMON_H_
#define ATTNSERVE_BENCH_BENCH_COMMON_H_

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace attnserve::bench {

// A batch: one length per sequence (lengths include [CLS] and [SEP]).
struct Shape {
  std::string name;
  std::vector<int> lengths;
};

inline std::vector<Shape> Shapes() {
  std::vector<Shape> s = {{"1x16", {16}},
                          {"1x128", {128}},
                          {"8x128", std::vector<int>(8, 128)},
                          {"32x128", std::vector<int>(32, 128)},
                          {"8x512", std::vector<int>(8, 512)},
                          {"ragged", {}}};
  for (int t = 16; t <= 128; t += 16) s.back().lengths.push_back(t);  // 16..128
  return s;
}

inline const Shape* FindShape(const std::string& name) {
  static const std::vector<Shape> shapes = Shapes();
  for (const Shape& s : shapes) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

// Token id of position t of sequence b (length len): [CLS]=101 first,
// [SEP]=102 last, a fixed pseudo-random word id in [1000, 30522) between.
inline int32_t TokenId(int b, int t, int len) {
  if (t == 0) return 101;
  if (t == len - 1) return 102;
  return 1000 + static_cast<int32_t>(
                    (uint32_t(b) * 1000003u + uint32_t(t) * 7919u + 12345u) %
                    29522u);
}

// BERT-base matmul FLOPs of one forward pass over the real tokens (docs/ARCHITECTURE.md §6
// generalized to ragged batches): per sequence of length S, per layer,
// 2·S·(4·H² + 2·H·I) for the linear layers and 4·S²·H for Q·Kᵀ and P·V; plus
// the pooler's 2·H² per sequence.
inline double MatmulFlops(const std::vector<int>& lengths, int layers = 12,
                          double h = 768, double inter = 3072) {
  double f = 0;
  for (int s : lengths) {
    f += layers * (2.0 * s * (4 * h * h + 2 * h * inter) + 4.0 * s * s * h);
    f += 2 * h * h;
  }
  return f;
}

// /proc/self/status fields in kB (VmHWM, VmRSS, RssAnon, RssFile), or -1.
inline long ProcStatusKb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string k = std::string(key) + ":";
  while (std::getline(f, line)) {
    if (line.compare(0, k.size(), k) == 0) {
      return std::stol(line.substr(k.size()));
    }
  }
  return -1;
}

// JSON string literal for an error message.
inline std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out + "\"";
}

inline std::string JsonTimes(const std::vector<double>& ms) {
  std::ostringstream o;
  o.precision(6);
  o << "[";
  for (size_t i = 0; i < ms.size(); ++i) o << (i ? "," : "") << ms[i];
  return o.str() + "]";
}

// One reply line per command, flushed: the driver blocks on it.
inline void Reply(const std::string& json) {
  std::fputs(json.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

inline void ReplyError(const std::string& msg) {
  Reply("{\"ok\":false,\"error\":" + JsonString(msg) + "}");
}

// The check batch written by `encoder_bench dump` and read by every worker's
// `check`: <path>.json says {"hidden":768,"layers":12,"heads":12,
// "lengths":[...],"token_ids":[[...],...]}; <path>.hidden.f32 holds the
// sequences' (T, H) last hidden states back to back, <path>.attn.f32 their
// (layers, heads, T, T) attention probabilities, little-endian float32.
inline std::vector<std::vector<int32_t>> CheckBatch() {
  std::vector<std::vector<int32_t>> ids;
  const int lengths[] = {16, 32, 48, 64, 80, 96, 112, 128};
  for (int b = 0; b < 8; ++b) {
    std::vector<int32_t> seq;
    for (int t = 0; t < lengths[b]; ++t) {
      seq.push_back(TokenId(100 + b, t, lengths[b]));
    }
    ids.push_back(seq);
  }
  return ids;
}

}  // namespace attnserve::bench

#endif  // ATTNSERVE_BENCH_BENCH_COMMON_H_
