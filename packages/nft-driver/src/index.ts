export type { NftDriver, NftTarget, NftResult, NftDiagnostic, NftTableJson } from './driver.js';
export { NftNotFoundError, NftTimeoutError, parseNftDiagnostics } from './driver.js';
export { createNftDriver, findNft, NFT_ENV, type NftDriverOptions } from './exec-driver.js';
export { FakeNftDriver, type FakeNftCall } from './fake-driver.js';
export {
  createIpRouting,
  FakeIpRouting,
  IpRoutingError,
  type IpRoutingChange,
  type IpRoutingDriver,
  type IpRoutingOptions,
  type IpRoutingSpec,
  type IpRoutingTarget,
} from './ip-routing.js';
