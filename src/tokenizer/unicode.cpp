#include "tokenizer/unicode.h"

#include <algorithm>
#include <array>

#include "tokenizer/unicode_tables.h"

namespace pocketlm {
namespace {

using unicode_data::CaseMapping;

uint32_t MapCase(const CaseMapping* table, size_t n, uint32_t cp) {
  const CaseMapping* end = table + n;
  const CaseMapping* it = std::lower_bound(table, end, cp, [](const CaseMapping& m, uint32_t v) { return m.from < v; });
  return (it != end && it->from == cp) ? it->to : cp;
}

constexpr CategoryMask Bits(std::initializer_list<GeneralCategory> cats) {
  CategoryMask m = 0;
  for (GeneralCategory c : cats) m |= CategoryBit(c);
  return m;
}

using G = GeneralCategory;
constexpr CategoryMask kLetter = Bits({G::kLu, G::kLl, G::kLt, G::kLm, G::kLo});
constexpr CategoryMask kMark = Bits({G::kMn, G::kMc, G::kMe});
constexpr CategoryMask kNumber = Bits({G::kNd, G::kNl, G::kNo});
constexpr CategoryMask kPunct = Bits({G::kPc, G::kPd, G::kPs, G::kPe, G::kPi, G::kPf, G::kPo});
constexpr CategoryMask kSymbol = Bits({G::kSm, G::kSc, G::kSk, G::kSo});
constexpr CategoryMask kSeparator = Bits({G::kZs, G::kZl, G::kZp});
constexpr CategoryMask kOther = Bits({G::kCc, G::kCf, G::kCs, G::kCo, G::kCn});

constexpr std::array<const char*, 30> kShortNames = {"Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl",
                                                     "No", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc",
                                                     "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn"};

}  // namespace

GeneralCategory GetCategory(uint32_t cp) {
  if (cp > 0x10FFFF) return GeneralCategory::kCn;
  const auto* begin = unicode_data::kCategoryRanges;
  const auto* end = begin + unicode_data::kNumCategoryRanges;
  // Last range starting at or before cp.
  const auto* it = std::upper_bound(begin, end, cp, [](uint32_t v, const auto& r) { return v < r.first; });
  return static_cast<GeneralCategory>((it - 1)->category);
}

bool IsWhitespace(uint32_t cp) {
  const uint32_t* begin = unicode_data::kWhitespace;
  return std::binary_search(begin, begin + unicode_data::kNumWhitespace, cp);
}

uint32_t ToLower(uint32_t cp) {
  return MapCase(unicode_data::kToLower, unicode_data::kNumToLower, cp);
}
uint32_t ToUpper(uint32_t cp) {
  return MapCase(unicode_data::kToUpper, unicode_data::kNumToUpper, cp);
}

std::optional<CategoryMask> ParseCategoryName(std::string_view name) {
  struct Named {
    const char* name;
    CategoryMask mask;
  };
  static constexpr Named kMajor[] = {
      {"L", kLetter},
      {"M", kMark},
      {"N", kNumber},
      {"P", kPunct},
      {"S", kSymbol},
      {"Z", kSeparator},
      {"C", kOther},
      {"Letter", kLetter},
      {"Mark", kMark},
      {"Number", kNumber},
      {"Punctuation", kPunct},
      {"Symbol", kSymbol},
      {"Separator", kSeparator},
      {"Other", kOther},
      {"L&", Bits({G::kLu, G::kLl, G::kLt})},
      {"LC", Bits({G::kLu, G::kLl, G::kLt})},
  };
  for (const Named& n : kMajor) {
    if (name == n.name) return n.mask;
  }
  for (size_t i = 0; i < kShortNames.size(); ++i) {
    if (name == kShortNames[i]) return CategoryMask{1} << i;
  }
  return std::nullopt;
}

}  // namespace pocketlm
