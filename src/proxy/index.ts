export { createNodeProxy, honoForwarder } from './node-forwarder.js'
export type { NodeForwarderOptions, NodeProxy } from './node-forwarder.js'
export type { ForwardTarget, Forwarder } from './types.js'
