//! `vm-simnet` will own simulation: many meshes in one process, each the real engine over
//! in-memory storage, driven by a virtual clock and one seeded RNG through a simulated network
//! with faults and byzantine members; plus real-swarm scenarios and their reports.
