/**
 * Reads the body of an nftops artifact back into its structure: tables, their sets, maps and chains, and
 * every element and rule as one line of text. It understands exactly the layout the compiler renders (one
 * element or rule per line) and answers undefined for anything else, so callers fall back to treating the
 * body as opaque text.
 */
export interface BodyStructure {
  readonly tables: readonly TableStructure[];
}

export interface TableStructure {
  readonly family: string;
  readonly name: string;
  /** Lines of the table's own declaration (its comment). */
  readonly declaration: readonly string[];
  readonly objects: readonly ObjectStructure[];
}

export type ObjectStructure = SetStructure | ChainStructure;

export interface SetStructure {
  readonly kind: 'set' | 'map';
  readonly name: string;
  /** type, comment, flags and statement lines, in order. */
  readonly declaration: readonly string[];
  readonly elements: readonly string[];
}

export interface ChainStructure {
  readonly kind: 'chain';
  readonly name: string;
  /** `type … hook … priority …; policy …;` for a base chain. */
  readonly base: string | undefined;
  readonly rules: readonly string[];
}

const NAME = '[A-Za-z][A-Za-z0-9_.-]*';
const TABLE_ADD = new RegExp(`^table (inet|ip|ip6|arp|bridge|netdev) (${NAME})$`);
const TABLE_OPEN = new RegExp(`^table (inet|ip|ip6|arp|bridge|netdev) (${NAME}) \\{$`);
const OBJECT_OPEN = new RegExp(`^\\t(set|map|chain) (${NAME}) \\{$`);

export function parseBody(body: string): BodyStructure | undefined {
  const lines = body.split('\n');
  if (lines.pop() !== '') return undefined;
  const tables: TableStructure[] = [];
  let i = 0;
  const next = () => lines[i++];
  while (i < lines.length) {
    if (lines[i] === '' && tables.length > 0) {
      i++;
      continue;
    }
    const add = TABLE_ADD.exec(next() ?? '');
    if (!add) return undefined;
    const [, family, name] = add as unknown as [string, string, string];
    if (next() !== `delete table ${family} ${name}`) return undefined;
    const open = TABLE_OPEN.exec(next() ?? '');
    if (!open || open[1] !== family || open[2] !== name) return undefined;
    const declaration: string[] = [];
    const objects: ObjectStructure[] = [];
    for (;;) {
      const line = next();
      if (line === undefined) return undefined;
      if (line === '}') break;
      if (line === '') continue;
      const object = OBJECT_OPEN.exec(line);
      if (!object) {
        if (objects.length > 0 || !line.startsWith('\t') || line.startsWith('\t\t')) return undefined;
        declaration.push(line.slice(1));
        continue;
      }
      const [, kind, objectName] = object as unknown as ['', 'set' | 'map' | 'chain', string];
      const inner: string[] = [];
      const elements: string[] = [];
      for (;;) {
        const innerLine = next();
        if (innerLine === undefined) return undefined;
        if (innerLine === '\t}') break;
        if (!innerLine.startsWith('\t\t') || innerLine.startsWith('\t\t\t')) return undefined;
        if (kind !== 'chain' && innerLine === '\t\telements = {') {
          for (;;) {
            const element = next();
            if (element === undefined) return undefined;
            if (element === '\t\t}') break;
            if (!element.startsWith('\t\t\t')) return undefined;
            elements.push(element.slice(3).replace(/,$/, ''));
          }
          continue;
        }
        inner.push(innerLine.slice(2));
      }
      if (kind === 'chain') {
        const base = inner[0]?.startsWith('type ') ? inner[0] : undefined;
        objects.push({ kind, name: objectName, base, rules: base === undefined ? inner : inner.slice(1) });
      } else {
        objects.push({ kind, name: objectName, declaration: inner, elements });
      }
    }
    tables.push({ family, name, declaration, objects });
  }
  return { tables };
}

/** The key part of a set or map element line: everything before its comment or ` : value`. */
export function elementKey(element: string): string {
  const commentAt = element.indexOf(' comment "');
  const valueAt = element.indexOf(' : ');
  const cut = [commentAt, valueAt].filter((i) => i >= 0);
  return cut.length === 0 ? element : element.slice(0, Math.min(...cut));
}
