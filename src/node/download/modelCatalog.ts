// Models the extension offers to download: instruct GGUFs whose tensor types this engine reads, small enough for
// a laptop GPU. The checksum is the SHA-256 that Hugging Face publishes for each file (its LFS object id, sent as
// X-Linked-Etag); pin one here with `sha256` to refuse any other bytes even from that server.
export interface CatalogModel {
  readonly id: string;
  readonly label: string;
  readonly detail: string;
  readonly url: string;
  readonly fileName: string;
  readonly approxBytes: number;
  readonly sha256?: string;
}

const hf = (repo: string, file: string) => `https://huggingface.co/${repo}/resolve/main/${file}`;

export const MODEL_CATALOG: readonly CatalogModel[] = [
  {
    id: 'qwen2.5-coder-1.5b-instruct-q4_k_m',
    label: 'Qwen2.5-Coder-1.5B-Instruct (Q4_K_M)',
    detail: 'Recommended: a code model, 32K context, about 1.1 GB',
    url: hf('Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF', 'qwen2.5-coder-1.5b-instruct-q4_k_m.gguf'),
    fileName: 'qwen2.5-coder-1.5b-instruct-q4_k_m.gguf',
    approxBytes: 1.12e9,
  },
  {
    id: 'qwen2.5-coder-0.5b-instruct-q8_0',
    label: 'Qwen2.5-Coder-0.5B-Instruct (Q8_0)',
    detail: 'Smallest code model, fast on any GPU, about 0.5 GB',
    url: hf('Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF', 'qwen2.5-coder-0.5b-instruct-q8_0.gguf'),
    fileName: 'qwen2.5-coder-0.5b-instruct-q8_0.gguf',
    approxBytes: 0.53e9,
  },
  {
    id: 'llama-3.2-1b-instruct-q4_k_m',
    label: 'Llama-3.2-1B-Instruct (Q4_K_M)',
    detail: 'General instruct model, 128K context, about 0.8 GB',
    url: hf('hugging-quants/Llama-3.2-1B-Instruct-Q4_K_M-GGUF', 'llama-3.2-1b-instruct-q4_k_m.gguf'),
    fileName: 'llama-3.2-1b-instruct-q4_k_m.gguf',
    approxBytes: 0.81e9,
  },
];
