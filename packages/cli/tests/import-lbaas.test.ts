import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { compile, formatDiagnostic } from '@nftops/compiler';
import { importLbaas, type ImportResult } from '../src/import/lbaas.js';

/**
 * `nftops import lbaas`, as a pure function: mapping decisions, warnings with their input positions,
 * errors, determinism, and golden output for the fixture (UPDATE_GOLDEN=1 rewrites the goldens).
 */

const FIXTURES = new URL('./fixtures/import/lbaas/', import.meta.url);
const read = (name: string) => readFileSync(new URL(name, FIXTURES), 'utf8');
const SCHEMAS = 'https://nftops.dev/schemas/v1alpha1/';

function run(model: string, config?: string, extra: { name?: string; natTable?: string; filterTable?: string } = {}): ImportResult {
  return importLbaas({
    model: { path: 'request.yaml', text: model },
    config: config === undefined ? undefined : { path: 'agent.toml', text: config },
    schemaBase: SCHEMAS,
    ...extra,
  });
}

/** Every document of every converted file, as plain objects. */
function objects(result: ImportResult): Record<string, unknown>[] {
  return result.files.flatMap((f) => parseAllDocuments(f.text).map((d) => d.toJS() as Record<string, unknown>));
}

function byKind(result: ImportResult, kind: string): Record<string, any>[] {
  return objects(result).filter((o) => o.kind === kind) as Record<string, any>[];
}

const codes = (result: ImportResult, severity?: 'error' | 'warning') =>
  result.diagnostics.filter((d) => severity === undefined || d.severity === severity).map((d) => d.code);

const where = (result: ImportResult, code: string) => result.diagnostics.filter((d) => d.code === code).map((d) => `${d.file}:${d.line}:${d.column}`);

const lbModel = (ports: string, extra = '') => `load-balancer-config:
  ingress:
    - address: 192.0.2.10
      ports:
${ports}${extra}`;

const forward = (protocol: string, port: number, destinations: string, targetPort = 8080) =>
  `        - { protocol: ${protocol}, inbound-port: ${port}, destination-addresses: ${destinations}, destination-port: ${targetPort} }\n`;

describe('import lbaas: the fixture (the ch-k8s-lbaas request shape with a VyOS-style agent config)', () => {
  const result = run(read('request.yaml'), read('agent.toml'));

  it('converts and compiles, with warnings for what does not map, each at its input position', () => {
    expect(result.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([]);
    expect(result.ok).toBe(true);
    expect(result.diagnostics.map((d) => `${d.file}:${d.line}:${d.column} ${d.code}`)).toEqual([
      'agent.toml:11:1 LBAAS_TABLE_SHARED',
      'agent.toml:22:1 LBAAS_SETTING_IGNORED',
      'request.yaml:29:34 LBAAS_EMPTY_FORWARD',
      'request.yaml:53:13 LBAAS_UNUSED_POLICY',
    ]);
    expect(result.files.map((f) => f.name)).toEqual(['artifact.yaml', 'settings.yaml', 'loadbalancers.yaml', 'policies.yaml']);
  });

  it('matches the golden files byte for byte', () => {
    if (process.env.UPDATE_GOLDEN) {
      mkdirSync(new URL('expected/', FIXTURES), { recursive: true });
      for (const f of result.files) writeFileSync(new URL(`expected/${f.name}`, FIXTURES), f.text);
    }
    // The YAML only: the artifact it compiles to is the compiler's business (and its own goldens').
    for (const f of result.files) expect(f.text, f.name).toBe(read(`expected/${f.name}`));
  });

  it('splits an address whose forwards have different destination lists into LoadBalancers with disjoint ports', () => {
    const lbs = byKind(result, 'LoadBalancer');
    expect(lbs.map((lb) => [lb.metadata.name, lb.spec])).toEqual([
      [
        'lb-192-0-2-10-tcp-80',
        {
          address: '192.0.2.10',
          ports: [
            { protocol: 'TCP', port: 80, targetPort: 8080 },
            { protocol: 'TCP', port: 81, targetPort: 8005 },
            { protocol: 'UDP', port: 53, targetPort: 5353 },
          ],
          backends: [{ address: '198.51.100.9' }, { address: '198.51.100.10' }, { address: '198.51.100.11' }],
        },
      ],
      [
        'lb-192-0-2-10-tcp-8443',
        {
          address: '192.0.2.10',
          ports: [{ protocol: 'TCP', port: 8443, targetPort: 8443 }],
          backends: [{ address: '198.51.100.9' }, { address: '198.51.100.10' }, { address: '198.51.100.12' }],
        },
      ],
      ['lb-192-0-2-10-tcp-9000', { address: '192.0.2.10', ports: [{ protocol: 'TCP', port: 9000, targetPort: 9000 }], backends: [] }],
    ]);
    // The string-vs-numeric slot order is documented where it matters.
    expect(result.files.find((f) => f.name === 'loadbalancers.yaml')!.text).toContain(
      '# the destinations as strings (198.51.100.10, 198.51.100.11, 198.51.100.9), nftops by address (198.51.100.9, 198.51.100.10, 198.51.100.11):',
    );
  });

  it('maps policies: podAddresses from the assignments, except lists, UDP without port, ranges; unassigned policies are left out', () => {
    expect(byKind(result, 'NetworkPolicy').map((p) => [p.metadata.name, p.spec])).toEqual([
      ['allow-dns', { podAddresses: ['198.51.100.11'], ingress: [{ ports: [{ protocol: 'UDP', port: 5353 }] }] }],
      [
        'allow-http',
        {
          podAddresses: ['198.51.100.9', '198.51.100.11'],
          ingress: [
            {
              from: [{ ipBlock: { cidr: '203.0.113.0/24', except: ['203.0.113.128/25'] } }],
              ports: [
                { protocol: 'TCP', port: 8000, endPort: 8010 },
                { protocol: 'TCP', port: 8080 },
              ],
            },
          ],
        },
      ],
      [
        'block-range',
        {
          podAddresses: ['198.51.100.10'],
          ingress: [
            {
              from: [{ ipBlock: { cidr: '203.0.113.0/24', except: ['203.0.113.0/28', '203.0.113.64/26'] } }, { ipBlock: { cidr: '203.0.113.0/26' } }],
              ports: [{ protocol: 'TCP', port: 8443 }, { protocol: 'UDP' }],
            },
          ],
        },
      ],
    ]);
  });

  it('maps the [nftables] settings: names, prefix, SNAT, the mark as value and real mask (and a free SNAT bit), per-service layout', () => {
    const [settings] = byKind(result, 'Settings');
    expect(settings!.spec).toEqual({
      tables: { nat: 'lbnat', filter: 'lbfilter_nftops' },
      chains: { prerouting: 'VYATTA_PRE_DNAT_HOOK', postrouting: 'VYATTA_PRE_SNAT_HOOK', forward: 'LB_FORWARD' },
      filter: true,
      snat: true,
      mark: { value: 0x2, mask: 0x6 },
      snatMark: { value: 0x1, mask: 0x1 },
      namePrefix: 'lbaas-',
      emptyBackends: 'reject',
      layout: 'per-service',
    });
    const text = result.files.find((f) => f.name === 'settings.yaml')!.text;
    expect(text).toContain('mark: { value: 0x2, mask: 0x6 }');
    expect(text).toContain('Here mask is a real mask: only its bits are set and compared; every other mark bit survives.');
    expect(byKind(result, 'Artifact')[0]!.spec).toEqual({ output: 'lbaas.nft', settings: 'lbaas' });
  });

  it('every file starts with the yaml-language-server modeline of its kind', () => {
    for (const f of result.files) {
      const docs = f.text.split(/^---\n/m);
      for (const doc of docs) expect(doc).toMatch(/^# yaml-language-server: \$schema=https:\/\/nftops\.dev\/schemas\/v1alpha1\/[a-z]+\.schema\.json\n/);
    }
  });

  it('the written files compile to the artifact the import reports (what nftops compile on the directory writes)', () => {
    const compiled = compile(result.files.map((f) => ({ path: `out/${f.name}`, text: f.text })));
    expect(compiled.ok).toBe(true);
    expect(compiled.artifacts.map((a) => a.output)).toEqual(['out/lbaas.nft']);
    expect(compiled.artifacts[0]!.text.replace(/^# generator: .*\n/m, '')).toBe(result.artifact!.text.replace(/^# generator: .*\n/m, ''));
  });
});

describe('import lbaas: determinism', () => {
  it('is byte-identical across runs and across any order of forwards, destinations, policies, assignments and keys', () => {
    const model = read('request.yaml');
    const first = run(model, read('agent.toml'));
    expect(run(model, read('agent.toml')).files).toEqual(first.files);
    const permuted = `load-balancer-config:
  policy-assignments:
    - network-policies: [allow-dns, allow-http]
      address: 198.51.100.11
    - { address: 198.51.100.10, network-policies: [block-range] }
    - { address: 198.51.100.9, network-policies: [allow-http] }
  network-policies:
    - name: unused
      allowed-ingresses: [{}]
    - name: block-range
      allowed-ingresses:
        - port-filters: [{ protocol: UDP }, { protocol: TCP, port: 8443 }]
          ipblock-filters:
            - allow: 203.0.113.0/26
            - { block: [203.0.113.64/26, 203.0.113.0/28], allow: 203.0.113.0/24 }
    - name: allow-dns
      allowed-ingresses: [{ port-filters: [{ protocol: UDP, port: 5353 }] }]
    - name: allow-http
      allowed-ingresses:
        - port-filters: [{ protocol: TCP, port: 8000, end-port: 8010 }, { protocol: TCP, port: 8080 }]
          ipblock-filters: [{ allow: 203.0.113.0/24, block: [203.0.113.128/25] }]
  ingress:
    - address: 192.0.2.10
      ports:
        - { protocol: TCP, inbound-port: 9000, destination-addresses: [], destination-port: 9000 }
        - { protocol: TCP, inbound-port: 8443, destination-addresses: [198.51.100.10, 198.51.100.12, 198.51.100.9], destination-port: 8443 }
        - { destination-port: 8005, protocol: TCP, inbound-port: 81, destination-addresses: [198.51.100.10, 198.51.100.11, 198.51.100.9] }
        - { protocol: UDP, inbound-port: 53, destination-addresses: [198.51.100.9, 198.51.100.11, 198.51.100.10], destination-port: 5353 }
        - { protocol: TCP, inbound-port: 80, destination-addresses: [198.51.100.11, 198.51.100.10, 198.51.100.9], destination-port: 8080 }
`;
    const second = run(permuted, read('agent.toml'));
    expect(second.ok).toBe(true);
    expect(second.files.filter((f) => f.name !== 'settings.yaml' && f.name !== 'artifact.yaml').map((f) => f.text.split('\n').filter((l) => !l.startsWith('#')).join('\n'))).toEqual(
      first.files.filter((f) => f.name !== 'settings.yaml' && f.name !== 'artifact.yaml').map((f) => f.text.split('\n').filter((l) => !l.startsWith('#')).join('\n')),
    );
    expect(second.artifact!.text).toBe(first.artifact!.text);
  });
});

describe('import lbaas: mapping decisions', () => {
  it("without an agent config uses the agent's defaults (nat, filter, prerouting/postrouting/forward, SNAT, 0x1/0x1) and warns that the filter table is the host's", () => {
    const result = run(lbModel(forward('TCP', 80, '[198.51.100.1]')));
    expect(result.ok).toBe(true);
    expect(byKind(result, 'Settings')[0]!.spec).toEqual({
      tables: { nat: 'nat', filter: 'filter_nftops' },
      chains: { prerouting: 'prerouting', postrouting: 'postrouting', forward: 'forward' },
      filter: true,
      snat: true,
      mark: { value: 1, mask: 1 },
      snatMark: { value: 2, mask: 2 },
      emptyBackends: 'reject',
      layout: 'per-service',
    });
    expect(codes(result)).toEqual(['LBAAS_TABLE_SHARED']);
    // A model without the claim key is the same model.
    const bare = run(lbModel(forward('TCP', 80, '[198.51.100.1]')).replace(/^load-balancer-config:\n/, '').replace(/^ {2}/gm, ''));
    expect(bare.files).toEqual(result.files.map((f) => ({ ...f, text: f.text })));
    // --filter-table gives nftops a table of its own: no warning.
    const own = run(lbModel(forward('TCP', 80, '[198.51.100.1]')), undefined, { filterTable: 'lb_filter', natTable: 'lb_nat' });
    expect(codes(own)).toEqual([]);
    expect(byKind(own, 'Settings')[0]!.spec.tables).toEqual({ nat: 'lb_nat', filter: 'lb_filter' });
  });

  it('filter-table-name = "" turns the policy table off and leaves the policies out, with a warning', () => {
    const result = run(
      lbModel(forward('TCP', 80, '[198.51.100.1]'), "  network-policies: [{ name: p, allowed-ingresses: [] }]\n  policy-assignments: [{ address: 198.51.100.1, network-policies: [p] }]\n"),
      '[nftables]\nfilter-table-name = ""\nfilter-forward-chain = ""\nnat-table-name = "vyos_nat"\nenable-snat = false\n',
    );
    expect(result.ok).toBe(true);
    const spec = byKind(result, 'Settings')[0]!.spec;
    expect(spec).toMatchObject({ tables: { nat: 'vyos_nat' }, chains: { prerouting: 'prerouting', postrouting: 'postrouting' }, filter: false, snat: false });
    expect(byKind(result, 'NetworkPolicy')).toEqual([]);
    expect(codes(result)).toEqual(['LBAAS_POLICIES_WITHOUT_FILTER']);
    expect(result.artifact!.text).not.toContain('table inet filter');
  });

  it('renames chain names nft refuses (keywords) and invalid names, and policy names that are not nftops names, with warnings', () => {
    const result = run(
      lbModel(
        forward('TCP', 80, '[198.51.100.1]'),
        '  network-policies: [{ name: Allow_HTTP.v2, allowed-ingresses: [{}] }]\n  policy-assignments: [{ address: 198.51.100.1, network-policies: [Allow_HTTP.v2] }]\n',
      ),
      '[nftables]\nfilter-table-name = "lbfilter"\nnat-postrouting-chain = "masquerade"\nnat-prerouting-chain = "dnat.hook"\npolicy-prefix = "1-bad prefix"\n',
    );
    expect(result.ok).toBe(true);
    const spec = byKind(result, 'Settings')[0]!.spec;
    expect(spec.chains).toEqual({ prerouting: 'dnat_hook', postrouting: 'nftops_masquerade', forward: 'forward' });
    expect(spec.namePrefix).toBe('p1-bad_prefix');
    const [policy] = byKind(result, 'NetworkPolicy');
    expect(policy!.metadata.name).toMatch(/^allow-http.v2-[0-9a-f]{6}$/);
    expect(policy!.spec).toEqual({ podAddresses: ['198.51.100.1'], ingress: [{}] });
    expect(where(result, 'LBAAS_RENAMED')).toEqual(['agent.toml:3:1', 'agent.toml:4:1', 'agent.toml:5:1', 'request.yaml:6:30']);
    expect(result.diagnostics.find((d) => d.message.includes('"masquerade"'))!.message).toContain('is an nft keyword');
  });

  it('chain names that clash in nftops (each other, or the generated chains of the prefix) are renamed, with the compiler\'s reason', () => {
    const result = run(
      lbModel(forward('TCP', 80, '[198.51.100.1]')),
      '[nftables]\nfilter-table-name = "lbf"\npolicy-prefix = "lb-"\nnat-prerouting-chain = "lbhook"\nnat-postrouting-chain = "lbhook"\nfilter-forward-chain = "lb-pod-entry"\n',
    );
    expect(result.ok).toBe(true);
    expect(byKind(result, 'Settings')[0]!.spec.chains).toEqual({ prerouting: 'lbhook', postrouting: 'nftops_lbhook', forward: 'nftops_lb-pod-entry' });
    expect(result.diagnostics.filter((d) => d.code === 'LBAAS_RENAMED').map((d) => `${d.line} ${d.message}`)).toEqual([
      expect.stringMatching(/^5 chain name "lbhook" \(nat-postrouting-chain\) cannot be used in nftops: the prerouting and postrouting chains are both named "lbhook"; renamed to "nftops_lbhook"$/),
      expect.stringMatching(/^6 chain name "lb-pod-entry" \(filter-forward-chain\) cannot be used in nftops: chain name "lb-pod-entry" is taken by generated chains/),
    ]);
  });

  it('fwmark: bits outside the mask are dropped (as nft folds them), a mask covering bit 1 moves the SNAT mark, AND = 0 is an error', () => {
    const ok = run(lbModel(forward('TCP', 80, '[198.51.100.1]')), '[nftables]\nfilter-table-name="f"\nfwmark-bits = 0x13\nfwmark-mask = 0xff\n');
    expect(byKind(ok, 'Settings')[0]!.spec).toMatchObject({ mark: { value: 0x13, mask: 0xff }, snatMark: { value: 0x100, mask: 0x100 } });
    const outside = run(lbModel(forward('TCP', 80, '[198.51.100.1]')), '[nftables]\nfilter-table-name="f"\nfwmark-bits = 3\nfwmark-mask = 1\n');
    expect(byKind(outside, 'Settings')[0]!.spec).toMatchObject({ mark: { value: 1, mask: 1 }, snatMark: { value: 2, mask: 2 } });
    expect(codes(outside)).toContain('LBAAS_SETTING_IGNORED');
    const zero = run(lbModel(forward('TCP', 80, '[198.51.100.1]')), '[nftables]\nfwmark-bits = 2\nfwmark-mask = 1\n');
    expect(zero.ok).toBe(false);
    expect(zero.files).toEqual([]);
    expect(where(zero, 'LBAAS_MARK')).toEqual(['agent.toml:2:1']);
    const full = run(lbModel(forward('TCP', 80, '[198.51.100.1]')), '[nftables]\nfwmark-mask = 0xffffffff\n');
    expect(codes(full, 'error')).toEqual(['LBAAS_MARK']);
  });

  it('partial-reload, nft-command, filter-table-type ip and unknown keys are warnings; type errors are errors at their line', () => {
    const result = run(
      lbModel(forward('TCP', 80, '[198.51.100.1]')),
      '[nftables]\nfilter-table-name = "lbf"\nfilter-table-type = "ip"\npartial-reload = true\nnft-command = ["sudo", "nft"]\nflush-everything = true\n',
    );
    expect(result.ok).toBe(true);
    expect(result.diagnostics.map((d) => `${d.line} ${d.code}`)).toEqual(['3 LBAAS_SETTING_IGNORED', '4 LBAAS_SETTING_IGNORED', '5 LBAAS_SETTING_IGNORED', '6 LBAAS_UNKNOWN_SETTING']);
    const bad = run(lbModel(forward('TCP', 80, '[198.51.100.1]')), '[nftables]\n\nenable-snat = "yes"\nfwmark-bits = -1\n');
    expect(bad.diagnostics.map((d) => `${d.file}:${d.line}:${d.column} ${d.code}`)).toEqual(['agent.toml:3:1 LBAAS_SETTING_TYPE', 'agent.toml:4:1 LBAAS_SETTING_TYPE']);
    const empty = run(lbModel(forward('TCP', 80, '[198.51.100.1]')), '[nftables]\nfilter-forward-chain = ""\n');
    expect(empty.diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.file}:${d.line}:${d.column} ${d.code}`)).toEqual(['agent.toml:2:1 LBAAS_SETTING_TYPE']);
    const syntax = run(lbModel(forward('TCP', 80, '[198.51.100.1]')), '[nftables]\nfwmark-bits = 0x\n');
    expect(syntax.diagnostics.map((d) => `${d.file}:${d.line} ${d.code}`)).toEqual(['agent.toml:2 IMPORT_TOML_SYNTAX']);
  });

  it('a destination listed several times becomes one backend with a weight (the same share of the round robin)', () => {
    const result = run(lbModel(forward('TCP', 80, '[198.51.100.2, 198.51.100.1, 198.51.100.2]')));
    expect(byKind(result, 'LoadBalancer')[0]!.spec.backends).toEqual([{ address: '198.51.100.1' }, { address: '198.51.100.2', weight: 2 }]);
    expect(codes(result)).toContain('LBAAS_DUPLICATE_DESTINATION');
  });

  it('the same address, protocol and port twice: the first forward wins (a later empty one is just skipped)', () => {
    const result = run(lbModel(forward('TCP', 80, '[198.51.100.1]') + forward('TCP', 80, '[198.51.100.2]', 9090) + forward('TCP', 80, '[]') + forward('UDP', 80, '[198.51.100.1]')));
    expect(result.ok).toBe(true);
    expect(byKind(result, 'LoadBalancer').map((lb) => lb.spec)).toEqual([
      {
        address: '192.0.2.10',
        ports: [
          { protocol: 'TCP', port: 80, targetPort: 8080 },
          { protocol: 'UDP', port: 80, targetPort: 8080 },
        ],
        backends: [{ address: '198.51.100.1' }],
      },
    ]);
    expect(byKind(result, 'LoadBalancer')[0]!.metadata.name).toBe('lb-192-0-2-10');
    expect(where(result, 'LBAAS_DUPLICATE_FORWARD')).toEqual(['request.yaml:6:11']);
    expect(codes(result)).toContain('LBAAS_EMPTY_FORWARD');
  });

  it('IPv6: the LoadBalancer is named by all eight groups, rendered with dnat ip6, and the warning says ch-k8s-lbaas could not load it', () => {
    const result = run(
      `ingress:
  - address: "2001:db8::10"
    ports:
      - { protocol: TCP, inbound-port: 443, destination-addresses: ["2001:db8:b::2", "2001:DB8:b::1"], destination-port: 8443 }
`,
    );
    expect(result.ok).toBe(true);
    const [lb] = byKind(result, 'LoadBalancer');
    expect(lb!.metadata.name).toBe('lb-2001-db8-0-0-0-0-0-10');
    expect(lb!.spec.backends).toEqual([{ address: '2001:db8:b::1' }, { address: '2001:db8:b::2' }]);
    expect(result.artifact!.text).toContain('dnat ip6 to numgen inc mod 2 map { 0 : 2001:db8:b::1 . 8443, 1 : 2001:db8:b::2 . 8443 }');
    expect(where(result, 'LBAAS_IPV6')).toEqual(['request.yaml:2:14']);
  });

  it('policies: empty allowed-ingresses is ingress: [], {} admits all, a port-less filter covers the protocol, host bits are masked, excepts that cannot act are left out', () => {
    const result = run(
      lbModel(
        forward('TCP', 80, '[198.51.100.1, 198.51.100.2, 198.51.100.3]'),
        `  network-policies:
    - { name: deny, allowed-ingresses: [] }
    - name: mixed
      allowed-ingresses:
        - {}
        - port-filters: [{ protocol: UDP, port: 53 }, { protocol: UDP }, { protocol: TCP, port: 80 }, { protocol: TCP, port: 80 }]
        - ipblock-filters:
            - { allow: 203.0.113.7/24, block: [198.51.100.0/24, 203.0.113.128/25, "2001:db8::/32"] }
            - { allow: 203.0.113.0/26, block: [203.0.113.0/24] }
    - name: never
      allowed-ingresses:
        - ipblock-filters: [{ allow: 203.0.113.0/26, block: [203.0.113.0/25] }]
        - port-filters: [{ protocol: TCP, port: 0 }]
        - port-filters: [{ protocol: TCP, port: 0, end-port: 10 }]
  policy-assignments:
    - { address: 198.51.100.1, network-policies: [deny] }
    - { address: 198.51.100.2, network-policies: [mixed] }
    - { address: 198.51.100.3, network-policies: [never] }
`,
      ),
    );
    expect(result.ok).toBe(true);
    expect(byKind(result, 'NetworkPolicy').map((p) => [p.metadata.name, p.spec.ingress])).toEqual([
      ['deny', []],
      [
        'mixed',
        [
          {},
          { ports: [{ protocol: 'TCP', port: 80 }, { protocol: 'UDP' }] },
          { from: [{ ipBlock: { cidr: '203.0.113.0/24', except: ['203.0.113.128/25'] } }] },
        ],
      ],
      ['never', [{ ports: [{ protocol: 'TCP', port: 1, endPort: 10 }] }]],
    ]);
    expect(result.diagnostics.map((d) => `${d.line}:${d.column} ${d.code}`)).toEqual([
      '1:1 LBAAS_TABLE_SHARED',
      '13:24 LBAAS_CIDR_HOST_BITS',
      '13:48 LBAAS_EXCEPT_NO_EFFECT',
      '13:83 LBAAS_EXCEPT_NO_EFFECT',
      '13:83 LBAAS_IPV6',
      '14:48 LBAAS_EXCEPT_NO_EFFECT',
      '17:11 LBAAS_RULE_DROPPED',
      '17:62 LBAAS_EXCEPT_NO_EFFECT',
      '18:11 LBAAS_RULE_DROPPED',
      '18:49 LBAAS_PORT_ZERO',
      '19:49 LBAAS_PORT_ZERO',
    ]);
  });

  it('assignments: the first assignment of a pod acts; a pod assigned no policy gets an ingress: [] policy (ch-k8s-lbaas drops its traffic)', () => {
    const result = run(
      lbModel(
        forward('TCP', 80, '[198.51.100.1, 198.51.100.2]'),
        `  network-policies: [{ name: a, allowed-ingresses: [{}] }, { name: b, allowed-ingresses: [] }, { name: a, allowed-ingresses: [{ port-filters: [{ protocol: TCP, port: 8080 }] }] }]
  policy-assignments:
    - { address: 198.51.100.1, network-policies: [a] }
    - { address: 198.51.100.1, network-policies: [b] }
    - { address: 198.51.100.2, network-policies: [] }
`,
      ),
    );
    expect(result.ok).toBe(true);
    expect(byKind(result, 'NetworkPolicy').map((p) => [p.metadata.name, p.spec])).toEqual([
      ['a', { podAddresses: ['198.51.100.1'], ingress: [{ ports: [{ protocol: 'TCP', port: 8080 }] }] }],
      ['no-policies', { podAddresses: ['198.51.100.2'], ingress: [] }],
    ]);
    expect(codes(result).sort()).toEqual(['LBAAS_DUPLICATE_ASSIGNMENT', 'LBAAS_DUPLICATE_POLICY', 'LBAAS_POD_WITHOUT_POLICIES', 'LBAAS_TABLE_SHARED', 'LBAAS_UNUSED_POLICY']);
  });
});

describe('import lbaas: errors (exit 2 in the CLI; positions in the model)', () => {
  it('reports every validation error of the model with its line and column, and converts nothing', () => {
    const result = run(`load-balancer-config:
  ingress:
    - address: 192.0.2.300
      ports:
        - { protocol: SCTP, inbound-port: 80, destination-addresses: [198.51.100.1], destination-port: 8080 }
        - { protocol: TCP, inbound-port: 70000, destination-addresses: [nope], destination-port: 8080 }
        - { protocol: TCP, inbound-port: 81, destination-port: 8080 }
  network-policies:
    - name: p
      allowed-ingresses:
        - ipblock-filters: [{ allow: 203.0.113.0 }]
          port-filters: [{ protocol: TCP, port: 90, end-port: 80 }, { protocol: TCP, end-port: 80 }]
  policy-assignments:
    - { address: 198.51.100.1, network-policies: [p] }
`);
    expect(result.ok).toBe(false);
    expect(result.files).toEqual([]);
    expect(result.diagnostics.map((d) => `${d.line}:${d.column} ${d.severity} ${d.code}`)).toEqual([
      '1:1 warning LBAAS_TABLE_SHARED',
      '3:16 error LBAAS_INVALID_ADDRESS',
      '5:23 error LBAAS_PROTOCOL',
      '6:42 error LBAAS_PORT',
      '6:73 error LBAAS_INVALID_ADDRESS',
      '7:11 error LBAAS_MODEL_FIELD',
      '11:38 error LBAAS_INVALID_CIDR',
      '12:63 error LBAAS_PORT',
      '12:96 error LBAAS_PORT',
    ]);
  });

  it('an assignment naming a policy that does not exist, and mixed address families, are errors (ch-k8s-lbaas fails to load them too)', () => {
    const unknown = run(lbModel(forward('TCP', 80, '[198.51.100.1]'), '  policy-assignments: [{ address: 198.51.100.1, network-policies: [ghost] }]\n'));
    expect(unknown.diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.line}:${d.column} ${d.code}`)).toEqual(['6:68 LBAAS_UNKNOWN_POLICY']);
    const family = run(lbModel(forward('TCP', 80, '[198.51.100.1, "2001:db8::1"]')));
    expect(family.diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.line}:${d.column} ${d.code}`)).toEqual(['5:84 LBAAS_FAMILY_MISMATCH']);
    const port0 = run(lbModel(forward('TCP', 0, '[198.51.100.1]')));
    expect(codes(port0, 'error')).toEqual(['LBAAS_PORT_ZERO']);
  });

  it('YAML errors, wrong shapes and unknown fields', () => {
    const errors = (r: ImportResult) => r.diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.line}:${d.column} ${d.code}`);
    expect(errors(run('ingress: ['))).toEqual(['1:11 IMPORT_YAML_SYNTAX']);
    expect(errors(run('a: 1\na: 2\n'))).toEqual(['2:1 IMPORT_YAML_SYNTAX']);
    expect(errors(run('ingress: 3\n'))).toEqual(['1:10 LBAAS_MODEL_FIELD']);
    expect(errors(run('---\ningress: []\n---\ningress: []\n'))).toEqual(['3:1 IMPORT_YAML_SYNTAX']);
    const extra = run(lbModel(forward('TCP', 80, '[198.51.100.1]'), '  frobs: 1\n'));
    expect(extra.ok).toBe(true);
    expect(where(extra, 'LBAAS_UNKNOWN_FIELD')).toEqual(['request.yaml:6:3']);
  });

  it('a result the compiler refuses fails with IMPORT_COMPILE_FAILED naming the compiler code', () => {
    // The converter catches what it can in the input's terms; the same name given to both tables by the user's
    // overrides is left to the compiler, which refuses it.
    const result = run(lbModel(forward('TCP', 80, '[198.51.100.1]')), undefined, { natTable: 'same', filterTable: 'same' });
    expect(result.ok).toBe(false);
    expect(result.diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.file} ${d.code} ${d.message.split(':')[0]}`)).toEqual([
      'settings.yaml IMPORT_COMPILE_FAILED TABLE_NAME_CLASH',
    ]);
  });
});
