import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeNftDriver } from '@nftops/nft-driver';
import { kernelAvailable } from '@nftops/testkit';
import { main } from '@nftops/cli';
import { runCheck } from '../src/commands/check.js';
import { captureIo } from './helpers.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nftops-cli-'));
  cpSync(join(REPO, 'examples'), join(dir, 'examples'), { recursive: true });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const lb = (name: string, address: string) => `apiVersion: nftops.dev/v1alpha1
kind: LoadBalancer
metadata: { name: ${name} }
spec:
  address: ${address}
  ports: [{ port: 80 }]
  backends: [{ address: 198.51.100.1 }]
`;

describe('nftops compile', () => {
  it('writes each Artifact to its output, byte-identical to the committed one', async () => {
    for (const file of ['examples/lbaas-request/lbaas-request.nft', 'examples/dual-stack/dual-stack.nft']) rmSync(join(dir, file));
    const io = captureIo(dir);
    expect(await main(['compile', 'examples'], io)).toBe(0);
    for (const file of ['examples/lbaas-request/lbaas-request.nft', 'examples/dual-stack/dual-stack.nft']) {
      expect(readFileSync(join(dir, file), 'utf8')).toBe(readFileSync(join(REPO, file), 'utf8'));
    }
    expect(io.err()).toContain('wrote examples/lbaas-request/lbaas-request.nft');
  });

  it('prints to stdout or writes --output when the sources declare no Artifact', async () => {
    writeFileSync(join(dir, 'lb.yaml'), lb('web', '192.0.2.1'));
    const io = captureIo(dir);
    expect(await main(['compile', 'lb.yaml'], io)).toBe(0);
    expect(io.out()).toMatch(/^# nftops-artifact v1\n/);
    expect(await main(['compile', 'lb.yaml', '-o', 'out.nft'], captureIo(dir))).toBe(0);
    expect(readFileSync(join(dir, 'out.nft'), 'utf8')).toBe(io.out());
  });

  it('takes absolute paths as well as paths relative to the working directory', async () => {
    writeFileSync(join(dir, 'lb.yaml'), lb('web', '192.0.2.1'));
    const relative = captureIo(dir);
    expect(await main(['compile', 'lb.yaml'], relative)).toBe(0);
    const elsewhere = captureIo(tmpdir());
    expect(await main(['compile', join(dir, 'lb.yaml'), '-o', join(dir, 'abs.nft')], elsewhere), elsewhere.err()).toBe(0);
    expect(readFileSync(join(dir, 'abs.nft'), 'utf8')).toBe(relative.out());
  });

  it('reports every error with file:line:column and a code, exits 2, writes nothing and keeps the old artifact', async () => {
    const target = join(dir, 'examples/lbaas-request/lbaas-request.nft');
    const before = readFileSync(target, 'utf8');
    writeFileSync(
      join(dir, 'examples/lbaas-request/broken.yaml'),
      `${lb('bad', '192.0.2.300')}---\n${lb('worse', '2001:db8::1').replace('port: 80', 'port: 0')}`,
    );
    const io = captureIo(dir);
    expect(await main(['compile', 'examples'], io)).toBe(2);
    expect(io.err()).toContain('examples/lbaas-request/broken.yaml:5:12: error INVALID_ADDRESS');
    expect(io.err()).toContain('examples/lbaas-request/broken.yaml:14:19: error SCHEMA_RANGE');
    expect(io.err()).not.toMatch(/\n\s+at /);
    expect(readFileSync(target, 'utf8')).toBe(before);
    expect(readdirSync(join(dir, 'examples/lbaas-request')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(existsSync(join(dir, 'examples/dual-stack/dual-stack.nft'))).toBe(true);
  });

  it('--json describes the result for machines', async () => {
    writeFileSync(join(dir, 'lb.yaml'), lb('web', '192.0.2.1'));
    const io = captureIo(dir);
    expect(await main(['compile', 'lb.yaml', '--stdout', '--json'], io)).toBe(0);
    const result = JSON.parse(io.out());
    expect(result.ok).toBe(true);
    expect(result.artifacts[0].tables).toEqual([
      { family: 'inet', name: 'nftops_nat' },
      { family: 'inet', name: 'nftops_filter' },
    ]);
    const bad = captureIo(dir);
    writeFileSync(join(dir, 'lb.yaml'), 'kind: [');
    expect(await main(['compile', 'lb.yaml', '--json'], bad)).toBe(2);
    expect(JSON.parse(bad.out()).diagnostics[0]).toMatchObject({ code: 'YAML_SYNTAX', file: 'lb.yaml', line: 1 });
  });

  it('names non-UTF-8 files, missing paths and oversized files', async () => {
    writeFileSync(join(dir, 'latin1.yaml'), Buffer.from([0x61, 0x3a, 0x20, 0x0a, 0x62, 0x3a, 0x20, 0xe9, 0x0a]));
    writeFileSync(join(dir, 'huge.yaml'), `# ${'x'.repeat(5 * 1024 * 1024)}\n`);
    const io = captureIo(dir);
    expect(await main(['compile', 'latin1.yaml', 'huge.yaml', 'nowhere'], io)).toBe(2);
    expect(io.err()).toContain('latin1.yaml:2:4: error YAML_NOT_UTF8');
    expect(io.err()).toContain('nowhere:1:1: error SOURCE_NOT_FOUND');
    expect(io.err()).toContain('huge.yaml:1:1: error YAML_TOO_LARGE');
  });
});

describe('nftops diff', () => {
  it('exits 0 when every artifact is current', async () => {
    const io = captureIo(dir);
    expect(await main(['diff', 'examples'], io)).toBe(0);
    expect(io.out()).toBe('');
  });

  it('exits 1 with a unified diff when an artifact is stale or missing', async () => {
    const file = join(dir, 'examples/lbaas-request/services.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('port: 8443\n', 'port: 9443\n'));
    rmSync(join(dir, 'examples/dual-stack/dual-stack.nft'));
    const io = captureIo(dir);
    expect(await main(['diff', 'examples'], io)).toBe(1);
    expect(io.out()).toContain('--- a/examples/lbaas-request/lbaas-request.nft');
    expect(io.out()).toMatch(/^\+\t+192\.0\.2\.10 \. tcp \. 9443 comment "LoadBalancer\/echo TCP\/9443 alt" : goto /m);
    expect(io.out()).toMatch(/^-\t+192\.0\.2\.10 \. tcp \. 8443 comment /m);
    expect(io.err()).toContain('examples/dual-stack/dual-stack.nft: missing');
    const json = captureIo(dir);
    expect(await main(['diff', 'examples', '--json'], json)).toBe(1);
    const statuses = JSON.parse(json.out()).artifacts.map((a: { output: string; status: string }) => `${a.output} ${a.status}`);
    expect(statuses.filter((s: string) => !s.endsWith(' current')).sort()).toEqual([
      'examples/dual-stack/dual-stack.nft missing',
      'examples/lbaas-request/lbaas-request.nft stale',
    ]);
  });

  it('exits 2 on errors', async () => {
    writeFileSync(join(dir, 'examples/oops.yaml'), 'apiVersion: nftops.dev/v9\nkind: LoadBalancer\n');
    const io = captureIo(dir);
    expect(await main(['diff', 'examples'], io)).toBe(2);
    expect(io.err()).toContain('examples/oops.yaml:1:13: error UNKNOWN_API_VERSION');
    expect(io.err()).toContain('supported: nftops.dev/v1alpha1');
  });
});

describe('nftops check', () => {
  it('maps a kernel refusal back to the YAML object the rule came from', async () => {
    const nft = new FakeNftDriver();
    nft.rejectWhen((ruleset) => {
      const line = ruleset.split('\n').findIndex((l) => l.includes('LoadBalancer/echo TCP/8443'));
      return line < 0 ? undefined : `unused`;
    });
    // The fake reports no location; give it one the way nft does.
    const located = {
      ...nft,
      apply: async (ruleset: string) => {
        const line = ruleset.split('\n').findIndex((l) => l.includes('LoadBalancer/echo TCP/8443')) + 1;
        return { ok: false as const, stderr: `/dev/stdin:${line}:3-9: Error: Could not process rule\n`, diagnostics: [{ line, columnStart: 3, columnEnd: 9, message: 'Could not process rule' }] };
      },
    } as unknown as FakeNftDriver;
    const io = captureIo(dir);
    expect(await runCheck(['examples/lbaas-request'], io, located)).toBe(2);
    expect(io.err()).toMatch(/examples\/lbaas-request\/services\.yaml:7:9: error NFT_REJECTED: nft refused line \d+ of examples\/lbaas-request\/lbaas-request\.nft: Could not process rule \(rule of LoadBalancer\/echo\)/);
  });

  it.runIf(kernelAvailable())('loads every example into a throwaway namespace with the real nft', async () => {
    const io = captureIo(dir);
    expect(await main(['check', 'examples'], io)).toBe(0);
    expect(io.err()).toContain('lbaas-request: loads in the kernel');
    expect(io.err()).toContain('dual-stack: loads in the kernel');
  });
});

describe('command line', () => {
  it('has --help on every command and documents exit codes', async () => {
    for (const command of ['compile', 'check', 'diff']) {
      const io = captureIo(dir);
      expect(await main([command, '--help'], io)).toBe(0);
      expect(io.out()).toContain(`Usage: nftops ${command}`);
      expect(io.out()).toContain('Exit codes');
    }
    const io = captureIo(dir);
    expect(await main(['--help'], io)).toBe(0);
    expect(io.out()).toContain('Commands:');
  });

  it('rejects unknown commands and flags with exit 2 and the usage', async () => {
    const io = captureIo(dir);
    expect(await main(['frobnicate'], io)).toBe(2);
    expect(io.err()).toContain('unknown command "frobnicate"');
    const flags = captureIo(dir);
    expect(await main(['compile', '--frob'], flags)).toBe(2);
    expect(flags.err()).toContain('Usage: nftops compile');
    expect(flags.err()).not.toMatch(/\n\s+at /);
  });

  it('runs as a binary (after the build)', () => {
    const bin = join(REPO, 'packages/cli/bin/nftops.js');
    expect(execFileSync(process.execPath, [bin, 'version'], { encoding: 'utf8' })).toMatch(/^nftops \d+\.\d+\.\d+\n$/);
    const run = spawnSync(process.execPath, [bin, 'diff', 'examples'], { cwd: dir, encoding: 'utf8' });
    expect(run.status).toBe(0);
  });
});
