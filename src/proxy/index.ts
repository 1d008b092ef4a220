export { createNodeForwarder } from './node-forwarder.js'
export type { NodeForwarderOptions } from './node-forwarder.js'
export type { ForwardTarget, Forwarder } from './types.js'
