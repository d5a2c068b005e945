#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "io/gguf/gguf_fingerprint.h"
#include "train/rng.h"

namespace pocketlm {

void PackedDataSource::Materialize(int64_t epoch) {
  if (epoch == epoch_) return;
  PackCursor c = packer_.cursor();
  c.epoch = epoch;
  c.index = 0;
  (void)packer_.Seek(c);  // index 0 is always in range
  seqs_.clear();
  while (packer_.cursor().epoch == epoch) {
    seqs_.emplace_back();
    packer_.Next(&seqs_.back());
  }
  epoch_ = epoch;
}

size_t PackedDataSource::SizeOfEpoch(int64_t epoch) {
  Materialize(epoch);
  return seqs_.size();
}

const PackedSequence& PackedDataSource::Get(int64_t epoch, size_t index) {
  Materialize(epoch);
  return seqs_[index];
}

namespace {

int64_t CountTargets(const PackedSequence& s) {
  int64_t n = 0;
  for (int32_t t : s.targets) n += t >= 0;
  return n;
}

SequenceView ViewOf(const PackedSequence& s) {
  return {s.tokens.data(), s.targets.data(), s.seg_start.empty() ? nullptr : s.seg_start.data(),
          s.pos.empty() ? nullptr : s.pos.data(), static_cast<int>(s.tokens.size())};
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

Trainer::Trainer(const Model& model, const TrainerConfig& config)
    : model_(model), config_(config), pool_(config.n_threads) {}

Result<std::unique_ptr<Trainer>> Trainer::Create(const Model& model, const TrainerConfig& config, SequenceSource* train,
                                                 SequenceSource* val) {
  if (config.n_threads < 1 || config.n_threads > 512) return InvalidArgument("thread count must be 1..512");
  if (config.seq_len < 2) return InvalidArgument("the sequence length must be at least 2");
  if (config.batch_tokens < 1) return InvalidArgument("the tokens per batch must be positive");
  if (!(config.lr > 0) || !std::isfinite(config.lr)) return InvalidArgument("the learning rate must be positive");
  if (config.steps < 0 || !(config.epochs > 0)) return InvalidArgument("the steps and epochs must be positive");
  if (train == nullptr || train->SizeOfEpoch(0) == 0) return InvalidArgument("no training sequences");
  std::unique_ptr<Trainer> t(new Trainer(model, config));
  PLM_ASSIGN_OR_RETURN(t->graph_, TrainGraph::Create(model, config.seq_len, &t->pool_, config.activation_budget));
  if (config.teacher != nullptr) {
    // The teacher runs on the trainer's threads between the student's steps: a non-owning handle to them.
    std::shared_ptr<ThreadPool> pool(&t->pool_, [](ThreadPool*) {});
    PLM_ASSIGN_OR_RETURN(t->teacher_,
                         DistillTeacher::Create(model, *config.teacher, config.distill, config.seq_len, pool));
  }
  if (config.full) {
    PLM_ASSIGN_OR_RETURN(t->full_, FullParams::Create(model));
    t->graph_->SetFullParams(t->full_.get());
    t->params_ = t->full_->Params();
    for (const auto& ten : t->full_->tensors()) {
      if (ten->trainable) t->ckpt_tensors_.push_back({ten->name, ten->ne, ten->value.data(), ten->value.size()});
    }
  } else {
    PLM_ASSIGN_OR_RETURN(LoraSet loras, LoraSet::Create(model, config.lora));
    t->loras_ = std::make_unique<LoraSet>(std::move(loras));
    for (LoraModule& m : t->loras_->modules()) {
      t->params_.push_back({m.a.data(), m.grad_a.data(), m.a.size(), true});
      t->params_.push_back({m.b.data(), m.grad_b.data(), m.b.size(), true});
      t->ckpt_tensors_.push_back({m.base_name + ".lora_a", {m.n_in, m.rank}, m.a.data(), m.a.size()});
      t->ckpt_tensors_.push_back({m.base_name + ".lora_b", {m.rank, m.n_out}, m.b.data(), m.b.size()});
    }
  }
  AdamWConfig ac;
  ac.weight_decay = config.weight_decay;
  t->opt_ = std::make_unique<AdamW>(t->params_, ac);
  t->train_ = train;
  t->val_ = val != nullptr && val->SizeOfEpoch(0) > 0 ? val : nullptr;
  t->seqs_per_step_ = std::max<int64_t>(1, (config.batch_tokens + config.seq_len - 1) / config.seq_len);
  t->total_steps_ =
      config.steps > 0
          ? config.steps
          : std::max<int64_t>(
                1, static_cast<int64_t>(std::ceil(config.epochs * static_cast<double>(train->SizeOfEpoch(0)) /
                                                  static_cast<double>(t->seqs_per_step_))));
  t->warmup_ = config.warmup_steps >= 0 ? config.warmup_steps : t->total_steps_ * 3 / 100;
  t->fingerprint_ = ModelFingerprint(model.file());
  return t;
}

Status Trainer::WriteOutput(const std::string& path, DType adapter_type) const {
  return full_ != nullptr ? full_->WriteGguf(path, model_) : loras_->WriteGguf(path, model_, adapter_type);
}

size_t Trainer::n_trainable() const {
  return full_ != nullptr ? full_->n_params() : loras_->n_params();
}

std::string Trainer::Describe() const {
  const char* recompute = graph_->recomputes() ? ", layers recomputed in the backward pass" : "";
  if (full_ != nullptr) return std::string("full fine-tuning (every weight, f32 masters)") + recompute;
  const LoraConfig& l = config_.lora;
  char buf[256];
  std::snprintf(buf, sizeof(buf), "LoRA rank %d alpha %g%s on %s: %zu modules", l.rank, static_cast<double>(l.alpha),
                l.rslora ? " (rsLoRA)" : "", LoraTargetsToString(l.targets).c_str(), loras_->modules().size());
  return buf + std::string(recompute);
}

CheckpointIdentity Trainer::Identity() const {
  const LoraConfig& l = config_.lora;
  char buf[512];
  std::snprintf(
      buf, sizeof(buf),
      "full=%d rank=%d alpha=%g dropout=%g rslora=%d targets=%s seq_len=%d batch_tokens=%lld steps=%lld lr=%g "
      "schedule=%d warmup=%lld weight_decay=%g clip=%g seed=%llu sequences=%zu",
      config_.full ? 1 : 0, l.rank, static_cast<double>(l.alpha), static_cast<double>(l.dropout), l.rslora ? 1 : 0,
      LoraTargetsToString(l.targets).c_str(), config_.seq_len, static_cast<long long>(config_.batch_tokens),
      static_cast<long long>(total_steps_), static_cast<double>(config_.lr), static_cast<int>(config_.schedule),
      static_cast<long long>(warmup_), static_cast<double>(config_.weight_decay),
      static_cast<double>(config_.clip_norm), static_cast<unsigned long long>(l.seed), train_->SizeOfEpoch(0));
  std::string settings = buf;
  if (teacher_ != nullptr) {  // only then, so checkpoints of plain runs keep their identity
    const DistillConfig& d = config_.distill;
    std::snprintf(buf, sizeof(buf), " distill=%s weight=%g temp=%g topk=%d",
                  ModelFingerprint(config_.teacher->file()).c_str(), static_cast<double>(d.params.weight),
                  static_cast<double>(d.params.temp), d.topk);
    settings += buf;
  }
  return {fingerprint_, settings};
}

Result<double> Trainer::Evaluate(SequenceSource* src) {
  double loss = 0;
  int64_t n = 0;
  for (size_t i = 0; i < src->SizeOfEpoch(0); ++i) {
    PLM_ASSIGN_OR_RETURN(CrossEntropyResult r, graph_->Forward(ViewOf(src->Get(0, i)), loras_.get()));
    loss += r.loss_sum;
    n += r.n_counted;
  }
  if (n == 0) return InvalidArgument("the validation data has no tokens to predict");
  return loss / static_cast<double>(n);
}

Result<TrainSummary> Trainer::Run(const std::function<void(const TrainEvent&)>& on_event) {
  TrainSummary summary;
  TrainPosition pos;
  const CheckpointIdentity id = Identity();
  if (!config_.resume_path.empty()) {
    PLM_RETURN_IF_ERROR(LoadCheckpoint(config_.resume_path, ckpt_tensors_, opt_.get(), &pos, id));
  }
  if (val_ != nullptr) {
    PLM_ASSIGN_OR_RETURN(summary.val_loss_before, Evaluate(val_));
    on_event({TrainEvent::kEval, pos.step, total_steps_, pos.epoch, summary.val_loss_before});
  }
  const auto start = std::chrono::steady_clock::now();
  const int64_t first_step = pos.step;
  int64_t tokens_this_run = 0;
  std::vector<std::pair<int64_t, size_t>> batch;
  std::vector<double> losses;  // every step's loss in this run, for the summary
  while (pos.step < total_steps_ && (config_.stop_after <= 0 || pos.step - first_step < config_.stop_after)) {
    // The step's sequences, continuing the data stream where the last step (or the checkpoint) left it.
    batch.clear();
    int64_t n_targets = 0;
    for (int64_t j = 0; j < seqs_per_step_; ++j) {
      if (pos.seq_index >= static_cast<int64_t>(train_->SizeOfEpoch(pos.epoch))) {
        ++pos.epoch;
        pos.seq_index = 0;
      }
      batch.emplace_back(pos.epoch, static_cast<size_t>(pos.seq_index++));
      n_targets += CountTargets(train_->Get(batch.back().first, batch.back().second));
    }
    if (loras_ != nullptr) loras_->ZeroGrad();
    if (full_ != nullptr) full_->ZeroGrad();
    double loss_sum = 0, ce_sum = 0, kl_sum = 0;
    if (n_targets > 0) {
      const float grad_scale = 1.0f / static_cast<float>(n_targets);
      for (size_t j = 0; j < batch.size(); ++j) {
        const PackedSequence& s = train_->Get(batch[j].first, batch[j].second);
        const uint64_t key = Mix64(config_.lora.seed ^ Mix64(static_cast<uint64_t>(pos.step) * 1024 + j));
        const SequenceView view = ViewOf(s);
        TeacherTargets teacher;
        if (teacher_ != nullptr) {
          PLM_ASSIGN_OR_RETURN(teacher, teacher_->Run(view));
        }
        PLM_ASSIGN_OR_RETURN(CrossEntropyResult r,
                             graph_->ForwardBackward(view, loras_.get(), grad_scale, key,
                                                     teacher_ != nullptr ? &teacher : nullptr, config_.distill.params));
        loss_sum += r.loss_sum;
        ce_sum += r.ce_sum;
        kl_sum += r.kl_sum;
        tokens_this_run += static_cast<int64_t>(s.tokens.size());
        pos.tokens_seen += static_cast<int64_t>(s.tokens.size());
      }
    }
    const double norm = ClipGradNorm(params_, config_.clip_norm);
    const float lr = LearningRate(config_.schedule, config_.lr, pos.step, warmup_, total_steps_);
    if (n_targets > 0) opt_->Step(lr);
    ++pos.step;
    const double loss = n_targets > 0 ? loss_sum / static_cast<double>(n_targets) : 0.0;
    if (!std::isfinite(loss)) {
      return InvalidArgument("the loss became " + std::to_string(loss) + " at step " + std::to_string(pos.step) +
                             "; lower the learning rate");
    }
    losses.push_back(loss);
    TrainEvent ev;
    ev.kind = TrainEvent::kStep;
    ev.step = pos.step;
    ev.total_steps = total_steps_;
    ev.epoch = pos.epoch;
    ev.loss = loss;
    ev.grad_norm = norm;
    if (teacher_ != nullptr && n_targets > 0) {
      ev.ce = ce_sum / static_cast<double>(n_targets);
      ev.kl = kl_sum / static_cast<double>(n_targets);
    }
    ev.lr = lr;
    ev.elapsed_s = Seconds(start);
    ev.tokens_per_s = static_cast<double>(tokens_this_run) / std::max(ev.elapsed_s, 1e-9);
    ev.eta_s = ev.elapsed_s / static_cast<double>(pos.step - first_step) * static_cast<double>(total_steps_ - pos.step);
    on_event(ev);
    if (val_ != nullptr && config_.eval_every > 0 && pos.step % config_.eval_every == 0 && pos.step < total_steps_) {
      PLM_ASSIGN_OR_RETURN(double vl, Evaluate(val_));
      on_event({TrainEvent::kEval, pos.step, total_steps_, pos.epoch, vl});
    }
    if (!config_.checkpoint_path.empty() && ((config_.save_every > 0 && pos.step % config_.save_every == 0) ||
                                             pos.step == total_steps_ || pos.step - first_step == config_.stop_after)) {
      PLM_RETURN_IF_ERROR(SaveCheckpoint(config_.checkpoint_path, ckpt_tensors_, *opt_, pos, id));
      TrainEvent ce;
      ce.kind = TrainEvent::kCheckpoint;
      ce.step = pos.step;
      ce.total_steps = total_steps_;
      ce.path = config_.checkpoint_path;
      on_event(ce);
    }
  }
  summary.steps = pos.step;
  // Mean of the first and of the last k steps, k = min(10, half the steps): start and end of the run, smoothed.
  const size_t k = std::max<size_t>(1, std::min<size_t>(10, losses.size() / 2));
  for (size_t i = 0; i < k && i < losses.size(); ++i) {
    summary.first_loss += losses[i] / static_cast<double>(k);
    summary.last_loss += losses[losses.size() - 1 - i] / static_cast<double>(k);
  }
  summary.seconds = Seconds(start);
  summary.tokens = tokens_this_run;
  summary.tokens_per_s = static_cast<double>(tokens_this_run) / std::max(summary.seconds, 1e-9);
  if (val_ != nullptr) {
    PLM_ASSIGN_OR_RETURN(summary.val_loss_after, Evaluate(val_));
    on_event({TrainEvent::kEval, pos.step, total_steps_, pos.epoch, summary.val_loss_after});
  }
  summary.activation_bytes = graph_->activation_bytes();
  return summary;
}

}  // namespace pocketlm
