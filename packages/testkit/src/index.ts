export { kernelAvailable, withNetns, createNetns, deleteNetns, netnsExec, uniqueName } from './netns.js';
