/**
 * The fuzz campaign (issue 10): mutates the seeds of every target in test/fuzz/targets.ts (byte flips, inserts,
 * deletions, duplications, splices between seeds, format tokens, repetition that grows an input) plus random
 * generators, and checks each input: no error other than the parser's own clean type, no hang (a watchdog kills the
 * run when one input takes more than `--hang-ms`), and time per input within `base + perKb × size`.
 * Run: node build/test/fuzz/fuzz.js --iterations N [--target name] [--seed S] [--json]
 */
import { performance } from 'node:perf_hooks';
import { TARGETS, type Target } from './targets';
import { log } from '../../src/core/log';

/** The parsers register passwords and keys as log secrets; a campaign of 10⁶ inputs must not keep them all. */
const forgetSecrets = (): void => (log as unknown as { secrets: Set<string> }).secrets.clear();

/** A small deterministic PRNG (xorshift32), so a failure can be replayed with `--seed`. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 0x100000000; };
}

/** One mutation of `input` (several stacked operations). */
export function mutate(input: Buffer, r: () => number, others: Buffer[], tokens: string[], maxBytes: number): Buffer {
  let b = Buffer.from(input);
  const n = 1 + Math.floor(r() * 4);
  const pos = (): number => Math.floor(r() * (b.length + 1));
  for (let k = 0; k < n; k++) {
    const op = Math.floor(r() * 10);
    if (op === 0 && b.length) { const i = pos() % b.length; b[i] ^= 1 << Math.floor(r() * 8); }
    else if (op === 1 && b.length) { const i = pos() % b.length; b[i] = Math.floor(r() * 256); }
    else if (op === 2) { const i = pos(); b = Buffer.concat([b.subarray(0, i), Buffer.from([Math.floor(r() * 256)]), b.subarray(i)]); }
    else if (op === 3 && b.length) { const i = pos(); const len = Math.floor(r() * Math.min(64, b.length - Math.min(i, b.length))); b = Buffer.concat([b.subarray(0, i), b.subarray(i + len)]); }
    else if (op === 4 && b.length) { const i = pos(); const len = 1 + Math.floor(r() * 32); const chunk = b.subarray(i, i + len); b = Buffer.concat([b.subarray(0, i), chunk, b.subarray(i)]); }
    else if (op === 5 && others.length) { const o = others[Math.floor(r() * others.length)]; const i = pos(); const j = Math.floor(r() * (o.length + 1)); b = Buffer.concat([b.subarray(0, i), o.subarray(j, j + Math.floor(r() * 256))]); }
    else if (op === 6 && tokens.length) { const i = pos(); b = Buffer.concat([b.subarray(0, i), Buffer.from(tokens[Math.floor(r() * tokens.length)], 'utf8'), b.subarray(i)]); }
    else if (op === 7) { b = b.subarray(0, pos()); }
    else if (op === 8 && b.length) { // repeat a chunk many times: grows the input, finds super-linear paths
      const i = pos() % b.length; const len = 1 + Math.floor(r() * 16); const times = 1 + Math.floor(r() * (r() < 0.1 ? 20000 : 200));
      const chunk = b.subarray(i, i + len);
      b = Buffer.concat([b.subarray(0, i), Buffer.concat(Array(times).fill(chunk)), b.subarray(i)]);
    } else if (op === 9 && b.length >= 4) { // an interesting integer (lengths, counts, offsets)
      const i = pos() % (b.length - 3); const v = [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0xffffffff][Math.floor(r() * 8)];
      if (r() < 0.5) b.writeUInt32BE(v >>> 0, i); else b.writeUInt32LE(v >>> 0, i);
    }
    if (b.length > maxBytes) b = b.subarray(0, maxBytes);
  }
  return b;
}

/** A generated input (not derived from a seed): random bytes, random tokens, or a token repeated. */
export function generate(r: () => number, tokens: string[]): Buffer {
  const kind = Math.floor(r() * 3);
  if (kind === 0 || !tokens.length) { const b = Buffer.alloc(Math.floor(r() * 4096)); for (let i = 0; i < b.length; i++) b[i] = Math.floor(r() * 256); return b; }
  if (kind === 1) return Buffer.from(Array.from({ length: Math.floor(r() * 200) }, () => tokens[Math.floor(r() * tokens.length)]).join(''), 'utf8');
  return Buffer.from(tokens[Math.floor(r() * tokens.length)].repeat(1 + Math.floor(r() * 50000)), 'utf8');
}

export interface TargetResult {
  target: string; inputs: number; clean: number; ok: number; crashes: { input: string; error: string }[];
  maxMs: number; maxMsPerKb: number; /** Over inputs of 64 KB or more (small inputs measure GC pauses more than the parser). */ maxMsPerKbLarge: number; maxBytes: number; slow: { bytes: number; ms: number; input: string }[]; seconds: number;
}

/** The time bound of one input: generous, linear in its size. */
export const boundMs = (bytes: number): number => 250 + 2 * (bytes / 1024);

export async function fuzzTarget(t: Target, iterations: number, seed: number, opts: { keepCrashes?: number } = {}): Promise<TargetResult> {
  const r = rng(seed);
  const seeds = t.seeds();
  const tokens = t.tokens ?? [];
  const maxBytes = t.maxBytes ?? 4 << 20;
  const res: TargetResult = { target: t.name, inputs: 0, clean: 0, ok: 0, crashes: [], maxMs: 0, maxMsPerKb: 0, maxMsPerKbLarge: 0, maxBytes: 0, slow: [], seconds: 0 };
  const t0 = performance.now();
  let current = seeds[0] ?? Buffer.alloc(0);
  for (let i = 0; i < iterations; i++) {
    if (i % 1000 === 999) forgetSecrets();
    const input = seeds.length && r() < 0.97 ? mutate(r() < 0.7 ? seeds[Math.floor(r() * seeds.length)] : current, r, seeds, tokens, maxBytes) : generate(r, tokens);
    if (r() < 0.05) current = input; // random walk: sometimes mutate a mutant
    const s = performance.now();
    try {
      await t.run(input);
      res.ok++;
    } catch (e) {
      if (t.clean(e)) res.clean++;
      else if (res.crashes.length < (opts.keepCrashes ?? 5)) res.crashes.push({ input: input.subarray(0, 4096).toString('base64'), error: (e as Error)?.stack?.split('\n').slice(0, 4).join(' | ') ?? String(e) });
      else res.crashes.push({ input: '', error: '' });
    }
    let ms = performance.now() - s;
    // a slow input is timed again (twice): a GC pause or a busy machine must not pass for a super-linear parser
    for (let k = 0; k < 2 && ms > boundMs(input.length); k++) {
      const s2 = performance.now();
      try { await t.run(input); } catch { /* judged above */ }
      ms = Math.min(ms, performance.now() - s2);
    }
    res.inputs++;
    if (ms > res.maxMs) res.maxMs = ms;
    if (input.length >= 1024 && ms / (input.length / 1024) > res.maxMsPerKb) res.maxMsPerKb = ms / (input.length / 1024);
    if (input.length >= 65536 && ms / (input.length / 1024) > res.maxMsPerKbLarge) res.maxMsPerKbLarge = ms / (input.length / 1024);
    if (input.length > res.maxBytes) res.maxBytes = input.length;
    if (ms > boundMs(input.length) && res.slow.length < 10) res.slow.push({ bytes: input.length, ms: Math.round(ms), input: input.subarray(0, 4096).toString('base64') });
  }
  res.seconds = (performance.now() - t0) / 1000;
  return res;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opt = (k: string): string | undefined => { const i = argv.indexOf(k); return i >= 0 ? argv[i + 1] : undefined; };
  const iterations = Number(opt('--iterations') ?? 10000);
  const only = opt('--target');
  const seed = Number(opt('--seed') ?? Date.now() % 0xffffffff);
  const hangMs = Number(opt('--hang-ms') ?? 30_000);
  const targets = only ? TARGETS.filter((t) => only.split(',').includes(t.name)) : TARGETS;
  if (!targets.length) throw new Error(`no target ${only}; targets: ${TARGETS.map((t) => t.name).join(', ')}`);
  let failed = false;
  for (const t of targets) {
    // a watchdog outside the event loop's reach: a hang in a synchronous parser stops the whole run with a message
    const { Worker } = await import('node:worker_threads');
    const beat = new Int32Array(new SharedArrayBuffer(4));
    const dog = new Worker(`const { workerData: { beat, hangMs, name } } = require('worker_threads'); let last = -1, since = Date.now();
      setInterval(() => { const v = Atomics.load(beat, 0); if (v !== last) { last = v; since = Date.now(); } else if (Date.now() - since > hangMs) { console.error('HANG in target ' + name); process.exit(3); } }, 500);`,
    { eval: true, workerData: { beat, hangMs, name: t.name } });
    dog.unref();
    const timer = setInterval(() => Atomics.add(beat, 0, 1), 200);
    const origRun = t.run.bind(t);
    const wrapped: Target = { ...t, run: (b) => { Atomics.add(beat, 0, 1); return origRun(b); } };
    const res = await fuzzTarget(wrapped, iterations, seed);
    clearInterval(timer);
    await dog.terminate();
    await t.close?.();
    const line = { ...res, crashes: res.crashes.length, firstCrash: res.crashes[0], maxMs: +res.maxMs.toFixed(1), maxMsPerKb: +res.maxMsPerKb.toFixed(3), maxMsPerKbLarge: +res.maxMsPerKbLarge.toFixed(3), seconds: +res.seconds.toFixed(1), seed };
    console.log(JSON.stringify(line));
    if (res.crashes.length || res.slow.length) failed = true;
  }
  process.exit(failed ? 1 : 0);
}

if (require.main === module) void main();
