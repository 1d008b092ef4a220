export { createCluster } from './cluster.js'
export type { Cluster, ClusterConfig, ClusterDeps, PeerOwner, Placement } from './cluster.js'
