// A subcommand's options, declared once: parseArgs's spec, a note per option, the usage line and what the notes
// cannot say. parseCommand parses with it and answers --help from it, so the help cannot drift from what the
// command accepts, and every command's help reads the same way.
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/** The options every command takes. */
const COMMON_OPTIONS = {
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** The benchmarks' --model: the shared test model beside the checkout by default. */
export const benchModelOption = { model: { type: 'string', default: '../shared/models/stories260K.gguf' } } as const;

export interface CommandSpec<O extends Options> {
  /** After "usage: ", e.g. "star-ask index --repo <dir> --model <file> [options]". */
  readonly usage: string;
  /** parseArgs's options; --json and --help are added. */
  readonly options: O;
  readonly notes?: { readonly [K in keyof O | keyof typeof COMMON_OPTIONS]?: string };
  /** Lines after the options: what a note per option cannot say. */
  readonly about?: string;
}

export interface Command<O extends Options> {
  readonly spec: CommandSpec<O>;
  readonly options: O & typeof COMMON_OPTIONS;
}

export type CommandValues<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: O & typeof COMMON_OPTIONS }>>['values'];

export function command<const O extends Options>(spec: CommandSpec<O>): Command<O> {
  return { spec, options: { ...spec.options, ...COMMON_OPTIONS } };
}

/** `argv` parsed by the command's options; undefined after --help was answered on stdout (the command exits 0). */
export function parseCommand<O extends Options>(argv: string[], c: Command<O>): CommandValues<O> | undefined {
  // parseArgs's result type is computed from the options, which this generic helper cannot see: it is the
  // caller's CommandValues<O>, of which --help is one.
  const values = parseArgs({ args: argv, options: c.options }).values as CommandValues<O> & { readonly help: boolean };
  if (values.help) {
    process.stdout.write(helpText(c));
    return undefined;
  }
  return values;
}

/** The usage line, every option with its note and default, then `about`. */
export function helpText(c: Command<Options>): string {
  const notes: Readonly<Record<string, string | undefined>> = { json: 'one JSON object on stdout', help: 'this help', ...c.spec.notes };
  const rows = Object.entries(c.options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'string' ? ' <value>' : ''}`;
    const def = o.type === 'string' && o.default !== undefined ? ` (default ${String(o.default)})` : '';
    return [flag, `${notes[name] ?? ''}${def}`.trim()] as const;
  });
  const width = Math.max(...rows.map(([flag]) => flag.length));
  const options = rows.map(([flag, text]) => `  ${flag.padEnd(width)}  ${text}`.trimEnd()).join('\n');
  return `usage: ${c.spec.usage}\n\noptions:\n${options}\n${c.spec.about ? `\n${c.spec.about}\n` : ''}`;
}
