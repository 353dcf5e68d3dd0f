// attnctl: command-line client for attnserve.
//
//   attnctl info
//   attnctl encode --ids 101,7592,102 [--attention] [--layers 0,3] [--heads 1]
//                  [--fp16] [--hidden] [--json]
//
// Every call carries a deadline (--timeout). A non-OK status prints
// "attnctl: <CODE>: <message>" on stderr and exits 1.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "grpcpp/grpcpp.h"
#include "proto/attnserve.grpc.pb.h"

namespace attnserve {
namespace {

constexpr char kUsage[] =
    R"(attnctl: command-line client for the attnserve gRPC server

Usage:
  attnctl info   [common flags]
  attnctl encode --ids IDS [--ids IDS ...] [encode flags] [common flags]

Commands:
  info      Print the served model's description (GetModelInfo).
  encode    Encode token-id sequences (Encode) and print a summary: shapes, a
            few hidden-state values, and the strongest attention (query -> key)
            of every returned layer/head. --json prints everything instead.

Common flags:
  --target=HOST:PORT   server address (default localhost:50051)
  --timeout=SECONDS    deadline of the call (default 30)
  --model=NAME         model to ask for (default: the server's model)
  -h, --help           this text

Encode flags:
  --ids=101,7592,102   token ids of one sequence, [CLS]/[SEP] included;
                       repeat --ids for several sequences in one request
  --type-ids=0,0,0     token type ids of the matching --ids (default all 0)
  --attention          return attention maps (all layers and heads unless
                       --layers/--heads narrow them; those imply --attention)
  --layers=0,3         layers to return, in this order
  --heads=1            heads to return, in this order
  --fp16               attention as FLOAT16 (half the bytes; implies
                       --attention)
  --hidden             return the last hidden states (T, hidden)
  --pooling=cls|mean|pooler  return a pooled embedding
  --normalize          L2-normalize the embedding
  --json               print the full response as JSON: every tensor as
                       {"dtype", "shape", "values"} with values nested by shape

Flags take a value as --flag=value or --flag value. Example:
  attnctl encode --ids 2,15,27,3 --attention --layers 1 --heads 0,2 --fp16
)";

struct Flags {
  std::string command;
  std::string target = "localhost:50051";
  double timeout_seconds = 30;
  std::string model;
  std::vector<std::vector<int32_t>> ids;
  std::vector<std::vector<int32_t>> type_ids;
  bool attention = false;
  std::vector<int32_t> layers;
  std::vector<int32_t> heads;
  bool fp16 = false;
  bool hidden = false;
  std::string pooling;
  bool normalize = false;
  bool json = false;
};

[[noreturn]] void UsageError(const std::string& message) {
  std::fprintf(stderr, "attnctl: %s\nRun 'attnctl --help' for usage.\n",
               message.c_str());
  std::exit(2);
}

std::vector<int32_t> ParseIntList(const std::string& flag,
                                  const std::string& text) {
  std::vector<int32_t> out;
  for (absl::string_view part :
       absl::StrSplit(text, absl::ByAnyChar(", "), absl::SkipEmpty())) {
    int32_t v;
    if (!absl::SimpleAtoi(part, &v)) {
      UsageError(
          absl::StrCat("--", flag, ": \"", part, "\" is not an integer"));
    }
    out.push_back(v);
  }
  return out;
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  const std::vector<std::string> with_value = {"target", "timeout",  "model",
                                               "ids",    "type-ids", "layers",
                                               "heads",  "pooling"};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help" || arg == "help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (!absl::StartsWith(arg, "--")) {
      if (!f.command.empty()) {
        UsageError(absl::StrCat("unexpected argument \"", arg, "\""));
      }
      f.command = arg;
      continue;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    std::replace(name.begin(), name.end(), '_', '-');
    const bool needs_value = std::find(with_value.begin(), with_value.end(),
                                       name) != with_value.end();
    if (needs_value && !value) {
      if (i + 1 >= argc) UsageError(absl::StrCat("--", name, " needs a value"));
      value = argv[++i];
    }
    if (!needs_value && value) {
      UsageError(absl::StrCat("--", name, " takes no value"));
    }
    if (name == "target") {
      f.target = *value;
    } else if (name == "timeout") {
      std::string v(absl::StripSuffix(*value, "s"));
      if (!absl::SimpleAtod(v, &f.timeout_seconds) || f.timeout_seconds <= 0) {
        UsageError(absl::StrCat("--timeout: \"", *value,
                                "\" is not a positive number of seconds"));
      }
    } else if (name == "model") {
      f.model = *value;
    } else if (name == "ids") {
      f.ids.push_back(ParseIntList(name, *value));
    } else if (name == "type-ids") {
      f.type_ids.push_back(ParseIntList(name, *value));
    } else if (name == "layers") {
      f.layers = ParseIntList(name, *value);
      f.attention = true;
    } else if (name == "heads") {
      f.heads = ParseIntList(name, *value);
      f.attention = true;
    } else if (name == "pooling") {
      f.pooling = *value;
    } else if (name == "attention") {
      f.attention = true;
    } else if (name == "fp16") {
      f.fp16 = true;
    } else if (name == "hidden") {
      f.hidden = true;
    } else if (name == "normalize") {
      f.normalize = true;
    } else if (name == "json") {
      f.json = true;
    } else {
      UsageError(absl::StrCat("unknown flag --", name));
    }
  }
  if (f.command.empty()) UsageError("missing command: info or encode");
  if (f.command != "info" && f.command != "encode") {
    UsageError(absl::StrCat("unknown command \"", f.command,
                            "\": use info or encode"));
  }
  if (f.command == "encode") {
    if (f.ids.empty())
      UsageError("encode needs --ids (e.g. --ids 101,7592,102)");
    if (!f.type_ids.empty() && f.type_ids.size() != f.ids.size()) {
      UsageError(absl::StrCat("got ", f.type_ids.size(), " --type-ids for ",
                              f.ids.size(), " --ids: give one per sequence"));
    }
  }
  return f;
}

std::string CodeName(grpc::StatusCode code) {
  static const char* const kNames[] = {"OK",
                                       "CANCELLED",
                                       "UNKNOWN",
                                       "INVALID_ARGUMENT",
                                       "DEADLINE_EXCEEDED",
                                       "NOT_FOUND",
                                       "ALREADY_EXISTS",
                                       "PERMISSION_DENIED",
                                       "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION",
                                       "ABORTED",
                                       "OUT_OF_RANGE",
                                       "UNIMPLEMENTED",
                                       "INTERNAL",
                                       "UNAVAILABLE",
                                       "DATA_LOSS",
                                       "UNAUTHENTICATED"};
  const int i = static_cast<int>(code);
  if (i >= 0 && i < static_cast<int>(std::size(kNames))) return kNames[i];
  return absl::StrCat("CODE_", i);
}

[[noreturn]] void Fail(const grpc::Status& status) {
  std::fprintf(stderr, "attnctl: %s: %s\n",
               CodeName(status.error_code()).c_str(),
               status.error_message().c_str());
  std::exit(1);
}

[[noreturn]] void FailResponse(const std::string& message) {
  std::fprintf(stderr, "attnctl: bad response: %s\n", message.c_str());
  std::exit(1);
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exponent = (h >> 10) & 0x1f;
  const uint32_t mantissa = h & 0x3ff;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent == 0) {
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    std::memcpy(&bits, &magnitude, 4);
    bits |= sign;
  } else {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// A decoded Tensor.
struct Array {
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<float> values;  // row-major
};

Array Decode(const v1::Tensor& t, const std::string& what) {
  Array a;
  a.shape.assign(t.shape().begin(), t.shape().end());
  int64_t n = 1;
  for (int64_t d : a.shape) n *= d;
  const std::string& data = t.data();
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  if (t.dtype() == v1::FLOAT16) {
    a.dtype = "float16";
    if (static_cast<int64_t>(data.size()) != 2 * n) {
      FailResponse(absl::StrCat(what, ": ", data.size(), " bytes for ", n,
                                " float16 values"));
    }
    a.values.resize(n);
    for (int64_t i = 0; i < n; ++i) {
      a.values[i] = HalfToFloat(static_cast<uint16_t>(
          bytes[2 * i] | (static_cast<uint16_t>(bytes[2 * i + 1]) << 8)));
    }
  } else if (t.dtype() == v1::FLOAT32) {
    a.dtype = "float32";
    if (static_cast<int64_t>(data.size()) != 4 * n) {
      FailResponse(absl::StrCat(what, ": ", data.size(), " bytes for ", n,
                                " float32 values"));
    }
    a.values.resize(n);
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t u = bytes[4 * i] | (uint32_t{bytes[4 * i + 1]} << 8) |
                         (uint32_t{bytes[4 * i + 2]} << 16) |
                         (uint32_t{bytes[4 * i + 3]} << 24);
      std::memcpy(&a.values[i], &u, 4);
    }
  } else {
    FailResponse(
        absl::StrCat(what, ": unknown dtype ", static_cast<int>(t.dtype())));
  }
  return a;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("(", absl::StrJoin(shape, ", "), ")");
}

// ---- JSON ---------------------------------------------------------------

std::string JsonNumber(float v) {
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.9g", v);
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

// Values nested by shape: [[...], [...]].
void JsonNested(const Array& a, size_t dim, int64_t offset, std::string* out) {
  if (dim == a.shape.size()) {
    *out += JsonNumber(a.values[offset]);
    return;
  }
  int64_t stride = 1;
  for (size_t d = dim + 1; d < a.shape.size(); ++d) stride *= a.shape[d];
  *out += "[";
  for (int64_t i = 0; i < a.shape[dim]; ++i) {
    if (i > 0) *out += ",";
    JsonNested(a, dim + 1, offset + i * stride, out);
  }
  *out += "]";
}

std::string JsonTensor(const Array& a) {
  std::string out =
      absl::StrCat("{\"dtype\": ", JsonString(a.dtype), ", \"shape\": [",
                   absl::StrJoin(a.shape, ", "), "], \"values\": ");
  JsonNested(a, 0, 0, &out);
  return out + "}";
}

// ---- commands -------------------------------------------------------------

std::unique_ptr<v1::Encoder::Stub> Connect(const Flags& f) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);  // attention maps can be large
  return v1::Encoder::NewStub(grpc::CreateCustomChannel(
      f.target, grpc::InsecureChannelCredentials(), args));
}

void SetDeadline(const Flags& f, grpc::ClientContext* context) {
  context->set_deadline(
      std::chrono::system_clock::now() +
      std::chrono::microseconds(static_cast<int64_t>(f.timeout_seconds * 1e6)));
}

const char* PoolingName(v1::Pooling p) { return v1::Pooling_Name(p).c_str(); }

int Info(const Flags& f) {
  auto stub = Connect(f);
  grpc::ClientContext context;
  SetDeadline(f, &context);
  v1::GetModelInfoRequest request;
  request.set_model(f.model);
  v1::ModelInfo info;
  grpc::Status status = stub->GetModelInfo(&context, request, &info);
  if (!status.ok()) Fail(status);
  if (f.json) {
    std::printf(
        "{\"name\": %s, \"num_layers\": %d, \"num_heads\": %d, "
        "\"hidden_size\": %d, \"intermediate_size\": %d, \"vocab_size\": %d, "
        "\"max_position_embeddings\": %d, \"type_vocab_size\": %d, "
        "\"weight_dtype\": %s, \"precision\": %s, \"has_pooler\": %s, "
        "\"has_tokenizer\": %s, \"default_pooling\": %s}\n",
        JsonString(info.name()).c_str(), info.num_layers(), info.num_heads(),
        info.hidden_size(), info.intermediate_size(), info.vocab_size(),
        info.max_position_embeddings(), info.type_vocab_size(),
        JsonString(info.weight_dtype()).c_str(),
        JsonString(info.precision()).c_str(),
        info.has_pooler() ? "true" : "false",
        info.has_tokenizer() ? "true" : "false",
        JsonString(PoolingName(info.default_pooling())).c_str());
    return 0;
  }
  std::printf("model                    %s\n", info.name().c_str());
  std::printf("layers                   %d\n", info.num_layers());
  std::printf("heads                    %d (head size %d)\n", info.num_heads(),
              info.num_heads() > 0 ? info.hidden_size() / info.num_heads() : 0);
  std::printf("hidden size              %d\n", info.hidden_size());
  std::printf("intermediate size        %d\n", info.intermediate_size());
  std::printf("vocab size               %d\n", info.vocab_size());
  std::printf("type vocab size          %d\n", info.type_vocab_size());
  std::printf("max position embeddings  %d\n", info.max_position_embeddings());
  std::printf("stored weights           %s\n", info.weight_dtype().c_str());
  std::printf("compute precision        %s\n", info.precision().c_str());
  std::printf("pooler                   %s\n",
              info.has_pooler() ? "yes" : "no");
  std::printf("tokenizer                %s\n",
              info.has_tokenizer() ? "yes" : "no");
  std::printf("default pooling          %s\n",
              PoolingName(info.default_pooling()));
  return 0;
}

v1::Pooling ParsePooling(const std::string& name) {
  if (name.empty()) return v1::POOLING_UNSPECIFIED;
  if (name == "none") return v1::POOLING_NONE;
  if (name == "cls") return v1::POOLING_CLS;
  if (name == "mean") return v1::POOLING_MEAN;
  if (name == "pooler") return v1::POOLING_POOLER;
  UsageError(
      absl::StrCat("--pooling=", name, ": use none, cls, mean or pooler"));
}

std::string FewValues(const float* v, int64_t n, int64_t shown) {
  std::vector<std::string> parts;
  for (int64_t i = 0; i < std::min(n, shown); ++i) {
    parts.push_back(absl::StrFormat("%.4f", v[i]));
  }
  if (n > shown) parts.push_back("...");
  return absl::StrJoin(parts, " ");
}

// Labels of the returned layers or heads: what was asked, or 0..n-1.
std::vector<int32_t> Labels(const std::vector<int32_t>& asked, int64_t n) {
  if (!asked.empty()) return asked;
  std::vector<int32_t> all(n);
  for (int64_t i = 0; i < n; ++i) all[i] = static_cast<int32_t>(i);
  return all;
}

void PrintSummary(const Flags& f, const v1::EncodeResponse& response) {
  std::printf("model %s: %d sequence%s\n", response.model().c_str(),
              response.results_size(), response.results_size() == 1 ? "" : "s");
  for (int s = 0; s < response.results_size(); ++s) {
    const v1::SequenceResult& r = response.results(s);
    const std::vector<int32_t>& ids = f.ids[s];
    std::printf("sequence %d: %zu tokens [%s]\n", s, ids.size(),
                absl::StrJoin(ids, " ").c_str());
    if (r.has_hidden_states()) {
      Array h = Decode(r.hidden_states(), "hidden_states");
      std::printf("  hidden_states %s %s\n", ShapeString(h.shape).c_str(),
                  h.dtype.c_str());
      if (h.shape.size() == 2 && h.shape[0] > 0) {
        const int64_t rows = h.shape[0], width = h.shape[1];
        for (int64_t row : {int64_t{0}, rows - 1}) {
          std::printf(
              "    token %-4lld %s\n", static_cast<long long>(row),
              FewValues(h.values.data() + row * width, width, 6).c_str());
          if (rows == 1) break;
        }
      }
    }
    if (r.has_embedding()) {
      Array e = Decode(r.embedding(), "embedding");
      std::printf("  embedding %s %s: %s\n", ShapeString(e.shape).c_str(),
                  e.dtype.c_str(),
                  FewValues(e.values.data(), e.values.size(), 6).c_str());
    }
    if (r.has_attention()) {
      Array a = Decode(r.attention(), "attention");
      std::printf("  attention %s %s [layers, heads, query, key]\n",
                  ShapeString(a.shape).c_str(), a.dtype.c_str());
      if (a.shape.size() != 4) FailResponse("attention is not 4-D");
      const int64_t t = a.shape[2];
      const std::vector<int32_t> layers = Labels(f.layers, a.shape[0]);
      const std::vector<int32_t> heads = Labels(f.heads, a.shape[1]);
      for (int64_t l = 0; l < a.shape[0]; ++l) {
        for (int64_t h = 0; h < a.shape[1]; ++h) {
          const float* map = a.values.data() + (l * a.shape[1] + h) * t * t;
          int64_t best = 0;
          double mean_max = 0;  // how peaked the rows are, on average
          for (int64_t q = 0; q < t; ++q) {
            float row_max = 0;
            for (int64_t k = 0; k < t; ++k) {
              if (map[q * t + k] > map[best]) best = q * t + k;
              row_max = std::max(row_max, map[q * t + k]);
            }
            mean_max += row_max / static_cast<double>(t);
          }
          std::printf(
              "    layer %d head %d: strongest %lld -> %lld (%.4f), mean row "
              "max %.3f\n",
              l < static_cast<int64_t>(layers.size()) ? layers[l] : -1,
              h < static_cast<int64_t>(heads.size()) ? heads[h] : -1,
              static_cast<long long>(t > 0 ? best / t : 0),
              static_cast<long long>(t > 0 ? best % t : 0),
              t > 0 ? map[best] : 0.0f, mean_max);
        }
      }
    }
  }
}

void PrintJson(const v1::EncodeResponse& response) {
  std::string out = absl::StrCat("{\"model\": ", JsonString(response.model()),
                                 ", \"results\": [");
  for (int s = 0; s < response.results_size(); ++s) {
    const v1::SequenceResult& r = response.results(s);
    out += s > 0 ? ",\n  {" : "\n  {";
    std::vector<std::string> fields;
    if (r.has_hidden_states()) {
      fields.push_back(
          absl::StrCat("\"hidden_states\": ",
                       JsonTensor(Decode(r.hidden_states(), "hidden_states"))));
    }
    if (r.has_embedding()) {
      fields.push_back(absl::StrCat(
          "\"embedding\": ", JsonTensor(Decode(r.embedding(), "embedding"))));
    }
    if (r.has_attention()) {
      fields.push_back(absl::StrCat(
          "\"attention\": ", JsonTensor(Decode(r.attention(), "attention"))));
    }
    out += absl::StrJoin(fields, ",\n   ");
    out += "}";
  }
  out += "\n]}\n";
  std::fputs(out.c_str(), stdout);
}

int Encode(const Flags& f) {
  v1::EncodeRequest request;
  request.set_model(f.model);
  for (size_t s = 0; s < f.ids.size(); ++s) {
    v1::Sequence* seq = request.add_sequences();
    seq->mutable_token_ids()->Add(f.ids[s].begin(), f.ids[s].end());
    if (!f.type_ids.empty()) {
      seq->mutable_token_type_ids()->Add(f.type_ids[s].begin(),
                                         f.type_ids[s].end());
    }
  }
  request.set_return_hidden_states(f.hidden);
  request.set_pooling(ParsePooling(f.pooling));
  request.set_normalize(f.normalize);
  if (f.attention || f.fp16) {
    v1::AttentionRequest* a = request.mutable_attention();
    a->mutable_layers()->Add(f.layers.begin(), f.layers.end());
    a->mutable_heads()->Add(f.heads.begin(), f.heads.end());
    a->set_dtype(f.fp16 ? v1::FLOAT16 : v1::FLOAT32);
  }
  auto stub = Connect(f);
  grpc::ClientContext context;
  SetDeadline(f, &context);
  v1::EncodeResponse response;
  grpc::Status status = stub->Encode(&context, request, &response);
  if (!status.ok()) Fail(status);
  if (response.results_size() != request.sequences_size()) {
    FailResponse(absl::StrCat(response.results_size(), " results for ",
                              request.sequences_size(), " sequences"));
  }
  if (f.json) {
    PrintJson(response);
  } else {
    PrintSummary(f, response);
  }
  return 0;
}

}  // namespace
}  // namespace attnserve

int main(int argc, char** argv) {
  const attnserve::Flags flags = attnserve::ParseFlags(argc, argv);
  if (flags.command == "info") return attnserve::Info(flags);
  return attnserve::Encode(flags);
}
