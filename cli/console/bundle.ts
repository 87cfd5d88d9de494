import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { MaasError } from '../../src/errors/index.ts';

const ENTRY = fileURLToPath(new URL('./web/app.ts', import.meta.url));

/** One static file of the page, kept in memory with its gzipped form. */
export interface Asset {
  contentType: string;
  body: Buffer;
  gzip: Buffer;
}

export interface Bundle {
  'app.js': Asset;
  'app.css': Asset;
  'index.html': Asset;
  /** gzipped bytes of everything the page loads */
  gzipBytes: number;
}

export class BundleError extends MaasError {
  constructor(message: string, cause?: unknown) {
    super('ConsoleBundle', message, { cause });
  }
}

const asset = (contentType: string, text: string | Uint8Array): Asset => {
  const body = Buffer.from(text);
  return { contentType, body, gzip: gzipSync(body, { level: 9 }) };
};

/**
 * The shell the script fills in. It already says what it is and shows a message of its own if
 * the script never starts, so the page is never blank.
 */
const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>onnx-maas console</title>
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body>
<header class="top"><a class="brand" href="#/">onnx-maas <span>console</span></a><span id="target"></span></header>
<main id="app"><p class="loading" id="boot">Loading the console…</p>
<noscript><p class="error">The console needs JavaScript. The same figures are at <code>maas models</code> and <code>maas history NAME</code>.</p></noscript></main>
<script>setTimeout(function(){var b=document.getElementById('boot');if(b&&b.isConnected&&!window.__maasConsole){b.className='error';b.textContent='The console script did not start (app.js failed to load or run). Check the terminal running maas console, then reload.';}},8000);</script>
</body>
</html>
`;

/**
 * Builds the page with esbuild into memory: nothing is written to disk, so no build output can
 * be committed or go stale. esbuild is a development dependency, as the console is a tool of
 * the checkout (`npm install` brings it).
 */
export async function buildBundle(): Promise<Bundle> {
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch (err) {
    throw new BundleError(
      'the console is built with esbuild at start, and it is not installed: run `npm install` in the project (esbuild is a development dependency)',
      err,
    );
  }
  let result: Awaited<ReturnType<typeof esbuild.build>>;
  try {
    result = await esbuild.build({
      entryPoints: [ENTRY],
      bundle: true,
      minify: true,
      format: 'iife',
      target: ['chrome110', 'firefox110', 'safari16'],
      write: false,
      outdir: 'console-out',
      logLevel: 'silent',
      legalComments: 'none',
    });
  } catch (err) {
    throw new BundleError(`the console page failed to build: ${(err as Error).message}`, err);
  }
  let js = '';
  let css = '';
  for (const file of result.outputFiles ?? []) {
    if (file.path.endsWith('.js')) js = file.text;
    else if (file.path.endsWith('.css')) css = file.text;
  }
  const bundle = {
    'app.js': asset('text/javascript; charset=utf-8', js),
    'app.css': asset('text/css; charset=utf-8', css),
    'index.html': asset('text/html; charset=utf-8', INDEX_HTML),
  };
  return {
    ...bundle,
    gzipBytes: Object.values(bundle).reduce((total, a) => total + a.gzip.length, 0),
  };
}
