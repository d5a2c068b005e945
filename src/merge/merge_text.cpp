// The default text `pocketlm adapter merge` measures a merge on: ordinary English prose (narrative, a little
// dialogue, numbers and a list), written for pocketlm, about 400 tokens in Llama-2's vocabulary. Short enough to
// evaluate in seconds on a laptop, long enough that the mean KL divergence over its positions is stable.
#include "merge/merge.h"

namespace pocketlm {

const char* const kDefaultMergeText =
    "The library in our town opens at nine in the morning, but most days a small line has already formed by "
    "half past eight. Some people come for the newspapers, which are kept on a long wooden rack near the "
    "windows, and others come to use the computers, because not everyone has a good connection at home. In the "
    "winter the building is warm and quiet, and an older man named Peter sits in the same chair every day, "
    "reading history books one chapter at a time.\n\n"
    "Last spring the library asked for volunteers to help sort a donation of almost three thousand books. A "
    "family had cleared out their grandmother's house and did not want the collection to be thrown away. The "
    "volunteers met on Saturday mornings for six weeks. They made three piles: books to keep, books to sell at "
    "the summer fair, and books that were too damaged to save. \"You would be surprised,\" said Maria, who ran "
    "the project, \"how many of them still had letters and train tickets inside.\"\n\n"
    "By the end of June the work was finished. The sale raised a little over two thousand dollars, which paid "
    "for new lights in the children's room and a second printer. The best of the old books now stand on a shelf "
    "of their own, with a small card that explains where they came from. When visitors ask about them, the "
    "staff are happy to tell the story, and sometimes someone remembers the grandmother, who used to walk to the "
    "library every Tuesday with a cloth bag over her shoulder.\n\n"
    "If you want to help next year, there are a few simple things to know. First, the sorting starts in April. "
    "Second, you do not need any experience, only patience and a pair of comfortable shoes. Third, the coffee "
    "is free, although it is not very good. Most people who come once decide to come back, because it is "
    "pleasant to spend a slow morning among old pages, talking with neighbours about what they have read.\n";

}  // namespace pocketlm
