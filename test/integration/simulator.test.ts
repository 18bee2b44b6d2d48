// The fabric simulator on loopback (random ports): it answers the protocol, its certificates decrypt on the client
// side, its health parsing is strict, and its faults fire.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as crypto from 'node:crypto';
import forge from 'node-forge';
import { startSimulator, type Simulator } from '../fabric/simulator';
import { buildOvfEnv, defaultScenario, type Scenario } from '../fabric/scenario';
import { makeTenantCertificate } from '../fabric/certgen';
import { parseStrictXml, kids, one, descendant } from '../fabric/strictxml';
import { decryptEnvelopedData } from '../../src/crypto/pkcs7';

interface Resp { status: number; headers: http.IncomingHttpHeaders; body: string }

function request(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Resp> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: { Connection: 'close', ...opts.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('aborted')));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.end(opts.body);
  });
}

const WIRE = { 'x-ms-agent-name': 'WALinuxAgent', 'x-ms-version': '2012-11-30' };
const POST = { ...WIRE, 'Content-Type': 'text/xml;charset=utf-8' };

const find = descendant;

function healthXml(p: { inc: string; cid: string; iid: string; state: string; sub?: string; desc?: string; roleTag?: string }): string {
  const details = p.sub !== undefined ? `<Details><SubStatus>${p.sub}</SubStatus><Description>${p.desc ?? ''}</Description></Details>` : '';
  const role = p.roleTag ?? 'Role';
  return `<?xml version="1.0" encoding="utf-8"?><Health xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"><GoalStateIncarnation>${p.inc}</GoalStateIncarnation><Container><ContainerId>${p.cid}</ContainerId><RoleInstanceList><${role}><InstanceId>${p.iid}</InstanceId><Health><State>${p.state}</State>${details}</Health></${role}></RoleInstanceList></Container></Health>`;
}

/** Client-side decryption of a Certificates document: CMS EnvelopedData (SKI recipient) → PFX → certs and keys. */
function decryptCertificates(xml: string, keyPem: string): { thumbprints: string[]; keys: number; keyAlg: string } {
  const data = Buffer.from(one(parseStrictXml(xml), 'Data').text.replace(/\s+/g, ''), 'base64');
  const asn1 = forge.asn1;
  const ci = asn1.fromDer(data.toString('binary'));
  const ciKids = ci.value as forge.asn1.Asn1[];
  assert.equal(asn1.derToOid(ciKids[0].value as string), '1.2.840.113549.1.7.3');
  const env = ((ciKids[1].value as forge.asn1.Asn1[])[0].value) as forge.asn1.Asn1[];
  const ri = ((env[1].value as forge.asn1.Asn1[])[0].value) as forge.asn1.Asn1[];
  assert.equal(ri[1].tagClass, asn1.Class.CONTEXT_SPECIFIC, 'recipient addressed by subjectKeyIdentifier');
  const keyAlg = asn1.derToOid((ri[2].value as forge.asn1.Asn1[])[0].value as string);
  const ek = Buffer.from(ri[3].value as string, 'binary');
  const oaep = keyAlg === '1.2.840.113549.1.1.7';
  const cek = crypto.privateDecrypt(oaep ? { key: keyPem, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' } : { key: keyPem, padding: crypto.constants.RSA_PKCS1_PADDING }, ek);
  const eci = env[2].value as forge.asn1.Asn1[];
  const calg = eci[1].value as forge.asn1.Asn1[];
  const cipherOid = asn1.derToOid(calg[0].value as string);
  const iv = Buffer.from(calg[1].value as string, 'binary');
  const enc = Buffer.from(eci[2].value as string, 'binary');
  const d = crypto.createDecipheriv(cipherOid === '2.16.840.1.101.3.4.1.2' ? 'aes-128-cbc' : 'des-ede3-cbc', cek, iv);
  const pfx = Buffer.concat([d.update(enc), d.final()]);
  const p12 = forge.pkcs12.pkcs12FromAsn1(asn1.fromDer(pfx.toString('binary')), '');
  const certBags = p12.getBags({ bagType: forge.pki.oids.certBag })[forge.pki.oids.certBag] ?? [];
  const keyBags = p12.getBags({ bagType: forge.pki.oids.pkcs8ShroudedKeyBag })[forge.pki.oids.pkcs8ShroudedKeyBag] ?? [];
  const thumbprints = certBags.map((b) => {
    const der = Buffer.from(asn1.toDer(forge.pki.certificateToAsn1(b.cert!)).getBytes(), 'binary');
    return crypto.createHash('sha1').update(der).digest('hex').toUpperCase();
  });
  return { thumbprints, keys: keyBags.filter((b) => b.key).length, keyAlg };
}

let sc: Scenario;
let sim: Simulator;
before(async () => {
  sc = defaultScenario();
  sim = await startSimulator(sc, { port: 0, hostPluginPort: 0, imdsPort: 0 });
});
after(async () => { await sim.close(); });

test('versions and goal state point back at the simulator, with escaped sub-document URLs', async () => {
  const v = await request(`${sim.url}/?comp=versions`);
  assert.equal(v.status, 200);
  assert.equal(find(parseStrictXml(v.body), 'Preferred')!.children[0].text, '2012-11-30');
  const g = await request(`${sim.url}/machine/?comp=goalstate`, { headers: WIRE });
  assert.equal(g.status, 200);
  assert.match(g.body, /comp=config&amp;type=hostingEnvironmentConfig&amp;incarnation=1/);
  const gs = parseStrictXml(g.body);
  assert.equal(one(gs, 'Incarnation').text, '1');
  assert.equal(find(gs, 'ContainerId')!.text, sc.ids.containerId);
  assert.equal(find(gs, 'InstanceId')!.text, sc.ids.instanceId);
  assert.equal(find(gs, 'ConfigName')!.text, sc.ids.configName);
  const roots: Record<string, string> = { HostingEnvironmentConfig: 'HostingEnvironmentConfig', SharedConfig: 'SharedConfig', ExtensionsConfig: 'Extensions', FullConfig: 'FullConfig' };
  for (const [el, root] of Object.entries(roots)) {
    const u = find(gs, el)!.text;
    assert.ok(u.startsWith(sim.url + '/machine/'), `${el} URL ${u}`);
    assert.match(u, /incarnation=1$/);
    const r = await request(u, { headers: WIRE });
    assert.equal(r.status, 200, el);
    assert.equal(parseStrictXml(r.body).local, root);
  }
  const ext = parseStrictXml((await request(find(gs, 'ExtensionsConfig')!.text, { headers: WIRE })).body);
  const blob = find(ext, 'StatusUploadBlob')!;
  assert.equal(blob.attrs.statusBlobType, 'BlockBlob');
  assert.ok(blob.text.startsWith(sim.url + '/blobs/'));
  // Wire requests without x-ms-version are refused like the fabric does.
  assert.equal((await request(`${sim.url}/machine/?comp=goalstate`)).status, 400);
});

test('certificates: refused without the transport certificate, decryptable with both ciphers', async () => {
  const g = parseStrictXml((await request(`${sim.url}/machine/?comp=goalstate`, { headers: WIRE })).body);
  const certUrl = find(g, 'Certificates')!.text;
  const no = await request(certUrl, { headers: { ...WIRE, 'x-ms-cipher-name': 'AES128_CBC' } });
  assert.equal(no.status, 400);
  const transport = makeTenantCertificate({ cn: 'LinuxTransport' });
  const header = Buffer.from(new crypto.X509Certificate(transport.certPem).raw).toString('base64');
  for (const [cipher, alg] of [['AES128_CBC', '1.2.840.113549.1.1.7'], ['DES_EDE3_CBC', '1.2.840.113549.1.1.1']] as const) {
    const r = await request(certUrl, { headers: { ...WIRE, 'x-ms-cipher-name': cipher, 'x-ms-guest-agent-public-x509-cert': header } });
    assert.equal(r.status, 200, cipher);
    const out = decryptCertificates(r.body, transport.keyPem);
    assert.equal(out.keyAlg, alg);
    assert.deepEqual(out.thumbprints, sc.certificates.map((c) => c.thumbprint));
    assert.equal(out.keys, 1);
    // The agent's own CMS code opens the same envelope (the PFX inside is then forge's business).
    const der = Buffer.from(one(parseStrictXml(r.body), 'Data').text.replace(/\s+/g, ''), 'base64');
    const pfx = decryptEnvelopedData(der, { keyPem: transport.keyPem, certPem: transport.certPem });
    assert.equal(pfx[0], 0x30, `${cipher}: agent decryption did not yield DER`);
  }
});

test('health reports are parsed strictly; accepted ones are summarised in order', async () => {
  const ok = { inc: '1', cid: sc.ids.containerId, iid: sc.ids.instanceId };
  const nr = await request(`${sim.url}/machine?comp=health`, { method: 'POST', headers: POST, body: healthXml({ ...ok, state: 'NotReady', sub: 'Provisioning', desc: 'Starting &amp; more' }) });
  assert.equal(nr.status, 200);
  const before = sim.summary().failures.length;
  const bad: [string, string][] = [
    ['unclosed', healthXml({ ...ok, state: 'Ready' }).replace('</Container>', '')],
    ['bare ampersand', healthXml({ ...ok, state: 'NotReady', sub: 'Provisioning', desc: 'a & b' })],
    ['wrong container', healthXml({ ...ok, cid: 'x', state: 'Ready' })],
    ['unknown incarnation', healthXml({ ...ok, inc: '7', state: 'Ready' })],
    ['bad state', healthXml({ ...ok, state: 'Fine' })],
    ['RoleInstance', healthXml({ ...ok, state: 'Ready', roleTag: 'RoleInstance' })],
    ['long description', healthXml({ ...ok, state: 'NotReady', sub: 'ProvisioningFailed', desc: 'x'.repeat(4097) })],
    ['not xml', 'Ready'],
  ];
  for (const [what, body] of bad) {
    const r = await request(`${sim.url}/machine/?comp=health`, { method: 'POST', headers: POST, body });
    assert.equal(r.status, 400, what);
  }
  assert.equal(sim.summary().failures.length - before, bad.length);
  const rd = await request(`${sim.url}/machine/?comp=health`, { method: 'POST', headers: POST, body: healthXml({ ...ok, state: 'Ready' }) });
  assert.equal(rd.status, 200);
  const s = sim.summary();
  assert.equal(s.notReady[0].subStatus, 'Provisioning');
  assert.equal(s.notReady[0].description, 'Starting & more');
  assert.ok(s.readyAt! >= s.notReady[0].at);
  assert.equal(s.readyCount, 1);
  assert.ok(s.failures.some((f) => f.kind === 'health' && /malformed health report/.test(f.error)));
});

test('role properties answer 202', async () => {
  const body = `<?xml version="1.0" encoding="utf-8"?><RoleProperties><Container><ContainerId>${sc.ids.containerId}</ContainerId><RoleInstances><RoleInstance><Id>${sc.ids.instanceId}</Id><Properties><Property name="CertificateThumbprint" value="SHA256abc" /></Properties></RoleInstance></RoleInstances></Container></RoleProperties>`;
  const r = await request(`${sim.url}/machine?comp=roleProperties`, { method: 'POST', headers: POST, body });
  assert.equal(r.status, 202);
  assert.equal(sim.summary().roleProperties.at(-1)!.properties.CertificateThumbprint, 'SHA256abc');
});

test('host plugin: versions, status envelope into the blob store, vmSettings falls back', async () => {
  const hg = `http://127.0.0.1:${sim.hostPluginPort}`;
  assert.match((await request(`${hg}/versions`)).body, /2015-09-01/);
  const ids = { 'x-ms-version': '2015-09-01', 'x-ms-containerid': sc.ids.containerId, 'x-ms-host-config-name': sc.ids.configName };
  assert.equal((await request(`${hg}/vmSettings`, { headers: ids })).status, 404);
  const g = parseStrictXml((await request(`${sim.url}/machine/?comp=goalstate`, { headers: WIRE })).body);
  const ext = parseStrictXml((await request(find(g, 'ExtensionsConfig')!.text, { headers: WIRE })).body);
  const blobUrl = find(ext, 'StatusUploadBlob')!.text;
  const status = JSON.stringify({ version: '1.1', aggregateStatus: { guestAgentStatus: { status: 'Ready' } } });
  const envelope = {
    content: Buffer.from(status).toString('base64'),
    headers: [
      { headerName: 'Content-Length', headerValue: String(Buffer.byteLength(status)) },
      { headerName: 'x-ms-blob-type', headerValue: 'BlockBlob' },
      { headerName: 'x-ms-date', headerValue: '2026-01-15T10:20:30Z' },
      { headerName: 'x-ms-version', headerValue: '2014-02-14' },
    ],
    requestUri: blobUrl,
  };
  const put = await request(`${hg}/status`, { method: 'PUT', headers: { ...ids, 'Content-Type': 'application/json' }, body: JSON.stringify(envelope) });
  assert.equal(put.status, 200);
  assert.deepEqual(sim.summary().latestStatus, JSON.parse(status));
  const stale = await request(`${hg}/status`, { method: 'PUT', headers: { ...ids, 'x-ms-containerid': 'old' }, body: JSON.stringify(envelope) });
  assert.equal(stale.status, 400);
  assert.match(stale.body, /InvalidContainerConfiguration/);
});

test('direct page-blob upload: create, aligned page writes, misaligned rejected', async () => {
  const page = defaultScenario();
  page.statusBlobType = 'PageBlob';
  const s2 = await startSimulator(page, {});
  try {
    const g = parseStrictXml((await request(`${s2.url}/machine/?comp=goalstate`, { headers: WIRE })).body);
    const blob = find(parseStrictXml((await request(find(g, 'ExtensionsConfig')!.text, { headers: WIRE })).body), 'StatusUploadBlob')!;
    assert.equal(blob.attrs.statusBlobType, 'PageBlob');
    const json = Buffer.from(JSON.stringify({ version: '1.1', n: 'x'.repeat(600) }));
    const size = Math.ceil(json.length / 512) * 512;
    const h = { 'x-ms-version': '2014-02-14', 'x-ms-date': '2026-01-15T10:20:30Z' };
    assert.equal((await request(blob.text, { method: 'PUT', headers: { ...h, 'x-ms-blob-type': 'PageBlob', 'x-ms-blob-content-length': String(size) } })).status, 201);
    const padded = Buffer.concat([json, Buffer.alloc(size - json.length)]);
    const pageUrl = blob.text + '&comp=page';
    const bad = await request(pageUrl, { method: 'PUT', headers: { ...h, 'x-ms-page-write': 'update', 'x-ms-range': `bytes=0-${size - 2}` }, body: padded.subarray(0, size - 1).toString('latin1') });
    assert.equal(bad.status, 400);
    const okr = await new Promise<number>((resolve, reject) => {
      const req = http.request(pageUrl, { method: 'PUT', headers: { ...h, 'x-ms-page-write': 'update', 'x-ms-range': `bytes=0-${size - 1}`, 'Content-Length': String(size) } }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
      req.on('error', reject);
      req.end(padded);
    });
    assert.equal(okr, 201);
    assert.equal((s2.summary().latestStatus as { n: string }).n.length, 600);
  } finally {
    await s2.close();
  }
});

test('faults fire per kind and attempt: status with Retry-After, stall, drop, truncate, malformed', async () => {
  const f = defaultScenario();
  f.faults = [
    { kind: 'goalstate', attempts: [1], status: 503, retryAfter: 3 },
    { kind: 'goalstate', attempts: [2], stallMs: 300 },
    { kind: 'goalstate', attempts: [3], drop: true },
    { kind: 'goalstate', attempts: [4], truncate: true },
    { kind: 'goalstate', attempts: [5], malformed: true },
    { kind: 'versions', status: 410 },
  ];
  const s3 = await startSimulator(f, {});
  try {
    const url = `${s3.url}/machine/?comp=goalstate`;
    const r1 = await request(url, { headers: WIRE });
    assert.equal(r1.status, 503);
    assert.equal(r1.headers['retry-after'], '3');
    const t0 = Date.now();
    const r2 = await request(url, { headers: WIRE });
    assert.equal(r2.status, 200);
    assert.ok(Date.now() - t0 >= 280, 'stalled');
    await assert.rejects(request(url, { headers: WIRE }));
    await assert.rejects(request(url, { headers: WIRE }));
    const r5 = await request(url, { headers: WIRE });
    assert.equal(r5.status, 200);
    assert.throws(() => parseStrictXml(r5.body));
    const r6 = await request(url, { headers: WIRE });
    assert.equal(parseStrictXml(r6.body).local, 'GoalState');
    assert.equal((await request(`${s3.url}/?comp=versions`)).status, 410);
    assert.equal((await request(`${s3.url}/?comp=versions`)).status, 410);
    assert.deepEqual(s3.requests.filter((r) => r.kind === 'goalstate').map((r) => r.fault ?? ''), ['status 503', 'stall 300ms', 'drop', 'truncate', 'malformed', '']);
    assert.equal(s3.summary().counts.goalstate, 6);
  } finally {
    await s3.close();
  }
});

test('incarnation changes: triggers and bumpIncarnation; old and new incarnations accepted in reports', async () => {
  const s = defaultScenario();
  s.incarnationTriggers = [{ afterKind: 'goalstate', count: 1 }];
  const s4 = await startSimulator(s, {});
  try {
    const inc = async (): Promise<string> => one(parseStrictXml((await request(`${s4.url}/machine/?comp=goalstate`, { headers: WIRE })).body), 'Incarnation').text;
    assert.equal(await inc(), '1');
    assert.equal(await inc(), '2');
    assert.equal(s4.bumpIncarnation(), 3);
    assert.equal(await inc(), '3');
    const ids = { cid: s.ids.containerId, iid: s.ids.instanceId, state: 'Ready' };
    for (const i of ['1', '3']) {
      assert.equal((await request(`${s4.url}/machine?comp=health`, { method: 'POST', headers: POST, body: healthXml({ ...ids, inc: i }) })).status, 200);
    }
    assert.equal((await request(`${s4.url}/machine?comp=health`, { method: 'POST', headers: POST, body: healthXml({ ...ids, inc: '4' }) })).status, 400);
  } finally {
    await s4.close();
  }
});

test('IMDS requires Metadata: true and serves the scenario keys', async () => {
  sc.imdsPublicKeys = [{ keyData: 'ssh-ed25519 AAAA test', path: '/home/azureuser/.ssh/authorized_keys' }];
  sim.setScenario(sc);
  const u = `http://127.0.0.1:${sim.imdsPort}/metadata/instance/compute/publicKeys?api-version=2021-02-01`;
  assert.equal((await request(u)).status, 400);
  const r = await request(u, { headers: { Metadata: 'true' } });
  assert.deepEqual(JSON.parse(r.body), sc.imdsPublicKeys);
});

test('ovf-env.xml: Azure namespaces and the scenario values', () => {
  const doc = parseStrictXml(buildOvfEnv(sc));
  assert.equal(doc.name, 'Environment');
  assert.equal(doc.attrs.xmlns, 'http://schemas.dmtf.org/ovf/environment/1');
  assert.equal(doc.attrs['xmlns:wa'], 'http://schemas.microsoft.com/windowsazure');
  const ps = one(doc, 'ProvisioningSection');
  assert.equal(ps.name, 'wa:ProvisioningSection');
  const set = one(ps, 'LinuxProvisioningConfigurationSet');
  assert.equal(set.attrs.xmlns, 'http://schemas.microsoft.com/windowsazure');
  assert.equal(one(set, 'HostName').text, sc.hostName);
  assert.equal(one(set, 'UserPassword').text, sc.userPassword);
  assert.equal(Buffer.from(one(set, 'CustomData').text, 'base64').toString(), sc.customData);
  const keys = kids(one(one(set, 'SSH'), 'PublicKeys'), 'PublicKey');
  assert.equal(keys.length, 2);
  assert.equal(one(keys[1], 'Fingerprint').text, sc.certificates[0].thumbprint);
  assert.equal(kids(keys[1], 'Value').length, 0);
  assert.equal(find(doc, 'ProvisionGuestAgent')!.name, 'wa:ProvisionGuestAgent');
});

test('ExtensionsConfig carries the scenario extensions with their RuntimeSettings JSON', async () => {
  const e = defaultScenario();
  e.extensions = [{ name: 'Microsoft.Azure.Extensions.CustomScript', version: '2.1.10', state: 'enabled', seqNo: 3, publicSettings: { commandToExecute: 'echo "a<b" && true' } }];
  const s5 = await startSimulator(e, {});
  try {
    const g = parseStrictXml((await request(`${s5.url}/machine/?comp=goalstate`, { headers: WIRE })).body);
    const raw = (await request(find(g, 'ExtensionsConfig')!.text, { headers: WIRE })).body;
    const ext = parseStrictXml(raw);
    const plugin = find(one(ext, 'Plugins'), 'Plugin')!;
    assert.equal(plugin.attrs.name, 'Microsoft.Azure.Extensions.CustomScript');
    assert.equal(plugin.attrs.state, 'enabled');
    const rs = find(one(ext, 'PluginSettings'), 'RuntimeSettings')!;
    assert.equal(rs.attrs.seqNo, '3');
    assert.deepEqual(JSON.parse(rs.text), { runtimeSettings: [{ handlerSettings: { publicSettings: e.extensions[0].publicSettings } }] });
    assert.match(raw, /\{"runtimeSettings"/, 'quotes in element text stay unescaped, as the fabric writes them');
    assert.equal(find(ext, 'InVMGoalStateMetaData')!.attrs.inSvdSeqNo, '1');
  } finally {
    await s5.close();
  }
});
