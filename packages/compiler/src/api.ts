import type { TableRef } from '@nftops/artifact';

/** One YAML source file: its path (as shown in diagnostics) and its text. */
export interface SourceFile {
  readonly path: string;
  readonly text: string;
}

export type Severity = 'error' | 'warning';

/** A problem found in the sources. Every diagnostic names a file, a 1-based line and column, and a stable code. */
export interface Diagnostic {
  readonly code: string;
  readonly severity: Severity;
  readonly message: string;
  readonly hint?: string;
  readonly file: string;
  readonly line: number;
  readonly column: number;
  /** `Kind/name` of the object the problem belongs to, when there is one. */
  readonly object?: string;
}

export interface CompiledArtifact {
  /** The Artifact object's name, or "default" when the sources define no Artifact. */
  readonly name: string;
  /** Where the artifact is written, relative to the source root; undefined when the caller decides. */
  readonly output: string | undefined;
  /** The complete artifact file (header and body). */
  readonly text: string;
  readonly tables: readonly TableRef[];
  /** Where the rule on an artifact line (1-based) came from; undefined for lines that are not rules. */
  ruleSource(line: number): RuleSource | undefined;
}

export interface CompileResult {
  readonly ok: boolean;
  readonly artifacts: readonly CompiledArtifact[];
  /** Errors and warnings, sorted by file, line, column, code. */
  readonly diagnostics: readonly Diagnostic[];
}

export interface CompileOptions {
  /** The generator string written into the header, for example "nftops 0.1.0". */
  readonly generator?: string;
}

/** The YAML object a rendered rule comes from, and where that object is defined. */
export interface RuleSource {
  readonly object: string;
  readonly file: string;
  readonly line: number;
  readonly column: number;
}
