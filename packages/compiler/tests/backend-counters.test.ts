import { describe, expect, it } from 'vitest';
import { parseAddress, type IpAddress } from '../src/address.js';
import { BACKEND_COUNTER_LIMIT, lowerArtifact } from '../src/lower.js';
import { DEFAULT_SETTINGS, type LoadBalancer, type Settings } from '../src/model.js';

const address = (text: string): IpAddress => {
  const parsed = parseAddress(text);
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.value;
};

/** SERVICES IPv4 services of BACKENDS backends each, in one artifact. */
function services(count: number, backends: number): LoadBalancer[] {
  return Array.from({ length: count }, (_, i) => ({
    kind: 'LoadBalancer',
    name: `svc-${i}`,
    labels: {},
    origin: { ref: `LoadBalancer/svc-${i}`, file: 'a.yaml', at: () => ({ file: 'a.yaml', line: 1, column: 1 }) },
    address: address(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`),
    ports: [{ name: undefined, protocol: 'tcp', port: 80, targetPort: 8080 }],
    backends: Array.from({ length: backends }, (_, b) => ({ address: address(`198.51.100.${b + 1}`), weight: 1, port: undefined })),
    scheduler: 'round-robin',
    snat: undefined,
  }));
}

/** Whether every backend map of the rendered nat table carries element counters. */
function countedBackendMaps(loadBalancers: LoadBalancer[], backendCounters: Settings['backendCounters']): boolean[] {
  const settings: Settings = { ...DEFAULT_SETTINGS, backendCounters };
  const nat = lowerArtifact({ name: 'default', settings, loadBalancers, policies: [], extensionObjects: [] }).tables[0]!;
  return nat.maps.filter((m) => m.name.startsWith('backends4')).map((m) => (m.statements ?? []).includes('counter'));
}

describe('Settings backendCounters (maps layout)', () => {
  const atLimit = services(BACKEND_COUNTER_LIMIT / 4, 4);
  const overLimit = [...atLimit, ...services(1, 1).map((s) => ({ ...s, name: 'extra', address: address('192.0.2.1') }))];

  it('auto keeps a counter on every backend element up to the limit, and none beyond it', () => {
    expect(new Set(countedBackendMaps(atLimit, 'auto'))).toEqual(new Set([true]));
    expect(new Set(countedBackendMaps(overLimit, 'auto'))).toEqual(new Set([false]));
  });

  it('on and off hold whatever the size', () => {
    expect(new Set(countedBackendMaps(overLimit, 'on'))).toEqual(new Set([true]));
    expect(new Set(countedBackendMaps(services(1, 2), 'off'))).toEqual(new Set([false]));
  });

  it('leaves the per-service counters (dispatch elements) on in every case', () => {
    const nat = lowerArtifact({ name: 'default', settings: { ...DEFAULT_SETTINGS, backendCounters: 'off' }, loadBalancers: services(2, 2), policies: [], extensionObjects: [] }).tables[0]!;
    expect(nat.maps.find((m) => m.name === 'dispatch4')!.statements).toEqual(['counter']);
  });
});
