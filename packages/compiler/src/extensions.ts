import type { CompilerExtension } from './extension.js';
import { MESH_EXTENSION } from './mesh/index.js';

/** Every extension the compiler knows, in rendering order. */
export const EXTENSIONS: readonly CompilerExtension[] = [MESH_EXTENSION as unknown as CompilerExtension];
