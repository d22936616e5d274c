/**
 * Every rule nftops renders, and every map or set element that names a service, carries a comment
 * `Kind/name detail` (README: "Every rule has a counter and a comment `Kind/name …`"). These helpers read
 * that comment back; both `explain` (live counters) and the semantic diff (artifact text) group by it.
 */
export interface ObjectRef {
  /** `LoadBalancer/web` */
  readonly ref: string;
  readonly kind: string;
  readonly name: string;
  /** What follows the name, e.g. `TCP/80 http` or `pod 198.51.100.11 default deny`; '' when absent. */
  readonly detail: string;
}

const REF = /^([A-Z][A-Za-z0-9]*)\/([a-z0-9][a-z0-9.-]*)(?: (.*))?$/;

export function parseObjectComment(comment: string | undefined): ObjectRef | undefined {
  if (comment === undefined) return undefined;
  const match = REF.exec(comment);
  if (!match) return undefined;
  const [, kind, name, detail] = match as unknown as [string, string, string, string | undefined];
  return { ref: `${kind}/${name}`, kind, name, detail: detail ?? '' };
}

/** The comment text of a rendered rule or element line (`… comment "X" …`), or undefined. */
export function lineComment(line: string): string | undefined {
  const match = / ?comment "([^"]*)"/.exec(line);
  return match ? match[1] : undefined;
}

/** The object a table belongs to, from its declaration `comment "nftops: … (Kind/name)"`. */
export function tableOwner(declaration: readonly string[]): string | undefined {
  for (const line of declaration) {
    const comment = lineComment(line.startsWith('comment') ? ` ${line}` : line);
    const match = comment === undefined ? null : /\(([A-Z][A-Za-z0-9]*\/[a-z0-9][a-z0-9.-]*)\)\s*$/.exec(comment);
    if (match) return match[1];
  }
  return undefined;
}

/** Code-point order, independent of the locale: output must be byte-identical everywhere. */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Sort key for object references: by kind in a fixed order that reads well, then by name. */
const KIND_ORDER = ['LoadBalancer', 'NetworkPolicy', 'MeshRedirection', 'AmbientNode', 'Settings'];

export function compareRefs(a: string, b: string): number {
  const rank = (ref: string) => {
    const index = KIND_ORDER.indexOf(ref.split('/')[0] ?? '');
    return index < 0 ? KIND_ORDER.length : index;
  };
  return rank(a) - rank(b) || compareText(a, b);
}

/** `TCP/80`, `UDP/53`: the protocol and port part of a service detail like `TCP/80 http`. */
export function splitPortDetail(detail: string): { port: string; name: string; rest: string } | undefined {
  const match = /^([A-Z]+\/\d+)(?: (.*))?$/.exec(detail);
  if (!match) return undefined;
  const tail = match[2] ?? '';
  const noBackends = tail === 'no backends' || tail.endsWith(' no backends');
  const name = noBackends ? tail.slice(0, Math.max(0, tail.length - 'no backends'.length)).trim() : tail;
  return { port: match[1]!, name, rest: noBackends ? 'no backends' : '' };
}

/**
 * Whether DETAIL is a pod chain's default deny: `default deny`, or, in artifacts rendered before the pod's
 * address left these comments (it did not fit 128 bytes with the longest names), `pod ADDR default deny`.
 */
export function isPodChainDefaultDeny(detail: string): boolean {
  return /^(?:pod \S+ )?default deny$/.test(detail);
}
