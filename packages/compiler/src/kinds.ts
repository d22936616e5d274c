import { SCHEMAS } from './schemas.generated.js';

export const API_GROUP = 'nftops.dev';

/** The kinds of the hub version, which the model is built from. */
export type Kind = 'LoadBalancer' | 'NetworkPolicy' | 'Settings' | 'Artifact' | 'MeshRedirection' | 'AmbientNode';

interface VersionDefinition {
  /** Kind → JSON Schema of that kind in this version. */
  readonly schemas: Readonly<Record<Kind, Record<string, unknown>>>;
  /**
   * Converts a validated object of this version to the hub version (v1alpha1), which the model reads.
   * v1alpha1 is the hub, so this is the identity. A future v1beta1 adds its own entry here with a real
   * conversion, and the rest of the compiler does not change.
   */
  readonly toHub: (kind: Kind, object: Record<string, unknown>) => Record<string, unknown>;
}

export const VERSIONS: Readonly<Record<string, VersionDefinition>> = {
  [`${API_GROUP}/v1alpha1`]: {
    schemas: {
      LoadBalancer: SCHEMAS['v1alpha1/loadbalancer.schema.json']!,
      NetworkPolicy: SCHEMAS['v1alpha1/networkpolicy.schema.json']!,
      Settings: SCHEMAS['v1alpha1/settings.schema.json']!,
      Artifact: SCHEMAS['v1alpha1/artifact.schema.json']!,
      MeshRedirection: SCHEMAS['v1alpha1/meshredirection.schema.json']!,
      AmbientNode: SCHEMAS['v1alpha1/ambientnode.schema.json']!,
    },
    toHub: (_kind, object) => object,
  },
};

export const SUPPORTED_API_VERSIONS = Object.keys(VERSIONS).sort();
