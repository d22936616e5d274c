import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseArtifact } from '@nftops/artifact';
import { compile } from '@nftops/compiler';
import { createNetns, deleteNetns, kernelAvailable, netnsExec } from '@nftops/testkit';
import { Agent, createMemoryLogger, fingerprint, type WatchConfig } from '@nftops/watcher';
import { tempDir, testConfig, waitFor, writeAtomic } from './helpers.js';

/** Compiler input: N load balancers and some network policies, maps layout (documentation ranges only). */
interface Service {
  readonly name: string;
  readonly vip: string;
  readonly backends: readonly string[];
  readonly port?: number;
}
interface Policy {
  readonly name: string;
  readonly pod: string;
  readonly port: number;
}

function sources(services: readonly Service[], policies: readonly Policy[]) {
  const docs = ['apiVersion: nftops.dev/v1alpha1\nkind: Settings\nmetadata: { name: t }\nspec: { layout: maps }\n'];
  for (const s of services) {
    docs.push(
      `apiVersion: nftops.dev/v1alpha1\nkind: LoadBalancer\nmetadata: { name: ${s.name} }\nspec:\n  address: '${s.vip}'\n  ports: [{ port: ${s.port ?? 80}, targetPort: 8080 }]\n  backends: [${s.backends.map((a) => `{ address: '${a}' }`).join(', ')}]\n`,
    );
  }
  for (const p of policies) {
    docs.push(
      `apiVersion: nftops.dev/v1alpha1\nkind: NetworkPolicy\nmetadata: { name: ${p.name} }\nspec:\n  podAddresses: ['${p.pod}']\n  ingress:\n    - from: [{ ipBlock: { cidr: '2001:db8:c::/48' } }]\n      ports: [{ port: ${p.port} }]\n`,
    );
  }
  return [{ path: 'all.yaml', text: docs.join('---\n') }];
}

function build(services: readonly Service[], policies: readonly Policy[]): string {
  const result = compile(sources(services, policies));
  if (!result.ok) throw new Error(JSON.stringify(result.diagnostics.slice(0, 3)));
  return result.artifacts[0]!.text;
}

const svc = (i: number, backends = 4, offset = 0): Service => ({
  name: `svc-${i}`,
  vip: `2001:db8:f::${i.toString(16)}`,
  backends: Array.from({ length: backends }, (_, b) => `2001:db8:b::${(i * 16 + b + offset).toString(16)}`),
});

describe.runIf(kernelAvailable())('incremental apply and routing on the real kernel', () => {
  let netns: string;
  let reference: string;
  let dir: string;
  let cleanup: () => Promise<void>;
  let agent: Agent | undefined;
  let logger: ReturnType<typeof createMemoryLogger>;

  beforeEach(async () => {
    netns = await createNetns('nftops-i');
    reference = await createNetns('nftops-iref');
    ({ path: dir, cleanup } = await tempDir());
    logger = createMemoryLogger();
    await mkdir(join(dir, 'src', netns), { recursive: true });
  });
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    await deleteNetns(netns);
    await deleteNetns(reference);
    await cleanup();
  });

  async function start(overrides: Partial<WatchConfig> = {}): Promise<Agent> {
    agent = new Agent({ config: testConfig({ sources: [{ path: join(dir, 'src') }], stateDir: join(dir, 'state'), ...overrides }), logger, processMetrics: false });
    await agent.start();
    return agent;
  }
  const digestOf = (text: string) => `sha256:${/# body: sha256:([0-9a-f]{64})/.exec(text)![1]}`;
  const status = (id: string) => agent!.status().artifacts.find((a) => a.id === id);
  const waitApplied = (id: string, text: string) =>
    waitFor(() => status(id)?.applied?.digest === digestOf(text), `${id} to be applied`, 20_000, () => JSON.stringify(agent!.status(), null, 1));
  const liveFingerprint = async (ns: string, text: string) => {
    const parsed = parseArtifact(text);
    if (!parsed.ok) throw new Error(parsed.message);
    const tables = [];
    for (const t of parsed.artifact.header.tables) {
      const result = await netnsExec(ns, 'nft', ['-j', 'list', 'table', t.family, t.name]);
      tables.push({ family: t.family, name: t.name, json: result.exitCode === 0 ? (JSON.parse(String(result.stdout)) as { nftables: Record<string, unknown>[] }).nftables : undefined });
    }
    return fingerprint(tables);
  };

  it('a series of changes: element-only ones go in incrementally, and every step ends where a full apply ends', async () => {
    const id = `${netns}/lb.nft`;
    let services = [svc(0), svc(1), svc(2)];
    let policies: Policy[] = [{ name: 'pol-0', pod: '2001:db8:b::1', port: 8080 }];
    const steps: { what: string; change: () => void; incremental: boolean | undefined }[] = [
      { what: 'a backend replaced', change: () => (services = [svc(0), svc(1, 4, 100), svc(2)]), incremental: true },
      { what: 'a service added', change: () => (services = [...services, svc(3)]), incremental: true },
      { what: 'a service removed', change: () => (services = services.filter((s) => s.name !== 'svc-0')), incremental: true },
      { what: 'a backend removed (fewer slots: new chain)', change: () => (services = [svc(1, 3, 100), ...services.slice(1)]), incremental: undefined },
      { what: 'a policy port changed', change: () => (policies = [{ ...policies[0]!, port: 9090 }]), incremental: undefined },
      { what: 'a policy added', change: () => (policies = [...policies, { name: 'pol-1', pod: '2001:db8:b::2', port: 53 }]), incremental: undefined },
      { what: 'a service port changed', change: () => (services = services.map((s, i) => (i === 0 ? { ...s, port: 8443 } : s))), incremental: undefined },
    ];
    const first = build(services, policies);
    await writeFile(join(dir, 'src', netns, 'lb.nft'), first);
    await start();
    expect(status(id)?.applied?.mode).toBe('full');
    const modes: string[] = [];
    for (const step of steps) {
      step.change();
      const text = build(services, policies);
      await writeAtomic(join(dir, 'src', netns, 'lb.nft'), text);
      await waitApplied(id, text);
      await agent!.idle();
      const load = await netnsExec(reference, 'nft', ['-f', '-'], text);
      expect(load.exitCode, String(load.stderr)).toBe(0);
      expect(await liveFingerprint(netns, text), step.what).toBe(await liveFingerprint(reference, text));
      const mode = status(id)!.applied!.mode!;
      modes.push(`${step.what}: ${mode}`);
      if (step.incremental !== undefined) expect(mode, step.what).toBe(step.incremental ? 'incremental' : 'full');
      // The recorded fingerprint is what a drift check finds.
      expect(status(id)!.applied!.fingerprint).toBe(`${await liveFingerprint(netns, text)}`.replace(/^/, 'sha256:'));
    }
    const metrics = await agent!.metrics.text();
    expect(Number(/nftops_watch_apply_mode_total\{mode="incremental"\} (\d+)/.exec(metrics)![1])).toBeGreaterThanOrEqual(3);
    // The first three steps change elements only: they were read back object by object (the recorded fingerprints
    // above are what listings of the whole tables give). Steps that create a chain read the whole tables back.
    const incremental = logger.events.filter((e) => e.event === 'apply.ok' && e.fields.mode === 'incremental');
    expect(incremental.slice(0, 3).map((e) => e.fields.readScope)).toEqual(['objects', 'objects', 'objects']);
    // A drift check right after finds nothing to repair.
    agent!.reconcileNow('manual', false);
    await agent!.idle();
    expect(logger.events.filter((e) => e.event === 'drift.repaired')).toEqual([]);
    expect(logger.events.filter((e) => e.event === 'incremental.mismatch')).toEqual([]);
    logger.info('test.modes', modes.join('; '));
    if (process.env.NFTOPS_TEST_VERBOSE) console.log(modes.join('\n'));
  });

  it('an element removed by hand before an incremental change is put back (the change goes in whole)', async () => {
    const id = `${netns}/lb.nft`;
    const v1 = build([svc(0), svc(1)], []);
    await writeFile(join(dir, 'src', netns, 'lb.nft'), v1);
    await start();
    const gone = await netnsExec(netns, 'nft', ['delete', 'element', 'inet', 'nftops_nat', 'backends6', '{ 2001:db8:f:: . tcp . 80 . 0 }']);
    expect(gone.exitCode, String(gone.stderr)).toBe(0);
    const v2 = build([svc(0), svc(1, 4, 100)], []);
    await writeAtomic(join(dir, 'src', netns, 'lb.nft'), v2);
    await waitApplied(id, v2);
    await agent!.idle();
    await netnsExec(reference, 'nft', ['-f', '-'], v2);
    expect(await liveFingerprint(netns, v2)).toBe(await liveFingerprint(reference, v2));
    expect(status(id)).toMatchObject({ applied: { mode: 'full' }, incrementalFallback: expect.stringMatching(/^drift/) });
  });

  it('applies an artifact\'s routing in its namespace and removes it with the artifact', async () => {
    const example = new URL('../../../examples/mesh-sidecar-tproxy-dns/mesh-sidecar-tproxy-dns.nft', import.meta.url);
    const text = await readFile(example, 'utf8');
    expect(text).toMatch(/^# routing: .*rule4 fwmark 0x539/m);
    const ipJson = async (...args: string[]) => JSON.parse(String((await netnsExec(netns, 'ip', ['-j', ...args])).stdout) || '[]') as Record<string, unknown>[];
    await writeFile(join(dir, 'src', netns, 'mesh.nft'), text);
    await start();
    const id = `${netns}/mesh.nft`;
    await waitApplied(id, text);
    expect(status(id)!.routing).toMatchObject({ state: 'Ready' });
    expect((await ipJson('-4', 'rule', 'show')).some((r) => r.fwmark === '0x539' && r.table === '133' && r.priority === 32765)).toBe(true);
    expect((await ipJson('-6', 'rule', 'show')).some((r) => r.fwmark === '0x539' && r.table === '133')).toBe(true);
    expect((await ipJson('-4', 'route', 'show', 'table', '133')).some((r) => r.type === 'local' && r.dev === 'lo')).toBe(true);
    expect((await ipJson('-6', 'addr', 'show', 'dev', 'lo')).some((l) => JSON.stringify(l).includes('"local":"::6"'))).toBe(true);
    // Routing removed by hand is put back by the drift check.
    await netnsExec(netns, 'ip', ['-4', 'rule', 'del', 'fwmark', '0x539/0xffffffff', 'lookup', '133', 'priority', '32765']);
    agent!.reconcileNow('manual', false);
    await agent!.idle();
    expect((await ipJson('-4', 'rule', 'show')).some((r) => r.fwmark === '0x539')).toBe(true);
    await rm(join(dir, 'src', netns, 'mesh.nft'));
    await waitFor(() => status(id) === undefined, 'the artifact to be removed', 20_000);
    await agent!.idle();
    expect((await ipJson('-4', 'rule', 'show')).some((r) => r.fwmark === '0x539')).toBe(false);
    expect((await ipJson('-6', 'rule', 'show')).some((r) => r.fwmark === '0x539')).toBe(false);
    expect(await ipJson('-4', 'route', 'show', 'table', '133')).toEqual([]);
    expect((await ipJson('-6', 'addr', 'show', 'dev', 'lo')).some((l) => JSON.stringify(l).includes('"local":"::6"'))).toBe(false);
    expect((await netnsExec(netns, 'nft', ['list', 'tables'])).stdout).toBe('');
  });
});
