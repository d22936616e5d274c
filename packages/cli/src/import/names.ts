import { createHash } from 'node:crypto';
import { compile } from '@nftops/compiler';

/** metadata.name of every nftops object. */
export const OBJECT_NAME = /^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/;
/** Settings spec.namePrefix. */
export const NAME_PREFIX = /^([A-Za-z][A-Za-z0-9_-]{0,15})?$/;

const probes = new Map<string, 'pattern' | 'keyword' | undefined>();

/**
 * Why nftops would refuse NAME as a table or chain name: 'pattern' (the schema's grammar), 'keyword' (a
 * word nft 1.0.6 will not parse as a name), or undefined when it is fine. Asks the compiler itself (a
 * one-object Settings probe), so the grammar and the keyword list have one source.
 */
export function tableOrChainNameProblem(name: string): 'pattern' | 'keyword' | undefined {
  if (probes.has(name)) return probes.get(name);
  // As a table name: the same grammar and keyword rules as chains, and no clash with other chains.
  const other = name === 'nftops_probe' ? 'nftops_probe2' : 'nftops_probe';
  const text = `apiVersion: nftops.dev/v1alpha1\nkind: Settings\nmetadata: { name: probe }\nspec:\n  tables: { nat: ${JSON.stringify(name)}, filter: ${other} }\n`;
  const codes = new Set(compile([{ path: 'probe.yaml', text }]).diagnostics.filter((d) => d.severity === 'error').map((d) => d.code));
  const problem = codes.has('UNSAFE_NAME') ? 'keyword' : codes.size > 0 ? 'pattern' : undefined;
  probes.set(name, problem);
  return problem;
}

/** A valid table or chain name for NAME: itself when valid, else a sanitized or prefixed form. */
export function fixTableOrChainName(name: string): string {
  let candidate = name.replace(/[^A-Za-z0-9_-]/g, '_');
  if (!/^[A-Za-z]/.test(candidate)) candidate = `c${candidate}`;
  candidate = candidate.slice(0, 64);
  for (let i = 0; tableOrChainNameProblem(candidate) !== undefined && i < 4; i++) candidate = `nftops_${candidate}`.slice(0, 64);
  return candidate;
}

/** A short stable digest, to keep shortened or sanitized names unique. */
export function digest(text: string, length = 6): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/**
 * An nftops object name for NAME (Kubernetes names are DNS subdomains of up to 253 characters; ours are
 * at most 63): lower case, other characters as "-", trimmed; shortened names end in a digest of NAME.
 */
export function objectNameFor(name: string): string {
  if (OBJECT_NAME.test(name)) return name;
  let candidate = name.toLowerCase().replace(/[^a-z0-9.-]/g, '-').replace(/^[^a-z0-9]+/, '').replace(/[^a-z0-9]+$/, '');
  if (candidate.length > 63 || candidate === '' || candidate !== name.toLowerCase()) {
    candidate = `${candidate.slice(0, 56).replace(/[^a-z0-9]+$/, '')}-${digest(name)}`.replace(/^-/, '');
  }
  return candidate;
}
