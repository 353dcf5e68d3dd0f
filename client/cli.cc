#include "client/cli.h"

#include <utf8proc.h>

#include <algorithm>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace attnserve::client {

const char kUsage[] =
    R"(attnctl: command-line client for the attnserve gRPC server

Usage:
  attnctl info
  attnctl models
  attnctl tokenize TEXT... [--pair TEXT] [--truncate]
  attnctl encode TEXT... | --ids IDS... [--pair TEXT] [--pooling P]
                 [--normalize] [--hidden] [--attention] [--layers L]
                 [--heads H] [--query WORD | --query-positions N] [--fp16]
  attnctl similarity TEXT TEXT... [--pooling P]
  attnctl heads TEXT... [--top N] [--layers L] [--no-rank]
  attnctl attention TEXT --html OUT.html [--layers L] [--heads H] [--rank]
  attnctl prune-curve TEXT... [--pooling P] [--step N] [--html OUT.html]
  attnctl bench [TEXT... | --ids IDS... | --tokens T] [--rpc R] [--batch B]
                [--concurrency N] [--connections C]
                [--duration S | --requests N] [--stream] [--json]
                [--attention] [--layers L] [--heads H] [--fp16] [--hidden]
                [--pooling P] [--normalize] [--mask M]

Commands:
  info        The served model (GetModelInfo; --model=NAME picks one).
  models      Every served model, the default first (ListModels).
  tokenize    Tokens, ids, type ids and byte offsets of each text (Tokenize).
  encode      Encode and summarize: the embedding (dim, norm, first values),
              hidden states, and with --attention, per layer and head, each
              token's strongest target ("it -> animal 0.620").
  similarity  Cosine of the embeddings of the texts (one Encode call); for
              more than two texts, the matrix of cosines.
  heads       Per-head statistics (entropy, mean distance, strongest
              pattern: layers x heads grids), each layer's head diversity,
              and the heads and layers that matter most (RankHeads).
  attention   The attention of one text as a self-contained HTML page: the
              head view (lines between tokens, per layer and head) and a
              grid of per-head heatmaps with their statistics, plus the
              attention rollout, and the RankHeads importance grid
              (--no-rank: without it; --rank: also the pruning curve).
              Without --html, prints what encode --attention prints.
  prune-curve RankHeads, then the k least important heads masked together
              for k = 0, step, ..., all (one batched Encode per step): k,
              the fraction of heads kept, and the cosine of the pooled
              output against the unmasked one (Michel et al. 2019: many
              heads can go at test time; this measures it for your model).
  bench       Load generator: --concurrency workers, each keeping one call
              in flight, for --duration or --requests calls, with a live
              progress line on stderr; then requests, sequences and tokens
              per second, latency p50/p90/p99/max of the OK calls, and the
              count of each status code (--json: one JSON object).

Input:
  TEXT                 text tokenized by the server (quote it); several
                       texts are several sequences; "--" ends the flags
  --pair=TEXT          second segment of a sentence pair (one TEXT only)
  --ids=101,7592,102   token ids of one sequence, [CLS]/[SEP] included;
                       repeat for several sequences (instead of TEXT)
  --type-ids=0,0,0     token type ids of the matching --ids (default all 0)
  --truncate           cut text longer than the model's max positions
                       (longest first) instead of refusing it

Outputs:
  --pooling=cls|mean|pooler|none   pooled embedding (default: the model's)
  --normalize          L2-normalize the embedding
  --hidden             the last hidden states (T, hidden)
  --attention          attention maps (all layers and heads unless --layers
                       or --heads narrow them; those imply --attention)
  --layers=0,3         layers, in this order
  --heads=1            heads, in this order
  --query=WORD         print only the rows of this token (repeatable; a
                       "##" piece matches without "##"), with its --top
                       targets (default 3)
  --query-positions=9  ask the server for only these query rows
  --fp16               attention as FLOAT16 (half the bytes)
  --mask=2:5,3:*       switch heads off (layer:head; layer:* = all its heads)
  --top=N              heads: how many ranked heads to show (default 10)
  --no-rank            heads, attention: no RankHeads call
  --rank               attention: add the pruning curve to the page
  --step=N             prune-curve: heads masked per step (default: about
                       24 steps)
  --html=FILE          attention, prune-curve: write the HTML page to FILE
  --json               print the response as JSON (tensors as nested values)

Bench:
  --rpc=encode|tokenize|oip   what each call is: Encode (default), Tokenize,
                       or the Open Inference Protocol's ModelInfer (input_ids
                       or text in; embedding, --hidden's last_hidden_state,
                       --attention's attentions out)
  --concurrency=N      workers, each with one call in flight (default 1)
  --connections=C      channels (each its own HTTP/2 connection) the workers
                       share in turn (default: one per worker)
  --duration=S         seconds to run (default 10)
  --requests=N         run N calls in all instead
  --batch=B            sequences per call (default 1); TEXTs and --ids are
                       used in turn
  --tokens=T           synthetic sequences of T tokens: [CLS], random ids of
                       the model's vocab, [SEP] (the default when no TEXT
                       or --ids is given: T = 128, or the model's max
                       positions if fewer)
  --stream             encode over EncodeStream: one stream per worker, one
                       message in flight on each

Connection:
  --target=TARGET      server address (default localhost:50051), or any gRPC
                       target: dns:///NAME:PORT (every address of NAME, e.g.
                       a headless Service), ipv4:HOST:A,HOST:B (replicas)
  --lb=POLICY          round_robin (default: each call to the next ready
                       replica; draining replicas are skipped) or pick_first
  --retries=N          retries of a call that finds a replica gone
                       (UNAVAILABLE), 0-4 (default 4; every call is
                       idempotent)
  --timeout=SECONDS    deadline of each call (default 30)
  --model=NAME         model to ask for (default: the server's)
  --tls                connect with TLS (implied by the next four)
  --ca=PEM             CA certificates to verify the server with (default:
                       the system's roots)
  --cert=PEM --key=PEM client certificate and key (servers that require
                       one: mTLS)
  --server-name=NAME   the name the server's certificate must carry
                       (default: the host of --target)
  --token-file=FILE    send "authorization: Bearer <token>" with the token
                       in FILE (default: $ATTNSERVE_TOKEN, if set)
  --verbose            print the server's timings of each call on stderr
                       (x-total-time, x-queue-time, ... in ms)
  -h, --help           this text

Flags take a value as --flag=value or --flag value. Examples:
  attnctl encode "The animal didn't cross the street because it was too tired" \
      --attention --layers 5 --query it
  attnctl similarity "a cat sat" "a dog sat" --pooling mean
  attnctl attention "the cat sat on the mat" --html attention.html
A failed call prints "attnctl: CODE: message" and exits 1; a bad command
line exits 2.
)";

namespace {

absl::Status Usage(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

absl::StatusOr<std::vector<int32_t>> IntList(absl::string_view flag,
                                             absl::string_view text) {
  std::vector<int32_t> out;
  for (absl::string_view part :
       absl::StrSplit(text, absl::ByAnyChar(", "), absl::SkipEmpty())) {
    int32_t v;
    if (!absl::SimpleAtoi(part, &v)) {
      return Usage(
          absl::StrCat("--", flag, ": \"", part, "\" is not an integer"));
    }
    out.push_back(v);
  }
  if (out.empty()) return Usage(absl::StrCat("--", flag, " is empty"));
  return out;
}

// "2:5,3:*" → {(2, 5), (3, -1)}
absl::StatusOr<std::vector<std::pair<int, int>>> HeadList(
    absl::string_view text) {
  std::vector<std::pair<int, int>> out;
  for (absl::string_view part :
       absl::StrSplit(text, absl::ByAnyChar(", "), absl::SkipEmpty())) {
    std::vector<absl::string_view> lh = absl::StrSplit(part, ':');
    int layer, head = -1;
    if (lh.size() != 2 || !absl::SimpleAtoi(lh[0], &layer) || layer < 0 ||
        (lh[1] != "*" && (!absl::SimpleAtoi(lh[1], &head) || head < 0))) {
      return Usage(absl::StrCat("--mask: \"", part,
                                "\" is not LAYER:HEAD or LAYER:* (e.g. 2:5)"));
    }
    out.emplace_back(layer, head);
  }
  if (out.empty()) return Usage("--mask is empty");
  return out;
}

absl::StatusOr<v1::Pooling> ParsePooling(absl::string_view name) {
  if (name == "none") return v1::POOLING_NONE;
  if (name == "cls") return v1::POOLING_CLS;
  if (name == "mean") return v1::POOLING_MEAN;
  if (name == "pooler") return v1::POOLING_POOLER;
  return Usage(
      absl::StrCat("--pooling=", name, ": use cls, mean, pooler or none"));
}

constexpr const char* kCommands[] = {"info",      "models",      "tokenize",
                                     "encode",    "similarity",  "heads",
                                     "attention", "prune-curve", "bench"};

// Whether any bench flag differs from its default.
bool BenchFlagsGiven(const BenchFlags& b) {
  const BenchFlags d;
  return b.rpc != d.rpc || b.concurrency != d.concurrency ||
         b.connections != d.connections ||
         b.duration_seconds != d.duration_seconds || b.requests != d.requests ||
         b.batch != d.batch || b.tokens != d.tokens || b.stream != d.stream;
}

absl::Status CheckBench(const Flags& f) {
  const BenchFlags& b = f.bench;
  if (b.tokens > 0 && (!f.texts.empty() || !f.ids.empty())) {
    return Usage("bench: give --tokens or TEXT/--ids, not both");
  }
  if (b.duration_seconds > 0 && b.requests > 0) {
    return Usage("bench: give --duration or --requests, not both");
  }
  if (b.stream && b.rpc != "encode") {
    return Usage("bench: --stream goes with --rpc encode (EncodeStream)");
  }
  if (b.rpc == "tokenize" &&
      (f.attention || f.hidden || f.pooling != v1::POOLING_UNSPECIFIED ||
       f.normalize || !f.mask.empty())) {
    return Usage(
        "bench --rpc tokenize takes no --attention/--layers/--heads/--fp16/"
        "--hidden/--pooling/--normalize/--mask");
  }
  return absl::OkStatus();
}

// Checks that the flags make sense for the command.
absl::Status Check(const Flags& f) {
  const std::string& c = f.command;
  const bool text = !f.texts.empty();
  const bool ids = !f.ids.empty();
  const size_t sequences = f.texts.size() + f.ids.size();
  if (text && ids) {
    return Usage("give TEXT or --ids, not both");
  }
  if (!f.type_ids.empty() && f.type_ids.size() != f.ids.size()) {
    return Usage(absl::StrCat("got ", f.type_ids.size(), " --type-ids for ",
                              f.ids.size(), " --ids: give one per sequence"));
  }
  if (!f.pair.empty() && f.texts.size() != 1) {
    return Usage("--pair goes with exactly one TEXT");
  }
  auto only = [&](bool used, const char* flag,
                  std::initializer_list<const char*> commands) {
    if (!used) return absl::OkStatus();
    for (const char* ok : commands) {
      if (c == ok) return absl::OkStatus();
    }
    return Usage(absl::StrCat(flag, " does not apply to ", c, " (only to ",
                              absl::StrJoin(commands, ", "), ")"));
  };
  for (const absl::Status& s :
       {only(BenchFlagsGiven(f.bench),
             "--rpc/--concurrency/--connections/--duration/--requests/"
             "--batch/--tokens/--stream",
             {"bench"}),
        only(!f.html.empty(), "--html", {"attention", "prune-curve"}),
        only(f.no_rank, "--no-rank", {"heads", "attention"}),
        only(f.rank, "--rank", {"attention"}),
        only(f.step != 0, "--step", {"prune-curve"}),
        only(f.top != 0, "--top", {"heads", "encode", "attention"}),
        only(!f.query_words.empty() || !f.query_positions.empty(),
             "--query/--query-positions", {"encode", "attention"}),
        only(f.hidden, "--hidden", {"encode", "bench"}),
        only(f.fp16, "--fp16", {"encode", "attention", "bench"}),
        only(f.attention, "--attention/--layers/--heads",
             {"encode", "heads", "attention", "bench"}),
        only(f.pooling != v1::POOLING_UNSPECIFIED, "--pooling",
             {"encode", "similarity", "heads", "prune-curve", "bench"}),
        only(f.normalize, "--normalize",
             {"encode", "similarity", "heads", "bench"}),
        only(!f.mask.empty(), "--mask",
             {"encode", "similarity", "heads", "attention", "bench"}),
        only(!f.pair.empty() || f.truncate || text || ids,
             "TEXT/--ids/--pair/--truncate",
             {"tokenize", "encode", "similarity", "heads", "attention",
              "prune-curve", "bench"})}) {
    if (!s.ok()) return s;
  }
  if (c == "tokenize" && !text) {
    return Usage("tokenize needs a TEXT (e.g. attnctl tokenize \"hello\")");
  }
  if (f.rank && f.no_rank) return Usage("give --rank or --no-rank, not both");
  if (f.rank && f.html.empty()) {
    return Usage("--rank draws the pruning curve on the --html page");
  }
  if ((c == "encode" || c == "heads" || c == "prune-curve") && sequences == 0) {
    return Usage(absl::StrCat(c, " needs a TEXT or --ids"));
  }
  if (c == "similarity" && sequences < 2) {
    return Usage("similarity needs two or more TEXTs (or --ids)");
  }
  if (c == "attention" && sequences != 1) {
    return Usage("attention needs exactly one TEXT (or one --ids)");
  }
  if (!f.query_words.empty() && !f.query_positions.empty()) {
    return Usage("give --query or --query-positions, not both");
  }
  if (!f.html.empty() &&
      (!f.query_positions.empty() || !f.query_words.empty())) {
    return Usage(
        "--html draws every query row: drop --query/--query-positions");
  }
  if (f.top < 0) return Usage("--top must be positive");
  if (f.cert_file.empty() != f.key_file.empty()) {
    return Usage("--cert and --key go together (a client certificate)");
  }
  if (c == "bench") {
    if (absl::Status s = CheckBench(f); !s.ok()) return s;
  }
  // Proto strings must be UTF-8: say where the input is not, rather than
  // letting the send fail.
  for (size_t t = 0; t < f.texts.size() + 1; ++t) {
    const std::string& text = t < f.texts.size() ? f.texts[t] : f.pair;
    const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
    for (size_t i = 0; i < text.size();) {
      utf8proc_int32_t cp;
      const utf8proc_ssize_t n = utf8proc_iterate(
          p + i, static_cast<utf8proc_ssize_t>(text.size() - i), &cp);
      if (n <= 0) {
        return Usage(absl::StrCat(
            t < f.texts.size() ? absl::StrCat("TEXT ", t + 1) : "--pair",
            " is not valid UTF-8 at byte offset ", i));
      }
      i += n;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Flags> ParseFlags(const std::vector<std::string>& args) {
  Flags f;
  const std::vector<std::string> with_value = {
      "target", "timeout", "model", "ids", "type-ids", "lb", "retries",
      "layers", "heads", "pooling", "pair", "query", "query-positions", "mask",
      "top", "html", "step",
      // bench
      "rpc", "concurrency", "connections", "duration", "requests", "batch",
      "tokens"};
  // TLS and token flags (client/channel.h).
  const std::vector<std::string> security_with_value = {
      "ca", "cert", "key", "server-name", "token-file"};
  bool flags_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (!flags_done && (arg == "-h" || arg == "--help" ||
                        (arg == "help" && f.command.empty()))) {
      f.help = true;
      return f;
    }
    if (flags_done || !absl::StartsWith(arg, "--") || arg.size() == 2) {
      if (arg == "--" && !flags_done) {
        flags_done = true;
      } else if (f.command.empty()) {
        f.command = arg;
      } else {
        f.texts.push_back(arg);
      }
      continue;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    std::replace(name.begin(), name.end(), '_', '-');
    const bool needs_value =
        std::find(with_value.begin(), with_value.end(), name) !=
            with_value.end() ||
        std::find(security_with_value.begin(), security_with_value.end(),
                  name) != security_with_value.end();
    if (needs_value && !value) {
      if (i + 1 >= args.size()) {
        return Usage(absl::StrCat("--", name, " needs a value"));
      }
      value = args[++i];
    }
    if (!needs_value && value) {
      return Usage(absl::StrCat("--", name, " takes no value"));
    }
    if (name == "target") {
      f.channel.target = *value;
    } else if (name == "lb") {
      if (*value != "round_robin" && *value != "pick_first") {
        return Usage(absl::StrCat("--lb: \"", *value,
                                  "\" is not round_robin or pick_first"));
      }
      f.channel.load_balancing = *value;
    } else if (name == "retries") {
      int retries = 0;
      if (!absl::SimpleAtoi(*value, &retries) || retries < 0 || retries > 4) {
        return Usage(absl::StrCat("--retries: \"", *value,
                                  "\" is not a number in [0, 4]"));
      }
      f.channel.max_attempts = retries + 1;
    } else if (name == "timeout") {
      std::string v(absl::StripSuffix(*value, "s"));
      if (!absl::SimpleAtod(v, &f.timeout_seconds) ||
          !(f.timeout_seconds > 0)) {
        return Usage(absl::StrCat("--timeout: \"", *value,
                                  "\" is not a positive number of seconds"));
      }
    } else if (name == "model") {
      f.model = *value;
    } else if (name == "ids" || name == "type-ids" || name == "layers" ||
               name == "heads" || name == "query-positions") {
      absl::StatusOr<std::vector<int32_t>> list = IntList(name, *value);
      if (!list.ok()) return list.status();
      if (name == "ids") {
        f.ids.push_back(*std::move(list));
      } else if (name == "type-ids") {
        f.type_ids.push_back(*std::move(list));
      } else if (name == "layers") {
        f.layers = *std::move(list);
        f.attention = true;
      } else if (name == "heads") {
        f.heads = *std::move(list);
        f.attention = true;
      } else {
        f.query_positions = *std::move(list);
        f.attention = true;
      }
    } else if (name == "pooling") {
      absl::StatusOr<v1::Pooling> p = ParsePooling(*value);
      if (!p.ok()) return p.status();
      f.pooling = *p;
    } else if (name == "pair") {
      f.pair = *value;
    } else if (name == "query") {
      if (value->empty()) return Usage("--query needs a token");
      f.query_words.push_back(*value);
      f.attention = true;
    } else if (name == "mask") {
      absl::StatusOr<std::vector<std::pair<int, int>>> m = HeadList(*value);
      if (!m.ok()) return m.status();
      f.mask.insert(f.mask.end(), m->begin(), m->end());
    } else if (name == "top") {
      if (!absl::SimpleAtoi(*value, &f.top) || f.top <= 0) {
        return Usage(
            absl::StrCat("--top: \"", *value, "\" is not a positive integer"));
      }
    } else if (name == "step") {
      if (!absl::SimpleAtoi(*value, &f.step) || f.step <= 0) {
        return Usage(
            absl::StrCat("--step: \"", *value, "\" is not a positive integer"));
      }
    } else if (name == "html") {
      if (value->empty()) return Usage("--html needs a file name");
      f.html = *value;
    } else if (name == "attention") {
      f.attention = true;
    } else if (name == "fp16") {
      f.fp16 = true;
      f.attention = true;
    } else if (name == "hidden") {
      f.hidden = true;
    } else if (name == "normalize") {
      f.normalize = true;
    } else if (name == "truncate") {
      f.truncate = true;
    } else if (name == "no-rank") {
      f.no_rank = true;
    } else if (name == "rank") {
      f.rank = true;
    } else if (name == "json") {
      f.json = true;
    } else if (name == "tls") {
      f.channel.tls = true;
    } else if (name == "ca" || name == "cert" || name == "key" ||
               name == "server-name") {
      if (value->empty()) return Usage(absl::StrCat("--", name, " is empty"));
      std::string* field = &f.channel.server_name;
      if (name == "ca") field = &f.ca_file;
      if (name == "cert") field = &f.cert_file;
      if (name == "key") field = &f.key_file;
      *field = *value;
      f.channel.tls = true;
    } else if (name == "token-file") {
      if (value->empty()) return Usage("--token-file needs a file name");
      f.token_file = *value;
    } else if (name == "verbose") {
      f.verbose = true;
    } else if (name == "rpc") {
      if (*value != "encode" && *value != "tokenize" && *value != "oip") {
        return Usage(absl::StrCat("--rpc: \"", *value,
                                  "\" is not encode, tokenize or oip"));
      }
      f.bench.rpc = *value;
    } else if (name == "concurrency" || name == "connections" ||
               name == "batch" || name == "tokens") {
      int v = 0;
      if (!absl::SimpleAtoi(*value, &v) || v <= 0 || v > 100000) {
        return Usage(absl::StrCat("--", name, ": \"", *value,
                                  "\" is not a positive integer"));
      }
      (name == "concurrency"   ? f.bench.concurrency
       : name == "connections" ? f.bench.connections
       : name == "batch"       ? f.bench.batch
                               : f.bench.tokens) = v;
    } else if (name == "requests") {
      if (!absl::SimpleAtoi(*value, &f.bench.requests) ||
          f.bench.requests <= 0) {
        return Usage(absl::StrCat("--requests: \"", *value,
                                  "\" is not a positive integer"));
      }
    } else if (name == "duration") {
      std::string v(absl::StripSuffix(*value, "s"));
      if (!absl::SimpleAtod(v, &f.bench.duration_seconds) ||
          !(f.bench.duration_seconds > 0)) {
        return Usage(absl::StrCat("--duration: \"", *value,
                                  "\" is not a positive number of seconds"));
      }
    } else if (name == "stream") {
      f.bench.stream = true;
    } else {
      return Usage(absl::StrCat("unknown flag --", name));
    }
  }
  if (f.command.empty()) {
    return Usage(absl::StrCat("missing command: one of ",
                              absl::StrJoin(kCommands, ", ")));
  }
  if (std::find(std::begin(kCommands), std::end(kCommands), f.command) ==
      std::end(kCommands)) {
    return Usage(absl::StrCat("unknown command \"", f.command, "\": use ",
                              absl::StrJoin(kCommands, ", ")));
  }
  if (absl::Status s = Check(f); !s.ok()) return s;
  return f;
}

std::vector<v1::Sequence> Sequences(const Flags& f) {
  std::vector<v1::Sequence> out;
  for (const std::string& text : f.texts) {
    v1::Sequence seq;
    seq.set_text(text);
    seq.set_text_pair(f.pair);
    out.push_back(std::move(seq));
  }
  for (size_t s = 0; s < f.ids.size(); ++s) {
    v1::Sequence seq;
    seq.mutable_token_ids()->Add(f.ids[s].begin(), f.ids[s].end());
    if (!f.type_ids.empty()) {
      seq.mutable_token_type_ids()->Add(f.type_ids[s].begin(),
                                        f.type_ids[s].end());
    }
    out.push_back(std::move(seq));
  }
  return out;
}

}  // namespace attnserve::client
