/**
 * Credentials of authenticated HTTP proxies (DECISIONS.md D30): `http://user:password@host:port` in
 * `http_proxy`/`https_proxy`, or `user:password@host` in `HttpProxy.Host`, percent-decoded. Kept apart from
 * core/http so the start-up path (redaction list, -show-configuration) loads no network modules.
 */

/** Replaces the password of every `scheme://user:password@` or `user:password@host` in `text` with `***` (D30). */
export function redactProxyCredentials(text: string): string {
  return text
    .replace(/([a-z][a-z0-9+.-]*:\/\/)([^\s:/@]*):([^\s@/]*)@/gi, '$1$2:***@')
    .replace(/(^|[\s'"=(])([^\s:/@'"]+):(?!\/\/)(?!\*\*\*@)([^\s@'"]*)@(?=[^\s@])/g, '$1$2:***@');
}

/** The proxy passwords configured or in the environment (D30), for the logger's redaction list. */
export function proxySecrets(conf: { host?: string | null } | undefined, env: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  if (conf?.host) { const a = splitUserInfo(conf.host).auth; if (a?.password) out.push(a.password, encodeURIComponent(a.password)); }
  for (const k of ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY']) {
    const raw = env[k];
    if (!raw) continue;
    try {
      const u = new URL(raw.includes('://') ? raw : `http://${raw}`);
      if (u.password) out.push(u.password, decodeComponent(u.password));
    } catch { /* not a URL: not used either */ }
  }
  return [...new Set(out)];
}

export function decodeComponent(s: string): string {
  try { return decodeURIComponent(s); } catch { return s; }
}

/** Splits `user:password@host` (HttpProxy.Host, D30) into credentials and host. */
export function splitUserInfo(hostSpec: string): { host: string; auth?: { user: string; password: string } } {
  const at = hostSpec.lastIndexOf('@');
  if (at < 0) return { host: hostSpec };
  const info = hostSpec.slice(0, at);
  const colon = info.indexOf(':');
  const user = decodeComponent(colon < 0 ? info : info.slice(0, colon));
  const password = colon < 0 ? '' : decodeComponent(info.slice(colon + 1));
  return { host: hostSpec.slice(at + 1), auth: { user, password } };
}
