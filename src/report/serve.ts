// `kdistill serve <run-dir...>`: the report page, live. An HTTP server on the loopback interface
// only (the page shows file paths and configs; nothing here is meant for the network) serves the
// page and /data.json, which is rebuilt from log.jsonl whenever the files change; the page polls
// it and redraws. The trainer appends to log.jsonl at each checkpoint (every epoch, or every
// checkpointEvery steps), so that is how often new points appear.
import { createServer, type Server } from 'node:http';
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildRunReport } from './data.js';
import { renderReportHtml } from './html.js';
import type { ReportData } from './types.js';

export interface ServeOptions {
  port?: number;
  /** Poll interval of the page, ms. */
  everyMs?: number;
}

function stamp(dir: string): string {
  return ['log.jsonl', 'report.json', 'model.safetensors', 'experiment.yaml']
    .map((f) => {
      const p = join(dir, f);
      if (!existsSync(p)) return '-';
      const s = statSync(p);
      return `${s.size}:${s.mtimeMs}`;
    }).join('|');
}

export async function serveRuns(dirs: string[], o: ServeOptions = {}): Promise<{ server: Server; url: string }> {
  if (dirs.length === 0) throw new Error('serve: give at least one run folder');
  const abs = dirs.map((d) => resolve(d));
  for (const d of abs) if (!existsSync(d)) throw new Error(`serve: run folder not found: ${d} (start the run first, or check the path)`);
  const everyMs = o.everyMs ?? 2000;
  const cache = new Map<string, { stamp: string; json: string }>();
  let building: Promise<string> | null = null;

  const data = async (): Promise<string> => {
    const runs = [];
    for (const d of abs) {
      const s = stamp(d);
      const c = cache.get(d);
      if (c && c.stamp === s) {
        runs.push(JSON.parse(c.json));
        continue;
      }
      // Never evaluate here: a live view must not compete with the training for the CPU.
      const r = await buildRunReport(d, { evaluate: false });
      cache.set(d, { stamp: s, json: JSON.stringify(r) });
      runs.push(r);
    }
    const rep: ReportData = {
      title: `kdistill live: ${runs.map((r: { name: string }) => r.name).join(' vs ')}`,
      generated: new Date().toISOString().replace('T', ' ').slice(0, 19) + ' UTC', runs,
    };
    return JSON.stringify(rep);
  };
  const dataOnce = (): Promise<string> => {
    // Concurrent polls share one rebuild.
    building ??= data().finally(() => { building = null; });
    return building;
  };

  const server = createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    const send = (code: number, type: string, body: string): void => {
      res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET') return send(405, 'text/plain', 'GET only\n');
    if (url === '/' || url === '/index.html') {
      dataOnce().then((j) => send(200, 'text/html; charset=utf-8', renderReportHtml(JSON.parse(j) as ReportData, { live: { url: 'data.json', everyMs } })))
        .catch((e: Error) => send(500, 'text/plain', `${e.message}\n`));
      return;
    }
    if (url === '/data.json') {
      dataOnce().then((j) => send(200, 'application/json', j)).catch((e: Error) => send(500, 'text/plain', `${e.message}\n`));
      return;
    }
    send(404, 'text/plain', 'not found\n');
  });
  await new Promise<void>((res, rej) => {
    server.once('error', (e: NodeJS.ErrnoException) => rej(e.code === 'EADDRINUSE' ? new Error(`serve: port ${o.port} is in use; pick another with --port`) : e));
    server.listen(o.port ?? 8765, '127.0.0.1', () => res());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : o.port;
  return { server, url: `http://127.0.0.1:${port}/` };
}
