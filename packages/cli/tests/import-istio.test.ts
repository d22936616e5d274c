import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { compile, formatDiagnostic } from '@nftops/compiler';
import { importIstio, type IstioImportOptions, type IstioImportResult } from '../src/import/istio.js';

/**
 * `nftops import istio`: for several istio-iptables flag sets and pod annotation sets, the converted YAML
 * compiles, and its rules equal, chain by chain, what the compiler renders for a hand-written
 * MeshRedirection with the same knobs. Unknown flags are errors naming the flag; flags without effect on
 * the rules are reported as ignored.
 */

type Options = Omit<IstioImportOptions, 'schemaBase'>;

function convert(options: Options): IstioImportResult {
  return importIstio({ schemaBase: 'https://nftops.dev/schemas/v1alpha1/', ...options });
}

const flags = (text: string, name?: string): Options => ({ flags: { path: '--flags', text, inline: true }, ...(name ? { name } : {}) });
const pod = (text: string, extra: Partial<Options> = {}): Options => ({ pod: { path: 'pod.yaml', text }, ...extra });

/** table/chain -> its lines (base chain header and rules), from an artifact's text. */
function chains(artifact: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  let table = '';
  let chain: string | undefined;
  for (const line of artifact.split('\n')) {
    const t = /^table (\S+ \S+) \{$/.exec(line);
    if (t) table = t[1]!;
    const c = /^\tchain (\S+) \{$/.exec(line);
    if (c) {
      chain = `${table}/${c[1]}`;
      out[chain] = [];
      continue;
    }
    if (line === '\t}') chain = undefined;
    else if (chain !== undefined && line.trim() !== '') out[chain]!.push(line.trim());
  }
  return out;
}

/** The artifact the compiler renders for a hand-written MeshRedirection NAME with SPEC (YAML, indented by 2). */
function handWritten(name: string, spec: string): string {
  const text = `apiVersion: nftops.dev/v1alpha1
kind: MeshRedirection
metadata:
  name: ${name}
spec:
${spec}---
apiVersion: nftops.dev/v1alpha1
kind: Artifact
metadata:
  name: ${name}
spec:
  output: ${name}.nft
`;
  const result = compile([{ path: 'hand.yaml', text }]);
  expect(result.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([]);
  return result.artifacts[0]!.text;
}

function mesh(result: IstioImportResult): Record<string, any> {
  const file = result.files.find((f) => f.name === 'meshredirection.yaml')!;
  return parseAllDocuments(file.text)[0]!.toJS() as Record<string, any>;
}

/** Converts, checks it compiled, and compares its chains with the hand-written object's. */
function expectSameRules(result: IstioImportResult, name: string, spec: string): void {
  expect(result.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([]);
  expect(result.ok).toBe(true);
  expect(mesh(result).metadata.name).toBe(name);
  const ours = chains(result.artifact!.text);
  const theirs = chains(handWritten(name, spec));
  expect(Object.keys(ours).length).toBeGreaterThan(3);
  expect(ours).toEqual(theirs);
}

const codes = (r: IstioImportResult) => r.diagnostics.map((d) => `${d.severity} ${d.code}`);

describe('import istio: flag sets compile to the rules of the same hand-written MeshRedirection', () => {
  it("the injector's production istio-init command line is Istio's defaults: an empty sidecar spec", () => {
    const result = convert(flags(`istio-iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x '' -b '*' -d 15090,15021,15020 --native-nftables`, 'productpage-v1'));
    expectSameRules(result, 'productpage-v1', '  mode: sidecar\n');
    expect(mesh(result).spec).toEqual({ mode: 'sidecar' });
    expect(result.files.find((f) => f.name === 'meshredirection.yaml')!.text).toContain("# Given, equal to the defaults: -p 15001, -z 15006, -u 1337, -m REDIRECT, -b *, -d 15090,15021,15020, -i *, -x ''.");
    expect(result.ignored).toEqual([{ what: '--native-nftables', reason: expect.stringContaining('no effect on the nftables rules') }]);
    expect(codes(result)).toEqual(['warning ISTIO_FLAG_IGNORED']);
  });

  it('every knob, short flags glued and spaced, environment for the env-only knobs', () => {
    const result = convert({
      ...flags(
        '-p 16001 -z16006 -e=16008 -u 1337,1338 -g 1339 -m TPROXY -t 1400 -r 140 -b 9080,9443 ' +
          '-i 198.51.100.0/24,127.0.0.0/8,2001:db8:1::/48 -x 198.51.100.128/25,2001:db8:1:ff::/64 -q 3306 -o 9411,15020 ' +
          '-c eth9,vxlan.calico -k tap0,tap1 --redirect-dns --capture-all-dns --drop-invalid',
        'everything',
      ),
      env: [
        { name: 'ISTIO_OUTBOUND_OWNER_GROUPS', value: '1001,root', at: { file: '--env', line: 1, column: 1 } },
        { name: 'ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR', value: '127.0.0.1/8', at: { file: '--env', line: 2, column: 1 } },
      ],
      ipv6: true,
    });
    expectSameRules(
      result,
      'everything',
      `  mode: sidecar
  sidecar:
    defaults: istio-init
    proxyUIDs: [1337, 1338]
    proxyGIDs: [1339]
    proxyPort: 16001
    inboundCapturePort: 16006
    inboundTunnelPort: 16008
    interceptionMode: TPROXY
    tproxyMark: 1400
    tproxyRouteTable: 140
    inboundPorts:
      include: [9080, 9443]
    outboundIPRanges:
      include: [198.51.100.0/24, 127.0.0.0/8, "2001:db8:1::/48"]
      exclude: [198.51.100.128/25, "2001:db8:1:ff::/64"]
    outboundPorts:
      include: [3306]
      exclude: [9411, 15020]
    excludeInterfaces: [eth9, vxlan.calico]
    virtualInterfaces: [tap0, tap1]
    dns:
      capture: true
      captureAll: true
    dropInvalid: true
    ipv6: true
    hostIPv4LoopbackCidr: 127.0.0.1/8
    ownerGroups:
      include: [1001, root]
`,
    );
    // Each knob says where it came from.
    const text = result.files.find((f) => f.name === 'meshredirection.yaml')!.text;
    expect(text).toContain('inboundCapturePort: 16006 # -z 16006');
    expect(text).toContain('include: [1001, root] # env ISTIO_OUTBOUND_OWNER_GROUPS=1001,root');
    expect(text).toContain('capture: true # --redirect-dns');
  });

  it('long forms with = and spaces, TPROXY, DNS capture with the pod\'s resolvers instead of capture-all', () => {
    const result = convert({
      ...flags('--envoy-port=15001 --inbound-capture-port 15006 --proxy-uid=1337 --istio-inbound-interception-mode=TPROXY --istio-inbound-ports=* --istio-local-exclude-ports 15090,15021,15020 --redirect-dns=true --capture-all-dns=false', 'dns'),
      dnsServers: [
        { address: '10.96.0.10', at: { file: '--dns-server', line: 1, column: 1 } },
        { address: 'fd00::a', at: { file: '--dns-server', line: 2, column: 1 } },
      ],
      ipv6: true,
    });
    expectSameRules(
      result,
      'dns',
      '  mode: sidecar\n  sidecar:\n    interceptionMode: TPROXY\n    dns: { capture: true, servers: [10.96.0.10, "fd00::a"] }\n    ipv6: true\n',
    );
  });

  it("Istio's list parsing: empty items dropped, '' turns capture off, host bits are masked (as the kernel does)", () => {
    const result = convert(flags(`-b '' -i "" -q 6000,7000, -o ,9411 -x 10.1.2.3/8,,198.51.100.7/24 -c ,eth1,`, 'lists'));
    expectSameRules(
      result,
      'lists',
      `  mode: sidecar
  sidecar:
    defaults: istio-init
    inboundPorts: { include: [] }
    outboundIPRanges: { include: [], exclude: [10.0.0.0/8, 198.51.100.0/24] }
    outboundPorts: { include: [6000, 7000], exclude: [9411] }
    excludeInterfaces: [eth1]
`,
    );
    expect(codes(result)).toEqual(['warning ISTIO_VALUE_NORMALISED', 'warning ISTIO_VALUE_NORMALISED']);
  });

  it('flags win over environment variables; variables alone count (CLI > env > default)', () => {
    const at = { file: '--env', line: 1, column: 1 };
    const result = convert({
      ...flags('-u 1337 -m REDIRECT', 'env'),
      env: [
        { name: 'PROXY_UID', value: '1000', at },
        { name: 'ISTIO_INBOUND_PORTS', value: '8080', at },
        { name: 'ISTIO_META_DNS_CAPTURE', value: 'true', at },
        { name: 'CAPTURE_ALL_DNS', value: '1', at },
      ],
    });
    expectSameRules(result, 'env', '  mode: sidecar\n  sidecar:\n    inboundPorts: { include: [8080] }\n    dns: { capture: true, captureAll: true }\n');
  });

  it('a JSON argument list (a container\'s args) is the same as the command line', () => {
    const list = convert({ flags: { path: 'args.json', text: '["istio-iptables","-p","15001","-z","15006","-u","1337","-m","REDIRECT","-i","*","-x","","-b","*","-d","15090,15021,15020"]', inline: false }, name: 'productpage-v1' });
    expectSameRules(list, 'productpage-v1', '  mode: sidecar\n');
  });

  it('an interception mode other than TPROXY renders REDIRECT rules, as in Istio, with a warning', () => {
    const result = convert(flags('-m redirect -t 1400', 'mode'));
    expectSameRules(result, 'mode', '  mode: sidecar\n');
    expect(codes(result)).toEqual(['warning ISTIO_VALUE_NORMALISED', 'warning ISTIO_FLAG_IGNORED']);
  });
});

const POD_TPROXY_DNS = `apiVersion: v1
kind: Pod
metadata:
  name: reviews-v2
  annotations:
    sidecar.istio.io/interceptionMode: TPROXY
    traffic.sidecar.istio.io/excludeOutboundIPRanges: 203.0.113.0/24
    sidecar.istio.io/status: '{"initContainers":null,"containers":["istio-proxy"]}'
    kubectl.kubernetes.io/default-container: reviews
spec:
  containers:
    - name: reviews
      image: docker.io/istio/examples-bookinfo-reviews-v2:1.20.2
    - name: istio-proxy
      image: docker.io/istio/proxyv2:1.28.0
      env:
        - { name: ISTIO_META_DNS_CAPTURE, value: "true" }
        - { name: PILOT_CERT_PROVIDER, value: istiod }
`;

describe('import istio: pod annotation sets (read as the istio-cni plugin reads them)', () => {
  it('TPROXY, an outbound exclude and DNS capture from the proxy environment: the reviews-v2 example', () => {
    const result = convert(pod(POD_TPROXY_DNS, { ipv6: true }));
    expect(result.source).toBe('annotations');
    // examples/mesh-sidecar-tproxy-dns/reviews.yaml, written by hand.
    expectSameRules(
      result,
      'reviews-v2',
      `  mode: sidecar
  sidecar:
    defaults: istio-cni
    interceptionMode: TPROXY
    ipv6: true
    dns:
      capture: true
    outboundIPRanges:
      exclude: [203.0.113.0/24]
`,
    );
    expect(result.ignored).toEqual([{ what: 'annotation sidecar.istio.io/status', reason: 'no effect on the capture rules' }]);
  });

  it('ports, ranges, interfaces, the proxy UID and proxyMetadata; the CNI adds its inbound excludes; the deprecated kubevirt annotation yields', () => {
    const text = `apiVersion: v1
kind: Pod
metadata:
  name: ratings-v1-5f9699cfdf-abcde
  annotations:
    traffic.sidecar.istio.io/excludeInboundPorts: "8081,,15020"
    traffic.sidecar.istio.io/excludeOutboundPorts: "9411"
    traffic.sidecar.istio.io/includeOutboundIPRanges: "10.96.0.0/12,"
    traffic.sidecar.istio.io/includeOutboundPorts: "3306"
    traffic.sidecar.istio.io/excludeInterfaces: eth9
    traffic.sidecar.istio.io/kubevirtInterfaces: tap0
    istio.io/reroute-virtual-interfaces: tap1,tap2
    proxy.istio.io/config: |
      proxyMetadata:
        INVALID_DROP: "true"
spec:
  containers:
    - name: istio-proxy
      securityContext: { runAsUser: 1000 }
`;
    const result = convert(pod(text));
    expectSameRules(
      result,
      'ratings-v1-5f9699cfdf-abcde',
      `  mode: sidecar
  sidecar:
    defaults: istio-cni
    proxyUIDs: [1000]
    inboundPorts: { exclude: [8081, 15020, 15021, 15090] }
    outboundIPRanges: { include: [10.96.0.0/12] }
    outboundPorts: { include: [3306], exclude: [9411] }
    excludeInterfaces: [eth9]
    virtualInterfaces: [tap1, tap2]
    dropInvalid: true
`,
    );
    expect(codes(result)).toEqual(['warning ISTIO_ANNOTATION_IGNORED']);
    expect(result.diagnostics[0]!.message).toContain('traffic.sidecar.istio.io/kubevirtInterfaces is ignored');
  });

  it('an include list of inbound ports makes the CNI excludes moot (left out with a warning, as Istio ignores them)', () => {
    const text = `apiVersion: v1
kind: Pod
metadata:
  name: details
  annotations:
    traffic.sidecar.istio.io/includeInboundPorts: "9080"
    traffic.sidecar.istio.io/excludeInboundPorts: "9090"
`;
    const result = convert(pod(text));
    expectSameRules(result, 'details', '  mode: sidecar\n  sidecar:\n    defaults: istio-cni\n    inboundPorts: { include: [9080] }\n');
    expect(codes(result)).toEqual(['warning ISTIO_FLAG_IGNORED']);
    expect(result.diagnostics[0]!).toMatchObject({ file: 'pod.yaml', line: 7 });
  });

  it("a pod with an istio-init container: its arguments and environment are istio-iptables' input (istio-init defaults)", () => {
    const text = `apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata:
      name: productpage-v1
      annotations:
        traffic.sidecar.istio.io/excludeOutboundPorts: "1"
    spec:
      initContainers:
        - name: istio-init
          image: docker.io/istio/proxyv2:1.28.0
          args: [istio-iptables, -p, "15001", -z, "15006", -u, "1337", -m, REDIRECT, -i, "*", -x, "", -b, "*", -d, "15090,15021,15020", -o, "9411", --log_output_level=default:info]
          env:
            - { name: ISTIO_META_DNS_CAPTURE, value: "true" }
            - { name: CAPTURE_ALL_DNS, value: "true" }
`;
    const result = convert(pod(text));
    expect(result.source).toBe('istio-init args');
    expectSameRules(result, 'productpage-v1', '  mode: sidecar\n  sidecar:\n    outboundPorts: { exclude: [9411] }\n    dns: { capture: true, captureAll: true }\n');
    expect(result.ignored.map((i) => i.what)).toEqual(['--log_output_level']);
    expect(result.diagnostics.map((d) => `${d.file}:${d.line}:${d.column} ${d.code}`)).toEqual(['pod.yaml:14:149 ISTIO_FLAG_IGNORED']);
  });
});

describe('import istio: errors name the flag and its position; nothing is converted', () => {
  const error = (options: Options) => {
    const result = convert(options);
    expect(result.ok).toBe(false);
    expect(result.files).toEqual([]);
    return result.diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.file}:${d.line}:${d.column} ${d.code}: ${d.message}`);
  };

  it('unknown flags, long and short', () => {
    expect(error(flags('-p 15001 --frobnicate 3 -Q 4 -z 15006'))).toEqual([
      '--flags:1:10 ISTIO_UNKNOWN_FLAG: unknown flag --frobnicate: not an istio-iptables flag',
      '--flags:1:25 ISTIO_UNKNOWN_FLAG: unknown flag -Q: not an istio-iptables flag',
    ]);
    expect(error(flags('-p 15001 stray'))).toEqual(['--flags:1:10 ISTIO_UNKNOWN_FLAG: unexpected argument "stray": istio-iptables takes only flags']);
  });

  it('bad values: a port, a CIDR without prefix, "*" excluded, a missing argument, an unterminated quote, a bad boolean', () => {
    expect(error(flags('-p abc'))).toEqual(['--flags:1:1 ISTIO_FLAG_VALUE: -p: port "abc" is not an integer from 1 to 65535']);
    expect(error(flags('-i 10.0.0.1'))).toEqual(['--flags:1:1 ISTIO_FLAG_VALUE: -i: "10.0.0.1" is not a CIDR (address/prefix); Istio refuses it (netip.ParsePrefix)']);
    expect(error(flags("-x '*'"))).toEqual(['--flags:1:1 ISTIO_FLAG_VALUE: invalid value for OUTBOUND_IP_RANGES_EXCLUDE: "*" cannot be excluded (Istio refuses it)']);
    expect(error(flags('-z 15006 -p'))).toEqual(['--flags:1:10 ISTIO_FLAG_VALUE: flag needs an argument: -p']);
    expect(error(flags("-p 15001\n  -i '10.0.0.0/8"))).toEqual(['--flags:2:6 ISTIO_ARGV_SYNTAX: unterminated single quote']);
    expect(error(flags('--redirect-dns=maybe'))).toEqual(['--flags:1:1 ISTIO_FLAG_VALUE: --redirect-dns needs true or false, not "maybe"']);
    expect(error(flags('-u 1337,istio-proxy'))).toEqual(['--flags:1:1 ISTIO_FLAG_VALUE: -u: UID "istio-proxy" is not an integer from 0 to 4294967294']);
  });

  it('--cleanup-only and --skip-rule-apply cannot be converted', () => {
    expect(error(flags('-p 15001 --cleanup-only'))[0]).toMatch(/^--flags:1:10 ISTIO_FLAG_VALUE: --cleanup-only cannot be converted: it makes istio-iptables delete its tables/);
    expect(error(flags('--skip-rule-apply'))).toHaveLength(1);
  });

  it('annotation values at their position in the pod; interface names the compiler refuses', () => {
    const text = `apiVersion: v1
kind: Pod
metadata:
  name: bad
  annotations:
    traffic.sidecar.istio.io/includeInboundPorts: "80,http"
    traffic.sidecar.istio.io/excludeOutboundPorts: 9411
`;
    expect(error(pod(text))).toEqual([
      'pod.yaml:6:51 ISTIO_FLAG_VALUE: traffic.sidecar.istio.io/includeInboundPorts: port "http" is not an integer from 1 to 65535',
      'pod.yaml:7:52 ISTIO_ANNOTATION_INVALID: annotation traffic.sidecar.istio.io/excludeOutboundPorts must be a string (quote it), not 9411',
    ]);
    expect(error(pod('apiVersion: v1\nkind: Deployment\n'))).toEqual(['pod.yaml:2:7 ISTIO_POD: expected a Pod manifest (kind: Pod), not kind: Deployment']);
    const refused = error(flags('-c "this-name-is-far-too-long"'));
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatch(/^meshredirection\.yaml:\d+:\d+ IMPORT_COMPILE_FAILED: MESH_INTERFACE_NAME: interface name "this-name-is-far-too-long" is longer than 15 characters$/);
  });

  it('flags and variables without effect on the rules are reported as ignored, not refused', () => {
    const result = convert({
      ...flags('--native-nftables --dry-run --reconcile --log_as_json --iptables-probe-port=15002 --dual-stack'),
      env: [{ name: 'ISTIO_DUAL_STACK', value: 'true', at: { file: '--env', line: 1, column: 1 } }, { name: 'ENVOY_USER', value: 'istio-proxy', at: { file: '--env', line: 2, column: 1 } }],
    });
    expect(result.ok).toBe(true);
    expect(result.ignored.map((i) => i.what)).toEqual(['env ISTIO_DUAL_STACK', 'env ENVOY_USER', '--native-nftables', '--dry-run', '--reconcile', '--log_as_json', '--iptables-probe-port', '--dual-stack']);
    expect(result.diagnostics.every((d) => d.code === 'ISTIO_FLAG_IGNORED')).toBe(true);
    expect(mesh(result).spec).toEqual({ mode: 'sidecar' });
  });
});
