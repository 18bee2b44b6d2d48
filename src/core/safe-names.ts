/**
 * The one home of the patterns a value from outside (the fabric, the provisioning DVD, an extension package) must match
 * before any part of it reaches a file name (issue 10 item 1; fabric-protocol.md §2.2, §3.5, App. B; extensions.md
 * §2.2). Each value is used as ONE path component (or part of one), so every pattern excludes `/`, `\`, NUL, leading
 * dots and `..`, and is short. `isSafe*` answer; `assertSafe*` throw `UnsafeNameError` naming the value's role.
 */

export class UnsafeNameError extends Error {
  constructor(what: string, value: string) {
    super(`refusing unsafe ${what} ${JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value)}: it would be used in a file name`);
    this.name = 'UnsafeNameError';
  }
}

/** A generic file-name component: starts with a letter, digit or `_`, then letters, digits, `._-`, no `..`. */
const COMPONENT = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

function component(s: unknown, max: number): boolean {
  return typeof s === 'string' && s.length > 0 && s.length <= max && COMPONENT.test(s) && !s.includes('..');
}

/** A goal-state incarnation (an opaque string in the protocol; integers in practice): a component of ≤ 64 chars. */
export function isSafeIncarnation(s: unknown): boolean { return component(s, 64); }

/** An extension handler name (`Microsoft.Azure.Extensions.CustomScript`): a component of ≤ 128 chars without `__`
 *  (the separator of `<name>__<version>.zip`). */
export function isSafeHandlerName(s: unknown): boolean { return component(s, 128) && !(s as string).includes('__'); }

/** A multi-config extension name (ARM resource name): a component of ≤ 128 chars. */
export function isSafeExtensionName(s: unknown): boolean { return component(s, 128); }

/** A handler version: 1 to 8 dot-separated decimal numbers of ≤ 9 digits, optionally a pre-release tag (`2.1.7`,
 *  `1.0`, `1.2.3.4`, `2.0.0-beta1`, `2.0rc1`); ≤ 64 chars. */
export function isSafeVersion(s: unknown): boolean {
  return typeof s === 'string' && s.length <= 64 && /^[0-9]{1,9}(\.[0-9]{1,9}){0,7}([.-]?(alpha|beta|rc)[0-9]{0,9})?$/.test(s);
}

/** A certificate thumbprint: SHA-1 (40) or SHA-256 (64) hex digits, either case. */
export function isSafeThumbprint(s: unknown): boolean {
  return typeof s === 'string' && /^(?:[0-9A-Fa-f]{40}|[0-9A-Fa-f]{64})$/.test(s);
}

/** A sequence number (`seqNo`): a decimal number of ≤ 10 digits. */
export function isSafeSeqNo(s: unknown): boolean {
  return typeof s === 'string' && /^[0-9]{1,10}$/.test(s);
}

/** Any other identifier from outside used in a file name (container or role-instance id): a component of ≤ 255 chars. */
export function isSafeFileName(s: unknown): boolean { return component(s, 255); }

function asserter(test: (s: unknown) => boolean, what: string): (s: string) => string {
  return (s: string): string => {
    if (!test(s)) throw new UnsafeNameError(what, String(s));
    return s;
  };
}

export const assertSafeIncarnation = asserter(isSafeIncarnation, 'incarnation');
export const assertSafeHandlerName = asserter(isSafeHandlerName, 'handler name');
export const assertSafeExtensionName = asserter(isSafeExtensionName, 'extension name');
export const assertSafeVersion = asserter(isSafeVersion, 'version');
export const assertSafeThumbprint = asserter(isSafeThumbprint, 'thumbprint');
export const assertSafeSeqNo = asserter(isSafeSeqNo, 'sequence number');
export const assertSafeFileName = asserter(isSafeFileName, 'file name');
