// Writes tests/data/tokenizer_bpe/tokenizer.json with Hugging Face's own
// tokenizers (npm `tokenizers`), from the vocab.json + merges.txt that
// tools/make_tokenizer_fixtures.py trained: byte-level BPE as roberta-base's
// tokenizer.json has it (ByteLevel pre-tokenizer without prefix space,
// RobertaProcessing, the five special tokens). Development time only:
//   cd tools/hf_tokenizers && npm ci && node make_fixtures.js
'use strict';
const path = require('path');
const { BPE, Tokenizer, byteLevelPreTokenizer, byteLevelDecoder,
        robertaProcessing } = require('tokenizers');

async function main() {
  const dir = path.join(__dirname, '..', '..', 'tests', 'data', 'tokenizer_bpe');
  const model = await BPE.fromFile(path.join(dir, 'vocab.json'),
                                   path.join(dir, 'merges.txt'));
  const tok = new Tokenizer(model);
  tok.setPreTokenizer(byteLevelPreTokenizer(false, true));
  tok.setPostProcessor(robertaProcessing(['</s>', 2], ['<s>', 0], true, false));
  if (byteLevelDecoder) tok.setDecoder(byteLevelDecoder());
  tok.addSpecialTokens(['<s>', '<pad>', '</s>', '<unk>', '<mask>']);
  tok.save(path.join(dir, 'tokenizer.json'), true);
  console.log('wrote', path.join(dir, 'tokenizer.json'));
}

main().catch((e) => { console.error(e); process.exit(1); });
