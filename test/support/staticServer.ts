// A tiny HTTP server on 127.0.0.1 (a secure context for WebGPU) serving fixed routes from memory or disk.
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';

export type Route = { type: string; body: () => Buffer | string };

export async function serve(routes: Record<string, Route>): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const route = routes[(req.url ?? '/').split('?')[0]!];
    if (!route) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': route.type, 'cache-control': 'no-store' }).end(route.body());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

export const file = (path: string, type: string): Route => ({ type, body: () => readFileSync(path) });
