// `npm test`: bundles test/*.test.ts (and the src modules they import) with esbuild for Node,
// then runs them with Node's own test runner. The bundles land under node_modules/.cache, so
// nothing is written into the source tree.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.join(root, 'node_modules', '.cache', 'enclave-web-tests');
const entries = fs
  .readdirSync(path.join(root, 'test'))
  .filter((f) => f.endsWith('.test.ts'))
  .sort()
  .map((f) => path.join(root, 'test', f));
if (entries.length === 0) throw new Error('no test files under test/');

fs.rmSync(outdir, { recursive: true, force: true });
await esbuild.build({
  entryPoints: entries,
  outdir,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: 'inline',
  logLevel: 'warning',
});
const files = entries.map((f) => path.join(outdir, path.basename(f).replace(/\.ts$/, '.mjs')));
const r = spawnSync(process.execPath, ['--enable-source-maps', '--test', ...files], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
