export {
  ARTIFACT_MAGIC,
  parseArtifact,
  renderArtifact,
  sha256Hex,
  type ArtifactHeader,
  type ArtifactInput,
  type ParsedArtifact,
  type ParseArtifactResult,
  type TableFamily,
  type TableRef,
} from './artifact.js';
