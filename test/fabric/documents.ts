/**
 * The WireServer documents the simulator serves, built from a scenario (fabric-protocol.md §2.1–2.4, §4.1). Element
 * names and nesting follow the documents the real fabric sends; values come from the scenario.
 */
import { extensionsAt, type Scenario } from './scenario';

/** Escapes an attribute value. */
function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Escapes element text the way the fabric does (quotes stay as they are, e.g. in RuntimeSettings JSON). */
function escText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** `GET /?comp=versions`. */
export function versionsXml(): string {
  return [
    '<?xml version="1.0" encoding="utf-8"?>',
    '<Versions>',
    '  <Preferred>',
    '    <Version>2012-11-30</Version>',
    '  </Preferred>',
    '  <Supported>',
    '    <Version>2010-12-15</Version>',
    '    <Version>2010-28-10</Version>',
    '    <Version>2012-11-30</Version>',
    '  </Supported>',
    '</Versions>',
    '',
  ].join('\n');
}

/** The path part (with query) of a configuration sub-document for this incarnation. */
export function configPath(sc: Scenario, incarnation: number, type: string): string {
  const q = type === 'certificates' ? `comp=certificates&incarnation=${incarnation}` : `comp=config&type=${type}&incarnation=${incarnation}`;
  return `/machine/${sc.ids.containerId}/${encodeURIComponent(sc.ids.deploymentName)}.${encodeURIComponent(sc.ids.instanceName)}?${q}`;
}

/** `GET /machine/?comp=goalstate`: the goal state pointing back at `base` (e.g. `http://127.0.0.1:80`). */
export function goalStateXml(sc: Scenario, incarnation: number, base: string): string {
  const url = (type: string): string => escText(base + configPath(sc, incarnation, type));
  const L = [
    '<?xml version="1.0" encoding="utf-8"?>',
    '<GoalState xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="goalstate10.xsd">',
    '  <Version>2010-12-15</Version>',
    `  <Incarnation>${incarnation}</Incarnation>`,
    '  <Machine>',
    '    <ExpectedState>Started</ExpectedState>',
    '    <StopRolesDeadlineHint>300000</StopRolesDeadlineHint>',
    '    <LBProbePorts>',
    '      <Port>16001</Port>',
    '    </LBProbePorts>',
    '    <ExpectHealthReport>FALSE</ExpectHealthReport>',
    '  </Machine>',
    '  <Container>',
    `    <ContainerId>${escText(sc.ids.containerId)}</ContainerId>`,
    '    <RoleInstanceList>',
    '      <RoleInstance>',
    `        <InstanceId>${escText(sc.ids.instanceId)}</InstanceId>`,
    '        <State>Started</State>',
    '        <Configuration>',
    `          <HostingEnvironmentConfig>${url('hostingEnvironmentConfig')}</HostingEnvironmentConfig>`,
    `          <SharedConfig>${url('sharedConfig')}</SharedConfig>`,
  ];
  if (sc.withExtensionsConfig) L.push(`          <ExtensionsConfig>${url('extensionsConfig')}</ExtensionsConfig>`);
  L.push(`          <FullConfig>${url('fullConfig')}</FullConfig>`);
  if (sc.certificates.length) L.push(`          <Certificates>${url('certificates')}</Certificates>`);
  L.push(
    `          <ConfigName>${escText(sc.ids.configName)}</ConfigName>`,
    '        </Configuration>',
    '      </RoleInstance>',
    '    </RoleInstanceList>',
    '  </Container>',
    '</GoalState>',
    '',
  );
  return L.join('\n');
}

function guid(seed: string): string {
  const h = require('node:crypto').createHash('sha1').update(seed).digest('hex') as string;
  return `{${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}}`;
}

/** HostingEnvironmentConfig (§2.3). */
export function hostingEnvironmentXml(sc: Scenario, incarnation: number): string {
  const d = sc.ids;
  return [
    `<HostingEnvironmentConfig version="1.0.0.0" goalStateIncarnation="${incarnation}">`,
    '  <StoredCertificates />',
    `  <Deployment name="${esc(d.deploymentName)}" guid="${guid('dep' + d.deploymentName)}" incarnation="0">`,
    `    <Service name="${esc(d.roleName)}Service" guid="{00000000-0000-0000-0000-000000000000}" />`,
    `    <ServiceInstance name="${esc(d.deploymentName)}.0" guid="${guid('si' + d.deploymentName)}" />`,
    '  </Deployment>',
    `  <Incarnation number="1" instance="${esc(d.instanceName)}" guid="${guid('inc' + d.instanceName)}" />`,
    `  <Role guid="${guid('role' + d.roleName)}" name="${esc(d.roleName)}" hostingEnvironmentVersion="1" software="" softwareType="ApplicationPackage" entryPoint="" parameters="" settleTimeSeconds="0" />`,
    '  <HostingEnvironmentSettings name="full" runtime="rd_fabric_stable.runtimePackage_1.0.0.0.zip">',
    '    <CAS mode="full" />',
    '    <PrivilegeLevel mode="max" />',
    '    <AdditionalProperties><CgiHandlers></CgiHandlers></AdditionalProperties>',
    '  </HostingEnvironmentSettings>',
    '  <ApplicationSettings />',
    '  <ResourceReferences />',
    '</HostingEnvironmentConfig>',
    '',
  ].join('\n');
}

/** SharedConfig (§2.4); the instance address is a documentation-range address, never contacted. */
export function sharedConfigXml(sc: Scenario, incarnation: number): string {
  const d = sc.ids;
  return [
    `<SharedConfig version="1.0.0.0" goalStateIncarnation="${incarnation}">`,
    `  <Deployment name="${esc(d.deploymentName)}" guid="${guid('dep' + d.deploymentName)}" incarnation="0">`,
    `    <Service name="${esc(d.roleName)}Service" guid="{00000000-0000-0000-0000-000000000000}" />`,
    `    <ServiceInstance name="${esc(d.deploymentName)}.0" guid="${guid('si' + d.deploymentName)}" />`,
    '  </Deployment>',
    `  <Incarnation number="1" instance="${esc(d.instanceName)}" guid="${guid('inc' + d.instanceName)}" />`,
    `  <Role guid="${guid('role' + d.roleName)}" name="${esc(d.roleName)}" settleTimeSeconds="0" />`,
    '  <LoadBalancerSettings timeoutSeconds="0" waitLoadBalancerProbeCount="8">',
    '    <Probes>',
    `      <Probe name="${esc(d.roleName)}" />`,
    '    </Probes>',
    '  </LoadBalancerSettings>',
    '  <OutputEndpoints />',
    '  <Instances>',
    `    <Instance id="${esc(d.instanceName)}" address="192.0.2.4">`,
    '      <FaultDomains randomId="0" updateId="0" updateCount="0" />',
    '      <InputEndpoints>',
    '        <Endpoint name="ssh" address="192.0.2.4:22" protocol="tcp" isPublic="true" loadBalancedPublicAddress="198.51.100.7:22" enableDirectServerReturn="false" isDirectAddress="false" disableStealthMode="false">',
    '          <LocalPorts>',
    '            <LocalPortRange from="22" to="22" />',
    '          </LocalPorts>',
    '        </Endpoint>',
    '      </InputEndpoints>',
    '    </Instance>',
    '  </Instances>',
    '</SharedConfig>',
    '',
  ].join('\n');
}

/** Path of mirror `i` of a handler's extension manifest on the simulator's storage. */
export function storageManifestPath(name: string, i = 0): string {
  return `/storage/manifests/m${i}/${encodeURIComponent(name)}.xml`;
}

/** Path of mirror `i` of a package on the simulator's storage. */
export function storagePackagePath(name: string, version: string, i = 0): string {
  return `/storage/packages/m${i}/${encodeURIComponent(name)}__${encodeURIComponent(version)}.zip`;
}

/** Path of the InVMArtifactsProfile blob. */
export const ARTIFACTS_PROFILE_PATH = '/storage/artifactsProfile';

/** An extension manifest (fabric-protocol.md §4.3) listing `versions` in order. */
export function manifestXml(versions: { version: string; uris: string[]; internal?: boolean }[]): string {
  const plugin = (v: { version: string; uris: string[] }): string[] => [
    '    <Plugin>',
    `      <Version>${escText(v.version)}</Version>`,
    '      <Uris>',
    ...v.uris.map((u) => `        <Uri>${escText(u)}</Uri>`),
    '      </Uris>',
    '    </Plugin>',
  ];
  return [
    '<?xml version="1.0" encoding="utf-8"?>',
    '<PluginVersionManifest xmlns:i="http://www.w3.org/2001/XMLSchema-instance">',
    '  <Plugins>',
    ...versions.filter((v) => !v.internal).flatMap(plugin),
    '  </Plugins>',
    '  <InternalPlugins>',
    ...versions.filter((v) => v.internal).flatMap(plugin),
    '  </InternalPlugins>',
    '</PluginVersionManifest>',
    '',
  ].join('\n');
}

export interface ExtensionsConfigOptions {
  /** Base URL of the simulator's storage (manifests, artifacts profile); default: an unreachable address. */
  base?: string;
  /** Encrypts clear protected settings (see ExtensionSpec.protectedSettingsPlain): base64 CMS and the thumbprint. */
  encrypt?: (plain: unknown, thumbprint: string | undefined) => { data: string; thumbprint: string };
}

/** ExtensionsConfig (§4.1) with the status upload blob at `blobUrl`. */
export function extensionsConfigXml(sc: Scenario, incarnation: number, blobUrl: string, opts: ExtensionsConfigOptions = {}): string {
  const base = opts.base ?? 'http://127.0.0.1:9';
  const exts = extensionsAt(sc, incarnation);
  const L = [
    `<Extensions version="1.0.0.0" goalStateIncarnation="${incarnation}"><GuestAgentExtension xmlns:i="http://www.w3.org/2001/XMLSchema-instance">`,
    '  <GAFamilies>',
    '    <GAFamily>',
    '      <Name>Prod</Name>',
    '      <Version>9.9.9.9</Version>',
    '      <IsVersionFromRSM>false</IsVersionFromRSM>',
    '      <IsVMEnabledForRSMUpgrades>false</IsVMEnabledForRSMUpgrades>',
    '      <Uris>',
    '        <Uri>http://127.0.0.1:9/unused/Prod_manifest.xml</Uri>',
    '      </Uris>',
    '    </GAFamily>',
    '  </GAFamilies>',
    '  <Location>simulated</Location>',
    '  <ServiceName>CRP</ServiceName>',
    '</GuestAgentExtension>',
  ];
  if (sc.requiredFeatures?.length) {
    L.push('<RequiredFeatures>', ...sc.requiredFeatures.map((f) => `  <RequiredFeature><Name>${escText(f)}</Name></RequiredFeature>`), '</RequiredFeatures>');
  }
  L.push(`<StatusUploadBlob statusBlobType="${sc.statusBlobType}">${escText(blobUrl)}</StatusUploadBlob>`, '<Plugins>');
  for (const e of exts) {
    const uris = e.manifestUris ?? Array.from({ length: Math.max(1, e.manifestLocations ?? 1) }, (_, i) => base + storageManifestPath(e.name, i));
    const attrs: Record<string, string> = {
      name: e.name, version: e.version, location: uris[0] ?? '', ...(uris[1] ? { failoverlocation: uris[1] } : {}), state: e.state,
      autoUpgrade: 'false', runAsStartupTask: 'false', isJson: 'true', useExactVersion: 'true',
      ...(e.encodedSignature ? { encodedSignature: e.encodedSignature } : {}), ...e.attrs,
    };
    const a = Object.entries(attrs).map(([k, v]) => `${k}="${esc(v)}"`).join(' ');
    if (uris.length > 2) {
      L.push(`  <Plugin ${a}>`, '    <additionalLocations>', ...uris.slice(2).map((u) => `      <additionalLocation>${escText(u)}</additionalLocation>`), '    </additionalLocations>', '  </Plugin>');
    } else L.push(`  <Plugin ${a} />`);
  }
  L.push('</Plugins>', '<PluginSettings>');
  const handlerSettings = (pub: unknown, prot: string | undefined, thumb: string | undefined, plain: unknown): Record<string, unknown> => {
    const hs: Record<string, unknown> = {};
    if (plain !== undefined && opts.encrypt) {
      const enc = opts.encrypt(plain, thumb);
      hs.protectedSettingsCertThumbprint = enc.thumbprint;
      hs.protectedSettings = enc.data;
    } else if (prot) {
      hs.protectedSettingsCertThumbprint = thumb;
      hs.protectedSettings = prot;
    }
    if (pub !== undefined) hs.publicSettings = pub;
    return hs;
  };
  for (const e of exts) {
    if (e.noSettings) continue;
    L.push(`  <Plugin name="${esc(e.name)}" version="${esc(e.version)}">`);
    if (e.dependencyLevel !== undefined || e.dependsOn?.length) {
      L.push(`    <DependsOn dependencyLevel="${e.dependencyLevel ?? 0}">`, ...(e.dependsOn ?? []).map((h) => `      <DependsOnExtension handler="${esc(h)}" />`), '    </DependsOn>');
    }
    if (e.multiConfig) {
      for (const x of e.multiConfig) {
        const json = JSON.stringify({ runtimeSettings: [{ handlerSettings: handlerSettings(x.publicSettings, undefined, e.protectedSettingsCertThumbprint, x.protectedSettingsPlain) }] });
        L.push(`    <ExtensionRuntimeSettings seqNo="${x.seqNo}" name="${esc(x.name)}" state="${x.state ?? 'enabled'}">${escText(json)}</ExtensionRuntimeSettings>`);
      }
    } else {
      const json = JSON.stringify({ runtimeSettings: [{ handlerSettings: handlerSettings(e.publicSettings, e.protectedSettings, e.protectedSettingsCertThumbprint, e.protectedSettingsPlain) }] });
      L.push(`    <RuntimeSettings seqNo="${e.seqNo}">${escText(json)}</RuntimeSettings>`);
    }
    L.push('  </Plugin>');
  }
  L.push('</PluginSettings>');
  if (sc.artifactsProfile !== undefined) L.push(`<InVMArtifactsProfileBlob>${escText(base + ARTIFACTS_PROFILE_PATH + '?sv=2018-03-28&sr=b&sp=r&sig=SIMULATED')}</InVMArtifactsProfileBlob>`);
  L.push(`<InVMGoalStateMetaData inSvdSeqNo="${incarnation}" createdOnTicks="${BigInt(Date.now()) * 10000n + 621355968000000000n}" activityId="00000000-0000-0000-0000-000000000000" correlationId="00000000-0000-0000-0000-000000000000" />`);
  L.push('</Extensions>', '');
  return L.join('\n');
}
