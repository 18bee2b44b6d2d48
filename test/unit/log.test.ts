import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { log, Logger, Level, memoryAppender, fileAppender, escapeNonAscii, unescapeNonAscii } from '../../src/core/log';
import { createRunner, runOk, CommandError } from '../../src/core/exec';
import { logFileAppender, devConsoleAppender, setupAgent, ensureExtensionLogDir, dropFileAppender } from '../../src/cli/setup';
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

test('the log file appender never follows a symbolic link at the log path', () => {
  const dir = tmp();
  const f = path.join(dir, 'waagent.log');
  const victim = path.join(dir, 'shadow');
  fs.writeFileSync(victim, 'root:x:\n');
  fs.symlinkSync(victim, f);
  const logger = new Logger();
  logger.addAppender(logFileAppender(f, Level.INFO));
  logger.info('planted');
  assert.equal(fs.readFileSync(victim, 'utf8'), 'root:x:\n');
  assert.ok(fs.lstatSync(f).isSymbolicLink());
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the console appender writes in the background, in order, and drops lines for a missing device', async () => {
  const dir = tmp();
  const dev = path.join(dir, 'console');
  fs.writeFileSync(dev, '');
  const a = devConsoleAppender(dev);
  a.write('x\n'); a.write('y\n');
  for (let i = 0; i < 100 && fs.readFileSync(dev, 'utf8') !== 'x\ny\n'; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(fs.readFileSync(dev, 'utf8'), 'x\ny\n');
  a.write('z\n');
  for (let i = 0; i < 100 && fs.readFileSync(dev, 'utf8') !== 'x\ny\nz\n'; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(fs.readFileSync(dev, 'utf8'), 'x\ny\nz\n');
  a.close?.();
  const missing = devConsoleAppender(path.join(dir, 'nope', 'console'));
  assert.doesNotThrow(() => missing.write('z\n'));
  const l = new Logger(); l.addAppender(missing);
  l.info('does not throw');
  await new Promise((r) => setTimeout(r, 20));
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

test('non-ASCII characters are written as \\u escapes: lines are pure ASCII and the escaping reverses', () => {
  const l = new Logger();
  const mem = memoryAppender();
  l.addAppender(mem);
  const msg = 'héllo wörld — 日本 😀 C:\\path';
  l.info(msg);
  const line = mem.lines[0];
  assert.match(line, /INFO Daemon h\\u00e9llo w\\u00f6rld \\u2014 \\u65e5\\u672c \\ud83d\\ude00 C:\\path\n$/);
  assert.ok(/^[\x00-\x7f]*$/.test(line), line);
  const body = line.replace(/^\S+ INFO Daemon /, '').replace(/\n$/, '');
  assert.equal(unescapeNonAscii(body), msg);
  assert.equal(escapeNonAscii('plain ascii'), 'plain ascii');
  assert.equal(unescapeNonAscii(escapeNonAscii('\u0080\uffff\ud800x')), '\u0080\uffff\ud800x');
});

test('a secret with non-ASCII characters is redacted before escaping', () => {
  const l = new Logger();
  const mem = memoryAppender();
  l.addAppender(mem);
  const secret = 'pässwörd-€-😀';
  l.addSecret(secret);
  l.info(`password is ${secret}.`);
  l.info(`<UserPassword>geheim-ß</UserPassword> and ${secret}`);
  const text = mem.lines.join('');
  assert.ok(!text.includes(escapeNonAscii(secret)), text);
  assert.ok(!text.includes('geheim'), text);
  assert.match(mem.lines[0], /password is \*{5}\.\n$/);
  assert.match(mem.lines[1], /<UserPassword>\*{5}<\/UserPassword> and \*{5}\n$/);
});

test('SAS signatures are redacted from URLs, including in XML and JSON text; the rest of the URL stays', () => {
  const l = new Logger();
  const mem = memoryAppender();
  l.addAppender(mem);
  const sig = 'aB3dEf%2BgH%2FiJ%3D';
  l.info(`GET https://acct.blob.core.windows.net/c/blob?sv=2020-08-04&sr=b&sig=${sig}&se=2030-01-01 failed`);
  l.info(`https://acct.blob.core.windows.net/c/status?SIG=${sig}`);
  l.info(`<Plugin location="https://a.blob.core.windows.net/c/z?sv=1&amp;sig=${sig}&amp;se=2" />`);
  l.info(`{"statusUploadBlob":"https://a/b?sv=1\\u0026sig=${sig}\\u0026se=2"}`);
  l.info('design=plain no-signature here');
  const text = mem.lines.join('');
  assert.ok(!text.includes(sig), text);
  assert.match(mem.lines[0], /\?sv=2020-08-04&sr=b&sig=\*{5}&se=2030-01-01 failed\n$/);
  assert.match(mem.lines[1], /\?SIG=\*{5}\n$/);
  assert.match(mem.lines[2], /&amp;sig=\*{5}&amp;se=2" \/>\n$/);
  assert.match(mem.lines[3], /\\u0026sig=\*{5}\\u0026se=2"\}\n$/);
  assert.match(mem.lines[4], /design=plain no-signature here\n$/);
});

test('dropFileAppender: the log file stops (not re-created), stdout lines continue', async () => {
  const dir = tmp();
  const conf = path.join(dir, 'waagent.conf');
  fs.writeFileSync(conf, `Logs.Console=n\nExtension.LogDir=${dir}/azure\nLib.Dir=${dir}/lib\n`);
  const parsed = parseArgs(['-show-configuration', `-configuration-path:${conf}`, `--log-file=${dir}/w.log`], fs.existsSync);
  assert.ok(parsed.ok);
  try {
    const ctx = await setupAgent(parsed.opts, { logToStderr: true });
    const mem = memoryAppender(Level.INFO);
    ctx.log.addAppender(mem);
    ctx.log.info('before');
    assert.match(fs.readFileSync(`${dir}/w.log`, 'utf8'), /before/);
    fs.rmSync(`${dir}/w.log`);
    const other = new Logger();
    const otherFile = fileAppender(path.join(dir, 'other.log'), Level.INFO);
    other.addAppender(otherFile);
    const otherMem = memoryAppender(Level.INFO);
    other.addAppender(otherMem);
    dropFileAppender(other);
    ctx.log.info('after');
    other.info('after too');
    assert.ok(!fs.existsSync(`${dir}/w.log`), 'log file re-created');
    assert.ok(!fs.existsSync(path.join(dir, 'other.log')), 'other logger file re-created');
    assert.match(mem.lines.join(''), /before[\s\S]*after/);
    assert.match(otherMem.lines.join(''), /after too/);
    assert.ok(log.hasAppender((a) => a.kind === 'stream' && a.target === process.stderr));
    dropFileAppender(); // twice: harmless
  } finally {
    log.clearAppenders();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
