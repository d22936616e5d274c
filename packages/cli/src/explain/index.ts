export { readRuleset, describeRule, formatValue, type Counter, type LiveTable } from './ruleset.js';
export {
  explainRuleset,
  endpoint,
  type ExplainArtifact,
  type ExplainOptions,
  type ExplainReport,
  type ExplainRow,
  type ServiceReport,
  type ServicePortReport,
  type BackendReport,
  type PolicyReport,
  type PodReport,
  type RuleGroupReport,
} from './map.js';
export { formatExplain, alignColumns } from './format.js';
export { parseObjectComment, lineComment, tableOwner, compareRefs, compareText, type ObjectRef } from './object-ref.js';
