import { describe, expect, it } from 'vitest';
import { createNftDriver } from '@nftops/nft-driver';
import { kernelAvailable } from '@nftops/testkit';
import { NFT_KEYWORDS } from '../src/model.js';

describe('nft keywords', () => {
  it.runIf(kernelAvailable())('every listed keyword is refused by nft as a table or chain name, and plain names load', async () => {
    const nft = createNftDriver();
    const ruleset = (word: string) => `table inet okt {\n chain ${word} {\n }\n}\n`;
    const accepted: string[] = [];
    for (const word of NFT_KEYWORDS) {
      const result = await nft.check(ruleset(word), { isolated: true });
      if (result.ok) accepted.push(word);
    }
    expect(accepted).toEqual([]);
    for (const word of ['prerouting', 'postrouting', 'forward', 'filter', 'nat', 'nftops_nat', 'lb-dnat']) {
      expect((await nft.check(ruleset(word), { isolated: true })).ok, word).toBe(true);
    }
  });
});
