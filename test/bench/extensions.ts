/**
 * Extension handling benchmark in the VM bed (issue 8 targets), production-like settings (6 s period, INFO logs):
 *   - from the poll that sees a new incarnation ("Fetching goal state incarnation N" in the agent log) to the enable
 *     command started ("[<N>-<V>] Enable:"), and to `success` for that seqNo in the status blob the simulator holds;
 *     also from the incarnation's publication to that upload (end to end, including the wait for the next poll);
 *     the first round installs (download + unzip + install + enable), the later ones are "new settings → enable";
 *   - the agent's own RSS (processes of the agent, not the extension's shell) idle, while an enable runs, and after;
 *   - requests per idle poll by kind, before any extension and with an enabled one.
 * Usage (root; compile the tests and build the executable first):
 *   node build/test/bench/extensions.js [--rounds N] [--json]
 */
import { readFileSync } from 'node:fs';
import { createVm, defaultWaagentConf, vmUnavailableReason, type Vm } from '../vm/vm';
import { defaultScenario, type Scenario } from '../fabric/scenario';
import { fakeExtensionPackage } from '../fabric/fake-extension';
import { N, ext, entry, publish, startDaemon, sleep, agentLog } from '../vm/ext-helpers';

const argv = process.argv.slice(2);
const rounds = Number(argv[argv.indexOf('--rounds') + 1] || 5) || 5;
const asJson = argv.includes('--json');

function cmdline(pid: number): string { try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '); } catch { return ''; } }
function rssKb(pid: number, key = 'VmRSS'): number {
  try { return Number(new RegExp(`${key}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0); } catch { return 0; }
}
/** RSS of the agent's own processes: the waagent executable, not the extension's shell or its children. */
function agentRssKb(vm: Vm, key = 'VmRSS'): number {
  return vm.agentPids().filter((p) => { const c = cmdline(p); return c.includes('waagent') && !c.includes('fake.sh') && !c.includes('agent-runner') && !/^(\/bin\/)?(sh|sleep) /.test(c); })
    .reduce((a, p) => a + rssKb(p, key), 0);
}
async function sampleRss(vm: Vm, ms: number): Promise<{ minKb: number; maxKb: number; anonMaxKb: number }> {
  let min = Infinity; let max = 0; let anon = 0;
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const r = agentRssKb(vm);
    if (r) { min = Math.min(min, r); max = Math.max(max, r); anon = Math.max(anon, agentRssKb(vm, 'RssAnon')); }
    await sleep(100);
  }
  return { minKb: min, maxKb: max, anonMaxKb: anon };
}

function logTime(line: string): number { return Date.parse(line.slice(0, 24)); }

/** Times of the poll that fetched incarnation `inc` and of the first enable after it, from the agent log. */
function fromLog(vm: Vm, inc: number): { pollAt?: number; enableAt?: number; enableMs?: number } {
  const lines = agentLog(vm).split('\n');
  const i = lines.findIndex((l) => l.includes(`Fetching goal state incarnation ${inc}`));
  if (i < 0) return {};
  const j = lines.findIndex((l, k) => k > i && l.includes(`[${N}-`) && l.includes('] Enable:'));
  const ran = lines.slice(j + 1).map((l) => /\] Enable succeeded in (\d+) ms/.exec(l)).find(Boolean);
  return { pollAt: logTime(lines[i]), enableAt: j > 0 ? logTime(lines[j]) : undefined, enableMs: ran ? Number(ran[1]) : undefined };
}

async function waitSuccess(vm: Vm, seq: number, ms = 60_000): Promise<number | undefined> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const e = entry(vm);
    if (e?.runtimeSettingsStatus?.sequenceNumber === seq && e.runtimeSettingsStatus.settingsStatus.status.status === 'success') return Date.now();
    await sleep(10);
  }
  return undefined;
}

function requestsPerPoll(vm: Vm, from: number, to: number): Record<string, number> {
  const reqs = vm.simulator.requests().filter((r) => r.time >= from && r.time < to);
  const polls = reqs.filter((r) => r.kind === 'goalstate').length || 1;
  const by: Record<string, number> = {};
  for (const r of reqs) by[r.kind] = (by[r.kind] ?? 0) + 1;
  for (const k of Object.keys(by)) by[k] = Number((by[k] / polls).toFixed(2));
  return by;
}

async function main(): Promise<void> {
  const why = vmUnavailableReason();
  if (why) { console.error(`bench: ${why}`); process.exit(1); }
  const sc: Scenario = defaultScenario();
  sc.extensionPackages = [fakeExtensionPackage(N, '1.0.0')];
  const vm = await createVm({ scenario: sc, waagentConf: defaultWaagentConf({ 'Extensions.GoalStatePeriod': '6', 'Logs.Verbose': 'n' }) });
  const daemon = startDaemon(vm, 900_000);
  const out: Record<string, unknown> = {};
  try {
    for (let i = 0; i < 600 && !(vm.simulator.summary()?.readyCount); i++) await sleep(100);
    await sleep(8000);
    let t0 = Date.now();
    const idleBefore = await sampleRss(vm, 13_000);
    out.requestsPerIdlePollWithoutExtensions = requestsPerPoll(vm, t0, Date.now());
    const rs: { round: number; kind: string; pollToEnableMs?: number; enableRunMs?: number; pollToSuccessMs?: number; publishToSuccessMs?: number }[] = [];
    for (let k = 0; k < rounds; k++) {
      const publishedAt = Date.now();
      const inc = publish(vm, sc, [ext({ seqNo: k, fake: 'status=success' })]);
      const successAt = await waitSuccess(vm, k);
      await sleep(300);
      const { pollAt, enableAt, enableMs } = fromLog(vm, inc);
      rs.push({
        round: k + 1, kind: k === 0 ? 'install+enable' : 'enable (new settings)',
        pollToEnableMs: pollAt && enableAt ? enableAt - pollAt : undefined, enableRunMs: enableMs,
        pollToSuccessMs: pollAt && successAt ? successAt - pollAt : undefined,
        publishToSuccessMs: successAt ? successAt - publishedAt : undefined,
      });
      if (!asJson) console.log(JSON.stringify(rs[rs.length - 1]));
      await sleep(1000 + Math.random() * 5000); // publish at different points of the poll period
    }
    out.rounds = rs;
    const med = (xs: (number | undefined)[]): number | undefined => {
      const s = xs.filter((x): x is number => x !== undefined).sort((a, b) => a - b);
      return s.length ? s[Math.floor((s.length - 1) / 2)] : undefined;
    };
    const later = rs.slice(1);
    out.median = {
      enableOnlyPollToEnableMs: med(later.map((r) => r.pollToEnableMs)), enableOnlyPollToSuccessMs: med(later.map((r) => r.pollToSuccessMs)),
      enableOnlyEnableRunMs: med(later.map((r) => r.enableRunMs)),
      enableOnlyPublishToSuccessMs: med(later.map((r) => r.publishToSuccessMs)),
    };
    // requests per idle poll with an enabled extension
    await sleep(7000);
    t0 = Date.now();
    await sleep(13_000);
    out.requestsPerIdlePollWithExtension = requestsPerPoll(vm, t0, Date.now());
    // RSS while an enable runs (10 s) and after
    publish(vm, sc, [ext({ seqNo: rounds, fake: 'enable.sleep=10 status=success' })]);
    for (let i = 0; i < 200 && !agentLog(vm).includes(`fake.sh enable`); i++) await sleep(50);
    const during = await sampleRss(vm, 8000);
    await waitSuccess(vm, rounds, 30_000);
    await sleep(3000);
    const after = await sampleRss(vm, 10_000);
    await sleep(40_000);
    const minuteLater = await sampleRss(vm, 5_000);
    const mib = (kb: number): number => Number((kb / 1024).toFixed(1));
    out.rssMiB = {
      idle: mib(idleBefore.maxKb), idleAnon: mib(idleBefore.anonMaxKb), duringEnableMax: mib(during.maxKb), duringEnableAnon: mib(during.anonMaxKb),
      after: mib(after.maxKb), afterAnon: mib(after.anonMaxKb), oneMinuteLater: mib(minuteLater.maxKb), oneMinuteLaterAnon: mib(minuteLater.anonMaxKb),
    };
  } finally {
    await daemon.stop();
    await vm.destroy({ removeFiles: true });
  }
  console.log(asJson ? JSON.stringify(out, null, 1) : `\n${JSON.stringify(out, null, 1)}`);
}

void main().catch((e) => { console.error(e); process.exit(1); });
