import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { execa } from 'execa';
import { findNft } from '@nftops/nft-driver';

let cachedAvailability: boolean | undefined;

/**
 * True when this process can create network namespaces and run nft (root, iproute2, nftables).
 * Under CI=true a missing kernel facility is a failure, not a reason to skip: CI must exercise the kernel.
 */
export function kernelAvailable(): boolean {
  if (cachedAvailability !== undefined) return cachedAvailability;
  let reason: string | undefined;
  if (process.getuid?.() !== 0) reason = 'not running as root';
  else {
    try {
      findNft();
      execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
    } catch (error) {
      reason = (error as Error).message;
    }
  }
  if (reason && process.env.CI === 'true') {
    throw new Error(`kernel tests cannot run under CI=true: ${reason}`);
  }
  cachedAvailability = reason === undefined;
  return cachedAvailability;
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid.toString(36)}-${randomBytes(3).toString('hex')}`;
}

export async function createNetns(prefix = 'nftops-t'): Promise<string> {
  const name = uniqueName(prefix).slice(0, 40);
  await execa('ip', ['netns', 'add', name]);
  await execa('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

export async function deleteNetns(name: string): Promise<void> {
  await execa('ip', ['netns', 'delete', name], { reject: false });
}

export function netnsExec(netns: string, file: string, args: readonly string[], input?: string) {
  return execa('ip', ['netns', 'exec', netns, file, ...args], { input: input ?? '', reject: false });
}

/** Runs FN with a fresh network namespace and always deletes it afterwards. */
export async function withNetns<T>(fn: (netns: string) => Promise<T>): Promise<T> {
  const netns = await createNetns();
  try {
    return await fn(netns);
  } finally {
    await deleteNetns(netns);
  }
}
