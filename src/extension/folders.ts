// Multi-root workspaces: every folder is a repository of its own. A question goes to the folder of the active
// editor, else to the only folder, else the user picks one.
import * as vscode from 'vscode';

export async function questionFolder(): Promise<vscode.WorkspaceFolder | undefined> {
  const folders = vscode.workspace.workspaceFolders ?? [];
  const active = vscode.window.activeTextEditor?.document.uri;
  const own = active ? vscode.workspace.getWorkspaceFolder(active) : undefined;
  if (own) return own;
  if (folders.length === 1) return folders[0];
  if (folders.length === 0) {
    void vscode.window.showWarningMessage('Star Attention: open a folder first; the folder is the repository it answers about.');
    return undefined;
  }
  return vscode.window.showWorkspaceFolderPick({ placeHolder: 'Which repository is the question about?' });
}
