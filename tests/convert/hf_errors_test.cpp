// Bad Hugging Face directories: each gives one clear error (a single line naming the problem) and leaves no output
// file, temp file included. The starting point is a valid directory exported from a random model of llama-tiny's
// shape (test_models.h), so these run in any clone.
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "../base/test_tmpdir.h"
#include "convert/hf_convert.h"
#include "hf_test_util.h"
#include "quantize/quantize_model.h"

namespace pocketlm {
namespace {

namespace fs = std::filesystem;
using testing_util::TempDir;

class HfImportErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string model = testing_util::RandomModel(testing_util::TinyShape("llama"));
    ASSERT_FALSE(model.empty());
    auto ex = convert::ExportHfModel(model, dir());
    ASSERT_TRUE(ex.ok()) << ex.status().message();
    fs::create_directories(tmp_.path() / "out");
  }
  std::string dir() const { return tmp_.file("hf"); }
  std::string out() const { return (tmp_.path() / "out" / "model.gguf").string(); }

  void EditJson(const std::string& file, const std::function<void(nlohmann::json&)>& edit) {
    const fs::path p = tmp_.path() / "hf" / file;
    nlohmann::json j = nlohmann::json::parse(testing_util::ReadAll(p));
    edit(j);
    std::ofstream(p) << j.dump();
  }

  // The import fails with `code`, one line containing `needle`, and the output directory stays empty.
  void ExpectError(ErrorCode code, const std::string& needle) {
    auto r = convert::ImportHfModel({dir(), out(), DType::kF32});
    ASSERT_FALSE(r.ok());
    const std::string& m = r.status().message();
    EXPECT_EQ(r.status().code(), code) << m;
    EXPECT_NE(m.find(needle), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    std::vector<std::string> left;
    for (const auto& e : fs::directory_iterator(tmp_.path() / "out")) left.push_back(e.path().filename().string());
    EXPECT_TRUE(left.empty()) << "left behind: " << left.front();
    std::printf("error: %s\n", m.c_str());
  }

  TempDir tmp_;
};

TEST_F(HfImportErrors, MissingConfigJson) {
  fs::remove(tmp_.path() / "hf" / "config.json");
  ExpectError(ErrorCode::kNotFound, "config.json' does not exist");
}

TEST_F(HfImportErrors, ShapeDisagreesWithConfig) {
  EditJson("config.json", [](nlohmann::json& j) { j["intermediate_size"] = 128; });
  ExpectError(ErrorCode::kCorrupt, "has shape [160, 64] but config.json implies [128, 64]");
}

TEST_F(HfImportErrors, UnsupportedArchitecture) {
  EditJson("config.json", [](nlohmann::json& j) { j["architectures"] = {"MambaForCausalLM"}; });
  ExpectError(ErrorCode::kUnsupported, "architecture MambaForCausalLM is not supported");
}

TEST_F(HfImportErrors, CorruptSafetensorsHeader) {
  // Overwrite the start of the JSON header: the file no longer parses.
  std::fstream f((tmp_.path() / "hf" / "model.safetensors").string(), std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(8);
  f.write("#garbage", 8);
  f.close();
  ExpectError(ErrorCode::kCorrupt, "model.safetensors");
}

TEST_F(HfImportErrors, TruncatedSafetensors) {
  fs::resize_file(tmp_.path() / "hf" / "model.safetensors", 4096);
  ExpectError(ErrorCode::kCorrupt, "model.safetensors");
}

TEST_F(HfImportErrors, MissingTensor) {
  EditJson("config.json", [](nlohmann::json& j) { j["num_hidden_layers"] = 3; });
  ExpectError(ErrorCode::kCorrupt, "lacks tensor 'model.layers.2.input_layernorm.weight'");
}

TEST_F(HfImportErrors, UnsupportedTokenizerType) {
  EditJson("tokenizer.json", [](nlohmann::json& j) { j["model"]["type"] = "WordPiece"; });
  ExpectError(ErrorCode::kUnsupported, "tokenizer model type 'WordPiece' is not supported");
}

TEST_F(HfImportErrors, MissingTokenizer) {
  fs::remove(tmp_.path() / "hf" / "tokenizer.json");
  ExpectError(ErrorCode::kNotFound, "tokenizer.json' does not exist");
}

TEST_F(HfImportErrors, UnsupportedRopeScaling) {
  EditJson("config.json", [](nlohmann::json& j) { j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}}; });
  ExpectError(ErrorCode::kUnsupported, "rope_scaling");
}

TEST(HfExportErrors, QuantizedModel) {
  const std::string model = testing_util::RandomModel(testing_util::TinyShape("llama"));
  ASSERT_FALSE(model.empty());
  TempDir tmp;
  quantize::QuantizeOptions q4;
  q4.preset = "Q4_0";
  auto q = quantize::QuantizeModel(model, tmp.file("q4_0.gguf"), q4);
  ASSERT_TRUE(q.ok()) << q.status().message();
  auto r = convert::ExportHfModel(tmp.file("q4_0.gguf"), tmp.file("hf"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnsupported);
  EXPECT_NE(r.status().message().find("export needs an F32, F16 or BF16 model"), std::string::npos);
  EXPECT_FALSE(fs::exists(tmp.path() / "hf"));
}

}  // namespace
}  // namespace pocketlm
