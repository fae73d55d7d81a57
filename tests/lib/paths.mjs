// Where things are: the repository, the binaries under test (ENCLAVE_BIN and friends), the
// packages the workspace installed (tests/node_modules, hoisted by npm).

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** tests/ (the workspace root). */
export const testsRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const repoRoot = path.resolve(testsRoot, '..');

/** A binary named by `envVar`, else target/debug/<name> of this repository, as an absolute path. */
export function binFromEnv(envVar, name) {
  const fromEnv = process.env[envVar];
  return fromEnv ? path.resolve(fromEnv) : path.join(repoRoot, 'target', 'debug', process.platform === 'win32' ? `${name}.exe` : name);
}

/** The server under test (ENCLAVE_BIN, default target/debug/enclave). */
export const ENCLAVE_BIN = binFromEnv('ENCLAVE_BIN', 'enclave');

/** Throws a message that says how to get the binary when `bin` does not exist. */
export function requireBinary(bin, label = 'enclave', how = "run 'cargo build -p enclave' in the repository root first, or set ENCLAVE_BIN") {
  if (!fs.existsSync(bin)) throw new Error(`${label} binary not found at ${bin}: ${how}`);
}

/**
 * The directory of the installed package `name`, looked up like Node does from `fromDir` upwards
 * (npm hoists the suites' dependencies to tests/node_modules). Throws a message that says to run
 * `npm ci --prefix tests` when it is not installed.
 */
export function packageDir(name, fromDir = testsRoot) {
  for (let dir = path.resolve(fromDir); ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', ...name.split('/'));
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (dir === path.dirname(dir) || dir === path.dirname(testsRoot)) break;
  }
  throw new Error(`the package ${name} is not installed: run \`npm ci --prefix tests\` in the repository root first`);
}

/** The installed version of package `name` (read from disk: not every package exports ./package.json). */
export function packageVersion(name, fromDir = testsRoot) {
  return JSON.parse(fs.readFileSync(path.join(packageDir(name, fromDir), 'package.json'), 'utf8')).version;
}
