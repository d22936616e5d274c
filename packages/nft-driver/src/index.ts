export type { NftDriver, NftTarget, NftResult, NftDiagnostic, NftTableJson } from './driver.js';
export { NftNotFoundError, NftTimeoutError, parseNftDiagnostics } from './driver.js';
export { createNftDriver, findNft, type NftDriverOptions } from './exec-driver.js';
export { FakeNftDriver, type FakeNftCall } from './fake-driver.js';
