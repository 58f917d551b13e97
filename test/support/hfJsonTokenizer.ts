// A Tokenizer over @huggingface/tokenizers and a tokenizer.json: a real tokenizer that is independent of the
// project's own, for tests of code that only needs *some* Tokenizer (block packing, prompt layout).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import type { Tokenizer } from '../../src/engine/tokenizer/types';

export function loadHfJsonTokenizer(dir: string): Tokenizer {
  const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } };
  const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  const hf = new HfTokenizer(json, config);
  const special = new Set([...hf.get_added_tokens_decoder().entries()].filter(([, t]) => t.special).map(([id]) => id));
  const bos = hf.token_to_id(String(config.bos_token));
  const eos = hf.token_to_id(String(config.eos_token));
  return {
    kind: 'hf-json',
    vocabSize: Object.keys(json.model.vocab).length,
    bos,
    eos: new Set(eos === undefined ? [] : [eos]),
    addBosByDefault: config.add_bos_token === true,
    encode: (text, options) => hf.encode(text, { add_special_tokens: options?.addBos ?? config.add_bos_token === true }).ids,
    decode: (ids, options) => hf.decode([...ids], { skip_special_tokens: options?.skipSpecial ?? false }),
    tokenBytes: (id) => new TextEncoder().encode(hf.id_to_token(id) ?? ''),
    tokenText: (id) => hf.id_to_token(id) ?? '',
    isSpecial: (id) => special.has(id),
  };
}
