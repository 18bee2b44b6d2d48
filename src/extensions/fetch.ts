/**
 * Downloading a handler (extensions.md §4.1–4.5, fabric-protocol.md §4.3–4.4): the extension manifest from its URLs
 * (then through the host plugin), and the package — pre-staged `<L>/<N>__<V>.zip` first, else streamed to
 * `<L>/<N>__<V>.zip.part` (never the final name until complete and as long as `Content-Length` says), free space
 * checked first, disk full stopping at once, extracted safely into `<L>/<N>-<V>` (src/extensions/unzip), the handler
 * manifest found and copied to the top, the zip deleted. `encodedSignature` is parsed and checked for form only
 * (never blocking, §4.3 "Ours"). Every failure is an `ExtensionError` carrying HEAD's code and message (§8.5).
 */
import { isSafeHandlerName, isSafeVersion } from '../core/safe-names';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { log, errorText } from '../core/log';
import { bodyText, httpDownload, HttpIoError } from '../core/http';
import { withRetry, isSuccess, HttpStatusError } from '../core/retry';
import * as der from '../crypto/der';
import type { PluginDoc } from '../fabric/documents';
import type { WireClient } from '../fabric/wire';
import type { HostFs } from '../os/os';
import { downloadWithFallback, fetchBuffered, redactUrl, ArtifactDownloadError, type FallbackOptions } from '../fabric/artifacts';
import { ExtensionError, ExtErrorCode } from './errors';
import { parseExtensionManifest, type ExtensionManifest } from './manifest';
import { extractZipSafely, freeBytesOf, ZipError, FREE_SPACE_RESERVE, type ZipLimits } from './unzip';

/** Largest manifest accepted. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Largest package download accepted by default. */
export const DEFAULT_MAX_PACKAGE_BYTES = 1024 * 1024 * 1024;

/**
 * The check for names and versions that become path components (`<L>/<N>-<V>`, `<N>__<V>.zip`): the same rules as the
 * plan's and the handler directories' (src/core/safe-names.ts). Throws `ExtensionError` (−1).
 */
export function assertSafeHandlerNameAndVersion(name: string, version: string): void {
  if (!isSafeHandlerName(name)) {
    throw new ExtensionError(`Invalid handler name ${JSON.stringify(name)}`, ExtErrorCode.PluginUnknownFailure);
  }
  if (!isSafeVersion(version)) {
    throw new ExtensionError(`Invalid version ${JSON.stringify(version)} for handler ${name}`, ExtErrorCode.PluginUnknownFailure);
  }
}

export interface FetchOptions {
  signal?: AbortSignal;
  /** Overrides of the channel/URL loop (tests: shuffle, retry delays, budget). */
  fallback?: Partial<FallbackOptions>;
}

/**
 * Downloads and parses the handler's manifest from `plugin.manifestUris` (direct, then host plugin, §4.1). Returns the
 * text, the parse and the URL that worked (sent as `x-ms-artifact-manifest-location` with host-plugin package
 * downloads). Any failure → `ExtensionError` −1 with HEAD's message.
 */
export async function fetchManifest(wire: WireClient, plugin: PluginDoc, signal?: AbortSignal, opts: FetchOptions = {}): Promise<{ xml: string; manifest: ExtensionManifest; uri: string }> {
  const fail = (inner: string): ExtensionError => new ExtensionError(
    `[ExtensionError] Failed to get ext handler pkgs\nInner error: [ProtocolError] Failed to retrieve extension manifest. Error: [ExtensionDownloadError] ${inner}`,
    ExtErrorCode.PluginUnknownFailure);
  if (!plugin.manifestUris.length) throw fail('No extension manifest URIs');
  let got: { value: string; uri: string };
  try {
    got = await downloadWithFallback(wire, { what: 'extension manifest', uris: plugin.manifestUris, signal: signal ?? opts.signal, ...opts.fallback },
      async (req, retry) => {
        const text = bodyText(await fetchBuffered(req, retry, wire, MAX_MANIFEST_BYTES));
        parseExtensionManifest(text); // a malformed answer (an HTML error page) counts as a failure of this URL
        return text;
      });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw fail(e instanceof ArtifactDownloadError ? e.message : errorText(e));
  }
  log.info(`Extension manifest of ${plugin.name} from ${redactUrl(got.uri)}`);
  return { xml: got.value, manifest: parseExtensionManifest(got.value), uri: got.uri };
}

/** `@encodedSignature` (§4.3): base64 of a detached DER CMS SignedData. */
export interface PackageSignature { der?: Buffer; wellFormed: boolean; problem?: string }

const OID_SIGNED_DATA = '1.2.840.113549.1.7.2';

/** Parses `@encodedSignature` and checks its form (a CMS ContentInfo of type signedData). Never throws. */
export function parseEncodedSignature(b64: string | undefined): PackageSignature | undefined {
  if (!b64) return undefined;
  const clean = b64.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(clean) || clean.length % 4 !== 0) return { wellFormed: false, problem: 'not base64' };
  const buf = Buffer.from(clean, 'base64');
  try {
    const ci = der.parse(buf);
    const kids = der.children(ci);
    if (!der.is(ci, der.TAG.SEQUENCE) || der.oid(kids[0]) !== OID_SIGNED_DATA) return { der: buf, wellFormed: false, problem: 'not a CMS SignedData' };
    return { der: buf, wellFormed: true };
  } catch (e) {
    return { der: buf, wellFormed: false, problem: `not DER: ${(e as Error).message}` };
  }
}

export interface InstallPackageArgs {
  /** Package URLs of the selected manifest entry. */
  uris: string[];
  /** Agent path of the handler directory `<L>/<N>-<V>`. */
  destDir: string;
  /** Agent path of Lib.Dir. */
  libDir: string;
  /** Largest download accepted (default 1 GiB). */
  maxBytes?: number;
  signal?: AbortSignal;
  /** Handler name and version (default: `destDir`'s base name split at its last `-`). */
  name?: string;
  version?: string;
  /** The manifest URL that worked (host-plugin `x-ms-artifact-manifest-location`). */
  manifestUri?: string;
  /** The plugin's `@encodedSignature`, parsed and checked for form only. */
  encodedSignature?: string;
  /** Extraction limits (defaults of src/extensions/unzip). */
  zipLimits?: ZipLimits;
  /** Idle timeout of each download attempt (default 10 s, fabric-protocol.md §5.5). */
  idleTimeoutMs?: number;
  /** FOR TESTS: free bytes of a file system (default statfs). */
  freeBytes?: (dir: string) => number;
  fallback?: Partial<FallbackOptions>;
}

export interface InstallResult {
  source: 'existing' | 'prestaged' | 'direct' | 'hostplugin';
  uri?: string;
  bytes?: number;
  files?: number;
  signature?: PackageSignature;
}

const DISK_FULL = new Set(['ENOSPC', 'EDQUOT']);
/** Not enough space on Lib.Dir's file system (§4.5 Ours 1–2): stops the URL loop at once. Code 1001. */
export class DiskFullError extends ExtensionError {
  constructor(message: string) { super(message, ExtErrorCode.PluginManifestDownloadError); this.name = 'DiskFullError'; }
}
const isDiskFull = (e: unknown): boolean => e instanceof DiskFullError || DISK_FULL.has((e as NodeJS.ErrnoException)?.code ?? '');

function downloadError(what: string, inner: string, code: number = ExtErrorCode.PluginManifestDownloadError): ExtensionError {
  return new ExtensionError(`Failed to download artifacts: [ExtensionDownloadError] ${inner}`, code);
}

/**
 * Finds the handler manifest in an extracted tree (§4.4 rule 12, Ours): the top one, else the shallowest, ties broken
 * by byte-wise path order. Returns the relative path or undefined.
 */
export function findHandlerManifest(root: string): string | undefined {
  let level = [''];
  while (level.length) {
    const hits: string[] = []; const next: string[] = [];
    for (const rel of level) {
      let names: fs.Dirent[];
      try { names = fs.readdirSync(path.join(root, rel), { withFileTypes: true }); } catch { continue; }
      for (const d of names) {
        const r = rel ? `${rel}/${d.name}` : d.name;
        if (d.isFile() && d.name === 'HandlerManifest.json') hits.push(r);
        else if (d.isDirectory()) next.push(r);
      }
    }
    if (hits.length) return hits.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))[0];
    level = next;
  }
  return undefined;
}

/**
 * Downloads the package and installs its files into `args.destDir` (§4.2–4.5); see the file comment. Idempotent: a
 * handler directory whose `HandlerManifest.json` is in place (moved there last) is complete and left alone. Throws
 * `ExtensionError`: 1001 when every URL/channel failed, the budget ran out or the disk is full; −1 for no URI, no
 * handler manifest in the package, or an invalid name/version.
 */
export async function installPackage(wire: WireClient, args: InstallPackageArgs): Promise<InstallResult> {
  const base = path.posix.basename(args.destDir);
  const cut = base.lastIndexOf('-');
  const name = args.name ?? base.slice(0, cut);
  const version = args.version ?? base.slice(cut + 1);
  assertSafeHandlerNameAndVersion(name, version);
  if (path.posix.normalize(args.destDir) !== path.posix.join(args.libDir, `${name}-${version}`)) {
    throw new ExtensionError(`Handler directory ${args.destDir} is not ${args.libDir}/${name}-${version}`, ExtErrorCode.PluginUnknownFailure);
  }
  const what = `${name}-${version}`;
  const hostFs = wire.hostFs;
  const lib = hostFs.p(args.libDir);
  const dest = hostFs.p(args.destDir);
  const zip = path.join(lib, `${name}__${version}.zip`);
  const part = `${zip}.part`;
  const freeBytes = args.freeBytes ?? freeBytesOf;
  const signature = parseEncodedSignature(args.encodedSignature);
  if (signature && !signature.wellFormed) log.warn(`${what}: encodedSignature is malformed (${signature.problem}); ignored (signature validation is not enforced)`);

  if (fs.existsSync(path.join(dest, 'HandlerManifest.json'))) {
    log.verbose(`${what}: package already installed in ${args.destDir}`);
    return { source: 'existing', signature };
  }
  fs.mkdirSync(lib, { recursive: true, mode: 0o700 });

  // Copy the handler manifest to the top before the tree is moved into place (§4.4 rule 12).
  const placeManifest = async (staging: string): Promise<void> => {
    const rel = findHandlerManifest(staging);
    if (!rel) throw new NoManifestError();
    if (rel === 'HandlerManifest.json') {
      const text = await fsp.readFile(path.join(staging, rel));
      if (text[0] === 0xef && text[1] === 0xbb && text[2] === 0xbf) await fsp.writeFile(path.join(staging, rel), text.subarray(3));
      return;
    }
    const text = (await fsp.readFile(path.join(staging, rel))).toString('utf8').replace(/^\uFEFF/, '');
    await fsp.writeFile(path.join(staging, 'HandlerManifest.json'), text, { mode: 0o744 });
    await fsp.chmod(path.join(staging, 'HandlerManifest.json'), 0o744);
  };
  const extract = (file: string): Promise<{ files: number; bytes: number }> =>
    extractZipSafely(file, dest, args.zipLimits, { beforeCommit: placeManifest, freeBytes });
  const diskFull = (detail: string): DiskFullError =>
    new DiskFullError(`Failed to download artifacts: [ExtensionDownloadError] Not enough disk space for ${what} on the file system of ${args.libDir}: ${detail}`);

  // Pre-staged package (§4.2 rule 3): used without downloading, not deleted.
  try {
    if (fs.lstatSync(zip).isFile()) {
      try {
        const r = await extract(zip);
        log.info(`${what}: installed from the pre-staged ${zip}`);
        return { source: 'prestaged', files: r.files, bytes: r.bytes, signature };
      } catch (e) {
        if (e instanceof NoManifestError) throw downloadError(what, 'HandlerManifest.json not found', ExtErrorCode.PluginUnknownFailure);
        log.warn(`${what}: pre-staged ${zip} could not be extracted (${errorText(e)}); downloading`);
      }
    }
  } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; }
  if (!args.uris.length) throw downloadError(what, 'No package uri found', ExtErrorCode.PluginUnknownFailure);

  const removePart = (): void => { try { fs.unlinkSync(part); } catch { /* absent */ } };
  try {
    const got = await downloadWithFallback(wire, {
      what, uris: args.uris, manifestUrl: args.manifestUri, signal: args.signal,
      fatal: (e) => isDiskFull(e) || e instanceof NoManifestError,
      giveUp: (e) => e instanceof HttpIoError && e.code === 'EFBIG',
      ...args.fallback,
    }, async (req, retry) => {
      let bytes = 0;
      try {
        await withRetry(async () => {
          removePart();
          const fh = await fsp.open(part, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
          try {
            const res = await httpDownload({ url: req.url, headers: req.headers, useProxy: req.useProxy, maxBodyBytes: args.maxBytes ?? DEFAULT_MAX_PACKAGE_BYTES, timeoutMs: args.idleTimeoutMs, signal: retry.signal }, {
              onHeaders: (_s, h) => {
                const len = Number(h['content-length']);
                if (!Number.isFinite(len) || len <= 0) return;
                const free = freeBytes(lib);
                const need = Math.ceil(2.5 * len) + FREE_SPACE_RESERVE;
                if (free < need) throw diskFull(`${free} bytes free, ${need} needed for a ${len}-byte package`);
              },
              write: async (chunk) => {
                try { await fh.write(chunk); } catch (e) {
                  if (DISK_FULL.has((e as NodeJS.ErrnoException).code ?? '')) throw diskFull(`${(e as NodeJS.ErrnoException).code} while writing (${freeBytesSafe(freeBytes, lib)} bytes free)`);
                  throw e;
                }
              },
            }, wire.proxy);
            if (isSuccess(res.status)) { await fh.sync(); bytes = res.bytes; }
            return res;
          } finally {
            await fh.close();
          }
        }, retry).then((res) => { if (!isSuccess(res.status)) throw new HttpStatusError(retry.what, res.status, bodyText(res)); });
        fs.renameSync(part, zip);
      } catch (e) {
        removePart();
        throw e;
      }
      // Extract; the zip is deleted whatever the outcome; a failure counts against this URL (§4.2 rule 5).
      try {
        const r = await extract(zip);
        return { ...r, downloaded: bytes };
      } catch (e) {
        if (e instanceof ZipError && e.code === 'ENOSPC') throw diskFull(e.message);
        if (DISK_FULL.has((e as NodeJS.ErrnoException).code ?? '')) throw diskFull(`${(e as NodeJS.ErrnoException).code} while extracting`);
        throw e;
      } finally {
        try { fs.unlinkSync(zip); } catch { /* gone */ }
      }
    });
    log.info(`${what}: downloaded ${got.value.downloaded} bytes via ${got.channel} from ${redactUrl(got.uri)}; ${got.value.files} files installed in ${args.destDir}`);
    return { source: got.channel, uri: got.uri, bytes: got.value.downloaded, files: got.value.files, signature };
  } catch (e) {
    removePart();
    if ((e as Error).name === 'AbortError') throw e;
    if (e instanceof NoManifestError) throw downloadError(what, 'HandlerManifest.json not found', ExtErrorCode.PluginUnknownFailure);
    if (e instanceof ExtensionError) throw e;
    if (e instanceof ArtifactDownloadError) throw downloadError(what, e.message);
    throw downloadError(what, `Failed to download ${what} from all URIs. Last error: ${errorText(e)}`);
  }
}

function freeBytesSafe(f: (dir: string) => number, dir: string): number | string {
  try { return f(dir); } catch { return 'unknown'; }
}

/** The package has no HandlerManifest.json anywhere (not URL-specific: stops the download loop). */
class NoManifestError extends Error {
  constructor() { super('HandlerManifest.json not found'); this.name = 'NoManifestError'; }
}

/**
 * Deletes leftovers of interrupted downloads and extractions in Lib.Dir (§4.5 rule 3): `*.zip.part` files and
 * `.<N>-<V>.unzip-*` staging directories. Run at agent start and by cleanup. Returns the names removed.
 */
export function removeDownloadLeftovers(hostFs: HostFs, libDir: string): string[] {
  const lib = hostFs.p(libDir);
  const gone: string[] = [];
  let names: string[] = [];
  try { names = fs.readdirSync(lib); } catch { return gone; }
  for (const n of names) {
    if (/\.zip\.part$/.test(n) || /^\..+\.unzip-[0-9a-f]+$/.test(n)) {
      try { fs.rmSync(path.join(lib, n), { recursive: true, force: true }); gone.push(n); } catch (e) { log.warn(`could not remove ${n}: ${errorText(e)}`); }
    }
  }
  return gone;
}
