// onnxruntime-web in headless Chromium: exported models run where the browser demo runs them
// (the wasm backend, one thread), for `kdistill export --quantize int8 --web` and the tests.
// A loopback HTTP server serves onnxruntime-web's files from node_modules, the models and the
// input batches (wasm cannot load from file://); playwright-core drives the system's Chromium
// (no browser download). Both packages are development dependencies: a missing one is named
// with the command that installs it.
// The server sends COOP/COEP headers so that the page is cross-origin isolated: only then does
// Chromium's performance.now() resolve 5 µs instead of 100 µs, enough to time single runs.
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { latencyCounts, type LatencyOptions } from './latency.js';

/** Where Chromium is looked for: KDISTILL_CHROMIUM, else Debian's /usr/bin/chromium (scripts/setup.sh installs it). */
export function chromiumPath(): string {
  return process.env.KDISTILL_CHROMIUM || '/usr/bin/chromium';
}

/** onnxruntime-web's dist/ folder (its package exports hide package.json: resolve the entry and step up). */
export function ortWebDir(): string {
  let dir: string;
  try {
    dir = createRequire(import.meta.url).resolve('onnxruntime-web');
  } catch {
    throw new Error('onnxruntime-web is not installed: npm install --save-dev onnxruntime-web');
  }
  while (!existsSync(join(dir, 'package.json'))) {
    if (dirname(dir) === dir) throw new Error('onnxruntime-web: package.json not found above its entry point');
    dir = dirname(dir);
  }
  return join(dir, 'dist');
}

/** The wasm backend's ESM entry and the runtime it loads next to it (what the demo page copies). */
export const ORT_WEB_FILES = ['ort.wasm.min.mjs', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'] as const;

const TYPES: Record<string, string> = { mjs: 'text/javascript', wasm: 'application/wasm' };
/** Cross-origin isolation (every response is same-origin, so require-corp blocks nothing). */
export const ISOLATION_HEADERS = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' } as const;
const PAGE = `<!doctype html><meta charset="utf-8"><title>kdistill onnxruntime-web</title>
<script type="module">
import * as ort from '/ort/ort.wasm.min.mjs';
ort.env.wasm.numThreads = 1;
ort.env.wasm.wasmPaths = '/ort/';
window.ort = ort;
// The smallest step of performance.now(): 0.005 ms on a cross-origin-isolated page, 0.1 ms otherwise.
let step = Infinity;
for (let k = 0; k < 50; k++) {
  const a = performance.now();
  let b = a;
  while (b === a) b = performance.now();
  step = Math.min(step, b - a);
}
window.clock = { crossOriginIsolated: self.crossOriginIsolated === true, resolutionMs: step };
document.documentElement.dataset.ready = '1';
</script>`;

/** The page-side API used below (onnxruntime-web's, reduced to what is called). */
interface OrtLike {
  env: { versions: { web: string } };
  Tensor: new (type: 'float32', data: Float32Array, dims: number[]) => unknown;
  InferenceSession: { create(url: string, o: object): Promise<{ inputNames: string[]; outputNames: string[]; run(feed: Record<string, unknown>): Promise<Record<string, { data: Float32Array }>>; release(): Promise<void> }> };
}

/**
 * A headless Chromium page with onnxruntime-web loaded. `add` makes a model or an input batch
 * fetchable by the page; `logits` and `latency` run a model there.
 */
export class OrtWeb {
  private constructor(private readonly browser: Browser, private readonly page: Page, private readonly server: Server,
    private readonly blobs: Map<string, Uint8Array>, readonly version: string,
    /** Whether the page is cross-origin isolated, and the resolution of its clock in ms (latency is coarse without isolation). */
    readonly clock: { crossOriginIsolated: boolean; resolutionMs: number }) {}
  private batches = 0;

  /** isolate: false serves the page without the COOP/COEP headers (to show what they change). */
  static async start(o: { chromium?: string; isolate?: boolean } = {}): Promise<OrtWeb> {
    const exe = o.chromium ?? chromiumPath();
    if (!existsSync(exe)) throw new Error(`Chromium not found at ${exe}: install it (apt-get install chromium) or set KDISTILL_CHROMIUM to its path`);
    const ortDir = ortWebDir();
    let pw: typeof import('playwright-core');
    try {
      pw = await import('playwright-core');
    } catch {
      throw new Error('playwright-core is not installed (it drives Chromium): npm install --save-dev playwright-core');
    }
    const blobs = new Map<string, Uint8Array>();
    const server = createServer((req, res) => {
      const url = (req.url ?? '/').split('?')[0]!;
      let body: Uint8Array | string | undefined, type = 'application/octet-stream';
      if (url === '/') [body, type] = [PAGE, 'text/html'];
      else if (url.startsWith('/ort/') && (ORT_WEB_FILES as readonly string[]).includes(url.slice(5))) {
        body = readFileSync(join(ortDir, url.slice(5)));
        type = TYPES[url.split('.').pop()!]!;
      } else if (url.startsWith('/b/')) body = blobs.get(decodeURIComponent(url.slice(3)));
      if (body === undefined) {
        res.writeHead(404);
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': type, ...(o.isolate === false ? {} : ISOLATION_HEADERS) });
      res.end(body);
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    let browser: Browser | null = null;
    try {
      browser = await pw.chromium.launch({
        executablePath: exe,
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      });
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`http://127.0.0.1:${(server.address() as { port: number }).port}/`);
      try {
        // Generous: starting Chromium and compiling the wasm runtime on a loaded 2-core machine takes seconds.
        await page.waitForSelector('html[data-ready]', { timeout: 60000 });
      } catch (e) {
        throw new Error(`onnxruntime-web did not load in Chromium: ${errors.join('; ') || (e as Error).message}`);
      }
      const version = await page.evaluate(() => (window as unknown as { ort: OrtLike }).ort.env.versions.web);
      const clock = await page.evaluate(() => (window as unknown as { clock: { crossOriginIsolated: boolean; resolutionMs: number } }).clock);
      return new OrtWeb(browser, page, server, blobs, version, clock);
    } catch (e) {
      await browser?.close();
      server.close();
      throw e;
    }
  }

  /** Makes bytes fetchable by the page as /b/<name>. */
  add(name: string, bytes: Uint8Array): void {
    this.blobs.set(name, bytes);
  }

  /**
   * Logits of every sample of x ([n, ...sampleShape], row-major) from model `name` on onnxruntime-web's
   * wasm backend, in batches of 250, with graph optimisations off ('disabled': the graph as
   * written) or on ('all': as the demo page runs it).
   */
  async logits(model: string, x: Float32Array, sampleShape: number[], level: 'disabled' | 'all'): Promise<Float32Array> {
    const key = `x-${++this.batches}`;
    this.add(key, new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
    try {
      const out = await this.page.evaluate(async ({ model, key, sampleShape, level }) => {
        const ort = (window as unknown as { ort: OrtLike }).ort;
        const xs = new Float32Array(await (await fetch(`/b/${key}`)).arrayBuffer());
        const s = await ort.InferenceSession.create(`/b/${model}`, { executionProviders: ['wasm'], graphOptimizationLevel: level });
        try {
          const per = sampleShape.reduce((a, b) => a * b, 1), n = xs.length / per;
          const parts: number[] = [];
          for (let i = 0; i < n; i += 250) {
            const m = Math.min(250, n - i);
            const r = await s.run({ [s.inputNames[0]!]: new ort.Tensor('float32', xs.slice(i * per, (i + m) * per), [m, ...sampleShape]) });
            parts.push(...r[s.outputNames[0]!]!.data);
          }
          return parts;
        } finally {
          await s.release();
        }
      }, { model, key, sampleShape, level });
      return Float32Array.from(out);
    } finally {
      this.blobs.delete(key);
    }
  }

  /**
   * Batch-1 times of model `name` in ms: `runs` single runs (after `warmup` untimed ones), each
   * timed on its own with performance.now() (see `clock` for its resolution); graph optimisations
   * on and one wasm thread, as the demo page runs it. Summarise with summarizeLatency.
   */
  async latency(model: string, sample: Float32Array, dims: number[], o: LatencyOptions = {}): Promise<number[]> {
    const { warmup, runs } = latencyCounts(o);
    return this.page.evaluate(async ({ model, sample, dims, warmup, runs }) => {
      const ort = (window as unknown as { ort: OrtLike }).ort;
      const s = await ort.InferenceSession.create(`/b/${model}`, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
      try {
        const feed = { [s.inputNames[0]!]: new ort.Tensor('float32', Float32Array.from(sample), dims) };
        for (let i = 0; i < warmup; i++) await s.run(feed);
        const times: number[] = [];
        for (let i = 0; i < runs; i++) {
          const t0 = performance.now();
          await s.run(feed);
          times.push(performance.now() - t0);
        }
        return times;
      } finally {
        await s.release();
      }
    }, { model, sample: Array.from(sample), dims, warmup, runs });
  }

  async close(): Promise<void> {
    try {
      await this.browser.close();
    } finally {
      this.server.close();
      this.server.closeAllConnections();
    }
  }
}
