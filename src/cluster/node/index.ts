// The Node side of a cluster (undici), apart so that cluster/index.ts stays runtime-agnostic.
export { createPeerTransport } from './transport.js'
export type { PeerTransportOptions } from './transport.js'
