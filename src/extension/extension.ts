// VS Code extension entry point: thin glue over the engine (src/engine), which has no dependency on `vscode`.
// Commands, the chat panel and the inline chat are contributed as they land, each only once it works.
import type * as vscode from 'vscode';

export function activate(_context: vscode.ExtensionContext): void {}

export function deactivate(): void {}
