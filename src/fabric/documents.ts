/**
 * Typed parsers for the WireServer's documents (fabric-protocol.md §2.1–2.5, §3.3, §4.1): parse at the edge, pass
 * typed values on. Lookup is by local name, descendant search, first match (§0.1); unknown elements are ignored.
 * Every parser throws `DocumentError` (or `XmlError` for malformed XML) naming the document.
 */
import { parseXml, find, findAll, findPath, childText, textOf, attr, type XmlElement } from '../core/xml';
import { isSafeIncarnation } from '../core/safe-names';

/** A document is well-formed XML but lacks something the agent needs. */
export class DocumentError extends Error {
  constructor(what: string, detail: string) { super(`${what}: ${detail}`); this.name = 'DocumentError'; }
}

/**
 * Largest body accepted per fabric document (issue 10 item 3; the HTTP default of 64 MiB is for storage). Each cap is
 * far above what the document can hold by its spec: versions and the goal state are a few hundred bytes to a few KB
 * (§2.1, §2.2); HostingEnvironmentConfig describes this VM only (§2.3); SharedConfig lists every instance of the
 * deployment at ~300 bytes each (§2.4), so 8 MiB is tens of thousands of instances; Certificates carries one PFX of the
 * VM's tenant certificates, a few KB each (§3.3); ExtensionsConfig carries every handler's settings, protected
 * settings included (§4.1; ARM caps an extension's settings far below 1 MiB, a VM's extensions at a few dozen); a
 * handler manifest lists its versions (§4.3); RemoteAccessInfo a few JIT users (§2.6).
 */
export const MAX_DOC_BYTES = {
  versions: 64 * 1024,
  goalState: 1024 * 1024,
  hostingEnv: 1024 * 1024,
  sharedConfig: 8 * 1024 * 1024,
  certificates: 8 * 1024 * 1024,
  extensionsConfig: 32 * 1024 * 1024,
  manifest: 4 * 1024 * 1024,
  remoteAccess: 1024 * 1024,
  /** Answers the agent reads only for an error text (health, role properties, host plugin). */
  reply: 64 * 1024,
} as const;

/** The wire protocol version this agent speaks. */
export const WIRE_PROTOCOL_VERSION = '2012-11-30';

export interface Versions { preferred?: string; supported: string[] }

/** Parses `/?comp=versions`. */
export function parseVersions(xml: string): Versions {
  const root = parseXml(xml, 'versions');
  return {
    preferred: childText(find(root, 'Preferred'), 'Version')?.trim(),
    supported: findAll(find(root, 'Supported'), 'Version').map((v) => (textOf(v) ?? '').trim()).filter(Boolean),
  };
}

/** True when the fabric accepts `2012-11-30`, as Preferred or among Supported (§2.1: accept either). */
export function supportsWireVersion(v: Versions, version = WIRE_PROTOCOL_VERSION): boolean {
  return v.preferred === version || v.supported.includes(version);
}

export interface GoalStateDoc {
  incarnation: string;
  containerId: string;
  /** Absent when the document has no RoleInstance yet ("not ready", §2.2): re-request. */
  roleInstanceId?: string;
  configName?: string;
  hostingEnvUri?: string;
  sharedConfigUri?: string;
  extensionsConfigUri?: string;
  certificatesUri?: string;
  remoteAccessUri?: string;
  /** Machine/LBProbePorts/Port values (D28). */
  lbProbePorts: number[];
}

const trimmed = (s: string | undefined): string | undefined => {
  const t = s?.trim();
  return t ? t : undefined;
};

/** Parses the goal state (§2.2). Missing Incarnation or ContainerId, or an Incarnation that is not a safe file-name
 *  component (core/safe-names) → `DocumentError`. */
export function parseGoalState(xml: string): GoalStateDoc {
  const root = parseXml(xml, 'goal state');
  const incarnation = trimmed(childText(root, 'Incarnation'));
  if (!incarnation) throw new DocumentError('goal state', 'no Incarnation');
  // the incarnation names files in Lib.Dir (GoalState.<n>.xml): a strict pattern, never a path (issue 10)
  if (!isSafeIncarnation(incarnation)) throw new DocumentError('goal state', `unsafe Incarnation ${JSON.stringify(incarnation.slice(0, 80))}`);
  const container = find(root, 'Container');
  const containerId = trimmed(childText(container, 'ContainerId'));
  if (!containerId) throw new DocumentError('goal state', 'no Container/ContainerId');
  const ri = findPath(container, 'RoleInstanceList', 'RoleInstance');
  const conf = find(ri, 'Configuration');
  const ports = findAll(findPath(root, 'Machine', 'LBProbePorts'), 'Port')
    .map((p) => Number((textOf(p) ?? '').trim()))
    .filter((n) => Number.isInteger(n) && n > 0 && n < 65536);
  return {
    incarnation,
    containerId,
    roleInstanceId: trimmed(childText(ri, 'InstanceId')),
    configName: trimmed(childText(conf, 'ConfigName')),
    hostingEnvUri: trimmed(childText(conf, 'HostingEnvironmentConfig')),
    sharedConfigUri: trimmed(childText(conf, 'SharedConfig')),
    extensionsConfigUri: trimmed(childText(conf, 'ExtensionsConfig')),
    certificatesUri: trimmed(childText(conf, 'Certificates')),
    remoteAccessUri: trimmed(childText(container, 'RemoteAccessInfo')),
    lbProbePorts: ports,
  };
}

export interface HostingEnvDoc { vmName: string; roleName: string; deploymentName: string }

/** Parses HostingEnvironmentConfig (§2.3): instance, role and deployment names ('' when absent). */
export function parseHostingEnv(xml: string): HostingEnvDoc {
  const root = parseXml(xml, 'HostingEnvironmentConfig');
  return {
    vmName: attr(find(root, 'Incarnation'), 'instance'),
    roleName: attr(find(root, 'Role'), 'name'),
    deploymentName: attr(find(root, 'Deployment'), 'name'),
  };
}

export interface SharedConfigDoc {
  instanceName: string;
  /** Private address of this instance (`Instances/Instance[@id=instance]/@address`). */
  address?: string;
  rdmaIPv4Address?: string;
  rdmaMacAddress?: string;
}

/** Parses SharedConfig (§2.4); the agent mainly stores it verbatim, this extracts the few values it may need. */
export function parseSharedConfig(xml: string): SharedConfigDoc {
  const root = parseXml(xml, 'SharedConfig');
  const instanceName = attr(find(root, 'Incarnation'), 'instance');
  const instances = findAll(find(root, 'Instances'), 'Instance');
  const me = instances.find((i) => attr(i, 'id') === instanceName) ?? instances[0];
  return {
    instanceName,
    address: trimmed(attr(me, 'address')),
    rdmaIPv4Address: trimmed(attr(me, 'rdmaIPv4Address')),
    rdmaMacAddress: trimmed(attr(me, 'rdmaMacAddress')),
  };
}

export interface CertificatesDoc {
  incarnation?: string;
  format?: string;
  /** DER CMS blob; undefined when the VM has no certificates (no Data, or a Format other than Pkcs7BlobWithPfxContents). */
  data?: Buffer;
}

/** Parses the Certificates document (§3.3). */
export function parseCertificatesDoc(xml: string): CertificatesDoc {
  const root = parseXml(xml, 'Certificates');
  const format = trimmed(childText(root, 'Format'));
  const data = childText(root, 'Data');
  const doc: CertificatesDoc = { incarnation: trimmed(childText(root, 'Incarnation')), format };
  if (format && format !== 'Pkcs7BlobWithPfxContents') return doc;
  const b64 = data?.replace(/\s+/g, '');
  if (b64) {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new DocumentError('Certificates', 'Data is not base64');
    doc.data = Buffer.from(b64, 'base64');
  }
  return doc;
}

export type StatusBlobType = 'BlockBlob' | 'PageBlob';

export interface PluginDoc {
  name: string;
  version: string;
  /** `enabled`, `disabled`, `uninstall`, or '' (invalid handler). */
  state: string;
  /** Manifest URLs in order: location, failoverlocation, additionalLocations. */
  manifestUris: string[];
  encodedSignature?: string;
  /** All attributes as written (autoUpgrade, isJson, ...). */
  attrs: Record<string, string>;
}

export interface PluginSettingsDoc {
  name: string;
  version: string;
  /** Single-config settings: seqNo text and the JSON text. */
  runtimeSettings: { seqNo: string; json: string }[];
  /** Multi-config settings. */
  extensionRuntimeSettings: { name: string; seqNo: string; state: string; json: string }[];
  dependencyLevel?: string;
  dependsOn: { handler: string; extension: string }[];
}

export interface ExtensionsConfigDoc {
  statusUploadBlob?: { url: string; type: StatusBlobType };
  artifactsProfileBlob?: string;
  plugins: PluginDoc[];
  pluginSettings: PluginSettingsDoc[];
  requiredFeatures: string[];
  gaFamilies: { name: string; version?: string; uris: string[] }[];
  inSvdSeqNo?: string;
  createdOnTicks?: string;
  activityId?: string;
  correlationId?: string;
}

function directChildren(el: XmlElement | undefined, local: string): XmlElement[] {
  return (el?.children ?? []).filter((c): c is XmlElement => typeof c !== 'string' && c.local === local);
}

/** Parses ExtensionsConfig (§4.1). URLs are used verbatim (entities decoded only). */
export function parseExtensionsConfig(xml: string): ExtensionsConfigDoc {
  const root = parseXml(xml, 'ExtensionsConfig');
  const sub = find(root, 'StatusUploadBlob');
  const subUrl = trimmed(textOf(sub));
  const blobType = attr(sub, 'statusBlobType');
  const plugins = directChildren(find(root, 'Plugins'), 'Plugin').map((p): PluginDoc => {
    const uris = [attr(p, 'location'), attr(p, 'failoverlocation'),
      ...findAll(find(p, 'additionalLocations'), 'additionalLocation').map((a) => (textOf(a) ?? '').trim())]
      .filter(Boolean);
    return {
      name: attr(p, 'name'), version: attr(p, 'version'), state: attr(p, 'state'),
      manifestUris: uris, encodedSignature: trimmed(attr(p, 'encodedSignature')), attrs: { ...p.attrs },
    };
  });
  const pluginSettings = directChildren(find(root, 'PluginSettings'), 'Plugin').map((p): PluginSettingsDoc => {
    const dep = find(p, 'DependsOn');
    return {
      name: attr(p, 'name'),
      version: attr(p, 'version'),
      runtimeSettings: findAll(p, 'RuntimeSettings').map((r) => ({ seqNo: attr(r, 'seqNo'), json: textOf(r) ?? '' })),
      extensionRuntimeSettings: findAll(p, 'ExtensionRuntimeSettings').map((r) => ({
        name: attr(r, 'name'), seqNo: attr(r, 'seqNo'), state: attr(r, 'state') || 'enabled', json: textOf(r) ?? '',
      })),
      dependencyLevel: dep ? attr(dep, 'dependencyLevel') : undefined,
      dependsOn: findAll(dep, 'DependsOnExtension').map((d) => ({ handler: attr(d, 'handler'), extension: attr(d, 'extension') })),
    };
  });
  const meta = find(root, 'InVMGoalStateMetaData');
  return {
    statusUploadBlob: subUrl ? { url: subUrl, type: blobType === 'PageBlob' ? 'PageBlob' : 'BlockBlob' } : undefined,
    artifactsProfileBlob: trimmed(childText(root, 'InVMArtifactsProfileBlob')),
    plugins,
    pluginSettings,
    requiredFeatures: findAll(find(root, 'RequiredFeatures'), 'RequiredFeature')
      .map((f) => (childText(f, 'Name') ?? '').trim()).filter(Boolean),
    gaFamilies: findAll(find(root, 'GAFamilies'), 'GAFamily').map((g) => ({
      name: (childText(g, 'Name') ?? '').trim(),
      version: trimmed(childText(g, 'Version')),
      uris: findAll(find(g, 'Uris'), 'Uri').map((u) => (textOf(u) ?? '').trim()).filter(Boolean),
    })),
    inSvdSeqNo: trimmed(attr(meta, 'inSvdSeqNo')),
    createdOnTicks: trimmed(attr(meta, 'createdOnTicks')),
    activityId: trimmed(attr(meta, 'activityId')),
    correlationId: trimmed(attr(meta, 'correlationId')),
  };
}
