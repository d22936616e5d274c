/**
 * Error codes the watcher reports in logs, status and exit messages. Expected failures carry one of these
 * codes and a one-line message; they are never shown to users as stack traces.
 */
export type WatchErrorCode =
  /** The file is not an nftops artifact, or its header is malformed. */
  | 'WATCH_BAD_ARTIFACT'
  /** The body digest in the header does not match the body: a partial or altered file. */
  | 'WATCH_DIGEST_MISMATCH'
  /** The body touches a table its header does not name, or uses a command the watcher never runs. */
  | 'WATCH_UNSAFE_BODY'
  /** Two artifacts for the same namespace claim the same table. */
  | 'WATCH_TABLE_CONFLICT'
  /** Two sources produce the same artifact id. */
  | 'WATCH_DUPLICATE_ARTIFACT'
  /** A public key is configured and the artifact carries no signature. */
  | 'WATCH_SIGNATURE_MISSING'
  /** A public key is configured and the artifact's signature does not verify with it. */
  | 'WATCH_SIGNATURE_INVALID'
  /** The file is writable by group or others, not owned by the expected user, or a symlink leaving the directory. */
  | 'WATCH_UNSAFE_FILE'
  /** The routing an artifact carries could not be applied or removed (the nft state stays; retried). */
  | 'WATCH_ROUTING'
  /** The file is larger than the configured limit. */
  | 'WATCH_TOO_LARGE'
  /** The file could not be read. */
  | 'WATCH_READ_FAILED'
  /** `nft --check` or `nft -f` refused the ruleset. */
  | 'WATCH_NFT_REJECTED'
  /** nft could not be run, timed out, or failed in a way unrelated to the ruleset. */
  | 'WATCH_NFT_ERROR'
  /** The target network namespace does not exist (yet). */
  | 'WATCH_NETNS_MISSING'
  /** Bad command line or configuration file. */
  | 'WATCH_CONFIG'
  /** The state directory cannot be read or written. */
  | 'WATCH_STATE';

export class WatchError extends Error {
  constructor(
    readonly code: WatchErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'WatchError';
  }
}

/** A short, single-line description of any thrown value, for logs. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}
