import { formatRouting, formatRoutingItem, ROUTING_HEADER_FIELD, type RoutingItem } from '@nftops/artifact';
import type { DiagnosticBag } from '../diagnostics.js';
import type { CompilerExtension, ExtensionOutput } from '../extension.js';
import type { IrTable } from '../ir.js';
import { ambientPodRouting, lowerAmbientNode, lowerAmbientPod } from './ambient.js';
import { buildMeshObject, type MeshObject } from './model.js';
import { lowerSidecar, sidecarRouting } from './sidecar.js';

export { buildMeshObject, type MeshObject } from './model.js';

/** The table family a mesh object renders: Istio's sidecar tables, or the ambient ones (pod or node). */
function tableGroup(object: MeshObject): { prefix: string; what: string } {
  if (object.kind === 'AmbientNode') return { prefix: 'istio-ambient', what: 'an ambient node table' };
  return object.mode === 'sidecar'
    ? { prefix: 'istio-proxy', what: 'Istio sidecar tables' }
    : { prefix: 'istio-ambient', what: 'Istio ambient pod tables' };
}

function check(objects: readonly MeshObject[], bag: DiagnosticBag): void {
  const first = new Map<string, MeshObject>();
  for (const object of objects) {
    const group = tableGroup(object);
    const other = first.get(group.prefix);
    if (!other) {
      first.set(group.prefix, object);
      continue;
    }
    bag.add(
      'MESH_TABLE_CLASH',
      object.origin.at(['$name']),
      `${object.origin.ref} and ${other.origin.ref} are in the same artifact and both render table inet ${group.prefix}-nat (${group.what})`,
      { hint: 'one artifact per network namespace: put each pod (and the node) in its own Artifact (sources or selector)', object: object.origin.ref },
    );
  }
}

function lower(objects: readonly MeshObject[]): ExtensionOutput {
  const tables: IrTable[] = [];
  const routing: RoutingItem[] = [];
  for (const object of objects) {
    if (object.kind === 'AmbientNode') {
      tables.push(lowerAmbientNode(object));
    } else if (object.mode === 'sidecar') {
      tables.push(...lowerSidecar(object).tables);
      routing.push(...sidecarRouting(object.sidecar));
    } else {
      tables.push(...lowerAmbientPod(object).tables);
      routing.push(...ambientPodRouting(object.ambient));
    }
  }
  const unique = [...new Map(routing.map((item) => [formatRoutingItem(item), item])).values()];
  return { tables, ...(unique.length > 0 ? { header: { [ROUTING_HEADER_FIELD]: formatRouting({ items: unique }) } } : {}) };
}

/** MeshRedirection (sidecar or ambient pod) and AmbientNode: Istio's nftables redirection, compiled. */
export const MESH_EXTENSION: CompilerExtension<MeshObject> = {
  kinds: ['MeshRedirection', 'AmbientNode'],
  build: (object, bag) => buildMeshObject(object, bag),
  check,
  lower,
};
