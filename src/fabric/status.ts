/**
 * The aggregate status (status blob) JSON of fabric-protocol.md §4.8 in WALinuxAgent HEAD's shape, with our own
 * version (D3), no updateStatus (D4), no VersioningGovernance/FastTrack features (D4, D7), and `settingsStatus.version`
 * written as the literal number `1.0` (D8). Handlers are supplied by the extensions layer; none yet by default.
 */
import { AGENT_VERSION } from '../version';
import type { WireClient } from './wire';

/** A piece of JSON text inserted verbatim by `toJson` (used for the literal `1.0`). */
export class RawJson {
  constructor(readonly text: string) {}
}

/** JSON.stringify that also understands `RawJson`, drops `undefined` members, and keeps key order. */
export function toJson(v: unknown): string {
  if (v instanceof RawJson) return v.text;
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : toJson(x))).join(',')}]`;
  const parts: string[] = [];
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (x !== undefined) parts.push(`${JSON.stringify(k)}:${toJson(x)}`);
  return `{${parts.join(',')}}`;
}

/** `YYYY-MM-DDTHH:MM:SSZ` (no fractional seconds). */
export function utcStamp(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export interface FormattedMessage { lang: 'en-US'; message: string }
/** The signature of a SAS URL inside a message; §4.8: every formattedMessage has its SAS tokens redacted. */
const SAS_SIG = /((?:[?&]|&amp;|\\u0026)sig=)[^&\s"'<\\]*/gi;
const fm = (message: string): FormattedMessage => ({ lang: 'en-US', message: typeof message === 'string' ? message.replace(SAS_SIG, '$1*****') : message });
const redactFm = (m: FormattedMessage | undefined): FormattedMessage | undefined => (m ? fm(m.message) : undefined);

/** An extension's own status (the `status` object of its .status file), re-serialised. */
export interface ExtensionSettingsStatus {
  name?: string;
  configurationAppliedTime?: string;
  operation?: string;
  status: string;
  /** Passed through as the extension wrote it: a number, or a string such as "0" (extensions.md §8.2 rule 5). */
  code: number | string;
  formattedMessage?: FormattedMessage;
  substatus?: { name: string; status: string; code: number | string; formattedMessage?: FormattedMessage }[];
}

/** One entry of handlerAggregateStatus. */
export interface HandlerAggregateStatus {
  handlerName: string;
  handlerVersion: string;
  status: 'Ready' | 'NotReady' | 'Installing' | 'Unresponsive';
  code: number;
  message?: string;
  runtimeSettings?: { sequenceNumber: number; extensionName?: string; status: ExtensionSettingsStatus; timestamp: Date };
}

export interface StatusInput {
  now: Date;
  computerName: string;
  osName: string;
  osVersion: string;
  handlers?: HandlerAggregateStatus[];
  /** Result of the last processed extensions goal state; omitted before the first. */
  goalState?: { inSvdSeqNo: string; status: 'Success' | 'Failed'; code: number; message: string; finished: Date };
  /** Feature names to advertise (value "1.0"); only what is implemented. */
  supportedFeatures?: string[];
}

function handlerJson(h: HandlerAggregateStatus): Record<string, unknown> {
  const rs = h.runtimeSettings;
  return {
    handlerVersion: h.handlerVersion,
    handlerName: h.handlerName,
    status: h.status,
    code: h.code,
    useExactVersion: true,
    formattedMessage: h.message ? fm(h.message) : undefined,
    runtimeSettingsStatus: rs ? {
      extensionName: rs.extensionName,
      settingsStatus: {
        status: {
          name: rs.status.name, configurationAppliedTime: rs.status.configurationAppliedTime, operation: rs.status.operation,
          status: rs.status.status, code: rs.status.code, formattedMessage: redactFm(rs.status.formattedMessage),
          substatus: rs.status.substatus?.length ? rs.status.substatus.map((x) => ({ ...x, formattedMessage: redactFm(x.formattedMessage) })) : undefined,
        },
        version: new RawJson('1.0'),
        timestampUTC: utcStamp(rs.timestamp),
      },
      sequenceNumber: rs.sequenceNumber,
    } : undefined,
  };
}

/** Builds the status blob JSON text. */
export function buildStatusJson(input: StatusInput): string {
  const gs = input.goalState;
  return toJson({
    version: '1.1',
    timestampUTC: utcStamp(input.now),
    aggregateStatus: {
      guestAgentStatus: { version: AGENT_VERSION, status: 'Ready', formattedMessage: fm('Guest Agent is running') },
      handlerAggregateStatus: (input.handlers ?? []).map(handlerJson),
      vmArtifactsAggregateStatus: gs ? {
        goalStateAggregateStatus: { formattedMessage: fm(gs.message), timestampUTC: utcStamp(gs.finished), inSvdSeqNo: gs.inSvdSeqNo, status: gs.status, code: gs.code },
      } : undefined,
    },
    guestOSInfo: { computerName: input.computerName, osName: input.osName, osVersion: input.osVersion, version: AGENT_VERSION },
    supportedFeatures: input.supportedFeatures?.length ? input.supportedFeatures.map((k) => ({ Key: k, Value: '1.0' })) : undefined,
  });
}

/**
 * Uploads the status blob for the goal state the wire client holds (host plugin first, then direct; §4.9). Returns
 * the channel used, or `'no-blob'` when the extensions goal state has no StatusUploadBlob. Throws when both channels
 * fail (the next poll tries again).
 */
export async function uploadStatusBlob(wire: WireClient, json: string, now: Date = new Date()): Promise<'hostplugin' | 'direct' | 'no-blob'> {
  const blob = wire.goalState?.extensionsConfig?.statusUploadBlob;
  if (!blob) return 'no-blob';
  return wire.uploadStatus(json, blob, now);
}
