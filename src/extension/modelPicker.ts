// "Select Model": choose a local GGUF file or Hugging Face folder, or download a recommended model into the
// extension's global storage (progress, resumable after an interruption, SHA-256 checked). The choice is written to
// the `starAttention.model` setting (user scope).
import * as vscode from 'vscode';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { CancelledError } from '../engine/errors';
import { downloadFile } from '../node/download/downloadFile';
import { MODEL_CATALOG, type CatalogModel } from '../node/download/modelCatalog';
import { SECTION } from './settings';

type Pick = vscode.QuickPickItem & { action: 'file' | 'folder' | 'download'; model?: CatalogModel };

export async function selectModel(storage: vscode.Uri, log: vscode.LogOutputChannel): Promise<void> {
  const modelsDir = join(storage.fsPath, 'models');
  const current = vscode.workspace.getConfiguration(SECTION).get<string>('model', '');
  const items: Pick[] = [
    { label: '$(file) Choose a GGUF file…', action: 'file', detail: 'Llama or Qwen2 architecture; any non-IQ llama.cpp mix (Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q3_K_M, Q2_K, …)' },
    { label: '$(folder) Choose a Hugging Face folder…', action: 'folder', detail: 'config.json + model.safetensors + tokenizer.json' },
    { label: 'Download', kind: vscode.QuickPickItemKind.Separator, action: 'download' },
    ...MODEL_CATALOG.map((m): Pick => {
      const have = existsSync(join(modelsDir, m.fileName));
      return { label: `$(cloud-download) ${m.label}`, description: have ? 'downloaded' : `${(m.approxBytes / 1e9).toFixed(1)} GB`, detail: m.detail, action: 'download', model: m };
    }),
  ];
  const pick = await vscode.window.showQuickPick(items, { title: 'Star Attention: Select Model', placeHolder: current ? `Current: ${current}` : 'No model selected yet' });
  if (!pick) return;
  let path: string | undefined;
  if (pick.action === 'file') {
    const uris = await vscode.window.showOpenDialog({ canSelectFiles: true, canSelectFolders: false, filters: { 'GGUF model': ['gguf'] }, title: 'Choose a GGUF model' });
    path = uris?.[0]?.fsPath;
  } else if (pick.action === 'folder') {
    const uris = await vscode.window.showOpenDialog({ canSelectFiles: false, canSelectFolders: true, title: 'Choose a Hugging Face model folder' });
    path = uris?.[0]?.fsPath;
  } else if (pick.model) {
    path = await download(pick.model, modelsDir, log);
  }
  if (!path) return;
  await vscode.workspace.getConfiguration(SECTION).update('model', path, vscode.ConfigurationTarget.Global);
  void vscode.window.showInformationMessage(`Star Attention: model set to ${path}`);
}

async function download(model: CatalogModel, dir: string, log: vscode.LogOutputChannel): Promise<string | undefined> {
  const dest = join(dir, model.fileName);
  if (existsSync(dest)) return dest;
  try {
    return await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Downloading ${model.label}`, cancellable: true },
      async (progress, token) => {
        const abort = new AbortController();
        token.onCancellationRequested(() => abort.abort());
        let reported = 0;
        const r = await downloadFile({
          url: model.url, dest, sha256: model.sha256, signal: abort.signal,
          onProgress: (received, total) => {
            const t = total ?? model.approxBytes;
            const pct = (100 * received) / t;
            if (pct - reported >= 1) {
              progress.report({ increment: pct - reported, message: `${(received / 1e6).toFixed(0)} / ${(t / 1e6).toFixed(0)} MB` });
              reported = pct;
            }
          },
        });
        log.info(`downloaded ${model.url} -> ${r.path} (${r.bytes} bytes, sha256 ${r.sha256}${r.resumedFrom ? `, resumed from ${r.resumedFrom}` : ''})`);
        return r.path;
      },
    );
  } catch (err) {
    if (err instanceof CancelledError) {
      void vscode.window.showInformationMessage('Star Attention: download paused. Select the model again to resume where it stopped.');
      return undefined;
    }
    const message = err instanceof Error ? err.message : String(err);
    log.error(`download failed: ${message}`);
    void vscode.window.showErrorMessage(`Star Attention: ${message}`);
    return undefined;
  }
}
