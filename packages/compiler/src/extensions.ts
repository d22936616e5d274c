import type { CompilerExtension } from './extension.js';

/** Every extension the compiler knows, in rendering order. */
export const EXTENSIONS: readonly CompilerExtension[] = [];
