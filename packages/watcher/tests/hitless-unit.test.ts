import { describe, expect, it } from 'vitest';
import { analyseDeclaration, keepBaseChains, leftovers, liveState, parseLiveTable, priorityValue } from '../src/hitless.js';

const body = [
  'table inet lb',
  'delete table inet lb',
  'table inet lb {',
  '  set backends { type ipv4_addr; elements = { 198.51.100.10 } }',
  '  chain svc {',
  '    counter',
  '  }',
  '  chain prerouting {',
  '    type nat hook prerouting priority dstnat; policy accept;',
  '    ip daddr 192.0.2.10 jump svc',
  '  }',
  '  chain input {',
  '    type filter hook input priority filter + 10',
  '    policy drop',
  '  }',
  '  chain implicit {',
  '    type filter hook output priority 0;',
  '  }',
  '}',
  '',
].join('\n');

const live = [
  { metainfo: { version: '1.0.6' } },
  { table: { family: 'inet', name: 'lb', handle: 1 } },
  { set: { family: 'inet', table: 'lb', name: 'old_set', handle: 4 } },
  { map: { family: 'inet', table: 'lb', name: 'vm', handle: 5 } },
  { counter: { family: 'inet', table: 'lb', name: 'c', handle: 6 } },
  { chain: { family: 'inet', table: 'lb', name: 'svc', handle: 1 } },
  { chain: { family: 'inet', table: 'lb', name: 'prerouting', handle: 2, type: 'nat', hook: 'prerouting', prio: -100, policy: 'accept' } },
  { chain: { family: 'inet', table: 'lb', name: 'input', handle: 3, type: 'filter', hook: 'input', prio: 0, policy: 'accept' } },
  { chain: { family: 'inet', table: 'lb', name: 'implicit', handle: 7, type: 'filter', hook: 'output', prio: 0, policy: 'accept' } },
  { rule: { family: 'inet', table: 'lb', chain: 'svc', handle: 9, expr: [] } },
];

describe('keep base chains (hitless replace)', () => {
  it('reads named priorities', () => {
    expect(priorityValue('inet', 'dstnat')).toBe(-100);
    expect(priorityValue('ip', 'filter + 10')).toBe(10);
    expect(priorityValue('ip', 'srcnat - 5')).toBe(95);
    expect(priorityValue('bridge', 'filter')).toBe(-200);
    expect(priorityValue('inet', '-150')).toBe(-150);
    expect(priorityValue('inet', 'bogus')).toBeUndefined();
  });

  it('understands the replace idiom and which base chains can be kept', () => {
    const declared = analyseDeclaration(body, { family: 'inet', name: 'lb' })!;
    expect([...declared.chains.keys()]).toEqual(['svc', 'prerouting', 'input', 'implicit']);
    expect(declared.chains.get('prerouting')!.base).toEqual({ type: 'nat', hook: 'prerouting', prio: -100 });
    expect(declared.chains.get('input')!.base).toEqual({ type: 'filter', hook: 'input', prio: 10 });
    expect(declared.chains.get('implicit')!.base).toBeUndefined(); // no explicit policy: never kept
    expect([...declared.objects]).toEqual(['set backends']);
  });

  it('flushes, deletes objects and chains by handle, keeps identical base chains, drops the delete statement', () => {
    const text = keepBaseChains(body, [{ family: 'inet', name: 'lb' }], new Map([['inet lb', liveState(live)]]))!;
    const lines = text.split('\n');
    expect(lines.slice(0, lines.indexOf('table inet lb'))).toEqual([
      'flush table inet lb',
      'delete set inet lb handle 4',
      'delete set inet lb handle 5',
      'delete counter inet lb handle 6',
      'delete chain inet lb handle 1',
      'delete chain inet lb handle 3', // input: priority changed from 0 to 10
      'delete chain inet lb handle 7', // implicit policy
    ]);
    expect(text).not.toContain('delete table inet lb');
    expect(text).toContain('table inet lb {');
  });

  it('does not rewrite new tables, unusual tables or unusual bodies', () => {
    const table = [{ family: 'inet', name: 'lb' }] as const;
    expect(keepBaseChains(body, table, new Map([['inet lb', undefined]]))).toBeUndefined();
    const flagged = live.map((i) => ('table' in i ? { table: { ...i.table, flags: ['dormant'] } } : i));
    expect(keepBaseChains(body, table, new Map([['inet lb', liveState(flagged)]]))).toBeUndefined();
    const flowtable = [...live, { flowtable: { family: 'inet', table: 'lb', name: 'ft', handle: 8 } }];
    expect(keepBaseChains(body, table, new Map([['inet lb', liveState(flowtable)]]))).toBeUndefined();
    const extraCommand = `${body}add rule inet lb svc drop\n`;
    expect(keepBaseChains(extraCommand, table, new Map([['inet lb', liveState(live)]]))).toBeUndefined();
    const noDelete = body.replace('delete table inet lb\n', '');
    expect(keepBaseChains(noDelete, table, new Map([['inet lb', liveState(live)]]))).toBeUndefined();
    expect(parseLiveTable([{ 'ct helper': { name: 'h' } }])).toBeUndefined();
  });

  it('finds objects a body does not declare', () => {
    expect(leftovers(live, body, { family: 'inet', name: 'lb' })).toEqual(['set old_set', 'map vm', 'counter c']);
  });
});
