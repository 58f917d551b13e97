// Runs INSIDE a real VS Code's extension host, started by @vscode/test-electron from test/e2e-extension.test.ts
// (`extensionTestsPath`, bundled to dist/electron-suite/suite.cjs). It drives the extension through the VS Code API
// as the palette would, and leaves the checking to the outer test, which reads the extension's metrics.jsonl (the
// same record the code-server run is checked with). What to do comes in STAR_E2E_* environment variables.
import * as vscode from 'vscode';

const COMMANDS = ['starAttention.askCodebase', 'starAttention.openChat', 'starAttention.askAboutSelection',
  'starAttention.selectModel', 'starAttention.indexRepository', 'starAttention.cancel'];

function env(name: string): string {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set: this suite is run by test/e2e-extension.test.ts`);
  return value;
}

export async function run(): Promise<void> {
  const settings = JSON.parse(env('STAR_E2E_SETTINGS')) as Record<string, unknown>;
  const config = vscode.workspace.getConfiguration();
  for (const [key, value] of Object.entries(settings)) await config.update(key, value, vscode.ConfigurationTarget.Global);
  const extension = vscode.extensions.getExtension(env('STAR_E2E_EXTENSION_ID'));
  if (!extension) throw new Error(`extension ${env('STAR_E2E_EXTENSION_ID')} is not loaded`);
  await extension.activate();
  const registered = new Set(await vscode.commands.getCommands(true));
  const missing = COMMANDS.filter((c) => !registered.has(c));
  if (missing.length) throw new Error(`commands not registered: ${missing.join(', ')}`);

  const question = env('STAR_E2E_QUESTION');
  // Ask Codebase with the question as its argument: the command resolves once the answer has streamed.
  await vscode.commands.executeCommand('starAttention.askCodebase', question);
  // A one-file edit, saved as a user would (the watcher sees it), then the same question.
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!folder) throw new Error('no workspace folder is open');
  const file = vscode.Uri.joinPath(folder.uri, env('STAR_E2E_EDIT_FILE'));
  const document = await vscode.workspace.openTextDocument(file);
  const edit = new vscode.WorkspaceEdit();
  edit.insert(file, document.positionAt(document.getText().length), env('STAR_E2E_EDIT_TEXT'));
  if (!(await vscode.workspace.applyEdit(edit)) || !(await document.save())) throw new Error(`cannot edit ${file.fsPath}`);
  await vscode.commands.executeCommand('starAttention.askCodebase', question);
}
