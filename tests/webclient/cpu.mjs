// CPU time of a process tree and of the machine, from /proc, for the benchmark (bench.mjs).

import fs from 'node:fs';

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// CPU time of a process tree, from /proc (utime + stime, in clock ticks; USER_HZ = 100 on Linux)

export const CLK_TCK = 100;

function procStat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // rest[0] = state (field 3); ppid = field 4; utime = 14; stime = 15
    return { ppid: Number(rest[1]), utime: Number(rest[11]), stime: Number(rest[12]), comm: s.slice(s.indexOf('(') + 1, s.lastIndexOf(')')) };
  } catch {
    return null;
  }
}

/** Map pid → CPU ticks (utime + stime) of `root` and all its descendants, now. */
export function treeCpu(root) {
  const all = new Map();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const st = procStat(Number(e));
    if (st) all.set(Number(e), st);
  }
  const kids = new Map();
  for (const [pid, st] of all) {
    if (!kids.has(st.ppid)) kids.set(st.ppid, []);
    kids.get(st.ppid).push(pid);
  }
  const out = new Map();
  const stack = [root];
  while (stack.length) {
    const p = stack.pop();
    const st = all.get(p);
    if (!st) continue;
    out.set(p, { ticks: st.utime + st.stime, comm: st.comm, kind: chromeKind(p) });
    for (const k of kids.get(p) ?? []) stack.push(k);
  }
  return out;
}

/** Chromium's process kind from its command line: browser, renderer, gpu-process, utility:<sub-type>, zygote… */
function chromeKind(pid) {
  try {
    const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').split(/[\0 ]/); // Chromium rewrites its title: spaces, not NULs
    const type = args.find((a) => a.startsWith('--type='))?.slice(7);
    if (!type) return 'browser';
    const sub = args.find((a) => a.startsWith('--utility-sub-type='))?.slice(19);
    return sub ? `utility:${sub.split('.').slice(-2).join('.')}` : type;
  } catch {
    return '?';
  }
}

/** CPU seconds per process kind between two `treeCpu` snapshots. */
export function cpuByKind(a, b) {
  const out = {};
  for (const [pid, x] of b) out[x.kind] = (out[x.kind] ?? 0) + (x.ticks - (a.get(pid)?.ticks ?? 0)) / CLK_TCK;
  return out;
}

/** CPU seconds used by the tree between two `treeCpu` snapshots (processes born in between count from 0). */
export function cpuBetween(a, b) {
  let ticks = 0;
  for (const [pid, x] of b) ticks += x.ticks - (a.get(pid)?.ticks ?? 0);
  return ticks / CLK_TCK;
}

/** Busy CPU seconds of the whole machine from /proc/stat (user+nice+system+irq+softirq+steal). */
export function machineBusy() {
  const l = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = l;
  return (user + nice + system + irq + softirq + steal) / CLK_TCK;
}
