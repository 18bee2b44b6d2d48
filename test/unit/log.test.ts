import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { log, Logger, Level, memoryAppender } from '../../src/core/log';
import { createRunner, runOk, CommandError } from '../../src/core/exec';
import { logFileAppender, devConsoleAppender, setupAgent, ensureExtensionLogDir } from '../../src/cli/setup';
import { parseArgs } from '../../src/cli/args';

const PASSWORD = 'S3cr3t-Pa55word!';

function tmp(): string { return fs.mkdtempSync(path.join(os.tmpdir(), 'waagent-log-')); }

test('a registered secret never reaches an appender; levels filter per appender', () => {
  const l = new Logger();
  const all = memoryAppender(Level.VERBOSE);
  const info = memoryAppender(Level.INFO);
  l.addAppender(all); l.addAppender(info);
  l.addSecret(PASSWORD);
  l.verbose(`user password is ${PASSWORD}`);
  l.info(`again: ${PASSWORD}${PASSWORD}`);
  l.info('<wa:UserPassword>other secret</wa:UserPassword>');
  assert.equal(all.lines.length, 3);
  assert.equal(info.lines.length, 2);
  for (const line of all.lines) {
    assert.ok(!line.includes(PASSWORD), line);
    assert.ok(!line.includes('other secret'), line);
  }
  assert.match(all.lines[0], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z VERBOSE Daemon user password is \*{5}\n$/);
});

test('the runner redacts secrets from the logged argv and output; stdin carries the secret', async () => {
  const mem = memoryAppender(Level.VERBOSE);
  log.addAppender(mem);
  try {
    const run = createRunner({ PATH: process.env.PATH ?? '/usr/bin:/bin' });
    // The secret goes in on stdin and comes back on stdout: the caller gets it, the log does not.
    const r = await run(['cat'], { input: PASSWORD, secrets: [PASSWORD] });
    assert.equal(r.stdout, PASSWORD);
    // On argv (never do this; here it proves the redaction of what is logged).
    await run(['echo', `--password=${PASSWORD}`], { secrets: [PASSWORD] });
    log.addSecret(PASSWORD);
    await assert.rejects(runOk(run, ['sh', '-c', `echo ${PASSWORD} >&2; exit 3`]), (e: Error) => e instanceof CommandError && !e.message.includes(PASSWORD) && /exit code 3/.test(e.message));
    const text = mem.lines.join('');
    assert.ok(text.includes('Run: cat'));
    assert.ok(text.includes('Run: echo --password=*****'));
    assert.ok(!text.includes(PASSWORD), text);
  } finally {
    log.removeAppender(mem);
  }
});

test('the log file appender re-opens per line: a rotated (moved) file is re-created, mode 0644', () => {
  const dir = tmp();
  const f = path.join(dir, 'waagent.log');
  const a = logFileAppender(f, Level.INFO);
  a.write('one\n');
  fs.renameSync(f, `${f}.1`);
  a.write('two\n');
  assert.equal(fs.readFileSync(`${f}.1`, 'utf8'), 'one\n');
  assert.equal(fs.readFileSync(f, 'utf8'), 'two\n');
  assert.equal(fs.statSync(f).mode & 0o777, 0o644 & ~process.umask());
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the console appender appends per line and fails loudly on a missing device (the logger swallows it)', () => {
  const dir = tmp();
  const dev = path.join(dir, 'console');
  fs.writeFileSync(dev, '');
  const a = devConsoleAppender(dev);
  a.write('x\n'); a.write('y\n');
  assert.equal(fs.readFileSync(dev, 'utf8'), 'x\ny\n');
  const missing = devConsoleAppender(path.join(dir, 'nope', 'console'));
  assert.throws(() => missing.write('z\n'));
  const l = new Logger(); l.addAppender(missing);
  l.info('does not throw');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('Extension.LogDir: created 0755; a file in its place is an error', () => {
  const dir = tmp();
  ensureExtensionLogDir(path.join(dir, 'a/azure'));
  assert.equal(fs.statSync(path.join(dir, 'a/azure')).mode & 0o777, 0o755);
  ensureExtensionLogDir(path.join(dir, 'a/azure')); // exists: fine
  fs.writeFileSync(path.join(dir, 'file'), '');
  assert.throws(() => ensureExtensionLogDir(path.join(dir, 'file')), /not a directory/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('setupAgent: log file level from Logs.Verbose, FIPS in the children environment (D25)', async () => {
  const dir = tmp();
  const conf = path.join(dir, 'waagent.conf');
  fs.writeFileSync(conf, `Logs.Console=n\nLogs.Verbose=y\nOS.EnableFIPS=y\nExtension.LogDir=${dir}/azure\nLib.Dir=${dir}/lib\n`);
  const parsed = parseArgs(['-show-configuration', `-configuration-path:${conf}`, `--log-file=${dir}/w.log`], fs.existsSync);
  assert.ok(parsed.ok);
  const before = process.env.OPENSSL_FIPS;
  try {
    const ctx = await setupAgent(parsed.opts, { logToStderr: true });
    assert.equal(ctx.libDir, `${dir}/lib`);
    assert.equal(ctx.conf.source, conf);
    ctx.log.verbose('verbose line');
    const r = await ctx.os.run(['env']);
    assert.match(r.stdout, /^OPENSSL_FIPS=1$/m);
    assert.match(fs.readFileSync(`${dir}/w.log`, 'utf8'), /VERBOSE Daemon verbose line/);
  } finally {
    log.clearAppenders();
    if (before === undefined) delete process.env.OPENSSL_FIPS; else process.env.OPENSSL_FIPS = before;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
