import { describe, expect, it } from 'vitest';
import { FakeNftDriver } from '@nftops/nft-driver';

const artifact = (body: string) => `table inet a\ndelete table inet a\ntable inet a {\n${body}\n}\n`;

describe('FakeNftDriver', () => {
  it('replaces tables whole and keeps namespaces apart', async () => {
    const nft = new FakeNftDriver();
    expect(await nft.apply(artifact('chain one { }'))).toEqual({ ok: true });
    expect(await nft.apply(artifact('chain two { }'))).toEqual({ ok: true });
    expect(nft.tableText('inet', 'a')).toBe('chain two { }');
    expect(await nft.listTables({ netns: 'other' })).toEqual([]);
  });

  it('applies nothing when a transaction is rejected', async () => {
    const nft = new FakeNftDriver();
    await nft.apply(artifact('chain one { }'));
    nft.rejectWhen((ruleset) => (ruleset.includes('bad') ? 'bad rule' : undefined));
    const result = await nft.apply(artifact('chain bad { }'));
    expect(result.ok).toBe(false);
    expect(nft.tableText('inet', 'a')).toBe('chain one { }');
  });

  it('fails deleting a missing table, like nft', async () => {
    const nft = new FakeNftDriver();
    expect((await nft.apply('delete table inet a\n')).ok).toBe(false);
  });
});
