/**
 * Scenarios for the fabric simulator and the throwaway VM: what the VM is given (ovf-env.xml fields, tenant
 * certificates, extensions, incarnation changes) and which faults the simulated fabric injects. A scenario is plain
 * JSON-serialisable data so that the standalone simulator (run-simulator.ts) can load it from a file.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { makeTenantCertificate } from './certgen';

/** The kinds of request the simulator tells apart (used for counting, faults and incarnation triggers). */
export type RequestKind =
  | 'versions' | 'goalstate' | 'hostingEnvironmentConfig' | 'sharedConfig' | 'extensionsConfig' | 'fullConfig'
  | 'certificates' | 'health' | 'roleProperties' | 'telemetry' | 'healthService'
  | 'hgVersions' | 'hgHealth' | 'hgStatus' | 'hgVmSettings' | 'hgArtifact'
  | 'blob' | 'extManifest' | 'extPackage' | 'artifactsProfile' | 'imds' | 'unknown';

/** A tenant certificate handed to the VM through the Certificates document. */
export interface TenantCert {
  certPem: string;
  /** Present when the PFX should carry the private key too. */
  keyPem?: string;
  /** Uppercase SHA-1 hex of the DER. */
  thumbprint: string;
}

/** An injected fault. It fires on the listed attempts (1-based count of requests of that kind), or on all. */
export interface Fault {
  kind: RequestKind | '*';
  /** Only requests whose path (with query) contains this text. */
  pathIncludes?: string;
  /** Attempt numbers (1-based, per kind) at which the fault fires; absent → every attempt. */
  attempts?: number[];
  /** Answer with this status instead of the normal response. */
  status?: number;
  /** Retry-After header (seconds) sent with `status`. */
  retryAfter?: number;
  /** Body sent with `status` (default: a short text). */
  body?: string;
  /** Hold the response this many ms before answering (combined with the other effects, or a normal answer). */
  stallMs?: number;
  /** Send a Content-Length for the full body but only half of it, then close the connection. */
  truncate?: boolean;
  /** Answer 200 with a body that is not well-formed XML/JSON. */
  malformed?: boolean;
  /** Destroy the connection without answering. */
  drop?: boolean;
  /** Certificates only: answer 200 with a well-formed document whose PKCS#7 blob (the base64 Data) is cut to half
   *  its length, so that it never decrypts. */
  truncateBlob?: boolean;
  /** Declare a Content-Length this many bytes larger than the body sent, then close (a wrong size). */
  extraContentLength?: number;
  /** Send half the body, then hold the connection open this many ms before closing it (a stall mid-body). */
  stallMidBodyMs?: number;
  /** Flip one byte in the middle of the body (a corrupt download: a zip then fails its CRC check). */
  corrupt?: boolean;
  /** Answer 200 with this body instead of the normal one (e.g. an HTML error page). */
  replaceBody?: string;
}

/** An extension handler the goal state lists (ExtensionsConfig, fabric-protocol.md §4.1). */
export interface ExtensionSpec {
  name: string;
  version: string;
  state: 'enabled' | 'disabled' | 'uninstall';
  seqNo: number;
  publicSettings?: unknown;
  /** Base64 CMS addressed to a tenant certificate, with its thumbprint. */
  protectedSettings?: string;
  protectedSettingsCertThumbprint?: string;
  /**
   * Protected settings in clear (a JSON value): the simulator encrypts them, as Azure does (extensions.md §7.2), to
   * the tenant certificate `protectedSettingsCertThumbprint` names, else to the scenario's first certificate, and
   * fills in the thumbprint. The ciphertext stays the same while the plaintext does (no spurious settings change).
   */
  protectedSettingsPlain?: unknown;
  /** `@encodedSignature` of the Plugin element. */
  encodedSignature?: string;
  /** `DependsOn/@dependencyLevel` and the handlers it names (`DependsOnExtension/@handler`). */
  dependencyLevel?: number;
  dependsOn?: string[];
  /** Multi-config: `ExtensionRuntimeSettings` elements instead of `RuntimeSettings`. */
  multiConfig?: { name: string; seqNo: number; state?: 'enabled' | 'disabled'; publicSettings?: unknown; protectedSettingsPlain?: unknown }[];
  /** Extra Plugin attributes (override the defaults, e.g. `{ state: '' }` for an invalid handler). */
  attrs?: Record<string, string>;
  /** How many manifest URLs the Plugin lists (location, failoverlocation, additionalLocations; default 1). */
  manifestLocations?: number;
  /** Write no PluginSettings for this handler (a legacy "no settings" handler). */
  noSettings?: boolean;
  /** Manifest URLs to list instead of the simulator's own (e.g. an unreachable one). */
  manifestUris?: string[];
}

/** An extension package the simulator serves and lists in the handler's manifest (extensions.md §13.2–13.3). */
export interface ExtensionPackageSpec {
  name: string;
  version: string;
  /** The zip, base64 (built at test time, e.g. by test/fabric/fake-extension.ts or test/fabric/zip.ts). */
  zipBase64: string;
  /** Listed under `InternalPlugins`. */
  internal?: boolean;
  /** How many alternative package URLs the manifest lists (default 1); mirror i is served at `.../m<i>/...`. */
  mirrors?: number;
}

/** Raises the incarnation once the Nth request of a kind has been answered. */
export interface IncarnationTrigger {
  afterKind: RequestKind;
  count: number;
}

export interface PublicKeySpec {
  path: string;
  /** The OpenSSH line (given by value). */
  value?: string;
  /** Thumbprint of a tenant certificate (given by reference). */
  fingerprint?: string;
}

export interface KeyPairSpec {
  path: string;
  fingerprint: string;
}

export interface Scenario {
  name: string;
  hostName: string;
  userName: string;
  userPassword?: string;
  /** Written into the OVF as given (true/false); absent → element omitted. */
  disableSshPasswordAuthentication?: boolean;
  publicKeys: PublicKeySpec[];
  keyPairs: KeyPairSpec[];
  /** Raw custom data; the OVF carries its base64 encoding. */
  customData?: string;
  /** Text of ProvisionGuestAgent; null → element omitted. */
  provisionGuestAgent: string | null;
  certificates: TenantCert[];
  extensions: ExtensionSpec[];
  /** Whether the goal state lists an ExtensionsConfig URL at all. */
  withExtensionsConfig: boolean;
  statusBlobType: 'BlockBlob' | 'PageBlob';
  /** Starting incarnation. */
  incarnation: number;
  incarnationTriggers: IncarnationTrigger[];
  ids: {
    containerId: string;
    /** The role instance id (`<deployment>.<instance name>`). */
    instanceId: string;
    configName: string;
    deploymentName: string;
    roleName: string;
    instanceName: string;
  };
  /** Status the host plugin gives /vmSettings (the agent must fall back to ExtensionsConfig). */
  vmSettingsStatus: number;
  /** IMDS compute/publicKeys answer (only served when the simulator starts an IMDS listener). */
  imdsPublicKeys: { keyData: string; path: string }[];
  faults: Fault[];
  /** Packages served (manifests are built from them per handler name). Absent → none. */
  extensionPackages?: ExtensionPackageSpec[];
  /** The extension list from an incarnation on (the entry with the highest `fromIncarnation` ≤ the incarnation
   *  served wins; below all of them, `extensions`). */
  extensionsByIncarnation?: { fromIncarnation: number; extensions: ExtensionSpec[] }[];
  /** `RequiredFeatures/RequiredFeature/Name` of the ExtensionsConfig. */
  requiredFeatures?: string[];
  /** The InVMArtifactsProfile served (JSON value, or a string sent verbatim); absent → no InVMArtifactsProfileBlob. */
  artifactsProfile?: unknown;
}

/** The extension list the ExtensionsConfig of `incarnation` carries. */
export function extensionsAt(sc: Scenario, incarnation: number): ExtensionSpec[] {
  let best: { fromIncarnation: number; extensions: ExtensionSpec[] } | undefined;
  for (const e of sc.extensionsByIncarnation ?? []) {
    if (e.fromIncarnation <= incarnation && (!best || e.fromIncarnation >= best.fromIncarnation)) best = e;
  }
  return best ? best.extensions : sc.extensions;
}

/** OpenSSH `authorized_keys` form of an RSA or Ed25519 public key given as PEM (SPKI) or KeyObject export. */
export function opensshPublicKey(spkiPem: string, comment = ''): string {
  const { createPublicKey } = require('node:crypto') as typeof import('node:crypto');
  const key = createPublicKey(spkiPem);
  const jwk = key.export({ format: 'jwk' }) as { kty: string; n?: string; e?: string; crv?: string; x?: string };
  const str = (b: Buffer): Buffer => { const l = Buffer.alloc(4); l.writeUInt32BE(b.length); return Buffer.concat([l, b]); };
  const mpint = (b64u: string): Buffer => {
    let b = Buffer.from(b64u, 'base64url');
    while (b.length > 1 && b[0] === 0 && !(b[1] & 0x80)) b = b.subarray(1);
    if (b[0] & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
    return str(b);
  };
  let type: string;
  let blob: Buffer;
  if (jwk.kty === 'RSA') {
    type = 'ssh-rsa';
    blob = Buffer.concat([str(Buffer.from(type)), mpint(jwk.e!), mpint(jwk.n!)]);
  } else if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') {
    type = 'ssh-ed25519';
    blob = Buffer.concat([str(Buffer.from(type)), str(Buffer.from(jwk.x!, 'base64url'))]);
  } else {
    throw new Error(`opensshPublicKey: unsupported key type ${jwk.kty}/${jwk.crv ?? ''}`);
  }
  return `${type} ${blob.toString('base64')}${comment ? ' ' + comment : ''}`;
}

/**
 * The default scenario: user `azureuser` with a password, an Ed25519 SSH key given by value and an RSA key given by
 * tenant-certificate thumbprint (the certificate and its key travel in the Certificates document), a host name,
 * CustomData, ProvisionGuestAgent true, no extensions, a BlockBlob status blob, vmSettings answered 404.
 * Keys and certificates are generated fresh on each call.
 */
export function defaultScenario(): Scenario {
  const ed = generateKeyPairSync('ed25519');
  const byValue = opensshPublicKey(ed.publicKey.export({ type: 'spki', format: 'pem' }).toString(), 'scenario@by-value');
  const tenant = makeTenantCertificate({ cn: 'waagent-test-ssh-key' });
  const deployment = randomUUID().replace(/-/g, '');
  const user = 'azureuser';
  return {
    name: 'default',
    hostName: 'waagent-test-vm',
    userName: user,
    userPassword: 'Pa55w0rd!with spaces & <xml>',
    disableSshPasswordAuthentication: false,
    publicKeys: [
      { path: `$HOME/${user}/.ssh/authorized_keys`, value: byValue },
      { path: `$HOME/${user}/.ssh/authorized_keys`, fingerprint: tenant.thumbprint },
    ],
    keyPairs: [],
    customData: '#!/bin/sh\necho "custom data ran" > /var/tmp/customdata-ran\n',
    provisionGuestAgent: 'true',
    certificates: [{ certPem: tenant.certPem, keyPem: tenant.keyPem, thumbprint: tenant.thumbprint }],
    extensions: [],
    withExtensionsConfig: true,
    statusBlobType: 'BlockBlob',
    incarnation: 1,
    incarnationTriggers: [],
    ids: {
      containerId: randomUUID(),
      instanceId: `${deployment}.waagent-test-vm`,
      configName: `${deployment}.0.${deployment}.1.waagent-test-vm.1.xml`,
      deploymentName: deployment,
      roleName: 'waagent-test-vm',
      instanceName: 'waagent-test-vm',
    },
    vmSettingsStatus: 404,
    imdsPublicKeys: [],
    faults: [],
  };
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * The ovf-env.xml the provisioning DVD carries for `sc`, shaped like Azure's: default namespace OVF environment,
 * `wa:` for the Azure namespace, and a LinuxProvisioningConfigurationSet that declares the Azure namespace as its
 * default. Text is XML-escaped; CustomData is base64.
 */
export function buildOvfEnv(sc: Scenario): string {
  const L: string[] = [];
  L.push('<?xml version="1.0" encoding="utf-8"?>');
  L.push('<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" xmlns:oe="http://schemas.dmtf.org/ovf/environment/1" xmlns:wa="http://schemas.microsoft.com/windowsazure" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">');
  L.push('  <wa:ProvisioningSection>');
  L.push('    <wa:Version>1.0</wa:Version>');
  L.push('    <LinuxProvisioningConfigurationSet xmlns="http://schemas.microsoft.com/windowsazure" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">');
  L.push('      <ConfigurationSetType>LinuxProvisioningConfiguration</ConfigurationSetType>');
  L.push(`      <HostName>${esc(sc.hostName)}</HostName>`);
  L.push(`      <UserName>${esc(sc.userName)}</UserName>`);
  if (sc.userPassword !== undefined) L.push(`      <UserPassword>${esc(sc.userPassword)}</UserPassword>`);
  if (sc.disableSshPasswordAuthentication !== undefined) {
    L.push(`      <DisableSshPasswordAuthentication>${sc.disableSshPasswordAuthentication}</DisableSshPasswordAuthentication>`);
  }
  if (sc.publicKeys.length || sc.keyPairs.length) {
    L.push('      <SSH>');
    L.push('        <PublicKeys>');
    for (const k of sc.publicKeys) {
      L.push('          <PublicKey>');
      if (k.fingerprint) L.push(`            <Fingerprint>${esc(k.fingerprint)}</Fingerprint>`);
      L.push(`            <Path>${esc(k.path)}</Path>`);
      if (k.value) L.push(`            <Value>${esc(k.value)}</Value>`);
      L.push('          </PublicKey>');
    }
    L.push('        </PublicKeys>');
    L.push('        <KeyPairs>');
    for (const k of sc.keyPairs) {
      L.push('          <KeyPair>');
      L.push(`            <Fingerprint>${esc(k.fingerprint)}</Fingerprint>`);
      L.push(`            <Path>${esc(k.path)}</Path>`);
      L.push('          </KeyPair>');
    }
    L.push('        </KeyPairs>');
    L.push('      </SSH>');
  }
  if (sc.customData !== undefined) L.push(`      <CustomData>${Buffer.from(sc.customData).toString('base64')}</CustomData>`);
  L.push('    </LinuxProvisioningConfigurationSet>');
  L.push('  </wa:ProvisioningSection>');
  L.push('  <wa:PlatformSettingsSection>');
  L.push('    <wa:Version>1.0</wa:Version>');
  L.push('    <wa:PlatformSettings>');
  L.push('      <wa:KmsServerHostname>kms.core.windows.net</wa:KmsServerHostname>');
  if (sc.provisionGuestAgent !== null) L.push(`      <wa:ProvisionGuestAgent>${esc(sc.provisionGuestAgent)}</wa:ProvisionGuestAgent>`);
  L.push('      <wa:GuestAgentPackageName xsi:nil="true"/>');
  L.push('      <wa:RetainWindowsPEPassInUnattend>true</wa:RetainWindowsPEPassInUnattend>');
  L.push('      <wa:RetainOfflineServicingPassInUnattend>true</wa:RetainOfflineServicingPassInUnattend>');
  L.push('      <wa:PreprovisionedVm>false</wa:PreprovisionedVm>');
  L.push('    </wa:PlatformSettings>');
  L.push('  </wa:PlatformSettingsSection>');
  L.push('</Environment>');
  return L.join('\n') + '\n';
}
