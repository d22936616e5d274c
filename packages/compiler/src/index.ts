export type { CompileOptions, CompileResult, CompiledArtifact, Diagnostic, RuleSource, Severity, SourceFile } from './api.js';
export { compile } from './compile.js';
export { DIAGNOSTIC_CODES, formatDiagnostic, sortDiagnostics, type DiagnosticCode } from './diagnostics.js';
export { API_GROUP, SUPPORTED_API_VERSIONS } from './kinds.js';
export { LOAD_LIMITS } from './load.js';
export { BACKEND_COUNTER_LIMIT } from './lower.js';
export { VERSION } from './version.js';
export { cidrContains, compareBytes, parseAddress, parseCidr, type Cidr, type IpAddress } from './address.js';
