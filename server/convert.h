// SequenceOutput (model) → SequenceResult (proto): selects the requested
// layers and heads and writes tensors as little-endian bytes, float32 or
// float16.
//
// Pure functions; any thread (the server calls them on the inference thread,
// right after the pass).
#ifndef ATTNSERVE_SERVER_CONVERT_H_
#define ATTNSERVE_SERVER_CONVERT_H_

#include <cstdint>

#include "absl/status/status.h"
#include "model/encoder.h"
#include "proto/attnserve.pb.h"
#include "server/validate.h"

namespace attnserve {

// IEEE 754 binary16 from binary32, round to nearest even, subnormals kept,
// overflow to ±inf, NaN stays NaN (quiet). (The inverse, HalfToFloat, is
// the model loader's: model/safetensors.h.)
uint16_t FloatToHalf(float f);

// Fills `result` for one sequence of `num_tokens` tokens run with the task
// that `spec` produced; takes the vectors out of `output`. INTERNAL if the
// output's sizes do not match (a model bug, never the client's).
absl::Status ToSequenceResult(const OutputSpec& spec, const ModelConfig& config,
                              int64_t num_tokens, SequenceOutput& output,
                              v1::SequenceResult* result);

}  // namespace attnserve

#endif  // ATTNSERVE_SERVER_CONVERT_H_
