// The parity reference: encodes texts with Hugging Face's tokenizers (npm
// `tokenizers`, the Rust library transformers uses by default) and prints
// the ids, so tests/tokenizer_parity_test.cc can compare attnserve's
// tokenizers token for token.
//
//   node encode.js <tokenizer.json> <in.json> <out.json>
//
// in.json: [[text, text_pair or ""], ...]; out.json: [[id, ...], ...], with
// special tokens (the tokenizer.json's post-processor).
'use strict';
const fs = require('fs');
const { Tokenizer } = require('tokenizers');

async function main() {
  const [file, input, output] = process.argv.slice(2);
  const tok = Tokenizer.fromFile(file);
  const cases = JSON.parse(fs.readFileSync(input, 'utf8'));
  const out = [];
  for (const [text, pair] of cases) {
    const enc = await tok.encode(text, pair === '' ? null : pair);
    out.push(enc.getIds());
  }
  fs.writeFileSync(output, JSON.stringify(out));
}

main().catch((e) => { console.error(e); process.exit(1); });
