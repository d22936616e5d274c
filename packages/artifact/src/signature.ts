import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { ARTIFACT_MAGIC } from './artifact.js';

/**
 * Optional ed25519 signatures. CI signs each artifact; a node configured with the public key applies only
 * artifacts whose signature verifies. The signature is one more header line, `# signature: ed25519:<base64>`,
 * over the exact artifact text without that line, so it covers the header (tables, digests) and the body.
 */
export const SIGNATURE_FIELD = 'signature';
const SIGNATURE_LINE = /^# signature: ed25519:([A-Za-z0-9+/]{86}==)\n/m;

function loadKey(pem: string | KeyObject, kind: 'private' | 'public'): KeyObject {
  if (typeof pem !== 'string') return pem;
  const key = kind === 'private' ? createPrivateKey(pem) : createPublicKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`the ${kind} key is ${key.asymmetricKeyType}, not ed25519`);
  return key;
}

/** The text a signature covers: the artifact without its signature line (what the compiler rendered). */
export function stripSignature(text: string): string {
  return text.replace(SIGNATURE_LINE, '');
}

function headerEnd(text: string): number {
  const end = text.indexOf('\n\n');
  if (!text.startsWith(`${ARTIFACT_MAGIC}\n`) || end < 0) throw new Error('not an nftops artifact');
  return end;
}

/** Returns TEXT with a (new) signature line at the end of its header. */
export function signArtifact(text: string, privateKey: string | KeyObject): string {
  const unsigned = stripSignature(text);
  const end = headerEnd(unsigned);
  const signature = sign(null, Buffer.from(unsigned), loadKey(privateKey, 'private')).toString('base64');
  return `${unsigned.slice(0, end)}\n# ${SIGNATURE_FIELD}: ed25519:${signature}${unsigned.slice(end)}`;
}

export type SignatureCheck =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: 'SIGNATURE_MISSING' | 'SIGNATURE_INVALID'; readonly message: string };

export function verifyArtifactSignature(text: string, publicKey: string | KeyObject): SignatureCheck {
  const match = SIGNATURE_LINE.exec(text);
  if (!match || match.index > headerEnd(text)) {
    return { ok: false, code: 'SIGNATURE_MISSING', message: 'the artifact carries no ed25519 signature' };
  }
  return checked(verify(null, Buffer.from(stripSignature(text)), loadKey(publicKey, 'public'), Buffer.from(match[1]!, 'base64')));
}

/**
 * `verifyArtifactSignature` for a file's BYTES (UTF-8, as written): the signed bytes are the file without the
 * signature line, so nothing is decoded or re-encoded (a large artifact would cost two passes more).
 */
export function verifyArtifactSignatureBytes(bytes: Uint8Array, publicKey: string | KeyObject): SignatureCheck {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = buffer.indexOf('\n\n');
  // latin1: one character per byte, so offsets in the header text are byte offsets (the signature line is ASCII).
  const header = buffer.toString('latin1', 0, end + 1);
  if (end < 0 || !header.startsWith(`${ARTIFACT_MAGIC}\n`)) throw new Error('not an nftops artifact');
  const match = SIGNATURE_LINE.exec(header);
  if (!match) return { ok: false, code: 'SIGNATURE_MISSING', message: 'the artifact carries no ed25519 signature' };
  const unsigned = Buffer.concat([buffer.subarray(0, match.index), buffer.subarray(match.index + match[0].length)]);
  return checked(verify(null, unsigned, loadKey(publicKey, 'public'), Buffer.from(match[1]!, 'base64')));
}

function checked(valid: boolean): SignatureCheck {
  return valid
    ? { ok: true }
    : { ok: false, code: 'SIGNATURE_INVALID', message: 'the ed25519 signature does not match this artifact and key' };
}
