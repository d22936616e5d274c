import { describe, expect, it } from 'vitest';
import { parseAddress, type IpAddress } from '../src/address.js';
import { lowerArtifact } from '../src/lower.js';
import { DEFAULT_SETTINGS, type LoadBalancer } from '../src/model.js';
import { UnsafeTextError } from '../src/nft-text.js';
import { renderTables } from '../src/render.js';

const address = (text: string): IpAddress => {
  const parsed = parseAddress(text);
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.value;
};

/** A service whose name got past the schema and the model (it cannot: this is the last line of defence). */
function hostile(layout: 'maps' | 'per-service') {
  const service: LoadBalancer = {
    kind: 'LoadBalancer',
    name: 'x',
    labels: {},
    origin: { ref: 'LoadBalancer/x" ; flush ruleset ; "', file: 'a.yaml', at: () => ({ file: 'a.yaml', line: 1, column: 1 }) },
    address: address('192.0.2.1'),
    ports: [{ name: undefined, protocol: 'tcp', port: 80, targetPort: 8080 }],
    backends: [{ address: address('198.51.100.1'), weight: 1, port: undefined }],
    scheduler: 'round-robin',
    snat: undefined,
  };
  return () => renderTables(lowerArtifact({ name: 'default', settings: { ...DEFAULT_SETTINGS, layout }, loadBalancers: [service], policies: [], extensionObjects: [] }).tables);
}

describe('text that cannot be written safely', () => {
  it.each(['maps', 'per-service'] as const)('never reaches the rendered body (%s layout, elements made while rendering)', (layout) => {
    expect(hostile(layout)).toThrow(UnsafeTextError);
  });
});
