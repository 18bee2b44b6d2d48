/**
 * The fuzz targets (issue 10 campaign): every parser that reads outside input, one row each — its name, seeds generated
 * in code (never copied fixtures), the call, and the parser's own clean error types. Used by test/fuzz/fuzz.ts (the
 * campaign), test/unit/fuzz-short.test.ts (CI) and test/bench/parsers.ts (linearity, with the HOSTILE patterns below).
 * To add a parser: append a `Target` to TARGETS (and, when it has a quadratic-prone shape, a HOSTILE pattern).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { execFileSync } from 'node:child_process';
import { parseXml, XmlError } from '../../src/core/xml';
import {
  parseVersions, parseGoalState, parseHostingEnv, parseSharedConfig, parseCertificatesDoc, parseExtensionsConfig, DocumentError,
} from '../../src/fabric/documents';
import { parseOvf, redactOvf, OvfError } from '../../src/provision/ovf';
import { cleanOvfBytes } from '../../src/provision/dvd';
import { decryptEnvelopedData, Pkcs7Error } from '../../src/crypto/pkcs7';
import { parsePfx, Pkcs12Error } from '../../src/crypto/pkcs12';
import { decryptCertificates } from '../../src/crypto/certificates';
import * as der from '../../src/crypto/der';
import { bufferReader, readIsoFile, MediaError } from '../../src/provision/iso9660';
import { readUdfFile } from '../../src/provision/udf';
import { Config } from '../../src/config/config';
import { OPTIONS } from '../../src/config/options';
import { endpointFromDhclientLeases, endpointFromNetworkdLease, parseEndpoint } from '../../src/fabric/endpoint';
import { httpRequest, HttpIoError } from '../../src/core/http';
import { parsePublicKeysJson, ImdsError } from '../../src/fabric/imds';
import { generateTransportPair, type TransportPair } from '../../src/crypto/transport';
import { defaultScenario, buildOvfEnv } from '../fabric/scenario';
import { versionsXml, goalStateXml, hostingEnvironmentXml, sharedConfigXml, extensionsConfigXml } from '../fabric/documents';
import { makePfx, envelopePkcs7, certificatesXml, makeTenantCertificate } from '../fabric/certgen';
import { buildUdf } from '../unit/udf-builder';

export interface Target {
  name: string;
  /** Seed inputs, generated in code. */
  seeds(): Buffer[];
  /** Parses one input; may resolve or throw. */
  run(input: Buffer): unknown;
  /** True when `e` is the parser's own clean error (anything else is a crash). */
  clean(e: unknown): boolean;
  /** Tokens the mutator splices in (format-aware mutation). */
  tokens?: string[];
  /** Inputs larger than this are not generated (mutations keep below it). */
  maxBytes?: number;
  /** Set up/tear down shared state (servers). */
  close?(): Promise<void>;
}

const is = (...types: (new (...a: never[]) => Error)[]) => (e: unknown): boolean => types.some((t) => e instanceof t);
const utf8 = (b: Buffer): string => b.toString('utf8');
const XML_TOKENS = ['<', '>', '</', '/>', '<?xml version="1.0"?>', '<!--', '-->', '<![CDATA[', ']]>', '&amp;', '&lt;', '&#x41;', '&#65;',
  '&#xFFFFFFFF;', '&bogus;', '"', "'", '=', ' ', '\n', '<a>', '</a>', '<a b="c"/>', 'xmlns:p="urn:x"', '<p:x>', '\0', '\uFEFF', '<!DOCTYPE x [<!ENTITY e "x">]>',
  '../../../../etc/cron.d/evil', '<Incarnation>', '</Incarnation>', '<Plugin name="a" version="1.0">', '</Plugin>'];

let cached: { transport: TransportPair; seeds: Record<string, Buffer[]> } | undefined;
/** All seeds, generated once per process (keys, certificates and PFX included). */
function world(): { transport: TransportPair; seeds: Record<string, Buffer[]> } {
  if (cached) return cached;
  const transport = generateTransportPair();
  const sc = defaultScenario();
  sc.extensions = [{ name: 'Microsoft.Azure.Extensions.CustomScript', version: '2.1.7', state: 'enabled', publicSettings: { commandToExecute: 'echo hi' } } as never];
  const b = (s: string): Buffer => Buffer.from(s, 'utf8');
  const tenantB = makeTenantCertificate({ cn: 'fuzz-b' });
  const pfx3 = makePfx([{ certPem: sc.certificates[0].certPem, keyPem: sc.certificates[0].keyPem }, { certPem: tenantB.certPem }]);
  const pfxRc2 = makePfx([{ certPem: tenantB.certPem }], { certBagCipher: 'rc2-40' });
  const cmsAes = envelopePkcs7(pfx3, transport.certPem, 'AES128_CBC');
  const cmsDes = envelopePkcs7(pfx3, transport.certPem, 'DES_EDE3_CBC');
  let ext: string;
  try { ext = extensionsConfigXml(sc, 1, 'https://blob.example/status?sv=1&sig=x'); } catch { sc.extensions = []; ext = extensionsConfigXml(sc, 1, 'https://blob.example/status?sv=1&sig=x'); }
  const ovf = buildOvfEnv(sc);
  const udf = [buildUdf({ content: b(ovf) }), buildUdf({ entry: 'efe', ad: 'long', comp: 16, content: b(ovf), extraNames: ['a', 'b'] }), buildUdf({ ad: 'embedded', metadata: true, content: b('<x/>') })];
  const iso: Buffer[] = [];
  try {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fuzz-iso-'));
    fs.mkdirSync(path.join(dir, 'src'));
    fs.writeFileSync(path.join(dir, 'src', 'ovf-env.xml'), ovf);
    for (const flags of [['-J', '-R'], []]) {
      execFileSync('xorriso', ['-as', 'mkisofs', '-quiet', ...flags, '-V', 'rd_rdfe_stable', '-o', path.join(dir, 'o.iso'), path.join(dir, 'src')], { stdio: 'ignore' });
      iso.push(fs.readFileSync(path.join(dir, 'o.iso')));
    }
    fs.rmSync(dir, { recursive: true, force: true });
  } catch { /* xorriso missing: the ISO target mutates the UDF seeds (same sector layout) */ }
  const conf = OPTIONS.map((o) => `${o.name}=${o.def === undefined || o.def === null ? 'None' : String(o.def)}`).join('\n') + '\n# comment\nFoo.Bar = "x" # c\n';
  const future = '2099/01/01 00:00:00';
  const leases = `lease {\n  interface "eth0";\n  fixed-address 10.0.0.4;\n  option unknown-245 a8:3f:81:10;\n  renew 4 ${future};\n  expire 4 ${future};\n}\nlease {\n  option option-245 a8:3f:81:11;\n  expire never;\n}\n`;
  const networkd = '# This is private data. Do not parse.\nADDRESS=10.0.0.4\nNETMASK=255.255.255.0\nOPTION_245=a83f8110\nCLIENTID=ff\n';
  const body = '<Versions><Preferred><Version>2012-11-30</Version></Preferred></Versions>';
  cached = {
    transport,
    seeds: {
      xml: [b(goalStateXml(sc, 1, 'http://127.0.0.1/')), b(ovf), b('<a x="1">t<![CDATA[c<d]]><!-- c --><b/></a>')],
      versions: [b(versionsXml())],
      goalstate: [b(goalStateXml(sc, 1, 'http://168.63.129.16:80/')), b(goalStateXml(sc, 7, 'http://h/'))],
      hostingenv: [b(hostingEnvironmentXml(sc, 1))],
      sharedconfig: [b(sharedConfigXml(sc, 1))],
      extensionsconfig: [b(ext)],
      certificatesdoc: [b(certificatesXml(cmsAes, '1')), b('<CertificateFile><Version>2012-11-30</Version><Incarnation>1</Incarnation><Format>Pkcs7BlobWithPfxContents</Format></CertificateFile>')],
      ovf: [b(ovf)],
      'ovf-redact': [b(ovf)],
      der: [cmsAes, pfx3, Buffer.from(new (require('node:crypto').X509Certificate)(transport.certPem).raw)],
      pkcs7: [cmsAes, cmsDes],
      pkcs12: [pfx3, pfxRc2],
      certificates: [cmsAes, cmsDes],
      iso9660: iso.length ? iso : udf,
      udf,
      'waagent-conf': [b(conf)],
      'dhclient-leases': [b(leases)],
      'networkd-lease': [b(networkd)],
      'endpoint-file': [b('168.63.129.16'), b('127.0.0.1:8080'), b('[::1]:80')],
      'imds-json': [b(JSON.stringify([{ keyData: 'ssh-rsa AAAA x', path: '/home/u/.ssh/authorized_keys' }, { keyData: '' }]))],
      'http-response': [
        b(`HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`),
        b(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`),
        b('HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\r\n'),
      ],
    },
  };
  return cached;
}

/** A loopback server that answers each connection with the current raw bytes, then closes. */
let rawServer: { port: number; srv: net.Server } | undefined;
let rawBytes: Buffer = Buffer.alloc(0);
async function rawHttp(): Promise<number> {
  if (!rawServer) {
    const srv = net.createServer((s) => { s.on('error', () => undefined); s.once('data', () => s.end(rawBytes)); });
    await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', ok));
    rawServer = { port: (srv.address() as AddressInfo).port, srv };
  }
  return rawServer.port;
}

const xmlTarget = (name: string, parse: (s: string) => unknown, ...errs: (new (...a: never[]) => Error)[]): Target => ({
  name, seeds: () => world().seeds[name], run: (b) => parse(utf8(b)), clean: is(XmlError, DocumentError, ...errs), tokens: XML_TOKENS,
});

export const TARGETS: Target[] = [
  xmlTarget('xml', (s) => parseXml(s, 'fuzz')),
  xmlTarget('versions', parseVersions),
  xmlTarget('goalstate', parseGoalState),
  xmlTarget('hostingenv', parseHostingEnv),
  xmlTarget('sharedconfig', parseSharedConfig),
  xmlTarget('extensionsconfig', parseExtensionsConfig),
  xmlTarget('certificatesdoc', parseCertificatesDoc),
  xmlTarget('ovf', (s) => parseOvf(cleanOvfBytes(Buffer.from(s, 'utf8'))), OvfError),
  xmlTarget('ovf-redact', redactOvf, OvfError),
  {
    name: 'der', seeds: () => world().seeds.der, clean: is(der.DerError),
    run: (b) => { const walk = (n: der.Node, d: number): void => { if (n.constructed && d < 64) for (const c of der.children(n)) walk(c, d + 1); }; walk(der.parse(b), 0); },
  },
  { name: 'pkcs7', seeds: () => world().seeds.pkcs7, clean: is(Pkcs7Error), run: (b) => decryptEnvelopedData(b, world().transport) },
  { name: 'pkcs12', seeds: () => world().seeds.pkcs12, clean: is(Pkcs12Error, der.DerError), run: (b) => parsePfx(b) },
  { name: 'certificates', seeds: () => world().seeds.certificates, clean: is(Pkcs7Error, Pkcs12Error, der.DerError), run: (b) => decryptCertificates(b, world().transport) },
  { name: 'iso9660', seeds: () => world().seeds.iso9660, clean: is(MediaError), run: (b) => readIsoFile(bufferReader(b)), maxBytes: 8 << 20 },
  { name: 'udf', seeds: () => world().seeds.udf, clean: is(MediaError), run: (b) => readUdfFile(bufferReader(b)), maxBytes: 8 << 20 },
  {
    name: 'waagent-conf', seeds: () => world().seeds['waagent-conf'], tokens: ['=', '#', '"', ' ', '\n', 'None', 'y', 'n', 'Provisioning.Agent=', '\uFEFF'],
    clean: (e) => e instanceof Error && /is empty/.test(e.message), run: (b) => Config.parse(utf8(b), 'fuzz.conf'),
  },
  { name: 'dhclient-leases', seeds: () => world().seeds['dhclient-leases'], clean: () => false, run: (b) => endpointFromDhclientLeases(utf8(b)), tokens: ['lease {', '}', ';', 'expire ', 'never', 'option unknown-245 ', 'a8:3f:81:10', '\n', ' 4 2099/01/01 00:00:00'] },
  { name: 'networkd-lease', seeds: () => world().seeds['networkd-lease'], clean: () => false, run: (b) => endpointFromNetworkdLease(utf8(b)), tokens: ['OPTION_245=', '\n', ' ', 'a83f8110'] },
  { name: 'endpoint-file', seeds: () => world().seeds['endpoint-file'], clean: () => false, run: (b) => parseEndpoint(utf8(b)), tokens: [':', '[', ']', '.', '65536'] },
  { name: 'imds-json', seeds: () => world().seeds['imds-json'], clean: is(ImdsError), run: (b) => parsePublicKeysJson(utf8(b)), tokens: ['{', '}', '[', ']', '"keyData"', ':', ',', 'null', '"\\u0000"'] },
  {
    name: 'http-response', seeds: () => world().seeds['http-response'], clean: is(HttpIoError), maxBytes: 256 << 10,
    tokens: ['\r\n', 'Content-Length: ', 'Transfer-Encoding: chunked', 'HTTP/1.1 ', '200', ':', '0\r\n\r\n', 'ffffffff\r\n'],
    run: async (b) => {
      const port = await rawHttp();
      rawBytes = b;
      return httpRequest({ url: `http://127.0.0.1:${port}/`, timeoutMs: 2000, maxBodyBytes: 1 << 20 });
    },
    close: async () => { if (rawServer) { const s = rawServer.srv; rawServer = undefined; await new Promise((ok) => s.close(() => ok(undefined))); } },
  },
];

/** Quadratic-prone hostile shapes, grown to `size` characters (bench and the hang guard). */
export interface Hostile { name: string; targets: string[]; make(size: number): Buffer }
const rep = (unit: string, size: number, head = '', tail = ''): Buffer => Buffer.from(head + unit.repeat(Math.max(1, Math.floor((size - head.length - tail.length) / unit.length))) + tail, 'utf8');
const XMLS = ['xml', 'goalstate', 'extensionsconfig', 'ovf'];
export const HOSTILE: Hostile[] = [
  { name: '<a ', targets: XMLS, make: (n) => rep('<a ', n) },
  { name: 'unclosed <a>', targets: ['xml'], make: (n) => rep('<a>', n) },
  { name: '<!--', targets: ['xml'], make: (n) => rep('<!--', n, '<r>') },
  { name: '<![CDATA[', targets: ['xml'], make: (n) => rep('<![CDATA[', n, '<r>') },
  { name: '<?', targets: ['xml'], make: (n) => rep('<?', n) },
  { name: 'attr quote', targets: ['xml'], make: (n) => rep('<a b="', n) },
  { name: 'wide', targets: ['xml', 'extensionsconfig'], make: (n) => rep('<b x="1">t</b>', n, '<r>', '</r>') },
  { name: 'plugins', targets: ['extensionsconfig'], make: (n) => rep('<Plugin name="a" version="1.0" location="http://x"/>', n, '<Extensions><Plugins>', '</Plugins></Extensions>') },
  { name: 'settings', targets: ['extensionsconfig'], make: (n) => rep('<Plugin name="a" version="1.0"><RuntimeSettings seqNo="0">{}</RuntimeSettings></Plugin>', n, '<Extensions><PluginSettings>', '</PluginSettings></Extensions>') },
  { name: 'attrs', targets: ['xml'], make: (n) => rep(' a="1"', n, '<r', '/>') },
  { name: 'entities', targets: ['xml'], make: (n) => rep('&amp;&#x41;&bogus', n, '<r>', '</r>') },
  { name: 'deep+wide', targets: ['xml', 'ovf'], make: (n) => rep('<a><b/></a>', n, '<r>'.repeat(100), '</r>'.repeat(100)) },
  { name: 'ports', targets: ['goalstate'], make: (n) => rep('<Port>1</Port>', n, '<GoalState><Incarnation>1</Incarnation><Container><ContainerId>c</ContainerId></Container><Machine><LBProbePorts>', '</LBProbePorts></Machine></GoalState>') },
  { name: 'instances', targets: ['sharedconfig'], make: (n) => rep('<Instance id="x" address="10.0.0.1"/>', n, '<SharedConfig><Incarnation instance="y"/><Instances>', '</Instances></SharedConfig>') },
  { name: 'inner spaces', targets: ['waagent-conf'], make: (n) => rep(' ', n, 'Provisioning.Agent=a', 'b\n') },
  { name: 'quotes', targets: ['waagent-conf'], make: (n) => rep('" ', n, 'A=x', 'y\n') },
  { name: 'lines', targets: ['waagent-conf'], make: (n) => rep('A.B=c # d\n', n) },
  { name: 'expire digits', targets: ['dhclient-leases'], make: (n) => rep('expire 1111111111111 ', n, 'lease {\n') },
  { name: 'options', targets: ['dhclient-leases'], make: (n) => rep('option unknown-245 a8:3f:81:10;\n', n, 'lease {\n', 'expire never;\n}\n') },
  { name: 'ws', targets: ['networkd-lease'], make: (n) => rep(' ', n, 'OPTION_245=a83f8110', 'x') },
  { name: 'nested DER', targets: ['der', 'pkcs12'], make: (n) => Buffer.from(Buffer.alloc(Math.floor(n / 6) * 6).map((_, i) => [0x30, 0x84, 0x7f, 0xff, 0xff, 0xff][i % 6])) },
  { name: 'indefinite DER', targets: ['der', 'pkcs7'], make: (n) => Buffer.from(Buffer.alloc(n).map((_, i) => (i % 2 ? 0x80 : 0x30))) },
  { name: 'json nest', targets: ['imds-json'], make: (n) => rep('[', n) },
];
