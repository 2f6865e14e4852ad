//! Code generated from `proto/` (see build.rs). One module per proto package.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// `mirrorneuron.job.v1`
pub mod job_v1 {
    tonic::include_proto!("mirrorneuron.job.v1");
}
/// `mirrorneuron.job.v2`
pub mod job_v2 {
    tonic::include_proto!("mirrorneuron.job.v2");
}
/// `mirrorneuron.cluster.v1`
pub mod cluster {
    tonic::include_proto!("mirrorneuron.cluster.v1");
}
/// `mirrorneuron.observability.v1`
pub mod observability {
    tonic::include_proto!("mirrorneuron.observability.v1");
}
/// `mirrorneuron.operations.v1`
pub mod operations {
    tonic::include_proto!("mirrorneuron.operations.v1");
}

/// `mirrorneuron.scheduler.v1` (this runtime's own; not in the published client)
pub mod scheduler {
    tonic::include_proto!("mirrorneuron.scheduler.v1");
}

/// `mirrorneuron.history.v1` (this runtime's own; not in the published client)
pub mod history {
    tonic::include_proto!("mirrorneuron.history.v1");
}

/// `mirrorneuron.blobs.v1` (this runtime's own: paged blob reads)
pub mod blobs {
    tonic::include_proto!("mirrorneuron.blobs.v1");
}

/// The encoded descriptor set of every service, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/mirror_neuron_descriptor.bin"));
