// Unicode character properties for the tokenizers: General_Category, White_Space and simple case mappings
// (Unicode 15, tables generated from the UCD by scripts/gen_unicode_tables.py).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace pocketlm {

// Two-letter General_Category values (UAX #44). Order is shared with the generator.
// clang-format off
enum class GeneralCategory : uint8_t {
  kLu, kLl, kLt, kLm, kLo,            // letters
  kMn, kMc, kMe,                      // marks
  kNd, kNl, kNo,                      // numbers
  kPc, kPd, kPs, kPe, kPi, kPf, kPo,  // punctuation
  kSm, kSc, kSk, kSo,                 // symbols
  kZs, kZl, kZp,                      // separators
  kCc, kCf, kCs, kCo, kCn,            // other (Cn = unassigned)
};
// clang-format on

GeneralCategory GetCategory(uint32_t cp);  // Cn for anything beyond U+10FFFF
bool IsWhitespace(uint32_t cp);            // White_Space property (what llama.cpp and \s use)
uint32_t ToLower(uint32_t cp);             // simple mapping; cp itself when there is none
uint32_t ToUpper(uint32_t cp);

// A set of categories as a bit mask over GeneralCategory, so "\p{L}" and "\p{Lu}" are the same kind of thing.
using CategoryMask = uint32_t;
inline constexpr CategoryMask CategoryBit(GeneralCategory c) {
  return CategoryMask{1} << static_cast<int>(c);
}
inline bool InCategories(uint32_t cp, CategoryMask mask) {
  return (mask & CategoryBit(GetCategory(cp))) != 0;
}

// Parses a property name as written in \p{...}: one-letter major classes (L, M, N, P, S, Z, C), two-letter
// categories (Lu, Nd, ...), and the long names Letter, Number, ... ; nullopt when unknown.
std::optional<CategoryMask> ParseCategoryName(std::string_view name);

}  // namespace pocketlm
