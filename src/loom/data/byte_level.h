#pragma once
// Byte-level BPE vocabularies (GPT-2's vocab.json/merges.txt, Hugging Face tokenizer.json) spell each
// raw byte as one code point, OpenAI's bytes_to_unicode(), so that every token is printable text.
// These helpers convert between that spelling and the raw bytes the tokenizers work on.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace loom::data {

// OpenAI's bytes_to_unicode(): the code point that stands for each byte.
const std::array<uint32_t, 256>& gpt2_byte_to_unicode();

// The raw bytes a byte-level symbol stands for, into `out`; false if some code point of `symbol` is
// not one of the 256 byte spellings (or `symbol` is not UTF-8).
bool byte_level_to_bytes(std::string_view symbol, std::string& out);

// Decodes one code point of UTF-8 at s[i] and advances i; UINT32_MAX (i unchanged) when malformed.
uint32_t next_code_point(std::string_view s, size_t& i);

// `s` quoted for an error message: 'like this', with ' and \ escaped.
std::string quoted_symbol(std::string_view s);

}  // namespace loom::data
