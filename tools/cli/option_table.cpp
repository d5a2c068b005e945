#include "option_table.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <new>

namespace pocketlm::cli {

Option& Option::Required() {
  o_->required();
  return *this;
}

Option& Option::ShowDefault() {
  o_->capture_default_str();
  return *this;
}

Option& Option::IntRange(int64_t lo, int64_t hi) {
  o_->check(CLI::Range(lo, hi));
  return *this;
}

Option& Option::RealRange(double lo, double hi) {
  o_->check(CLI::Range(lo, hi));
  return *this;
}

Option& Option::OneOf(const std::vector<std::string>& choices) {
  o_->check(CLI::IsMember(choices));
  return *this;
}

Option& Option::Metavar(const std::string& name) {
  o_->type_name(name);
  return *this;
}

Option& Option::Hidden() {
  o_->group("");  // CLI11 lists no option of the empty group
  return *this;
}

Option Options::Add(const std::string& names, std::string* value, const std::string& help) {
  return Option(app_->add_option(names, *value, help));
}
Option Options::Add(const std::string& names, int* value, const std::string& help) {
  return Option(app_->add_option(names, *value, help));
}
Option Options::Add(const std::string& names, int64_t* value, const std::string& help) {
  return Option(app_->add_option(names, *value, help));
}
Option Options::Add(const std::string& names, uint64_t* value, const std::string& help) {
  return Option(app_->add_option(names, *value, help));
}
Option Options::Add(const std::string& names, float* value, const std::string& help) {
  return Option(app_->add_option(names, *value, help));
}
Option Options::Add(const std::string& names, double* value, const std::string& help) {
  return Option(app_->add_option(names, *value, help));
}
Option Options::Add(const std::string& names, std::vector<std::string>* values, const std::string& help) {
  return Option(app_->add_option(names, *values, help));
}

Option Options::AddPairs(const std::string& names, std::vector<std::string>* values, const std::string& help,
                         const std::string& metavar) {
  CLI::Option* o = app_->add_option(names, *values, help);
  o->type_size(2)->type_name(metavar);
  return Option(o);
}

Option Options::Flag(const std::string& names, bool* value, const std::string& help) {
  return Option(app_->add_flag(names, *value, help));
}

Options Options::Sub(const std::string& name, const std::string& help) {
  return Options(app_->add_subcommand(name, help));
}

void Options::RequireSub() {
  app_->require_subcommand(1);
}

bool Options::Parsed() const {
  return app_->parsed();
}

int RunCommandLine(std::span<const Command> commands, const std::string& version, int argc, char** argv) {
  CLI::App app{"pocketlm: fine-tune, quantize and run small language models on the CPU"};
  app.require_subcommand(1);
  app.set_version_flag("--version", version);
  std::vector<std::pair<CLI::App*, std::function<int()>>> runners;
  for (const Command& c : commands) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    Options options(sub);
    runners.emplace_back(sub, c.declare(options));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --version
    const auto given = app.get_subcommands();
    std::fprintf(stderr, "error: %s (see 'pocketlm %s--help')\n", e.what(),
                 given.empty() ? "" : (given[0]->get_name() + " ").c_str());
    return 1;
  }
  try {
    for (auto& [sub, run] : runners) {
      if (sub->parsed()) return run();
    }
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 1;  // unreachable: require_subcommand(1) made parsing fail without one
}

}  // namespace pocketlm::cli
