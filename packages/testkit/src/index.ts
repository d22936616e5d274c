export { kernelAvailable, withNetns, createNetns, deleteNetns, netnsExec, uniqueName } from './netns.js';
export {
  startServer,
  runClient,
  summarize,
  sctpAvailable,
  isDocumentationAddress,
  assertDocumentationAddress,
  formatEndpoint,
  type TrafficProtocol,
  type ServerOptions,
  type ServerHandle,
  type ConnectOptions,
  type ConnectResult,
  type ConnectFailure,
  type TrafficSummary,
} from './traffic.js';
export {
  createLbTopology,
  withLbTopology,
  LB_CLIENT_SIDE,
  LB_BACKEND_SIDE,
  type LbTopology,
  type LbTopologyOptions,
  type LbConnectOptions,
} from './lb-topology.js';
export { startClientAgent, type ClientAgent } from './traffic.js';
export {
  createMeshTopology,
  withMeshTopology,
  startMeshServer,
  meshConnect,
  meshSocketsAvailable,
  MESH_POD,
  MESH_PEER,
  MESH_OUTSIDE,
  type MeshTopology,
  type MeshListener,
  type MeshServer,
  type MeshRequest,
  type MeshReply,
  type MeshResult,
  type Identity,
} from './mesh-sockets.js';
