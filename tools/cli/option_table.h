// The command line's one option table: every `pocketlm` command declares its options once, through this interface,
// and the table parses them. Only option_table.cpp sees the parser library (CLI11, a header-only library that costs
// ~5 s of compile time in every file that includes it), so the commands compile without it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace pocketlm::cli {

// One declared option; the setters say what a valid value is (checked while parsing, before the command runs).
class Option {
 public:
  explicit Option(CLI::Option* o) : o_(o) {}
  Option& Required();
  Option& ShowDefault();  // "[2]" after the help text: the value the variable held when declared
  template <class T>
  Option& Range(T lo, T hi) {
    if constexpr (std::is_integral_v<T>) {
      return IntRange(static_cast<int64_t>(lo), static_cast<int64_t>(hi));
    } else {
      return RealRange(static_cast<double>(lo), static_cast<double>(hi));
    }
  }
  Option& OneOf(const std::vector<std::string>& choices);
  Option& Metavar(const std::string& name);  // the value's name in --help: "KEY", "DIR"
  Option& Hidden();                          // parsed, but not listed in --help

 private:
  Option& IntRange(int64_t lo, int64_t hi);
  Option& RealRange(double lo, double hi);
  CLI::Option* o_;
};

// The options of one command or subcommand. `names` as "-m,--model" (a short and a long name), or one bare word for
// a positional argument ("input").
class Options {
 public:
  explicit Options(CLI::App* app) : app_(app) {}
  Option Add(const std::string& names, std::string* value, const std::string& help);
  Option Add(const std::string& names, int* value, const std::string& help);
  Option Add(const std::string& names, int64_t* value, const std::string& help);
  Option Add(const std::string& names, uint64_t* value, const std::string& help);
  Option Add(const std::string& names, float* value, const std::string& help);
  Option Add(const std::string& names, double* value, const std::string& help);
  Option Add(const std::string& names, std::vector<std::string>* values, const std::string& help);  // repeatable
  // A repeatable option that takes two values each time (--lora-scaled PATH SCALE); *values holds them flattened.
  Option AddPairs(const std::string& names, std::vector<std::string>* values, const std::string& help,
                  const std::string& metavar);
  Option Flag(const std::string& names, bool* value, const std::string& help);

  // A nested command (`pocketlm adapter convert`); Parsed() says after parsing whether it was the one given.
  Options Sub(const std::string& name, const std::string& help);
  void RequireSub();
  bool Parsed() const;

 private:
  CLI::App* app_;
};

// A `pocketlm` command: its name and help, and Declare, which declares its options and returns what runs it once they
// have parsed (the option values live in that function's captures).
struct Command {
  std::string name, help;
  std::function<std::function<int()>(Options& options)> declare;
};

// The usual shape: Args holds the option values and has `void Declare(Options&)`; `run` is the command itself.
template <class Args>
Command MakeCommand(std::string name, std::string help, int (*run)(const Args&)) {
  return {std::move(name), std::move(help), [run](Options& options) {
            auto args = std::make_shared<Args>();
            args->Declare(options);
            return std::function<int()>([args, run] { return run(*args); });
          }};
}

// Parses argv against the commands and runs the one given. Usage errors print one line, "error: ... (see 'pocketlm
// CMD --help')", and return 1; --help and --version print and return 0; an exception escaping a command (out of
// memory) becomes one error line too.
int RunCommandLine(std::span<const Command> commands, const std::string& version, int argc, char** argv);

}  // namespace pocketlm::cli
