/**
 * ovf-env.xml → one typed value (provisioning-and-os.md §3.5). Elements are looked up by namespace URI + local name
 * (any prefix) with a descendant search; text is not trimmed except HostName, UserName, Fingerprint and Path. Host
 * and user names are validated here, so nothing unchecked reaches a command line. `redactOvf` rewrites a document
 * with every UserPassword emptied to `*` through the XML tree (§3.4 FIX).
 */
import { parseXml, findNs, findAllNs, textOf, escapeXml, type XmlElement, XmlError } from '../core/xml';
import { log } from '../core/log';
import { isSafeThumbprint } from '../core/safe-names';

export const OVF_NS = 'http://schemas.dmtf.org/ovf/environment/1';
export const WA_NS = 'http://schemas.microsoft.com/windowsazure';

export interface OvfPublicKey { path?: string; fingerprint?: string; value?: string }
export interface OvfKeyPair { path?: string; fingerprint?: string }

export interface OvfEnv {
  version: string;
  hostName: string;
  userName: string;
  /** Clear-text password; undefined when absent (→ sudo NOPASSWD). */
  userPassword?: string;
  /** Base64 CustomData as written (not decoded). */
  customData?: string;
  /** true only when DisableSshPasswordAuthentication is `true` (case-insensitive). */
  disableSshPasswordAuthentication: boolean;
  publicKeys: OvfPublicKey[];
  keyPairs: OvfKeyPair[];
  /** false only when PlatformSettings/ProvisionGuestAgent is `false` (D20). */
  provisionGuestAgent: boolean;
  preprovisionedVm?: string;
  preprovisionedVmType?: string;
}

export class OvfError extends Error {
  constructor(msg: string) { super(msg); this.name = 'OvfError'; }
}

const trimOpt = (s: string | undefined): string | undefined => { const t = s?.trim(); return t ? t : undefined; };

/** Throws OvfError unless `name` is a usable host name (§3.5); warns about labels longer than 63 characters. */
export function validateHostName(name: string): void {
  if (!name || !/^[A-Za-z0-9.-]+$/.test(name) || name.startsWith('-')) {
    throw new OvfError(`Invalid HostName in ovf-env.xml: ${JSON.stringify(name.slice(0, 80))} (allowed: A-Z a-z 0-9 . -, not starting with -)`);
  }
  if (name.split('.').some((l) => l.length > 63)) log.warn(`HostName ${name} has a label longer than 63 characters`);
}

/** Throws OvfError unless `name` is a safe user name: [A-Za-z0-9._-], not starting with `-`, at most 32 characters. */
export function validateUserName(name: string): void {
  if (!name || !/^[A-Za-z0-9._-]+$/.test(name) || name.startsWith('-') || name.length > 32 || name === '.' || name === '..') {
    throw new OvfError(`Invalid UserName in ovf-env.xml: ${JSON.stringify(name.slice(0, 80))} (allowed: A-Z a-z 0-9 . _ -, not starting with -, at most 32 characters)`);
  }
}

/** Parses ovf-env.xml text. Throws OvfError (missing required element, invalid names) or XmlError (malformed XML). */
export function parseOvf(text: string): OvfEnv {
  const root = parseXml(text, 'ovf-env.xml');
  // The root itself is normally the Environment: wrap it so the descendant search can find it.
  const doc: XmlElement = { tag: '#document', local: '#document', attrs: {}, children: [root] };
  root.parent = undefined;
  const env = findNs(doc, OVF_NS, 'Environment');
  if (!env) throw new OvfError('Environment not found in ovf-env.xml');
  const section = findNs(env, WA_NS, 'ProvisioningSection');
  if (!section) throw new OvfError('ProvisioningSection not found in ovf-env.xml');
  const version = textOf(findNs(env, WA_NS, 'Version'));
  if (version === undefined) throw new OvfError('Version not found in ovf-env.xml');
  if (version > '1.0') log.warn(`Newer provisioning configuration detected. Please consider updating waagent (version ${version})`);
  const set = findNs(section, WA_NS, 'LinuxProvisioningConfigurationSet');
  if (!set) throw new OvfError('LinuxProvisioningConfigurationSet not found in ovf-env.xml');
  const wa = (parent: XmlElement | undefined, local: string) => textOf(findNs(parent, WA_NS, local));

  const hostName = trimOpt(wa(set, 'HostName'));
  if (!hostName) throw new OvfError('HostName not found in ovf-env.xml');
  validateHostName(hostName);
  const userName = trimOpt(wa(set, 'UserName'));
  if (!userName) throw new OvfError('UserName not found in ovf-env.xml');
  validateUserName(userName);

  const publicKeys = findAllNs(set, WA_NS, 'PublicKey').map((k): OvfPublicKey => ({
    path: trimOpt(wa(k, 'Path')), fingerprint: trimOpt(wa(k, 'Fingerprint'))?.toUpperCase(), value: wa(k, 'Value'),
  }));
  const keyPairs = findAllNs(set, WA_NS, 'KeyPair').map((k): OvfKeyPair => ({
    path: trimOpt(wa(k, 'Path')), fingerprint: trimOpt(wa(k, 'Fingerprint'))?.toUpperCase(),
  }));

  // a Fingerprint names <lib>/<FP>.crt|.prv|.pub (fabric-protocol.md §3.6): a thumbprint, never a path (issue 10)
  // A public key with a Value never uses its Fingerprint: an odd one there is dropped, not fatal.
  for (const k of publicKeys) {
    if (k.fingerprint !== undefined && k.value !== undefined && !isSafeThumbprint(k.fingerprint)) {
      log.warn(`Ignoring the Fingerprint ${JSON.stringify(k.fingerprint.slice(0, 80))} of a public key with a Value: not a thumbprint`);
      k.fingerprint = undefined;
    }
  }
  for (const k of [...publicKeys, ...keyPairs]) {
    if (k.fingerprint !== undefined && !isSafeThumbprint(k.fingerprint)) {
      throw new OvfError(`Invalid Fingerprint in ovf-env.xml: ${JSON.stringify(k.fingerprint.slice(0, 80))} (expected 40 hex digits)`);
    }
  }

  const platform = findNs(findNs(env, WA_NS, 'PlatformSettingsSection'), WA_NS, 'PlatformSettings');
  const pga = wa(platform, 'ProvisionGuestAgent');
  let provisionGuestAgent = true;
  if (pga === undefined || !pga.trim()) log.warn('ProvisionGuestAgent is missing or empty in ovf-env.xml: assuming true');
  else provisionGuestAgent = pga.trim().toLowerCase() !== 'false';
  const preprovisionedVm = wa(platform, 'PreprovisionedVm');
  const preprovisionedVmType = wa(platform, 'PreprovisionedVMType');
  if (preprovisionedVm !== undefined) log.verbose(`PreprovisionedVm=${preprovisionedVm}${preprovisionedVmType ? ` (${preprovisionedVmType})` : ''}`);

  const userPassword = wa(set, 'UserPassword');
  if (userPassword) log.addSecret(userPassword);
  return {
    version,
    hostName,
    userName,
    userPassword,
    customData: wa(set, 'CustomData'),
    disableSshPasswordAuthentication: (wa(set, 'DisableSshPasswordAuthentication') ?? '').trim().toLowerCase() === 'true',
    publicKeys,
    keyPairs,
    provisionGuestAgent,
    preprovisionedVm,
    preprovisionedVmType,
  };
}

function serialize(el: XmlElement): string {
  const attrs = Object.entries(el.attrs).map(([k, v]) => ` ${k}="${escapeXml(v)}"`).join('');
  if (el.children.length === 0) return `<${el.tag}${attrs}/>`;
  const body = el.children.map((c) => (typeof c === 'string' ? escapeXml(c).replace(/&apos;/g, "'").replace(/&quot;/g, '"') : serialize(c))).join('');
  return `<${el.tag}${attrs}>${body}</${el.tag}>`;
}

/**
 * Returns `text` re-serialised with the content of every element whose local name is `UserPassword` (any prefix,
 * any content incl. CDATA and newlines) replaced by `*`. Comments and the XML declaration are normalised. Throws
 * XmlError on malformed input (the caller must then not store the text).
 */
export function redactOvf(text: string): string {
  const root = parseXml(text, 'ovf-env.xml');
  const walk = (el: XmlElement): void => {
    if (el.local === 'UserPassword') { el.children = ['*']; return; }
    for (const c of el.children) if (typeof c !== 'string') walk(c);
  };
  walk(root);
  return `<?xml version="1.0" encoding="utf-8"?>\n${serialize(root)}\n`;
}

export { XmlError };
