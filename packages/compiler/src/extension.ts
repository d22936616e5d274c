import type { DiagnosticBag } from './diagnostics.js';
import type { IrTable } from './ir.js';
import type { Kind } from './kinds.js';
import type { Origin } from './model.js';
import type { ValidatedObject } from './validate.js';

/** A model object of an extension kind. */
export interface ExtensionObject {
  readonly kind: Kind;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly origin: Origin;
}

/** What an extension renders for one artifact. */
export interface ExtensionOutput {
  readonly tables: readonly IrTable[];
  /**
   * Extra artifact header fields (for example routing that must accompany the tables). Keys are lowercase
   * words; values are single printable lines.
   */
  readonly header?: Readonly<Record<string, string>>;
}

/**
 * A family of kinds compiled by its own module (mesh redirection, for example). The core loads, validates
 * and scopes the objects; the extension builds its model from each validated object and lowers the objects
 * that land in one artifact to IR tables.
 */
export interface CompilerExtension<T extends ExtensionObject = ExtensionObject> {
  readonly kinds: readonly Kind[];
  /** Builds the model object, reporting problems (with positions from object.document) into BAG. */
  build(object: ValidatedObject, bag: DiagnosticBag): T | undefined;
  /** Checks that need all the extension's objects of one artifact together. */
  check?(objects: readonly T[], bag: DiagnosticBag): void;
  /** Lowers the objects of one artifact; called only when there is at least one. */
  lower(objects: readonly T[]): ExtensionOutput;
}
