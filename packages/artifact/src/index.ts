export {
  ARTIFACT_MAGIC,
  parseArtifact,
  parseArtifactBytes,
  verifyArtifactBytes,
  renderArtifact,
  sha256Hex,
  type ArtifactFailure,
  type ArtifactHeader,
  type ArtifactInput,
  type ParsedArtifact,
  type ParseArtifactResult,
  type TableFamily,
  type TableRef,
  type VerifiedArtifactBytes,
  type VerifyArtifactBytesResult,
} from './artifact.js';
export {
  ROUTING_HEADER_FIELD,
  formatRouting,
  formatRoutingItem,
  parseRouting,
  routingOfHeader,
  routingRemoved,
  validateRoutingItem,
  type ParseRoutingResult,
  type Routing,
  type RoutingAddress,
  type RoutingFamily,
  type RoutingItem,
  type RoutingRoute,
  type RoutingRule,
} from './routing.js';
export {
  elementKey,
  parseBody,
  type BodyStructure,
  type ChainStructure,
  type ObjectStructure,
  type SetStructure,
  type TableStructure,
} from './structure.js';
export { planIncremental, type IncrementalPlan } from './incremental.js';
export { SIGNATURE_FIELD, signArtifact, stripSignature, verifyArtifactSignature, verifyArtifactSignatureBytes, type SignatureCheck } from './signature.js';
