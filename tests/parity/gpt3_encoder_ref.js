// Reference token ids from the npm package gpt-3-encoder (OpenAI's GPT-2 encoder ported to JavaScript).
//
//   node gpt3_encoder_ref.js <node_modules dir> jsonl <input.jsonl> <key> <out.bin>
//       every line's JSON string <key> -> ids; out.bin holds, per line, int32 count then int32 ids
//   node gpt3_encoder_ref.js <node_modules dir> b64 <in.json> <out.json>
//       in.json is a JSON array of base64 byte strings. The bytes become a JavaScript string through
//       the WHATWG UTF-8 decoder (TextDecoder: each maximal invalid subpart -> U+FFFD, BOM kept);
//       out.json is the array of id arrays
//   node gpt3_encoder_ref.js <node_modules dir> split <in.json> <out.bin>
//       like b64, but only the pre-tokenisation: per sample int32 count, then the UTF-8 byte length of
//       every regex match, taken with the package's own pattern (read out of its Encoder.js)
//   node gpt3_encoder_ref.js <node_modules dir> bench <input.jsonl> <key>
//       prints "<bytes> <seconds>": UTF-8 bytes of the texts and the time to read, parse and encode them
'use strict';
const fs = require('fs');
const path = require('path');

const [modules, mode, input, ...rest] = process.argv.slice(2);
if (!modules || !mode || !input) {
  console.error('usage: node gpt3_encoder_ref.js <node_modules dir> jsonl|b64|bench <input> ...');
  process.exit(2);
}
const { encode } = require(path.join(modules, 'gpt-3-encoder'));

function lines(file) {
  const text = fs.readFileSync(file, 'utf8');
  const out = text.split('\n');
  if (out.length && out[out.length - 1] === '') out.pop();
  return out;
}

if (mode === 'jsonl') {
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
  const result = samples.map((b64) => encode(decoder.decode(Buffer.from(b64, 'base64'))));
  fs.writeFileSync(outFile, JSON.stringify(result));
} else if (mode === 'split') {
  const [outFile] = rest;
  const source = fs.readFileSync(path.join(modules, 'gpt-3-encoder', 'Encoder.js'), 'utf8');
  const literal = source.match(/^const pat = (\/.*\/[a-z]*)$/m);
  if (!literal) throw new Error('cannot find the pattern in gpt-3-encoder/Encoder.js');
  const pat = eval(literal[1]);
  const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  const chunks = [];
  for (const b64 of JSON.parse(fs.readFileSync(input, 'utf8'))) {
    const lengths = Array.from(decoder.decode(Buffer.from(b64, 'base64')).matchAll(pat)).map((m) =>
      Buffer.byteLength(m[0], 'utf8'));
    const buf = new Int32Array(lengths.length + 1);
    buf[0] = lengths.length;
    buf.set(lengths, 1);
    chunks.push(Buffer.from(buf.buffer));
  }
  fs.writeFileSync(outFile, Buffer.concat(chunks));
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
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(`${bytes} ${seconds} ${tokens}`);
} else {
  console.error(`unknown mode '${mode}'`);
  process.exit(2);
}
