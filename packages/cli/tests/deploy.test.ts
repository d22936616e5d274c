// Deployment pieces, validated without a cluster: the Kubernetes manifests (and their kustomize overlays)
// against a JSON Schema subset written here for the fields they use, the DaemonSet against the watcher's real
// flags, config parser, status endpoints and directory layout, the Containerfile against the repository, and
// the Prometheus rules against the watcher's real metric names. With root and nft, the DaemonSet's command
// line is run for every node of examples/fleet (nft --check only, in throwaway namespaces).
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, normalize, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Ajv, type ErrorObject } from 'ajv';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { kernelAvailable } from '@nftops/testkit';
import { buildConfig, DEFAULTS, startStatusServer, WatchMetrics, type StatusDocument } from '@nftops/watcher';
import { RUN_OPTIONS } from '../../watcher/src/config.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const K8S = join(REPO, 'deploy/kubernetes');
const PROM = join(REPO, 'deploy/prometheus');
const FLEET_NODES = join(REPO, 'examples/fleet/nodes');
const WATCH_BIN = join(REPO, 'packages/watcher/bin/nftops-watch.js');

type Obj = Record<string, any>;
const temps: string[] = [];
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'nftops-deploy-'));
  temps.push(dir);
  return dir;
}

function yamlFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...yamlFiles(path));
    else if (/\.ya?ml$/.test(entry.name)) out.push(path);
  }
  return out.sort();
}

/** Every document of a YAML file; a syntax error or a duplicate key fails the test. */
function loadYaml(file: string): Obj[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'), { uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const out: Obj[] = [];
  for (const doc of list) {
    const errors = [...doc.errors, ...doc.warnings].map((e) => e.message);
    expect(errors, `${relative(REPO, file)}`).toEqual([]);
    const value = doc.toJS();
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

// --------------------------------------------------------------------------------------------------------
// A JSON Schema subset of the Kubernetes API for exactly the fields these manifests use. Unknown keys are
// errors (a misspelt readOnlyRootFileSystem would otherwise be silently ignored by the API server's
// non-strict decoding of kubectl apply in older versions, and the container would run with a writable root).
// --------------------------------------------------------------------------------------------------------
const dnsLabel = { type: 'string', maxLength: 63, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' };
const dnsSubdomain = { type: 'string', maxLength: 253, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$' };
const labelMap = {
  type: 'object',
  propertyNames: { pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$' },
  additionalProperties: { type: 'string', maxLength: 63, pattern: '^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$' },
};
const stringMap = { type: 'object', additionalProperties: { type: 'string' } };
const quantity = { anyOf: [{ type: 'string', pattern: '^[0-9]+(\\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$' }, { type: 'integer', minimum: 0 }] };
const intOrPercent = { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string', pattern: '^[0-9]+%$' }] };
const portName = { type: 'string', maxLength: 15, pattern: '^(?=.*[a-z])[a-z0-9]([a-z0-9-]*[a-z0-9])?$' };
const strict = (properties: Obj, required: string[] = []) => ({ type: 'object', additionalProperties: false, required, properties });
const seccomp = strict({ type: { enum: ['RuntimeDefault', 'Localhost', 'Unconfined'] }, localhostProfile: { type: 'string' } }, ['type']);
const capability = { type: 'string', pattern: '^[A-Z][A-Z_]*$' };
const count = { type: 'integer', minimum: 0 };

const K8S_SCHEMA = {
  $id: 'k8s-subset',
  definitions: {
    metadata: strict({ name: dnsSubdomain, namespace: dnsLabel, labels: labelMap, annotations: stringMap }, ['name']),
    namespacedMetadata: { allOf: [{ $ref: '#/definitions/metadata' }, { type: 'object', required: ['namespace'] }] },
    probe: strict(
      {
        httpGet: strict(
          {
            path: { type: 'string', pattern: '^/' },
            port: { anyOf: [{ type: 'integer', minimum: 1, maximum: 65535 }, portName] },
            host: { type: 'string' },
            scheme: { enum: ['HTTP', 'HTTPS'] },
          },
          ['port'],
        ),
        initialDelaySeconds: count,
        periodSeconds: { type: 'integer', minimum: 1 },
        timeoutSeconds: { type: 'integer', minimum: 1 },
        successThreshold: { type: 'integer', minimum: 1 },
        failureThreshold: { type: 'integer', minimum: 1 },
      },
      ['httpGet'],
    ),
    envVar: {
      allOf: [
        strict(
          {
            name: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
            value: { type: 'string' },
            valueFrom: {
              type: 'object',
              additionalProperties: false,
              minProperties: 1,
              maxProperties: 1,
              properties: {
                fieldRef: strict({ fieldPath: { type: 'string' }, apiVersion: { type: 'string' } }, ['fieldPath']),
                configMapKeyRef: strict({ name: dnsSubdomain, key: { type: 'string' }, optional: { type: 'boolean' } }, ['name', 'key']),
                secretKeyRef: strict({ name: dnsSubdomain, key: { type: 'string' }, optional: { type: 'boolean' } }, ['name', 'key']),
              },
            },
          },
          ['name'],
        ),
        { not: { type: 'object', required: ['value', 'valueFrom'] } },
      ],
    },
    container: strict(
      {
        name: dnsLabel,
        image: { type: 'string', pattern: '^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9./_-]+:[A-Za-z0-9._-]+$' },
        imagePullPolicy: { enum: ['Always', 'IfNotPresent', 'Never'] },
        command: { type: 'array', items: { type: 'string' } },
        args: { type: 'array', items: { type: 'string' } },
        env: { type: 'array', items: { $ref: '#/definitions/envVar' } },
        envFrom: {
          type: 'array',
          items: strict({
            prefix: { type: 'string' },
            configMapRef: strict({ name: dnsSubdomain, optional: { type: 'boolean' } }, ['name']),
            secretRef: strict({ name: dnsSubdomain, optional: { type: 'boolean' } }, ['name']),
          }),
        },
        ports: {
          type: 'array',
          items: strict(
            {
              name: portName,
              containerPort: { type: 'integer', minimum: 1, maximum: 65535 },
              hostPort: { type: 'integer', minimum: 1, maximum: 65535 },
              protocol: { enum: ['TCP', 'UDP', 'SCTP'] },
            },
            ['containerPort'],
          ),
        },
        startupProbe: { $ref: '#/definitions/probe' },
        livenessProbe: { $ref: '#/definitions/probe' },
        readinessProbe: { $ref: '#/definitions/probe' },
        resources: strict({
          requests: { type: 'object', propertyNames: { enum: ['cpu', 'memory', 'ephemeral-storage'] }, additionalProperties: quantity },
          limits: { type: 'object', propertyNames: { enum: ['cpu', 'memory', 'ephemeral-storage'] }, additionalProperties: quantity },
        }),
        securityContext: strict({
          runAsUser: count,
          runAsGroup: count,
          runAsNonRoot: { type: 'boolean' },
          privileged: { type: 'boolean' },
          allowPrivilegeEscalation: { type: 'boolean' },
          readOnlyRootFilesystem: { type: 'boolean' },
          capabilities: strict({ add: { type: 'array', items: capability }, drop: { type: 'array', items: capability } }),
          seccompProfile: seccomp,
        }),
        volumeMounts: {
          type: 'array',
          items: strict(
            {
              name: dnsLabel,
              mountPath: { type: 'string', pattern: '^/' },
              readOnly: { type: 'boolean' },
              subPath: { type: 'string' },
              mountPropagation: { enum: ['None', 'HostToContainer', 'Bidirectional'] },
            },
            ['name', 'mountPath'],
          ),
        },
      },
      ['name', 'image'],
    ),
    volume: {
      allOf: [
        strict(
          {
            name: dnsLabel,
            configMap: strict({
              name: dnsSubdomain,
              items: { type: 'array', items: strict({ key: { type: 'string' }, path: { type: 'string', pattern: '^[^/]' }, mode: count }, ['key', 'path']) },
              defaultMode: count,
              optional: { type: 'boolean' },
            }),
            secret: strict({ secretName: dnsSubdomain, defaultMode: count, optional: { type: 'boolean' } }),
            emptyDir: strict({ medium: { enum: ['', 'Memory'] }, sizeLimit: quantity }),
            hostPath: strict(
              { path: { type: 'string', pattern: '^/' }, type: { enum: ['', 'DirectoryOrCreate', 'Directory', 'FileOrCreate', 'File', 'Socket', 'CharDevice', 'BlockDevice'] } },
              ['path'],
            ),
          },
          ['name'],
        ),
        { oneOf: ['configMap', 'secret', 'emptyDir', 'hostPath'].map((source) => ({ type: 'object', required: [source] })) },
      ],
    },
    podSpec: strict(
      {
        serviceAccountName: dnsSubdomain,
        automountServiceAccountToken: { type: 'boolean' },
        enableServiceLinks: { type: 'boolean' },
        hostNetwork: { type: 'boolean' },
        hostPID: { type: 'boolean' },
        dnsPolicy: { enum: ['ClusterFirst', 'ClusterFirstWithHostNet', 'Default', 'None'] },
        priorityClassName: dnsSubdomain,
        nodeSelector: stringMap,
        tolerations: {
          type: 'array',
          items: strict({
            key: { type: 'string' },
            operator: { enum: ['Exists', 'Equal'] },
            value: { type: 'string' },
            effect: { enum: ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] },
            tolerationSeconds: { type: 'integer' },
          }),
        },
        terminationGracePeriodSeconds: count,
        securityContext: strict({ seccompProfile: seccomp, fsGroup: count, runAsUser: count, runAsGroup: count, runAsNonRoot: { type: 'boolean' } }),
        containers: { type: 'array', minItems: 1, items: { $ref: '#/definitions/container' } },
        initContainers: { type: 'array', items: { $ref: '#/definitions/container' } },
        volumes: { type: 'array', items: { $ref: '#/definitions/volume' } },
      },
      ['containers'],
    ),
    Namespace: strict({ apiVersion: { const: 'v1' }, kind: { const: 'Namespace' }, metadata: { $ref: '#/definitions/metadata' } }, ['apiVersion', 'kind', 'metadata']),
    ServiceAccount: strict(
      { apiVersion: { const: 'v1' }, kind: { const: 'ServiceAccount' }, metadata: { $ref: '#/definitions/namespacedMetadata' }, automountServiceAccountToken: { type: 'boolean' } },
      ['apiVersion', 'kind', 'metadata'],
    ),
    ConfigMap: strict(
      { apiVersion: { const: 'v1' }, kind: { const: 'ConfigMap' }, metadata: { $ref: '#/definitions/namespacedMetadata' }, data: { type: 'object', propertyNames: { pattern: '^[-._a-zA-Z0-9]+$' }, additionalProperties: { type: 'string' } } },
      ['apiVersion', 'kind', 'metadata'],
    ),
    DaemonSet: strict(
      {
        apiVersion: { const: 'apps/v1' },
        kind: { const: 'DaemonSet' },
        metadata: { $ref: '#/definitions/namespacedMetadata' },
        spec: strict(
          {
            selector: strict({ matchLabels: labelMap }, ['matchLabels']),
            updateStrategy: strict({ type: { enum: ['RollingUpdate', 'OnDelete'] }, rollingUpdate: strict({ maxUnavailable: intOrPercent, maxSurge: intOrPercent }) }),
            minReadySeconds: count,
            revisionHistoryLimit: count,
            template: strict({ metadata: strict({ labels: labelMap, annotations: stringMap }), spec: { $ref: '#/definitions/podSpec' } }, ['metadata', 'spec']),
          },
          ['selector', 'template'],
        ),
      },
      ['apiVersion', 'kind', 'metadata', 'spec'],
    ),
    PodMonitor: strict(
      {
        apiVersion: { const: 'monitoring.coreos.com/v1' },
        kind: { const: 'PodMonitor' },
        metadata: { $ref: '#/definitions/namespacedMetadata' },
        spec: strict(
          {
            jobLabel: { type: 'string' },
            selector: strict({ matchLabels: labelMap }, ['matchLabels']),
            namespaceSelector: strict({ matchNames: { type: 'array', items: dnsLabel }, any: { type: 'boolean' } }),
            podMetricsEndpoints: {
              type: 'array',
              minItems: 1,
              items: strict({
                port: portName,
                path: { type: 'string', pattern: '^/' },
                interval: { type: 'string', pattern: '^[0-9]+(ms|s|m|h)$' },
                relabelings: {
                  type: 'array',
                  items: strict({
                    sourceLabels: { type: 'array', items: { type: 'string' } },
                    targetLabel: { type: 'string' },
                    action: { type: 'string' },
                    regex: { type: 'string' },
                    replacement: { type: 'string' },
                  }),
                },
              }),
            },
          },
          ['selector', 'podMetricsEndpoints'],
        ),
      },
      ['apiVersion', 'kind', 'metadata', 'spec'],
    ),
    ruleGroups: {
      type: 'array',
      minItems: 1,
      items: strict(
        {
          name: { type: 'string', minLength: 1 },
          interval: { type: 'string' },
          rules: {
            type: 'array',
            minItems: 1,
            items: strict(
              {
                alert: { type: 'string', pattern: '^[A-Z][A-Za-z0-9]+$' },
                expr: { type: 'string', minLength: 1 },
                for: { type: 'string', pattern: '^[0-9]+[smhd]$' },
                labels: strict({ severity: { enum: ['info', 'warning', 'critical'] } }, ['severity']),
                annotations: strict({ summary: { type: 'string', minLength: 1 }, description: { type: 'string', minLength: 1 }, runbook_url: { type: 'string' } }, ['summary', 'description']),
              },
              ['alert', 'expr', 'labels', 'annotations'],
            ),
          },
        },
        ['name', 'rules'],
      ),
    },
    PrometheusRule: strict(
      {
        apiVersion: { const: 'monitoring.coreos.com/v1' },
        kind: { const: 'PrometheusRule' },
        metadata: { $ref: '#/definitions/namespacedMetadata' },
        spec: strict({ groups: { $ref: '#/definitions/ruleGroups' } }, ['groups']),
      },
      ['apiVersion', 'kind', 'metadata', 'spec'],
    ),
    RulesFile: strict({ groups: { $ref: '#/definitions/ruleGroups' } }, ['groups']),
  },
};

const ajv = new Ajv({ allErrors: true, strict: true, allowMatchingProperties: true });
ajv.addSchema(K8S_SCHEMA);
function validate(kind: string, object: Obj): string[] {
  const fn = ajv.getSchema(`k8s-subset#/definitions/${kind}`);
  if (!fn) return [`no schema for kind ${kind}`];
  return fn(object) ? [] : (fn.errors ?? []).map((e: ErrorObject) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
}

// --------------------------------------------------------------------------------------------------------
// A small kustomize: resources (files and directories) and JSON 6902 patches, which is all this repo uses.
// --------------------------------------------------------------------------------------------------------
function pointer(path: string): string[] {
  return path.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function applyJsonPatch(target: Obj, ops: Obj[]): void {
  for (const op of ops) {
    const parts = pointer(op.path);
    const last = parts.pop()!;
    let parent: any = target;
    for (const part of parts) {
      parent = Array.isArray(parent) ? parent[Number(part)] : parent?.[part];
      if (parent === undefined) throw new Error(`patch path ${op.path}: ${part} does not exist`);
    }
    const exists = Array.isArray(parent) ? last === '-' || Number(last) < parent.length : last in parent;
    switch (op.op) {
      case 'test':
        if (JSON.stringify(parent[last]) !== JSON.stringify(op.value)) throw new Error(`patch test failed at ${op.path}: ${JSON.stringify(parent[last])}`);
        break;
      case 'add':
        if (Array.isArray(parent)) parent.splice(last === '-' ? parent.length : Number(last), 0, structuredClone(op.value));
        else parent[last] = structuredClone(op.value);
        break;
      case 'replace':
        if (!exists) throw new Error(`patch replace: ${op.path} does not exist`);
        parent[last] = structuredClone(op.value);
        break;
      case 'remove':
        if (!exists) throw new Error(`patch remove: ${op.path} does not exist`);
        if (Array.isArray(parent)) parent.splice(Number(last), 1);
        else delete parent[last];
        break;
      default:
        throw new Error(`unsupported patch op ${op.op}`);
    }
  }
}

function groupOf(apiVersion: string): { group: string; version: string } {
  const [a, b] = apiVersion.split('/');
  return b === undefined ? { group: '', version: a! } : { group: a!, version: b };
}

function kustomize(dir: string): Obj[] {
  const file = join(dir, 'kustomization.yaml');
  const [k] = loadYaml(file);
  expect(k?.apiVersion, file).toBe('kustomize.config.k8s.io/v1beta1');
  expect(k?.kind, file).toBe('Kustomization');
  const known = new Set(['apiVersion', 'kind', 'resources', 'patches']);
  for (const key of Object.keys(k!)) expect(known.has(key), `${relative(REPO, file)}: unsupported key ${key}`).toBe(true);
  const objects: Obj[] = [];
  for (const resource of k!.resources ?? []) {
    const path = join(dir, resource);
    expect(existsSync(path), `${relative(REPO, file)}: resource ${resource}`).toBe(true);
    if (statSync(path).isDirectory()) objects.push(...kustomize(path));
    else {
      // kustomize refuses files outside the kustomization's directory (its load restrictor).
      expect(relative(dir, path).startsWith('..'), `${relative(REPO, file)}: ${resource} is outside`).toBe(false);
      objects.push(...loadYaml(path));
    }
  }
  for (const patch of k!.patches ?? []) {
    const t = patch.target;
    const matches = objects.filter((o) => {
      const { group, version } = groupOf(o.apiVersion);
      return o.kind === t.kind && o.metadata?.name === t.name && (t.group ?? '') === group && (t.version === undefined || t.version === version);
    });
    expect(matches.length, `${relative(REPO, file)}: patch target ${JSON.stringify(t)}`).toBe(1);
    const ops = parseAllDocuments(patch.patch) as unknown as { toJS(): Obj[] }[];
    applyJsonPatch(matches[0]!, ops[0]!.toJS());
  }
  return objects;
}

// --------------------------------------------------------------------------------------------------------
const base = kustomize(K8S);
const overlays = Object.fromEntries(readdirSync(join(K8S, 'overlays')).sort().map((name) => [name, kustomize(join(K8S, 'overlays', name))]));
const only = (objects: Obj[], kind: string, name?: string): Obj => {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  expect(found.length, `${kind}${name ? `/${name}` : ''}`).toBe(1);
  return found[0]!;
};
const daemonSetOf = (objects: Obj[]) => only(objects, 'DaemonSet', 'nftops-watch');
const watchContainer = (ds: Obj): Obj => ds.spec.template.spec.containers.find((c: Obj) => c.name === 'watch');
const gitSyncContainer = (ds: Obj): Obj => ds.spec.template.spec.containers.find((c: Obj) => c.name === 'git-sync');
const watchJson = (objects: Obj[]): Obj => JSON.parse(only(objects, 'ConfigMap', 'nftops-watch').data['watch.json']);

/** A Kubernetes quantity of bytes (Ki/Mi/Gi or k/M/G suffixes) as a number. */
function bytes(quantity: string | number): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(quantity));
  if (!m) throw new Error(`not a quantity: ${quantity}`);
  const unit = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, k: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m[2] ?? ''] ?? 1;
  return Number(m[1]) * unit;
}

/** Expands $(VAR) the way the kubelet does in args, from the container's env (literal values and refs). */
function expandArgs(container: Obj, objects: Obj[], values: Record<string, string>): string[] {
  const env: Record<string, string> = {};
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.configMapKeyRef) {
      const cm = only(objects, 'ConfigMap', e.valueFrom.configMapKeyRef.name);
      env[e.name] = cm.data[e.valueFrom.configMapKeyRef.key];
    } else if (e.name in values) env[e.name] = values[e.name]!;
  }
  return (container.args ?? []).map((arg: string) =>
    arg.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (_m: string, name: string) => {
      if (!(name in env)) throw new Error(`$(${name}) in ${arg} is not defined in the container's env`);
      return env[name]!;
    }),
  );
}

function flagValue(args: string[], flag: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === flag) return args[i + 1];
    if (args[i]!.startsWith(`${flag}=`)) return args[i]!.slice(flag.length + 1);
  }
  return undefined;
}

/**
 * Writes the ConfigMap volumes the container mounts into a temporary root and points its args there, so that the
 * watcher's own config loader can read them: "--config=/etc/nftops/watch.json" becomes "--config=<tmp>/etc/...".
 */
function materialize(objects: Obj[], container: Obj, node: string): { root: string; args: string[] } {
  const root = tempDir();
  const volumes = daemonSetOf(objects).spec.template.spec.volumes;
  const mounts: string[] = [];
  for (const mount of container.volumeMounts) {
    const volume = volumes.find((v: Obj) => v.name === mount.name);
    if (!volume?.configMap) continue;
    const data = only(objects, 'ConfigMap', volume.configMap.name).data;
    mkdirSync(join(root, mount.mountPath), { recursive: true });
    for (const item of volume.configMap.items ?? Object.keys(data).map((key) => ({ key, path: key }))) {
      writeFileSync(join(root, mount.mountPath, item.path), data[item.key]);
    }
    mounts.push(mount.mountPath);
  }
  const args = expandArgs(container, objects, { NODE_NAME: node }).map((arg) => {
    const at = mounts.find((m) => arg.includes(`=${m}/`));
    return at ? arg.replace(`=${at}/`, `=${join(root, at)}/`) : arg;
  });
  return { root, args };
}

describe('Kubernetes manifests', () => {
  it('every YAML in deploy/kubernetes parses; every object has apiVersion, kind, metadata and validates against the schema subset', () => {
    const files = yamlFiles(K8S);
    expect(files.length).toBeGreaterThan(4);
    for (const file of files) {
      for (const doc of loadYaml(file)) {
        const where = relative(REPO, file);
        expect(typeof doc.apiVersion, `${where}: apiVersion`).toBe('string');
        expect(typeof doc.kind, `${where}: kind`).toBe('string');
        if (doc.kind === 'Kustomization') continue; // checked by kustomize() above
        expect(typeof doc.metadata?.name, `${where}: metadata.name`).toBe('string');
        expect(validate(doc.kind, doc), `${where}: ${doc.kind}/${doc.metadata.name}`).toEqual([]);
      }
    }
  });

  it('the base and every overlay build, and everything they produce validates', () => {
    expect(Object.keys(overlays)).toEqual(['metrics', 'pod-netns', 'signed']);
    for (const [name, objects] of [['base', base], ...Object.entries(overlays)] as [string, Obj[]][]) {
      expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort(), name).toEqual(
        [
          'ConfigMap/nftops-git-sync',
          ...(name === 'signed' ? ['ConfigMap/nftops-public-key'] : []),
          'ConfigMap/nftops-watch',
          'DaemonSet/nftops-watch',
          'Namespace/nftops-system',
          'ServiceAccount/nftops-watch',
        ],
      );
      for (const o of objects) {
        expect(validate(o.kind, o), `${name}: ${o.kind}/${o.metadata.name}`).toEqual([]);
        if (o.kind !== 'Namespace') expect(o.metadata.namespace, `${name}: ${o.kind}/${o.metadata.name}`).toBe('nftops-system');
      }
      const ns = only(objects, 'Namespace');
      // hostNetwork, hostPath and NET_ADMIN are refused by the "baseline" Pod Security level.
      expect(ns.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('privileged');
    }
  });

  it('the DaemonSet: host network, one node at a time, selector, service account, critical priority', () => {
    for (const objects of [base, ...Object.values(overlays)]) {
      const ds = daemonSetOf(objects);
      const pod = ds.spec.template.spec;
      expect(pod.hostNetwork).toBe(true);
      expect(ds.spec.updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } });
      for (const [key, value] of Object.entries(ds.spec.selector.matchLabels)) expect(ds.spec.template.metadata.labels[key]).toBe(value);
      expect(pod.serviceAccountName).toBe(only(objects, 'ServiceAccount').metadata.name);
      expect(pod.automountServiceAccountToken).toBe(false);
      expect(pod.priorityClassName).toBe('system-node-critical');
      expect(pod.tolerations).toContainEqual({ operator: 'Exists' });
      // A running nft may take --nft-timeout to finish after SIGTERM.
      const timeout = Number(/^(\d+)s$/.exec(watchJson(objects).nftTimeout)![1]);
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(timeout);
      expect(pod.securityContext.seccompProfile.type).toBe('RuntimeDefault');
      expect(pod.containers.map((c: Obj) => c.name)).toEqual(['watch', 'git-sync']);
      for (const c of pod.containers) {
        expect(c.resources.requests.cpu, c.name).toBeDefined();
        expect(c.resources.requests.memory, c.name).toBeDefined();
        expect(c.resources.limits.memory, c.name).toBeDefined();
        expect(c.image, c.name).not.toMatch(/:latest$/);
        expect(c.securityContext.readOnlyRootFilesystem, c.name).toBe(true);
        expect(c.securityContext.allowPrivilegeEscalation, c.name).toBe(false);
        expect(c.securityContext.privileged, c.name).toBe(false);
        expect(c.securityContext.capabilities.drop, c.name).toEqual(['ALL']);
      }
    }
  });

  it('capabilities: NET_ADMIN only; SYS_ADMIN and /var/run/netns (HostToContainer) only in the pod-netns overlay; git-sync runs as non-root with none', () => {
    const caps = (objects: Obj[]) => watchContainer(daemonSetOf(objects)).securityContext.capabilities.add;
    expect(caps(base)).toEqual(['NET_ADMIN']);
    expect(caps(overlays.metrics!)).toEqual(['NET_ADMIN']);
    expect(caps(overlays.signed!)).toEqual(['NET_ADMIN']);
    expect(caps(overlays['pod-netns']!)).toEqual(['NET_ADMIN', 'SYS_ADMIN']);
    const netnsMount = (objects: Obj[]) => watchContainer(daemonSetOf(objects)).volumeMounts.find((m: Obj) => m.mountPath === '/var/run/netns');
    expect(netnsMount(base)).toBeUndefined();
    expect(netnsMount(overlays['pod-netns']!)).toEqual({ name: 'netns', mountPath: '/var/run/netns', readOnly: true, mountPropagation: 'HostToContainer' });
    const volume = daemonSetOf(overlays['pod-netns']!).spec.template.spec.volumes.find((v: Obj) => v.name === 'netns');
    expect(volume.hostPath.path).toBe('/var/run/netns');
    // The watcher runs nft and nsenter as root (see the Containerfile for why); git-sync does not need root.
    const watch = watchContainer(daemonSetOf(base));
    expect(watch.securityContext.runAsUser).toBe(0);
    const gitSync = gitSyncContainer(daemonSetOf(base));
    expect(gitSync.securityContext.runAsNonRoot).toBe(true);
    expect(gitSync.securityContext.runAsUser).toBeGreaterThan(0);
    expect(gitSync.securityContext.capabilities.add).toBeUndefined();
  });

  it('volume mounts and volumes are consistent', () => {
    for (const objects of [base, ...Object.values(overlays)]) {
      const pod = daemonSetOf(objects).spec.template.spec;
      const volumes = new Map<string, Obj>(pod.volumes.map((v: Obj) => [v.name, v]));
      expect(volumes.size, 'volume names are unique').toBe(pod.volumes.length);
      const used = new Set<string>();
      for (const c of pod.containers) {
        const paths = c.volumeMounts.map((m: Obj) => m.mountPath);
        expect(new Set(paths).size, `${c.name}: mount paths are unique`).toBe(paths.length);
        for (const m of c.volumeMounts) {
          expect(volumes.has(m.name), `${c.name}: volume ${m.name}`).toBe(true);
          expect(m.subPath, `${c.name}: subPath mounts never see updates`).toBeUndefined();
          used.add(m.name);
        }
      }
      expect([...volumes.keys()].filter((v) => !used.has(v)), 'unused volumes').toEqual([]);
      for (const v of volumes.values()) {
        if (v.configMap) {
          const cm = only(objects, 'ConfigMap', v.configMap.name);
          for (const item of v.configMap.items ?? []) expect(cm.data[item.key], `${v.name}: key ${item.key}`).toBeDefined();
        }
      }
      // The checkout is shared: git-sync writes it, the watcher only reads it.
      const git = (c: Obj) => c.volumeMounts.find((m: Obj) => m.name === 'git');
      expect(git(gitSyncContainer(daemonSetOf(objects))).readOnly).toBeUndefined();
      expect(git(watchContainer(daemonSetOf(objects))).readOnly).toBe(true);
      expect(volumes.get('git')!.emptyDir).toBeDefined();
      // Last good copies survive restarts and reboots: a hostPath at the state directory the watcher uses.
      const state = watchContainer(daemonSetOf(objects)).volumeMounts.find((m: Obj) => m.name === 'state');
      expect(state.mountPath).toBe(watchJson(objects).stateDir);
      expect(state.mountPath).toBe(DEFAULTS.stateDir);
      expect(volumes.get('state')!.hostPath).toEqual({ path: DEFAULTS.stateDir, type: 'DirectoryOrCreate' });
      // A read-only root: the watcher gets a writable /tmp, where it spools each transaction for nft (artifacts
      // up to maxArtifactBytes each); a full emptyDir would get the pod evicted.
      const tmp = watchContainer(daemonSetOf(objects)).volumeMounts.find((m: Obj) => m.mountPath === '/tmp');
      const tmpVolume = volumes.get(tmp.name)!.emptyDir;
      expect(tmpVolume.medium ?? '', 'the spool counts against the memory limit on a memory emptyDir').toBe('');
      expect(bytes(tmpVolume.sizeLimit)).toBeGreaterThanOrEqual(2 * DEFAULTS.maxArtifactBytes);
      // Every env reference resolves.
      for (const c of pod.containers) {
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.configMapKeyRef;
          if (ref) expect(only(objects, 'ConfigMap', ref.name).data[ref.key], `${c.name}: ${e.name}`).toBeDefined();
          if (e.valueFrom?.fieldRef) expect(['spec.nodeName', 'status.podIP', 'status.hostIP', 'metadata.name', 'metadata.namespace']).toContain(e.valueFrom.fieldRef.fieldPath);
        }
        for (const from of c.envFrom ?? []) only(objects, 'ConfigMap', from.configMapRef.name);
      }
    }
  });

  it("the watcher's args use only flags nftops-watch accepts (its own parser, and --help of the built binary)", () => {
    const help = spawnSync(process.execPath, [WATCH_BIN, '--help'], { encoding: 'utf8' });
    expect(help.status, `${help.stderr} (run npm run build first)`).toBe(0);
    for (const objects of [base, ...Object.values(overlays)]) {
      const watch = watchContainer(daemonSetOf(objects));
      expect(watch.command, 'the image entrypoint is nftops-watch').toBeUndefined();
      const args = expandArgs(watch, objects, { NODE_NAME: 'edge-1' });
      // The watcher's own parser, strict: an unknown flag or a missing value throws.
      expect(() => parseArgs({ args, options: RUN_OPTIONS, allowPositionals: false, strict: true })).not.toThrow();
      for (const arg of args) {
        const flag = /^(--?[a-z-]+)/.exec(arg)![1]!;
        expect(help.stdout, `${flag} in nftops-watch --help`).toContain(`${flag} `);
      }
    }
  });

  it('the config file (ConfigMap) is accepted by the watcher, and probes hit its real /healthz and /readyz on the port it listens on', async () => {
    for (const objects of [base, ...Object.values(overlays)]) {
      const watch = watchContainer(daemonSetOf(objects));
      const { root: dir, args } = materialize(objects, watch, 'edge-1');
      const { values } = parseArgs({ args, options: RUN_OPTIONS, allowPositionals: false, strict: true });
      if (values['public-key'] !== undefined) {
        // The placeholder key is refused at start (the agent never runs unverified by mistake); a real one is read.
        expect(() => buildConfig(values, dir)).toThrow(/is not a public key/);
        writeFileSync(values['public-key'], generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }));
      }
      const built = buildConfig(values, dir);
      expect(built.publicKey !== undefined, 'only the signed overlay verifies signatures').toBe(values['public-key'] !== undefined);
      expect(built.sources).toEqual([{ path: '/git/current/examples/fleet/nodes/edge-1/rendered' }]);
      expect(built.stateDir).toBe(DEFAULTS.stateDir);
      expect(built.logFormat).toBe('json');
      const port = watch.ports.find((p: Obj) => p.name === 'status');
      expect(built.listen?.port).toBe(port.containerPort);
      expect(`127.0.0.1:${port.containerPort}`).toBe(DEFAULTS.listen);
      for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
        const get = watch[probe].httpGet;
        expect(get.host, probe).toBe('127.0.0.1');
        expect(get.port === port.name || get.port === port.containerPort, probe).toBe(true);
        // 127.0.0.1 must be one of the addresses the server is bound to (0.0.0.0 includes it).
        expect(['127.0.0.1', '0.0.0.0']).toContain(built.listen?.host);
      }
      expect(watch.livenessProbe.httpGet.path).toBe('/healthz');
      expect(watch.readinessProbe.httpGet.path).toBe('/readyz');
    }
    expect(watchJson(base).listen).toBe('127.0.0.1:9780');
    expect(watchJson(overlays.metrics!).listen).toBe('0.0.0.0:9780');
    expect({ ...watchJson(overlays.metrics!), listen: 'x' }, 'the metrics overlay changes only listen').toEqual({ ...watchJson(base), listen: 'x' });

    // The real status server answers the probe paths.
    let ready = false;
    const metrics = new WatchMetrics();
    const { server } = await startStatusServer({ ready: () => ready, status: () => ({}) as StatusDocument, metrics }, '127.0.0.1', 0);
    try {
      const port = (server.address() as { port: number }).port;
      const get = (path: string) =>
        new Promise<number>((resolve, reject) => {
          request({ host: '127.0.0.1', port, path }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          })
            .on('error', reject)
            .end();
        });
      const watch = watchContainer(daemonSetOf(base));
      expect(await get(watch.livenessProbe.httpGet.path)).toBe(200);
      expect(await get(watch.startupProbe.httpGet.path)).toBe(200);
      expect(await get(watch.readinessProbe.httpGet.path)).toBe(503);
      ready = true;
      expect(await get(watch.readinessProbe.httpGet.path)).toBe(200);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("the watcher accepts git-sync's files: owner is git-sync's uid, and nothing makes them group-writable", () => {
    for (const objects of [base, ...Object.values(overlays)]) {
      const ds = daemonSetOf(objects);
      const config = watchJson(objects);
      expect(config.owner).toBe(gitSyncContainer(ds).securityContext.runAsUser);
      expect(config.allowWritable ?? false).toBe(false);
      expect(gitSyncContainer(ds).args.join(' ')).not.toContain('--group-write');
      expect(only(objects, 'ConfigMap', 'nftops-git-sync').data.GITSYNC_GROUP_WRITE).toBeUndefined();
      expect(ds.spec.template.spec.securityContext.fsGroup, 'fsGroup would hand the checkout to a group').toBeUndefined();
    }
  });

  it('each node reads its own directory of examples/fleet through git-sync’s link', () => {
    const ds = daemonSetOf(base);
    const watch = watchContainer(ds);
    const gitSync = gitSyncContainer(ds);
    const root = flagValue(gitSync.args, '--root');
    const link = flagValue(gitSync.args, '--link');
    expect(root).toBe(gitSync.volumeMounts.find((m: Obj) => m.name === 'git').mountPath);
    expect(root).toBe(watch.volumeMounts.find((m: Obj) => m.name === 'git').mountPath);
    const syncEnv = only(base, 'ConfigMap', 'nftops-git-sync').data;
    expect(syncEnv.GITSYNC_REPO).toMatch(/^(https:\/\/|ssh:\/\/|git@)/);
    expect(syncEnv.GITSYNC_REF).toBeTruthy();
    const nodes = readdirSync(FLEET_NODES).filter((n) => statSync(join(FLEET_NODES, n)).isDirectory()).sort();
    expect(nodes).toEqual(['app-1', 'edge-1', 'edge-2']);
    for (const node of nodes) {
      const dir = flagValue(expandArgs(watch, base, { NODE_NAME: node }), '--dir')!;
      const checkout = `${root}/${link}/`;
      expect(dir.startsWith(checkout), dir).toBe(true);
      const inRepo = join(REPO, dir.slice(checkout.length));
      expect(normalize(inRepo)).toBe(join(FLEET_NODES, node, 'rendered'));
      const nft = readdirSync(inRepo).filter((f) => f.endsWith('.nft'));
      expect(nft.length, `${node}: artifacts for the host namespace`).toBeGreaterThan(0);
      // .gitkeep: a node whose last artifact is deleted sees an empty directory (pruned), not a missing one.
      expect(existsSync(join(inRepo, '.gitkeep')), `${node}/rendered/.gitkeep`).toBe(true);
    }
  });
});

describe('the DaemonSet command line against examples/fleet, with the real watcher and nft', () => {
  it.runIf(kernelAvailable())('nft --check accepts every node’s artifacts, pod namespaces included (dry run, throwaway namespaces)', () => {
    const objects = overlays['pod-netns']!;
    const watch = watchContainer(daemonSetOf(objects));
    for (const node of readdirSync(FLEET_NODES).sort()) {
      const state = tempDir();
      const rendered = join(FLEET_NODES, node, 'rendered');
      // The checkout here is this repository, owned by whoever cloned it, not by git-sync's uid: --owner and
      // --allow-writable (flags win over the config file) stand in for git-sync's files.
      const args = [
        ...materialize(objects, watch, node).args.map((arg) => arg.replace('=/git/current/', `=${REPO}`)),
        `--owner=${statSync(join(rendered, 'services.nft')).uid}`,
        '--allow-writable',
      ];
      const namespaces = readdirSync(rendered, { withFileTypes: true })
        .filter((e) => e.isDirectory() && !e.name.startsWith('.') && e.name !== 'host')
        .map((e) => e.name);
      // A private mount namespace with its own /run: the pod namespaces exist only for this run.
      const script = [
        'set -e',
        'mount -t tmpfs tmpfs /run',
        ...namespaces.map((ns) => `ip netns add ${ns}`),
        `exec "${process.execPath}" "${WATCH_BIN}" "$@"`,
      ].join('\n');
      const run = spawnSync(
        'unshare',
        ['--mount', '--net', '--', 'sh', '-c', script, 'sh', ...args, `--state-dir=${state}`, '--listen=none', '--once', '--dry-run', '--log-format=json'],
        { encoding: 'utf8', timeout: 60_000 },
      );
      expect(run.status, `${node}: ${run.stderr}`).toBe(0);
      const checked = run.stderr
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
        .filter((e) => e.event === 'check.ok')
        .map((e) => e.artifact)
        .sort();
      const expected = [
        ...readdirSync(rendered).filter((f) => f.endsWith('.nft')).map((f) => `host/${f}`),
        ...namespaces.flatMap((ns) => readdirSync(join(rendered, ns)).filter((f) => f.endsWith('.nft')).map((f) => `${ns}/${f}`)),
      ].sort();
      expect(checked, node).toEqual(expected);
    }
  });
});

// --------------------------------------------------------------------------------------------------------
// Containerfile
// --------------------------------------------------------------------------------------------------------
interface Instruction {
  readonly op: string;
  readonly args: string;
  readonly stage: string;
}

function parseContainerfile(text: string): Instruction[] {
  const lines = text.split('\n');
  const out: Instruction[] = [];
  const argDefaults: Record<string, string> = {};
  let stage = '';
  let current = '';
  for (const raw of lines) {
    if (/^\s*#/.test(raw) && current === '') continue;
    if (/^\s*#/.test(raw)) continue; // comment lines inside a continuation are dropped, as the builder does
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    current += line;
    const m = /^\s*([A-Za-z]+)\s+(.*)$/s.exec(current);
    current = '';
    if (!m) continue;
    const op = m[1]!.toUpperCase();
    let args = m[2]!.trim();
    if (op === 'ARG' && stage === '') {
      const [name, value] = args.split('=');
      argDefaults[name!] = value ?? '';
    }
    args = args.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (whole, name: string) => (stage === '' || op === 'FROM' ? (argDefaults[name] ?? whole) : whole));
    if (op === 'FROM') stage = /\sAS\s+(\S+)/i.exec(args)?.[1] ?? args;
    out.push({ op, args, stage });
  }
  return out;
}

/** .dockerignore semantics: the last pattern matching the path or one of its parent directories decides. */
function dockerIgnored(patterns: string[], path: string): boolean {
  const toRegex = (glob: string) =>
    new RegExp(
      `^${glob
        .replace(/^\/+/, '')
        .replace(/[.+^$()|{}]/g, '\\$&')
        .replace(/\*\*\//g, '\u0000')
        .replace(/\*\*/g, '.*')
        .replace(/\*/g, '[^/]*')
        .replace(/\?/g, '[^/]')
        .replace(/\u0000/g, '(?:.*/)?')}$`,
    );
  const parts = path.split('/');
  const candidates = parts.map((_p, i) => parts.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const re = toRegex(negate ? raw.slice(1) : raw);
    if (candidates.some((c) => re.test(c))) ignored = !negate;
  }
  return ignored;
}

function copySources(args: string): { from: string | undefined; sources: string[]; dest: string } {
  const words = args.split(/\s+/);
  let from: string | undefined;
  while (words[0]?.startsWith('--')) {
    const flag = words.shift()!;
    if (flag.startsWith('--from=')) from = flag.slice('--from='.length);
  }
  const dest = words.pop()!;
  return { from, sources: words, dest };
}

describe('Containerfile', () => {
  const file = ['Containerfile', 'Dockerfile'].map((f) => join(REPO, f)).find((f) => existsSync(f))!;
  const instructions = parseContainerfile(readFileSync(file, 'utf8'));
  const ignore = readFileSync(join(REPO, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const stages = instructions.filter((i) => i.op === 'FROM');

  it('builds on Node 20 slim (Debian) and installs nftables, iproute2 and nsenter in the runtime', () => {
    expect(stages.length).toBe(2);
    for (const s of stages) expect(s.args).toMatch(/^(docker\.io\/library\/)?node:20(-bookworm)?-slim\b/);
    const runtime = stages.at(-1)!.stage;
    const apt = instructions.filter((i) => i.stage === runtime && i.op === 'RUN' && i.args.includes('apt-get install')).map((i) => i.args).join(' ');
    for (const pkg of ['nftables', 'iproute2', 'util-linux']) expect(apt).toMatch(new RegExp(`\\b${pkg}\\b`));
    expect(apt).toContain('--no-install-recommends');
    expect(apt).toContain('rm -rf /var/lib/apt/lists/*');
    const build = instructions.filter((i) => i.stage === stages[0]!.stage && i.op === 'RUN').map((i) => i.args).join(' ');
    expect(build).toContain('npm ci');
    expect(build).toContain('npm run build');
    expect(build).toContain('npm prune --omit=dev');
  });

  it('copies only paths that exist and that .dockerignore lets into the build context', () => {
    const copies = instructions.filter((i) => i.op === 'COPY').map((i) => ({ ...copySources(i.args), stage: i.stage }));
    const fromContext = copies.filter((c) => c.from === undefined);
    expect(fromContext.length).toBeGreaterThan(3);
    for (const copy of fromContext) {
      for (const source of copy.sources) {
        expect(existsSync(join(REPO, source)), `${source} exists`).toBe(true);
        expect(dockerIgnored(ignore, source), `${source} is in the build context`).toBe(false);
      }
    }
    // What the build needs is in the context; host build output and dependencies are not.
    for (const path of ['packages/watcher/src/index.ts', 'packages/compiler/src/compile.ts', 'schemas/v1alpha1/artifact.schema.json', 'tools/sync-schemas.mjs']) {
      expect(dockerIgnored(ignore, path), path).toBe(false);
    }
    for (const path of ['node_modules/yaml/package.json', 'packages/watcher/dist/index.js', 'packages/cli/node_modules/x', 'packages/watcher/tests/kernel.test.ts', '.git/HEAD', 'examples/dual-stack/web.yaml', 'tools/start.mjs']) {
      expect(dockerIgnored(ignore, path), path).toBe(true);
    }
    // npm ci needs the package.json of every workspace in package-lock.json.
    const workspaces = readdirSync(join(REPO, 'packages')).filter((p) => existsSync(join(REPO, 'packages', p, 'package.json'))).sort();
    const copiedManifests = fromContext.flatMap((c) => c.sources).filter((s) => /^packages\/[^/]+\/package\.json$/.test(s)).map((s) => s.split('/')[1]).sort();
    expect(copiedManifests).toEqual(workspaces);
    // Files copied from the build stage are build outputs of this repository (after npm run build).
    for (const copy of copies.filter((c) => c.from !== undefined)) {
      expect(copy.from).toBe(stages[0]!.stage);
      for (const source of copy.sources) {
        expect(source.startsWith('/src/'), source).toBe(true);
        expect(existsSync(join(REPO, source.slice('/src/'.length))), `${source} (after npm run build)`).toBe(true);
      }
    }
  });

  it('the runtime holds the watcher and every workspace package it imports; the entrypoint is nftops-watch', () => {
    const runtime = stages.at(-1)!.stage;
    const copied = new Set(
      instructions
        .filter((i) => i.stage === runtime && i.op === 'COPY')
        .flatMap((i) => copySources(i.args).sources)
        .map((s) => s.replace(/^\/src\//, '')),
    );
    const needed = new Set<string>();
    const visit = (pkg: string) => {
      if (needed.has(pkg)) return;
      needed.add(pkg);
      const manifest = JSON.parse(readFileSync(join(REPO, 'packages', pkg, 'package.json'), 'utf8'));
      for (const dep of Object.keys(manifest.dependencies ?? {})) if (dep.startsWith('@nftops/')) visit(dep.slice('@nftops/'.length));
    };
    visit('watcher');
    for (const pkg of needed) {
      expect(copied.has(`packages/${pkg}/package.json`), `${pkg}/package.json`).toBe(true);
      expect(copied.has(`packages/${pkg}/dist`), `${pkg}/dist`).toBe(true);
    }
    expect(copied.has('packages/watcher/bin')).toBe(true);
    expect(copied.has('node_modules')).toBe(true);
    const entrypoint = instructions.filter((i) => i.op === 'ENTRYPOINT').at(-1)!;
    expect(JSON.parse(entrypoint.args)).toEqual(['nftops-watch']);
    const link = instructions.find((i) => i.stage === runtime && i.op === 'RUN' && i.args.includes('/usr/local/bin/nftops-watch'))!;
    const target = /ln -s (\S+) \/usr\/local\/bin\/nftops-watch/.exec(link.args)![1]!;
    const workdir = instructions.filter((i) => i.stage === runtime && i.op === 'WORKDIR').at(-1)!.args;
    expect(target.startsWith(`${workdir}/`)).toBe(true);
    const inRepo = join(REPO, target.slice(workdir.length + 1));
    expect(existsSync(inRepo)).toBe(true);
    expect(statSync(inRepo).mode & 0o111, 'the bin is executable').not.toBe(0);
    // Root, explained in the file; the DaemonSet bounds it (drop ALL, NET_ADMIN, read-only root).
    expect(instructions.filter((i) => i.op === 'USER').at(-1)!.args).toBe('0:0');
    expect(readFileSync(file, 'utf8')).toMatch(/no ambient capabilities/);
  });
});

// --------------------------------------------------------------------------------------------------------
// Prometheus
// --------------------------------------------------------------------------------------------------------
const AGGREGATIONS = new Set(['sum', 'min', 'max', 'avg', 'count', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'count_values', 'group']);
const FUNCTIONS = new Set([
  'rate', 'irate', 'increase', 'delta', 'idelta', 'deriv', 'predict_linear', 'histogram_quantile', 'absent', 'absent_over_time',
  'time', 'timestamp', 'vector', 'scalar', 'changes', 'resets', 'clamp_min', 'clamp_max', 'abs', 'ceil', 'floor', 'round',
  'max_over_time', 'min_over_time', 'avg_over_time', 'sum_over_time', 'count_over_time', 'last_over_time', 'label_replace', 'sort', 'sort_desc',
]);
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
/** Labels every scraped series has (Prometheus and the PodMonitor add them), plus the histogram bucket label. */
const TARGET_LABELS = new Set(['job', 'instance', 'namespace', 'pod', 'container', 'node', 'endpoint']);
/** Metrics from elsewhere, on purpose: Prometheus' own `up`, kube-state-metrics' DaemonSet status. */
const EXTERNAL: Record<string, string[]> = {
  up: [],
  kube_daemonset_status_number_ready: ['daemonset', 'namespace'],
  kube_daemonset_status_desired_number_scheduled: ['daemonset', 'namespace'],
};

interface PromQuery {
  metrics: { name: string; matchers: { label: string; op: string; value: string }[] }[];
  grouping: string[];
  topBy: string[] | undefined;
}

/** A PromQL reader for what alert rules use: checks tokens, brackets, functions and matchers; collects names. */
function readPromQL(expr: string): PromQuery {
  const token = /\s+|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\[[0-9]+[smhdwy](?::[0-9]*[smhdwy]?)?\]|[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?|[A-Za-z_:][A-Za-z0-9_:]*|==|!=|=~|!~|>=|<=|[-+*/%^<>=(){},]/y;
  const tokens: string[] = [];
  for (let at = 0; at < expr.length; ) {
    token.lastIndex = at;
    const m = token.exec(expr);
    if (!m) throw new Error(`cannot read ${JSON.stringify(expr.slice(at, at + 20))} in ${expr}`);
    if (m[0].trim() !== '') tokens.push(m[0]);
    at = token.lastIndex;
  }
  const stack: string[] = [];
  for (const t of tokens) {
    if (t === '(' || t === '{') stack.push(t);
    if (t === ')' && stack.pop() !== '(') throw new Error(`unbalanced ) in ${expr}`);
    if (t === '}' && stack.pop() !== '{') throw new Error(`unbalanced } in ${expr}`);
  }
  if (stack.length > 0) throw new Error(`unclosed ${stack.join('')} in ${expr}`);
  const out: PromQuery = { metrics: [], grouping: [], topBy: undefined };
  const ident = (t: string | undefined) => t !== undefined && /^[A-Za-z_:][A-Za-z0-9_:]*$/.test(t);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (!ident(t)) continue;
    if (['by', 'without', 'on', 'ignoring', 'group_left', 'group_right'].includes(t)) {
      if (tokens[i + 1] !== '(') {
        if (t === 'group_left' || t === 'group_right') continue;
        throw new Error(`${t} without a label list in ${expr}`);
      }
      const labels: string[] = [];
      let j = i + 2;
      for (; tokens[j] !== ')'; j++) if (tokens[j] !== ',') labels.push(tokens[j]!);
      for (const l of labels) if (!ident(l)) throw new Error(`bad label ${l} in ${expr}`);
      out.grouping.push(...labels);
      if (t === 'by' && i === 1 && AGGREGATIONS.has(tokens[0]!)) out.topBy = labels;
      i = j;
      continue;
    }
    if (KEYWORDS.has(t)) continue;
    if (tokens[i + 1] === '(' || (AGGREGATIONS.has(t) && (tokens[i + 1] === 'by' || tokens[i + 1] === 'without'))) {
      if (!AGGREGATIONS.has(t) && !FUNCTIONS.has(t)) throw new Error(`unknown function ${t} in ${expr}`);
      continue;
    }
    const metric = { name: t, matchers: [] as PromQuery['metrics'][number]['matchers'] };
    if (tokens[i + 1] === '{') {
      let j = i + 2;
      while (tokens[j] !== '}') {
        const [label, op, value] = [tokens[j], tokens[j + 1], tokens[j + 2]];
        if (!ident(label) || !['=', '!=', '=~', '!~'].includes(op!) || !/^["']/.test(value ?? '')) throw new Error(`bad matcher at ${label} ${op} ${value} in ${expr}`);
        metric.matchers.push({ label: label!, op: op!, value: JSON.parse(value!.startsWith("'") ? `"${value!.slice(1, -1)}"` : value!) });
        j += 3;
        if (tokens[j] === ',') j++;
      }
      i = j;
    }
    out.metrics.push(metric);
  }
  return out;
}

describe('Prometheus alert rules', () => {
  const rulesFile = loadYaml(join(PROM, 'nftops-alerts.yaml'));
  const rules: Obj[] = rulesFile[0]!.groups.flatMap((g: Obj) => g.rules);
  const metricsSource = readFileSync(join(REPO, 'packages/watcher/src/metrics.ts'), 'utf8');
  const registry = new WatchMetrics({ processMetrics: true }).registry;
  const real = new Map<string, { type: string; labels: string[] }>(
    registry.getMetricsAsArray().map((m: any) => [m.name as string, { type: m.type as string, labels: (m.labelNames ?? []) as string[] }]),
  );
  /** The watcher metric a series name belongs to (histograms expose _bucket, _count and _sum). */
  const watcherMetric = (name: string) => {
    if (real.has(name)) return { base: name, ...real.get(name)!, suffix: '' };
    const m = /^(.*)_(bucket|count|sum)$/.exec(name);
    if (m && ['histogram', 'summary'].includes(real.get(m[1]!)?.type ?? '')) return { base: m[1]!, ...real.get(m[1]!)!, suffix: m[2]! };
    return undefined;
  };
  const LABEL_VALUES: Record<string, string[]> = {
    result: ['success', 'rejected', 'invalid', 'error', 'checked'],
    trigger: ['startup', 'event', 'interval', 'signal', 'retry', 'once', 'manual'],
    // The watcher's error codes, from the WatchErrorCode union.
    code: [...readFileSync(join(REPO, 'packages/watcher/src/errors.ts'), 'utf8').matchAll(/\|\s*'(WATCH_[A-Z_]+)'/g)].map((m) => m[1]!),
  };

  it('the rules file and the PrometheusRule validate, and hold the same groups', () => {
    expect(rulesFile.length).toBe(1);
    expect(validate('RulesFile', rulesFile[0]!)).toEqual([]);
    const [pr] = loadYaml(join(PROM, 'prometheusrule.yaml'));
    expect(validate('PrometheusRule', pr!)).toEqual([]);
    expect(pr!.spec.groups).toEqual(rulesFile[0]!.groups);
    const names = rules.map((r) => r.alert);
    expect(new Set(names).size).toBe(names.length);
  });

  it('cover apply failures, drift repairs, stale rules and an agent down or not ready', () => {
    const uses = (metric: string) => rules.filter((r) => r.expr.includes(metric)).map((r) => r.alert);
    expect(uses('nftops_watch_applies_total').length).toBeGreaterThanOrEqual(2);
    expect(uses('nftops_watch_drift_repairs_total').length).toBeGreaterThanOrEqual(1);
    expect(uses('nftops_watch_artifact_failing').length).toBeGreaterThanOrEqual(1);
    expect(uses('nftops_watch_reconcile_duration_seconds_count').length).toBeGreaterThanOrEqual(1);
    expect(uses('nftops_watch_ready').length).toBeGreaterThanOrEqual(1);
    expect(uses('up{job="nftops-watch"}').length).toBeGreaterThanOrEqual(1);
    expect(uses('WATCH_SIGNATURE_INVALID').length).toBeGreaterThanOrEqual(1);
    expect(uses('nftops_watch_state_write_failures_total').length).toBeGreaterThanOrEqual(1);
    expect(LABEL_VALUES.code).toContain('WATCH_SIGNATURE_MISSING');
  });

  it("every metric an expression reads is the watcher's real metric (or named external), with real labels and label values", () => {
    for (const rule of rules) {
      const q = readPromQL(rule.expr);
      expect(q.metrics.length, rule.alert).toBeGreaterThan(0);
      const available = new Set(TARGET_LABELS);
      for (const { name, matchers } of q.metrics) {
        const w = watcherMetric(name);
        let labels: string[];
        if (w) {
          // The name is spelled out in metrics.ts (prom-client's process metrics come from collectDefaultMetrics).
          if (!w.base.startsWith('nftops_watch_process_') && !w.base.startsWith('nftops_watch_nodejs_')) {
            expect(metricsSource, `${rule.alert}: ${w.base} in metrics.ts`).toContain(`name: '${w.base}'`);
          }
          labels = [...w.labels, ...(w.suffix === 'bucket' ? ['le'] : [])];
        } else {
          expect(Object.keys(EXTERNAL), `${rule.alert}: ${name} is neither a watcher metric nor a known external one`).toContain(name);
          labels = EXTERNAL[name]!;
        }
        labels.forEach((l) => available.add(l));
        for (const m of matchers) {
          expect([...TARGET_LABELS, ...labels], `${rule.alert}: label ${m.label} of ${name}`).toContain(m.label);
          const known = LABEL_VALUES[m.label];
          if (known) {
            // An exact value must exist; every alternative of a regex must match one.
            const alternatives = m.op === '=' || m.op === '!=' ? [m.value] : m.value.split('|');
            for (const alt of alternatives) {
              const re = new RegExp(`^(?:${m.op === '=' || m.op === '!=' ? alt.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') : alt})$`);
              expect(known.some((v) => re.test(v)), `${rule.alert}: ${m.label}${m.op}"${alt}" matches no ${m.label} the watcher uses`).toBe(true);
            }
          }
        }
      }
      for (const l of q.grouping) expect([...available], `${rule.alert}: grouping label ${l}`).toContain(l);
      // Templates may only use labels the alert's series carry.
      const shown = q.topBy ? new Set(q.topBy) : available;
      for (const [, label] of `${rule.annotations.summary} ${rule.annotations.description}`.matchAll(/\$labels\.([A-Za-z_][A-Za-z0-9_]*)/g)) {
        expect([...shown], `${rule.alert}: {{ $labels.${label} }}`).toContain(label);
      }
    }
  });

  it('the PromQL reader refuses what Prometheus would refuse', () => {
    expect(() => readPromQL('sum(rate(x[5m])')).toThrow(/unclosed/);
    expect(() => readPromQL('rat(x[5m])')).toThrow(/unknown function/);
    expect(() => readPromQL('x{a=b}')).toThrow(/bad matcher/);
    expect(() => readPromQL('x{a="b"} @@ 1')).toThrow(/cannot read/);
    expect(readPromQL('sum by (instance) (increase(a_total{result=~"x|y"}[15m])) > 0')).toEqual({
      metrics: [{ name: 'a_total', matchers: [{ label: 'result', op: '=~', value: 'x|y' }] }],
      grouping: ['instance'],
      topBy: ['instance'],
    });
  });

  it('the alerts read the real /metrics output of the watcher', async () => {
    const text = await registry.metrics();
    const exposed = new Set([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => m[1]!));
    for (const rule of rules) {
      for (const { name } of readPromQL(rule.expr).metrics) {
        if (name in EXTERNAL) continue;
        expect(exposed, `${rule.alert}: ${name}`).toContain(watcherMetric(name)!.base);
      }
    }
  });

  it('the PodMonitor scrapes the DaemonSet’s status port with the job name the rules use', () => {
    const [pm] = loadYaml(join(PROM, 'podmonitor.yaml'));
    expect(validate('PodMonitor', pm!)).toEqual([]);
    const ds = daemonSetOf(overlays.metrics!);
    expect(pm!.metadata.namespace).toBe(ds.metadata.namespace);
    for (const [key, value] of Object.entries(pm!.spec.selector.matchLabels)) expect(ds.spec.template.metadata.labels[key]).toBe(value);
    const endpoint = pm!.spec.podMetricsEndpoints[0];
    expect(watchContainer(ds).ports.map((p: Obj) => p.name)).toContain(endpoint.port);
    expect(endpoint.path).toBe('/metrics');
    expect(ds.spec.template.metadata.labels[pm!.spec.jobLabel]).toBe('nftops-watch');
    for (const rule of rules) {
      for (const { name, matchers } of readPromQL(rule.expr).metrics) {
        for (const m of matchers.filter((x) => x.label === 'job')) expect(m.value, `${rule.alert}: ${name}`).toBe('nftops-watch');
      }
    }
  });
});

describe('docs/deployment.md', () => {
  it('links only to files that exist', () => {
    const file = join(REPO, 'docs/deployment.md');
    const text = readFileSync(file, 'utf8');
    const links = [...text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/.test(l));
    expect(links.length).toBeGreaterThan(5);
    for (const link of links) expect(existsSync(posix.join(dirname(file), link)), link).toBe(true);
  });
});
