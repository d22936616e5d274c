// Synthetic policy sets for the scale benchmarks: N services with 4 backends each, and P network policies.
// Addresses are derived from indexes inside documentation ranges and a benchmark-only IPv6 prefix under
// 2001:db8::/32, so every input is valid, distinct and deterministic.

/** The i-th virtual address: 2001:db8:f::/48 hosts (IPv6 gives room for 50k distinct addresses). */
function vip(i) {
  return `2001:db8:f::${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}`;
}

function backend(i) {
  return `2001:db8:b::${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}`;
}

/**
 * The YAML text of one file with SERVICES load balancers (4 backends each, round robin) and POLICIES
 * network policies (each selecting one backend, two rules), plus an optional layout setting.
 */
export function syntheticYaml({ services, policies = 0, layout, offset = 0, probe, changed = false }) {
  const docs = [];
  if (layout) docs.push(`apiVersion: nftops.dev/v1alpha1\nkind: Settings\nmetadata: { name: bench }\nspec: { layout: ${layout} }\n`);
  for (let i = offset; i < offset + services; i++) {
    const b = i * 4;
    // The probe service routes to real listeners in a benchmark topology; CHANGED moves service 0's last backend.
    const addresses =
      probe && i === probe.index
        ? probe.backends
        : [backend(b), backend(b + 1), backend(b + 2), changed && i === 0 ? backend(4 * 65536 - 1) : backend(b + 3)];
    docs.push(
      `apiVersion: nftops.dev/v1alpha1\nkind: LoadBalancer\nmetadata: { name: svc-${i} }\nspec:\n  address: '${probe && i === probe.index ? probe.vip : vip(i)}'\n  ports: [{ port: 80, targetPort: 8080 }]\n  backends: [${addresses.map((a) => `{ address: '${a}' }`).join(', ')}]\n`,
    );
  }
  for (let i = 0; i < policies; i++) {
    docs.push(
      `apiVersion: nftops.dev/v1alpha1\nkind: NetworkPolicy\nmetadata: { name: pol-${i} }\nspec:\n  podAddresses: ['${backend(i)}']\n  ingress:\n    - from: [{ ipBlock: { cidr: '2001:db8:c::/48', except: ['2001:db8:c:1::/64'] } }]\n      ports: [{ port: 8080 }]\n    - ports: [{ protocol: UDP, port: 53 }]\n`,
    );
  }
  return docs.join('---\n');
}

export { vip, backend };

/** The same objects split into files of at most PER_FILE documents, as a repository would hold them. */
export function syntheticSources({ services, policies = 0, layout, perFile = 1000, probe, changed = false }) {
  const files = [];
  if (layout) files.push({ path: 'settings.yaml', text: syntheticYaml({ services: 0, layout }) });
  for (let start = 0; start < services; start += perFile) {
    const count = Math.min(perFile, services - start);
    files.push({
      path: `services-${String(start / perFile).padStart(4, '0')}.yaml`,
      text: syntheticYaml({ services: count, offset: start, probe, changed }),
    });
  }
  for (let start = 0; start < policies; start += perFile) {
    const count = Math.min(perFile, policies - start);
    const text = syntheticYaml({ services: 0, policies: start + count }).split('---\n').slice(start).join('---\n');
    files.push({ path: `policies-${String(start / perFile).padStart(4, '0')}.yaml`, text });
  }
  return files;
}
