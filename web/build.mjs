// `npm run build` → dist/: index.html, assets/js/app.js (bundled, minified), assets/css/app.css,
// assets/lazy/notepad.js (the notepad's editor, loaded on first use),
// assets/worker/livekit-client.e2ee.worker.js (copied from livekit-client), favicon.svg.
// Every URL in the output is relative, so the server can serve dist/ at `/`. The server lists
// assets/js and assets/css in `getClientFiles`, from which an LMS plugin builds its own page
// (so nothing but the page's scripts and styles may live there: the worker does not).
// assets/lazy/ holds what loads only when first needed, as ES modules imported by URL: the
// whiteboard (Excalidraw with React: whiteboard.js, whiteboard.css, chunks/, and Excalidraw's
// fonts under fonts/, which it would otherwise fetch from a CDN) and its PDF tools (pdf.js with
// its worker and standard fonts, pdf-lib: pdf.js). Not in assets/js, so an LMS page does not
// load them up front.
// `node build.mjs --dev` keeps the output readable and adds source maps.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.dirname(fileURLToPath(import.meta.url));
const dev = process.argv.includes('--dev');
const src = path.join(root, 'src');
const dist = path.join(root, 'dist');
const assets = path.join(dist, 'assets');

fs.rmSync(dist, { recursive: true, force: true });
for (const d of ['js', 'css', 'worker', 'lazy']) fs.mkdirSync(path.join(assets, d), { recursive: true });

const common = {
  bundle: true,
  minify: !dev,
  sourcemap: dev ? 'linked' : false,
  legalComments: dev ? 'inline' : 'linked',
  logLevel: 'warning',
  target: ['chrome100', 'edge100', 'firefox115', 'safari15.4'],
  metafile: true,
};

const js = await esbuild.build({
  ...common,
  entryPoints: [path.join(src, 'main.ts')],
  outfile: path.join(assets, 'js', 'app.js'),
  format: 'iife',
  platform: 'browser',
  define: { 'process.env.NODE_ENV': dev ? '"development"' : '"production"' },
});
// Bundles loaded on first use live in assets/lazy/ (not assets/js, which getClientFiles lists
// for pages that embed the client): the shared notepad's editor (Yjs, CodeMirror).
await esbuild.build({
  ...common,
  entryPoints: [path.join(src, 'notepad', 'lazy.ts')],
  outfile: path.join(assets, 'lazy', 'notepad.js'),
  format: 'iife',
  platform: 'browser',
});
const css = await esbuild.build({
  ...common,
  entryPoints: [path.join(src, 'styles.css')],
  outfile: path.join(assets, 'css', 'app.css'),
  loader: { '.svg': 'dataurl' },
});

const lazy = path.join(assets, 'lazy');
// The board speaks English, as the rest of the client: Excalidraw's other 50 locales (1.6 MB,
// imported only when another language is chosen, which the board never does) are left out.
const englishOnly = {
  name: 'excalidraw-english-only',
  setup(b) {
    b.onResolve({ filter: /^\.\/locales\/.+\.js$/ }, (args) => {
      if (!args.importer.includes(`${path.sep}@excalidraw${path.sep}`) || /\/en-[^/]*\.js$/.test(args.path)) return undefined;
      return { path: args.path, namespace: 'no-locale' };
    });
    b.onLoad({ filter: /.*/, namespace: 'no-locale' }, () => ({ contents: 'export default {};', loader: 'js' }));
  },
};

// Excalidraw lists a CDN after EXCALIDRAW_ASSET_PATH for every font, and the browser asks it
// (the page's policy then refuses): its fallback becomes our own path too.
const noCdn = {
  name: 'excalidraw-no-cdn',
  setup(b) {
    b.onLoad({ filter: /@excalidraw[\\/]excalidraw[\\/]dist[\\/].*\.js$/ }, (args) => {
      const text = fs.readFileSync(args.path, 'utf8');
      const cdn = /`https:\/\/esm\.sh\/\$\{[^;]*?"@excalidraw\/excalidraw"\}\/dist\/prod\/`/g;
      if (!cdn.test(text)) return undefined;
      return { contents: text.replace(cdn, '(typeof window.EXCALIDRAW_ASSET_PATH=="string"?window.EXCALIDRAW_ASSET_PATH:"./")'), loader: 'js' };
    });
  },
};

// One file per entry (no code splitting): with Mermaid and the other locales left out, what
// Excalidraw imports dynamically is small enough to come along.
for (const [name, entry] of [
  ['whiteboard', 'lazy.ts'],
  ['pdf', 'pdf.ts'],
]) {
  await esbuild.build({
    ...common,
    entryPoints: { [name]: path.join(src, 'whiteboard', entry) },
    outdir: lazy,
    format: 'esm',
    // Excalidraw's package exports only under these conditions.
    conditions: [dev ? 'development' : 'production'],
    alias: { '@excalidraw/mermaid-to-excalidraw': path.join(src, 'whiteboard', 'no-mermaid.ts') },
    plugins: [englishOnly, noCdn],
    platform: 'browser',
    loader: { '.woff2': 'file', '.ttf': 'file', '.png': 'file', '.svg': 'file' },
    define: { 'process.env.NODE_ENV': dev ? '"development"' : '"production"', 'process.env.IS_PREACT': '"false"' },
  });
}
const exDist = path.join(root, 'node_modules', '@excalidraw', 'excalidraw', 'dist', 'prod', 'fonts');
for (const family of fs.readdirSync(exDist)) {
  // Xiaolai (Chinese, Japanese and Korean hand-drawn glyphs) is 13 MB; text in those scripts
  // falls back to the system's fonts.
  if (family === 'Xiaolai') continue;
  fs.cpSync(path.join(exDist, family), path.join(lazy, 'fonts', family), { recursive: true });
}
const pdfjsDist = path.join(root, 'node_modules', 'pdfjs-dist');
fs.copyFileSync(path.join(pdfjsDist, 'build', 'pdf.worker.min.mjs'), path.join(lazy, 'pdf.worker.min.mjs'));
fs.cpSync(path.join(pdfjsDist, 'standard_fonts'), path.join(lazy, 'pdf-fonts'), { recursive: true });

const lkDist = path.join(root, 'node_modules', 'livekit-client', 'dist');
fs.copyFileSync(path.join(lkDist, 'livekit-client.e2ee.worker.js'), path.join(assets, 'worker', 'livekit-client.e2ee.worker.js'));
fs.copyFileSync(path.join(src, 'favicon.svg'), path.join(dist, 'favicon.svg'));
fs.copyFileSync(path.join(src, 'index.html'), path.join(dist, 'index.html'));

// Sanity: the page must not reference anything absolute, and every asset it names must exist.
const html = fs.readFileSync(path.join(dist, 'index.html'), 'utf8');
for (const m of html.matchAll(/(?:src|href)="([^"]+)"/g)) {
  const ref = m[1];
  if (!ref.startsWith('./')) throw new Error(`index.html references a non-relative URL: ${ref}`);
  if (!fs.existsSync(path.join(dist, ref))) throw new Error(`index.html references a missing file: ${ref}`);
}

const size = (f) => fs.statSync(f).size;
const list = [];
const walk = (d) => {
  for (const e of fs.readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    if (e.isDirectory()) walk(p);
    else list.push(p);
  }
};
walk(dist);
for (const f of list.sort()) console.log(`${String(size(f)).padStart(9)}  ${path.relative(root, f)}`);
void js;
void css;
