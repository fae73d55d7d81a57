// Tools of the recording test (recording.test.mjs): the external programs it needs (ffmpeg,
// ffprobe, nginx), a local nginx with the RTMP module that receives and records broadcasts, and
// what ffprobe/ffmpeg tell about a recording (streams, tone levels, frame statistics). Every
// program runs bounded and is stopped by its own pid.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { Child, freeTcpPort } from '@enclave-tests/lib';
import { runTool } from './harness.mjs';

// nginx's RTMP module: Debian's libnginx-mod-rtmp puts it here (NGINX_RTMP_MODULE overrides).
const RTMP_MODULE_CANDIDATES = [
  process.env.NGINX_RTMP_MODULE,
  '/usr/lib/nginx/modules/ngx_rtmp_module.so',
  '/usr/share/nginx/modules/ngx_rtmp_module.so',
].filter(Boolean);
export const NGINX_BIN = process.env.NGINX_BIN || 'nginx';

// ---------------------------------------------------------------------------------------------
// Tools and nginx

export async function requireTool(cmd, args, apt) {
  let r;
  try {
    r = await runTool(cmd, args, { timeoutMs: 15_000 });
  } catch (e) {
    throw new Error(`${cmd} is required by the recording tests and could not be run (${e.message}); install Debian's ${apt} (CI does: .ci/run, scripts/test)`);
  }
  const text = `${r.stdout.toString()}${r.stderr}`;
  if (r.code !== 0) throw new Error(`\`${cmd} ${args.join(' ')}\` failed (exit ${r.code}): ${text.slice(0, 500)}`);
  return text.split('\n')[0];
}

export function tcpOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.setTimeout(1000, () => done(false));
  });
}

/**
 * nginx with the RTMP module on a free port of 127.0.0.1, its configuration, logs and recordings
 * in `<workDir>/nginx`; one process in the foreground, stopped by its pid (`stop()`). `lines(key)`,
 * `access(key)` and `recordings(key)` tell what it saw of the stream `key`.
 */
export async function startNginx(workDir) {
  const module = RTMP_MODULE_CANDIDATES.find((p) => fs.existsSync(p));
  if (!module) {
    throw new Error(
      `nginx's RTMP module is required by the RTMP tests and was not found (looked at ${RTMP_MODULE_CANDIDATES.join(', ')}); ` +
        'install Debian\'s libnginx-mod-rtmp (or set NGINX_RTMP_MODULE)',
    );
  }
  const dir = path.join(workDir, 'nginx');
  const recDir = path.join(dir, 'rec');
  fs.mkdirSync(recDir, { recursive: true });
  const port = await freeTcpPort();
  const errorLog = path.join(dir, 'error.log');
  const accessLog = path.join(dir, 'rtmp-access.log');
  const conf = path.join(dir, 'nginx.conf');
  // No http block: nothing needs Debian's /var/lib/nginx temp dirs. The error log at `info`
  // shows every RTMP connect/publish/play as it happens; the RTMP access log one line per
  // finished session.
  fs.writeFileSync(
    conf,
    `load_module ${module};
daemon off;
master_process off;
pid ${path.join(dir, 'nginx.pid')};
error_log ${errorLog} info;
events { worker_connections 64; }
rtmp {
  access_log ${accessLog};
  server {
    listen 127.0.0.1:${port};
    application live {
      live on;
      record all;
      record_path ${recDir};
      record_unique on;
    }
  }
}
`,
  );
  const proc = new Child({ label: 'nginx', cmd: NGINX_BIN, args: ['-c', conf, '-p', `${dir}/`, '-e', errorLog], graceMs: 5_000 }).start();
  try {
    await proc.ready(10_000, `listening on 127.0.0.1:${port}`, () => tcpOpen(port));
  } catch (e) {
    await proc.stop();
    if (proc.spawnError) throw new Error(`nginx is required by the RTMP tests and could not be started (${proc.spawnError.message}); install Debian's nginx-light`);
    throw new Error(`${e.message}\n${readOr(errorLog)}`);
  }
  return {
    proc,
    port,
    dir,
    recDir,
    errorLog,
    accessLog,
    stop: () => proc.stop(),
    /** nginx's error-log lines about RTMP sessions on `key` (connect/publish/play by name). */
    lines: (key) =>
      readOr(errorLog)
        .split('\n')
        .filter((l) => l.includes(`name='${key}'`)),
    access: (key) =>
      readOr(accessLog)
        .split('\n')
        .filter((l) => l.includes(`"${key}"`)),
    recordings: (key) => fs.readdirSync(recDir).filter((f) => f.startsWith(`${key}-`) || f === `${key}.flv`),
  };
}

export const readOr = (file, dflt = '') => {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return dflt;
  }
};

// ---------------------------------------------------------------------------------------------
// Media analysis with ffprobe / ffmpeg

export async function ffprobe(target, entries, { extra = [], timeoutMs = 20_000 } = {}) {
  const r = await runTool('ffprobe', ['-v', 'error', ...extra, '-show_entries', entries, '-of', 'json', target], { timeoutMs });
  if (r.timedOut) throw new Error(`ffprobe ${target}: no answer within ${timeoutMs} ms (stderr: ${r.stderr.slice(-500)})`);
  let json;
  try {
    json = JSON.parse(r.stdout.toString());
  } catch {
    json = null;
  }
  assert.ok(r.code === 0 && json, `ffprobe ${target}: exit ${r.code}, stderr ${r.stderr.slice(-800)}, stdout ${r.stdout.toString().slice(0, 500)}`);
  return { ...json, ms: r.ms, stderr: r.stderr };
}

export const kinds = (probe) => (probe.streams ?? []).map((s) => s.codec_type).sort();

/**
 * Mean amplitude (0..1 of full scale) of each frequency in `freqs` over [from, from + dur) s of
 * the file's first audio stream, by a Hann-windowed Goertzel filter on 100 ms windows.
 */
export async function toneLevels(file, from, dur, freqs) {
  const r = await runTool(
    'ffmpeg',
    ['-v', 'error', '-ss', String(from), '-t', String(dur), '-i', file, '-map', '0:a:0', '-ac', '1', '-ar', '48000', '-f', 's16le', '-'],
    { timeoutMs: 30_000 },
  );
  assert.ok(r.code === 0 && !r.timedOut, `ffmpeg audio extraction from ${file}: exit ${r.code}, ${r.stderr.slice(-500)}`);
  const buf = Buffer.from(r.stdout); // aligned copy
  const pcm = new Int16Array(buf.buffer, buf.byteOffset, Math.floor(buf.length / 2));
  const N = 4800;
  const w = Float64Array.from({ length: N }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (N - 1)));
  const wSum = w.reduce((a, b) => a + b, 0);
  const out = { seconds: +(pcm.length / 48_000).toFixed(2) };
  for (const f of freqs) {
    const coeff = 2 * Math.cos((2 * Math.PI * f) / 48_000);
    let total = 0;
    let windows = 0;
    for (let start = 0; start + N <= pcm.length; start += N) {
      let s1 = 0;
      let s2 = 0;
      for (let i = 0; i < N; i += 1) {
        const s0 = (pcm[start + i] / 32768) * w[i] + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
      }
      const power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
      total += (2 * Math.sqrt(Math.max(0, power))) / wSum;
      windows += 1;
    }
    out[f] = windows ? +(total / windows).toFixed(4) : 0;
  }
  return out;
}

/** Luma statistics of one frame per second of the file's first video stream. */
export async function frameStats(file, width, height) {
  const r = await runTool(
    'ffmpeg',
    ['-v', 'error', '-i', file, '-map', '0:v:0', '-vf', 'fps=1', '-f', 'rawvideo', '-pix_fmt', 'gray', '-'],
    { timeoutMs: 60_000 },
  );
  assert.ok(r.code === 0 && !r.timedOut, `ffmpeg frame extraction from ${file}: exit ${r.code}, ${r.stderr.slice(-500)}`);
  const size = width * height;
  const frames = [];
  for (let off = 0; off + size <= r.stdout.length; off += size) {
    let sum = 0;
    let sq = 0;
    let n = 0;
    let grad = 0;
    for (let y = 0; y < height; y += 2) {
      const row = off + y * width;
      for (let x = 1; x < width; x += 2) {
        const v = r.stdout[row + x];
        sum += v;
        sq += v * v;
        grad += Math.abs(v - r.stdout[row + x - 1]);
        n += 1;
      }
    }
    const mean = sum / n;
    frames.push({ mean: +mean.toFixed(1), variance: Math.round(sq / n - mean * mean), gradient: +(grad / n).toFixed(2) });
  }
  return frames;
}
