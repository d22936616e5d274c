import { posix } from 'node:path';
import { createHash } from 'node:crypto';
import { renderArtifact, type TableRef } from '@nftops/artifact';
import type { CompileOptions, CompileResult, CompiledArtifact, RuleSource, SourceFile } from './api.js';
import { DiagnosticBag } from './diagnostics.js';
import { EXTENSIONS } from './extensions.js';
import { loadFileInParts } from './load.js';
import { backendSlots, forwardsOf, lowerArtifact, type ArtifactContent } from './lower.js';
import { DEFAULT_SETTINGS, ModelBuilder, type ArtifactSpec, type LoadBalancer, type Model, type NetworkPolicy, type Origin, type Settings } from './model.js';
import { UnsafeTextError } from './nft-text.js';
import { bodyLineSources, renderTables } from './render.js';
import { validateDocuments } from './validate.js';
import { VERSION } from './version.js';

/**
 * The digest of an artifact's source objects in canonical form: everything that shapes the rules, none of
 * what does not (positions, labels order). Load balancers and policies, the bulk at scale, are written out
 * field by field; other objects as JSON, which is canonical for model objects (built with a fixed key order)
 * once origins are dropped. Hashing object by object keeps memory flat.
 */
export function sourceDigest(settings: Settings | null, loadBalancers: readonly LoadBalancer[], policies: readonly NetworkPolicy[], others: readonly unknown[]): string {
  const hash = createHash('sha256');
  const labels = (l: Readonly<Record<string, string>>) =>
    Object.keys(l)
      .sort()
      .map((k) => `${k}=${l[k]}`)
      .join(',');
  const json = (value: unknown) => JSON.stringify(value, (key, inner: unknown) => (key === 'origin' || key === 'bytes' ? undefined : inner)) ?? 'null';
  hash.update(`settings ${json(settings)}\n`);
  for (const lb of loadBalancers) {
    const ports = lb.ports.map((p) => `${p.name ?? ''}/${p.protocol}/${p.port}/${p.targetPort}`).join(' ');
    const backends = lb.backends.map((b) => `${b.address.text}/${b.weight}/${b.port ?? ''}`).join(' ');
    hash.update(`lb ${lb.name} [${labels(lb.labels)}] ${lb.address.text} ${lb.scheduler} ${lb.snat ?? ''} | ${ports} | ${backends}\n`);
  }
  for (const policy of policies) {
    const rules = policy.rules.map((r) =>
      [
        r.from.map((f) => `${f.cidr.text}!${f.except.map((e) => e.text).join('+')}`).join(' '),
        r.ports.map((p) => `${p.protocol}/${p.port ?? ''}/${p.endPort ?? ''}`).join(' '),
      ].join(' ; '),
    );
    hash.update(`policy ${policy.name} [${labels(policy.labels)}] ${policy.pods.map((p) => p.text).join(' ')} | ${rules.join(' | ')}\n`);
  }
  for (const other of others) hash.update(`${json(other)}\n`);
  return hash.digest('hex');
}

function matches(labels: Readonly<Record<string, string>>, selector: Readonly<Record<string, string>> | undefined): boolean {
  return Object.entries(selector ?? {}).every(([key, value]) => labels[key] === value);
}

/** True when FILE lies in one of the artifact's source directories (all artifacts-less sources match). */
function inScope(file: string, spec: ArtifactSpec | undefined): boolean {
  if (!spec) return true;
  const path = posix.normalize(file.split('\\').join('/'));
  return spec.sources.some((dir) => dir === '.' || path === dir || path.startsWith(`${dir}/`));
}

interface PlannedArtifact {
  readonly name: string;
  readonly output: string | undefined;
  readonly content: ArtifactContent;
  readonly spec: ArtifactSpec | undefined;
}

function planArtifacts(model: Model, bag: DiagnosticBag): PlannedArtifact[] {
  const settingsFor = (spec: ArtifactSpec | undefined): Settings | undefined => {
    if (spec?.settings !== undefined) {
      const found = model.settings.find((s) => s.name === spec.settings);
      if (!found) {
        bag.add('SETTINGS_NOT_FOUND', spec.origin.at(['settings']), `Settings/${spec.settings} does not exist`, {
          hint: `defined Settings: ${model.settings.map((s) => s.name).join(', ') || 'none'}`,
          object: spec.origin.ref,
        });
      }
      return found;
    }
    const candidates = model.settings.filter((s) => inScope(s.origin!.file, spec));
    if (candidates.length <= 1) return candidates[0] ?? DEFAULT_SETTINGS;
    const first = candidates[0]!.origin!;
    bag.add(
      'SETTINGS_AMBIGUOUS',
      spec ? spec.origin.at(['$name']) : first.at(['$name']),
      `${candidates.length} Settings objects are in scope and ${spec ? `${spec.origin.ref} does not say` : 'no Artifact says'} which one applies`,
      { hint: 'set spec.settings on each Artifact', ...(spec ? { object: spec.origin.ref } : {}) },
    );
    return undefined;
  };

  const specs: (ArtifactSpec | undefined)[] = model.artifacts.length > 0 ? [...model.artifacts] : [undefined];
  const outputs = new Map<string, ArtifactSpec>();
  const planned: PlannedArtifact[] = [];
  for (const spec of specs) {
    if (spec) {
      const clash = outputs.get(spec.output);
      if (clash) {
        bag.add('ARTIFACT_OUTPUT_CONFLICT', spec.origin.at(['output']), `${spec.origin.ref} and ${clash.origin.ref} both write ${spec.output}`, {
          object: spec.origin.ref,
        });
        continue;
      }
      outputs.set(spec.output, spec);
    }
    const settings = settingsFor(spec);
    if (!settings) continue;
    const selected = <T extends { labels: Readonly<Record<string, string>>; origin: { file: string } }>(o: T) =>
      inScope(o.origin.file, spec) && matches(o.labels, spec?.matchLabels);
    const loadBalancers = model.loadBalancers.filter(selected);
    const policies = model.policies.filter(selected);
    const extensionObjects = model.extensionObjects.filter(selected);
    if (spec && loadBalancers.length === 0 && policies.length === 0 && extensionObjects.length === 0) {
      bag.add('ARTIFACT_EMPTY', spec.origin.at(['selector']), `${spec.origin.ref} selects no objects; its tables will be empty`, {
        severity: 'warning',
        object: spec.origin.ref,
      });
    }
    planned.push({ name: spec?.name ?? 'default', output: spec?.output, content: { name: spec?.name ?? 'default', settings, loadBalancers, policies, extensionObjects },
      spec,
    });
  }
  return planned;
}

/**
 * Backend entries one artifact may hold: elements of the backend maps in the maps layout (a backend of weight w
 * takes w slots once weights are divided by their gcd), map entries per service port otherwise. Without a bound,
 * one service with weights 1000 and 999 on its 4096 backends and 1024 ports (a 200 KB file) expands to billions.
 */
export const MAX_BACKEND_ENTRIES = 1 << 20;

function backendEntries(service: LoadBalancer, layout: Settings['layout']): number {
  return layout === 'maps' ? backendSlots(service) : service.backends.length;
}

/** Checks that need all objects of one artifact together. */
function checkArtifact(content: ArtifactContent, bag: DiagnosticBag): void {
  const forwards = forwardsOf(content.loadBalancers);
  let entries = 0;
  for (const { service } of forwards) {
    const before = entries;
    entries += backendEntries(service, content.settings.layout);
    if (before <= MAX_BACKEND_ENTRIES && entries > MAX_BACKEND_ENTRIES) {
      bag.add('SCHEMA_RANGE', service.origin.at(['backends']), `with ${service.origin.ref} the artifact holds more than ${MAX_BACKEND_ENTRIES} backend entries (service ports times backends, weights counted as slots in the maps layout)`, {
        hint: 'use the smallest weights with the same ratio, or split the services over several Artifacts',
        object: service.origin.ref,
      });
    }
  }
  for (const extension of EXTENSIONS) {
    const objects = content.extensionObjects.filter((o) => extension.kinds.includes(o.kind));
    if (objects.length > 0) extension.check?.(objects, bag);
  }
  // Forwards are sorted by address, protocol and port, so the ones that share all three are neighbours.
  let first: (typeof forwards)[number] | undefined;
  for (const forward of forwards) {
    const { service, port } = forward;
    const same = first !== undefined && first.service.address.text === service.address.text && first.port.protocol === port.protocol && first.port.port === port.port;
    if (!same) {
      first = forward;
      continue;
    }
    if (first!.service.origin.ref === service.origin.ref) continue;
    bag.add(
      'DUPLICATE_SERVICE_PORT',
      service.origin.at(['address']),
      `${service.origin.ref} and ${first!.service.origin.ref} both serve ${port.protocol.toUpperCase()} ${service.address.text} port ${port.port}`,
      { hint: 'one address, protocol and port can have one service only', object: service.origin.ref },
    );
  }
}

/**
 * Compiles YAML sources into artifacts. Pure: the same sources give the same bytes, whatever the order of
 * files, documents, keys, or of lists whose order carries no meaning.
 */
export function compile(sources: readonly SourceFile[], options: CompileOptions = {}): CompileResult {
  const bag = new DiagnosticBag();
  const builder = new ModelBuilder(bag, EXTENSIONS);
  // A few documents at a time, so each part's YAML tree is garbage before the next one is parsed.
  for (const source of sources) {
    for (const documents of loadFileInParts(source, bag)) {
      for (const object of validateDocuments(documents, bag)) builder.add(object);
    }
  }
  const model = builder.finish();
  const planned = planArtifacts(model, bag);
  for (const plan of planned) checkArtifact(plan.content, bag);
  if (bag.hasErrors) return { ok: false, artifacts: [], diagnostics: bag.sorted() };

  const generator = options.generator ?? `nftops ${VERSION}`;
  const artifacts: CompiledArtifact[] = [];
  for (const plan of planned) {
    let lowered;
    let body;
    try {
      lowered = lowerArtifact(plan.content);
      // Rendering makes the elements of large maps, so it can find an unsafe name too.
      body = renderTables(lowered.tables);
    } catch (error) {
      if (!(error instanceof UnsafeTextError)) throw error;
      const at = plan.spec?.origin.at([]) ?? { file: sources[0]?.path ?? '<input>', line: 1, column: 1 };
      bag.add('UNSAFE_NAME', at, error.message, { hint: 'names may hold letters, digits, "-", "_" and "."' });
      continue;
    }
    const tableRefs: TableRef[] = lowered.tables.map((t) => ({ family: t.family, name: t.name }));
    const clash = tableRefs.find((t, i) => tableRefs.findIndex((u) => u.family === t.family && u.name === t.name) !== i);
    if (clash) {
      const at = plan.spec?.origin.at(['$name']) ?? { file: sources[0]?.path ?? '<input>', line: 1, column: 1 };
      bag.add('TABLE_NAME_CLASH', at, `two kinds of objects in artifact ${plan.name} both render table ${clash.family} ${clash.name}`, {
        hint: 'give one of them another table name, or put them in different artifacts',
      });
      continue;
    }
    const { settings, loadBalancers, policies, extensionObjects } = plan.content;
    const usesSettings = lowered.tables.length > 0 && (loadBalancers.length > 0 || policies.length > 0 || extensionObjects.length === 0);
    const text = renderArtifact({
      generator,
      tables: tableRefs,
      sourceDigest: sourceDigest(usesSettings ? settings : null, loadBalancers, policies, extensionObjects),
      body,
      extra: lowered.header,
    });
    let bodyLength = 0;
    for (const piece of body) bodyLength += piece.length;
    const bodyStart = text.length - bodyLength;
    const headerLines = text.slice(0, bodyStart).split('\n').length - 1;
    const { content } = plan;
    let origins: Map<string, Origin> | undefined;
    const originOf = (ref: string): Origin | undefined =>
      (origins ??= new Map(
        [...content.loadBalancers, ...content.policies, ...content.extensionObjects, content.settings].flatMap((o) =>
          o.origin ? [[o.origin.ref, o.origin] as const] : [],
        ),
      )).get(ref);
    const bodyLineSource = bodyLineSources(() => text.slice(bodyStart));
    // Looked up only when asked for (nft reported an error): positions need the precise YAML parse.
    const ruleSource = (line: number): RuleSource | undefined => {
      const ref = bodyLineSource(line - headerLines);
      if (ref === undefined) return undefined;
      const at = originOf(ref)?.at(['$name']);
      return { object: ref, file: at?.file ?? '', line: at?.line ?? 0, column: at?.column ?? 0 };
    };
    artifacts.push({ name: plan.name, output: plan.output, text, tables: tableRefs, ruleSource });
  }
  return { ok: !bag.hasErrors, artifacts: bag.hasErrors ? [] : artifacts, diagnostics: bag.sorted() };
}
