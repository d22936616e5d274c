export { semanticDiff, semanticDiffArtifacts, type LineChanges, type ObjectChange, type SemanticDiff } from './diff.js';
export { bodyFacts, ruleBody, type BodyFacts, type PolicyFacts, type PortFacts } from './facts.js';
export { formatSemanticDiff } from './format.js';
