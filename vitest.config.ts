import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const packages = ['artifact', 'nft-driver', 'compiler', 'cli', 'watcher', 'testkit'];
const alias = Object.fromEntries(
  packages.map((name) => [`@nftops/${name}`, fileURLToPath(new URL(`./packages/${name}/src/index.ts`, import.meta.url))]),
);

export default defineConfig({
  test: {
    reporters: ['default', fileURLToPath(new URL('./tools/vitest-summary-reporter.ts', import.meta.url))],
    projects: packages.map((name) => ({
      resolve: { alias },
      test: {
        name,
        root: fileURLToPath(new URL(`./packages/${name}/`, import.meta.url)),
        include: ['tests/**/*.test.ts'],
        testTimeout: 60_000,
        hookTimeout: 60_000,
      },
    })),
  },
});
