// The fuzz targets: one entry function per parser that reads untrusted bytes.
//
// Each function is what libFuzzer's LLVMFuzzerTestOneInput calls in the
// fuzzing build (tests/fuzz/fuzz_main.cc, clang with
// -fsanitize=fuzzer,address,undefined; scripts/fuzz.sh), and what the normal
// test suite calls on every committed seed and regression input
// (tests/fuzz_regression_test.cc, built with the project's compiler). A target
// never returns an error for bad input: bad input must come back as a Status.
// It aborts (FUZZ_CHECK) only when an invariant of a successful parse is
// broken, and the sanitizers catch the rest.
//
// Threads: libFuzzer calls a target from one thread; the functions keep
// process-wide state (a scratch directory, the loaded test vocab) built once.
#ifndef ATTNSERVE_TESTS_FUZZ_FUZZ_TARGETS_H_
#define ATTNSERVE_TESTS_FUZZ_FUZZ_TARGETS_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

// Aborts with the failed condition: the fuzzer reports the input as a crash.
#define FUZZ_CHECK(cond)                                              \
  do {                                                                \
    if (!(cond)) {                                                    \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, \
                   __LINE__, #cond);                                  \
      std::abort();                                                   \
    }                                                                 \
  } while (0)

namespace attnserve::fuzz {

using TargetFn = int (*)(const uint8_t* data, size_t size);

// model.safetensors bytes: SafetensorsFile::Open (header JSON, dtypes,
// shapes, offsets against the file size), ToFloat32 of every tensor, then
// LoadWeights against a tiny config (hidden 4, 1 layer).
int Safetensors(const uint8_t* data, size_t size);

// config.json text: ParseConfig; a config it accepts is usable (positive
// sizes, heads dividing hidden).
int Config(const uint8_t* data, size_t size);

// Arbitrary bytes as text (and text_pair) through Tokenizer::Encode, on the
// test vocabs (lower-cased and cased), with or without truncation: ids, tokens,
// type ids and offsets agree and offsets lie inside the text on character
// boundaries.
int TokenizerText(const uint8_t* data, size_t size);

// A model directory's vocab files: byte 0 picks vocab.txt, tokenizer.json, or
// tokenizer.json with tokenizer_config.json; Tokenizer::Load reads them and a
// vocab it accepts tokenizes a few fixed texts to ids it holds.
int VocabFiles(const uint8_t* data, size_t size);

// A request as it arrives: byte 0 picks the RPC (Encode, Tokenize, RankHeads)
// and the limits, the rest are the wire bytes. ParseRequest, then validation
// against tests/data/tiny_bert's ModelInfo and vocab (no weights, no oneDNN
// calls). An accepted Encode is converted from made-up outputs of the right
// shapes: its response size estimate must be non-negative, within the limit,
// and not below the serialized size. An accepted RankHeads job is run to its
// result on made-up embeddings.
int Request(const uint8_t* data, size_t size);

// The Open Inference Protocol's ModelInfer: byte 0 bit 0 small limits, bit 1
// no vocab; byte 1 the slice cut; then the ModelInferRequest. FromModelInfer,
// the Encode validator and SetPaddedLength against tiny_bert; an accepted
// request is answered from made-up outputs, and every output tensor's bytes
// must match its shape and datatype.
int OipRequest(const uint8_t* data, size_t size);

struct Target {
  const char* name;  // directory name under tests/fuzz/{corpus,regressions}
  TargetFn fn;
};

// Every target, in the order scripts/fuzz.sh runs them.
const std::vector<Target>& AllTargets();

}  // namespace attnserve::fuzz

#endif  // ATTNSERVE_TESTS_FUZZ_FUZZ_TARGETS_H_
