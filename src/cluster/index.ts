// Runtime-agnostic: leases and placement, peer calls over an injected transport, and the wire
// protocol between gateways. The undici transport is in ./node (its own door).
export { createCluster } from './cluster.js'
export type { Cluster, ClusterConfig, ClusterDeps, PeerOwner, PeerTransport, Placement } from './cluster.js'
export {
  draining,
  isFromPeer,
  isOwnerDraining,
  isNotOwner,
  isRetryableAfter,
  notOwner,
  peerHeaderBytes,
  peerHeaders,
  refuseNotOwner,
  requireSecret,
  seenGeneration,
} from './protocol.js'
export type { PeerWorkers, WorkerListing } from './protocol.js'
