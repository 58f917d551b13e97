// `--help` of a subcommand, written from its own parseArgs option spec, so the list cannot drift from what the
// command accepts.
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly default?: string | boolean;
  readonly short?: string;
}

/** The `help` option every command accepts. */
export const helpOption = { help: { type: 'boolean', short: 'h', default: false } } as const;

/** `usage` (e.g. "star-ask index --repo <dir> --model <file>"), then every option with its default and note. */
export function helpText(usage: string, options: Readonly<Record<string, OptionSpec>>, notes: Readonly<Record<string, string>> = {}): string {
  const rows = Object.entries(options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'string' ? ' <value>' : ''}`;
    const def = o.type === 'string' && o.default !== undefined ? ` (default ${o.default})` : '';
    return [flag, `${notes[name] ?? ''}${def}`.trim()] as const;
  });
  const width = Math.max(...rows.map(([flag]) => flag.length));
  return `usage: ${usage}\n\noptions:\n${rows.map(([flag, text]) => `  ${flag.padEnd(width)}  ${text}`.trimEnd()).join('\n')}\n`;
}
