// tests/data/tiny_bert as the server sees it after loading, without running
// it: the request fuzz targets (request_fuzz.cc, oip_fuzz.cc) validate against
// it. 2 layers × 4 heads, hidden 32, 40 positions, vocab 99, with a pooler.
#ifndef ATTNSERVE_TESTS_FUZZ_TINY_MODEL_H_
#define ATTNSERVE_TESTS_FUZZ_TINY_MODEL_H_

#include <memory>
#include <string>

#include "google/protobuf/stubs/logging.h"
#include "model/checkpoint/config.h"
#include "model/text/tokenizer.h"
#include "server/validate.h"
#include "tests/fuzz/fuzz_targets.h"
#include "tests/fuzz/fuzz_util.h"

namespace attnserve::fuzz {

struct TinyModel {
  ModelInfo info;
  std::unique_ptr<Tokenizer> tokenizer;
  ServedModel with_vocab;
  ServedModel without_vocab;
};

// Made once per process.
inline const TinyModel& Model() {
  static const TinyModel* model = [] {
    // protobuf logs one ERROR line per string field that is not UTF-8; the
    // fuzzer makes millions of those (and ParseRequest reports them anyway).
    google::protobuf::SetLogHandler([](google::protobuf::LogLevel, const char*,
                                       int, const std::string&) {});
    auto* m = new TinyModel;
    auto config = LoadConfig(TestData("tiny_bert"));
    auto tokenizer = Tokenizer::Load(TestData("tiny_bert"));
    FUZZ_CHECK(config.ok() && tokenizer.ok());
    m->info.name = "tiny_bert";
    m->info.config = *config;
    m->info.weight_dtype = "F32";
    m->info.has_pooler = true;
    m->tokenizer = *std::move(tokenizer);
    m->with_vocab.info = &m->info;
    m->with_vocab.tokenizer = m->tokenizer.get();
    m->without_vocab.info = &m->info;
    m->without_vocab.no_tokenizer_reason = "fuzzing without a vocab";
    return m;
  }();
  return *model;
}

}  // namespace attnserve::fuzz

#endif  // ATTNSERVE_TESTS_FUZZ_TINY_MODEL_H_
