/**
 * Strict checks of what the agent posts to the WireServer: health reports (fabric-protocol.md §2.7) and role
 * properties (§2.8). A report that the real fabric would reject yields `{ ok: false, error }`.
 */
import { kids, one, parseStrictXml, StrictXmlError, type SElement } from './strictxml';

export interface ParsedHealth {
  incarnation: string;
  containerId: string;
  instanceId: string;
  state: 'Ready' | 'NotReady';
  subStatus?: string;
  description?: string;
}

export interface ParsedRoleProperties {
  containerId: string;
  instanceId: string;
  properties: Record<string, string>;
}

export interface Expected {
  /** Incarnations the simulator has served; the report's must be one of them. */
  incarnations: string[];
  containerId: string;
  instanceId: string;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; error: string };

function escapedBytes(s: string): number {
  return Buffer.byteLength(s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;'));
}

function checkIds(inc: string | undefined, container: string, instance: string, exp: Expected): void {
  if (inc !== undefined && !exp.incarnations.includes(inc)) {
    throw new StrictXmlError(`GoalStateIncarnation '${inc}' was never served (served: ${exp.incarnations.join(', ')})`);
  }
  if (container !== exp.containerId) throw new StrictXmlError(`ContainerId '${container}' does not match '${exp.containerId}'`);
  if (instance !== exp.instanceId) throw new StrictXmlError(`InstanceId '${instance}' does not match '${exp.instanceId}'`);
}

/** Parses and validates a health report body the way the fabric does. */
export function checkHealthReport(body: string, exp: Expected): Checked<ParsedHealth> {
  try {
    const root = parseStrictXml(body);
    if (root.local !== 'Health') throw new StrictXmlError(`root element is <${root.name}>, expected <Health>`);
    const inc = one(root, 'GoalStateIncarnation').text.trim();
    if (!/^[0-9]+$/.test(inc)) throw new StrictXmlError(`GoalStateIncarnation '${inc}' is not a number`);
    const container = one(root, 'Container');
    const containerId = one(container, 'ContainerId').text.trim();
    const list = one(container, 'RoleInstanceList');
    if (kids(list, 'RoleInstance').length) throw new StrictXmlError('health uses <Role>, not <RoleInstance>');
    const role = one(list, 'Role');
    const instanceId = one(role, 'InstanceId').text.trim();
    const health: SElement = one(role, 'Health');
    const state = one(health, 'State').text.trim();
    if (state !== 'Ready' && state !== 'NotReady') throw new StrictXmlError(`State '${state}' is neither Ready nor NotReady`);
    const details = kids(health, 'Details');
    if (details.length > 1) throw new StrictXmlError('more than one <Details>');
    let subStatus: string | undefined;
    let description: string | undefined;
    if (details.length === 1) {
      subStatus = one(details[0], 'SubStatus').text;
      description = one(details[0], 'Description').text;
      if (!subStatus.trim()) throw new StrictXmlError('empty <SubStatus>');
      if (escapedBytes(description) > 4096) throw new StrictXmlError(`Description is ${escapedBytes(description)} bytes, over 4096`);
    }
    checkIds(inc, containerId, instanceId, exp);
    return { ok: true, value: { incarnation: inc, containerId, instanceId, state, subStatus, description } };
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
}

/** Parses and validates a role-properties body. */
export function checkRoleProperties(body: string, exp: Expected): Checked<ParsedRoleProperties> {
  try {
    const root = parseStrictXml(body);
    if (root.local !== 'RoleProperties') throw new StrictXmlError(`root element is <${root.name}>, expected <RoleProperties>`);
    const container = one(root, 'Container');
    const containerId = one(container, 'ContainerId').text.trim();
    const ri = one(one(container, 'RoleInstances'), 'RoleInstance');
    const instanceId = one(ri, 'Id').text.trim();
    const properties: Record<string, string> = {};
    for (const p of kids(one(ri, 'Properties'), 'Property')) {
      if (!('name' in p.attrs) || !('value' in p.attrs)) throw new StrictXmlError('<Property> needs name and value');
      properties[p.attrs.name] = p.attrs.value;
    }
    if (!Object.keys(properties).length) throw new StrictXmlError('no <Property>');
    checkIds(undefined, containerId, instanceId, exp);
    return { ok: true, value: { containerId, instanceId, properties } };
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
}
