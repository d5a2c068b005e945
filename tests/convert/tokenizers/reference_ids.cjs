// node reference_ids.cjs NODE_PREFIX PACKAGE N OUT.json
// Generates N lines of mixed text deterministically (seeded PRNG, no Math.random), tokenizes each with the
// package's own transformers.js tokenizer (add_special_tokens: false, so no BOS/EOS; added-token texts are
// recognised, as transformers does) and writes [{"text": ..., "ids": [...]}, ...] for hf_tokenizer_tool compare.
'use strict';
const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

const [prefix, pkg, nArg, out] = process.argv.slice(2);
const req = createRequire(path.join(prefix, 'node_modules', 'index.js'));
const tokenizer = req(pkg).fromPreTrained();

// mulberry32: a tiny seeded generator, so every run and machine sees the same lines.
let seed = 0x5eed1234;
function rand() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rand() * a.length)];

const pools = {
  english: ['The quick brown fox', 'jumps over the lazy dog.', "I'm", "you'll", "DON'T", "it's", "We've", 'Hello,',
    'world', 'tokenization', 'pre-tokenizer', 'e.g.', 'U.S.A.', 'co-operate', 'naïve', 'résumé', 'ﬁnance'],
  numbers: ['0', '7', '42', '123', '1234', '12345678', '3.14159', '-0.5', '1e-9', '1,000,000', '$19.99', '50%', '2024-05-17'],
  code: ['int main() {', 'return 0;', '}', 'for (i = 0; i < n; ++i)', 'def f(x):', '    return x ** 2', 'x=>x+1',
    '#include <stdio.h>', 'std::vector<int> v;', 'SELECT * FROM t WHERE id = 1;', '{"key": [1, 2, 3]}', '<div class="a">',
    '\tindent', 'a\\nb', '/* comment */', '// TODO', 'if (a && b || !c)', '0xDEADBEEF', 'snake_case_name', 'CamelCaseName'],
  emoji: ['😀', '🦙', '👍🏽', '👨‍👩‍👧‍👦', '🇯🇵', '❤️', '✨', '🔥🔥', '🤖', '☕'],
  cjk: ['日本語のテキスト', '東京都', 'カタカナ', 'ひらがな', '中文分词测试', '你好，世界！', '한국어 문장', '안녕하세요'],
  scripts: ['Привет, мир', 'Ελληνικά', 'مرحبا بالعالم', 'שלום עולם', 'नमस्ते दुनिया', 'สวัสดีครับ', 'Tiếng Việt', 'Ünïcödé',
    'ქართული', 'Հայերեն', 'ᚠᛇᚻ', 'Zażółć gęślą jaźń', 'İstanbul', 'ß ẞ', 'ǅ ǈ'],
  space: [' ', '  ', '   ', '\t', '\n', '\n\n', '\r\n', ' \n ', '\u00a0', '\u3000', '\u2009'],
  punct: ['!', '?', '...', '…', '—', '–', '"', "'", '«', '»', '“', '”', '(', ')', '[', ']', '::', '->', '==='],
  // Text that is not in NFC: decomposed accents, conjoining Hangul jamo, a singleton (U+212B ANGSTROM SIGN),
  // marks out of canonical order, a composition exclusion (U+0958). Qwen3's tokenizer.json normalizes to NFC
  // before pre-tokenizing (pocketlm does for pre = qwen2); Llama 3 and Gemma 3 see the code points as they are.
  decomposed: ['Cafe\u0301', 'A\u030A', '\u1100\u1161\u11A8', '\u1112\u1161\u11AB\u1100\u1173\u11AF',
    'e\u0301te\u0301', '\u212B', 'q\u0307\u0323', '\u0958', 'n\u0303o', 'Ame\u0301lie', 'u\u0308ber', '\u1E0A\u0323'],
  // Added-token texts of the three vocabularies (each is plain text to the others).
  special: ['<|im_start|>', '<|im_end|>', '<|endoftext|>', '<|begin_of_text|>', '<|eot_id|>', '<start_of_turn>',
    '<end_of_turn>', '<eos>', '<bos>', '<unk>', '<pad>'],
};
const kinds = Object.keys(pools);

const n = Number(nArg);
const cases = [];
for (let i = 0; i < n; ++i) {
  const parts = [];
  const k = 1 + Math.floor(rand() * 8);
  for (let j = 0; j < k; ++j) {
    parts.push(pick(pools[pick(kinds)]));
    const r = rand();
    parts.push(r < 0.6 ? ' ' : r < 0.75 ? '' : pick(pools.space));
  }
  const text = parts.join('').trimEnd();
  cases.push({ text, ids: Array.from(tokenizer.encode(text, { add_special_tokens: false })) });
}
fs.writeFileSync(out, JSON.stringify(cases));
console.log(`${pkg}: ${cases.length} lines -> ${out}`);
