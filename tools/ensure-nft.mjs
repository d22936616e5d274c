#!/usr/bin/env node
// Runs before the tests: the kernel tests need nft (Debian package nftables) and iproute2. As root with apt
// available, install what is missing; otherwise say what the tests will skip. Under CI=true the kernel
// tests fail rather than skip when these are missing.
import { execFileSync, spawnSync } from 'node:child_process';

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd} || test -x /usr/sbin/${cmd}`], { stdio: 'ignore' }).status === 0;
const missing = [['nft', 'nftables'], ['ip', 'iproute2'], ['unshare', 'util-linux'], ['setpriv', 'util-linux'], ['python3', 'python3-minimal']]
  .filter(([cmd]) => !has(cmd))
  .filter(([, pkg], i, all) => all.findIndex(([, other]) => other === pkg) === i);
if (missing.length === 0) process.exit(0);
const packages = missing.map(([, pkg]) => pkg);
if (process.getuid?.() === 0 && has('apt-get')) {
  console.error(`installing ${packages.join(', ')} for the kernel tests`);
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '-qq', ...packages], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
} else {
  console.error(`note: ${packages.join(', ')} missing and not root with apt-get: kernel tests will be skipped (they fail under CI=true)`);
}
