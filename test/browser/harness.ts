// Test page: the webview's side of the host workers, exactly as the extension's page runs it (installHostBridge),
// talking to the Node test process, which plays the extension host. Messages cross as JSON with typed arrays
// wrapped (wireCodec.ts), the stand-in for the webview's postMessage.
import { installHostBridge } from '../../webview/hostBridge';
import { decodeWire, encodeWire } from '../support/wireCodec';

declare global {
  /** Exposed by the test (page.exposeFunction): page -> extension host. */
  function hostsToExtension(message: unknown): Promise<void>;
}

const handle = installHostBridge((msg) => void globalThis.hostsToExtension(encodeWire(msg)));

const api = {
  /** Extension host -> page. */
  deliver(message: unknown): void {
    handle(decodeWire(message));
  },
};

export type Harness = { harness: typeof api };
(globalThis as unknown as Harness).harness = api;
