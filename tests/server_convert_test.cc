// server/convert: the selection and byte layout of the tensors.
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/convert.h"

namespace attnserve {
namespace {

using ::testing::ElementsAre;

std::vector<float> Floats(const std::string& bytes) {
  std::vector<float> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), bytes.size());  // x86: little-endian
  return out;
}

TEST(ServerConvertTest, SelectsLayersAndHeadsInRequestOrder) {
  ModelConfig config;
  config.num_layers = 3;
  config.num_heads = 2;
  config.hidden_size = 4;
  const int64_t t = 2;
  // The model was asked for layers {0, 2} (ascending); the client for [2, 0]
  // and heads [1].
  OutputSpec spec;
  spec.attention = true;
  spec.attention_layers = {2, 0};
  spec.layer_slots = {1, 0};
  spec.attention_heads = {1};
  spec.hidden_states = true;
  SequenceOutput out;
  // (2 layers, 2 heads, 2, 2): value = 100·slot + 10·head + element
  for (int slot = 0; slot < 2; ++slot) {
    for (int h = 0; h < 2; ++h) {
      for (int e = 0; e < 4; ++e)
        out.attention.push_back(100 * slot + 10 * h + e);
    }
  }
  out.hidden.assign(t * 4, 0.5f);
  InputSequence input;
  input.ids = {2, 3};
  input.tokens = {"[CLS]", "[SEP]"};
  v1::SequenceResult result;
  ASSERT_TRUE(ToSequenceResult(spec, config, input, out, &result).ok());
  EXPECT_THAT(result.token_ids(), ElementsAre(2, 3));
  EXPECT_THAT(result.tokens(), ElementsAre("[CLS]", "[SEP]"));
  EXPECT_THAT(result.attention().shape(), ElementsAre(2, 1, 2, 2));
  EXPECT_EQ(result.attention().dtype(), v1::FLOAT32);
  EXPECT_THAT(Floats(result.attention().data()),
              ElementsAre(110, 111, 112, 113, 10, 11, 12, 13));
  EXPECT_THAT(result.hidden_states().shape(), ElementsAre(2, 4));
  EXPECT_FALSE(result.has_embedding());

  // FLOAT16: two bytes each, little-endian.
  spec.attention_dtype = v1::FLOAT16;
  spec.hidden_states = false;
  SequenceOutput out16;
  out16.attention.assign(2 * 2 * 4, 1.0f);
  v1::SequenceResult result16;
  InputSequence input16;
  input16.ids = {2, 3};
  ASSERT_TRUE(ToSequenceResult(spec, config, input16, out16, &result16).ok());
  EXPECT_EQ(result16.tokens_size(), 0);  // no vocab, no tokens
  EXPECT_EQ(result16.attention().dtype(), v1::FLOAT16);
  EXPECT_EQ(result16.attention().data().size(), 2u * 4 * 2);
  EXPECT_EQ(result16.attention().data().substr(0, 2),
            std::string("\x00\x3c", 2));
  EXPECT_FALSE(result16.has_hidden_states());
}

TEST(ServerConvertTest, WrongModelOutputSizeIsInternal) {
  ModelConfig config;
  config.num_layers = 1;
  config.num_heads = 1;
  config.hidden_size = 4;
  OutputSpec spec;
  spec.hidden_states = true;
  SequenceOutput out;
  out.hidden.assign(3, 0.f);
  v1::SequenceResult result;
  InputSequence input;
  input.ids = {5, 6};
  EXPECT_EQ(ToSequenceResult(spec, config, input, out, &result).code(),
            absl::StatusCode::kInternal);
}

TEST(ServerConvertTest, QueryRowsInRequestOrderAndRolloutKeepsAllLayers) {
  ModelConfig config;
  config.num_layers = 2;
  config.num_heads = 1;
  config.hidden_size = 4;
  // Rollout made the model keep both layers; the client asked for layer 1
  // only, rows [2, 0] of its 3×3 map.
  OutputSpec spec;
  spec.attention = true;
  spec.attention_layers = {1};
  spec.layer_slots = {1};
  spec.attention_heads = {0};
  spec.query_positions = {2, 0};
  SequenceOutput out;
  // (2 layers, 1 head, 3, 3): value = 10·layer + element
  for (int l = 0; l < 2; ++l) {
    for (int e = 0; e < 9; ++e) out.attention.push_back(10 * l + e);
  }
  InputSequence input;
  input.ids = {2, 7, 3};
  v1::SequenceResult result;
  // Without rollout the model would have kept one layer: a size mismatch.
  EXPECT_EQ(ToSequenceResult(spec, config, input, out, &result).code(),
            absl::StatusCode::kInternal);
  spec.rollout = true;
  // (Rollout of rows that are not distributions is still computed; only its
  // shape matters here. Its values are checked through gRPC.)
  result.Clear();
  ASSERT_TRUE(ToSequenceResult(spec, config, input, out, &result).ok());
  EXPECT_THAT(result.attention().shape(), ElementsAre(1, 1, 2, 3));
  EXPECT_THAT(Floats(result.attention().data()),
              ElementsAre(16, 17, 18, 10, 11, 12));
  EXPECT_THAT(result.rollout().shape(), ElementsAre(3, 3));
  EXPECT_EQ(result.rollout().dtype(), v1::FLOAT32);
}

TEST(ServerConvertTest, TokenizedSequenceFlattensOffsets) {
  InputSequence input;
  input.ids = {2, 40, 41, 3};
  input.tokens = {"[CLS]", "hello", "##s", "[SEP]"};
  input.type_ids = {0, 0, 0, 0};
  input.offsets = {{0, 0}, {0, 5}, {5, 6}, {0, 0}};
  v1::TokenizedSequence result;
  ToTokenizedSequence(input, &result);
  EXPECT_THAT(result.token_ids(), ElementsAre(2, 40, 41, 3));
  EXPECT_THAT(result.tokens(), ElementsAre("[CLS]", "hello", "##s", "[SEP]"));
  EXPECT_THAT(result.token_type_ids(), ElementsAre(0, 0, 0, 0));
  EXPECT_THAT(result.offsets(), ElementsAre(0, 0, 0, 5, 5, 6, 0, 0));

  // token_ids input without type ids: all 0, no offsets.
  InputSequence ids;
  ids.ids = {2, 3};
  v1::TokenizedSequence from_ids;
  ToTokenizedSequence(ids, &from_ids);
  EXPECT_THAT(from_ids.token_type_ids(), ElementsAre(0, 0));
  EXPECT_EQ(from_ids.offsets_size(), 0);
}

}  // namespace
}  // namespace attnserve
