// star-ask quantize --model <in.gguf> --type <T> --out <file> [--json]
// Writes to a temporary file beside --out and renames it into place, so a failure never leaves a partial file.
import { command, helpText, parseCommand } from '../help';
import { printJson } from '../output';
import { FileByteSource } from '../../node/fileByteSource';
import { writeAtomically } from '../../node/writeAtomically';
import { loadModel } from '../../engine/model/loadModel';
import { parseGguf } from '../../engine/model/gguf';
import { writeGguf } from '../../engine/quant/ggufWriter';
import { quantizedGguf } from '../../engine/quant/quantizeModel';
import { isTensorType, TENSOR_TYPES } from '../../engine/quant/formats';

const COMMAND = command({
  usage: `star-ask quantize --model <in.gguf> --type <${TENSOR_TYPES.join('|')}> --out <file> [--json]`,
  options: { model: { type: 'string' }, type: { type: 'string' }, out: { type: 'string' } },
});

export async function run(argv: string[]): Promise<number> {
  const values = parseCommand(argv, COMMAND);
  if (!values) return 0;
  const target = values.type?.toUpperCase();
  if (!values.model || !values.out || !target) { process.stderr.write(helpText(COMMAND)); return 2; }
  if (!isTensorType(target)) {
    process.stderr.write(`star-ask: --type ${values.type} is not one of ${TENSOR_TYPES.join(', ')}\n`);
    return 2;
  }
  const source = await FileByteSource.open(values.model);
  try {
    await loadModel(source); // validates the whole model (config, tensors, tokenizer) before anything is written
    const header = await parseGguf(source);
    const { spec, plan } = quantizedGguf(source, header, target);
    const bytes = await writeAtomically(values.out, (sink) => writeGguf(spec, sink));
    const types: Record<string, number> = {};
    for (const p of plan) types[p.to] = (types[p.to] ?? 0) + 1;
    const fallbacks = plan.filter((p) => p.fallbackFrom).map((p) => ({ tensor: p.name, requested: p.fallbackFrom, used: p.to }));
    if (values.json) {
      printJson({ out: values.out, type: target, bytes, inputBytes: source.size, tensorTypes: types, fallbacks });
    } else {
      process.stdout.write(`${values.out}: ${bytes} bytes (from ${source.size}), tensors ${JSON.stringify(types)}\n`);
      for (const f of fallbacks) process.stdout.write(`  ${f.tensor}: rows do not fit ${f.requested} blocks, stored as ${f.used}\n`);
    }
    return 0;
  } finally {
    await source.close();
  }
}
