// Several models in one server, in process: the registry's names and
// defaults; ListModels; every request of attnserve.v1 (unary and streamed)
// and of the Open Inference Protocol runs on the model it names, checked
// against each model's float64 golden; unknown and ambiguous names are
// refused with the served names; tokenizers are per model.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/inference.grpc.pb.h"
#include "server/model_registry.h"
#include "tests/server_testing.h"

namespace attnserve {
namespace {

using ::attnserve::testing::CallEncode;
using ::attnserve::testing::DataPath;
using ::attnserve::testing::FindGolden;
using ::attnserve::testing::GoldenSequence;
using ::attnserve::testing::kHiddenTolerance;
using ::attnserve::testing::MaxAbsDiff;
using ::attnserve::testing::MinTokenCosine;
using ::attnserve::testing::ReadGolden;
using ::attnserve::testing::DecodeFloat32;
using ::attnserve::testing::NewChannel;
using ::attnserve::testing::SetDeadline;
using ::attnserve::testing::TestOptions;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::string kBertDir = DataPath("tiny_bert");        // has a vocab
const std::string kRobertaDir = DataPath("tiny_roberta");  // ids only

// `dir` loaded as model `name` in `precision`, with its tokenizer.
ModelRegistry::Model Load(const std::string& dir, const std::string& name,
                          Precision precision = Precision::kFloat32) {
  EncoderOptions options;
  options.name = name;
  options.precision = precision;
  absl::StatusOr<std::unique_ptr<Encoder>> encoder =
      Encoder::Load(dir, options);
  EXPECT_TRUE(encoder.ok()) << encoder.status();
  if (!encoder.ok()) return {nullptr, encoder.status()};
  absl::StatusOr<std::unique_ptr<TextTokenizer>> tokenizer =
      LoadTokenizerFor(dir, (*encoder)->info());
  return {*std::move(encoder), std::move(tokenizer)};
}

// bert (tiny_bert fp32), roberta (tiny_roberta fp32), bert16 (tiny_bert
// bf16), in that order; `default_model` as --default_model.
absl::StatusOr<std::unique_ptr<ModelRegistry>> ThreeModels(
    const std::string& default_model = "") {
  std::vector<ModelRegistry::Model> models;
  models.push_back(Load(kBertDir, "bert"));
  models.push_back(Load(kRobertaDir, "roberta"));
  models.push_back(Load(kBertDir, "bert16", Precision::kBFloat16));
  return ModelRegistry::Create(std::move(models), default_model);
}

TEST(ModelRegistryTest, FindsByNameAndRefusesUnknownOrAmbiguousOnes) {
  absl::StatusOr<std::unique_ptr<ModelRegistry>> registry = ThreeModels();
  ASSERT_TRUE(registry.ok()) << registry.status();
  const ModelRegistry& r = **registry;
  ASSERT_EQ(r.size(), 3);
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<const ServedModel*> found =
        r.Find(r.served(i).info->name, "model");
    ASSERT_TRUE(found.ok());
    EXPECT_EQ((*found)->index, i);
  }
  absl::StatusOr<const ServedModel*> unknown = r.Find("bert-large", "model");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(unknown.status().message(),
            "model \"bert-large\" is not served here; served: \"bert\", "
            "\"roberta\", \"bert16\"");
  absl::StatusOr<const ServedModel*> empty = r.Find("", "model_name");
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(empty.status().message(),
            "model_name is empty, and this server serves 3 models and has no "
            "default (--default_model): name one of \"bert\", \"roberta\", "
            "\"bert16\"");
  EXPECT_EQ(r.default_index(), -1);
  EXPECT_THAT(r.ListOrder(), ElementsAre(0, 1, 2));
  // Per model tokenizers: roberta's directory has none.
  EXPECT_NE(r.served(0).tokenizer, nullptr);
  EXPECT_EQ(r.served(1).tokenizer, nullptr);
  EXPECT_EQ(r.tokenizer_status(1).code(), absl::StatusCode::kNotFound);
}

TEST(ModelRegistryTest, TheDefaultModelAnswersAnEmptyNameAndIsListedFirst) {
  absl::StatusOr<std::unique_ptr<ModelRegistry>> registry =
      ThreeModels("roberta");
  ASSERT_TRUE(registry.ok()) << registry.status();
  absl::StatusOr<const ServedModel*> empty = (*registry)->Find("", "model");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ((*empty)->info->name, "roberta");
  EXPECT_THAT((*registry)->ListOrder(), ElementsAre(1, 0, 2));
}

TEST(ModelRegistryTest, RefusesDuplicateNamesAndAnUnknownDefault) {
  std::vector<ModelRegistry::Model> twins;
  twins.push_back(Load(kBertDir, "bert"));
  twins.push_back(Load(kRobertaDir, "bert"));
  absl::StatusOr<std::unique_ptr<ModelRegistry>> dup =
      ModelRegistry::Create(std::move(twins));
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(dup.status().message(), HasSubstr("two models are named"));

  absl::StatusOr<std::unique_ptr<ModelRegistry>> bad_default =
      ThreeModels("electra");
  EXPECT_EQ(bad_default.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad_default.status().message(),
            "--default_model=electra is not a served model; served: "
            "\"bert\", \"roberta\", \"bert16\"");
}

// One server over the three models, shared by the suite.
class ModelsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<ModelRegistry>> registry = ThreeModels();
    ASSERT_TRUE(registry.ok()) << registry.status();
    absl::StatusOr<std::unique_ptr<Server>> server =
        Server::Start(TestOptions(), *std::move(registry));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    stub_ = v1::Encoder::NewStub(NewChannel(server_->port()));
    oip_ =
        inference::GRPCInferenceService::NewStub(NewChannel(server_->port()));
  }

  // Encode of `golden` (ids, hidden states) on `model`.
  v1::EncodeRequest GoldenRequest(const std::string& model,
                                  const GoldenSequence& golden) {
    v1::EncodeRequest request;
    request.set_model(model);
    testing::AddSequence(golden, &request);
    request.set_return_hidden_states(true);
    return request;
  }

  static inline Server* server_ = nullptr;
  std::unique_ptr<v1::Encoder::Stub> stub_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> oip_;
};

TEST_F(ModelsTest, ListModelsReturnsEveryModelInServingOrder) {
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::ListModelsResponse response;
  ASSERT_TRUE(stub_->ListModels(&context, {}, &response).ok());
  ASSERT_EQ(response.models_size(), 3);
  EXPECT_EQ(response.models(0).name(), "bert");
  EXPECT_EQ(response.models(0).precision(), "fp32");
  EXPECT_TRUE(response.models(0).has_tokenizer());
  EXPECT_EQ(response.models(1).name(), "roberta");
  EXPECT_EQ(response.models(1).family(), "roberta");
  EXPECT_EQ(response.models(1).num_heads(), 3);
  EXPECT_FALSE(response.models(1).has_tokenizer());
  EXPECT_EQ(response.models(2).name(), "bert16");
  EXPECT_EQ(response.models(2).precision(), "bf16");
}

TEST_F(ModelsTest, EncodeRunsOnTheModelItNames) {
  const GoldenSequence bert =
      FindGolden(ReadGolden(kBertDir + "/golden.json"), "len12");
  const GoldenSequence roberta =
      FindGolden(ReadGolden(kRobertaDir + "/golden.json"), "len12");
  // Interleaved, so passes of both models alternate on the one thread.
  for (int round = 0; round < 3; ++round) {
    v1::EncodeResponse response;
    ASSERT_TRUE(
        CallEncode(*stub_, GoldenRequest("bert", bert), &response).ok());
    EXPECT_EQ(response.model(), "bert");
    EXPECT_LE(MaxAbsDiff(DecodeFloat32(response.results(0).hidden_states()),
                         bert.hidden),
              kHiddenTolerance);

    ASSERT_TRUE(
        CallEncode(*stub_, GoldenRequest("roberta", roberta), &response).ok());
    EXPECT_EQ(response.model(), "roberta");
    EXPECT_LE(MaxAbsDiff(DecodeFloat32(response.results(0).hidden_states()),
                         roberta.hidden),
              kHiddenTolerance);

    // bf16 weights: close to the fp32 model, not equal.
    ASSERT_TRUE(
        CallEncode(*stub_, GoldenRequest("bert16", bert), &response).ok());
    EXPECT_EQ(response.model(), "bert16");
    EXPECT_GE(MinTokenCosine(DecodeFloat32(response.results(0).hidden_states()),
                             bert.hidden, testing::kHidden),
              0.999);
  }
}

TEST_F(ModelsTest, UnknownAndAmbiguousNamesAreRefusedWithTheServedNames) {
  const GoldenSequence bert =
      FindGolden(ReadGolden(kBertDir + "/golden.json"), "len5");
  v1::EncodeResponse response;
  grpc::Status unknown =
      CallEncode(*stub_, GoldenRequest("bert-large", bert), &response);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(unknown.error_message(),
              HasSubstr("served: \"bert\", \"roberta\", \"bert16\""));
  grpc::Status empty = CallEncode(*stub_, GoldenRequest("", bert), &response);
  EXPECT_EQ(empty.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(empty.error_message(), HasSubstr("--default_model"));

  v1::GetModelInfoRequest info_request;
  info_request.set_model("nope");
  v1::ModelInfo info;
  EXPECT_EQ(testing::CallGetModelInfo(*stub_, info_request, &info).error_code(),
            grpc::StatusCode::NOT_FOUND);
  info_request.set_model("roberta");
  ASSERT_TRUE(testing::CallGetModelInfo(*stub_, info_request, &info).ok());
  EXPECT_EQ(info.name(), "roberta");

  v1::RankHeadsRequest rank;
  rank.set_model("nope");
  testing::AddSequence(bert, &rank);
  v1::RankHeadsResponse ranking;
  EXPECT_EQ(testing::CallRankHeads(*stub_, rank, &ranking).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(ModelsTest, TokenizeAndTextUseTheNamedModelsVocab) {
  v1::TokenizeRequest request;
  request.add_sequences()->set_text("the cat sat");
  request.set_model("bert");
  v1::TokenizeResponse response;
  ASSERT_TRUE(testing::CallTokenize(*stub_, request, &response).ok());
  EXPECT_EQ(response.results(0).tokens(1), "the");
  // roberta's directory ships no vocab: its text is refused, bert's is not.
  request.set_model("roberta");
  grpc::Status s = testing::CallTokenize(*stub_, request, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("roberta"));
}

TEST_F(ModelsTest, RankHeadsRanksTheNamedModelsHeads) {
  const GoldenSequence roberta =
      FindGolden(ReadGolden(kRobertaDir + "/golden.json"), "len5");
  v1::RankHeadsRequest request;
  request.set_model("roberta");
  testing::AddSequence(roberta, &request);
  v1::RankHeadsResponse response;
  grpc::Status s = testing::CallRankHeads(*stub_, request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.model(), "roberta");
  EXPECT_EQ(response.heads_size(), 2 * 3);  // 2 layers x 3 heads
}

TEST_F(ModelsTest, EncodeStreamRoutesEachMessageByItsModel) {
  const GoldenSequence bert =
      FindGolden(ReadGolden(kBertDir + "/golden.json"), "len5");
  const GoldenSequence roberta =
      FindGolden(ReadGolden(kRobertaDir + "/golden.json"), "len5");
  const std::vector<std::string> models = {"bert",   "roberta", "nope",
                                           "bert16", "roberta", ""};
  grpc::ClientContext context;
  SetDeadline(&context, 60);
  auto stream = stub_->EncodeStream(&context);
  for (const std::string& model : models) {
    ASSERT_TRUE(stream->Write(
        GoldenRequest(model, model == "roberta" ? roberta : bert)));
  }
  stream->WritesDone();
  std::vector<v1::EncodeResponse> responses;
  v1::EncodeResponse response;
  while (stream->Read(&response)) responses.push_back(response);
  ASSERT_TRUE(stream->Finish().ok());
  ASSERT_EQ(responses.size(), models.size());
  for (size_t i = 0; i < models.size(); ++i) {
    SCOPED_TRACE(models[i]);
    if (models[i] == "nope" || models[i].empty()) {
      ASSERT_TRUE(responses[i].has_error());
      EXPECT_EQ(responses[i].error().code(),
                models[i].empty() ? grpc::StatusCode::INVALID_ARGUMENT
                                  : grpc::StatusCode::NOT_FOUND);
      EXPECT_THAT(responses[i].error().message(), HasSubstr("\"roberta\""));
      continue;
    }
    ASSERT_FALSE(responses[i].has_error()) << responses[i].error().message();
    EXPECT_EQ(responses[i].model(), models[i]);
    const GoldenSequence& g = models[i] == "roberta" ? roberta : bert;
    const std::vector<float> hidden =
        DecodeFloat32(responses[i].results(0).hidden_states());
    if (models[i] == "bert16") {
      EXPECT_GE(MinTokenCosine(hidden, g.hidden, testing::kHidden), 0.999);
    } else {
      EXPECT_LE(MaxAbsDiff(hidden, g.hidden), kHiddenTolerance);
    }
  }
}

TEST_F(ModelsTest, OpenInferenceProtocolRoutesByModelName) {
  for (const std::string name : {"bert", "roberta", "bert16"}) {
    SCOPED_TRACE(name);
    grpc::ClientContext ready_context;
    SetDeadline(&ready_context);
    inference::ModelReadyRequest ready_request;
    ready_request.set_name(name);
    inference::ModelReadyResponse ready;
    ASSERT_TRUE(oip_->ModelReady(&ready_context, ready_request, &ready).ok());
    EXPECT_TRUE(ready.ready());

    grpc::ClientContext meta_context;
    SetDeadline(&meta_context);
    inference::ModelMetadataRequest meta_request;
    meta_request.set_name(name);
    inference::ModelMetadataResponse meta;
    ASSERT_TRUE(oip_->ModelMetadata(&meta_context, meta_request, &meta).ok());
    EXPECT_EQ(meta.name(), name);
  }
  // ModelInfer on roberta: [1, 4, 36] hidden states, its name back.
  inference::ModelInferRequest request;
  request.set_model_name("roberta");
  auto* ids = request.add_inputs();
  ids->set_name("input_ids");
  ids->set_datatype("INT64");
  ids->add_shape(1);
  ids->add_shape(4);
  for (int64_t id : {0, 7, 8, 2})
    ids->mutable_contents()->add_int64_contents(id);
  request.add_outputs()->set_name("last_hidden_state");
  grpc::ClientContext infer_context;
  SetDeadline(&infer_context);
  inference::ModelInferResponse response;
  grpc::Status s = oip_->ModelInfer(&infer_context, request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.model_name(), "roberta");
  ASSERT_EQ(response.outputs_size(), 1);
  EXPECT_THAT(response.outputs(0).shape(), ElementsAre(1, 4, 36));

  for (const std::string name : {"nope", ""}) {
    request.set_model_name(name);
    grpc::ClientContext context;
    SetDeadline(&context);
    grpc::Status refused = oip_->ModelInfer(&context, request, &response);
    EXPECT_EQ(refused.error_code(), name.empty()
                                        ? grpc::StatusCode::INVALID_ARGUMENT
                                        : grpc::StatusCode::NOT_FOUND);
    EXPECT_THAT(refused.error_message(), HasSubstr("\"bert16\""));
    grpc::ClientContext ready_context;
    SetDeadline(&ready_context);
    inference::ModelReadyRequest ready_request;
    ready_request.set_name(name);
    inference::ModelReadyResponse ready;
    EXPECT_FALSE(oip_->ModelReady(&ready_context, ready_request, &ready).ok());
  }
}

TEST_F(ModelsTest, ConcurrentClientsOfEveryModelGetTheirOwnModelsAnswers) {
  const GoldenSequence bert =
      FindGolden(ReadGolden(kBertDir + "/golden.json"), "len23");
  const GoldenSequence roberta =
      FindGolden(ReadGolden(kRobertaDir + "/golden.json"), "len23");
  std::atomic<int> wrong{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      auto stub = v1::Encoder::NewStub(NewChannel(server_->port()));
      const bool is_bert = c % 2 == 0;
      const GoldenSequence& g = is_bert ? bert : roberta;
      const v1::EncodeRequest request =
          GoldenRequest(is_bert ? "bert" : "roberta", g);
      for (int i = 0; i < 20; ++i) {
        v1::EncodeResponse response;
        if (!CallEncode(*stub, request, &response).ok() ||
            response.model() != request.model() ||
            MaxAbsDiff(DecodeFloat32(response.results(0).hidden_states()),
                       g.hidden) > kHiddenTolerance) {
          ++wrong;
        }
      }
    });
  }
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace attnserve
