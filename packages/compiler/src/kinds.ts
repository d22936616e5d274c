import type { ErrorObject } from 'ajv/dist/2020.js';
import { SCHEMAS } from './schemas.generated.js';
import { VALIDATORS } from './validators.generated.js';

export const API_GROUP = 'nftops.dev';

/** A validator ajv compiled from a schema: true when DATA is valid, else its `errors` say why. */
export type SchemaValidator = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };

/** The kinds of the hub version, which the model is built from. */
export type Kind = 'LoadBalancer' | 'NetworkPolicy' | 'Settings' | 'Artifact' | 'MeshRedirection' | 'AmbientNode';

interface VersionDefinition {
  /** Kind → JSON Schema of that kind in this version. */
  readonly schemas: Readonly<Record<Kind, Record<string, unknown>>>;
  /** Kind → the schema's validator, compiled ahead of time (tools/sync-schemas.mjs). */
  readonly validators: Readonly<Record<Kind, SchemaValidator>>;
  /**
   * Converts a validated object of this version to the hub version (v1alpha1), which the model reads.
   * v1alpha1 is the hub, so this is the identity. A future v1beta1 adds its own entry here with a real
   * conversion, and the rest of the compiler does not change.
   */
  readonly toHub: (kind: Kind, object: Record<string, unknown>) => Record<string, unknown>;
}

const V1ALPHA1_FILES: Readonly<Record<Kind, string>> = {
  LoadBalancer: 'v1alpha1/loadbalancer.schema.json',
  NetworkPolicy: 'v1alpha1/networkpolicy.schema.json',
  Settings: 'v1alpha1/settings.schema.json',
  Artifact: 'v1alpha1/artifact.schema.json',
  MeshRedirection: 'v1alpha1/meshredirection.schema.json',
  AmbientNode: 'v1alpha1/ambientnode.schema.json',
};

function byKind<T>(table: Readonly<Record<string, T>>): Record<Kind, T> {
  return Object.fromEntries(Object.entries(V1ALPHA1_FILES).map(([kind, file]) => [kind, table[file]!])) as Record<Kind, T>;
}

export const VERSIONS: Readonly<Record<string, VersionDefinition>> = {
  [`${API_GROUP}/v1alpha1`]: {
    schemas: byKind(SCHEMAS),
    validators: byKind(VALIDATORS),
    toHub: (_kind, object) => object,
  },
};

export const SUPPORTED_API_VERSIONS = Object.keys(VERSIONS).sort();
