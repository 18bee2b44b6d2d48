/**
 * The extension layer's error type and WALinuxAgent's extension error codes (extensions.md §8.5, §5.2 table, §6.6;
 * WALA `ExtensionErrorCodes` in azurelinuxagent/common/exception.py). Codes in the 1000 range are terminal for CRP.
 */

/** WALinuxAgent's `ExtensionErrorCodes` (names kept) plus the goal-state aggregate code 2001 (§8.7). */
export const ExtErrorCode = {
  /** Anything unexpected; invalid goal-state data; manifest not downloadable; version not in manifest (§8.5). */
  PluginUnknownFailure: -1,
  PluginSuccess: 0,
  /** Catch-all; also the uninstall command's failure code (§5.2). */
  PluginProcessingError: 1000,
  /** Package not downloadable or download budget exceeded; disk full while downloading (§4.2, §4.5). */
  PluginManifestDownloadError: 1001,
  /** HandlerManifest.json copy unreadable (§7.4). */
  PluginHandlerManifestNotFound: 1002,
  /** HandlerManifest.json invalid JSON (§7.4). */
  PluginHandlerManifestDeserializationError: 1003,
  /** Exists in WALA; HEAD never uses it (§4.2). */
  PluginPackageDownloadFailed: 1004,
  /** Exists in WALA; HEAD never uses it (§4.2). */
  PluginPackageExtractionFailed: 1005,
  PluginInstallProcessingFailed: 1007,
  PluginUpdateProcessingFailed: 1008,
  PluginEnableProcessingFailed: 1009,
  PluginDisableProcessingFailed: 1010,
  PluginHandlerScriptTimedout: 1011,
  PluginSettingsStatusInvalid: 1012,
  /** Goal-state aggregate: unsupported required features / multi-config not yet supported (§3.2, §8.7, D11). */
  GoalStateUnsupportedFeature: 2001,
} as const;

export type ExtErrorCodeValue = (typeof ExtErrorCode)[keyof typeof ExtErrorCode];

/** An extension-processing failure carrying the code the handler status reports (§8.5). */
export class ExtensionError extends Error {
  constructor(message: string, readonly code: number = ExtErrorCode.PluginUnknownFailure, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ExtensionError';
  }
}

/** The code to report for any thrown value: an ExtensionError's own code, otherwise −1 ("anything unexpected"). */
export function errorCodeOf(e: unknown): number {
  return e instanceof ExtensionError ? e.code : ExtErrorCode.PluginUnknownFailure;
}
