import { describe, expect, it } from 'vitest';
import { parseArtifact, parseArtifactBytes, renderArtifact, sha256Hex, verifyArtifactBytes } from '@nftops/artifact';

const input = {
  generator: 'nftops 0.1.0',
  tables: [
    { family: 'inet', name: 'nftops_lb' },
    { family: 'inet', name: 'nftops_filter' },
  ] as const,
  sourceDigest: sha256Hex('sources'),
  body: 'table inet nftops_lb\ndelete table inet nftops_lb\ntable inet nftops_lb {\n}\n',
};

describe('artifact format', () => {
  it('round-trips header and body', () => {
    const text = renderArtifact(input);
    const parsed = parseArtifact(text);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.artifact.body).toBe(input.body);
    expect(parsed.artifact.header.tables).toEqual(input.tables);
    expect(parsed.artifact.header.bodyDigest).toBe(sha256Hex(input.body));
    expect(parsed.artifact.header.sourceDigest).toBe(input.sourceDigest);
  });

  it('detects every truncation of a complete file', () => {
    const text = renderArtifact(input);
    for (let cut = 0; cut < text.length; cut++) {
      expect(parseArtifact(text.slice(0, cut)).ok, `cut at ${cut}`).toBe(false);
    }
  });

  it('detects an altered body', () => {
    const text = renderArtifact(input).replace('nftops_lb {', 'nftops_lb { chain x { }');
    const parsed = parseArtifact(text);
    expect(parsed).toMatchObject({ ok: false, code: 'ARTIFACT_DIGEST_MISMATCH' });
  });

  it('rejects a file that is not an artifact', () => {
    expect(parseArtifact('table inet x {}\n')).toMatchObject({ ok: false, code: 'ARTIFACT_NOT_AN_ARTIFACT' });
  });

  it('refuses to write a header value that would break out of the comment', () => {
    expect(() => renderArtifact({ ...input, generator: 'nftops\nflush ruleset' })).toThrow();
    expect(() => renderArtifact({ ...input, tables: [{ family: 'inet', name: 'x;flush ruleset' }] })).toThrow();
  });
});

describe('parseArtifactBytes', () => {
  it('gives parseArtifact\'s result from the bytes (non-ASCII comments, truncations, alterations, invalid UTF-8)', () => {
    const text = renderArtifact({ ...input, body: `${input.body}# kommentar: grüße ✓\n` });
    const bytes = Buffer.from(text, 'utf8');
    expect(parseArtifactBytes(bytes)).toEqual(parseArtifact(text));
    expect(parseArtifactBytes(bytes).ok).toBe(true);
    for (const cut of [10, text.length - 3, Buffer.byteLength(text) - 1]) {
      const part = bytes.subarray(0, cut);
      expect(parseArtifactBytes(part)).toEqual(parseArtifact(part.toString('utf8')));
    }
    const altered = Buffer.from(text.replace('grüße', 'grüsse'), 'utf8');
    expect(parseArtifactBytes(altered)).toMatchObject({ ok: false, code: 'ARTIFACT_DIGEST_MISMATCH' });
    const invalid = Buffer.concat([bytes, Buffer.from([0xff, 0x0a])]);
    expect(parseArtifactBytes(invalid)).toMatchObject({ ok: false, code: 'ARTIFACT_DIGEST_MISMATCH' });
  });
});

describe('verifyArtifactBytes', () => {
  const text = renderArtifact({ ...input, body: `${input.body}# kommentar: grüße ✓\n` });
  const bytes = Buffer.from(text, 'utf8');

  it('gives the header and where the body starts, without decoding the body', () => {
    const parsed = parseArtifact(text);
    const verified = verifyArtifactBytes(bytes);
    expect(verified.ok && parsed.ok).toBe(true);
    if (!verified.ok || !parsed.ok) return;
    expect(verified.artifact.header).toEqual(parsed.artifact.header);
    expect(bytes.subarray(verified.artifact.bodyStart).toString('utf8')).toBe(parsed.artifact.body);
  });

  it('refuses every truncation, with parseArtifact\'s code', () => {
    for (let cut = 0; cut < bytes.length; cut++) {
      const part = bytes.subarray(0, cut);
      const verified = verifyArtifactBytes(part);
      expect(verified.ok, `cut at ${cut}`).toBe(false);
      const parsed = parseArtifact(part.toString('utf8'));
      if (!verified.ok && !parsed.ok) expect(verified.code, `cut at ${cut}`).toBe(parsed.code);
    }
  });

  it('refuses an altered body and a body that is not UTF-8 (even when the digest covers its bytes)', () => {
    expect(verifyArtifactBytes(Buffer.from(text.replace('grüße', 'grüsse'), 'utf8'))).toMatchObject({ ok: false, code: 'ARTIFACT_DIGEST_MISMATCH' });
    const header = text.slice(0, text.indexOf('\n\n') + 2);
    const body = Buffer.concat([Buffer.from(input.body), Buffer.from([0xff, 0x0a])]);
    const forged = Buffer.concat([Buffer.from(header.replace(sha256Hex(`${input.body}# kommentar: grüße ✓\n`), sha256Hex(body))), body]);
    expect(verifyArtifactBytes(forged)).toMatchObject({ ok: false, code: 'ARTIFACT_DIGEST_MISMATCH', message: expect.stringMatching(/not valid UTF-8/) });
  });
});

