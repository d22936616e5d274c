import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';

/**
 * An nftops artifact is an `nft -f` file whose leading comment block is a machine-readable header:
 *
 *   # nftops-artifact v1
 *   # generator: nftops 0.1.0
 *   # tables: inet nftops_lb, inet nftops_filter
 *   # sources: sha256:<hex of the canonical source objects>
 *   # body: sha256:<hex of every byte after the header's blank line>
 *   <blank line>
 *   <body: one nft transaction>
 *
 * The header is plain nft comments, so the whole file still loads with `nft -f`. The body digest lets a
 * reader tell a complete file from a half-written one without any other signal.
 */
export const ARTIFACT_MAGIC = '# nftops-artifact v1';

export type TableFamily = 'inet' | 'ip' | 'ip6' | 'arp' | 'bridge' | 'netdev';
const FAMILIES: ReadonlySet<string> = new Set(['inet', 'ip', 'ip6', 'arp', 'bridge', 'netdev']);

export interface TableRef {
  readonly family: TableFamily;
  readonly name: string;
}

export interface ArtifactHeader {
  readonly generator: string;
  readonly tables: readonly TableRef[];
  readonly sourceDigest: string;
  readonly bodyDigest: string;
  /** Header fields this reader does not know, kept so newer writers stay readable. */
  readonly extra: Readonly<Record<string, string>>;
}

export interface ArtifactInput {
  readonly generator: string;
  readonly tables: readonly TableRef[];
  readonly sourceDigest: string;
  /**
   * The body, or pieces whose concatenation is the body: a large body is hashed piece by piece and joined once,
   * into the artifact (on the machines we measured, every fresh MiB of memory costs milliseconds).
   */
  readonly body: string | readonly string[];
  readonly extra?: Readonly<Record<string, string>>;
}

export interface ParsedArtifact {
  readonly header: ArtifactHeader;
  readonly body: string;
}

/** Why a file is not a complete, intact artifact. */
export interface ArtifactFailure {
  readonly ok: false;
  readonly code: ArtifactErrorCode;
  readonly message: string;
}

export type ParseArtifactResult = { readonly ok: true; readonly artifact: ParsedArtifact } | ArtifactFailure;

export type ArtifactErrorCode =
  | 'ARTIFACT_NOT_AN_ARTIFACT'
  | 'ARTIFACT_BAD_HEADER'
  | 'ARTIFACT_DIGEST_MISMATCH';

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

const HEADER_VALUE = /^[\x20-\x7e]*$/;
const TABLE_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

function formatTables(tables: readonly TableRef[]): string {
  return tables.map((t) => `${t.family} ${t.name}`).join(', ');
}

function digestOfBody(body: string | readonly string[]): string {
  if (typeof body === 'string') return sha256Hex(body);
  const hash = createHash('sha256');
  for (const piece of body) hash.update(piece);
  return hash.digest('hex');
}

export function renderArtifact(input: ArtifactInput): string {
  const fields: [string, string][] = [
    ['generator', input.generator],
    ['tables', formatTables(input.tables)],
    ['sources', `sha256:${input.sourceDigest}`],
    ['body', `sha256:${digestOfBody(input.body)}`],
    ...Object.entries(input.extra ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  ];
  for (const [key, value] of fields) {
    if (!/^[a-z][a-z0-9-]*$/.test(key) || !HEADER_VALUE.test(value)) {
      throw new Error(`artifact header field ${JSON.stringify(key)} has a value that cannot be written safely`);
    }
  }
  for (const table of input.tables) {
    if (!FAMILIES.has(table.family) || !TABLE_NAME.test(table.name)) {
      throw new Error(`artifact table ${JSON.stringify(table)} is not a valid table reference`);
    }
  }
  const header = [ARTIFACT_MAGIC, ...fields.map(([k, v]) => `# ${k}: ${v}`)].join('\n');
  return typeof input.body === 'string' ? `${header}\n\n${input.body}` : [`${header}\n\n`, ...input.body].join('');
}

function parseTables(value: string): TableRef[] | undefined {
  if (value.trim() === '') return [];
  const tables: TableRef[] = [];
  for (const part of value.split(',')) {
    const [family, name, ...rest] = part.trim().split(/\s+/);
    if (rest.length > 0 || family === undefined || name === undefined) return undefined;
    if (!FAMILIES.has(family) || !TABLE_NAME.test(name)) return undefined;
    tables.push({ family: family as TableFamily, name });
  }
  return tables;
}

/**
 * Parses an artifact and verifies its body digest. Never throws: a reader watching a directory sees
 * partial files all the time and must treat them as data, not as exceptions.
 */
export function parseArtifact(text: string): ParseArtifactResult {
  return parseWith(text, (bodyText) => sha256Hex(bodyText));
}

/**
 * `parseArtifact` for a file's bytes, hashing the body as bytes instead of re-encoding the decoded text (large
 * artifacts: one pass less). TEXT must be BYTES decoded as UTF-8; bytes that are not valid UTF-8 are parsed
 * from the text as `parseArtifact` does (their digest then cannot match).
 */
export function parseArtifactBytes(bytes: Uint8Array, text?: string): ParseArtifactResult {
  const buffer = asBuffer(bytes);
  if (!isUtf8(buffer)) return parseArtifact(text ?? buffer.toString('utf8'));
  const verified = verifyArtifactBytes(buffer);
  if (!verified.ok) return verified;
  const { header, bodyStart } = verified.artifact;
  // '\n' never occurs inside a multi-byte character: the blank line is at the same place in the bytes and the text.
  const body = text === undefined ? buffer.toString('utf8', bodyStart) : text.slice(text.indexOf('\n\n') + 2);
  return { ok: true, artifact: { header, body } };
}

/** An artifact whose header parsed and whose body digest checked out, still as bytes (`verifyArtifactBytes`). */
export interface VerifiedArtifactBytes {
  readonly header: ArtifactHeader;
  /** Offset of the body's first byte: the header, including its blank line, is `bytes[0, bodyStart)`. */
  readonly bodyStart: number;
}

export type VerifyArtifactBytesResult = { readonly ok: true; readonly artifact: VerifiedArtifactBytes } | ArtifactFailure;

/**
 * Parses the header of an artifact file's BYTES and verifies the body digest over the body bytes, without
 * decoding the body (for large artifacts the decode costs more than the hash). Never throws. The file must be
 * valid UTF-8 (what `renderArtifact` writes): a body that is not is refused as an incomplete or altered file, so
 * whatever later decodes the body gets exactly the bytes that were hashed.
 */
export function verifyArtifactBytes(bytes: Uint8Array): VerifyArtifactBytesResult {
  const buffer = asBuffer(bytes);
  const end = buffer.indexOf('\n\n');
  const headerText = buffer.toString('utf8', 0, end < 0 ? Math.min(buffer.length, MAX_HEADER_SCAN) : end);
  const header = parseHeader(end < 0 ? headerText : `${headerText}\n\n`);
  if (!header.ok) return header;
  if (!isUtf8(buffer.subarray(0, end))) return { ok: false, code: 'ARTIFACT_BAD_HEADER', message: 'the header is not valid UTF-8' };
  const body = buffer.subarray(end + 2);
  if (!isUtf8(body)) {
    return { ok: false, code: 'ARTIFACT_DIGEST_MISMATCH', message: 'the body is not valid UTF-8 (incomplete or altered file)' };
  }
  const mismatch = checkDigest(header.header, sha256Hex(body));
  return mismatch ?? { ok: true, artifact: { header: header.header, bodyStart: end + 2 } };
}

/** How much of a file without a blank line is decoded to report what is wrong with its header. */
const MAX_HEADER_SCAN = 1 << 16;

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function parseWith(text: string, digestOfBody: (bodyText: string, bodyStart: number) => string): ParseArtifactResult {
  const parsed = parseHeader(text);
  if (!parsed.ok) return parsed;
  const bodyText = text.slice(parsed.bodyStart);
  const mismatch = checkDigest(parsed.header, digestOfBody(bodyText, parsed.bodyStart));
  return mismatch ?? { ok: true, artifact: { header: parsed.header, body: bodyText } };
}

function checkDigest(header: ArtifactHeader, actual: string): ArtifactFailure | undefined {
  if (actual === header.bodyDigest) return undefined;
  return {
    ok: false,
    code: 'ARTIFACT_DIGEST_MISMATCH',
    message: `body digest is sha256:${actual}, the header says sha256:${header.bodyDigest} (incomplete or altered file)`,
  };
}

/** The header of TEXT (which needs to hold only the header and its blank line), and where the body starts. */
function parseHeader(
  text: string,
): { ok: true; header: ArtifactHeader; bodyStart: number } | ArtifactFailure {
  if (!text.startsWith(`${ARTIFACT_MAGIC}\n`)) {
    return { ok: false, code: 'ARTIFACT_NOT_AN_ARTIFACT', message: `the file does not start with "${ARTIFACT_MAGIC}"` };
  }
  const end = text.indexOf('\n\n');
  if (end < 0) return { ok: false, code: 'ARTIFACT_BAD_HEADER', message: 'the header is not followed by a blank line' };
  const fields = new Map<string, string>();
  for (const line of text.slice(ARTIFACT_MAGIC.length + 1, end).split('\n')) {
    const match = /^# ([a-z][a-z0-9-]*): (.*)$/.exec(line);
    if (!match) return { ok: false, code: 'ARTIFACT_BAD_HEADER', message: `malformed header line ${JSON.stringify(line)}` };
    const [, key, value] = match as unknown as [string, string, string];
    if (fields.has(key)) return { ok: false, code: 'ARTIFACT_BAD_HEADER', message: `header field "${key}" appears twice` };
    fields.set(key, value);
  }
  const generator = fields.get('generator');
  const tables = parseTables(fields.get('tables') ?? '\u0000');
  const sources = /^sha256:([0-9a-f]{64})$/.exec(fields.get('sources') ?? '');
  const body = /^sha256:([0-9a-f]{64})$/.exec(fields.get('body') ?? '');
  if (generator === undefined || tables === undefined || !sources || !body) {
    return {
      ok: false,
      code: 'ARTIFACT_BAD_HEADER',
      message: 'the header needs generator, tables, sources (sha256) and body (sha256) fields',
    };
  }
  const extra: Record<string, string> = {};
  for (const [key, value] of [...fields].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!['generator', 'tables', 'sources', 'body'].includes(key)) extra[key] = value;
  }
  return { ok: true, header: { generator, tables, sourceDigest: sources[1]!, bodyDigest: body[1]!, extra }, bodyStart: end + 2 };
}
