/**
 * Linearity benchmark of the parsers that read outside input (issue 10 item 3): each hostile pattern at 240 KB, 1 MB
 * and 4 MB, timed once per size; prints ms and µs per KB so a quadratic parser shows as a growing µs/KB column.
 * Run: node build/test/bench/parsers.js [--sizes 240,1024,4096] [--target name]
 */
import { performance } from 'node:perf_hooks';
import { TARGETS, HOSTILE } from '../fuzz/targets';

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opt = (k: string): string | undefined => { const i = argv.indexOf(k); return i >= 0 ? argv[i + 1] : undefined; };
  const sizes = (opt('--sizes') ?? '240,1024,4096').split(',').map((s) => Number(s) * 1024);
  const only = opt('--target');
  console.log(['target', 'pattern', ...sizes.map((s) => `${s / 1024}KB ms`), 'µs/KB at max'].join('\t'));
  for (const h of HOSTILE) {
    for (const name of h.targets) {
      if (only && name !== only) continue;
      const t = TARGETS.find((x) => x.name === name);
      if (!t) throw new Error(`no target ${name}`);
      const row: string[] = [name, h.name];
      let last = 0;
      for (const size of sizes) {
        const input = h.make(size);
        const t0 = performance.now();
        try { await t.run(input); } catch (e) { if (!t.clean(e)) throw e; }
        last = performance.now() - t0;
        row.push(last.toFixed(1));
      }
      row.push((last * 1000 / (sizes[sizes.length - 1] / 1024)).toFixed(1));
      console.log(row.join('\t'));
    }
  }
}
void main();
