//! The host VM: an identity-mapped (GPA == HPA) VM with one vCPU per hart,
//! its stage-2 table, its device tree and the SBI services it gets.

pub mod sbi;
pub mod vcpu;
