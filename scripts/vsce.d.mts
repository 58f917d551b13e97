/** Packs the extension staged in `cwd` into `out` for a vsce `target` ('universal' for none); throws with vsce's output. */
export function vscePackage(options: { cwd: string; out: string; target?: string; fromDir?: string }): string;
