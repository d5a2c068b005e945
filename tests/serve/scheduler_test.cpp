// The scheduler against the engine on a random llama model and a random rank-8 adapter made here
// (tests/support/test_models.h): requests with different adapter sets, interleaved round-robin in a shared set of
// slots, each get exactly the tokens they get alone from model/generate.h's Generate (greedy and seeded sampling),
// and slots switch adapter sets correctly.
#include "serve/scheduler.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "model/chat_format_choice.h"
#include "model/generate.h"
#include "serve/adapter_registry.h"
#include "serve/prepare.h"
#include "test_models.h"

namespace pocketlm::serve {
namespace {

class ServeScheduler : public ::testing::Test {
 protected:
  void SetUp() override {
    base_path_ = testing_util::RandomModel();
    ASSERT_FALSE(base_path_.empty());
    adapter_path_ = testing_util::RandomLora(base_path_);  // rank 8 on every projection, as the golden r8 adapter
    ASSERT_FALSE(adapter_path_.empty());
    auto m = Model::Load(base_path_);
    ASSERT_TRUE(m.ok()) << m.status().message();
    model_ = std::move(m).value();
    registry_ = std::make_unique<AdapterRegistry>(*model_, "random-base");
    ASSERT_TRUE(registry_->Load("r8", adapter_path_).ok());
  }

  GenerationJob Job(const std::string& prompt, AdapterSet adapters, float temperature, uint64_t seed) {
    GenerationJob j;
    j.prompt = model_->tokenizer().Encode(prompt, true, true).value();
    j.adapters = std::move(adapters);
    j.sampling.temperature = temperature;
    j.sampling.seed = seed;
    j.max_tokens = 12;
    j.channel = std::make_shared<JobChannel>();
    return j;
  }

  // What Generate produces for the job in a fresh context.
  std::string Alone(const GenerationJob& j) {
    ContextParams cp;
    cp.n_ctx = 256;
    auto ctx = Context::Create(*model_, cp).value();
    std::vector<ActiveLora> active;
    for (const ScaledAdapter& a : j.adapters) active.push_back({a.adapter.get(), a.scale});
    EXPECT_TRUE(ctx->SetAdapters(active).ok());
    GenerateParams gp;
    gp.n_predict = j.max_tokens;
    gp.sampling = j.sampling;
    std::string text;
    auto st = Generate(*ctx, j.prompt, gp, [&](std::string_view p) {
      text += p;
      return true;
    });
    EXPECT_TRUE(st.ok());
    return text;
  }

  static std::string Collect(JobChannel& ch) {
    std::string text;
    std::vector<JobEvent> events;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      events.clear();
      ch.Wait(&events, std::chrono::milliseconds(100));
      for (const JobEvent& e : events) {
        if (e.kind == JobEvent::kText) text += e.text;
        if (e.kind == JobEvent::kError) return "ERROR: " + e.error.message();
        if (e.kind == JobEvent::kDone) return text;
      }
    }
    return "TIMEOUT";
  }

  std::string base_path_, adapter_path_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<AdapterRegistry> registry_;
};

// `serve --parallel 4 -t 4` runs 3 worker threads, not 3 per sequence: the slots take turns on one pool.
TEST_F(ServeScheduler, SlotsShareOneThreadPool) {
  const int before = ThreadPool::LiveWorkers();
  SchedulerOptions so;
  so.parallel = 4;
  so.context.n_ctx = 64;
  so.context.n_threads = 4;
  {
    auto sched = Scheduler::Create(*model_, so);
    ASSERT_TRUE(sched.ok()) << sched.status().message();
    EXPECT_EQ(ThreadPool::LiveWorkers() - before, 3);
    GenerationJob j = Job("Once upon a time", {}, 0.0f, 1);
    auto channel = j.channel;
    ASSERT_EQ((*sched)->Submit(std::move(j)), Scheduler::SubmitResult::kQueued);
    EXPECT_EQ(Collect(*channel), Alone(Job("Once upon a time", {}, 0.0f, 1)));
    (*sched)->Stop();
  }
  EXPECT_EQ(ThreadPool::LiveWorkers(), before);
}

TEST_F(ServeScheduler, MixedAdaptersInterleavedEqualAlone) {
  const AdapterPtr r8 = registry_->Find("r8");
  std::vector<GenerationJob> jobs;
  jobs.push_back(Job("Once upon a time", {}, 0.0f, 0));
  jobs.push_back(Job("Once upon a time", {{r8, 1.0f}}, 0.0f, 0));
  jobs.push_back(Job("The little dog", {{r8, 0.5f}}, 0.0f, 0));
  jobs.push_back(Job("The little dog", {}, 0.9f, 1234));           // seeded sampling
  jobs.push_back(Job("Once upon a time", {{r8, 1.0f}}, 0.0f, 0));  // reuses a slot with the same set
  std::vector<std::string> expected;
  for (const GenerationJob& j : jobs) expected.push_back(Alone(j));
  EXPECT_NE(expected[0], expected[1]) << "the adapter does not change the output (test is vacuous)";

  SchedulerOptions so;
  so.parallel = 2;  // fewer slots than jobs: slots are reused across adapter sets
  so.context.n_ctx = 256;
  so.context.n_batch = 4;  // several prefill steps per prompt, interleaved with other sequences' tokens
  auto sched = Scheduler::Create(*model_, so);
  ASSERT_TRUE(sched.ok());
  std::vector<std::shared_ptr<JobChannel>> channels;
  for (GenerationJob& j : jobs) {
    channels.push_back(j.channel);
    ASSERT_EQ((*sched)->Submit(std::move(j)), Scheduler::SubmitResult::kQueued);
  }
  for (size_t i = 0; i < channels.size(); ++i) EXPECT_EQ(Collect(*channels[i]), expected[i]) << "job " << i;
  (*sched)->Stop();
}

TEST_F(ServeScheduler, QueueLimitAndShutdown) {
  SchedulerOptions so;
  so.parallel = 1;
  so.max_queue = 1;
  so.context.n_ctx = 256;
  auto sched = Scheduler::Create(*model_, so).value();
  std::vector<std::shared_ptr<JobChannel>> channels;
  int full = 0;
  for (int i = 0; i < 6; ++i) {
    GenerationJob j = Job("Once upon a time", {}, 0.0f, 0);
    j.max_tokens = 200;
    channels.push_back(j.channel);
    if (sched->Submit(std::move(j)) == Scheduler::SubmitResult::kQueueFull) ++full;
  }
  EXPECT_GE(full, 3);  // one slot + one queued (+ one taken meanwhile) at most
  sched->CancelActive();
  EXPECT_EQ(sched->Submit(Job("x", {}, 0.0f, 0)), Scheduler::SubmitResult::kShuttingDown);
  sched->Stop();
  EXPECT_EQ(Collect(*channels[0]).rfind("ERROR: ", 0), 0u);  // cancelled, not left hanging
}

TEST_F(ServeScheduler, UnloadKeepsInFlightAdapterAlive) {
  AdapterPtr r8 = registry_->Find("r8");
  GenerationJob j = Job("Once upon a time", {{r8, 1.0f}}, 0.0f, 0);
  const std::string expected = Alone(j);
  r8.reset();
  ASSERT_TRUE(registry_->Unload("r8").ok());
  EXPECT_EQ(registry_->Find("r8"), nullptr);
  SchedulerOptions so;
  so.parallel = 1;
  so.context.n_ctx = 256;
  auto sched = Scheduler::Create(*model_, so).value();
  auto ch = j.channel;
  ASSERT_EQ(sched->Submit(std::move(j)), Scheduler::SubmitResult::kQueued);
  EXPECT_EQ(Collect(*ch), expected);
  EXPECT_EQ(registry_->Unload("r8").code(), ErrorCode::kNotFound);
}

TEST_F(ServeScheduler, RegistryRefusesMismatchAndDuplicates) {
  EXPECT_FALSE(registry_->Load("r8", adapter_path_).ok());           // taken
  EXPECT_FALSE(registry_->Load("random-base", adapter_path_).ok());  // the base's id
  EXPECT_FALSE(registry_->Load("x", base_path_ + ".missing.gguf").ok());
  mkmodel::RandomLoraOptions other_arch;
  other_arch.architecture = "qwen2";
  const Status s = registry_->Load("q", testing_util::RandomLora(base_path_, other_arch));  // another architecture
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("does not fit the base"), std::string::npos) << s.message();
}

// Prefix cache: a job whose prompt extends the previous job's prompt under the same adapter set reuses its cache
// (usage reports the cached tokens) and still gets exactly the tokens it gets alone; the same prompt under another
// adapter set (or scale) reuses nothing.
TEST_F(ServeScheduler, PrefixCacheIsReusedOnlyUnderTheSameAdapterSet) {
  const AdapterPtr r8 = registry_->Find("r8");
  SchedulerOptions so;
  so.parallel = 1;
  so.context.n_ctx = 256;
  so.context.n_batch = 4;
  auto sched = Scheduler::Create(*model_, so).value();
  // Runs one job to its end; returns (text, cached tokens).
  const auto run = [&](GenerationJob j) {
    auto ch = j.channel;
    EXPECT_EQ(sched->Submit(std::move(j)), Scheduler::SubmitResult::kQueued);
    std::string text;
    int cached = -1;
    std::vector<JobEvent> events;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (cached < 0 && std::chrono::steady_clock::now() < deadline) {
      events.clear();
      ch->Wait(&events, std::chrono::milliseconds(100));
      for (const JobEvent& e : events) {
        if (e.kind == JobEvent::kText) text += e.text;
        if (e.kind == JobEvent::kError) return std::make_pair("ERROR: " + e.error.message(), -1);
        if (e.kind == JobEvent::kDone) cached = e.n_cached;
      }
    }
    return std::make_pair(text, cached);
  };
  const std::string system = "You are a helpful assistant that tells short stories about animals.";
  GenerationJob first = Job(system + " Once upon a time", {{r8, 1.0f}}, 0.0f, 0);
  const size_t n_first = first.prompt.size();
  EXPECT_EQ(run(std::move(first)).second, 0);

  GenerationJob second = Job(system + " The little dog", {{r8, 1.0f}}, 0.0f, 0);
  const std::string want_second = Alone(second);
  const auto [text2, cached2] = run(std::move(second));
  EXPECT_EQ(text2, want_second);
  EXPECT_GT(cached2, 10) << "the shared system prompt was not reused";
  EXPECT_LT(static_cast<size_t>(cached2), n_first);

  for (const AdapterSet& other : {AdapterSet{}, AdapterSet{{r8, 0.5f}}}) {
    GenerationJob third = Job(system + " The little dog", other, 0.0f, 0);
    const std::string want_third = Alone(third);
    const auto [text3, cached3] = run(std::move(third));
    EXPECT_EQ(text3, want_third);
    EXPECT_EQ(cached3, 0) << "a cache built under another adapter set was reused";
  }
  sched->Stop();
}

// A memory budget that holds one adapter: loading a second evicts the least recently used; asking for the evicted
// one loads it again (the same weights) and evicts the other; a request holding an evicted adapter keeps it alive.
TEST_F(ServeScheduler, AdapterBudgetEvictsLeastRecentlyUsed) {
  const std::string& path = adapter_path_;
  const size_t one = registry_->Find("r8")->ResidentBytes();
  ASSERT_GT(one, 0u);
  AdapterRegistry reg(*model_, "random-base", one + one / 2);
  ASSERT_TRUE(reg.Load("a", path).ok());
  const AdapterPtr held_a = reg.Find("a");  // a request in flight with "a"
  ASSERT_TRUE(reg.Load("b", path).ok());
  EXPECT_EQ(reg.resident_bytes(), one);  // "a" evicted: over budget with both
  const auto resident = [&](const std::string& n) {
    for (const auto& [name, ad] : reg.List()) {
      if (name == n) return ad != nullptr;
    }
    return false;
  };
  EXPECT_FALSE(resident("a"));
  EXPECT_TRUE(resident("b"));
  EXPECT_EQ(held_a->pairs().size(), registry_->Find("r8")->pairs().size());  // still usable
  const AdapterPtr again = reg.Find("a");                                    // loads it again, evicts "b"
  ASSERT_NE(again, nullptr);
  EXPECT_NE(again, held_a);
  EXPECT_TRUE(resident("a"));
  EXPECT_FALSE(resident("b"));
  EXPECT_EQ(reg.resident_bytes(), one);
  EXPECT_EQ(reg.List().size(), 2u);  // both stay registered

  // The reloaded adapter gives the same logits as the one loaded first.
  ContextParams cp;
  cp.n_ctx = 32;
  const std::vector<int32_t> toks = {1, 300, 350};
  std::vector<float> la, lb;
  auto ca = Context::Create(*model_, cp).value(), cb = Context::Create(*model_, cp).value();
  ASSERT_TRUE(ca->SetAdapters({{held_a.get(), 1.0f}}).ok());
  ASSERT_TRUE(cb->SetAdapters({{again.get(), 1.0f}}).ok());
  ASSERT_TRUE(ca->Eval(toks, true, &la).ok());
  ASSERT_TRUE(cb->Eval(toks, true, &lb).ok());
  EXPECT_EQ(la, lb);

  // Without a budget nothing is evicted.
  AdapterRegistry unlimited(*model_, "random-base");
  ASSERT_TRUE(unlimited.Load("a", path).ok());
  ASSERT_TRUE(unlimited.Load("b", path).ok());
  EXPECT_EQ(unlimited.resident_bytes(), 2 * one);
}

// Names are logged and listed: control characters, spaces and overlong names are refused; OpenAI-style ids pass.
TEST_F(ServeScheduler, AdapterNamesArePrintableAscii) {
  AdapterRegistry reg(*model_, "random-base");
  for (const std::string& bad : {std::string("line\nbreak"), std::string("esc\x1b[31m"), std::string("two words"),
                                 std::string("caf\xc3\xa9"), std::string(129, 'a')}) {
    const Status s = reg.Load(bad, adapter_path_);
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(reg.Load("ft:my-org/wellness_v1.2", adapter_path_).ok());
  EXPECT_TRUE(reg.Load(std::string(128, 'b'), adapter_path_).ok());
}

// Adapters the server started with stay loaded; those the admin API added can go.
TEST_F(ServeScheduler, PinnedAdaptersCannotBeUnloaded) {
  AdapterRegistry reg(*model_, "random-base");
  ASSERT_TRUE(reg.Load("startup", adapter_path_, AdapterRegistry::Removal::kPinned).ok());
  ASSERT_TRUE(reg.Load("added", adapter_path_).ok());
  EXPECT_EQ(reg.Unload("startup").code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(reg.Find("startup"), nullptr);
  EXPECT_TRUE(reg.Unload("added").ok());
  EXPECT_EQ(reg.Unload("added").code(), ErrorCode::kNotFound);
}

// An evicted adapter is loaded again only from the file it came from: a symbolic link swapped in for that file
// (pointing at another adapter here; at /etc/passwd in an attack) is not followed.
TEST_F(ServeScheduler, EvictedAdapterIsNotReloadedThroughASwappedLink) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("plm-registry-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path file = dir / "a.gguf";
  fs::copy_file(adapter_path_, file, fs::copy_options::overwrite_existing);
  const size_t one = registry_->Find("r8")->ResidentBytes();
  AdapterRegistry reg(*model_, "random-base", one + one / 2);
  ASSERT_TRUE(reg.Load("a", file.string()).ok());
  ASSERT_TRUE(reg.Load("b", adapter_path_).ok());  // evicts "a"
  fs::remove(file);
  fs::create_symlink(adapter_path_, file);
  EXPECT_EQ(reg.Find("a"), nullptr);
  // The file itself back in place: it loads again.
  fs::remove(file);
  fs::copy_file(adapter_path_, file);
  EXPECT_NE(reg.Find("a"), nullptr);
  fs::remove_all(dir);
}

// The random model has no chat template and no <|im_start|>: a chat request is rendered with ChatML spelled as
// text, and the job stops on the end-of-turn text besides the client's own stop sequences; a completion request
// gets no such stop.
TEST_F(ServeScheduler, ChatWithoutTemplateStopsOnTheSpelledEndOfTurn) {
  PrepareEnv env;
  env.model = model_.get();
  env.registry = registry_.get();
  env.chat_format = ChooseChatFormat(*model_, "", MissingMarkers::kAsText).value();
  env.n_ctx = 256;
  env.max_tokens_cap = 16;
  ASSERT_TRUE(env.chat_format.markers_as_text);
  CompletionRequest chat;
  chat.messages = {{ChatRole::kUser, "hello", true}};
  chat.stop = {"END"};
  auto job = PrepareJob(chat, env);
  ASSERT_TRUE(std::holds_alternative<GenerationJob>(job));
  const GenerationJob& j = std::get<GenerationJob>(job);
  EXPECT_EQ(j.stop, (std::vector<std::string>{"END", "<|im_end|>"}));
  EXPECT_EQ(j.prompt, model_->tokenizer()
                          .Encode("<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n",
                                  /*add_special=*/true, /*parse_special=*/false)
                          .value());
  CompletionRequest text;
  text.endpoint = Endpoint::kCompletion;
  text.prompt = "hello";
  auto tjob = PrepareJob(text, env);
  ASSERT_TRUE(std::holds_alternative<GenerationJob>(tjob));
  EXPECT_TRUE(std::get<GenerationJob>(tjob).stop.empty());
}

}  // namespace
}  // namespace pocketlm::serve
