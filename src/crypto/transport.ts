/**
 * The transport key pair and certificate (fabric-protocol.md §3.1): RSA 2048 from Node's crypto (generated on the
 * thread pool, so the event loop keeps running), a self-signed certificate `CN=LinuxTransport` encoded by hand with
 * the small DER writer (sha256WithRSAEncryption, SKI = SHA-1 of the RSAPublicKey, AKI keyid = the same,
 * basicConstraints critical CA:TRUE), new at every start and kept in memory only (`startTransportPair`; the files
 * `<lib>/TransportPrivate.pem`/`TransportCert.pem` of older agents are removed). No node-forge on this path.
 */
import * as crypto from 'node:crypto';
import type { HostFs } from '../os/os';
import { log } from '../core/log';
import * as der from './der';

export const TRANSPORT_KEY_FILE = 'TransportPrivate.pem';
export const TRANSPORT_CERT_FILE = 'TransportCert.pem';

export interface TransportPair {
  /** PKCS#8 PEM private key. */
  keyPem: string;
  certPem: string;
  /** Base64 of the certificate DER on one line: the `x-ms-guest-agent-public-x509-cert` header value. */
  certHeader: string;
  /** SubjectKeyIdentifier (SHA-1 of the RSAPublicKey), which the fabric uses to address us in CMS envelopes. */
  ski: Buffer;
}

/** SHA-1 of the DER RSAPublicKey of a certificate's key: the SKI the fabric addresses (works for any RSA cert). */
export function rsaPublicKeySki(certPem: string): Buffer {
  const pkcs1 = new crypto.X509Certificate(certPem).publicKey.export({ type: 'pkcs1', format: 'der' });
  return crypto.createHash('sha1').update(pkcs1).digest();
}

function pairFrom(keyPem: string, certPem: string): TransportPair {
  const x = new crypto.X509Certificate(certPem);
  return { keyPem, certPem, certHeader: Buffer.from(x.raw).toString('base64'), ski: rsaPublicKeySki(certPem) };
}

const OID_SHA256_RSA = '1.2.840.113549.1.1.11';
const OID_CN = '2.5.4.3';
const OID_SKI = '2.5.29.14';
const OID_AKI = '2.5.29.35';
const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const VALIDITY_DAYS = 730;

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  return der.seq(der.oidDer(oid), ...(critical ? [der.bool(true)] : []), der.octetString(value));
}

/**
 * Builds and signs the self-signed `CN=LinuxTransport` certificate (DER) for a key pair: X.509 v3, random positive
 * 128-bit serial, valid from 5 minutes before `now` (clock skew) to `now` + 730 days.
 */
export function buildTransportCertificate(publicKey: crypto.KeyObject, privateKey: crypto.KeyObject, now: Date): Buffer {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  // SKI: SHA-1 of the RSAPublicKey, i.e. of the subjectPublicKey BIT STRING contents (after the unused-bits octet)
  const bits = der.children(der.parse(spki))[1];
  if (!der.is(bits, der.TAG.BIT_STRING)) throw new Error('unexpected SPKI encoding from Node');
  const ski = crypto.createHash('sha1').update(der.content(bits).subarray(1)).digest();
  const serial = crypto.randomBytes(16);
  serial[0] &= 0x7f; serial[0] |= 0x01; // positive, no leading zero byte
  const name = der.seq(der.set(der.seq(der.oidDer(OID_CN), der.utf8('LinuxTransport'))));
  const sigAlg = der.seq(der.oidDer(OID_SHA256_RSA), der.nul());
  const tbs = der.seq(
    der.explicit(0, der.uint(Buffer.from([2]))),
    der.uint(serial),
    sigAlg,
    name,
    der.seq(der.time(new Date(now.getTime() - 5 * 60_000)), der.time(new Date(now.getTime() + VALIDITY_DAYS * 86400_000))),
    name,
    spki,
    der.explicit(3, der.seq(
      extension(OID_SKI, false, der.octetString(ski)),
      extension(OID_AKI, false, der.seq(der.implicit(0, ski))),
      extension(OID_BASIC_CONSTRAINTS, true, der.seq(der.bool(true))),
    )),
  );
  const signature = crypto.sign('sha256', tbs, privateKey);
  return der.seq(tbs, sigAlg, der.bitString(signature));
}

function pairFromKeys(publicKey: crypto.KeyObject, privateKey: crypto.KeyObject, now: Date): TransportPair {
  const certDer = buildTransportCertificate(publicKey, privateKey, now);
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return pairFrom(keyPem, new crypto.X509Certificate(certDer).toString());
}

const RSA_OPTIONS = { modulusLength: 2048, publicExponent: 65537 } as const;

/**
 * Generates a fresh transport pair in memory (RSA 2048, e 65537, 730 days) without blocking the event loop: the key
 * is generated on libuv's thread pool. Rejects only if Node cannot generate an RSA key.
 */
export function generateTransportPairAsync(now: Date = new Date()): Promise<TransportPair> {
  return new Promise((resolve, reject) => {
    crypto.generateKeyPair('rsa', RSA_OPTIONS, (err, publicKey, privateKey) => {
      if (err) { reject(err); return; }
      try { resolve(pairFromKeys(publicKey, privateKey, now)); } catch (e) { reject(e as Error); }
    });
  });
}

/**
 * Synchronous variant of `generateTransportPairAsync`, for tests and tools: blocks the event loop for the RSA key
 * generation (tens of milliseconds), so the agent itself uses `ensureTransportPair`.
 */
export function generateTransportPair(now: Date = new Date()): TransportPair {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', RSA_OPTIONS);
  return pairFromKeys(publicKey, privateKey, now);
}

/**
 * The transport pair of this agent start (§3.1 "Lifetime": a new pair at every start; issue 10 item 7): generated
 * off the event loop and kept **in memory only**. Nothing outside this process uses it — extensions decrypt their
 * protected settings with the tenant certificates (`<THUMBPRINT>.crt/.prv`), never with the transport key (§3.1,
 * §3.6), and JIT passwords (§2.6) are decrypted by the agent itself — so no file is written, and a key a previous
 * start (or an older agent, or the image this VM was captured from) left in `<libDir>` is removed (best-effort: a
 * failure is logged, never fatal). Rejects only if Node cannot generate an RSA key.
 */
export async function startTransportPair(hostFs: HostFs, libDir: string, now: Date = new Date()): Promise<TransportPair> {
  for (const f of [TRANSPORT_KEY_FILE, TRANSPORT_CERT_FILE]) {
    const abs = `${libDir}/${f}`;
    try {
      if (hostFs.lstat(abs)) { hostFs.remove(abs); log.info(`Removed the stale transport file ${abs} (the pair now lives in memory)`); }
    } catch (e) { log.warn(`Cannot remove the stale transport file ${abs}: ${(e as Error).message}`); }
  }
  const pair = await generateTransportPairAsync(now);
  log.addSecret(pair.keyPem);
  return pair;
}
