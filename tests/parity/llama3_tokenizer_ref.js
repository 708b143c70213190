// Reference token ids from the npm package llama3-tokenizer-js (Llama 3's vocabulary and merges baked
// in, a JavaScript port of Hugging Face's byte-level BPE with Llama 3's pre-tokenizer).
// Special-token strings in the text are encoded as ordinary text (Loom's contract): the package's
// special-token split is given a pattern that never matches. No BOS/EOS is added.
//
//   node llama3_tokenizer_ref.js <node_modules dir> dump <out.json>
//       {"vocab": [byte-level token strings by id, specials included], "merges": ["a b", ...] in rank order}
//   node llama3_tokenizer_ref.js <node_modules dir> jsonl <input.jsonl> <key> <out.bin>
//       every line's JSON string <key> -> ids; out.bin holds, per line, int32 count then int32 ids
//   node llama3_tokenizer_ref.js <node_modules dir> b64 <in.json> <out.json>
//       in.json: a JSON array of base64 byte strings, decoded by the WHATWG UTF-8 decoder (each maximal
//       invalid subpart -> U+FFFD); out.json: the array of id arrays
//   node llama3_tokenizer_ref.js <node_modules dir> bench <input.jsonl> <key>
//       prints "<bytes> <seconds> <tokens>" for reading, parsing and encoding the texts
'use strict';
const fs = require('fs');
const path = require('path');

const [modules, mode, input, ...rest] = process.argv.slice(2);
if (!modules || !mode || !input) {
  console.error('usage: node llama3_tokenizer_ref.js <node_modules dir> dump|jsonl|b64|bench <input> ...');
  process.exit(2);
}
const { llama3Tokenizer } = require(path.resolve(modules, 'llama3-tokenizer-js', 'bundle',
  'commonjs-llama3-tokenizer-with-baked-data.cjs'));
const options = { bos: false, eos: false, specialTokenRegex: /(?!)/g };
const encode = (text) => llama3Tokenizer.encode(text, options);

function lines(file) {
  const text = fs.readFileSync(file, 'utf8');
  const out = text.split('\n');
  if (out.length && out[out.length - 1] === '') out.pop();
  return out;
}

if (mode === 'dump') {
  fs.writeFileSync(input, JSON.stringify({ vocab: llama3Tokenizer.vocabById, merges: Array.from(llama3Tokenizer.merges.keys()) }));
} else if (mode === 'jsonl') {
  const [key, outFile] = rest;
  const chunks = [];
  for (const line of lines(input)) {
    const ids = encode(JSON.parse(line)[key]);
    const buf = new Int32Array(ids.length + 1);
    buf[0] = ids.length;
    buf.set(ids, 1);
    chunks.push(Buffer.from(buf.buffer));
  }
  fs.writeFileSync(outFile, Buffer.concat(chunks));
} else if (mode === 'b64') {
  const [outFile] = rest;
  const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  const samples = JSON.parse(fs.readFileSync(input, 'utf8'));
  fs.writeFileSync(outFile, JSON.stringify(samples.map((b64) => encode(decoder.decode(Buffer.from(b64, 'base64'))))));
} else if (mode === 'bench') {
  const [key] = rest;
  const start = process.hrtime.bigint();
  let bytes = 0;
  let tokens = 0;
  for (const line of lines(input)) {
    const text = JSON.parse(line)[key];
    bytes += Buffer.byteLength(text, 'utf8');
    tokens += encode(text).length;
  }
  console.log(`${bytes} ${Number(process.hrtime.bigint() - start) / 1e9} ${tokens}`);
} else {
  console.error(`unknown mode '${mode}'`);
  process.exit(2);
}
