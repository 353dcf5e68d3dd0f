// attnserve: serves BERT-family encoders over gRPC.
//
//   attnserve --model=[NAME=]DIR [--model=...] [--model_repository=DIR]
//             [--address=0.0.0.0:50051] [--precision=fp32]
//             [--model_precision=NAME=bf16] [--default_model=NAME]
//
// Each model directory's vocab.txt (or tokenizer.json, ...) is loaded when
// present, for Sequence.text and Tokenize; without one the server serves
// token ids only for that model and says so in its log. A vocab that is
// present but broken stops the server like any other broken checkpoint file.
// Several models share the one inference thread (server/batcher.h).
//
// The only place that reads flags: they fill ServerOptions and
// EncoderOptions. SIGINT/SIGTERM: stop accepting, answer every accepted
// request, exit 0. SIGHUP: re-read --auth_tokens_file.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "model/encoder/encoder.h"
#include "model/kernels/cpu.h"
#include "model/text/text_tokenizer.h"
#include "server/access_log.h"
#include "server/model_flags.h"
#include "server/model_registry.h"
#include "server/options.h"
#include "server/server.h"

namespace {
const attnserve::ServerOptions kDefaults;
}  // namespace

ABSL_FLAG(std::vector<std::string>, model, {},
          "[NAME=]DIR: a model directory in Hugging Face layout "
          "(config.json, model.safetensors; for text input vocab.txt, "
          "tokenizer.json, vocab.json + merges.txt or "
          "sentencepiece.bpe.model), served as NAME (default: the "
          "directory's base name). Repeatable (or comma-separated) to serve "
          "several models; at least one --model or --model_repository is "
          "required.");
ABSL_FLAG(std::string, model_repository, "",
          "Directory whose every subdirectory holding a config.json is a "
          "model, named after the subdirectory (with the --model ones).");
ABSL_FLAG(std::string, default_model, "",
          "The model that requests with an empty model name get. Empty: "
          "with one model, that one; with several, requests must name "
          "theirs (INVALID_ARGUMENT listing the names).");
ABSL_FLAG(std::vector<std::string>, model_precision, {},
          "NAME=PRECISION: the precision of model NAME (fp32, bf16, int8 or "
          "auto), overriding --precision for it. Repeatable (or "
          "comma-separated).");
ABSL_FLAG(std::string, address, kDefaults.address,
          "host:port to listen on (port 0 = any free port).");
ABSL_FLAG(std::string, precision, "fp32",
          "Compute precision of the matmuls of every model without a "
          "--model_precision: fp32 (exact attention maps), bf16, int8, or "
          "auto (bf16 where oneDNN runs AMX, else fp32; the startup log says "
          "which and why).");
ABSL_FLAG(std::string, prune_heads, "",
          "Heads to remove at load, LAYER:HEAD,LAYER:HEAD,... (checkpoint "
          "numbering); their Q/K/V rows and output columns are dropped. Only "
          "with a single model.");
ABSL_FLAG(int64_t, max_batch_tokens, kDefaults.batcher.max_batch_tokens,
          "Token budget of one forward pass; queued requests are merged up to "
          "it.");
ABSL_FLAG(int64_t, max_pass_tokens, kDefaults.batcher.max_pass_tokens,
          "Most work of one forward pass of bulk work (RankHeads, and Encode "
          "requests costlier than this, which are split at sequence "
          "boundaries), in tokens of a full pass; waiting interactive "
          "requests run between the passes. 0 = no splitting.");
ABSL_FLAG(bool, rank_heads_reuse_layers, kDefaults.rank_heads_reuse_layers,
          "RankHeads runs the unmasked pass once and starts each ablation at "
          "the layer it masks (same importances, ~1.8x less work on "
          "BERT-base); false recomputes the layers below each ablation.");
ABSL_FLAG(int, max_queue_requests, kDefaults.batcher.max_queue_requests,
          "Requests of one model that may wait for the inference thread "
          "(each model has its own queue of this length); more get "
          "RESOURCE_EXHAUSTED.");
ABSL_FLAG(int, max_sequences_per_request,
          kDefaults.limits.max_sequences_per_request,
          "Most sequences in one Encode, Tokenize or RankHeads request.");
ABSL_FLAG(int64_t, max_tokens_per_request,
          kDefaults.limits.max_tokens_per_request,
          "Most tokens (summed over sequences, after tokenizing text) in one "
          "Encode, Tokenize or RankHeads request.");
ABSL_FLAG(int64_t, max_response_bytes, kDefaults.limits.max_response_bytes,
          "Largest Encode response payload in bytes (hidden states, "
          "embeddings, attention maps, rollout, statistics, tokens); larger "
          "ones are refused before running with RESOURCE_EXHAUSTED.");
ABSL_FLAG(int64_t, max_rank_heads_tokens,
          kDefaults.limits.max_rank_heads_tokens,
          "Most work of one RankHeads request, in tokens of forward passes: "
          "sum over its sequences of T*(1 + layers*heads + layers) (each "
          "sequence runs unmasked, with each head masked, with each layer "
          "masked); BERT-base runs 157 times per token. Larger requests get "
          "RESOURCE_EXHAUSTED.");
ABSL_FLAG(absl::Duration, default_timeout, kDefaults.default_deadline,
          "Deadline for calls whose client set none.");
ABSL_FLAG(absl::Duration, drain_delay, kDefaults.drain_delay,
          "On SIGTERM/SIGINT: health turns NOT_SERVING at once, and calls are "
          "still accepted for this long (so load balancers stop routing "
          "here) before the server stops accepting. A second signal ends "
          "the delay early.");
ABSL_FLAG(absl::Duration, shutdown_grace, kDefaults.shutdown_grace,
          "On SIGINT/SIGTERM: how long calls in flight may take before they "
          "are cancelled.");
// Operating it (README "Operate").
ABSL_FLAG(std::string, metrics_address, kDefaults.metrics_address,
          "host:port (host an IP address) of the HTTP endpoint serving "
          "Prometheus /metrics and /healthz (200 while serving, else 503); "
          "empty = off.");
ABSL_FLAG(bool, log_requests, kDefaults.log_requests,
          "One access log line per finished call on stderr (method, peer, "
          "status, sequences, tokens, times, response bytes; never request "
          "content).");
ABSL_FLAG(std::string, log_format, "text",
          "Access log format: text (logfmt key=value) or json (JSON lines).");
ABSL_FLAG(std::string, tls_cert, kDefaults.tls.cert_file,
          "PEM certificate chain: serve TLS only (with --tls_key).");
ABSL_FLAG(std::string, tls_key, kDefaults.tls.key_file,
          "PEM private key of --tls_cert.");
ABSL_FLAG(std::string, tls_client_ca, kDefaults.tls.client_ca_file,
          "PEM CA certificates: require client certificates signed by them "
          "(mTLS).");
ABSL_FLAG(absl::Duration, tls_refresh_interval, kDefaults.tls.refresh_interval,
          "How often the TLS files are re-read: a rotated certificate reaches "
          "new connections within this interval.");
ABSL_FLAG(std::string, auth_tokens_file, kDefaults.auth_tokens_file,
          "File of bearer tokens, one per line: calls must send "
          "\"authorization: Bearer <token>\" (health and reflection stay "
          "open). Re-read on SIGHUP.");

namespace {

// One line on stderr, exit 1.
[[noreturn]] void Die(const std::string& message) {
  std::string line = absl::StrReplaceAll(message, {{"\n", " "}});
  std::fprintf(stderr, "attnserve: %s\n", line.c_str());
  std::exit(1);
}

// SIGHUP: re-reads --auth_tokens_file and says how it went.
void ReloadTokens(attnserve::Server& server,
                  const attnserve::ServerOptions& options) {
  absl::StatusOr<size_t> tokens = server.ReloadAuthTokens();
  if (tokens.ok()) {
    std::fprintf(stderr, "attnserve: SIGHUP: %zu tokens loaded from %s\n",
                 *tokens, options.auth_tokens_file.c_str());
  } else {
    std::string why =
        absl::StrReplaceAll(tokens.status().message(), {{"\n", " "}});
    std::fprintf(stderr, "attnserve: SIGHUP: tokens not reloaded (%s)\n",
                 why.c_str());
  }
  std::fflush(stderr);
}

attnserve::ServerOptions OptionsFromFlags() {
  attnserve::ServerOptions options;
  options.address = absl::GetFlag(FLAGS_address);
  options.batcher.max_batch_tokens = absl::GetFlag(FLAGS_max_batch_tokens);
  options.batcher.max_queue_requests = absl::GetFlag(FLAGS_max_queue_requests);
  options.batcher.max_pass_tokens = absl::GetFlag(FLAGS_max_pass_tokens);
  options.rank_heads_reuse_layers =
      absl::GetFlag(FLAGS_rank_heads_reuse_layers);
  options.limits.max_sequences_per_request =
      absl::GetFlag(FLAGS_max_sequences_per_request);
  options.limits.max_tokens_per_request =
      absl::GetFlag(FLAGS_max_tokens_per_request);
  options.limits.max_response_bytes = absl::GetFlag(FLAGS_max_response_bytes);
  options.limits.max_rank_heads_tokens =
      absl::GetFlag(FLAGS_max_rank_heads_tokens);
  options.default_deadline = absl::GetFlag(FLAGS_default_timeout);
  options.drain_delay = absl::GetFlag(FLAGS_drain_delay);
  options.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  options.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  options.log_requests = absl::GetFlag(FLAGS_log_requests);
  absl::StatusOr<attnserve::LogFormat> log_format =
      attnserve::ParseLogFormat(absl::GetFlag(FLAGS_log_format));
  if (!log_format.ok()) Die(std::string(log_format.status().message()));
  options.log_format = *log_format;
  options.tls.cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls.key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls.client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  options.tls.refresh_interval = absl::GetFlag(FLAGS_tls_refresh_interval);
  options.auth_tokens_file = absl::GetFlag(FLAGS_auth_tokens_file);

  auto positive = [](const char* flag, int64_t value) {
    if (value <= 0) Die(absl::StrCat("--", flag, "=", value, " must be > 0"));
  };
  positive("max_batch_tokens", options.batcher.max_batch_tokens);
  positive("max_queue_requests", options.batcher.max_queue_requests);
  if (options.batcher.max_pass_tokens < 0) {
    Die("--max_pass_tokens must be >= 0 (0 = no splitting)");
  }
  positive("max_sequences_per_request",
           options.limits.max_sequences_per_request);
  positive("max_tokens_per_request", options.limits.max_tokens_per_request);
  positive("max_response_bytes", options.limits.max_response_bytes);
  positive("max_rank_heads_tokens", options.limits.max_rank_heads_tokens);
  if (options.limits.max_response_bytes >
      (int64_t{2} << 30) - (int64_t{2} << 20)) {
    Die("--max_response_bytes must be below 2 GiB (the gRPC message limit)");
  }
  if (options.default_deadline <= absl::ZeroDuration()) {
    Die("--default_timeout must be > 0");
  }
  if (options.drain_delay < absl::ZeroDuration()) {
    Die("--drain_delay must be >= 0");
  }
  return options;
}

// /proc/self/statm's resident pages, in bytes; 0 where it cannot be read.
int64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * static_cast<int64_t>(sysconf(_SC_PAGESIZE));
}

std::string Mib(int64_t bytes) {
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1 << 20));
}

// `text` (fp32, bf16, int8 or auto) of flag `flag`; auto is resolved here
// and its choice logged.
attnserve::Precision PrecisionFromFlag(const std::string& flag,
                                       const std::string& text, bool log_auto) {
  if (text == "auto") {
    std::string why;
    const attnserve::Precision precision = attnserve::AutoPrecision(&why);
    if (log_auto) {
      std::fprintf(
          stderr, "attnserve: %s chose %s: %s\n",
          absl::StrCat(flag, flag == "--precision" ? "=auto" : "").c_str(),
          attnserve::PrecisionName(precision), why.c_str());
    }
    return precision;
  }
  absl::StatusOr<attnserve::Precision> precision =
      attnserve::ParsePrecision(text);
  if (!precision.ok()) {
    Die(absl::StrCat(flag, ": ", precision.status().message(), " or auto"));
  }
  return *precision;
}

// --model and --model_repository, in that order; exits when they name no
// model or a bad one.
std::vector<attnserve::ModelSpec> ModelSpecsFromFlags() {
  std::vector<attnserve::ModelSpec> specs;
  for (const std::string& text : absl::GetFlag(FLAGS_model)) {
    absl::StatusOr<attnserve::ModelSpec> spec = attnserve::ParseModelSpec(text);
    if (!spec.ok()) Die(std::string(spec.status().message()));
    specs.push_back(*std::move(spec));
  }
  if (const std::string repository = absl::GetFlag(FLAGS_model_repository);
      !repository.empty()) {
    absl::StatusOr<std::vector<attnserve::ModelSpec>> found =
        attnserve::ScanModelRepository(repository);
    if (!found.ok()) Die(std::string(found.status().message()));
    specs.insert(specs.end(), found->begin(), found->end());
  }
  if (specs.empty()) {
    Die("--model=[NAME=]DIR or --model_repository=DIR is required (see "
        "--help)");
  }
  return specs;
}

// Loads the model and its tokenizer, logs what it holds in memory; exits
// with one line on a broken checkpoint.
attnserve::ModelRegistry::Model LoadModel(
    const attnserve::ModelSpec& spec,
    const attnserve::EncoderOptions& encoder_options) {
  // Load on a thread that exits afterwards: the weight reorders run on an
  // OpenMP team owned by the loading thread, and libgomp frees that team
  // only when its thread ends. Left alive (on main), it would be a second
  // team next to the inference thread's, and with more OpenMP threads than
  // cores libgomp throttles its spin-waiting: every oneDNN call would then
  // pay a thread wake-up (measured: 1x16 took 40 ms instead of 25 ms).
  const int64_t rss_before = ResidentBytes();
  absl::StatusOr<std::unique_ptr<attnserve::Encoder>> encoder =
      absl::InternalError("not loaded");
  std::thread loader(
      [&] { encoder = attnserve::Encoder::Load(spec.dir, encoder_options); });
  loader.join();
  if (!encoder.ok()) {
    Die(absl::StrCat("cannot load model ", spec.name, " from ", spec.dir, ": ",
                     encoder.status().message()));
  }
  const attnserve::ModelInfo& info = (*encoder)->info();
  absl::StatusOr<std::unique_ptr<attnserve::TextTokenizer>> tokenizer =
      attnserve::LoadTokenizerFor(spec.dir, info);
  if (tokenizer.ok()) {
    std::fprintf(stderr,
                 "attnserve: tokenizer loaded (%d tokens, %s) for %s: text "
                 "input and Tokenize enabled\n",
                 (*tokenizer)->vocab_size(), (*tokenizer)->Describe().c_str(),
                 spec.name.c_str());
  } else if (tokenizer.status().code() != absl::StatusCode::kNotFound &&
             tokenizer.status().code() != absl::StatusCode::kUnimplemented) {
    // A vocab that is there but unusable is a broken checkpoint: serving
    // token ids only would hide that until a client sends text.
    // (Unimplemented, a kind attnserve does not run, e.g. a Unigram
    // tokenizer.json alone, is logged below and ids are served.)
    Die(absl::StrCat("cannot load the vocab of ", spec.dir, ": ",
                     tokenizer.status().message()));
  } else {
    // No vocab at all (or one of a kind attnserve does not run): token ids
    // are still served; text gets FAILED_PRECONDITION.
    std::string why =
        absl::StrReplaceAll(tokenizer.status().message(), {{"\n", " "}});
    std::fprintf(stderr,
                 "attnserve: no tokenizer for %s (%s): serving token ids "
                 "only; text input and Tokenize are refused\n",
                 spec.name.c_str(), why.c_str());
  }
  // What this model costs: its weights as packed, and the growth of the
  // process's resident memory while loading it (weights, primitives and
  // scratch for --max_batch_tokens, vocab).
  const int64_t rss_after = ResidentBytes();
  std::fprintf(stderr,
               "attnserve: model %s from %s: %s, weights %s, RSS +%s (process "
               "%s)\n",
               spec.name.c_str(), spec.dir.c_str(),
               attnserve::PrecisionName(info.precision),
               Mib(info.weight_bytes).c_str(),
               Mib(std::max<int64_t>(0, rss_after - rss_before)).c_str(),
               Mib(rss_after).c_str());
  std::fflush(stderr);
  return {*std::move(encoder), std::move(tokenizer)};
}

}  // namespace

int main(int argc, char** argv) {
  // --help lists the flags of this file: Abseil's default only matches
  // files named after the binary (attnserve.cc, attnserve_main.cc).
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::EndsWith(file, "server/main.cc");
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
  absl::SetProgramUsageMessage(
      "Serves BERT-family encoders over gRPC (attnserve.v1.Encoder) with "
      "per-head attention.\nUsage: attnserve --model=[NAME=]DIR "
      "[--model=[NAME=]DIR ...] [--model_repository=DIR] "
      "[--address=HOST:PORT] [--precision=fp32|bf16|int8|auto] "
      "[--model_precision=NAME=PRECISION] [--default_model=NAME]");
  // Abseil keeps the last of a repeated flag: join the repeatable ones.
  std::vector<std::string> args = attnserve::JoinRepeatedFlags(
      std::vector<std::string>(argv + 1, argv + argc),
      {"model", "model_precision"});
  args.insert(args.begin(), argv[0]);
  std::vector<char*> joined_argv;
  for (std::string& arg : args) joined_argv.push_back(arg.data());
  joined_argv.push_back(nullptr);
  std::vector<char*> rest =
      absl::ParseCommandLine(static_cast<int>(args.size()), joined_argv.data());
  if (rest.size() > 1) {
    Die(absl::StrCat("unexpected argument \"", rest[1],
                     "\" (flags are --name=value; see --help)"));
  }
  attnserve::ServerOptions options = OptionsFromFlags();
  const std::vector<attnserve::ModelSpec> specs = ModelSpecsFromFlags();
  absl::StatusOr<std::map<std::string, std::string>> model_precisions =
      attnserve::ParseModelPrecisions(absl::GetFlag(FLAGS_model_precision));
  if (!model_precisions.ok()) {
    Die(std::string(model_precisions.status().message()));
  }
  if (absl::Status s = attnserve::CheckModelSpecs(
          specs, *model_precisions, absl::GetFlag(FLAGS_default_model));
      !s.ok()) {
    Die(std::string(s.message()));
  }
  attnserve::EncoderOptions defaults;
  defaults.precision = PrecisionFromFlag(
      "--precision", absl::GetFlag(FLAGS_precision), /*log_auto=*/true);
  absl::StatusOr<std::vector<std::pair<int, int>>> prune =
      attnserve::ParsePruneHeads(absl::GetFlag(FLAGS_prune_heads));
  if (!prune.ok()) Die(absl::StrCat("--", prune.status().message()));
  if (!prune->empty() && specs.size() > 1) {
    Die(absl::StrCat("--prune_heads applies to a single model, and ",
                     specs.size(),
                     " are served: serve the pruned model alone"));
  }
  defaults.prune_heads = *std::move(prune);
  // Every batch size the batcher can form gets its primitives at load, so
  // memory does not creep up as the load brings new sizes.
  defaults.warm_up_rows = options.batcher.max_batch_tokens;

  // Every thread started from here on (OpenMP, gRPC, inference) inherits the
  // blocked mask, so the signals reach only the sigwait() below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::vector<attnserve::ModelRegistry::Model> models;
  for (const attnserve::ModelSpec& spec : specs) {
    attnserve::EncoderOptions encoder_options = defaults;
    encoder_options.name = spec.name;
    if (auto it = model_precisions->find(spec.name);
        it != model_precisions->end()) {
      encoder_options.precision = PrecisionFromFlag(
          absl::StrCat("--model_precision=", spec.name, "=", it->second),
          it->second, /*log_auto=*/true);
    }
    models.push_back(LoadModel(spec, encoder_options));
  }
  std::vector<std::string> served;  // "name (2 layers, ..., fp32)"
  for (const attnserve::ModelRegistry::Model& model : models) {
    const attnserve::ModelInfo& info = model.encoder->info();
    served.push_back(absl::StrCat(
        info.name, " (", info.config.num_layers, " layers, ",
        info.config.num_heads, " heads, hidden ", info.config.hidden_size, ", ",
        attnserve::PrecisionName(info.precision), ")"));
  }
  absl::StatusOr<std::unique_ptr<attnserve::ModelRegistry>> registry =
      attnserve::ModelRegistry::Create(std::move(models),
                                       absl::GetFlag(FLAGS_default_model));
  if (!registry.ok()) Die(std::string(registry.status().message()));
  absl::StatusOr<std::unique_ptr<attnserve::Server>> server =
      attnserve::Server::Start(options, *std::move(registry));
  if (!server.ok()) Die(std::string(server.status().message()));

  std::string address = options.address;
  if (const size_t colon = address.rfind(':'); colon != std::string::npos) {
    address = absl::StrCat(address.substr(0, colon + 1), (*server)->port());
  }
  if ((*server)->metrics_port() != 0) {
    std::string metrics = options.metrics_address;
    metrics = absl::StrCat(metrics.substr(0, metrics.rfind(':') + 1),
                           (*server)->metrics_port());
    std::fprintf(stderr, "attnserve: metrics on http://%s/metrics\n",
                 metrics.c_str());
  }
  // One line; tests and scripts read the port after " on ".
  std::fprintf(
      stderr, "attnserve: serving %s%s on %s\n",
      served.size() > 1 ? absl::StrCat(served.size(), " models: ").c_str() : "",
      absl::StrJoin(served, ", ").c_str(), address.c_str());
  std::fflush(stderr);

  int signal_number = 0;
  // SIGHUP re-reads the tokens, before and during the drain; SIGINT or
  // SIGTERM starts the stop.
  while (sigwait(&signals, &signal_number) == 0 && signal_number == SIGHUP) {
    ReloadTokens(**server, options);
  }
  const char* signal_name = signal_number == SIGINT ? "SIGINT" : "SIGTERM";
  (*server)->StartDraining();
  if (options.drain_delay > absl::ZeroDuration()) {
    std::fprintf(stderr,
                 "attnserve: %s: health NOT_SERVING; still accepting calls "
                 "for %s (--drain_delay)\n",
                 signal_name,
                 absl::FormatDuration(options.drain_delay).c_str());
    std::fflush(stderr);
    // A second SIGINT/SIGTERM ends the delay early.
    const absl::Time drained = absl::Now() + options.drain_delay;
    for (absl::Time now = absl::Now(); now < drained; now = absl::Now()) {
      const timespec delay = absl::ToTimespec(drained - now);
      siginfo_t info;
      const int got = sigtimedwait(&signals, &info, &delay);
      if (got != SIGHUP) break;  // a stop signal, or the delay is over
      ReloadTokens(**server, options);
    }
  }
  std::fprintf(stderr,
               "attnserve: %s: no new calls; answering the accepted ones\n",
               signal_name);
  std::fflush(stderr);
  (*server)->Shutdown(options.shutdown_grace);
  const attnserve::Batcher::Stats stats = (*server)->batcher().stats();
  std::fprintf(
      stderr, "attnserve: stopped after %lld requests in %lld forward passes\n",
      static_cast<long long>(stats.requests_run),
      static_cast<long long>(stats.forward_passes));
  server->reset();
  return 0;
}
