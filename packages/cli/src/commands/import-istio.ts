import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Diagnostic } from '@nftops/compiler';
import type { CliIo } from '../io.js';
import { deliver, outputPrefix, readInput } from '../import/command.js';
import { schemaBaseFor } from '../import/emit.js';
import { importIstio, ISTIO_FILES, type Profile } from '../import/istio.js';
import { OBJECT_NAME } from '../import/names.js';
import type { Position } from '../import/report.js';
import { EXIT, printDiagnostics, printJson, UsageError } from '../shared.js';

export const importIstioHelp = `Usage: nftops import istio (--flags 'ARGS' | --flags-file FILE | --pod FILE) (-o DIR | --stdout) [options]

Converts Istio's sidecar capture settings into one MeshRedirection (mode: sidecar) whose knobs render
the same nftables rules as Istio's nftables backend, plus an Artifact for it:
  - istio-iptables flags, short or long (-p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x '' -b '*'
    -d 15090,15021,15020 ..., --envoy-port=15001, --redirect-dns), as one shell-quoted string, or a
    file holding such a command line or a JSON/YAML list of arguments (a container's args);
    istio-iptables' defaults apply (defaults: istio-init);
  - or a Pod manifest: the arguments of its istio-init container when it has one; otherwise its
    annotations (traffic.sidecar.istio.io/includeInboundPorts, sidecar.istio.io/interceptionMode,
    traffic.sidecar.istio.io/excludeOutboundIPRanges, ...) and its istio-proxy environment
    (ISTIO_META_DNS_CAPTURE, INVALID_DROP; also from proxy.istio.io/config proxyMetadata), read as the
    istio-cni plugin reads them (defaults: istio-cni).
Lists follow Istio's parsing: split on ",", empty items dropped, "*" is the wildcard. Knobs equal to
their defaults are left out. Unknown flags are errors; flags without effect on the rules are reported
as ignored. The result is compiled; nothing is written unless it compiles.

Options:
      --flags ARGS         istio-iptables arguments as one string (a leading istio-iptables is skipped)
      --flags-file FILE    a file with the arguments (command line, or a JSON/YAML list)
      --pod FILE           a Pod manifest (YAML or JSON; a List holding one Pod is fine)
      --env NAME=VALUE     an environment variable of istio-iptables or the CNI plugin (repeatable;
                           flags win over variables): PROXY_UID, ISTIO_META_DNS_CAPTURE,
                           ISTIO_OUTBOUND_OWNER_GROUPS, ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR, ...
      --ipv6               the pod has IPv6 addresses (Istio detects this; emits the IPv6 rules)
      --dns-server ADDR    one of the pod's resolvers, for DNS capture without capture-all (repeatable)
      --resolv-conf FILE   read the resolvers from this resolv.conf (its nameserver lines)
      --defaults PROFILE   istio-init or istio-cni: whose defaults fill absent knobs (default: by input)
      --name NAME          the MeshRedirection and Artifact name (default: the pod's name, or sidecar)
  -o, --output DIR         where to write meshredirection.yaml and artifact.yaml (created if missing)
      --stdout             print the files instead of writing them
      --json               machine-readable result on stdout (with the ignored flags)
  -h, --help               this help

Exit codes: 0 converted (warnings are printed), 2 errors (an unknown flag is named with its position;
nothing is written).
`;

/** `--flags -p 15001 ...`: the value starts with a dash, which parseArgs would take for an option. */
function joinFlagsValue(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--flags' && i + 1 < args.length) out.push(`--flags=${args[++i]}`);
    else out.push(args[i]!);
  }
  return out;
}

export function runImportIstio(args: string[], io: CliIo): number {
  const { values } = parseArgs({
    args: joinFlagsValue(args),
    allowPositionals: false,
    options: {
      flags: { type: 'string' },
      'flags-file': { type: 'string' },
      pod: { type: 'string' },
      env: { type: 'string', multiple: true },
      ipv6: { type: 'boolean' },
      'dns-server': { type: 'string', multiple: true },
      'resolv-conf': { type: 'string' },
      defaults: { type: 'string' },
      name: { type: 'string' },
      output: { type: 'string', short: 'o' },
      stdout: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(importIstioHelp);
    return EXIT.ok;
  }
  const sources = [values.flags, values['flags-file'], values.pod].filter((v) => v !== undefined).length;
  if (sources === 0) throw new UsageError('give the settings: --flags ARGS, --flags-file FILE or --pod FILE');
  if (values.flags !== undefined && values['flags-file'] !== undefined) throw new UsageError('--flags and --flags-file exclude each other');
  if ((values.output === undefined) === !values.stdout) throw new UsageError('give exactly one of --output DIR and --stdout');
  if (values.defaults !== undefined && values.defaults !== 'istio-init' && values.defaults !== 'istio-cni') {
    throw new UsageError(`--defaults must be istio-init or istio-cni, not ${JSON.stringify(values.defaults)}`);
  }
  if (values.name !== undefined && !OBJECT_NAME.test(values.name)) {
    throw new UsageError(`--name ${JSON.stringify(values.name)} must be lower case letters, digits, "-" and "." (at most 63)`);
  }
  const env = (values.env ?? []).map((entry, index) => {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new UsageError(`--env ${JSON.stringify(entry)} must be NAME=VALUE`);
    return { name: entry.slice(0, eq), value: entry.slice(eq + 1), at: { file: '--env', line: index + 1, column: 1 } };
  });

  const read: Diagnostic[] = [];
  const flagsFile = values['flags-file'] === undefined ? undefined : readInput(io, values['flags-file'], read);
  const pod = values.pod === undefined ? undefined : readInput(io, values.pod, read);
  const resolv = values['resolv-conf'] === undefined ? undefined : readInput(io, values['resolv-conf'], read);
  if (read.length > 0) {
    if (values.json) printJson(io, { ok: false, diagnostics: read, files: [], removed: [], artifact: null, ignored: [] });
    else printDiagnostics(io, read);
    return EXIT.error;
  }
  const dnsServers: { address: string; at: Position }[] = (values['dns-server'] ?? []).map((address, index) => ({
    address,
    at: { file: '--dns-server', line: index + 1, column: 1 },
  }));
  if (resolv) {
    resolv.text.split('\n').forEach((line, index) => {
      const m = /^(\s*nameserver\s+)(\S+)/.exec(line);
      if (m) dnsServers.push({ address: m[2]!, at: { file: resolv.path, line: index + 1, column: m[1]!.length + 1 } });
    });
  }
  const result = importIstio({
    flags: values.flags !== undefined ? { path: '--flags', text: values.flags, inline: true } : flagsFile && { ...flagsFile, inline: false },
    pod,
    env,
    ipv6: values.ipv6,
    dnsServers,
    defaults: values.defaults as Profile | undefined,
    name: values.name,
    schemaBase: schemaBaseFor(values.output === undefined ? undefined : resolve(io.cwd, values.output)),
    outputPrefix: outputPrefix(io, values.output),
  });
  return deliver(
    io,
    result,
    { output: values.output, stdout: values.stdout ?? false, json: values.json ?? false, known: ISTIO_FILES, extra: { ignored: result.ignored, source: result.source } },
  );
}
