/** Copies node_modules/webgpu for one vsce `target` into `<nodeModulesDir>/webgpu`; returns that folder. */
export function copyWebgpuRuntime(nodeModulesDir: string, target: string, fromDir?: string): string;
