import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '@nftops/cli';
import { schemaBaseFor } from '../src/import/emit.js';
import { captureIo } from './helpers.js';

/** `nftops import lbaas|istio` through the CLI: help, exit codes, files, --json, --stdout, errors without stack traces. */

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const FIXTURES = fileURLToPath(new URL('./fixtures/import/lbaas/', import.meta.url));

const STACK = /\n\s+at /;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nftops-import-'));
  cpSync(join(FIXTURES, 'request.yaml'), join(dir, 'request.yaml'));
  cpSync(join(FIXTURES, 'agent.toml'), join(dir, 'agent.toml'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('nftops import: help and usage', () => {
  it('has --help on the group and both subcommands, with exit codes; the top-level help lists it', async () => {
    for (const args of [['import', '--help'], ['import', 'lbaas', '--help'], ['import', 'istio', '-h']]) {
      const io = captureIo(dir);
      expect(await main(args, io), args.join(' ')).toBe(0);
      expect(io.out()).toContain(`Usage: nftops ${args.slice(0, args.length - 1).join(' ')}`);
      expect(io.out()).toContain('Exit codes: 0 converted');
    }
    const top = captureIo(dir);
    expect(await main(['--help'], top)).toBe(0);
    expect(top.out()).toMatch(/^ {2}import {4}convert ch-k8s-lbaas/m);
  });

  it('usage errors exit 2 with the subcommand usage and no stack trace', async () => {
    for (const [args, message, usage] of [
      [['import'], '', 'Usage: nftops import <lbaas|istio>'],
      [['import', 'frob'], 'unknown subcommand "frob"', 'Usage: nftops import <lbaas|istio>'],
      [['import', 'lbaas', '-o', 'out'], '--model FILE is required', 'Usage: nftops import lbaas'],
      [['import', 'lbaas', '-m', 'request.yaml'], 'give exactly one of --output DIR and --stdout', 'Usage: nftops import lbaas'],
      [['import', 'lbaas', '-m', 'request.yaml', '--stdout', '--name', 'Bad_Name'], '--name "Bad_Name" must be', 'Usage: nftops import lbaas'],
      [['import', 'lbaas', '-m', 'request.yaml', '--stdout', '--filter-table', 'reject'], '--filter-table "reject" is an nft keyword', 'Usage: nftops import lbaas'],
      [['import', 'lbaas', '--frob'], "Unknown option '--frob'", 'Usage: nftops import lbaas'],
      [['import', 'istio', '--stdout'], 'give the settings', 'Usage: nftops import istio'],
      [['import', 'istio', '--flags', '-p 1', '--env', 'NOEQUALS', '--stdout'], '--env "NOEQUALS" must be NAME=VALUE', 'Usage: nftops import istio'],
    ] as const) {
      const io = captureIo(dir);
      expect(await main([...args], io), args.join(' ')).toBe(2);
      const text = io.err() + io.out();
      expect(text).toContain(message);
      expect(text).toContain(usage);
      expect(text).not.toMatch(STACK);
    }
  });
});

describe('nftops import lbaas', () => {
  it('writes the YAML files, which nftops compile turns into the artifact', async () => {
    const io = captureIo(dir);
    expect(await main(['import', 'lbaas', '--model', 'request.yaml', '--config', 'agent.toml', '-o', 'out'], io)).toBe(0);
    expect(readdirSync(join(dir, 'out')).sort()).toEqual(['artifact.yaml', 'loadbalancers.yaml', 'policies.yaml', 'settings.yaml']);
    for (const name of readdirSync(join(dir, 'out'))) {
      expect(readFileSync(join(dir, 'out', name), 'utf8'), name).toBe(readFileSync(join(FIXTURES, 'expected', name), 'utf8'));
    }
    expect(io.err()).toContain('request.yaml:29:34: warning LBAAS_EMPTY_FORWARD');
    expect(io.err()).toContain('wrote out/policies.yaml');
    expect(io.err()).toContain('next: nftops compile out (writes out/lbaas.nft)');
    const compiled = captureIo(dir);
    expect(await main(['compile', 'out'], compiled)).toBe(0);
    expect(readFileSync(join(dir, 'out/lbaas.nft'), 'utf8')).toMatch(/^# tables: inet lbnat, inet lbfilter_nftops$/m);
  });

  it('a later import removes the files of an earlier one it does not write, and warns about foreign YAML in the directory', async () => {
    expect(await main(['import', 'lbaas', '-m', 'request.yaml', '-c', 'agent.toml', '-o', 'out'], captureIo(dir))).toBe(0);
    writeFileSync(join(dir, 'out', 'mine.yaml'), 'apiVersion: nftops.dev/v1alpha1\n');
    writeFileSync(join(dir, 'vyos.toml'), '[nftables]\nfilter-table-name = ""\nnat-table-name = "vyos_nat"\n');
    const io = captureIo(dir);
    expect(await main(['import', 'lbaas', '-m', 'request.yaml', '-c', 'vyos.toml', '-o', 'out'], io)).toBe(0);
    expect(readdirSync(join(dir, 'out')).sort()).toEqual(['artifact.yaml', 'loadbalancers.yaml', 'mine.yaml', 'settings.yaml']);
    expect(io.err()).toContain('removed out/policies.yaml (left over from an earlier import)');
    expect(io.err()).toContain('out/mine.yaml:1:1: warning IMPORT_OUTPUT_NOT_EMPTY');
    expect(io.err()).toContain('warning LBAAS_POLICIES_WITHOUT_FILTER');
  });

  it('--json describes the result; --stdout prints the files and writes nothing', async () => {
    const io = captureIo(dir);
    expect(await main(['import', 'lbaas', '-m', 'request.yaml', '-c', 'agent.toml', '-o', 'out', '--json'], io)).toBe(0);
    const result = JSON.parse(io.out());
    expect(result).toMatchObject({ ok: true, artifact: { name: 'lbaas', output: 'out/lbaas.nft' }, removed: [] });
    expect(result.files.map((f: { path: string }) => f.path)).toEqual(['out/artifact.yaml', 'out/settings.yaml', 'out/loadbalancers.yaml', 'out/policies.yaml']);
    expect(result.diagnostics.map((d: { code: string; line: number }) => `${d.code}@${d.line}`)).toEqual([
      'LBAAS_TABLE_SHARED@11',
      'LBAAS_SETTING_IGNORED@22',
      'LBAAS_EMPTY_FORWARD@29',
      'LBAAS_UNUSED_POLICY@53',
    ]);
    expect(io.err()).toBe('');
    const printed = captureIo(dir);
    expect(await main(['import', 'lbaas', '-m', 'request.yaml', '-c', 'agent.toml', '--stdout', '--name', 'edge'], printed)).toBe(0);
    expect(printed.out()).toContain('# file: settings.yaml\n# yaml-language-server: $schema=https://nftops.dev/schemas/v1alpha1/settings.schema.json');
    expect(printed.out()).toContain('  output: edge.nft');
    expect(existsSync(join(dir, 'edge.nft'))).toBe(false);
    const json = captureIo(dir);
    expect(await main(['import', 'lbaas', '-m', 'request.yaml', '--stdout', '--json'], json)).toBe(0);
    expect(JSON.parse(json.out()).files[0]).toMatchObject({ path: 'artifact.yaml', text: expect.stringContaining('kind: Artifact') });
  });

  it('errors exit 2 with file:line:column and a stable code, write nothing, and never show a stack trace', async () => {
    writeFileSync(join(dir, 'bad.yaml'), readFileSync(join(dir, 'request.yaml'), 'utf8').replace('protocol: UDP\n          inbound-port: 53', 'protocol: SCTP\n          inbound-port: 53'));
    const io = captureIo(dir);
    expect(await main(['import', 'lbaas', '-m', 'bad.yaml', '-c', 'agent.toml', '-o', 'out'], io)).toBe(2);
    expect(io.err()).toContain('bad.yaml:15:21: error LBAAS_PROTOCOL: protocol "SCTP" is not TCP or UDP');
    expect(io.err()).toMatch(/^1 error, 2 warnings$/m);
    expect(io.err()).not.toMatch(STACK);
    expect(existsSync(join(dir, 'out'))).toBe(false);
    const json = captureIo(dir);
    expect(await main(['import', 'lbaas', '-m', 'bad.yaml', '-o', 'out', '--json'], json)).toBe(2);
    expect(JSON.parse(json.out())).toMatchObject({ ok: false, files: [], diagnostics: expect.arrayContaining([expect.objectContaining({ code: 'LBAAS_PROTOCOL', file: 'bad.yaml', line: 15, column: 21 })]) });
    const missing = captureIo(dir);
    expect(await main(['import', 'lbaas', '-m', 'nowhere.yaml', '-o', 'out'], missing)).toBe(2);
    expect(missing.err()).toContain('nowhere.yaml:1:1: error IMPORT_READ: cannot read nowhere.yaml: ENOENT');
    const toml = captureIo(dir);
    writeFileSync(join(dir, 'broken.toml'), '[nftables]\nenable-snat = yes\n');
    expect(await main(['import', 'lbaas', '-m', 'request.yaml', '-c', 'broken.toml', '-o', 'out'], toml)).toBe(2);
    expect(toml.err()).toMatch(/^broken\.toml:2:\d+: error IMPORT_TOML_SYNTAX: /m);
  });

  it('modelines point at this checkout\'s schemas (relative) inside it, at the published URL elsewhere', () => {
    expect(schemaBaseFor(join(REPO, 'examples/imported'))).toBe('../../schemas/v1alpha1/');
    expect(schemaBaseFor(join(REPO, 'deploy/lb/edge'))).toBe('../../../schemas/v1alpha1/');
    expect(schemaBaseFor(dir)).toBe('https://nftops.dev/schemas/v1alpha1/');
    expect(schemaBaseFor(undefined)).toBe('https://nftops.dev/schemas/v1alpha1/');
  });
});

describe('nftops import istio', () => {
  it('converts a command line (the value may start with a dash) and reports ignored flags in --json', async () => {
    const io = captureIo(dir);
    const code = await main(['import', 'istio', '--flags', "-p 15001 -z 15006 -u 1337 -m TPROXY -i '*' -x '' -b '*' -d 15090,15021,15020 --native-nftables", '--name', 'web', '-o', 'mesh', '--json'], io);
    expect(code).toBe(0);
    const result = JSON.parse(io.out());
    expect(result).toMatchObject({ ok: true, source: 'flags', artifact: { name: 'web', output: 'mesh/web.nft' } });
    expect(result.ignored).toEqual([{ what: '--native-nftables', reason: expect.any(String) }]);
    expect(readFileSync(join(dir, 'mesh/meshredirection.yaml'), 'utf8')).toContain('    interceptionMode: TPROXY # -m TPROXY\n');
    expect(await main(['compile', 'mesh'], captureIo(dir))).toBe(0);
    expect(readFileSync(join(dir, 'mesh/web.nft'), 'utf8')).toContain('table inet istio-proxy-mangle {');
  });

  it('reads a flags file, a pod, a resolv.conf and variables', async () => {
    writeFileSync(join(dir, 'args.txt'), '# the istio-init args\nistio-iptables \\\n  -p 15001 -z 15006 \\\n  --redirect-dns\n');
    writeFileSync(join(dir, 'resolv.conf'), 'search svc.cluster.local\nnameserver 10.96.0.10\n');
    const io = captureIo(dir);
    expect(await main(['import', 'istio', '--flags-file', 'args.txt', '--resolv-conf', 'resolv.conf', '--env', 'ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE=nogroup', '--stdout'], io)).toBe(0);
    expect(io.out()).toContain('    dns:\n      capture: true # --redirect-dns\n      servers: [10.96.0.10]');
    expect(io.out()).toContain('exclude: [nogroup] # env ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE=nogroup');
    writeFileSync(join(dir, 'pod.yaml'), 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: details-v1\n  annotations:\n    traffic.sidecar.istio.io/includeInboundPorts: "9080"\n');
    const fromPod = captureIo(dir);
    expect(await main(['import', 'istio', '--pod', 'pod.yaml', '-o', 'details'], fromPod)).toBe(0);
    expect(readFileSync(join(dir, 'details/artifact.yaml'), 'utf8')).toContain('  output: details-v1.nft');
  });

  it('an unknown flag is an error naming it and its position; exit 2; nothing written', async () => {
    const io = captureIo(dir);
    expect(await main(['import', 'istio', '--flags', '-p 15001 --envoy-prot 15002', '-o', 'mesh'], io)).toBe(2);
    expect(io.err()).toContain('--flags:1:10: error ISTIO_UNKNOWN_FLAG: unknown flag --envoy-prot: not an istio-iptables flag');
    expect(io.err()).not.toMatch(STACK);
    expect(existsSync(join(dir, 'mesh'))).toBe(false);
  });
});

describe('the binary', () => {
  it('runs nftops import (after the build)', () => {
    mkdirSync(join(dir, 'bin-out'));
    const run = spawnSync(process.execPath, [join(REPO, 'packages/cli/bin/nftops.js'), 'import', 'lbaas', '-m', 'request.yaml', '-c', 'agent.toml', '-o', 'bin-out'], { cwd: dir, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(readFileSync(join(dir, 'bin-out/loadbalancers.yaml'), 'utf8')).toBe(readFileSync(join(FIXTURES, 'expected/loadbalancers.yaml'), 'utf8'));
  });
});
