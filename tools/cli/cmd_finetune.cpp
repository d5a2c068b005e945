// pocketlm finetune -m BASE --data TRAIN.jsonl [--val VAL.jsonl] -o ADAPTER.gguf ...: progress on stderr (a live
// bar on a terminal, one log line every few steps otherwise), a summary at the end.
#include "cmd_finetune.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "io/peft/peft_adapter.h"
#include "options.h"
#include "quantize/presets.h"
#include "tokenizer/chat_template.h"
#include "train/data/dataset.h"

namespace pocketlm::cli {

void FinetuneOptions::Declare(Options& o) {
  o.Add("-m,--model", &model_path, "Base model (GGUF; any type pocketlm runs, quantized included)").Required();
  o.Add("--data", &data_path,
        "Training data, JSONL: {\"text\"}, {\"prompt\",\"completion\"} or {\"messages\":[...]} per line")
      .Required();
  o.Add("--val", &val_path, "Validation data (same format); its loss is reported before, during, after");
  o.Add("-o,--output", &out_path, "Adapter to write (GGUF, llama.cpp-compatible); with --full, the trained model")
      .Required();
  o.Add("--rank,-r", &rank, "LoRA rank").ShowDefault().Range(1, 4096);
  o.Add("--alpha", &alpha, "LoRA alpha; the update is scaled by alpha / rank").ShowDefault();
  o.Add("--dropout", &dropout, "LoRA dropout on the adapter input").ShowDefault().Range(0.0, 0.99);
  o.Add("--adapter-type", &adapter_type,
        "Storage of the adapter's A and B: f32, f16 (half the size and the bytes read per decoded token) "
        "or bf16; training itself is f32")
      .ShowDefault()
      .OneOf({"f32", "f16", "bf16"});
  o.Flag("--rslora", &rslora, "Scale by alpha / sqrt(rank) (rank-stabilized LoRA)");
  o.Flag("--full", &full,
         "Full fine-tuning: train every weight (f32 copies; 16 bytes per parameter, for small models) and "
         "write the whole model to -o");
  o.Add("--targets", &targets, "Projections to adapt: q,k,v,o,gate,up,down or all-linear").ShowDefault();
  o.Add("--lr", &lr, "Peak learning rate (AdamW)").ShowDefault();
  o.Add("--steps", &steps, "Optimizer steps (overrides --epochs)").Range(int64_t{1}, int64_t{1} << 40);
  o.Add("--epochs", &epochs, "Passes over the training data").ShowDefault().Range(0.001, 1e6);
  o.Add("--seq-len", &seq_len, "Tokens per training sequence; short examples are packed together")
      .ShowDefault()
      .Range(8, 1 << 16);
  o.Add("--batch-tokens", &batch_tokens, "Tokens per optimizer step (gradient accumulation over sequences)")
      .ShowDefault()
      .Range(int64_t{8}, int64_t{1} << 30);
  o.Add("--schedule", &schedule, "Learning-rate schedule after warmup: constant, linear or cosine").ShowDefault();
  o.Add("--warmup", &warmup, "Warmup steps (default: 3% of the steps)");
  o.Add("--weight-decay", &weight_decay, "AdamW decoupled weight decay").ShowDefault();
  o.Add("--clip", &clip, "Clip the gradient's global norm to this (0: off)").ShowDefault();
  o.Add("--eval-every", &eval_every, "Validation loss every N steps (0: before and after only)");
  o.Add("--save-every", &save_every, "Checkpoint every N steps (needs --checkpoint)");
  o.Add("--checkpoint", &checkpoint_path, "Checkpoint file (written atomically; also at the end)");
  o.Add("--resume", &resume_path, "Continue from this checkpoint exactly where it stopped");
  o.Add("--stop-after", &stop_after, "Stop after N steps of this run, as if interrupted (then --resume)");
  o.Add("--export-peft", &export_peft_dir,
        "Also write the adapter as a PEFT directory (adapter_config.json + adapter_model.safetensors)");
  o.Add("--distill", &distill_path,
        "Teacher model (GGUF, same vocabulary): also learn its next-token distributions (knowledge distillation)")
      .Metavar("TEACHER");
  o.Add("--distill-weight", &distill_weight,
        "With --distill: loss = (1 - W) cross-entropy + W T^2 KL(teacher || model); 1 = distillation only")
      .ShowDefault()
      .Range(0.0, 1.0);
  o.Add("--distill-temp", &distill_temp, "With --distill: temperature T softening both distributions")
      .ShowDefault()
      .Range(0.05, 100.0);
  o.Add("--distill-topk", &distill_topk,
        "With --distill: keep the teacher's K most probable tokens plus the rest mass (0: the full vocabulary)")
      .ShowDefault()
      .Range(0, 1 << 30);
  ChatTemplateOption(o, &chat_template);
  o.Flag("--train-on-prompt", &train_on_prompt, "Loss on every token, not only replies/completions");
  o.Flag("--strict", &strict, "Stop at the first bad data line instead of skipping it");
  o.Add("--activation-memory", &activation_mib,
        "MiB for keeping every layer's activations (faster); above it layers are recomputed (0: always)")
      .ShowDefault()
      .Range(int64_t{0}, int64_t{1} << 30);
  o.Add("--seed", &seed, "Seed for initialisation, shuffling and dropout").ShowDefault();
  ThreadsOption(o, &threads);
  o.Flag("-q,--quiet", &quiet, "Only the summary");
}

namespace {

std::string Duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char buf[32];
  const auto t = static_cast<long long>(s + 0.5);
  if (t >= 3600) {
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm", t / 3600, t / 60 % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%lldm%02llds", t / 60, t % 60);
  }
  return buf;
}

Result<Dataset> LoadData(const std::string& path, const Model& model, const DatasetOptions& d, const char* what,
                         bool quiet) {
  auto data = LoadJsonlDataset(path, model.tokenizer(), d);
  if (!data.ok()) return data.status().WithContext(std::string("reading the ") + what + " data");
  if (!quiet) std::fprintf(stderr, "%s data %s: %s\n", what, path.c_str(), data.value().stats.Summary().c_str());
  return data;
}

// The GGUF adapter just written, converted to PEFT's layout (names, llama q/k row order, alpha convention).
Status ExportPeft(const std::string& gguf_path, const Model& model, const std::string& dir) {
  PLM_ASSIGN_OR_RETURN(GgufFile f, GgufFile::Open(gguf_path));
  PLM_ASSIGN_OR_RETURN(LoraAdapterData lora, ReadGgufLora(f));
  auto name = model.file().GetString("general.name");
  return WritePeftAdapter(lora, &model.file(), dir, name.ok() ? std::string(name.value()) : std::string())
      .WithContext("exporting the adapter as PEFT");
}

// " (distill KL 0.1234, CE 2.3456)" with distillation: the loss's two parts; "" without.
std::string Parts(const TrainEvent& e) {
  if (e.kl < 0) return "";
  char buf[64];
  std::snprintf(buf, sizeof(buf), " (distill KL %.4f, CE %.4f)", e.kl, e.ce);
  return buf;
}

struct Reporter {
  bool tty = false;
  bool quiet = false;
  bool bar_shown = false;
  int64_t log_every = 1;

  void operator()(const TrainEvent& e) {
    if (quiet) return;
    if (e.kind == TrainEvent::kEval) {
      ClearBar();
      std::fprintf(stderr, "step %lld: validation loss %.4f (perplexity %.2f)\n", static_cast<long long>(e.step),
                   e.loss, std::exp(e.loss));
      return;
    }
    if (e.kind == TrainEvent::kCheckpoint) {
      ClearBar();
      std::fprintf(stderr, "step %lld: checkpoint %s\n", static_cast<long long>(e.step), e.path.c_str());
      return;
    }
    if (tty) {
      const int width = 24;
      const int filled = static_cast<int>(width * e.step / std::max<int64_t>(1, e.total_steps));
      std::string bar(static_cast<size_t>(filled), '#');
      bar.resize(width, '.');
      std::fprintf(stderr, "\r[%s] step %lld/%lld  loss %.4f%s  lr %.2e  %.0f tok/s  ETA %s\x1b[K", bar.c_str(),
                   static_cast<long long>(e.step), static_cast<long long>(e.total_steps), e.loss, Parts(e).c_str(),
                   static_cast<double>(e.lr), e.tokens_per_s, Duration(e.eta_s).c_str());
      std::fflush(stderr);
      bar_shown = true;
      return;
    }
    if (e.step % log_every == 0 || e.step == e.total_steps || e.step == 1) {
      std::fprintf(stderr, "step %lld/%lld  loss %.4f%s  lr %.2e  grad norm %.3f  %.0f tok/s  elapsed %s  ETA %s\n",
                   static_cast<long long>(e.step), static_cast<long long>(e.total_steps), e.loss, Parts(e).c_str(),
                   static_cast<double>(e.lr), e.grad_norm, e.tokens_per_s, Duration(e.elapsed_s).c_str(),
                   Duration(e.eta_s).c_str());
    }
  }
  void ClearBar() {
    if (bar_shown) std::fprintf(stderr, "\n");
    bar_shown = false;
  }
};

}  // namespace

int FinetuneCommand(const FinetuneOptions& o) {
  auto model_or = Model::Load(o.model_path);
  if (!model_or.ok()) return Fail(model_or.status());
  const Model& model = *model_or.value();

  TrainerConfig tc;
  auto targets = ParseLoraTargets(o.targets);
  if (!targets.ok()) return Fail(targets.status());
  auto schedule = ParseLrSchedule(o.schedule);
  if (!schedule.ok()) return Fail(schedule.status());
  if (o.save_every > 0 && o.checkpoint_path.empty()) {
    return Fail(InvalidArgument("--save-every needs --checkpoint FILE"));
  }
  tc.full = o.full;
  if (o.full && !o.export_peft_dir.empty()) return Fail(InvalidArgument("--export-peft applies to LoRA, not --full"));
  if (o.full && o.adapter_type != "f32") return Fail(InvalidArgument("--adapter-type applies to LoRA, not --full"));
  tc.lora.rank = o.rank;
  tc.lora.alpha = o.alpha;
  tc.lora.dropout = o.dropout;
  tc.lora.rslora = o.rslora;
  tc.lora.targets = targets.value();
  tc.lora.seed = o.seed;
  tc.seq_len = o.seq_len;
  tc.batch_tokens = o.batch_tokens;
  tc.steps = o.steps;
  tc.epochs = o.epochs;
  tc.lr = o.lr;
  tc.schedule = schedule.value();
  tc.warmup_steps = o.warmup;
  tc.weight_decay = o.weight_decay;
  tc.clip_norm = o.clip;
  tc.eval_every = o.eval_every;
  tc.save_every = o.save_every;
  tc.checkpoint_path = o.checkpoint_path;
  tc.resume_path = o.resume_path;
  tc.stop_after = o.stop_after;
  tc.activation_budget = static_cast<size_t>(o.activation_mib) << 20;
  tc.n_threads = o.threads;
  std::unique_ptr<Model> teacher;
  if (!o.distill_path.empty()) {
    auto t = Model::Load(o.distill_path);
    if (!t.ok()) return Fail(t.status().WithContext("loading the teacher " + o.distill_path));
    teacher = std::move(t).value();
    tc.teacher = teacher.get();
    tc.distill.params.weight = o.distill_weight;
    tc.distill.params.temp = o.distill_temp;
    tc.distill.topk = o.distill_topk;
    if (Status st = CheckDistillable(model, *teacher, tc.distill); !st.ok()) {
      return Fail(st.WithContext("--distill " + o.distill_path));
    }
  }

  std::string note;
  // Training data keeps a template's markers as tokens: one the vocabulary lacks is refused with its name.
  auto format = ChooseChatTemplate(model, o.chat_template, MissingMarkers::kRefuse, &note);
  if (!format.ok()) return Fail(format.status());
  DatasetOptions d;
  d.chat_template = format.value().kind;
  d.train_on_prompt = o.train_on_prompt;
  d.strict = o.strict;
  auto train_data = LoadData(o.data_path, model, d, "training", o.quiet);
  if (!train_data.ok()) return Fail(train_data.status());
  Result<Dataset> val_data = Dataset{};
  if (!o.val_path.empty()) {
    val_data = LoadData(o.val_path, model, d, "validation", o.quiet);
    if (!val_data.ok()) return Fail(val_data.status());
  }
  if (!o.quiet && !note.empty()) std::fprintf(stderr, "note: %s\n", note.c_str());

  const int32_t pad = model.tokenizer().eos() >= 0 ? model.tokenizer().eos() : 0;
  auto packer = SequencePacker::Create(train_data.value().examples, o.seq_len, o.seed, pad);
  if (!packer.ok()) return Fail(packer.status());
  PackedDataSource train_src(std::move(packer).value());
  std::unique_ptr<PackedDataSource> val_src;
  if (!val_data.value().examples.empty()) {
    auto vp = SequencePacker::Create(val_data.value().examples, o.seq_len, o.seed, pad);
    if (!vp.ok()) return Fail(vp.status());
    val_src = std::make_unique<PackedDataSource>(std::move(vp).value());
  }

  auto trainer_or = Trainer::Create(model, tc, &train_src, val_src.get());
  if (!trainer_or.ok()) return Fail(trainer_or.status());
  Trainer& trainer = *trainer_or.value();
  if (!o.quiet) {
    std::fprintf(stderr, "%s, %.2f M trainable parameters; %lld steps of %lld sequences x %d tokens, %d threads\n",
                 trainer.Describe().c_str(), static_cast<double>(trainer.n_trainable()) / 1e6,
                 static_cast<long long>(trainer.total_steps()), static_cast<long long>(trainer.sequences_per_step()),
                 o.seq_len, o.threads);
  }
  if (!o.quiet && teacher != nullptr) {
    std::fprintf(stderr, "distilling from %s: loss = %g CE + %g T^2 KL at T = %g, %s\n", o.distill_path.c_str(),
                 1.0 - o.distill_weight, static_cast<double>(o.distill_weight), static_cast<double>(o.distill_temp),
                 o.distill_topk > 0 ? ("teacher's top " + std::to_string(o.distill_topk) + " + rest").c_str()
                                    : "full vocabulary");
  }
  Reporter rep;
  rep.tty = ::isatty(::fileno(stderr)) != 0;
  rep.quiet = o.quiet;
  rep.log_every = std::max<int64_t>(1, trainer.total_steps() / 20);
  auto summary = trainer.Run([&rep](const TrainEvent& e) { rep(e); });
  rep.ClearBar();
  if (!summary.ok()) return Fail(summary.status());
  const DType adapter_type = quantize::ParseDTypeName(o.adapter_type).value_or(DType::kF32);  // OneOf checked it
  if (Status s = trainer.WriteOutput(o.out_path, adapter_type); !s.ok()) return Fail(s);
  if (!o.export_peft_dir.empty()) {
    if (Status s = ExportPeft(o.out_path, model, o.export_peft_dir); !s.ok()) return Fail(s);
  }
  const TrainSummary& sm = summary.value();
  std::fprintf(stderr, "done: %lld steps in %s, %.1f tokens/s; train loss %.4f -> %.4f",
               static_cast<long long>(sm.steps), Duration(sm.seconds).c_str(), sm.tokens_per_s, sm.first_loss,
               sm.last_loss);
  if (sm.val_loss_after >= 0) {
    std::fprintf(stderr, "; validation loss %.4f -> %.4f", sm.val_loss_before, sm.val_loss_after);
  }
  std::fprintf(stderr, "; peak memory %.0f MiB\n%s written to %s\n", PeakRssBytes() / 1048576.0,
               o.full ? "model" : "adapter", o.out_path.c_str());
  if (!o.export_peft_dir.empty()) std::fprintf(stderr, "PEFT adapter written to %s\n", o.export_peft_dir.c_str());
  return 0;
}

}  // namespace pocketlm::cli
