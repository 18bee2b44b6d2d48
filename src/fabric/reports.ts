/**
 * Bodies of the health report (fabric-protocol.md §2.7) and of the role-properties report (§2.8). Pure functions; the
 * wire client sends them.
 */
import type { GoalStateIds, HealthReport } from './types';
import { escapeXml } from '../core/xml';

/** The WireServer rejects descriptions above 4096 bytes; keep 10 % margin (§2.7). */
export const MAX_DESCRIPTION_BYTES = 3686;

/** Characters XML 1.0 does not allow at all (C0 controls except TAB/LF/CR, U+FFFE, U+FFFF, lone surrogates). */
const XML_INVALID = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Escapes `&`, `<`, `>` for element text and drops characters XML 1.0 forbids (the WireServer rejects them). */
function escapeText(s: string): string {
  return s.replace(XML_INVALID, '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * Escapes `text` and cuts it so that the escaped UTF-8 form is at most `maxBytes`, never inside an escape sequence or
 * a character (surrogate pairs stay whole).
 */
export function escapeTruncated(text: string, maxBytes = MAX_DESCRIPTION_BYTES): string {
  let out = ''; let bytes = 0;
  for (const ch of text) { // iterates by code point
    const e = escapeText(ch);
    const n = Buffer.byteLength(e, 'utf8');
    if (bytes + n > maxBytes) break;
    out += e; bytes += n;
  }
  return out;
}

/** The health report XML (one line, as WALinuxAgent sends it). */
export function healthXml(ids: GoalStateIds, report: HealthReport): string {
  const details = report.state === 'NotReady'
    ? `<Details><SubStatus>${escapeText(report.subStatus)}</SubStatus><Description>${escapeTruncated(report.description)}</Description></Details>`
    : '';
  return '<?xml version="1.0" encoding="utf-8"?>' +
    '<Health xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">' +
    `<GoalStateIncarnation>${escapeText(ids.incarnation)}</GoalStateIncarnation>` +
    `<Container><ContainerId>${escapeText(ids.containerId)}</ContainerId>` +
    `<RoleInstanceList><Role><InstanceId>${escapeText(ids.instanceId)}</InstanceId>` +
    `<Health><State>${report.state}</State>${details}</Health>` +
    '</Role></RoleInstanceList></Container></Health>';
}

/** The role-properties XML carrying the SSH host key thumbprint (§2.8). */
export function rolePropertiesXml(ids: GoalStateIds, thumbprint: string): string {
  return '<?xml version="1.0" encoding="utf-8"?>' +
    `<RoleProperties><Container><ContainerId>${escapeText(ids.containerId)}</ContainerId>` +
    `<RoleInstances><RoleInstance><Id>${escapeText(ids.instanceId)}</Id>` +
    `<Properties><Property name="CertificateThumbprint" value="${escapeXml(thumbprint)}" /></Properties>` +
    '</RoleInstance></RoleInstances></Container></RoleProperties>';
}

/** A short description of a report for logs. */
export function describeHealth(report: HealthReport): string {
  return report.state === 'Ready' ? 'Ready' : `NotReady/${report.subStatus}`;
}
