import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Diagnostic } from '@nftops/compiler';
import type { CliIo } from '../io.js';
import { deliver, outputPrefix, readInput, runImportGroup } from '../import/command.js';
import { schemaBaseFor } from '../import/emit.js';
import { importLbaas, LBAAS_FILES } from '../import/lbaas.js';
import { OBJECT_NAME, tableOrChainNameProblem } from '../import/names.js';
import { EXIT, printDiagnostics, printJson, UsageError } from '../shared.js';
import { importIstioHelp, runImportIstio } from './import-istio.js';

export { importHelp } from '../import/command.js';

export const importLbaasHelp = `Usage: nftops import lbaas --model FILE [--config FILE] (-o DIR | --stdout) [options]

Converts a ch-k8s-lbaas load-balancer model and its agent's [nftables] settings into nftops YAML:
  - one LoadBalancer per ingress address (several, with disjoint ports, when the address's forwards
    have different destination lists), backends = destination-addresses, targetPort = destination-port;
  - one NetworkPolicy per assigned network policy (podAddresses from policy-assignments);
  - a Settings object (table and chain names, policy prefix, SNAT, the mark as value and real mask,
    layout: per-service) and an Artifact (NAME.nft) that uses it.
The model is the agent's load-balancer-config (the JWT claim), wrapped in that key or not, as YAML or
JSON. The result is compiled; nothing is written unless it compiles. Output is deterministic.
Everything that does not map one to one is a warning (docs/migration.md explains each).

Options:
  -m, --model FILE         the load-balancer-config model (required)
  -c, --config FILE        the agent's TOML config; its [nftables] section is read (default: the
                           agent's defaults: tables nat and filter, chains prerouting, postrouting,
                           forward, SNAT on, fwmark 0x1/0x1)
  -o, --output DIR         where to write artifact.yaml, settings.yaml, loadbalancers.yaml and
                           policies.yaml (created if missing; those files from an earlier import that
                           this one does not write are removed)
      --stdout             print the files instead of writing them
      --name NAME          name of the Settings and Artifact objects and of NAME.nft (default lbaas)
      --nat-table NAME     use this nat table name instead of nat-table-name
      --filter-table NAME  use this filter table name instead of filter-table-name (recommended: nftops
                           replaces its tables whole, and ch-k8s-lbaas's filter table is the host's)
      --json               machine-readable result on stdout
  -h, --help               this help

Exit codes: 0 converted (warnings are printed), 2 errors (file:line:column, a stable code; nothing is
written).
`;

function checkTableOption(flag: string, value: string | undefined): void {
  if (value === undefined) return;
  const problem = tableOrChainNameProblem(value);
  if (problem === 'keyword') throw new UsageError(`${flag} ${JSON.stringify(value)} is an nft keyword`);
  if (problem) throw new UsageError(`${flag} ${JSON.stringify(value)} must match [A-Za-z][A-Za-z0-9_-]{0,63}`);
}

export function runImportLbaas(args: string[], io: CliIo): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: false,
    options: {
      model: { type: 'string', short: 'm' },
      config: { type: 'string', short: 'c' },
      output: { type: 'string', short: 'o' },
      stdout: { type: 'boolean' },
      name: { type: 'string' },
      'nat-table': { type: 'string' },
      'filter-table': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  void positionals;
  if (values.help) {
    io.stdout.write(importLbaasHelp);
    return EXIT.ok;
  }
  if (values.model === undefined) throw new UsageError('--model FILE is required');
  if ((values.output === undefined) === !values.stdout) throw new UsageError('give exactly one of --output DIR and --stdout');
  if (values.name !== undefined && !OBJECT_NAME.test(values.name)) {
    throw new UsageError(`--name ${JSON.stringify(values.name)} must be lower case letters, digits, "-" and "." (at most 63)`);
  }
  checkTableOption('--nat-table', values['nat-table']);
  checkTableOption('--filter-table', values['filter-table']);

  const read: Diagnostic[] = [];
  const model = readInput(io, values.model, read);
  const config = values.config === undefined ? undefined : readInput(io, values.config, read);
  if (!model || (values.config !== undefined && !config)) {
    if (values.json) printJson(io, { ok: false, diagnostics: read, files: [], removed: [], artifact: null });
    else printDiagnostics(io, read);
    return EXIT.error;
  }
  const result = importLbaas({
    model,
    config,
    name: values.name,
    natTable: values['nat-table'],
    filterTable: values['filter-table'],
    schemaBase: schemaBaseFor(values.output === undefined ? undefined : resolve(io.cwd, values.output)),
    outputPrefix: outputPrefix(io, values.output),
  });
  return deliver(io, result, { output: values.output, stdout: values.stdout ?? false, json: values.json ?? false, known: LBAAS_FILES });
}

/** `nftops import`: the entry in main.ts's command table. */
export function runImport(args: string[], io: CliIo): Promise<number> {
  return runImportGroup(args, io, {
    lbaas: { run: runImportLbaas, help: importLbaasHelp },
    istio: { run: runImportIstio, help: importIstioHelp },
  });
}
