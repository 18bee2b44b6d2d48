/**
 * The transport key pair and certificate (fabric-protocol.md §3.1): RSA 2048 from Node's crypto, a self-signed
 * certificate `CN=LinuxTransport` built with node-forge (sha256, SKI = SHA-1 of the RSAPublicKey, AKI = the same,
 * basicConstraints critical CA:TRUE), written as `<lib>/TransportPrivate.pem` and `<lib>/TransportCert.pem` (0600).
 */
import * as crypto from 'node:crypto';
import type { HostFs } from '../os/os';
import { log } from '../core/log';
import { forge } from './forge';

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

/** Generates a fresh transport pair in memory (RSA 2048, e 65537, 730 days). */
export function generateTransportPair(now: Date = new Date()): TransportPair {
  const f = forge();
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 65537 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const cert = f.pki.createCertificate();
  cert.publicKey = f.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  const serial = crypto.randomBytes(16);
  serial[0] &= 0x7f; serial[0] |= 0x01; // positive, no leading zero byte
  cert.serialNumber = serial.toString('hex');
  cert.validity.notBefore = new Date(now.getTime() - 5 * 60_000);
  cert.validity.notAfter = new Date(now.getTime() + 730 * 86400_000);
  const name = [{ name: 'commonName', value: 'LinuxTransport' }];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: true },
    { name: 'basicConstraints', cA: true, critical: true },
  ]);
  cert.sign(f.pki.privateKeyFromPem(keyPem) as Parameters<typeof cert.sign>[0], f.md.sha256.create());
  return pairFrom(keyPem, f.pki.certificateToPem(cert));
}

/** Checks that an existing pair is usable: parses, key matches the certificate, RSA, not expired. */
function validPair(keyPem: string, certPem: string, now: Date): boolean {
  try {
    const x = new crypto.X509Certificate(certPem);
    const key = crypto.createPrivateKey(keyPem);
    if (key.asymmetricKeyType !== 'rsa' || !x.checkPrivateKey(key)) return false;
    return new Date(x.validTo).getTime() > now.getTime() + 86400_000 && new Date(x.validFrom).getTime() <= now.getTime() + 86400_000;
  } catch {
    return false;
  }
}

/**
 * Returns the transport pair of `<libDir>`: an existing valid pair is reused; otherwise (missing, unreadable,
 * mismatched or expired) a new one is generated and both files are written atomically with mode 0600. Throws only if
 * the files cannot be written.
 */
export function ensureTransportPair(hostFs: HostFs, libDir: string, now: Date = new Date()): TransportPair {
  const keyPath = `${libDir}/${TRANSPORT_KEY_FILE}`;
  const certPath = `${libDir}/${TRANSPORT_CERT_FILE}`;
  const keyPem = hostFs.readText(keyPath);
  const certPem = hostFs.readText(certPath);
  if (keyPem && certPem && validPair(keyPem, certPem, now)) {
    log.addSecret(keyPem);
    return pairFrom(keyPem, certPem);
  }
  if (keyPem || certPem) log.info('Transport certificate missing, invalid or expiring: generating a new one');
  const pair = generateTransportPair(now);
  log.addSecret(pair.keyPem);
  hostFs.mkdir(libDir, 0o700);
  hostFs.write(keyPath, pair.keyPem, { mode: 0o600 });
  hostFs.write(certPath, pair.certPem, { mode: 0o600 });
  return pair;
}
