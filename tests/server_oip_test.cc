// The Open Inference Protocol through gRPC, in process, with the stubs
// generated from proto/inference.proto: every RPC; ModelInfer with ids and
// with text, raw and typed, bit-identical to attnserve.v1 Encode for the
// same input; padding; and a refusal for every kind of bad tensor.
#include <cstring>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/inference.grpc.pb.h"
#include "tests/server_testing.h"

namespace attnserve {
namespace {

using ::attnserve::testing::NewChannel;
using ::attnserve::testing::SharedServerTest;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Input = inference::ModelInferRequest::InferInputTensor;

class OipTest : public SharedServerTest {
 protected:
  void SetUp() override {
    SharedServerTest::SetUp();
    oip_ =
        inference::GRPCInferenceService::NewStub(NewChannel(server_->port()));
  }

  grpc::Status Infer(const inference::ModelInferRequest& request,
                     inference::ModelInferResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
    return oip_->ModelInfer(&context, request, response);
  }

  // The refusal of `request`: INVALID_ARGUMENT unless `code` says otherwise.
  std::string Refusal(const inference::ModelInferRequest& request,
                      grpc::StatusCode code = grpc::INVALID_ARGUMENT) {
    inference::ModelInferResponse response;
    const grpc::Status s = Infer(request, &response);
    EXPECT_EQ(s.error_code(), code) << s.error_message();
    return s.error_message();
  }

  // The v1 answer for the same sequences, as the reference.
  v1::EncodeResponse Native(const v1::EncodeRequest& request) {
    v1::EncodeResponse response;
    const grpc::Status s = testing::CallEncode(*stub_, request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  }

  std::unique_ptr<inference::GRPCInferenceService::Stub> oip_;
};

Input* AddInput(inference::ModelInferRequest* r, const std::string& name,
                const std::string& datatype, std::vector<int64_t> shape) {
  Input* in = r->add_inputs();
  in->set_name(name);
  in->set_datatype(datatype);
  in->mutable_shape()->Add(shape.begin(), shape.end());
  return in;
}

std::string RawInt64(const std::vector<int64_t>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 8);
}

std::string RawBytes(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) {
    const uint32_t n = s.size();
    out.append(reinterpret_cast<const char*>(&n), 4);
    out.append(s);
  }
  return out;
}

void AddOutput(inference::ModelInferRequest* r, const std::string& name) {
  r->add_outputs()->set_name(name);
}

void SetParam(inference::ModelInferRequest* r, const std::string& name,
              const std::string& value) {
  (*r->mutable_parameters())[name].set_string_param(value);
}

// The output named `name` of `response`, with its raw bytes.
struct Output {
  std::string datatype;
  std::vector<int64_t> shape;
  std::string raw;
};
Output Find(const inference::ModelInferResponse& response,
            const std::string& name) {
  for (int i = 0; i < response.outputs_size(); ++i) {
    if (response.outputs(i).name() == name) {
      const auto& o = response.outputs(i);
      return {o.datatype(),
              std::vector<int64_t>(o.shape().begin(), o.shape().end()),
              response.raw_output_contents(i)};
    }
  }
  ADD_FAILURE() << "no output " << name;
  return {};
}

TEST_F(OipTest, SmallRpcs) {
  grpc::ClientContext c1, c2, c3, c4, c5, c6;
  inference::ServerLiveResponse live;
  ASSERT_TRUE(oip_->ServerLive(&c1, {}, &live).ok());
  EXPECT_TRUE(live.live());
  inference::ServerReadyResponse ready;
  ASSERT_TRUE(oip_->ServerReady(&c2, {}, &ready).ok());
  EXPECT_TRUE(ready.ready());
  inference::ModelReadyRequest model_ready;
  model_ready.set_name("tiny_bert");
  inference::ModelReadyResponse model_ready_response;
  ASSERT_TRUE(oip_->ModelReady(&c3, model_ready, &model_ready_response).ok());
  EXPECT_TRUE(model_ready_response.ready());
  inference::ServerMetadataResponse meta;
  ASSERT_TRUE(oip_->ServerMetadata(&c4, {}, &meta).ok());
  EXPECT_EQ(meta.name(), "attnserve");
  EXPECT_FALSE(meta.version().empty());
  inference::ModelMetadataRequest model_meta;
  model_meta.set_name("tiny_bert");
  inference::ModelMetadataResponse model_meta_response;
  ASSERT_TRUE(oip_->ModelMetadata(&c5, model_meta, &model_meta_response).ok());
  ASSERT_GE(model_meta_response.inputs_size(), 3);
  EXPECT_EQ(model_meta_response.inputs(0).name(), "input_ids");
  EXPECT_THAT(model_meta_response.inputs(0).shape(), ElementsAre(-1, -1));
  EXPECT_EQ(model_meta_response.outputs(0).name(), "last_hidden_state");
  EXPECT_THAT(model_meta_response.outputs(0).shape(),
              ElementsAre(-1, -1, testing::kHidden));
  model_meta.set_name("bert-large");
  const grpc::Status missing =
      oip_->ModelMetadata(&c6, model_meta, &model_meta_response);
  EXPECT_EQ(missing.error_code(), grpc::NOT_FOUND);
  EXPECT_THAT(missing.error_message(), HasSubstr("bert-large"));
}

// Two sequences of different lengths, right-padded in one [2, 5] tensor:
// every output equals v1 Encode's for the unpadded sequences, bit for bit,
// and padding is zero.
TEST_F(OipTest, IdsRawAndTypedMatchNativeEncode) {
  const std::vector<int64_t> ids = {2, 10, 11, 12, 3,  //
                                    2, 20, 3,  0,  0};
  const std::vector<int64_t> mask = {1, 1, 1, 1, 1,  //
                                     1, 1, 1, 0, 0};
  v1::EncodeRequest native;
  v1::Sequence* first = native.add_sequences();
  for (int32_t id : {2, 10, 11, 12, 3}) first->add_token_ids(id);
  v1::Sequence* second = native.add_sequences();
  for (int32_t id : {2, 20, 3}) second->add_token_ids(id);
  native.set_return_hidden_states(true);
  native.mutable_attention()->add_layers(1);
  native.mutable_attention()->add_heads(2);
  native.mutable_attention()->add_heads(0);
  native.set_pooling(v1::POOLING_MEAN);
  const v1::EncodeResponse want = Native(native);

  for (bool raw : {true, false}) {
    SCOPED_TRACE(raw ? "raw" : "typed");
    inference::ModelInferRequest r;
    r.set_model_name("tiny_bert");
    r.set_id("req-7");
    Input* in_ids = AddInput(&r, "input_ids", "INT64", {2, 5});
    Input* in_mask = AddInput(&r, "attention_mask", "INT64", {2, 5});
    if (raw) {
      r.add_raw_input_contents(RawInt64(ids));
      r.add_raw_input_contents(RawInt64(mask));
    } else {
      in_ids->mutable_contents()->mutable_int64_contents()->Add(ids.begin(),
                                                                ids.end());
      in_mask->mutable_contents()->mutable_int64_contents()->Add(mask.begin(),
                                                                 mask.end());
    }
    for (const char* o : {"last_hidden_state", "embedding", "attentions"}) {
      AddOutput(&r, o);
    }
    SetParam(&r, "pooling", "mean");
    SetParam(&r, "attention_layers", "1");
    SetParam(&r, "attention_heads", "2,0");
    inference::ModelInferResponse response;
    const grpc::Status s = Infer(r, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(response.id(), "req-7");
    EXPECT_EQ(response.model_name(), "tiny_bert");

    const int64_t h = testing::kHidden;
    const Output hidden = Find(response, "last_hidden_state");
    EXPECT_EQ(hidden.datatype, "FP32");
    EXPECT_THAT(hidden.shape, ElementsAre(2, 5, h));
    const Output embedding = Find(response, "embedding");
    EXPECT_THAT(embedding.shape, ElementsAre(2, h));
    const Output maps = Find(response, "attentions");
    EXPECT_THAT(maps.shape, ElementsAre(2, 1, 2, 5, 5));
    for (int s = 0; s < 2; ++s) {
      const v1::SequenceResult& w = want.results(s);
      const int64_t t = w.token_ids_size();
      // Hidden states: the real rows, bit for bit, then zeros.
      const std::string& wh = w.hidden_states().data();
      const std::string got_h = hidden.raw.substr(s * 5 * h * 4, 5 * h * 4);
      EXPECT_EQ(got_h.substr(0, wh.size()), wh);
      EXPECT_EQ(got_h.substr(wh.size()),
                std::string(got_h.size() - wh.size(), '\0'));
      EXPECT_EQ(embedding.raw.substr(s * h * 4, h * 4), w.embedding().data());
      // Maps: each (head, row) of t values, padded to 5 columns and rows.
      const std::string& wm = w.attention().data();
      for (int hh = 0; hh < 2; ++hh) {
        for (int64_t row = 0; row < 5; ++row) {
          const std::string got_row = maps.raw.substr(
              (((s * 1 + 0) * 2 + hh) * 5 + row) * 5 * 4, 5 * 4);
          std::string want_row(5 * 4, '\0');
          if (row < t) {
            std::memcpy(want_row.data(), wm.data() + ((hh * t) + row) * t * 4,
                        t * 4);
          }
          EXPECT_EQ(got_row, want_row)
              << "seq " << s << " head " << hh << " row " << row;
        }
      }
    }
  }
}

TEST_F(OipTest, TextInputDefaultsToEveryOutputButAttentions) {
  inference::ModelInferRequest r;
  AddInput(&r, "text", "BYTES", {2});
  r.add_raw_input_contents(RawBytes({"the cat sat", "a dog"}));
  inference::ModelInferResponse response;
  const grpc::Status s = Infer(r, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  // All outputs but attentions.
  std::vector<std::string> names;
  for (const auto& o : response.outputs()) names.push_back(o.name());
  EXPECT_THAT(names, ElementsAre("last_hidden_state", "pooler_output",
                                 "embedding", "token_ids"));

  v1::EncodeRequest native;
  native.add_sequences()->set_text("the cat sat");
  native.add_sequences()->set_text("a dog");
  native.set_return_hidden_states(true);
  const v1::EncodeResponse want = Native(native);
  const Output ids = Find(response, "token_ids");
  const int64_t t = want.results(0).token_ids_size();
  EXPECT_THAT(ids.shape, ElementsAre(2, t));
  std::vector<int64_t> got(2 * t);
  std::memcpy(got.data(), ids.raw.data(), ids.raw.size());
  for (int64_t j = 0; j < t; ++j) {
    EXPECT_EQ(got[j], want.results(0).token_ids(j));
  }
  const int64_t t1 = want.results(1).token_ids_size();
  for (int64_t j = 0; j < t; ++j) {
    EXPECT_EQ(got[t + j], j < t1 ? want.results(1).token_ids(j) : 0);
  }
  EXPECT_EQ(Find(response, "embedding").raw.substr(0, testing::kHidden * 4),
            want.results(0).embedding().data());
  // pooler_output is v1's POOLING_POOLER embedding.
  native.set_pooling(v1::POOLING_POOLER);
  const v1::EncodeResponse pooled = Native(native);
  const Output pooler = Find(response, "pooler_output");
  EXPECT_THAT(pooler.shape, ElementsAre(2, testing::kHidden));
  EXPECT_EQ(pooler.raw, pooled.results(0).embedding().data() +
                            pooled.results(1).embedding().data());

  // Typed BYTES, [B, 1] as Triton clients send it.
  inference::ModelInferRequest typed;
  Input* in = AddInput(&typed, "text", "BYTES", {2, 1});
  in->mutable_contents()->add_bytes_contents("the cat sat");
  in->mutable_contents()->add_bytes_contents("a dog");
  inference::ModelInferResponse typed_response;
  ASSERT_TRUE(Infer(typed, &typed_response).ok());
  EXPECT_EQ(typed_response.raw_output_contents(0),
            response.raw_output_contents(0));
}

TEST_F(OipTest, BadTensorsAreNamed) {
  auto ids_request = [] {
    inference::ModelInferRequest r;
    AddInput(&r, "input_ids", "INT64", {1, 3});
    r.add_raw_input_contents(RawInt64({2, 10, 3}));
    return r;
  };
  inference::ModelInferRequest r = ids_request();
  r.mutable_inputs(0)->set_datatype("FP32");
  EXPECT_THAT(Refusal(r), HasSubstr("input_ids: datatype FP32 is not INT64"));

  r = ids_request();
  r.mutable_inputs(0)->mutable_shape()->Set(1, 4);
  EXPECT_THAT(Refusal(r), HasSubstr("input_ids: raw contents hold 24 bytes"));

  r = ids_request();
  r.mutable_inputs(0)->mutable_shape()->RemoveLast();
  EXPECT_THAT(Refusal(r), HasSubstr("expected 2"));

  r = ids_request();
  AddInput(&r, "pixel_values", "FP32", {1});
  r.add_raw_input_contents(std::string(4, '\0'));
  EXPECT_THAT(Refusal(r), HasSubstr("input \"pixel_values\" is not an input"));

  r = ids_request();
  AddOutput(&r, "logits");
  EXPECT_THAT(Refusal(r), HasSubstr("output \"logits\" is not an output"));

  r = ids_request();
  Input* mask = AddInput(&r, "attention_mask", "INT64", {1, 3});
  mask->mutable_contents()->add_int64_contents(1);
  EXPECT_THAT(Refusal(r), HasSubstr("typed contents in a request with "
                                    "raw_input_contents"));

  r = ids_request();
  AddInput(&r, "attention_mask", "INT64", {1, 3});
  r.add_raw_input_contents(RawInt64({1, 0, 1}));
  EXPECT_THAT(Refusal(r), HasSubstr("attention_mask[0] has a 1 after a 0"));

  r = ids_request();
  r.set_raw_input_contents(0, RawInt64({2, 999, 3}));
  EXPECT_THAT(Refusal(r), HasSubstr("token_ids[1] = 999 is out of range"));

  r = ids_request();
  r.set_model_name("bert-large");
  EXPECT_THAT(Refusal(r, grpc::NOT_FOUND), HasSubstr("bert-large"));

  r = ids_request();
  AddOutput(&r, "last_hidden_state");
  (*r.mutable_parameters())["normalize"].set_bool_param(true);
  EXPECT_THAT(Refusal(r), HasSubstr("normalize needs the embedding output"));

  r = ids_request();
  SetParam(&r, "attention_layers", "1");
  EXPECT_THAT(Refusal(r), HasSubstr("add \"attentions\" to outputs"));

  inference::ModelInferRequest text;
  AddInput(&text, "text", "BYTES", {2});
  text.add_raw_input_contents(RawBytes({"one"}));
  EXPECT_THAT(Refusal(text), HasSubstr("text: raw BYTES end before element 1"));

  // The response limit holds for the padded tensors too.
  inference::ModelInferRequest big;
  AddInput(&big, "input_ids", "INT64", {2, 40});
  big.add_raw_input_contents(RawInt64(std::vector<int64_t>(2 * 40, 5)));
  AddOutput(&big, "attentions");
  EXPECT_THAT(Refusal(big, grpc::RESOURCE_EXHAUSTED),
              HasSubstr("--max_response_bytes"));
}

}  // namespace
}  // namespace attnserve
