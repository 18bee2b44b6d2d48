/**
 * Reading what extensions write (extensions.md §8.1–8.3): the status file of the current seqNo and the heartbeat,
 * defensively — missing, unreadable, non-UTF-8, invalid JSON, wrong shape, huge or stale files each give a typed
 * result with WALinuxAgent's code and message (§8.2, §8.5) for that extension only, never an exception that would
 * stop the whole status report (HEAD's trap, §12 item 39). Nothing here writes.
 */
import * as nodeFs from 'node:fs';
import type { HostFs } from '../os/os';
import { log, errorText } from '../core/log';
import type { ExtensionSettingsStatus, FormattedMessage } from '../fabric/status';
import { ExtErrorCode } from './errors';
import { statusPath, configDir, heartbeatPath } from './handler-files';
import { decodeBackslashReplace } from './py-json';

/** Above this decoded length the status is cut (§8.2 rule 9). */
export const STATUS_TRUNCATE_ABOVE = 131072;
const MESSAGE_CUT = 1024;
const SUBSTATUS_FIELD_CUT = 10240;
const TRUNCATED_SUFFIX = ' ... [TRUNCATED]';
/** Files larger than this are not parsed at all (Ours, NEW). */
export const STATUS_MAX_BYTES = 16 * 1024 * 1024;
/** A heartbeat older than this makes the handler `Unresponsive` (§8.3). */
export const HEARTBEAT_MAX_AGE_MS = 600_000;
const HEARTBEAT_MAX_BYTES = 1024 * 1024;

const VALID_STATUS = new Set(['transitioning', 'warning', 'error', 'success']);

export type ExtensionStatusKind = 'ok' | 'missing' | 'invalid-json' | 'malformed' | 'unreadable';

export interface ExtensionStatusRead {
  kind: ExtensionStatusKind;
  /** What to report for the extension: the file's status, or the agent's substitute with its code (§8.2). */
  status: ExtensionSettingsStatus;
  /** Agent path of the status file that was (or would have been) read. */
  path: string;
  /** The file was over 128 KiB and its messages were cut (rule 9). */
  truncated?: boolean;
  /** Short diagnostic for the log (parser error, I/O error). */
  detail?: string;
}

export interface StatusIdentity {
  /** Handler name `<N>`. */
  name: string;
  /** Handler version `<V>`. */
  version: string;
  seqNo: number;
  /** `<X>` of an MC extension. */
  extensionName?: string;
}

class Malformed extends Error {}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const has = (o: Record<string, unknown>, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

function messageText(v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** `formattedMessage`: absent/null → none; else it must have `lang` and `message` (rule 5). */
function parseFormatted(v: unknown, where: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v) || !has(v, 'lang')) throw new Malformed(`Invalid status format by extension: Missing ${where}/lang key`);
  if (!has(v, 'message')) throw new Malformed(`Invalid status format by extension: Missing ${where}/message key`);
  return messageText(v.message);
}

function passCode(v: unknown): number | string { return typeof v === 'number' || typeof v === 'string' ? v : 0; }
const fm = (m: string | undefined): FormattedMessage | undefined => (m === undefined ? undefined : { lang: 'en-US', message: m });

interface Parsed {
  status: ExtensionSettingsStatus;
  /** Set when rules 4–5 failed; `status` holds what was parsed before. */
  malformed?: string;
  /** `[]`: treated as a missing file (Ours). */
  empty?: boolean;
}

/** Rules 4–5 on a parsed JSON document. Never throws. */
function parseDocument(doc: unknown, text: string): Parsed {
  const st: ExtensionSettingsStatus = { status: 'error', code: 0 };
  try {
    if (!Array.isArray(doc)) throw new Malformed(`The extension status must be an array: ${text.slice(0, 4096)}`);
    if (doc.length === 0) return { status: st, empty: true };
    const el = doc[0];
    if (!isObject(el) || !has(el, 'status')) throw new Malformed('Invalid status format by extension: Missing status key');
    const s = el.status;
    if (!isObject(s) || !has(s, 'status')) throw new Malformed('Invalid status format by extension: Missing status/status key');
    st.status = typeof s.status === 'string' && VALID_STATUS.has(s.status) ? s.status : 'error';
    if (typeof s.configurationAppliedTime === 'string') st.configurationAppliedTime = s.configurationAppliedTime;
    if (typeof s.operation === 'string') st.operation = s.operation;
    st.code = passCode(has(s, 'code') ? s.code : 0);
    st.formattedMessage = fm(parseFormatted(s.formattedMessage, 'formattedMessage'));
    const subs = s.substatus;
    if (subs !== undefined && subs !== null) {
      if (!Array.isArray(subs)) throw new Malformed('Invalid status format by extension: substatus must be a list');
      st.substatus = [];
      for (const x of subs) {
        if (x === null) continue;
        if (!isObject(x) || !has(x, 'status')) throw new Malformed('Invalid status format by extension: Missing substatus/status key');
        if (typeof x.status !== 'string' || !VALID_STATUS.has(x.status)) {
          throw new Malformed(`Invalid value ${JSON.stringify(x.status)} in range ${JSON.stringify([...VALID_STATUS])} for substatus/status`);
        }
        st.substatus.push({
          name: messageText(x.name) ?? '',
          status: x.status,
          code: passCode(has(x, 'code') ? x.code : 0),
          formattedMessage: fm(parseFormatted(x.formattedMessage, 'substatus/formattedMessage')),
        });
      }
    }
    return { status: st };
  } catch (e) {
    return { status: st, malformed: e instanceof Malformed ? e.message : errorText(e) };
  }
}

const cut = (s: string | undefined, n: number): string | undefined => (s === undefined || s.length < n ? s : s.slice(0, n) + TRUNCATED_SUFFIX);

/** Rule 9: cut the messages of a status whose file text was over 128 KiB; drop substatus items past the budget. */
function truncateStatus(st: ExtensionSettingsStatus): void {
  if (st.formattedMessage) st.formattedMessage = { lang: 'en-US', message: cut(st.formattedMessage.message, MESSAGE_CUT)! };
  if (!st.substatus) return;
  let total = st.formattedMessage?.message.length ?? 0;
  const kept: NonNullable<ExtensionSettingsStatus['substatus']> = [];
  for (const x of st.substatus) {
    const name = cut(x.name, SUBSTATUS_FIELD_CUT) ?? '';
    const message = cut(x.formattedMessage?.message, SUBSTATUS_FIELD_CUT);
    const size = name.length + (message?.length ?? 0);
    if (total + size > STATUS_TRUNCATE_ABOVE) break;
    total += size;
    kept.push({ ...x, name, formattedMessage: fm(message) });
  }
  st.substatus = kept;
}

/** The display name of an extension in messages: `<N>` (SC) or `<N>.<X>` (MC). */
const displayName = (id: StatusIdentity): string => (id.extensionName ? `${id.name}.${id.extensionName}` : id.name);

function missingStatus(id: StatusIdentity, path: string): ExtensionSettingsStatus {
  return {
    status: 'transitioning', code: 0,
    formattedMessage: fm(`This status is being reported by the Guest Agent since no status file was reported by extension ${displayName(id)}: [ExtensionStatusError] Status file ${path} does not exist`),
  };
}

/**
 * Interprets the bytes of a status file (rules 2–6, 9). `undefined` bytes = the file is missing. Pure; the
 * `invalid-json` result is the one worth retrying (a write in progress).
 */
export function interpretStatusFile(bytes: Buffer | undefined, id: StatusIdentity, path: string): ExtensionStatusRead {
  if (bytes === undefined) return { kind: 'missing', status: missingStatus(id, path), path };
  let text: string;
  let parseError: string | undefined;
  let doc: unknown;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    text = decodeBackslashReplace(bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? bytes.subarray(3) : bytes);
    parseError = "'utf-8' codec can't decode the status file: invalid UTF-8 byte sequence";
  }
  if (parseError === undefined) {
    try { doc = JSON.parse(text); } catch (e) { parseError = errorText(e); }
  }
  const hv = `${id.name}-${id.version}`;
  if (parseError !== undefined) {
    return {
      kind: 'invalid-json', path, detail: parseError,
      status: {
        status: 'error', code: ExtErrorCode.PluginSettingsStatusInvalid,
        formattedMessage: fm(`The status reported by the extension ${hv}(Sequence number ${id.seqNo}), was in an incorrect format and the agent could not parse it correctly. Failed due to ${parseError} \n First 2000 Bytes of status file:\n ${text.slice(0, 2000)}`),
      },
    };
  }
  const p = parseDocument(doc, text);
  if (p.empty) return { kind: 'missing', status: missingStatus(id, path), path, detail: 'empty array' };
  const truncated = text.length > STATUS_TRUNCATE_ABOVE;
  if (p.malformed !== undefined) {
    p.status.status = 'error';
    p.status.code = ExtErrorCode.PluginSettingsStatusInvalid;
    p.status.formattedMessage = fm(`Could not get a valid status from the extension ${hv}. Encountered the following error: ${p.malformed}`);
  }
  if (truncated) truncateStatus(p.status);
  return { kind: p.malformed !== undefined ? 'malformed' : 'ok', status: p.status, path, truncated: truncated || undefined, detail: p.malformed?.slice(0, 200) };
}

/** Reads a file of at most `max` bytes following symlinks (extensions are root, like us); undefined when missing. */
function readBounded(real: string, max: number): Buffer | undefined {
  let fd: number;
  try { fd = nodeFs.openSync(real, nodeFs.constants.O_RDONLY | nodeFs.constants.O_NONBLOCK); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw e;
  }
  try {
    const st = nodeFs.fstatSync(fd);
    if (!st.isFile()) throw new Error(`[Errno 21] ${real} is not a regular file`);
    if (st.size > max) throw new TooLarge(`status file too large (${st.size} bytes; limit ${max})`);
    const chunks: Buffer[] = []; let total = 0;
    for (;;) {
      const buf = Buffer.alloc(Math.min(Math.max(st.size + 1, 4096), max + 1 - total));
      const r = nodeFs.readSync(fd, buf, 0, buf.length, null);
      if (r === 0) break;
      chunks.push(buf.subarray(0, r)); total += r;
      if (total > max) throw new TooLarge(`status file too large (over ${max} bytes)`);
    }
    return Buffer.concat(chunks, total);
  } finally { nodeFs.closeSync(fd); }
}
class TooLarge extends Error {}

export interface ReadStatusOptions extends StatusIdentity {
  fs: HostFs;
  /** `<H>` (agent path). */
  handlerDir: string;
  /** Pause between attempts on invalid JSON (default 2000 ms) and attempts (default 5), within `budgetMs` (10 s). */
  retryDelayMs?: number;
  attempts?: number;
  budgetMs?: number;
  /** Byte limit above which the file is not parsed (default 16 MiB). */
  maxBytes?: number;
}

const lastLogged = new Map<string, number>();
/** Diagnostics about status files: at most every 30 minutes per extension (§8.2 rule 10). */
function diagnose(key: string, msg: string): void {
  const now = Date.now();
  const last = lastLogged.get(key);
  if (last !== undefined && now - last < 30 * 60_000) return;
  lastLogged.set(key, now);
  log.warn(msg);
}

/**
 * Reads the status of one extension for its current seqNo (§8.1, §8.2): `<H>/status/<seq>.status` or
 * `<X>.<seq>.status`. A status left from another seqNo is never read, so a stale file is never presented as current
 * (§8.8). Retries invalid JSON (a write in progress) up to 5 times, 2 s apart, within 10 s; a missing file is not
 * retried. Never throws.
 */
export async function readExtensionStatus(o: ReadStatusOptions): Promise<ExtensionStatusRead> {
  const attempts = Math.max(1, o.attempts ?? 5);
  const delay = o.retryDelayMs ?? 2000;
  const deadline = Date.now() + (o.budgetMs ?? 10_000);
  let res = readOnce(o);
  for (let i = 1; i < attempts && res.kind === 'invalid-json' && Date.now() + delay <= deadline; i++) {
    await new Promise((r) => setTimeout(r, delay));
    res = readOnce(o);
  }
  report(o, res);
  return res;
}

/** One attempt, no retry (for a caller that must not wait, e.g. a synchronous report builder). Never throws. */
export function readExtensionStatusSync(o: ReadStatusOptions): ExtensionStatusRead {
  const res = readOnce(o);
  report(o, res);
  return res;
}

function report(o: ReadStatusOptions, res: ExtensionStatusRead): void {
  if (res.kind === 'ok') return;
  const name = o.extensionName ? `${o.name}.${o.extensionName}` : o.name;
  diagnose(`${o.name}-${o.version}/${o.extensionName ?? ''}`, `Status of ${name}-${o.version} (seqNo ${o.seqNo}): ${res.kind}${res.detail ? `: ${res.detail.slice(0, 300)}` : ''}`);
}

function readOnce(o: ReadStatusOptions): ExtensionStatusRead {
  const id: StatusIdentity = { name: o.name, version: o.version, seqNo: o.seqNo, extensionName: o.extensionName };
  const hv = `${o.name}-${o.version}`;
  const unreadable = (path: string, why: string): ExtensionStatusRead => ({
    kind: 'unreadable', path, detail: why,
    status: { status: 'error', code: ExtErrorCode.PluginUnknownFailure, formattedMessage: fm(`We couldn't read any status for ${hv} extension, for the sequence number ${o.seqNo}. It failed due to ${why}`) },
  });
  let path: string;
  try { path = statusPath(o.handlerDir, o.seqNo, o.extensionName); } catch (e) { return unreadable(`${o.handlerDir}/status`, errorText(e)); }
  let bytes: Buffer | undefined;
  try {
    bytes = readBounded(o.fs.p(path), o.maxBytes ?? STATUS_MAX_BYTES);
  } catch (e) {
    if (!(e instanceof TooLarge)) return unreadable(path, errorText(e));
    return {
      kind: 'malformed', path, detail: e.message,
      status: { status: 'error', code: ExtErrorCode.PluginSettingsStatusInvalid, formattedMessage: fm(`Could not get a valid status from the extension ${hv}. Encountered the following error: ${e.message}`) },
    };
  }
  return interpretStatusFile(bytes, id, path);
}

/**
 * The seqNo of the most recently modified settings file of an extension (§8.1 fallback when the seqNo is unknown):
 * SC `config/<n>.settings`; MC `config/<X>.<n>.settings` (split at the last `.`, so names with `-` or `.` work).
 */
export function latestSettingsSeqNo(fs: HostFs, handlerDir: string, extensionName?: string): number | undefined {
  let best: { seq: number; mtime: number } | undefined;
  for (const f of fs.readdir(configDir(handlerDir))) {
    if (!f.endsWith('.settings')) continue;
    const stem = f.slice(0, -'.settings'.length);
    const dot = stem.lastIndexOf('.');
    const x = dot >= 0 ? stem.slice(0, dot) : undefined;
    const n = dot >= 0 ? stem.slice(dot + 1) : stem;
    if (!/^\d+$/.test(n) || x !== extensionName) continue;
    const st = fs.stat(`${configDir(handlerDir)}/${f}`);
    if (!st?.isFile()) continue;
    if (!best || st.mtimeMs > best.mtime) best = { seq: Number(n), mtime: st.mtimeMs };
  }
  return best?.seq;
}

/** The MC extension names found in `config/<X>.<n>.settings` files (§8.7), sorted. */
export function settingsExtensionNames(fs: HostFs, handlerDir: string): string[] {
  const names = new Set<string>();
  for (const f of fs.readdir(configDir(handlerDir))) {
    const m = /^(.+)\.(\d+)\.settings$/.exec(f);
    if (m) names.add(m[1]);
  }
  return [...names].sort();
}

// ---- heartbeat (§8.3) ----------------------------------------------------------------------------------------------

export type HeartbeatResult =
  /** The heartbeat's own status word replaces the handler status; its message (if any) replaces the handler message. */
  | { kind: 'ok'; status: string; message?: string }
  /** Older than 10 minutes: the handler status becomes `Unresponsive`, code and message unchanged. */
  | { kind: 'unresponsive'; ageMs: number }
  /** Missing, unreadable or malformed: written into HandlerStatus as an error (code −1). */
  | { kind: 'error'; code: number; message: string };

/**
 * Reads `<H>/heartbeat.log` (§8.3). The caller asks only when the manifest's `reportHeartbeat` is true and the
 * handler is not `NotInstalled`. Never throws.
 */
export function readHeartbeat(o: { fs: HostFs; handlerDir: string; now?: Date; maxAgeMs?: number }): HeartbeatResult {
  const file = heartbeatPath(o.handlerDir);
  const real = o.fs.p(file);
  const st = o.fs.stat(file);
  if (!st || !st.isFile()) return { kind: 'error', code: ExtErrorCode.PluginUnknownFailure, message: '[ExtensionError] Failed to get heart beat file' };
  const ageMs = (o.now ?? new Date()).getTime() - st.mtimeMs;
  if (ageMs > (o.maxAgeMs ?? HEARTBEAT_MAX_AGE_MS)) return { kind: 'unresponsive', ageMs };
  let bytes: Buffer | undefined;
  try {
    bytes = readBounded(real, HEARTBEAT_MAX_BYTES);
  } catch (e) {
    if (e instanceof TooLarge) return { kind: 'error', code: ExtErrorCode.PluginUnknownFailure, message: `[ExtensionError] Malformed heartbeat file: ${e.message.replace('status', 'heartbeat')}` };
    return { kind: 'error', code: ExtErrorCode.PluginUnknownFailure, message: `[ExtensionError] Failed to get heartbeat file:${errorText(e)}` };
  }
  if (bytes === undefined) return { kind: 'error', code: ExtErrorCode.PluginUnknownFailure, message: '[ExtensionError] Failed to get heart beat file' };
  const malformed = (why: string): HeartbeatResult => ({ kind: 'error', code: ExtErrorCode.PluginUnknownFailure, message: `[ExtensionError] Malformed heartbeat file: ${why}` });
  let doc: unknown;
  try {
    let text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    doc = JSON.parse(text);
  } catch (e) { return malformed(errorText(e)); }
  const el = Array.isArray(doc) ? doc[0] : undefined;
  if (!isObject(el)) return malformed(Array.isArray(doc) ? 'list index out of range' : 'the heartbeat must be an array');
  const hb = el.heartbeat;
  if (!isObject(hb)) return malformed("'heartbeat'");
  if (typeof hb.status !== 'string' || hb.status === '') return malformed("'status'");
  if (!has(hb, 'formattedMessage') || hb.formattedMessage === null) return { kind: 'ok', status: hb.status };
  const f = hb.formattedMessage;
  if (!isObject(f) || !has(f, 'lang') || !has(f, 'message')) return malformed("'formattedMessage' needs 'lang' and 'message'");
  return { kind: 'ok', status: hb.status, message: messageText(f.message) };
}
