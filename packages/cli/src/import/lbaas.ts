import { compile, VERSION, type Diagnostic } from '@nftops/compiler';
import { blockContains, compareBytes, type Address, type Block } from './address.js';
import { renderYamlFile, type OutputDocument } from './emit.js';
import { readNftablesConfig, type NftablesConfig } from './lbaas-config.js';
import { readLbaasModel, type AllowedIngress, type Forward, type LbaasModel, type LbaasProtocol } from './lbaas-model.js';
import { fixTableOrChainName, NAME_PREFIX, objectNameFor, tableOrChainNameProblem } from './names.js';
import { ImportReport, type Position } from './report.js';
import { parseYamlInput, type PathSegment } from './yaml-input.js';

/**
 * `nftops import lbaas`: a ch-k8s-lbaas model (its `load-balancer-config`) and agent config (`[nftables]`)
 * become nftops YAML: LoadBalancers, NetworkPolicies, one Settings and one Artifact. Pure: texts in,
 * texts and diagnostics out; the result is compiled before it is returned.
 */

export interface LbaasImportOptions {
  readonly model: { readonly path: string; readonly text: string };
  readonly config?: { readonly path: string; readonly text: string } | undefined;
  /** Name of the Settings and Artifact objects and of the artifact file (`<name>.nft`). Default `lbaas`. */
  readonly name?: string | undefined;
  /** Overrides of the converted table names. */
  readonly natTable?: string | undefined;
  readonly filterTable?: string | undefined;
  /** Prefix of the modelines' schema paths (ends in "/"). */
  readonly schemaBase: string;
  /** How the output directory is shown in diagnostics about the written files (e.g. "out/"). */
  readonly outputPrefix?: string | undefined;
}

export interface ImportedFile {
  /** File name inside the output directory. */
  readonly name: string;
  readonly text: string;
}

export interface ImportResult {
  readonly ok: boolean;
  /** Sorted: inputs first by file name, then the written files. */
  readonly diagnostics: readonly Diagnostic[];
  /** Empty unless ok. */
  readonly files: readonly ImportedFile[];
  /** The compiled artifact of the converted YAML (what `nftops compile` on the output will write). */
  readonly artifact?: { readonly name: string; readonly output: string | undefined; readonly text: string } | undefined;
}

/** The files every lbaas import may write; a file of this list that a run does not write is stale. */
export const LBAAS_FILES = ['artifact.yaml', 'settings.yaml', 'loadbalancers.yaml', 'policies.yaml'] as const;

const API = 'nftops.dev/v1alpha1';
const PROTOCOL_ORDER: Record<LbaasProtocol, number> = { TCP: 0, UDP: 1 };

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** A name fragment for an address: v4 `192-0-2-10`, v6 all eight groups `2001-db8-0-0-0-0-0-10` (always valid). */
function addressSlug(address: Address): string {
  if (address.family === 4) return address.bytes.join('-');
  return Array.from({ length: 8 }, (_, i) => ((address.bytes[2 * i]! << 8) | address.bytes[2 * i + 1]!).toString(16)).join('-');
}

function stringCompare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Settings

interface ConvertedSettings {
  readonly document: OutputDocument;
  readonly filter: boolean;
}

function convertSettings(
  config: NftablesConfig,
  name: string,
  options: LbaasImportOptions,
  report: ImportReport,
): ConvertedSettings | undefined {
  const filter = config.filterTableName !== '';
  let failed = false;
  const given = (key: string) => (config.given.has(key) ? key : `${key} (default)`);

  const chooseName = (key: string, value: string, what: string): string => {
    if (value === '') {
      report.error('LBAAS_SETTING_TYPE', config.at(key), `${key} is empty: ch-k8s-lbaas would write a ${what.split(' ')[0]} without a name, which nft refuses`, 'set a name, or leave the key out for the default');
      failed = true;
      return value;
    }
    const problem = tableOrChainNameProblem(value);
    if (problem === undefined) return value;
    const fixed = fixTableOrChainName(value);
    report.warn(
      'LBAAS_RENAMED',
      config.at(key),
      `${what} ${JSON.stringify(value)} (${key}) ${problem === 'keyword' ? 'is an nft keyword: nft would not parse it as a name' : 'is not a valid nftops name ([A-Za-z][A-Za-z0-9_-]{0,63})'}; renamed to ${JSON.stringify(fixed)}`,
    );
    return fixed;
  };

  const natTable = options.natTable ?? chooseName('nat-table-name', config.natTableName, 'table name');
  let filterTable = options.filterTable ?? (filter ? chooseName('filter-table-name', config.filterTableName, 'table name') : undefined);
  if (filterTable !== undefined && filterTable === natTable && options.filterTable === undefined) {
    const renamed = `${filterTable}_filter`.slice(0, 64);
    report.warn(
      'LBAAS_RENAMED',
      config.at('filter-table-name'),
      `ch-k8s-lbaas's filter and nat tables are both named ${JSON.stringify(natTable)} (table ${config.filterTableType} and table ip); nftops's are both inet, so the filter table is renamed to ${JSON.stringify(renamed)}`,
    );
    filterTable = renamed;
  }
  if (filter && options.filterTable === undefined && config.filterTableType === 'inet' && filterTable !== undefined) {
    // ch-k8s-lbaas declares its chains into the host's own `table inet <filter-table-name>`; nftops replaces
    // its tables whole, so keeping that name would wipe the host's rules on every apply. Never by default.
    const own = `${filterTable}_nftops`.slice(0, 64);
    report.warn(
      'LBAAS_TABLE_SHARED',
      config.at('filter-table-name'),
      `ch-k8s-lbaas declared its chains into the host's existing "table inet ${filterTable}"; nftops owns its tables and replaces them whole, so the policy table is "table inet ${own}" instead`,
      `pass --filter-table ${filterTable} only if nftops should own (and replace) the host's table`,
    );
    filterTable = own;
  }
  if (filter && config.filterTableType !== 'inet') {
    report.warn(
      'LBAAS_SETTING_IGNORED',
      config.at('filter-table-type'),
      `filter-table-type "${config.filterTableType}" does not map: nftops's tables are always inet (IPv4 and IPv6); the policy table is "table inet ${filterTable}"`,
    );
  }
  let prerouting = chooseName('nat-prerouting-chain', config.natPreroutingChain, 'chain name');
  let postrouting = chooseName('nat-postrouting-chain', config.natPostroutingChain, 'chain name');
  let forward = filter ? chooseName('filter-forward-chain', config.filterForwardChain, 'chain name') : undefined;

  let prefix = config.policyPrefix;
  if (!NAME_PREFIX.test(prefix)) {
    let fixed = prefix.replace(/[^A-Za-z0-9_-]/g, '_');
    if (!/^[A-Za-z]/.test(fixed)) fixed = `p${fixed}`;
    fixed = fixed.slice(0, 16);
    report.warn('LBAAS_RENAMED', config.at('policy-prefix'), `policy-prefix ${JSON.stringify(prefix)} is not a valid nftops namePrefix ([A-Za-z][A-Za-z0-9_-]{0,15}); using ${JSON.stringify(fixed)}`);
    prefix = fixed;
  }

  if (config.partialReload) {
    report.warn(
      'LBAAS_SETTING_IGNORED',
      config.at('partial-reload'),
      'partial-reload has no equivalent and is not needed: nftops owns its tables and replaces them in one atomic transaction, without touching the host\'s ruleset',
    );
  }
  if (config.given.has('nft-command')) {
    report.warn('LBAAS_SETTING_IGNORED', config.at('nft-command'), 'nft-command is not converted: the watcher runs nft itself (it only served partial-reload\'s chain listing)');
  }

  // The mark: ch-k8s-lbaas prints "<bits> and <mask>", a constant nft folds to bits & mask, and sets and
  // compares the whole 32-bit mark with it. nftops's mask is real, so the value is exactly that constant.
  const value = (config.fwmarkBits & config.fwmarkMask) >>> 0;
  const mask = config.fwmarkMask >>> 0;
  if (value === 0) {
    report.error(
      'LBAAS_MARK',
      config.at(config.given.has('fwmark-bits') ? 'fwmark-bits' : 'fwmark-mask'),
      `fwmark-bits ${hex(config.fwmarkBits)} and fwmark-mask ${hex(config.fwmarkMask)} make the mark 0: ch-k8s-lbaas would mark nothing and police every flow; nftops needs a mark bit`,
      'choose fwmark-bits with at least one bit inside fwmark-mask',
    );
    failed = true;
  } else if ((config.fwmarkBits & ~config.fwmarkMask) >>> 0 !== 0) {
    report.warn(
      'LBAAS_SETTING_IGNORED',
      config.at('fwmark-bits'),
      `fwmark-bits ${hex(config.fwmarkBits)} has bits outside fwmark-mask ${hex(config.fwmarkMask)}; ch-k8s-lbaas's "bits and mask" drops them too, so the mark is ${hex(value)}`,
    );
  }
  // ch-k8s-lbaas masquerades by the same mark; nftops has its own SNAT mark bit, which must not overlap.
  let snatBit = 0x2;
  if ((mask & snatBit) !== 0) {
    snatBit = 0;
    for (let bit = 0; bit < 32; bit++) {
      if (((mask >>> bit) & 1) === 0) {
        snatBit = (1 << bit) >>> 0;
        break;
      }
    }
    if (snatBit === 0) {
      report.error('LBAAS_MARK', config.at('fwmark-mask'), `fwmark-mask ${hex(mask)} uses every mark bit; nftops needs one more bit for its SNAT mark`, 'narrow fwmark-mask');
      failed = true;
    }
  }
  if (failed) return undefined;

  // Names valid one by one may still clash in nftops (two chains with one name, a name of the generated
  // chains for this prefix): the compiler says which, and those chains get the nftops_ prefix.
  for (let round = 0; round < 3; round++) {
    const clashes = chainClashes({ prerouting, postrouting, forward }, natTable, filterTable, filter, prefix);
    if (clashes.length === 0) break;
    for (const { key, message } of clashes) {
      const toml = { prerouting: 'nat-prerouting-chain', postrouting: 'nat-postrouting-chain', forward: 'filter-forward-chain' }[key];
      const current = { prerouting, postrouting, forward }[key]!;
      const renamed = fixTableOrChainName(`nftops_${current}`);
      report.warn('LBAAS_RENAMED', config.at(toml), `chain name ${JSON.stringify(current)} (${toml}) cannot be used in nftops: ${message}; renamed to ${JSON.stringify(renamed)}`);
      if (key === 'prerouting') prerouting = renamed;
      else if (key === 'postrouting') postrouting = renamed;
      else forward = renamed;
    }
  }

  const spec: Record<string, unknown> = {
    tables: filter ? { nat: natTable, filter: filterTable } : { nat: natTable },
    chains: filter ? { prerouting, postrouting, forward } : { prerouting, postrouting },
    filter,
    snat: config.enableSnat,
    mark: { value, mask },
    snatMark: { value: snatBit, mask: snatBit },
    ...(prefix !== '' ? { namePrefix: prefix } : {}),
    emptyBackends: 'reject',
    layout: 'per-service',
  };
  const inline: { path: PathSegment[]; text: string }[] = [
    { path: ['spec', 'tables', 'nat'], text: `${given('nat-table-name')}; ch-k8s-lbaas's is "table ip", this one is inet (IPv4 and IPv6)` },
    { path: ['spec', 'chains', 'prerouting'], text: given('nat-prerouting-chain') },
    { path: ['spec', 'chains', 'postrouting'], text: given('nat-postrouting-chain') },
    { path: ['spec', 'filter'], text: filter ? 'filter-table-name is set' : 'filter-table-name = "": no policy table' },
    { path: ['spec', 'snat'], text: given('enable-snat') },
    { path: ['spec', 'emptyBackends'], text: 'ch-k8s-lbaas skipped forwards without destinations; nftops rejects their traffic' },
    { path: ['spec', 'layout'], text: "one rule per service port, like ch-k8s-lbaas's own rules (and each its own round-robin counter)" },
  ];
  if (filter) {
    inline.push({ path: ['spec', 'tables', 'filter'], text: given('filter-table-name') });
    inline.push({ path: ['spec', 'chains', 'forward'], text: given('filter-forward-chain') });
  }
  if (prefix !== '') inline.push({ path: ['spec', 'namePrefix'], text: given('policy-prefix') });
  return {
    filter,
    document: {
      kind: 'Settings',
      comments: [`The ch-k8s-lbaas agent's [nftables] settings${options.config ? ` from ${baseName(options.config.path)}` : ' (its defaults: no agent config was given)'}.`],
      value: { apiVersion: API, kind: 'Settings', metadata: { name }, spec },
      inline,
      above: [
        {
          path: ['spec', 'chains'],
          lines: [
            'ch-k8s-lbaas declared its rules into base chains the host already had; nftops creates its own base chains,',
            'hooked at the default priorities (prerouting -100, postrouting 100, forward 0: see spec.priorities).',
          ],
        },
        {
          path: ['spec', 'mark'],
          lines: [
            `fwmark-bits ${hex(config.fwmarkBits)} and fwmark-mask ${hex(config.fwmarkMask)}. ch-k8s-lbaas writes "mark set ${hex(config.fwmarkBits)} and ${hex(config.fwmarkMask)}",`,
            `which nft folds into the constant ${hex(value)}: it overwrites the whole 32-bit mark and compares all of it.`,
            'Here mask is a real mask: only its bits are set and compared; every other mark bit survives.',
          ],
        },
        {
          path: ['spec', 'snatMark'],
          lines: ['ch-k8s-lbaas masqueraded by the same mark; nftops marks flows to masquerade with a bit of their own.'],
        },
      ],
      flow: [['spec', 'mark'], ['spec', 'snatMark']],
      hex: [['spec', 'mark', 'value'], ['spec', 'mark', 'mask'], ['spec', 'snatMark', 'value'], ['spec', 'snatMark', 'mask']],
    },
  };
}

/**
 * Chain names the compiler refuses together (not one by one): compiles a probe Settings with each chain
 * name on its own line and maps its errors back by line. Single-sourced: the compiler knows the rules.
 */
function chainClashes(
  chains: { prerouting: string; postrouting: string; forward: string | undefined },
  nat: string,
  filterTable: string | undefined,
  filter: boolean,
  prefix: string,
): { key: 'prerouting' | 'postrouting' | 'forward'; message: string }[] {
  const lines = [
    'apiVersion: nftops.dev/v1alpha1',
    'kind: Settings',
    'metadata: { name: probe }',
    'spec:',
    `  namePrefix: ${JSON.stringify(prefix)}`,
    `  filter: ${filter}`,
    `  tables: { nat: ${JSON.stringify(nat)}${filterTable !== undefined ? `, filter: ${JSON.stringify(filterTable)}` : ''} }`,
    '  chains:',
    `    prerouting: ${JSON.stringify(chains.prerouting)}`,
    `    postrouting: ${JSON.stringify(chains.postrouting)}`,
    ...(chains.forward !== undefined ? [`    forward: ${JSON.stringify(chains.forward)}`] : []),
  ];
  const keys = new Map<number, 'prerouting' | 'postrouting' | 'forward'>([
    [9, 'prerouting'],
    [10, 'postrouting'],
    [11, 'forward'],
  ]);
  const result = compile([{ path: 'probe.yaml', text: `${lines.join('\n')}\n` }]);
  return result.diagnostics.flatMap((d) => {
    const key = d.severity === 'error' ? keys.get(d.line) : undefined;
    return key ? [{ key, message: d.message }] : [];
  });
}

function baseName(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}

// ---------------------------------------------------------------------------------------------------------------
// Load balancers

interface ServiceGroup {
  readonly address: Address;
  readonly forwards: Forward[];
  /** Canonical destination texts, sorted by address, duplicates kept. */
  readonly destinations: readonly Address[];
}

function convertLoadBalancers(model: LbaasModel, report: ImportReport): OutputDocument[] {
  const at = (path: readonly PathSegment[]) => model.at(path);
  const key = (f: Forward) => `${f.address.text} ${f.protocol} ${f.inboundPort}`;
  const withDestinations = new Set(model.forwards.filter((f) => f.destinations.length > 0).map(key));
  const kept = new Map<string, Forward>();
  for (const forward of model.forwards) {
    const k = key(forward);
    const what = `${forward.protocol}/${forward.inboundPort} on ${forward.address.text}`;
    if (forward.destinations.length === 0) {
      if (withDestinations.has(k)) {
        report.warn('LBAAS_EMPTY_FORWARD', at([...forward.path, 'destination-addresses']), `${what} has no destination-addresses; ch-k8s-lbaas skips it and another forward of ${what} takes the traffic, so it is left out`);
        continue;
      }
      if (kept.has(k)) continue;
      report.warn(
        'LBAAS_EMPTY_FORWARD',
        at([...forward.path, 'destination-addresses']),
        `${what} has no destination-addresses: ch-k8s-lbaas skips such a forward, so its packets are not translated and reach the load balancer itself; nftops rejects them instead (TCP reset, ICMP port unreachable; Settings spec.emptyBackends: reject, or drop)`,
      );
      kept.set(k, forward);
      continue;
    }
    const first = kept.get(k);
    if (first) {
      report.warn(
        'LBAAS_DUPLICATE_FORWARD',
        at(forward.path),
        `${what} is forwarded twice; ch-k8s-lbaas renders both rules and the first one (${first.destinations.map((d) => d.text).join(', ')}) takes every connection, so this one is left out`,
      );
      continue;
    }
    for (const destination of forward.destinations) {
      if (destination.address.family !== forward.address.family) {
        report.error(
          'LBAAS_FAMILY_MISMATCH',
          at(destination.path),
          `destination ${destination.text} is IPv${destination.address.family} but the ingress address ${forward.addressText} is IPv${forward.address.family} (nft refuses such a rule, in ch-k8s-lbaas too)`,
        );
      }
    }
    const counts = new Map<string, number>();
    for (const d of forward.destinations) counts.set(d.address.text, (counts.get(d.address.text) ?? 0) + 1);
    for (const [text, count] of counts) {
      if (count > 1) {
        const path = forward.destinations.find((d) => d.address.text === text)!.path;
        report.warn('LBAAS_DUPLICATE_DESTINATION', at(path), `${text} is listed ${count} times: ch-k8s-lbaas gives it ${count} slots of the round robin; converted to one backend with weight ${count}`);
      }
    }
    kept.set(k, forward);
  }

  const ipv6Warned = new Set<string>();
  const groups = new Map<string, ServiceGroup>();
  for (const forward of kept.values()) {
    if (forward.address.family === 6 && !ipv6Warned.has(forward.address.text)) {
      ipv6Warned.add(forward.address.text);
      report.warn(
        'LBAAS_IPV6',
        at([...forward.path.slice(0, -2), 'address']),
        `${forward.addressText} is IPv6: ch-k8s-lbaas's NAT table is "table ip", so nft refused its whole file; nftops renders it with "dnat ip6" in an inet table`,
      );
    }
    const destinations = forward.destinations.map((d) => d.address).sort((a, b) => compareBytes(a.bytes, b.bytes));
    const groupKey = `${forward.address.text}|${destinations.map((d) => d.text).join(',')}`;
    let group = groups.get(groupKey);
    if (!group) {
      group = { address: forward.address, forwards: [], destinations };
      groups.set(groupKey, group);
    }
    group.forwards.push(forward);
  }

  const byAddress = new Map<string, ServiceGroup[]>();
  for (const group of groups.values()) {
    group.forwards.sort((a, b) => PROTOCOL_ORDER[a.protocol] - PROTOCOL_ORDER[b.protocol] || a.inboundPort - b.inboundPort);
    const list = byAddress.get(group.address.text) ?? [];
    list.push(group);
    byAddress.set(group.address.text, list);
  }

  const documents: { name: string; document: OutputDocument }[] = [];
  for (const list of byAddress.values()) {
    const first = (g: ServiceGroup) => g.forwards[0]!;
    list.sort((a, b) => PROTOCOL_ORDER[first(a).protocol] - PROTOCOL_ORDER[first(b).protocol] || first(a).inboundPort - first(b).inboundPort);
    const names = list.map((g) => `lb-${addressSlug(g.address)}${list.length > 1 ? `-${first(g).protocol.toLowerCase()}-${first(g).inboundPort}` : ''}`);
    list.forEach((group, index) => {
      const name = names[index]!;
      const backends: Record<string, unknown>[] = [];
      for (const destination of group.destinations) {
        const last = backends[backends.length - 1];
        if (last && last.address === destination.text) last.weight = ((last.weight as number | undefined) ?? 1) + 1;
        else backends.push({ address: destination.text });
      }
      const forwardText = group.forwards.map((f) => `${f.protocol}/${f.inboundPort} -> ${f.destinationPort}`).join(', ');
      const addressText = group.forwards[0]!.addressText;
      const comments = [`ch-k8s-lbaas ingress ${addressText}: ${forwardText}.`];
      if (list.length > 1) {
        comments.push(
          `The forwards of ${addressText} have different destination lists, so they are split over ${list.length} LoadBalancers`,
          `with disjoint ports: ${names.join(', ')}.`,
        );
      }
      const above: { path: PathSegment[]; lines: string[] }[] = [];
      if (group.destinations.length === 0) {
        comments.push('No destinations: ch-k8s-lbaas skipped these forwards; nftops rejects their traffic (Settings spec.emptyBackends).');
      } else {
        const stringOrder = [...new Set(group.forwards[0]!.destinations.map((d) => d.text))].sort(stringCompare);
        const numericOrder = [...new Set(group.destinations.map((d) => d.text))];
        if (stringOrder.join(',') !== numericOrder.join(',')) {
          above.push({
            path: ['spec', 'backends'],
            lines: [
              'Both hand out new connections in turn (numgen inc, from slot 0 after each load). ch-k8s-lbaas numbers',
              `the destinations as strings (${stringOrder.join(', ')}), nftops by address (${numericOrder.join(', ')}):`,
              'the same backends in the same proportions, visited from another starting point.',
            ],
          });
        }
      }
      documents.push({
        name,
        document: {
          kind: 'LoadBalancer',
          comments,
          value: {
            apiVersion: API,
            kind: 'LoadBalancer',
            metadata: { name },
            spec: {
              address: group.address.text,
              ports: group.forwards.map((f) => ({ protocol: f.protocol, port: f.inboundPort, targetPort: f.destinationPort })),
              backends,
            },
          },
          above,
          flow: [
            ...group.forwards.map((_, i) => ['spec', 'ports', i]),
            ...backends.map((_, i) => ['spec', 'backends', i]),
          ],
        },
      });
      for (const f of group.forwards) {
        if (f.inboundPort === 0 || f.destinationPort === 0) {
          report.error('LBAAS_PORT_ZERO', at([...f.path, f.inboundPort === 0 ? 'inbound-port' : 'destination-port']), `port 0 cannot be load-balanced in nftops (ports are 1-65535)`);
        }
      }
    });
  }
  return documents.sort((a, b) => stringCompare(a.name, b.name)).map((d) => d.document);
}

// ---------------------------------------------------------------------------------------------------------------
// Network policies

interface ConvertedRule {
  readonly value: Record<string, unknown>;
  readonly flow: PathSegment[][];
}

function convertRule(allowed: AllowedIngress, at: (path: readonly PathSegment[]) => Position, report: ImportReport): ConvertedRule | undefined {
  const from: { ipBlock: { cidr: string; except?: string[] } }[] = [];
  const checkBlock = (block: Block, text: string, path: readonly PathSegment[]) => {
    if (block.hadHostBits) report.warn('LBAAS_CIDR_HOST_BITS', at(path), `${text} has host bits set; nft reads it as ${block.text}, and so is it written`);
    if (block.family === 6) {
      report.warn('LBAAS_IPV6', at(path), `${text} is IPv6: ch-k8s-lbaas writes "ip saddr" for every block, so nft refused its whole file; nftops writes "ip6 saddr"`);
    }
  };
  for (const ipblock of allowed.ipblocks) {
    checkBlock(ipblock.allow, ipblock.allowText, [...ipblock.path, 'allow']);
    const except: Block[] = [];
    let swallowed = false;
    for (const entry of ipblock.block) {
      checkBlock(entry.block, entry.text, entry.path);
      if (entry.block.family !== ipblock.allow.family) {
        report.warn('LBAAS_EXCEPT_NO_EFFECT', at(entry.path), `block ${entry.text} is IPv${entry.block.family} but allow ${ipblock.allowText} is IPv${ipblock.allow.family}: it can never match; left out`);
      } else if (blockContains(entry.block, ipblock.allow)) {
        report.warn('LBAAS_EXCEPT_NO_EFFECT', at(entry.path), `block ${entry.text} covers all of allow ${ipblock.allowText}: this ipblock filter admits nobody, so it is left out`);
        swallowed = true;
      } else if (!blockContains(ipblock.allow, entry.block)) {
        report.warn('LBAAS_EXCEPT_NO_EFFECT', at(entry.path), `block ${entry.text} lies outside allow ${ipblock.allowText}: it can never match; left out`);
      } else if (!except.some((e) => e.text === entry.block.text)) {
        except.push(entry.block);
      }
    }
    if (swallowed) continue;
    except.sort((a, b) => compareBytes(a.network.bytes, b.network.bytes) || a.prefix - b.prefix);
    from.push({ ipBlock: { cidr: ipblock.allow.text, ...(except.length > 0 ? { except: except.map((e) => e.text) } : {}) } });
  }
  if (allowed.ipblocks.length > 0 && from.length === 0) {
    report.warn('LBAAS_RULE_DROPPED', at(allowed.path), 'every ipblock filter of this allowed ingress admits nobody, so it can never match; left out (an empty "from" would admit everyone)');
    return undefined;
  }

  const ports: { protocol: LbaasProtocol; port?: number; endPort?: number }[] = [];
  for (const protocol of ['TCP', 'UDP'] as const) {
    const filters = allowed.ports.filter((p) => p.protocol === protocol);
    if (filters.length === 0) continue;
    if (filters.some((p) => p.port === undefined)) {
      // ch-k8s-lbaas writes "<proto> dport {0-65535}" for the protocol and drops its other ports: all ports.
      ports.push({ protocol });
      continue;
    }
    const seen = new Set<string>();
    for (const filter of filters) {
      let port = filter.port!;
      const endPort = filter.endPort;
      if (port === 0) {
        if (endPort === undefined) {
          report.warn('LBAAS_PORT_ZERO', at([...filter.path, 'port']), 'port 0 cannot be expressed in nftops (ports are 1-65535) and carries no real traffic; this port filter is left out');
          continue;
        }
        report.warn('LBAAS_PORT_ZERO', at([...filter.path, 'port']), `the range 0-${endPort} starts at port 0, which nftops cannot express; written as 1-${endPort}`);
        port = 1;
      }
      const item = endPort !== undefined && endPort !== port ? { protocol, port, endPort } : { protocol, port };
      const k = JSON.stringify(item);
      if (seen.has(k)) continue;
      seen.add(k);
      ports.push(item);
    }
  }
  if (allowed.ports.length > 0 && ports.length === 0) {
    report.warn('LBAAS_RULE_DROPPED', at(allowed.path), 'no port filter of this allowed ingress can be expressed, so it is left out (an empty "ports" would admit every port)');
    return undefined;
  }
  ports.sort((a, b) => PROTOCOL_ORDER[a.protocol] - PROTOCOL_ORDER[b.protocol] || (a.port ?? -1) - (b.port ?? -1) || (a.endPort ?? 0) - (b.endPort ?? 0));
  from.sort((a, b) => stringCompare(a.ipBlock.cidr, b.ipBlock.cidr));
  const value: Record<string, unknown> = {};
  const flow: PathSegment[][] = [];
  if (from.length > 0) {
    value.from = from;
    from.forEach((_, i) => flow.push(['from', i, 'ipBlock']));
  }
  if (ports.length > 0) {
    value.ports = ports;
    ports.forEach((_, i) => flow.push(['ports', i]));
  }
  return { value, flow };
}

function convertPolicies(model: LbaasModel, report: ImportReport): OutputDocument[] {
  const at = (path: readonly PathSegment[]) => model.at(path);
  // Duplicate names: ch-k8s-lbaas keeps policies in a map, so the last definition wins.
  const policies = new Map<string, LbaasModel['policies'][number]>();
  for (const policy of model.policies) {
    const earlier = policies.get(policy.name);
    if (earlier) {
      report.warn('LBAAS_DUPLICATE_POLICY', at([...earlier.path, 'name']), `network policy ${JSON.stringify(policy.name)} is defined again later; ch-k8s-lbaas keeps the last definition, and so does the import`);
    }
    policies.set(policy.name, policy);
  }

  // Assignments: the first assignment of a pod address is the one that acts (its POD chain ends in drop).
  const podsOf = new Map<string, Address[]>();
  const firstAssignment = new Map<string, (typeof model.assignments)[number]>();
  const withoutPolicies: Address[] = [];
  let unknown = false;
  for (const assignment of model.assignments) {
    const earlier = firstAssignment.get(assignment.address.text);
    if (earlier) {
      report.warn(
        'LBAAS_DUPLICATE_ASSIGNMENT',
        at(assignment.path),
        `pod ${assignment.text} is assigned again; in ch-k8s-lbaas the first assignment's chain ends in drop before this one is reached, so only [${earlier.policies.map((p) => p.name).join(', ')}] apply; this assignment is left out`,
      );
      continue;
    }
    firstAssignment.set(assignment.address.text, assignment);
    for (const reference of assignment.policies) {
      if (!policies.has(reference.name)) {
        report.error('LBAAS_UNKNOWN_POLICY', at(reference.path), `pod ${assignment.text} is assigned network policy ${JSON.stringify(reference.name)}, which does not exist; ch-k8s-lbaas would jump to a chain that does not exist and nft would refuse its whole file`);
        unknown = true;
        continue;
      }
      const pods = podsOf.get(reference.name) ?? [];
      if (!pods.some((p) => p.text === assignment.address.text)) pods.push(assignment.address);
      podsOf.set(reference.name, pods);
    }
    if (assignment.policies.length === 0) {
      report.warn(
        'LBAAS_POD_WITHOUT_POLICIES',
        at(assignment.path),
        `pod ${assignment.text} is assigned no policies: ch-k8s-lbaas's chain for it is just "drop", so all its load-balanced traffic is dropped; converted to a NetworkPolicy with ingress: []`,
      );
      withoutPolicies.push(assignment.address);
    }
  }
  if (unknown) return [];

  const used = new Set<string>();
  const documents: { name: string; document: OutputDocument }[] = [];
  const byName = [...policies.values()].sort((a, b) => stringCompare(a.name, b.name));
  const assigned = byName.filter((policy) => {
    if (podsOf.has(policy.name)) return true;
    report.warn('LBAAS_UNUSED_POLICY', at([...policy.path, 'name']), `network policy ${JSON.stringify(policy.name)} is assigned to no pod: it has no effect in ch-k8s-lbaas, and is not converted`);
    return false;
  });
  const uniqueName = (wanted: string) => {
    let name = wanted;
    for (let i = 2; used.has(name); i++) name = `${wanted.slice(0, 60)}-${i}`;
    used.add(name);
    return name;
  };
  for (const policy of assigned) {
    const name = uniqueName(objectNameFor(policy.name));
    if (name !== policy.name) {
      report.warn('LBAAS_RENAMED', at([...policy.path, 'name']), `network policy ${JSON.stringify(policy.name)} is not a valid nftops name (lower case letters, digits, "-", "."; at most 63); named ${JSON.stringify(name)}`);
    }
    const pods = podsOf.get(policy.name)!.sort((a, b) => compareBytes(a.bytes, b.bytes));
    const rules: Record<string, unknown>[] = [];
    const flow: PathSegment[][] = [['spec', 'podAddresses']];
    for (const allowed of policy.allowed) {
      const rule = convertRule(allowed, at, report);
      if (!rule) continue;
      const key = JSON.stringify(rule.value);
      if (rules.some((r) => JSON.stringify(r) === key)) continue;
      rule.flow.forEach((p) => flow.push(['spec', 'ingress', rules.length, ...p]));
      rules.push(rule.value);
    }
    const comments = [`ch-k8s-lbaas network policy ${JSON.stringify(policy.name)}, assigned to ${pods.map((p) => p.text).join(', ')}.`];
    if (policy.allowed.length === 0) comments.push('allowed-ingresses is empty: it admits nothing (ingress: []).');
    documents.push({
      name,
      document: {
        kind: 'NetworkPolicy',
        comments,
        value: { apiVersion: API, kind: 'NetworkPolicy', metadata: { name }, spec: { podAddresses: pods.map((p) => p.text), ingress: rules } },
        flow,
      },
    });
  }
  if (withoutPolicies.length > 0) {
    const name = uniqueName('no-policies');
    const pods = withoutPolicies.sort((a, b) => compareBytes(a.bytes, b.bytes));
    documents.push({
      name,
      document: {
        kind: 'NetworkPolicy',
        comments: [
          'Pods that ch-k8s-lbaas assigned an empty policy list: their chain there is just "drop",',
          'so no load-balanced traffic reaches them. ingress: [] does the same here.',
        ],
        value: { apiVersion: API, kind: 'NetworkPolicy', metadata: { name }, spec: { podAddresses: pods.map((p) => p.text), ingress: [] } },
        flow: [['spec', 'podAddresses']],
      },
    });
  }
  return documents.sort((a, b) => stringCompare(a.name, b.name)).map((d) => d.document);
}

// ---------------------------------------------------------------------------------------------------------------

/** Converts, then compiles the result; files only come back when both succeed. */
export function importLbaas(options: LbaasImportOptions): ImportResult {
  const report = new ImportReport();
  const name = options.name ?? 'lbaas';
  const config = readNftablesConfig(options.config, report);
  const input = parseYamlInput(options.model.path, options.model.text, report, 'the model');
  const model = input && readLbaasModel(input, report);
  // The settings are converted even when the model has errors, so that all errors are reported at once.
  const settings = config && convertSettings(config, name, options, report);
  if (!config || !model || report.hasErrors) return { ok: false, diagnostics: report.sorted(), files: [] };

  const loadBalancers = convertLoadBalancers(model, report);
  let policies: OutputDocument[] = [];
  if (settings?.filter) policies = convertPolicies(model, report);
  else if (model.policies.length > 0 || model.assignments.length > 0) {
    report.warn(
      'LBAAS_POLICIES_WITHOUT_FILTER',
      config.at('filter-table-name'),
      `filter-table-name is "": ch-k8s-lbaas renders no policy rules, so the model's ${model.policies.length} network policies and ${model.assignments.length} assignments are not converted`,
    );
  }
  if (!settings || report.hasErrors) return { ok: false, diagnostics: report.sorted(), files: [] };

  const sources = [baseName(options.model.path), ...(options.config ? [baseName(options.config.path)] : [])].join(' and ');
  const header = `Converted by "nftops import lbaas" from ${sources}.`;
  const artifact: OutputDocument = {
    kind: 'Artifact',
    comments: [header, 'Every object in this directory goes into one artifact, written beside it. Run: nftops compile <this directory>'],
    value: { apiVersion: API, kind: 'Artifact', metadata: { name }, spec: { output: `${name}.nft`, settings: name } },
  };
  const withHeader = (docs: OutputDocument[]): OutputDocument[] =>
    docs.map((d, i) => (i === 0 ? { ...d, comments: [header, ...d.comments] } : d));
  const files: ImportedFile[] = [
    { name: 'artifact.yaml', text: renderYamlFile([artifact], options.schemaBase) },
    { name: 'settings.yaml', text: renderYamlFile(withHeader([settings.document]), options.schemaBase) },
  ];
  if (loadBalancers.length > 0) files.push({ name: 'loadbalancers.yaml', text: renderYamlFile(withHeader(loadBalancers), options.schemaBase) });
  if (policies.length > 0) files.push({ name: 'policies.yaml', text: renderYamlFile(withHeader(policies), options.schemaBase) });
  return finish(files, report, options.outputPrefix ?? '', new Set(['EMPTY_BACKENDS']));
}

/**
 * Compiles the converted FILES as they will lie in the output directory. Compiler errors fail the import
 * (IMPORT_COMPILE_FAILED, naming the compiler's code); its warnings are passed on, except those in SKIP
 * (already reported by the import in the input's terms).
 */
export function finish(files: ImportedFile[], report: ImportReport, prefix: string, skip: ReadonlySet<string>): ImportResult {
  const result = compile(
    files.map((f) => ({ path: `${prefix}${f.name}`, text: f.text })),
    { generator: `nftops ${VERSION}` },
  );
  for (const d of result.diagnostics) {
    if (d.severity === 'warning' && skip.has(d.code)) continue;
    report.push({
      ...d,
      code: d.severity === 'error' ? 'IMPORT_COMPILE_FAILED' : 'IMPORT_COMPILE_WARNING',
      message: `${d.code}: ${d.message}`,
    });
  }
  if (!result.ok || report.hasErrors) {
    const first = report.sorted().find((d) => d.severity === 'error');
    if (!result.ok && !first) report.error('IMPORT_COMPILE_FAILED', { file: `${prefix}${files[0]?.name ?? ''}`, line: 1, column: 1 }, 'the converted YAML does not compile');
    return { ok: false, diagnostics: report.sorted(), files: [] };
  }
  const artifact = result.artifacts[0];
  return {
    ok: true,
    diagnostics: report.sorted(),
    files,
    artifact: artifact && { name: artifact.name, output: artifact.output, text: artifact.text },
  };
}
