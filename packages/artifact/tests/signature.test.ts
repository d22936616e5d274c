import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseArtifact, renderArtifact, sha256Hex, signArtifact, verifyArtifactSignature, verifyArtifactSignatureBytes } from '@nftops/artifact';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');
const text = renderArtifact({
  generator: 'nftops test',
  tables: [{ family: 'inet', name: 'nftops_nat' }],
  sourceDigest: sha256Hex('x'),
  body: 'table inet nftops_nat\ndelete table inet nftops_nat\ntable inet nftops_nat {\n}\n',
});

describe('artifact signatures', () => {
  it('signs and verifies, and the signed artifact is still a valid artifact', () => {
    const signed = signArtifact(text, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    expect(signed).toMatch(/\n# signature: ed25519:[A-Za-z0-9+/]{86}==\n\n/);
    expect(verifyArtifactSignature(signed, publicKey.export({ type: 'spki', format: 'pem' }).toString())).toEqual({ ok: true });
    const parsed = parseArtifact(signed);
    expect(parsed.ok).toBe(true);
    if (parsed.ok) expect(parsed.artifact.header.extra.signature).toMatch(/^ed25519:/);
  });

  it('re-signing replaces the signature instead of adding one', () => {
    const once = signArtifact(text, privateKey);
    const twice = signArtifact(once, privateKey);
    expect(twice.match(/# signature:/g)).toHaveLength(1);
    expect(verifyArtifactSignature(twice, publicKey)).toEqual({ ok: true });
  });

  it('refuses unsigned artifacts, other keys, and any change to header or body', () => {
    expect(verifyArtifactSignature(text, publicKey)).toMatchObject({ ok: false, code: 'SIGNATURE_MISSING' });
    const signed = signArtifact(text, privateKey);
    expect(verifyArtifactSignature(signed, other.publicKey)).toMatchObject({ ok: false, code: 'SIGNATURE_INVALID' });
    expect(verifyArtifactSignature(signed.replace('{\n}', '{\n chain x {\n }\n}'), publicKey)).toMatchObject({ ok: false, code: 'SIGNATURE_INVALID' });
    expect(verifyArtifactSignature(signed.replace('inet nftops_nat\n#', 'inet other\n#'), publicKey)).toMatchObject({ ok: false });
    expect(verifyArtifactSignature(signed.replace('nftops test', 'nftops evil'), publicKey)).toMatchObject({ ok: false, code: 'SIGNATURE_INVALID' });
  });

  it('refuses keys that are not ed25519', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    expect(() => signArtifact(text, rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString())).toThrow(/not ed25519/);
  });
});

describe('artifact signatures on bytes', () => {
  it('gives the text verification\'s answer for signed, unsigned, altered and foreign-key artifacts', () => {
    const nonAscii = renderArtifact({
      generator: 'nftops test',
      tables: [{ family: 'inet', name: 'nftops_nat' }],
      sourceDigest: sha256Hex('x'),
      body: 'table inet nftops_nat\ndelete table inet nftops_nat\ntable inet nftops_nat {\n\tcomment "grüße ✓"\n}\n',
    });
    const signed = signArtifact(nonAscii, privateKey);
    const cases = [
      signed,
      nonAscii,
      signed.replace('grüße', 'grüsse'),
      signed.replace('nftops test', 'nftops evil'),
      signArtifact(text, privateKey),
      signArtifact(text, other.privateKey),
    ];
    for (const candidate of cases) {
      expect(verifyArtifactSignatureBytes(Buffer.from(candidate), publicKey)).toEqual(verifyArtifactSignature(candidate, publicKey));
    }
    expect(verifyArtifactSignatureBytes(Buffer.from(signed), publicKey)).toEqual({ ok: true });
    expect(() => verifyArtifactSignatureBytes(Buffer.from('table inet x {}\n'), publicKey)).toThrow(/not an nftops artifact/);
  });
});

